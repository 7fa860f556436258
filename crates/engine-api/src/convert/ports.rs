//! Published ports between Docker's `EndpointSpec.Ports` JSON and our `EndpointSpec`: names,
//! protocols and publish modes as Docker spells them. What may be published (host mode only,
//! free ports) is the control API's decision, not this file's.

use crate::error::ApiError;
use serde_json::{json, Value};
use swarm_api::{EndpointSpec, PortConfig, PortProtocol, PublishMode};

pub fn to_docker(spec: Option<&EndpointSpec>) -> Vec<Value> {
    spec.map(|e| e.ports.iter().map(port_to_docker).collect())
        .unwrap_or_default()
}

fn port_to_docker(p: &PortConfig) -> Value {
    let protocol = match PortProtocol::try_from(p.protocol) {
        Ok(PortProtocol::Udp) => "udp",
        _ => "tcp",
    };
    let mode = match PublishMode::try_from(p.publish_mode) {
        Ok(PublishMode::Host) => "host",
        _ => "ingress",
    };
    let mut v = json!({
        "Protocol": protocol,
        "TargetPort": p.target_port,
        "PublishMode": mode,
    });
    if p.published_port > 0 {
        v["PublishedPort"] = json!(p.published_port);
    }
    if !p.name.is_empty() {
        v["Name"] = json!(p.name);
    }
    v
}

pub fn from_docker(ports: &[Value]) -> Result<Option<EndpointSpec>, ApiError> {
    if ports.is_empty() {
        return Ok(None);
    }
    let ports = ports
        .iter()
        .enumerate()
        .map(|(i, v)| port_from_docker(i, v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(EndpointSpec { ports }))
}

fn port_from_docker(i: usize, v: &Value) -> Result<PortConfig, ApiError> {
    let field = |name: &str| format!("EndpointSpec.Ports[{i}].{name}");
    let num = |name: &str| -> Result<u32, ApiError> {
        match v.get(name) {
            None | Some(Value::Null) => Ok(0),
            Some(n) => n
                .as_u64()
                .filter(|n| *n <= 65_535)
                .map(|n| n as u32)
                .ok_or_else(|| ApiError::BadRequest(format!("{}: not a port number", field(name)))),
        }
    };
    let text = |name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let protocol = match text("Protocol").as_str() {
        "" | "tcp" => PortProtocol::Tcp,
        "udp" => PortProtocol::Udp,
        other => {
            return Err(ApiError::BadRequest(format!(
                "{}: {other:?} is not supported (tcp or udp)",
                field("Protocol")
            )))
        }
    };
    let mode = match text("PublishMode").as_str() {
        "" | "ingress" => PublishMode::Ingress,
        "host" => PublishMode::Host,
        other => {
            return Err(ApiError::BadRequest(format!(
                "{}: {other:?} is not a publish mode (ingress or host)",
                field("PublishMode")
            )))
        }
    };
    let target = num("TargetPort")?;
    if target == 0 {
        return Err(ApiError::BadRequest(format!(
            "{}: required",
            field("TargetPort")
        )));
    }
    Ok(PortConfig {
        name: v
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        protocol: protocol as i32,
        target_port: target,
        published_port: num("PublishedPort")?,
        publish_mode: mode as i32,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ports_round_trip_and_bad_ones_are_named() {
        let docker = vec![
            json!({"Protocol":"tcp","TargetPort":80,"PublishedPort":8080,"PublishMode":"host"}),
            json!({"Protocol":"udp","TargetPort":53,"PublishMode":"host","Name":"dns"}),
        ];
        let ours = from_docker(&docker).unwrap().unwrap();
        assert_eq!(ours.ports.len(), 2);
        assert_eq!(ours.ports[0].published_port, 8080);
        assert_eq!(ours.ports[1].protocol, PortProtocol::Udp as i32);
        assert_eq!(to_docker(Some(&ours)), docker);
        assert!(from_docker(&[]).unwrap().is_none());
        let e = from_docker(&[json!({"TargetPort":80,"Protocol":"sctp"})]).unwrap_err();
        assert!(format!("{e:?}").contains("Ports[0].Protocol"), "{e:?}");
        let e = from_docker(&[json!({"TargetPort":70000})]).unwrap_err();
        assert!(format!("{e:?}").contains("TargetPort"), "{e:?}");
    }
}
