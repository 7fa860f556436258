//! Published ports: checking a service's `EndpointSpec`, and allocating the ports it leaves
//! to the cluster. Pure functions over services; the control API calls `check` before it
//! writes a spec, the allocator loop calls `allocate` and writes the result. Must not touch
//! the store itself.
//!
//! A published port (with its protocol) belongs to at most one service in the cluster, host
//! mode included (SwarmKit lets host-mode ports repeat across services; one owner keeps the
//! scheduler's per-node check to tasks of one service). Ports asked as 0 get the lowest free
//! port of `DYNAMIC`, and keep it across updates that leave that port's spec unchanged.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;

use swarm_api::{Endpoint, EndpointSpec, PortConfig, PortProtocol, PublishMode, Service};

/// Where ports asked as 0 come from (SwarmKit's dynamic range).
pub const DYNAMIC: RangeInclusive<u32> = 30000..=32767;

/// A published port as the node sees it: protocol and number.
pub type PortKey = (i32, u32);

/// `8080/tcp`.
pub fn port_name(p: &PortConfig) -> String {
    let proto = match p.protocol() {
        PortProtocol::Tcp => "tcp",
        PortProtocol::Udp => "udp",
    };
    format!("{}/{proto}", p.published_port)
}

fn key(p: &PortConfig) -> PortKey {
    (p.protocol, p.published_port)
}

/// The ports a spec asks for (none when it has no endpoint).
pub fn spec_ports(spec: Option<&EndpointSpec>) -> &[PortConfig] {
    spec.map_or(&[], |e| e.ports.as_slice())
}

/// True when `service`'s endpoint was allocated for its current spec.
pub fn is_allocated(service: &Service) -> bool {
    let want = spec_ports(service.spec.as_ref().and_then(|s| s.endpoint.as_ref()));
    let have = service.endpoint.as_ref();
    let for_spec = spec_ports(have.and_then(|e| e.spec.as_ref()));
    want == for_spec && have.map_or(0, |e| e.ports.len()) == want.len()
}

/// Ports held by services other than `except`, with the holder's name: what they were
/// allocated, and what their specs ask for explicitly (not allocated yet, but promised).
pub fn taken<'a>(
    services: impl Iterator<Item = &'a Service>,
    except: &str,
) -> HashMap<PortKey, String> {
    let mut out = HashMap::new();
    for s in services.filter(|s| s.id != except) {
        let name = s
            .spec
            .as_ref()
            .and_then(|sp| sp.annotations.as_ref())
            .map(|a| a.name.clone())
            .unwrap_or_default();
        let allocated = s.endpoint.as_ref().map_or(&[][..], |e| e.ports.as_slice());
        let asked = spec_ports(s.spec.as_ref().and_then(|sp| sp.endpoint.as_ref()));
        for p in allocated.iter().chain(asked) {
            if p.published_port != 0 {
                out.insert(key(p), name.clone());
            }
        }
    }
    out
}

/// Checks a spec's ports on their own and against `taken`; the error is one line naming the
/// field and the port.
pub fn check(spec: &EndpointSpec, taken: &HashMap<PortKey, String>) -> Result<(), String> {
    let mut seen = HashSet::new();
    let mut targets = HashSet::new();
    for p in &spec.ports {
        if p.target_port == 0 || p.target_port > 65535 {
            return Err(format!(
                "publish: target port {} is not in 1-65535",
                p.target_port
            ));
        }
        if p.published_port > 65535 {
            return Err(format!(
                "publish: published port {} is not in 1-65535",
                p.published_port
            ));
        }
        if PortProtocol::try_from(p.protocol).is_err() {
            return Err(format!("publish: unknown protocol {}", p.protocol));
        }
        match PublishMode::try_from(p.publish_mode) {
            Err(_) => return Err(format!("publish: unknown mode {}", p.publish_mode)),
            Ok(PublishMode::Host) if p.keep_source => {
                return Err(format!(
                    "publish: port {}: source=keep is for ingress mode (host mode always keeps \
                     the client's address)",
                    p.target_port
                ))
            }
            Ok(_) => {}
        }
        if !targets.insert((p.protocol, p.target_port)) {
            return Err(format!(
                "publish: target port {} is published twice",
                p.target_port
            ));
        }
        if p.published_port == 0 {
            continue;
        }
        if !seen.insert(key(p)) {
            return Err(format!("publish: port {} is published twice", port_name(p)));
        }
        if let Some(owner) = taken.get(&key(p)) {
            return Err(format!(
                "publish: port {} is already published by service {owner}",
                port_name(p)
            ));
        }
    }
    Ok(())
}

/// The endpoint for `spec`: explicit ports as asked; a port asked as 0 keeps what `previous`
/// gave the same target and protocol, else gets the lowest port of `DYNAMIC` not in `taken`.
/// Ports it hands out are added to `taken`. Fails when the range is used up.
pub fn allocate(
    spec: &EndpointSpec,
    previous: Option<&Endpoint>,
    taken: &mut HashSet<PortKey>,
) -> Result<Endpoint, String> {
    let mut ports = Vec::with_capacity(spec.ports.len());
    for p in spec.ports.iter().filter(|p| p.published_port != 0) {
        taken.insert(key(p));
    }
    for p in &spec.ports {
        let mut out = p.clone();
        if p.published_port == 0 {
            let kept = previous
                .into_iter()
                .flat_map(|e| e.ports.iter())
                .find(|q| {
                    q.target_port == p.target_port
                        && q.protocol == p.protocol
                        && q.publish_mode == p.publish_mode
                        && !taken.contains(&key(q))
                })
                .map(|q| q.published_port);
            let port = kept
                .or_else(|| DYNAMIC.clone().find(|&n| !taken.contains(&(p.protocol, n))))
                .ok_or_else(|| {
                    format!(
                        "no free port left in {}-{} for target port {}",
                        DYNAMIC.start(),
                        DYNAMIC.end(),
                        p.target_port
                    )
                })?;
            out.published_port = port;
            taken.insert(key(&out));
        }
        ports.push(out);
    }
    Ok(Endpoint {
        spec: Some(spec.clone()),
        ports,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(target: u32, published: u32) -> PortConfig {
        PortConfig {
            target_port: target,
            published_port: published,
            publish_mode: PublishMode::Host as i32,
            ..Default::default()
        }
    }

    #[test]
    fn dynamic_ports_come_from_the_range_and_are_kept() {
        let spec = EndpointSpec {
            ports: vec![port(80, 0), port(443, 8443)],
            ..Default::default()
        };
        let mut taken = HashSet::from([(0, 30000)]);
        let e = allocate(&spec, None, &mut taken).unwrap();
        assert_eq!(e.ports[0].published_port, 30001);
        assert_eq!(e.ports[1].published_port, 8443);
        // Reallocated for the same spec, the port stays (it is not taken by others).
        let mut others = HashSet::from([(0, 30000)]);
        let again = allocate(&spec, Some(&e), &mut others).unwrap();
        assert_eq!(again.ports[0].published_port, 30001);
    }

    #[test]
    fn conflicts_and_bad_ports_are_refused_naming_the_port() {
        let taken = HashMap::from([((0, 8080), "web".to_string())]);
        let clash = EndpointSpec {
            ports: vec![port(80, 8080)],
            ..Default::default()
        };
        assert_eq!(
            check(&clash, &taken).unwrap_err(),
            "publish: port 8080/tcp is already published by service web"
        );
        let udp = EndpointSpec {
            ports: vec![PortConfig {
                protocol: PortProtocol::Udp as i32,
                ..port(80, 8080)
            }],
            ..Default::default()
        };
        assert!(
            check(&udp, &taken).is_ok(),
            "another protocol is another port"
        );
        // The routing mesh's ports are as unique as host ports.
        let ingress = EndpointSpec {
            ports: vec![PortConfig {
                publish_mode: PublishMode::Ingress as i32,
                ..port(80, 8080)
            }],
            ..Default::default()
        };
        assert!(check(&ingress, &taken)
            .unwrap_err()
            .contains("already published by service web"));
        let twice = EndpointSpec {
            ports: vec![port(80, 9000), port(81, 9000)],
            ..Default::default()
        };
        assert!(check(&twice, &taken).unwrap_err().contains("9000/tcp"));
        let zero = EndpointSpec {
            ports: vec![port(0, 9000)],
            ..Default::default()
        };
        assert!(check(&zero, &taken).unwrap_err().contains("target port 0"));
    }
}
