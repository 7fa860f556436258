//! Nodes, services and tasks as Docker shows them, and a Docker node spec applied to ours.

use std::collections::HashMap;

use super::*;
use crate::error::ApiError;
use crate::types as d;

fn version(meta: Option<&swarm_api::Meta>) -> d::Version {
    d::Version {
        index: meta.map(|m| m.version).unwrap_or(0),
    }
}

fn created(meta: Option<&swarm_api::Meta>) -> String {
    rfc3339(meta.map(|m| m.created_at).unwrap_or(0))
}

fn updated(meta: Option<&swarm_api::Meta>) -> String {
    rfc3339(meta.map(|m| m.updated_at).unwrap_or(0))
}

/// A node as Docker shows it; `roots_pem` is the cluster's trust root (for its TLS section).
pub fn node_to_docker(n: &swarm_api::Node, roots_pem: &[u8]) -> d::Node {
    let spec = n.spec.clone().unwrap_or_default();
    let ann = spec.annotations.unwrap_or_default();
    let desc = n.description.clone().unwrap_or_default();
    let status = n.status.clone().unwrap_or_default();
    let platform = desc.platform.unwrap_or_default();
    let engine = desc.engine.unwrap_or_default();
    d::Node {
        id: n.id.clone(),
        version: version(n.meta.as_ref()),
        created_at: created(n.meta.as_ref()),
        updated_at: updated(n.meta.as_ref()),
        spec: d::NodeSpec {
            name: ann.name,
            labels: Some(ann.labels.into_iter().collect()),
            role: role_name(spec.desired_role).into(),
            availability: availability_name(spec.availability).into(),
        },
        description: d::NodeDescription {
            hostname: desc.hostname,
            platform: d::Platform {
                architecture: platform.architecture,
                os: platform.os,
            },
            resources: desc
                .resources
                .as_ref()
                .map(super::spec::resources_to_docker)
                .unwrap_or_default(),
            engine: d::Engine {
                engine_version: engine.engine_version,
                labels: engine.labels.into_iter().collect(),
            },
            tls_info: super::tls::tls_info(
                n.certificate
                    .as_ref()
                    .map(|c| c.certificate.as_slice())
                    .unwrap_or_default(),
                roots_pem,
            ),
        },
        status: d::NodeStatus {
            state: node_state_name(status.state).into(),
            message: status.message,
            addr: host_of(&status.addr),
        },
        manager_status: n
            .manager_status
            .as_ref()
            .filter(|_| n.role == swarm_api::NodeRole::Manager as i32)
            .map(|m| d::ManagerStatus {
                leader: m.leader,
                reachability: reachability_name(m.reachability).into(),
                addr: m.addr.clone(),
            }),
    }
}

/// `base` with what a Docker node spec may change: name, labels, role and availability.
/// Membership is not part of Docker's spec and stays as it is.
pub fn node_spec_from_docker(
    base: &swarm_api::NodeSpec,
    s: d::NodeSpec,
) -> Result<swarm_api::NodeSpec, ApiError> {
    let mut out = base.clone();
    let ann = out.annotations.get_or_insert_with(Default::default);
    if !s.name.is_empty() {
        ann.name = s.name;
    }
    ann.labels = s.labels.unwrap_or_default().into_iter().collect();
    if !s.role.is_empty() {
        out.desired_role = role_from_name(&s.role).ok_or_else(|| {
            ApiError::BadRequest(format!("Role: {:?} is not one of worker, manager", s.role))
        })? as i32;
    }
    if !s.availability.is_empty() {
        out.availability = availability_from_name(&s.availability).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Availability: {:?} is not one of active, pause, drain",
                s.availability
            ))
        })? as i32;
    }
    Ok(out)
}

pub fn service_to_docker(s: &swarm_api::Service, status: Option<d::ServiceStatus>) -> d::Service {
    let spec = s
        .spec
        .as_ref()
        .map(super::spec::to_docker)
        .unwrap_or_default();
    let update_status = s.update_status.as_ref().and_then(|u| {
        update_state_name(u.state).map(|state| d::UpdateStatus {
            state: state.into(),
            started_at: (u.started_at != 0).then(|| rfc3339(u.started_at)),
            completed_at: (u.completed_at != 0).then(|| rfc3339(u.completed_at)),
            message: u.message.clone(),
        })
    });
    d::Service {
        id: s.id.clone(),
        version: version(s.meta.as_ref()),
        created_at: created(s.meta.as_ref()),
        updated_at: updated(s.meta.as_ref()),
        endpoint: endpoint_to_docker(s),
        spec,
        previous_spec: s.previous_spec.as_ref().map(super::spec::to_docker),
        update_status,
        service_status: status,
        job_status: is_job(s).then(|| d::JobStatus {
            job_iteration: d::Version {
                index: s.spec_version,
            },
            // The last change of the service is the closest we record to when this run
            // began (a spec change or `--force` starts a run).
            last_execution: updated(s.meta.as_ref()),
        }),
    }
}

/// Whether the service runs to completion (a replicated or global job).
pub fn is_job(s: &swarm_api::Service) -> bool {
    use swarm_api::service_spec::Mode;
    matches!(
        s.spec.as_ref().and_then(|x| x.mode.as_ref()),
        Some(Mode::ReplicatedJob(_)) | Some(Mode::GlobalJob(_))
    )
}

/// The service's endpoint: its spec's mode and ports, the ports the allocator published
/// (which `docker service ls` and `inspect --pretty` show) and its virtual IPs.
fn endpoint_to_docker(s: &swarm_api::Service) -> d::Endpoint {
    let spec = s.spec.as_ref().and_then(|x| x.endpoint.as_ref());
    d::Endpoint {
        spec: d::EndpointSpec {
            mode: super::spec::endpoint_mode_name(spec).into(),
            ports: super::ports::to_docker(spec),
        },
        ports: allocated_ports(s.endpoint.as_ref()),
        virtual_ips: s
            .endpoint
            .iter()
            .flat_map(|e| &e.virtual_ips)
            .map(|v| d::EndpointVirtualIp {
                network_id: v.network_id.clone(),
                addr: v.addr.clone(),
            })
            .collect(),
    }
}

fn allocated_ports(e: Option<&swarm_api::Endpoint>) -> Vec<d::PortConfig> {
    e.map(|e| e.ports.iter().map(super::ports::port_to_docker).collect())
        .unwrap_or_default()
}

/// The cluster's networks by ID, which tasks' attachments are shown with.
pub type NetworksById = HashMap<String, swarm_api::Network>;

pub fn networks_by_id(networks: Vec<swarm_api::Network>) -> NetworksById {
    networks.into_iter().map(|n| (n.id.clone(), n)).collect()
}

/// A task as Docker shows it; `job` says whether its service is a job (its tasks then carry
/// the run they belong to); each of its network attachments embeds its network from
/// `networks`, as Docker's do.
pub fn task_to_docker(t: &swarm_api::Task, job: bool, networks: &NetworksById) -> d::Task {
    let status = t.status.clone().unwrap_or_default();
    let container = (!status.container_id.is_empty() || status.pid != 0 || status.exit_code != 0)
        .then(|| d::ContainerStatus {
            container_id: status.container_id.clone(),
            pid: status.pid,
            exit_code: status.exit_code,
        });
    d::Task {
        id: t.id.clone(),
        version: version(t.meta.as_ref()),
        created_at: created(t.meta.as_ref()),
        updated_at: updated(t.meta.as_ref()),
        labels: Default::default(),
        spec: super::spec::task_to_docker(&t.spec.clone().unwrap_or_default()),
        service_id: t.service_id.clone(),
        // Docker numbers a replicated job's slots from 0 (the CLI's job progress reads them
        // so); ours, like every replicated slot, from 1.
        slot: if job {
            t.slot.saturating_sub(1)
        } else {
            t.slot
        },
        node_id: t.node_id.clone(),
        status: d::TaskStatus {
            timestamp: rfc3339(status.timestamp),
            state: task_state_name(status.state).into(),
            message: status.message,
            err: status.err,
            container_status: container,
            // What the task's node binds: host-mode ports only (the mesh's are every node's,
            // so Docker's `service ps` shows none for them).
            port_status: d::PortStatus {
                ports: allocated_ports(t.endpoint.as_ref())
                    .into_iter()
                    .filter(|p| p.publish_mode == "host")
                    .collect(),
            },
        },
        desired_state: task_state_name(t.desired_state).into(),
        networks_attachments: t
            .networks
            .iter()
            .map(|a| d::NetworkAttachment {
                network: super::networks::to_swarm_docker(
                    &a.network_id,
                    networks.get(&a.network_id),
                ),
                addresses: a.addresses.clone(),
            })
            .collect(),
        job_iteration: job.then_some(d::Version {
            index: t.spec_version,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use swarm_api::{NodeAvailability, NodeRole};

    fn node() -> swarm_api::Node {
        swarm_api::Node {
            id: "n1".into(),
            meta: Some(swarm_api::Meta {
                version: 7,
                created_at: 1_700_000_000_000,
                updated_at: 1_700_000_001_000,
            }),
            spec: Some(swarm_api::NodeSpec {
                annotations: Some(swarm_api::Annotations {
                    name: "m1".into(),
                    labels: Default::default(),
                }),
                desired_role: NodeRole::Manager as i32,
                membership: swarm_api::NodeMembership::Accepted as i32,
                availability: NodeAvailability::Active as i32,
            }),
            status: Some(swarm_api::NodeStatus {
                state: swarm_api::NodeState::Ready as i32,
                message: String::new(),
                addr: "127.0.0.1:4242".into(),
            }),
            manager_status: Some(swarm_api::ManagerStatus {
                raft_id: 1,
                addr: "127.0.0.1:4242".into(),
                leader: true,
                reachability: swarm_api::Reachability::Reachable as i32,
            }),
            role: NodeRole::Manager as i32,
            ..Default::default()
        }
    }

    #[test]
    fn a_manager_node_shows_as_docker_does() {
        let j = serde_json::to_value(node_to_docker(&node(), b"")).unwrap();
        assert_eq!(j["ID"], "n1");
        assert_eq!(j["Version"]["Index"], 7);
        assert_eq!(j["CreatedAt"], "2023-11-14T22:13:20Z");
        assert_eq!(j["Spec"]["Role"], "manager");
        assert_eq!(j["Spec"]["Availability"], "active");
        assert_eq!(j["Status"]["State"], "ready");
        assert_eq!(j["Status"]["Addr"], "127.0.0.1");
        assert_eq!(j["ManagerStatus"]["Leader"], true);
        assert_eq!(j["ManagerStatus"]["Reachability"], "reachable");
    }

    #[test]
    fn a_service_shows_its_virtual_ips_and_endpoint_mode() {
        let s = swarm_api::Service {
            id: "s1".into(),
            spec: Some(swarm_api::ServiceSpec {
                endpoint: Some(swarm_api::EndpointSpec {
                    ports: Vec::new(),
                    mode: swarm_api::EndpointMode::Dnsrr as i32,
                }),
                ..Default::default()
            }),
            endpoint: Some(swarm_api::Endpoint {
                virtual_ips: vec![swarm_api::VirtualIp {
                    network_id: "n1".into(),
                    addr: "10.20.0.2/24".into(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let j = serde_json::to_value(service_to_docker(&s, None)).unwrap();
        assert_eq!(
            j["Endpoint"]["VirtualIPs"],
            serde_json::json!([{"NetworkID": "n1", "Addr": "10.20.0.2/24"}])
        );
        assert_eq!(j["Endpoint"]["Spec"]["Mode"], "dnsrr");
        let plain = swarm_api::Service::default();
        let j = serde_json::to_value(service_to_docker(&plain, None)).unwrap();
        assert_eq!(j["Endpoint"]["Spec"]["Mode"], "vip");
        assert!(j["Endpoint"].get("VirtualIPs").is_none(), "{j}");
    }

    #[test]
    fn a_task_shows_its_network_attachments() {
        let net = swarm_api::Network {
            id: "n1".into(),
            spec: Some(swarm_api::NetworkSpec {
                annotations: Some(swarm_api::Annotations {
                    name: "app".into(),
                    labels: Default::default(),
                }),
                ..Default::default()
            }),
            ipam: Some(swarm_api::IpamConfig {
                subnet: "10.20.0.0/24".into(),
                gateway: "10.20.0.1".into(),
            }),
            vni: 4097,
            ..Default::default()
        };
        let t = swarm_api::Task {
            id: "t1".into(),
            networks: vec![swarm_api::NetworkAttachment {
                network_id: "n1".into(),
                addresses: vec!["10.20.0.3/24".into()],
                aliases: Vec::new(),
            }],
            ..Default::default()
        };
        let j =
            serde_json::to_value(task_to_docker(&t, false, &networks_by_id(vec![net]))).unwrap();
        let a = &j["NetworksAttachments"][0];
        assert_eq!(a["Addresses"], serde_json::json!(["10.20.0.3/24"]));
        assert_eq!(a["Network"]["ID"], "n1");
        assert_eq!(a["Network"]["Spec"]["Name"], "app");
        assert_eq!(
            a["Network"]["IPAMOptions"]["Configs"][0]["Subnet"],
            "10.20.0.0/24"
        );
        let bare = task_to_docker(&swarm_api::Task::default(), false, &NetworksById::new());
        let j = serde_json::to_value(bare).unwrap();
        assert!(j.get("NetworksAttachments").is_none(), "{j}");
    }

    #[test]
    fn a_task_shows_the_ports_its_node_binds_not_the_meshs() {
        let port = |published: u32, mode: swarm_api::PublishMode| swarm_api::PortConfig {
            target_port: 80,
            published_port: published,
            publish_mode: mode as i32,
            ..Default::default()
        };
        let t = swarm_api::Task {
            id: "t1".into(),
            endpoint: Some(swarm_api::Endpoint {
                ports: vec![
                    port(8080, swarm_api::PublishMode::Ingress),
                    port(9090, swarm_api::PublishMode::Host),
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = task_to_docker(&t, false, &NetworksById::new());
        let published: Vec<u64> = got
            .status
            .port_status
            .ports
            .iter()
            .map(|p| p.published_port)
            .collect();
        assert_eq!(published, [9090]);
    }

    #[test]
    fn node_spec_changes_availability_and_keeps_membership() {
        let base = node().spec.unwrap();
        let d: d::NodeSpec = serde_json::from_str(
            r#"{"Labels":{"zone":"a"},"Role":"manager","Availability":"drain"}"#,
        )
        .unwrap();
        let out = node_spec_from_docker(&base, d).unwrap();
        assert_eq!(out.availability, NodeAvailability::Drain as i32);
        assert_eq!(out.membership, base.membership);
        assert_eq!(out.annotations.unwrap().name, "m1");
        let bad: d::NodeSpec = serde_json::from_str(r#"{"Availability":"asleep"}"#).unwrap();
        let err = node_spec_from_docker(&base, bad).unwrap_err();
        assert!(err.to_string().starts_with("Availability:"), "{err}");
    }
}
