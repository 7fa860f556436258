//! Published ports on the command line: parsing `--publish`/`-p` and `--publish-rm` into a
//! service's `EndpointSpec`, and showing ports as docker does (`*:8080->80/tcp`). Every parse
//! error is one line starting with the flag's name. Owns no other part of the spec.

use anyhow::{bail, Result};
use swarm_api::{EndpointSpec, PortConfig, PortProtocol, PublishMode, Service};

fn parse_port(flag: &str, what: &str, s: &str) -> Result<u32> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n),
        _ => bail!("{flag}: {what} port {s:?} is not a number in 1-65535"),
    }
}

fn parse_protocol(flag: &str, s: &str) -> Result<PortProtocol> {
    match s.trim() {
        "tcp" => Ok(PortProtocol::Tcp),
        "udp" => Ok(PortProtocol::Udp),
        other => bail!("{flag}: protocol {other:?} is not tcp or udp"),
    }
}

/// `published=8080,target=80[,protocol=tcp|udp][,mode=ingress|host][,source=keep|nat]`, or the short
/// `[PUBLISHED:]TARGET[/PROTOCOL]`. A missing published port is left for the allocator;
/// the mode defaults to ingress, as in docker.
pub fn parse_publish(s: &str) -> Result<PortConfig> {
    let flag = "publish";
    let mut p = PortConfig {
        publish_mode: PublishMode::Ingress as i32,
        ..Default::default()
    };
    if s.contains('=') {
        for field in s.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let Some((k, v)) = field.split_once('=') else {
                bail!("{flag}: {field:?} is not KEY=VALUE");
            };
            match k.trim() {
                "published" => p.published_port = parse_port(flag, "published", v)?,
                "target" => p.target_port = parse_port(flag, "target", v)?,
                "protocol" => p.protocol = parse_protocol(flag, v)? as i32,
                "mode" => {
                    p.publish_mode = match v.trim() {
                        "ingress" => PublishMode::Ingress,
                        "host" => PublishMode::Host,
                        other => bail!("{flag}: mode {other:?} is not ingress or host"),
                    } as i32
                }
                "source" => {
                    p.keep_source = match v.trim() {
                        "keep" => true,
                        "nat" => false,
                        other => bail!("{flag}: source {other:?} is not keep or nat"),
                    }
                }
                other => bail!(
                    "{flag}: unknown key {other:?} (published, target, protocol, mode, source)"
                ),
            }
        }
        if p.target_port == 0 {
            bail!("{flag}: target= is required in {s:?}");
        }
        return Ok(p);
    }
    let (ports, proto) = match s.split_once('/') {
        Some((ports, proto)) => (ports, Some(proto)),
        None => (s, None),
    };
    if let Some(proto) = proto {
        p.protocol = parse_protocol(flag, proto)? as i32;
    }
    match ports.split_once(':') {
        Some((published, target)) => {
            p.published_port = parse_port(flag, "published", published)?;
            p.target_port = parse_port(flag, "target", target)?;
        }
        None => p.target_port = parse_port(flag, "target", ports)?,
    }
    Ok(p)
}

/// `TARGET[/PROTOCOL]` of `--publish-rm` (tcp by default).
fn parse_rm(s: &str) -> Result<(u32, i32)> {
    let flag = "publish-rm";
    let (port, proto) = match s.split_once('/') {
        Some((port, proto)) => (port, parse_protocol(flag, proto)?),
        None => (s, PortProtocol::Tcp),
    };
    Ok((parse_port(flag, "target", port)?, proto as i32))
}

/// Removes the `remove` targets, then adds `publish`, each replacing a port with the same
/// target and protocol. Leaves the endpoint alone when neither flag is given.
pub fn apply(
    endpoint: &mut Option<EndpointSpec>,
    publish: &[String],
    remove: &[String],
) -> Result<()> {
    if publish.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let old = endpoint.take().unwrap_or_default();
    let mode = old.mode;
    let mut ports = old.ports;
    for r in remove {
        let (target, proto) = parse_rm(r)?;
        ports.retain(|p| !(p.target_port == target && p.protocol == proto));
    }
    for s in publish {
        let new = parse_publish(s)?;
        ports.retain(|p| !(p.target_port == new.target_port && p.protocol == new.protocol));
        ports.push(new);
    }
    *endpoint = (!ports.is_empty() || mode != 0).then_some(EndpointSpec { ports, mode });
    Ok(())
}

/// `*:8080->80/tcp`: published (`*` for every address) to target, with the protocol.
pub fn port_text(p: &PortConfig) -> String {
    let proto = match p.protocol() {
        PortProtocol::Tcp => "tcp",
        PortProtocol::Udp => "udp",
    };
    format!("*:{}->{}/{proto}", p.published_port, p.target_port)
}

/// The ports a service publishes as allocated, else as its spec asks (published 0 until the
/// allocator has run).
pub fn service_ports(s: &Service) -> Vec<PortConfig> {
    match s.endpoint.as_ref().filter(|e| !e.ports.is_empty()) {
        Some(e) => e.ports.clone(),
        None => s
            .spec
            .as_ref()
            .and_then(|sp| sp.endpoint.as_ref())
            .map(|e| e.ports.clone())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_short_forms() {
        let p = parse_publish("published=8080,target=80,mode=host").expect("valid");
        assert_eq!((p.published_port, p.target_port), (8080, 80));
        assert_eq!(p.publish_mode(), PublishMode::Host);
        let p = parse_publish("53:5353/udp").expect("valid");
        assert_eq!((p.published_port, p.target_port), (53, 5353));
        assert_eq!(p.protocol(), PortProtocol::Udp);
        assert_eq!(p.publish_mode(), PublishMode::Ingress);
        let p = parse_publish("80").expect("valid");
        assert_eq!((p.published_port, p.target_port), (0, 80));
        assert!(!p.keep_source);
        let p = parse_publish("published=8090,target=7090,source=keep").expect("valid");
        assert!(p.keep_source && p.publish_mode() == PublishMode::Ingress);
        for (bad, want) in [
            ("published=8080", "publish: target= is required"),
            ("x:80", "publish: published port \"x\""),
            ("80/sctp", "publish: protocol \"sctp\""),
            ("target=80,mode=vip", "publish: mode \"vip\""),
            ("target=80,source=client", "publish: source \"client\""),
            ("70000:80", "publish: published port \"70000\""),
        ] {
            let e = parse_publish(bad).expect_err(bad).to_string();
            assert!(e.starts_with(want), "{bad}: {e}");
        }
    }

    #[test]
    fn rm_and_add_replace_by_target() {
        let mut e = None;
        apply(&mut e, &["8080:80".into(), "9090:90".into()], &[]).expect("valid");
        apply(&mut e, &["8081:80".into()], &["90".into()]).expect("valid");
        let ports = e.expect("ports").ports;
        assert_eq!(ports.len(), 1);
        assert_eq!(port_text(&ports[0]), "*:8081->80/tcp");
        let mut e = None;
        assert!(apply(&mut e, &[], &["x".into()]).is_err());
    }
}
