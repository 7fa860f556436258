//! One agent's network view: for each network its tasks are attached to, the network, the
//! peers its VXLAN traffic goes to, and the DNS records its tasks may resolve. Sent whole on
//! connect and again whenever it changes (checked after each store change that the fan-out
//! says may change a view, debounced); it reads the store, never writes.
//!
//! A task is in the records only while it is RUNNING on a READY node and meant to run, so a
//! task that stops, is told to stop, or whose node goes DOWN leaves the view at the next pass.

use crate::allocator_networks::holds_addresses as holds;
use crate::allocator_networks::{ingress_id, mesh_in_use, publishes_ingress};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use swarm_api::names::Named;
use swarm_api::*;
use swarm_store::{Store, Tables};
use tokio_util::sync::CancellationToken;

/// How long a burst of store changes is let settle before the view is read again.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// True while `task` should be found by name: running, meant to, on a node that is up.
fn resolvable(t: &Tables, task: &Task) -> bool {
    state::observed(task) == TaskState::Running
        && task.desired_state <= TaskState::Running as i32
        && t.nodes
            .get(&task.node_id)
            .and_then(|n| n.status.as_ref())
            .is_some_and(|s| s.state == NodeState::Ready as i32)
}

fn bare(addr: &str) -> String {
    addr.split('/').next().unwrap_or(addr).to_string()
}

fn address_on(task: &Task, network_id: &str) -> Option<String> {
    task.networks
        .iter()
        .find(|a| a.network_id == network_id)
        .and_then(|a| a.addresses.first())
        .map(|a| bare(a))
}

/// The DNS records of one network (every service on it, by name and aliases, and its
/// tasks) and its services' VIPs with their backends.
fn records(t: &Tables, network_id: &str) -> (Vec<DnsRecord>, Vec<VipBackends>) {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut vips = Vec::new();
    for s in t.services.iter() {
        let Some(cfg) = s
            .spec
            .as_ref()
            .and_then(|sp| sp.task.as_ref())
            .and_then(|ts| ts.networks.iter().find(|n| n.target == network_id))
        else {
            continue;
        };
        let running: Vec<(&Task, String)> = t
            .tasks_of_service(&s.id)
            .filter(|x| resolvable(t, x))
            .filter_map(|x| Some((x, address_on(x, network_id)?)))
            .collect();
        let vip = s
            .endpoint
            .iter()
            .flat_map(|e| &e.virtual_ips)
            .find(|v| v.network_id == network_id)
            .map(|v| bare(&v.addr));
        let dnsrr = s
            .spec
            .as_ref()
            .and_then(|sp| sp.endpoint.as_ref())
            .is_some_and(|e| e.mode == EndpointMode::Dnsrr as i32);
        let backends: BTreeSet<String> = running.iter().map(|(_, a)| a.clone()).collect();
        let service_addrs: BTreeSet<String> = match (vip, dnsrr) {
            (Some(v), false) => {
                vips.push(VipBackends {
                    vip: v.clone(),
                    backends: backends.iter().cloned().collect(),
                });
                BTreeSet::from([v])
            }
            _ => backends,
        };
        for name in std::iter::once(s.name()).chain(cfg.aliases.iter().map(String::as_str)) {
            if !name.is_empty() {
                out.entry(name.to_string())
                    .or_default()
                    .extend(service_addrs.iter().cloned());
            }
        }
        let tasks = out.entry(format!("tasks.{}", s.name())).or_default();
        tasks.extend(running.iter().map(|(_, a)| a.clone()));
        for (x, a) in &running {
            let name = x.name();
            if !name.is_empty() {
                out.entry(name.to_string()).or_default().insert(a.clone());
                out.entry(format!("{name}.{}", x.id))
                    .or_default()
                    .insert(a.clone());
            }
        }
    }
    let records = out
        .into_iter()
        .map(|(name, addrs)| DnsRecord {
            name,
            addresses: addrs.into_iter().collect(),
        })
        .collect();
    (records, vips)
}

/// The ports the routing mesh opens, each with the running tasks it forwards to (their
/// addresses on `ingress`), in (protocol, port) order.
fn mesh_ports(t: &Tables, ingress: &str, node_id: &str) -> Vec<IngressPort> {
    let mut out = Vec::new();
    for s in t.services.iter().filter(|s| publishes_ingress(s)) {
        let running: Vec<&Task> = t
            .tasks_of_service(&s.id)
            .filter(|x| resolvable(t, x))
            .collect();
        let mut backends: Vec<String> = running
            .iter()
            .filter_map(|x| address_on(x, ingress))
            .collect();
        backends.sort();
        let mut local: Vec<String> = running
            .iter()
            .filter(|x| x.node_id == node_id)
            .map(|x| x.id.clone())
            .collect();
        local.sort();
        let allocated = s.endpoint.iter().flat_map(|e| &e.ports);
        for p in allocated.filter(|p| p.publish_mode == PublishMode::Ingress as i32) {
            if p.published_port == 0 {
                continue;
            }
            out.push(IngressPort {
                protocol: p.protocol,
                published_port: p.published_port,
                target_port: p.target_port,
                backends: backends.clone(),
                keep_source: p.keep_source,
                local_task_ids: if p.keep_source {
                    local.clone()
                } else {
                    Vec::new()
                },
            });
        }
    }
    out.sort_by_key(|p| (p.protocol, p.published_port));
    out
}

/// The other nodes' underlay addresses, by node ID, of those that hold the network: through a
/// task attached to it, or (`ingress` while the mesh is in use) through their sandbox.
fn peers_of(t: &Tables, n: &Network, node_id: &str, mesh: bool) -> BTreeMap<String, String> {
    let underlay = |id: &str| -> Option<String> {
        let addr = t.nodes.get(id)?.status.as_ref()?.addr.clone();
        (!addr.is_empty()).then_some(addr)
    };
    let mut peers: BTreeMap<String, String> = t
        .tasks_of_network(&n.id)
        .filter(|x| holds(x) && !x.node_id.is_empty() && x.node_id != node_id)
        .filter_map(|x| Some((x.node_id.clone(), underlay(&x.node_id)?)))
        .collect();
    if mesh {
        for other in t.nodes.iter() {
            if other.id != node_id && !other.ingress_address.is_empty() {
                if let Some(addr) = underlay(&other.id) {
                    peers.insert(other.id.clone(), addr);
                }
            }
        }
    }
    peers
}

/// The view `node_id` is sent.
pub(crate) fn view(t: &Tables, node_id: &str) -> NetworksMessage {
    let ingress = ingress_id(t);
    // This node's way into the mesh, while the mesh is in use and it has been given one.
    let sandbox = t
        .nodes
        .get(node_id)
        .map(|n| n.ingress_address.clone())
        .filter(|a| !a.is_empty() && ingress.is_some() && mesh_in_use(t));
    let mut mine: BTreeSet<&str> = t
        .tasks_of_node(node_id)
        .filter(|x| holds(x))
        .flat_map(|x| x.networks.iter().map(|a| a.network_id.as_str()))
        .collect();
    if let (Some(i), Some(_)) = (ingress, &sandbox) {
        mine.insert(i);
    }
    let networks = mine
        .into_iter()
        .filter_map(|id| t.networks.get(id))
        .map(|n| {
            let mesh = sandbox.is_some() && Some(n.id.as_str()) == ingress;
            let peers = peers_of(t, n, node_id, mesh);
            let (records, vips) = records(t, &n.id);
            NodeNetwork {
                network: Some(n.clone()),
                peers: peers
                    .into_iter()
                    .map(|(node_id, addr)| NetworkPeer { node_id, addr })
                    .collect(),
                records,
                vips,
            }
        })
        .collect();
    let port = t.default_cluster().map_or(0, |c| c.data_path_port);
    let ingress_ports = match (ingress, &sandbox) {
        (Some(i), Some(_)) => mesh_ports(t, i, node_id),
        _ => Vec::new(),
    };
    NetworksMessage {
        networks,
        data_path_port: if port == 0 {
            defaults::DATA_PATH_PORT
        } else {
            port
        },
        ingress_address: sandbox.unwrap_or_default(),
        ingress_ports,
    }
}

/// Serves one agent's view until its session ends or it goes away.
/// `wake` (the fan-out's networking signal) says when the view may have changed.
pub(crate) async fn stream(
    store: Store,
    node_id: String,
    mut wake: tokio::sync::watch::Receiver<()>,
    cancel: CancellationToken,
    tx: super::streams::Sender<NetworksMessage>,
) {
    let mut sent: Option<NetworksMessage> = None;
    loop {
        wake.borrow_and_update();
        let now = store.view(|t| view(t, &node_id));
        if sent.as_ref() != Some(&now) {
            if tx.send(Box::new(now.clone())).await.is_err() {
                return;
            }
            sent = Some(now);
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tx.closed() => return,
            r = wake.changed() => if r.is_err() { return },
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(DEBOUNCE) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use swarm_store::{Proposer, Txn};
    use swarm_testkit::fixtures::{
        ingress_network, network, node, service, task, NetworkFixture, ServiceFixture, TaskFixture,
    };
    use swarm_testkit::MemoryProposer;

    fn attached(mut x: Task, net: &str, addr: &str) -> Task {
        x.networks = vec![NetworkAttachment {
            network_id: net.into(),
            addresses: vec![addr.into()],
            aliases: vec![],
        }];
        x.annotations = Some(Annotations {
            name: format!("api.{}", x.slot),
            ..Default::default()
        });
        x
    }

    #[tokio::test]
    async fn a_node_sees_its_networks_peers_and_only_running_tasks_in_dns() {
        let store = Store::new();
        let mut n2 = node("n2");
        n2.status.as_mut().unwrap().addr = "192.0.2.2".into();
        let mut n3 = node("n3");
        n3.status.as_mut().unwrap().addr = "192.0.2.3".into();
        let mut svc = service("s1", "api").on_networks(&["net"]);
        if let Some(c) = svc
            .spec
            .as_mut()
            .and_then(|s| s.task.as_mut())
            .map(|t| &mut t.networks[0])
        {
            c.aliases = vec!["backend".into()];
        }
        svc.endpoint = Some(Endpoint {
            virtual_ips: vec![VirtualIp {
                network_id: "net".into(),
                addr: "10.0.1.2/24".into(),
            }],
            ..Default::default()
        });
        let running = |id: &str, node: &str, slot: u64, addr: &str| {
            attached(
                task(id, "s1")
                    .on(node)
                    .in_slot(slot)
                    .in_state(TaskState::Running)
                    .on_networks(&["net"]),
                "net",
                addr,
            )
        };
        let txn = Txn::new()
            .create(node("n1"))
            .create(n2)
            .create(n3)
            .create(network("net", "app", "10.0.1.0/24"))
            .create(network("other", "db", "10.0.2.0/24"))
            .create(svc)
            .create(running("t1", "n1", 1, "10.0.1.3/24"))
            .create(running("t2", "n2", 2, "10.0.1.4/24"))
            // Told to stop: still a peer (it holds its address), not in DNS.
            .create(running("t3", "n3", 3, "10.0.1.5/24").desired(TaskState::Shutdown))
            // Stopped: neither.
            .create(running("t4", "n3", 4, "10.0.1.6/24").in_state(TaskState::Failed));
        MemoryProposer::new(store.clone())
            .propose(txn.into_batch())
            .await
            .unwrap();
        let v = store.view(|t| view(t, "n1"));
        assert_eq!(v.data_path_port, 4789);
        assert_eq!(v.networks.len(), 1, "only the network n1's tasks are on");
        let n = &v.networks[0];
        let peers: Vec<(&str, &str)> = n
            .peers
            .iter()
            .map(|p| (p.node_id.as_str(), p.addr.as_str()))
            .collect();
        assert_eq!(peers, [("n2", "192.0.2.2"), ("n3", "192.0.2.3")]);
        let dns: BTreeMap<&str, Vec<&str>> = n
            .records
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.addresses.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(dns["api"], ["10.0.1.2"], "the VIP");
        assert_eq!(dns["backend"], ["10.0.1.2"], "an alias is the service");
        assert_eq!(dns["tasks.api"], ["10.0.1.3", "10.0.1.4"]);
        assert_eq!(dns["api.2"], ["10.0.1.4"]);
        assert_eq!(dns["api.2.t2"], ["10.0.1.4"]);
        assert!(!dns.contains_key("api.3") && !dns.contains_key("api.4"));
        assert_eq!(n.vips.len(), 1);
        assert_eq!(n.vips[0].vip, "10.0.1.2");
        assert_eq!(n.vips[0].backends, ["10.0.1.3", "10.0.1.4"]);
        // A node with no attached task is told of no network.
        assert!(store.view(|t| view(t, "n9")).networks.is_empty());
    }

    #[tokio::test]
    async fn while_a_port_is_published_through_the_mesh_every_node_gets_it() {
        let store = Store::new();
        let with_sandbox = |id: &str, addr: &str, sandbox: &str| {
            let mut n = node(id);
            n.status.as_mut().unwrap().addr = addr.into();
            n.ingress_address = sandbox.into();
            n
        };
        let mut svc = service("s1", "web").publishing(8080, 80);
        svc.endpoint = Some(Endpoint {
            ports: svc.spec.as_ref().unwrap().endpoint.clone().unwrap().ports,
            ..Default::default()
        });
        let web = attached(
            task("t1", "s1")
                .on("n2")
                .in_slot(1)
                .in_state(TaskState::Running),
            "ing",
            "10.0.0.5/24",
        );
        let txn = Txn::new()
            .create(with_sandbox("n1", "192.0.2.1", "10.0.0.2/24"))
            .create(with_sandbox("n2", "192.0.2.2", "10.0.0.3/24"))
            .create(with_sandbox("n3", "192.0.2.3", ""))
            .create(ingress_network("ing", "10.0.0.0/24"))
            .create(svc)
            .create(web);
        let proposer = MemoryProposer::new(store.clone());
        proposer.propose(txn.into_batch()).await.unwrap();
        // n1 runs nothing, yet has the mesh: its sandbox address, ingress with every other
        // node that has a sandbox as a peer, and the port with the running task behind it.
        let v = store.view(|t| view(t, "n1"));
        assert_eq!(v.ingress_address, "10.0.0.2/24");
        assert_eq!(v.networks.len(), 1);
        let peers: Vec<&str> = v.networks[0]
            .peers
            .iter()
            .map(|p| p.addr.as_str())
            .collect();
        assert_eq!(peers, ["192.0.2.2"], "n3 has no sandbox yet");
        assert_eq!(v.ingress_ports.len(), 1);
        let p = &v.ingress_ports[0];
        assert_eq!((p.published_port, p.target_port), (8080, 80));
        assert_eq!(p.backends, ["10.0.0.5"]);
        // A node not given a sandbox address yet has no mesh.
        let v3 = store.view(|t| view(t, "n3"));
        assert!(v3.ingress_address.is_empty() && v3.ingress_ports.is_empty());
        assert!(v3.networks.is_empty());
        // Once no service publishes through the mesh, nobody gets it.
        let stored = store.view(|t| t.services.get("s1").cloned()).unwrap();
        proposer
            .propose(Txn::new().remove(stored).into_batch())
            .await
            .unwrap();
        let v = store.view(|t| view(t, "n1"));
        assert!(v.ingress_address.is_empty() && v.ingress_ports.is_empty());
    }
}
