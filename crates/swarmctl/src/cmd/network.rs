//! `swarmctl network …`: create, ls, inspect, rm. `inspect` shows what the allocator made of
//! the network (subnet, gateway, VXLAN ID), the services on it with their VIPs, the tasks with
//! their addresses, and per node the tasks attached there and the nodes it exchanges VXLAN
//! traffic with; plus why tasks wait, when they do (a full network).
//!
//! Owns those layouts. Must not change anything but through the Control API.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use clap::Subcommand;
use swarm_api::names::{task_name, Named};
use swarm_api::{
    Annotations, CreateNetworkRequest, IpamConfig, ListNetworksRequest, ListNodesRequest,
    ListServicesRequest, ListTasksRequest, Network, NetworkSpec, Node, RemoveNetworkRequest,
    Service, Task, TaskState,
};

use super::{node_names, out, out_json, Format, FormatArg};
use crate::ago::ago;
use crate::client::{self, Client};
use crate::flags::parse_labels;
use crate::resolve;
use crate::table::{self, LIST, SUMMARY};

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Create an overlay network
    Create {
        /// Name (letters, digits, '-', '_', '.')
        #[arg(long)]
        name: String,
        /// Network driver (only overlay)
        #[arg(long, default_value = swarm_api::defaults::NETWORK_DRIVER)]
        driver: String,
        /// Subnet in CIDR form, e.g. 10.0.9.0/24 [default: the next one of the cluster's pool]
        #[arg(long)]
        subnet: Option<String>,
        /// Gateway address inside the subnet [default: the subnet's first address]
        #[arg(long)]
        gateway: Option<String>,
        /// No route out of the network
        #[arg(long)]
        internal: bool,
        /// Standalone containers may join it too
        #[arg(long)]
        attachable: bool,
        /// Label key=value (repeatable)
        #[arg(long = "label", short = 'l', value_name = "KEY=VALUE")]
        labels: Vec<String>,
    },
    /// List networks
    #[command(visible_alias = "list")]
    Ls {
        /// Only IDs
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show a network, what is attached to it and each node's part
    Inspect {
        /// Name, ID or ID prefix
        network: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Remove networks (refused while a service or task uses one)
    #[command(visible_alias = "remove")]
    Rm {
        /// Names, IDs or ID prefixes
        #[arg(required = true)]
        networks: Vec<String>,
    },
}

/// Every network, sorted by name.
pub async fn list(c: &mut Client) -> Result<Vec<Network>> {
    let mut v = c
        .list_networks(ListNetworksRequest {})
        .await?
        .into_inner()
        .networks;
    v.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(v)
}

fn pick<'a>(arg: &str, networks: &'a [Network]) -> Result<&'a Network> {
    resolve::pick("network", arg, networks, |n| &n.id, |n| vec![n.name()])
}

/// Network ID → name, for the commands that show a task's or service's networks.
pub fn names(networks: &[Network]) -> HashMap<String, String> {
    networks
        .iter()
        .map(|n| (n.id.clone(), n.name().to_string()))
        .collect()
}

/// The subnet and gateway as allocated, else as asked, else "".
fn ipam(n: &Network) -> IpamConfig {
    n.ipam
        .clone()
        .or_else(|| n.spec.as_ref().and_then(|s| s.ipam.clone()))
        .unwrap_or_default()
}

fn spec(n: &Network) -> NetworkSpec {
    n.spec.clone().unwrap_or_default()
}

impl NetworkCmd {
    pub async fn run(self, socket: &Path) -> Result<()> {
        match self {
            NetworkCmd::Create {
                name,
                driver,
                subnet,
                gateway,
                internal,
                attachable,
                labels,
            } => {
                let annotations = Annotations {
                    name,
                    labels: parse_labels(&labels)?,
                };
                let spec = NetworkSpec {
                    annotations: Some(annotations),
                    driver,
                    ipam: Some(IpamConfig {
                        subnet: subnet.unwrap_or_default(),
                        gateway: gateway.unwrap_or_default(),
                    }),
                    internal,
                    attachable,
                    ingress: false,
                };
                let mut c = client::connect(socket).await?;
                let created = c
                    .create_network(CreateNetworkRequest { spec: Some(spec) })
                    .await?
                    .into_inner()
                    .network;
                out(&format!("{}\n", created.map(|n| n.id).unwrap_or_default()))
            }
            NetworkCmd::Ls { quiet, format } => {
                let mut c = client::connect(socket).await?;
                let networks = list(&mut c).await?;
                if format.format == Format::Json {
                    return out_json(&networks);
                }
                if quiet {
                    return out(&networks
                        .iter()
                        .map(|n| format!("{}\n", n.id))
                        .collect::<String>());
                }
                let services = c
                    .list_services(ListServicesRequest {})
                    .await?
                    .into_inner()
                    .services;
                out(&render_ls(&networks, &services))
            }
            NetworkCmd::Inspect { network, format } => {
                let mut c = client::connect(socket).await?;
                let networks = list(&mut c).await?;
                let n = pick(&network, &networks)?;
                if format.format == Format::Json {
                    return out_json(n);
                }
                let services = c
                    .list_services(ListServicesRequest {})
                    .await?
                    .into_inner()
                    .services;
                let tasks = c
                    .list_tasks(ListTasksRequest::default())
                    .await?
                    .into_inner()
                    .tasks;
                let nodes = c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes;
                out(&render_inspect(
                    n,
                    &services,
                    &tasks,
                    &nodes,
                    swarm_api::now_ms(),
                ))
            }
            NetworkCmd::Rm { networks } => {
                let mut c = client::connect(socket).await?;
                for arg in networks {
                    let all = list(&mut c).await?;
                    let n = pick(&arg, &all)?;
                    c.remove_network(RemoveNetworkRequest {
                        network_id: n.id.clone(),
                    })
                    .await?;
                    out(&format!("{arg}\n"))?;
                }
                Ok(())
            }
        }
    }
}

/// Services whose spec attaches them to `n`.
fn services_on<'a>(n: &Network, services: &'a [Service]) -> Vec<&'a Service> {
    services
        .iter()
        .filter(|s| {
            s.spec
                .as_ref()
                .and_then(|sp| sp.task.as_ref())
                .is_some_and(|t| t.networks.iter().any(|a| a.target == n.id))
        })
        .collect()
}

/// `network ls`: one row per network.
pub fn render_ls(networks: &[Network], services: &[Service]) -> String {
    let rows: Vec<Vec<String>> = networks
        .iter()
        .map(|n| {
            let s = spec(n);
            let mut flags = Vec::new();
            if s.ingress {
                flags.push("ingress");
            }
            if s.internal {
                flags.push("internal");
            }
            if s.attachable {
                flags.push("attachable");
            }
            vec![
                n.id.clone(),
                n.name().to_string(),
                s.driver.clone(),
                ipam(n).subnet,
                services_on(n, services).len().to_string(),
                flags.join(","),
            ]
        })
        .collect();
    table::table(
        LIST,
        &["ID", "Name", "Driver", "Subnet", "Services", "Options"],
        &rows,
    )
}

/// The address a task holds on `network_id`, if any.
fn task_address<'a>(t: &'a Task, network_id: &str) -> Option<&'a str> {
    t.networks
        .iter()
        .find(|a| a.network_id == network_id)
        .and_then(|a| a.addresses.first())
        .map(String::as_str)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `network inspect`: the settings, then services, tasks and nodes.
pub fn render_inspect(
    n: &Network,
    services: &[Service],
    tasks: &[Task],
    nodes: &[Node],
    now_ms: i64,
) -> String {
    let s = spec(n);
    let ip = ipam(n);
    let allocated = n.ipam.is_some();
    let mut w = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(w, "ID\t: {}", n.id);
    let _ = writeln!(w, "Name\t: {}", n.name());
    if let Some(m) = n.meta.as_ref().filter(|m| m.created_at != 0) {
        let _ = writeln!(w, "Created\t: {}", ago(now_ms, m.created_at));
    }
    let _ = writeln!(w, "Driver\t: {}", s.driver);
    let pending = if allocated {
        ""
    } else {
        " (not allocated yet)"
    };
    let _ = writeln!(w, "Subnet\t: {}{pending}", ip.subnet);
    let _ = writeln!(w, "Gateway\t: {}", ip.gateway);
    if n.vni != 0 {
        let _ = writeln!(w, "VXLAN ID\t: {}", n.vni);
    }
    let _ = writeln!(w, "Internal\t: {}", yes_no(s.internal));
    let _ = writeln!(w, "Attachable\t: {}", yes_no(s.attachable));
    if s.ingress {
        let _ = writeln!(w, "Ingress\t: yes");
    }
    let labels: BTreeMap<_, _> = s
        .annotations
        .as_ref()
        .map(|a| a.labels.iter().collect())
        .unwrap_or_default();
    if !labels.is_empty() {
        let _ = writeln!(w, "Labels\t:");
        for (k, v) in labels {
            let _ = writeln!(w, "  {k}\t: {v}");
        }
    }
    let on = services_on(n, services);
    if !on.is_empty() {
        let _ = writeln!(w, "Services\t:");
        for svc in &on {
            let vip = svc
                .endpoint
                .iter()
                .flat_map(|e| &e.virtual_ips)
                .find(|v| v.network_id == n.id)
                .map(|v| format!("VIP {}", v.addr))
                .unwrap_or_else(|| "no VIP".into());
            let _ = writeln!(w, "  {}\t: {vip}", svc.name());
        }
    }
    // Tasks waiting for an address on this network say why.
    let waiting: Vec<&Task> = tasks
        .iter()
        .filter(|t| {
            swarm_api::state::observed(t) == TaskState::New
                && t.spec
                    .as_ref()
                    .is_some_and(|sp| sp.networks.iter().any(|a| a.target == n.id))
        })
        .collect();
    if let Some(t) = waiting.first() {
        let why = t.status.as_ref().map(|s| s.message.as_str()).unwrap_or("");
        let _ = writeln!(w, "Waiting Tasks\t: {} ({why})", waiting.len());
    }
    let mut text = table::render(SUMMARY, &w);
    let attached: Vec<&Task> = tasks
        .iter()
        .filter(|t| {
            swarm_api::state::observed(t) <= TaskState::Running && task_address(t, &n.id).is_some()
        })
        .collect();
    if attached.is_empty() {
        return text;
    }
    let node_names = node_names(nodes);
    let node_of = |t: &Task| match node_names.get(&t.node_id) {
        Some(name) if !name.is_empty() => name.clone(),
        _ if t.node_id.is_empty() => "(unassigned)".to_string(),
        _ => t.node_id.clone(),
    };
    let mut rows: Vec<Vec<String>> = attached
        .iter()
        .map(|t| {
            vec![
                task_name(t),
                task_address(t, &n.id).unwrap_or("").to_string(),
                node_of(t),
                swarm_api::state::task_state_name(swarm_api::state::observed(t)).to_string(),
            ]
        })
        .collect();
    rows.sort();
    text.push('\n');
    text.push_str(&table::table(
        LIST,
        &["Task", "Address", "Node", "State"],
        &rows,
    ));
    // Each node's part: its attached tasks, and the nodes its VXLAN traffic goes to (every
    // other node with a task on the network).
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for t in attached.iter().filter(|t| !t.node_id.is_empty()) {
        *per_node.entry(node_of(t)).or_default() += 1;
    }
    let all: BTreeSet<&String> = per_node.keys().collect();
    let node_rows: Vec<Vec<String>> = per_node
        .iter()
        .map(|(node, count)| {
            let peers: Vec<&str> = all
                .iter()
                .filter(|p| **p != node)
                .map(|p| p.as_str())
                .collect();
            vec![node.clone(), count.to_string(), peers.join(",")]
        })
        .collect();
    if !node_rows.is_empty() {
        text.push('\n');
        text.push_str(&table::table(
            LIST,
            &["Node", "Tasks", "VXLAN Peers"],
            &node_rows,
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_api::{
        Endpoint, NetworkAttachment, NetworkAttachmentConfig, ServiceSpec, TaskSpec, TaskStatus,
        VirtualIp,
    };

    fn net() -> Network {
        Network {
            id: "n1".into(),
            spec: Some(NetworkSpec {
                annotations: Some(Annotations {
                    name: "app".into(),
                    ..Default::default()
                }),
                driver: "overlay".into(),
                ..Default::default()
            }),
            ipam: Some(IpamConfig {
                subnet: "10.0.1.0/24".into(),
                gateway: "10.0.1.1".into(),
            }),
            vni: 4097,
            ..Default::default()
        }
    }

    fn attached_spec() -> TaskSpec {
        TaskSpec {
            networks: vec![NetworkAttachmentConfig {
                target: "n1".into(),
                aliases: vec![],
            }],
            ..Default::default()
        }
    }

    fn task(id: &str, node: &str, addr: &str, state: TaskState) -> Task {
        Task {
            id: id.into(),
            node_id: node.into(),
            slot: 1,
            service_name: "api".into(),
            spec: Some(attached_spec().into()),
            status: Some(TaskStatus {
                state: state as i32,
                message: "no address left in network app (10.0.1.0/24)".into(),
                ..Default::default()
            }),
            networks: if addr.is_empty() {
                vec![]
            } else {
                vec![NetworkAttachment {
                    network_id: "n1".into(),
                    addresses: vec![addr.into()],
                    aliases: vec![],
                }]
            },
            ..Default::default()
        }
    }

    fn node(id: &str) -> Node {
        Node {
            id: id.into(),
            spec: Some(swarm_api::NodeSpec {
                annotations: Some(Annotations {
                    name: format!("host-{id}"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn inspect_shows_vips_addresses_nodes_and_why_tasks_wait() {
        let svc = Service {
            id: "s1".into(),
            spec: Some(ServiceSpec {
                annotations: Some(Annotations {
                    name: "api".into(),
                    ..Default::default()
                }),
                task: Some(attached_spec().into()),
                ..Default::default()
            }),
            endpoint: Some(Endpoint {
                virtual_ips: vec![VirtualIp {
                    network_id: "n1".into(),
                    addr: "10.0.1.2/24".into(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let tasks = [
            task("t1", "a", "10.0.1.3/24", TaskState::Running),
            task("t2", "b", "10.0.1.4/24", TaskState::Running),
            task("t3", "", "", TaskState::New),
            // Stopped: its address is free again, not shown.
            task("t4", "b", "10.0.1.9/24", TaskState::Failed),
        ];
        let out = render_inspect(&net(), &[svc], &tasks, &[node("a"), node("b")], 0);
        // Each line with its runs of spaces squashed: the alignment is the table's business.
        let lines: Vec<String> = out
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let has = |want: &str| lines.iter().any(|l| l == want);
        assert!(has("Subnet : 10.0.1.0/24"), "{out}");
        assert!(has("VXLAN ID : 4097"), "{out}");
        assert!(has("api : VIP 10.0.1.2/24"), "{out}");
        assert!(
            has("Waiting Tasks : 1 (no address left in network app (10.0.1.0/24))"),
            "{out}"
        );
        assert!(has("api.1 10.0.1.3/24 host-a RUNNING"), "{out}");
        assert!(
            !out.contains("10.0.1.9/24"),
            "a stopped task's address is free: {out}"
        );
        // Each node names the other as its VXLAN peer.
        assert!(has("host-a 1 host-b") && has("host-b 1 host-a"), "{out}");
    }
}
