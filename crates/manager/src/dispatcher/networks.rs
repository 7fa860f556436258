//! One agent's network view: for each network its tasks are attached to, the network, the
//! peers its VXLAN traffic goes to, and the DNS records its tasks may resolve. Sent whole on
//! connect and again whenever it changes (checked after each store change, debounced); it
//! reads the store, never writes.
//!
//! A task is in the records only while it is RUNNING on a READY node and meant to run, so a
//! task that stops, is told to stop, or whose node goes DOWN leaves the view at the next pass.

use crate::allocator_networks::holds_addresses as holds;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use swarm_api::names::Named;
use swarm_api::*;
use swarm_store::{Store, Tables};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Status;

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

/// The view `node_id` is sent.
pub(crate) fn view(t: &Tables, node_id: &str) -> NetworksMessage {
    let mine: BTreeSet<&str> = t
        .tasks_of_node(node_id)
        .filter(|x| holds(x))
        .flat_map(|x| x.networks.iter().map(|a| a.network_id.as_str()))
        .collect();
    let networks = mine
        .into_iter()
        .filter_map(|id| t.networks.get(id))
        .map(|n| {
            let peers: BTreeMap<&str, String> = t
                .tasks_of_network(&n.id)
                .filter(|x| holds(x) && !x.node_id.is_empty() && x.node_id != node_id)
                .filter_map(|x| {
                    let addr = t.nodes.get(&x.node_id)?.status.as_ref()?.addr.clone();
                    (!addr.is_empty()).then_some((x.node_id.as_str(), addr))
                })
                .collect();
            let (records, vips) = records(t, &n.id);
            NodeNetwork {
                network: Some(n.clone()),
                peers: peers
                    .into_iter()
                    .map(|(id, addr)| NetworkPeer {
                        node_id: id.to_string(),
                        addr,
                    })
                    .collect(),
                records,
                vips,
            }
        })
        .collect();
    let port = t.default_cluster().map_or(0, |c| c.data_path_port);
    NetworksMessage {
        networks,
        data_path_port: if port == 0 {
            defaults::DATA_PATH_PORT
        } else {
            port
        },
    }
}

/// Serves one agent's view until its session ends or it goes away.
pub(crate) async fn stream(
    store: Store,
    node_id: String,
    cancel: CancellationToken,
    tx: mpsc::Sender<Result<NetworksMessage, Status>>,
) {
    let mut changes = store.changes();
    let mut sent: Option<NetworksMessage> = None;
    loop {
        changes.borrow_and_update();
        let now = store.view(|t| view(t, &node_id));
        if sent.as_ref() != Some(&now) {
            if tx.send(Ok(now.clone())).await.is_err() {
                return;
            }
            sent = Some(now);
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tx.closed() => return,
            r = changes.changed() => if r.is_err() { return },
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
    use swarm_testkit::fixtures::{network, node, service, task, NetworkFixture, TaskFixture};
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
}
