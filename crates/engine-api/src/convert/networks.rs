//! Networks between our objects and Docker's shapes: a network as `/networks` shows it, as a
//! task's attachment embeds it (Docker's swarm object), and a `NetworkCreateRequest` turned
//! into our spec. What Docker's request can ask and this swarm cannot honour (other drivers,
//! IPv6, IP ranges, several subnets, driver options) is refused here, naming the field; what
//! the spec's values may be (subnet overlaps, gateway placement) is the control API's call.

use super::rfc3339;
use crate::error::ApiError;
use crate::types as d;
use swarm_api::{Annotations, IpamConfig, Network, NetworkSpec};

/// The key Docker's overlay driver reports a network's VXLAN ID under.
pub const VXLAN_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";
/// Docker's IPAM driver name, the only address management there is here.
const IPAM_DRIVER: &str = "default";
/// The scope of every network here.
pub const SCOPE: &str = "swarm";

fn bad(msg: String) -> ApiError {
    ApiError::BadRequest(msg)
}

pub fn name(n: &Network) -> &str {
    swarm_api::names::Named::name(n)
}

pub fn driver(n: &Network) -> &str {
    match n.spec.as_ref().map(|s| s.driver.as_str()) {
        None | Some("") => swarm_api::defaults::NETWORK_DRIVER,
        Some(d) => d,
    }
}

pub fn labels(n: &Network) -> d::Labels {
    n.spec
        .as_ref()
        .and_then(|s| s.annotations.as_ref())
        .map(|a| a.labels.clone().into_iter().collect())
        .unwrap_or_default()
}

/// The network's subnet and gateway: as allocated, else as its spec asks (empty parts left
/// out), else none.
fn ipam_config(n: &Network) -> Option<IpamConfig> {
    let set = |c: &&IpamConfig| !c.subnet.is_empty() || !c.gateway.is_empty();
    n.ipam
        .as_ref()
        .filter(set)
        .or_else(|| n.spec.as_ref().and_then(|s| s.ipam.as_ref()).filter(set))
        .cloned()
}

/// The driver's state as Docker reports it: the VXLAN ID, once allocated.
fn driver_options(n: &Network) -> d::Labels {
    let mut out = d::Labels::new();
    if n.vni != 0 {
        out.insert(VXLAN_OPTION.to_string(), n.vni.to_string());
    }
    out
}

/// A network as `GET /networks` and `GET /networks/{id}` show it.
pub fn to_docker(n: &Network) -> d::Network {
    let spec = n.spec.clone().unwrap_or_default();
    d::Network {
        name: name(n).to_string(),
        id: n.id.clone(),
        created: rfc3339(n.meta.as_ref().map(|m| m.created_at).unwrap_or(0)),
        scope: SCOPE.into(),
        driver: driver(n).into(),
        enable_ipv6: false,
        ipam: d::Ipam {
            driver: IPAM_DRIVER.into(),
            options: None,
            config: ipam_config(n)
                .map(|c| d::IpamConfig {
                    subnet: c.subnet,
                    gateway: c.gateway,
                })
                .into_iter()
                .collect(),
        },
        internal: spec.internal,
        attachable: spec.attachable,
        ingress: spec.ingress,
        config_from: d::ConfigReference::default(),
        config_only: false,
        containers: Default::default(),
        options: driver_options(n),
        labels: labels(n),
    }
}

fn ipam_options(c: Option<&IpamConfig>) -> Option<d::IpamOptions> {
    let c = c?;
    Some(d::IpamOptions {
        driver: d::Driver {
            name: IPAM_DRIVER.into(),
            options: Default::default(),
        },
        configs: (!c.subnet.is_empty() || !c.gateway.is_empty())
            .then(|| d::SwarmIpamConfig {
                subnet: c.subnet.clone(),
                gateway: c.gateway.clone(),
            })
            .into_iter()
            .collect(),
    })
}

/// The network as Docker's swarm object, which a task's `NetworksAttachments` embed; only
/// the ID is known of one removed since (`n` is None then).
pub fn to_swarm_docker(id: &str, n: Option<&Network>) -> d::SwarmNetwork {
    let Some(n) = n else {
        return d::SwarmNetwork {
            id: id.to_string(),
            version: d::Version::default(),
            created_at: rfc3339(0),
            updated_at: rfc3339(0),
            spec: d::SwarmNetworkSpec {
                scope: SCOPE.into(),
                ..Default::default()
            },
            driver_state: d::Driver::default(),
            ipam_options: None,
        };
    };
    let spec = n.spec.clone().unwrap_or_default();
    let meta = n.meta.unwrap_or_default();
    d::SwarmNetwork {
        id: n.id.clone(),
        version: d::Version {
            index: meta.version,
        },
        created_at: rfc3339(meta.created_at),
        updated_at: rfc3339(meta.updated_at),
        spec: d::SwarmNetworkSpec {
            name: name(n).to_string(),
            labels: labels(n),
            driver_configuration: Some(d::Driver {
                name: driver(n).into(),
                options: Default::default(),
            }),
            internal: spec.internal,
            attachable: spec.attachable,
            ingress: spec.ingress,
            ipam_options: ipam_options(spec.ipam.as_ref()),
            scope: SCOPE.into(),
        },
        driver_state: d::Driver {
            name: driver(n).into(),
            options: driver_options(n),
        },
        ipam_options: ipam_options(n.ipam.as_ref()),
    }
}

/// A key of a map the request set, if any: options this swarm has none of.
fn first_key(m: Option<&d::Labels>) -> Option<&str> {
    m.and_then(|m| m.keys().next()).map(String::as_str)
}

/// Our spec for Docker's create request; anything it cannot honour is a 400 naming the field.
pub fn spec_from_docker(r: d::NetworkCreateRequest) -> Result<NetworkSpec, ApiError> {
    let overlay = swarm_api::defaults::NETWORK_DRIVER;
    if !r.driver.is_empty() && r.driver != overlay {
        return Err(bad(format!(
            "Driver: {:?} is not supported: this swarm has {overlay} networks only",
            r.driver
        )));
    }
    if !matches!(r.scope.as_str(), "" | SCOPE) {
        return Err(bad(format!(
            "Scope: {:?} is not supported: {overlay} networks are swarm-scoped",
            r.scope
        )));
    }
    if r.enable_ipv6 == Some(true) {
        return Err(bad("EnableIPv6: IPv6 networks are not supported".into()));
    }
    if r.enable_ipv4 == Some(false) {
        return Err(bad(
            "EnableIPv4: a network without IPv4 is not supported".into()
        ));
    }
    if r.config_only {
        return Err(bad(
            "ConfigOnly: configuration-only networks are not supported".into(),
        ));
    }
    if r.config_from
        .as_ref()
        .is_some_and(|c| !c.network.is_empty())
    {
        return Err(bad(
            "ConfigFrom: networks made from another's configuration are not supported".into(),
        ));
    }
    if let Some(k) = first_key(r.options.as_ref()) {
        return Err(bad(format!(
            "Options: {k:?} is not supported: the {overlay} driver takes no options here"
        )));
    }
    let ipam = match r.ipam {
        None => None,
        Some(i) => ipam_from_docker(i)?,
    };
    Ok(NetworkSpec {
        annotations: Some(Annotations {
            name: r.name,
            labels: r.labels.unwrap_or_default().into_iter().collect(),
        }),
        driver: overlay.to_string(),
        ipam,
        internal: r.internal,
        attachable: r.attachable,
        ingress: r.ingress,
    })
}

fn ipam_from_docker(i: d::IpamRequest) -> Result<Option<IpamConfig>, ApiError> {
    if !matches!(i.driver.as_str(), "" | IPAM_DRIVER) {
        return Err(bad(format!(
            "IPAM.Driver: {:?} is not supported: only {IPAM_DRIVER}",
            i.driver
        )));
    }
    if let Some(k) = first_key(i.options.as_ref()) {
        return Err(bad(format!(
            "IPAM.Options: {k:?} is not supported: the {IPAM_DRIVER} driver takes no options here"
        )));
    }
    let mut configs = i.config.unwrap_or_default();
    if configs.len() > 1 {
        return Err(bad(format!(
            "IPAM.Config: {} subnets given; a network has one here",
            configs.len()
        )));
    }
    let Some(c) = configs.pop() else {
        return Ok(None);
    };
    if !c.ip_range.is_empty() {
        return Err(bad(format!(
            "IPAM.Config[0].IPRange: {:?} is not supported: addresses come from the whole subnet",
            c.ip_range
        )));
    }
    if let Some(k) = first_key(c.aux_addresses.as_ref()) {
        return Err(bad(format!(
            "IPAM.Config[0].AuxiliaryAddresses: {k:?} is not supported"
        )));
    }
    Ok(Some(IpamConfig {
        subnet: c.subnet,
        gateway: c.gateway,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(json: &str) -> d::NetworkCreateRequest {
        crate::gojson::from_slice(json.as_bytes()).unwrap()
    }

    fn network() -> Network {
        Network {
            id: "n1".into(),
            meta: Some(swarm_api::Meta {
                version: 3,
                created_at: 1_700_000_000_000,
                updated_at: 1_700_000_001_000,
            }),
            spec: Some(NetworkSpec {
                annotations: Some(Annotations {
                    name: "app".into(),
                    labels: [("tier".to_string(), "back".to_string())].into(),
                }),
                driver: "overlay".into(),
                ipam: Some(IpamConfig {
                    subnet: "10.20.0.0/24".into(),
                    gateway: String::new(),
                }),
                internal: true,
                attachable: false,
                ingress: false,
            }),
            ipam: Some(IpamConfig {
                subnet: "10.20.0.0/24".into(),
                gateway: "10.20.0.1".into(),
            }),
            vni: 4097,
        }
    }

    #[test]
    fn the_cli_create_body_maps_to_our_spec() {
        // What `docker network create -d overlay --subnet 10.20.0.0/24 --label tier=back
        // --internal app` sends.
        let r = request(
            r#"{"Name":"app","CheckDuplicate":true,"Driver":"overlay","Scope":"","EnableIPv6":false,
            "IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.20.0.0/24","AuxiliaryAddresses":{}}]},
            "Internal":true,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,
            "Options":{},"Labels":{"tier":"back"}}"#,
        );
        let spec = spec_from_docker(r).unwrap();
        assert_eq!(spec, network().spec.unwrap());
        // No IPAM and no driver: an overlay network with its subnet from the pool.
        let spec = spec_from_docker(request(r#"{"Name":"x"}"#)).unwrap();
        assert_eq!((spec.driver.as_str(), spec.ipam), ("overlay", None));
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_field() {
        let cases = [
            (r#"{"Name":"x","Driver":"bridge"}"#, "Driver: \"bridge\""),
            (r#"{"Name":"x","Scope":"local"}"#, "Scope:"),
            (r#"{"Name":"x","EnableIPv6":true}"#, "EnableIPv6:"),
            (r#"{"Name":"x","EnableIPv4":false}"#, "EnableIPv4:"),
            (r#"{"Name":"x","ConfigOnly":true}"#, "ConfigOnly:"),
            (
                r#"{"Name":"x","ConfigFrom":{"Network":"cfg"}}"#,
                "ConfigFrom:",
            ),
            (
                r#"{"Name":"x","Options":{"encrypted":""}}"#,
                "Options: \"encrypted\"",
            ),
            (r#"{"Name":"x","IPAM":{"Driver":"dhcp"}}"#, "IPAM.Driver:"),
            (
                r#"{"Name":"x","IPAM":{"Options":{"a":"b"}}}"#,
                "IPAM.Options:",
            ),
            (
                r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"10.1.0.0/24"},{"Subnet":"10.2.0.0/24"}]}}"#,
                "IPAM.Config: 2 subnets",
            ),
            (
                r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"10.1.0.0/16","IPRange":"10.1.1.0/24"}]}}"#,
                "IPAM.Config[0].IPRange:",
            ),
            (
                r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"10.1.0.0/16","AuxiliaryAddresses":{"h":"10.1.0.9"}}]}}"#,
                "IPAM.Config[0].AuxiliaryAddresses:",
            ),
        ];
        for (body, field) in cases {
            let e = spec_from_docker(request(body)).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{body}");
            assert!(e.to_string().starts_with(field), "{body}: {e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn a_network_shows_as_docker_does() {
        let j = serde_json::to_value(to_docker(&network())).unwrap();
        assert_eq!(j["Name"], "app");
        assert_eq!(j["Id"], "n1");
        assert_eq!(j["Created"], "2023-11-14T22:13:20Z");
        assert_eq!(j["Scope"], "swarm");
        assert_eq!(j["Driver"], "overlay");
        assert_eq!(j["EnableIPv6"], false);
        // The allocated IPAM, gateway included, not the spec's.
        assert_eq!(
            j["IPAM"],
            serde_json::json!({"Driver": "default", "Options": null,
                "Config": [{"Subnet": "10.20.0.0/24", "Gateway": "10.20.0.1"}]})
        );
        assert_eq!(j["Internal"], true);
        assert_eq!(j["ConfigFrom"], serde_json::json!({"Network": ""}));
        assert_eq!(j["Containers"], serde_json::json!({}));
        assert_eq!(j["Options"][VXLAN_OPTION], "4097");
        assert_eq!(j["Labels"]["tier"], "back");

        // Before the allocator has seen it: the spec's subnet, no VXLAN ID.
        let fresh = Network {
            ipam: None,
            vni: 0,
            ..network()
        };
        let j = serde_json::to_value(to_docker(&fresh)).unwrap();
        assert_eq!(
            j["IPAM"]["Config"],
            serde_json::json!([{"Subnet": "10.20.0.0/24"}])
        );
        assert_eq!(j["Options"], serde_json::json!({}));
    }

    #[test]
    fn a_task_attachment_embeds_the_swarm_object() {
        let j = serde_json::to_value(to_swarm_docker("n1", Some(&network()))).unwrap();
        assert_eq!(j["ID"], "n1");
        assert_eq!(j["Version"]["Index"], 3);
        assert_eq!(j["Spec"]["Name"], "app");
        assert_eq!(j["Spec"]["Scope"], "swarm");
        assert_eq!(j["Spec"]["Internal"], true);
        assert_eq!(j["Spec"]["DriverConfiguration"]["Name"], "overlay");
        assert_eq!(j["DriverState"]["Options"][VXLAN_OPTION], "4097");
        assert_eq!(
            j["IPAMOptions"]["Configs"],
            serde_json::json!([{"Subnet": "10.20.0.0/24", "Gateway": "10.20.0.1"}])
        );
        let gone = serde_json::to_value(to_swarm_docker("n9", None)).unwrap();
        assert_eq!(gone["ID"], "n9");
    }
}
