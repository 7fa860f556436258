//! Published ports between Docker's `EndpointSpec.Ports` and our `EndpointSpec`: names,
//! protocols and publish modes as Docker spells them. What may be published (host mode only,
//! free ports) is the control API's decision, not this file's.

use crate::error::ApiError;
use crate::types as d;
use swarm_api::{EndpointSpec, PortConfig, PortProtocol, PublishMode};

pub fn to_docker(spec: Option<&EndpointSpec>) -> Vec<d::PortConfig> {
    spec.map(|e| e.ports.iter().map(port_to_docker).collect())
        .unwrap_or_default()
}

pub fn port_to_docker(p: &PortConfig) -> d::PortConfig {
    let protocol = match PortProtocol::try_from(p.protocol) {
        Ok(PortProtocol::Udp) => "udp",
        _ => "tcp",
    };
    let mode = match PublishMode::try_from(p.publish_mode) {
        Ok(PublishMode::Host) => "host",
        _ => "ingress",
    };
    d::PortConfig {
        name: p.name.clone(),
        protocol: protocol.into(),
        target_port: u64::from(p.target_port),
        published_port: u64::from(p.published_port),
        publish_mode: mode.into(),
    }
}

pub fn from_docker(ports: &[d::PortConfig]) -> Result<Option<EndpointSpec>, ApiError> {
    if ports.is_empty() {
        return Ok(None);
    }
    let ports = ports
        .iter()
        .enumerate()
        .map(|(i, v)| port_from_docker(i, v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(EndpointSpec {
        ports,
        ..Default::default()
    }))
}

fn port_from_docker(i: usize, p: &d::PortConfig) -> Result<PortConfig, ApiError> {
    let field = |name: &str| format!("EndpointSpec.Ports[{i}].{name}");
    let num = |name: &str, n: u64| -> Result<u32, ApiError> {
        u32::try_from(n)
            .ok()
            .filter(|n| *n <= 65_535)
            .ok_or_else(|| ApiError::BadRequest(format!("{}: not a port number", field(name))))
    };
    let protocol = match p.protocol.to_ascii_lowercase().as_str() {
        "" | "tcp" => PortProtocol::Tcp,
        "udp" => PortProtocol::Udp,
        other => {
            return Err(ApiError::BadRequest(format!(
                "{}: {other:?} is not supported (tcp or udp)",
                field("Protocol")
            )))
        }
    };
    let mode = match p.publish_mode.to_ascii_lowercase().as_str() {
        "" | "ingress" => PublishMode::Ingress,
        "host" => PublishMode::Host,
        other => {
            return Err(ApiError::BadRequest(format!(
                "{}: {other:?} is not a publish mode (ingress or host)",
                field("PublishMode")
            )))
        }
    };
    let target = num("TargetPort", p.target_port)?;
    if target == 0 {
        return Err(ApiError::BadRequest(format!(
            "{}: required",
            field("TargetPort")
        )));
    }
    Ok(PortConfig {
        name: p.name.clone(),
        protocol: protocol as i32,
        target_port: target,
        published_port: num("PublishedPort", p.published_port)?,
        publish_mode: mode as i32,
        // Docker's API has no word for it: swarmctl's `source=keep` only.
        keep_source: false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn port(v: serde_json::Value) -> d::PortConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ports_round_trip_and_bad_ones_are_named() {
        let docker = vec![
            port(
                serde_json::json!({"Protocol":"tcp","TargetPort":80,"PublishedPort":8080,"PublishMode":"host"}),
            ),
            port(
                serde_json::json!({"Protocol":"udp","TargetPort":53,"PublishMode":"host","Name":"dns"}),
            ),
        ];
        let ours = from_docker(&docker).unwrap().unwrap();
        assert_eq!(ours.ports.len(), 2);
        assert_eq!(ours.ports[0].published_port, 8080);
        assert_eq!(ours.ports[1].protocol, PortProtocol::Udp as i32);
        assert_eq!(to_docker(Some(&ours)), docker);
        assert!(from_docker(&[]).unwrap().is_none());
        let e = from_docker(&[port(serde_json::json!({"TargetPort":80,"Protocol":"sctp"}))])
            .unwrap_err();
        assert!(format!("{e:?}").contains("Ports[0].Protocol"), "{e:?}");
        let e = from_docker(&[port(serde_json::json!({"TargetPort":70000}))]).unwrap_err();
        assert!(format!("{e:?}").contains("TargetPort"), "{e:?}");
    }
}
