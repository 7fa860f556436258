//! The allocator: gives each service the published ports its spec leaves open and its
//! virtual IPs (writing the service's `endpoint`, see `allocator_ports`), each network its
//! subnet, and each new task its network addresses (see `allocator_networks`); then moves the
//! task from NEW to PENDING with a copy of its service's endpoint. The hand-off point between
//! the orchestrator and the scheduler; it never places or runs tasks. A task that cannot be
//! given what it needs stays NEW with the reason in its status message.

use crate::allocator_networks::{needs_attachments, NetworkPass};
use crate::allocator_ports;
use crate::component_loop::{run_loop, LoopConfig};
use crate::orchestrator::observed;
use crate::proposer::Proposer;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use swarm_api::*;
use swarm_store::{Store, Tables, Txn};
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(store: Store, proposer: Arc<dyn Proposer>, cancel: CancellationToken) {
    let cfg = LoopConfig {
        name: "allocator",
        debounce: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        tick: Duration::from_secs(2),
        leading_edge: false,
        relevant: None,
    };
    let view = store.clone();
    run_loop(cfg, store, cancel, move || {
        // The nodes' writes apart from the tasks': a node write refused for a stale version
        // (its status changed meanwhile) must not hold up task allocation.
        let (txn, sandboxes) = view.view(pass_with_sandboxes);
        let proposer = proposer.clone();
        async move {
            let mut again = false;
            for batch in txn.into_batches(2_000) {
                again |= proposer.propose(batch).await.is_err();
            }
            for batch in sandboxes.into_batches(2_000) {
                again |= proposer.propose(batch).await.is_err();
            }
            again
        }
    })
    .await;
}

/// One pass over a consistent view: the writes that allocate what is missing. Public for the
/// allocation benchmark; the leader runs it through `run`.
pub fn pass(t: &Tables) -> Txn {
    pass_with_sandboxes(t).0
}

/// [`pass`], and the nodes' sandbox addresses ([`sandbox_pass`]) from the same addresses, so
/// a task and a node are never given the same one.
pub fn pass_with_sandboxes(t: &Tables) -> (Txn, Txn) {
    let mut txn = Txn::new();
    let mut nets = NetworkPass::allocate_networks(t);
    for n in std::mem::take(&mut nets.networks) {
        txn = txn.update(n);
    }
    let endpoints = allocate_services(t, &mut nets, &mut txn);
    for task in t.new_tasks() {
        if observed(task) != TaskState::New || task.desired_state > TaskState::Running as i32 {
            continue;
        }
        // A task waits until its service's ports and VIPs are allocated for its spec.
        let endpoint = match endpoints.get(task.service_id.as_str()) {
            Some(Ok(e)) => e.clone(),
            Some(Err(why)) => {
                txn = wait(txn, task, why);
                continue;
            }
            None => None,
        };
        let mut x = task.clone();
        if needs_attachments(t, task) {
            match nets.task_attachments(t, task) {
                Ok(a) => x.networks = a,
                Err(why) => {
                    txn = wait(txn, task, &why);
                    continue;
                }
            }
        }
        x.endpoint = endpoint;
        x.status = Some(TaskStatus {
            timestamp: now_ms(),
            state: TaskState::Pending as i32,
            message: "pending task scheduling".into(),
            ..Default::default()
        });
        txn = txn.update(x);
    }
    let sandboxes = sandbox_pass(t, &mut nets);
    (txn, sandboxes)
}

/// The nodes' ingress sandbox addresses (the routing mesh's way into the ingress network on
/// each node): every node gets one while some service publishes through the mesh, and gives
/// it back once none does.
fn sandbox_pass(t: &Tables, nets: &mut NetworkPass) -> Txn {
    let mut txn = Txn::new();
    let ingress = crate::allocator_networks::ingress_id(t);
    let mesh = crate::allocator_networks::mesh_in_use(t);
    for node in t.nodes.iter() {
        match (ingress, mesh, node.ingress_address.is_empty()) {
            (Some(ingress), true, true) => match nets.sandbox_address(t, ingress) {
                Ok(addr) => {
                    let mut x = node.clone();
                    x.ingress_address = addr;
                    txn = txn.update(x);
                }
                Err(why) => {
                    tracing::debug!(node = %node.id, %why, "no ingress sandbox address yet");
                }
            },
            (_, false, false) => {
                let mut x = node.clone();
                x.ingress_address.clear();
                txn = txn.update(x);
            }
            _ => {}
        }
    }
    txn
}

/// Leaves a task NEW with the reason it waits in its status message (written once, not on
/// every pass).
fn wait(txn: Txn, task: &Task, why: &str) -> Txn {
    if task.status.as_ref().is_some_and(|s| s.message == why) {
        return txn;
    }
    let mut x = task.clone();
    x.status = Some(TaskStatus {
        timestamp: now_ms(),
        state: TaskState::New as i32,
        message: why.to_string(),
        ..Default::default()
    });
    txn.update(x)
}

/// Allocates the ports and VIPs of every service whose endpoint does not match its spec
/// (adding the service updates to `txn`), and returns each service's endpoint for its tasks:
/// `Ok(None)` when it has neither ports nor VIPs, `Err` with the reason when something could
/// not be allocated (its new tasks stay NEW until it can).
fn allocate_services<'a>(
    t: &'a Tables,
    nets: &mut NetworkPass,
    txn: &mut Txn,
) -> HashMap<&'a str, Result<Option<Endpoint>, String>> {
    let mut out = HashMap::new();
    // Every port held now, by whichever service: those being reallocated drop theirs below.
    let mut held: HashSet<allocator_ports::PortKey> = allocator_ports::taken(t.services.iter(), "")
        .into_keys()
        .collect();
    for service in t.services.iter() {
        let ports_ok = allocator_ports::is_allocated(service);
        let ingress = crate::allocator_networks::ingress_id(t);
        let vips_ok = crate::allocator_networks::vips_allocated(service, ingress);
        if ports_ok && vips_ok {
            out.insert(
                service.id.as_str(),
                Ok(task_endpoint(service.endpoint.clone())),
            );
            continue;
        }
        let mut endpoint = if ports_ok {
            service.endpoint.clone().unwrap_or_default()
        } else {
            match allocate_ports(t, service, &mut held) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(service = %service.id, error = %e, "allocating published ports");
                    out.insert(service.id.as_str(), Err(e));
                    continue;
                }
            }
        };
        if !vips_ok {
            match nets.service_vips(t, service) {
                Ok(vips) => {
                    endpoint.virtual_ips = vips;
                    endpoint.vip_networks =
                        crate::allocator_networks::wanted_vip_networks(service, ingress);
                }
                Err(e) => {
                    out.insert(service.id.as_str(), Err(e));
                    continue;
                }
            }
        }
        let mut s = service.clone();
        s.endpoint = Some(endpoint.clone());
        *txn = std::mem::take(txn).update(s);
        out.insert(service.id.as_str(), Ok(task_endpoint(Some(endpoint))));
    }
    out
}

/// The endpoint a task carries: none when its service has neither ports nor VIPs.
fn task_endpoint(e: Option<Endpoint>) -> Option<Endpoint> {
    e.filter(|e| !e.ports.is_empty() || !e.virtual_ips.is_empty())
}

/// The service's published ports for its current spec, keeping the VIPs it has.
fn allocate_ports(
    t: &Tables,
    service: &Service,
    held: &mut HashSet<allocator_ports::PortKey>,
) -> Result<Endpoint, String> {
    let spec = service
        .spec
        .as_ref()
        .and_then(|s| s.endpoint.clone())
        .unwrap_or_default();
    // Its own old ports are free for it to keep (allocate prefers them).
    let mut others: HashSet<_> = allocator_ports::taken(t.services.iter(), &service.id)
        .into_keys()
        .collect();
    others.extend(held.iter().copied().filter(|k| {
        !service
            .endpoint
            .as_ref()
            .is_some_and(|e| e.ports.iter().any(|p| (p.protocol, p.published_port) == *k))
    }));
    let mut endpoint = allocator_ports::allocate(&spec, service.endpoint.as_ref(), &mut others)?;
    held.extend(
        endpoint
            .ports
            .iter()
            .map(|p| (p.protocol, p.published_port)),
    );
    if let Some(old) = &service.endpoint {
        endpoint.virtual_ips = old.virtual_ips.clone();
        endpoint.vip_networks = old.vip_networks.clone();
    }
    Ok(endpoint)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use swarm_testkit::fixtures::{
        ingress_network, network, service, task, NetworkFixture, ServiceFixture, TaskFixture,
    };
    use swarm_testkit::MemoryProposer;

    /// Runs allocator passes until one writes nothing (at most 5), as the loop would.
    async fn settle(store: &Store) {
        let proposer = MemoryProposer::new(store.clone());
        for _ in 0..5 {
            let txn = store.view(pass);
            if txn.is_empty() {
                return;
            }
            proposer.propose(txn.into_batch()).await.unwrap();
        }
        panic!("the allocator did not settle in 5 passes");
    }

    async fn write(store: &Store, txn: Txn) {
        MemoryProposer::new(store.clone())
            .propose(txn.into_batch())
            .await
            .unwrap();
    }

    fn addresses(store: &Store, network_id: &str) -> Vec<String> {
        store.view(|t| {
            let mut out: Vec<String> = t
                .tasks
                .iter()
                .flat_map(|x| &x.networks)
                .filter(|a| a.network_id == network_id)
                .flat_map(|a| a.addresses.clone())
                .collect();
            out.extend(t.services.iter().flat_map(|s| {
                s.endpoint
                    .iter()
                    .flat_map(|e| &e.virtual_ips)
                    .filter(|v| v.network_id == network_id)
                    .map(|v| v.addr.clone())
            }));
            out
        })
    }

    /// [`settle`], with the nodes' sandbox addresses written as the loop writes them.
    async fn settle_with_sandboxes(store: &Store) {
        let proposer = MemoryProposer::new(store.clone());
        for _ in 0..5 {
            let (txn, sandboxes) = store.view(pass_with_sandboxes);
            if txn.is_empty() && sandboxes.is_empty() {
                return;
            }
            for t in [txn, sandboxes] {
                if !t.is_empty() {
                    proposer.propose(t.into_batch()).await.unwrap();
                }
            }
        }
        panic!("the allocator did not settle in 5 passes");
    }

    #[tokio::test]
    async fn the_mesh_attaches_tasks_to_ingress_and_gives_every_node_a_sandbox_address() {
        let store = Store::new();
        let web = service("s1", "web").publishing(8080, 80);
        let mut txn = Txn::new()
            .create(ingress_network("ing", "10.0.0.0/24"))
            .create(swarm_testkit::fixtures::node("n1"))
            .create(swarm_testkit::fixtures::node("n2"))
            .create(web);
        for i in 0..3 {
            txn = txn.create(task(&format!("t{i}"), "s1"));
        }
        write(&store, txn).await;
        settle_with_sandboxes(&store).await;
        let mut all = addresses(&store, "ing");
        store.view(|t| {
            let s = t.services.get("s1").unwrap();
            let e = s.endpoint.as_ref().unwrap();
            assert_eq!(e.virtual_ips.len(), 1, "a VIP on ingress: {e:?}");
            assert_eq!(e.ports[0].published_port, 8080);
            // The spec does not name ingress: the attachment is the allocator's.
            assert!(s
                .spec
                .as_ref()
                .unwrap()
                .task
                .as_ref()
                .unwrap()
                .networks
                .is_empty());
            for x in t.tasks.iter() {
                assert_eq!(observed(x), TaskState::Pending, "{}", x.id);
                let nets: Vec<&str> = x.networks.iter().map(|a| a.network_id.as_str()).collect();
                assert_eq!(nets, ["ing"]);
            }
            for n in t.nodes.iter() {
                assert!(
                    !n.ingress_address.is_empty(),
                    "{} has no sandbox address",
                    n.id
                );
                all.push(n.ingress_address.clone());
            }
        });
        let distinct: HashSet<&String> = all.iter().collect();
        assert_eq!(all.len(), 6, "3 tasks, a VIP and 2 sandboxes: {all:?}");
        assert_eq!(distinct.len(), all.len(), "duplicates: {all:?}");

        // No service on the mesh any more: the sandboxes give their addresses back.
        let s = store.view(|t| t.services.get("s1").cloned()).unwrap();
        write(&store, Txn::new().remove(s)).await;
        settle_with_sandboxes(&store).await;
        store.view(|t| {
            assert!(t.nodes.iter().all(|n| n.ingress_address.is_empty()));
        });
    }

    #[tokio::test]
    async fn networks_services_and_tasks_get_distinct_addresses_before_pending() {
        let store = Store::new();
        let mut txn = Txn::new()
            .create(network("n1", "app", ""))
            .create(network("n2", "db", "192.168.7.0/24"))
            .create(service("s1", "api").on_networks(&["n1", "n2"]));
        for i in 0..10 {
            txn = txn.create(task(&format!("t{i}"), "s1").on_networks(&["n1", "n2"]));
        }
        write(&store, txn).await;
        settle(&store).await;
        store.view(|t| {
            let app = t.networks.get("n1").unwrap();
            let ipam = app.ipam.as_ref().unwrap();
            // The first /24 of Docker's default pool, its first address the gateway.
            assert_eq!(
                (ipam.subnet.as_str(), ipam.gateway.as_str()),
                ("10.0.0.0/24", "10.0.0.1")
            );
            let db = t.networks.get("n2").unwrap();
            assert_eq!(db.ipam.as_ref().unwrap().subnet, "192.168.7.0/24");
            assert!(app.vni >= defaults::FIRST_VNI && db.vni >= defaults::FIRST_VNI);
            assert_ne!(app.vni, db.vni);
            let vips = &t
                .services
                .get("s1")
                .unwrap()
                .endpoint
                .as_ref()
                .unwrap()
                .virtual_ips;
            assert_eq!(vips.len(), 2, "one VIP per network: {vips:?}");
            for x in t.tasks.iter() {
                assert_eq!(observed(x), TaskState::Pending, "{}", x.id);
                assert_eq!(x.networks.len(), 2);
                assert_eq!(x.endpoint.as_ref().unwrap().virtual_ips, *vips);
            }
        });
        for net in ["n1", "n2"] {
            let all = addresses(&store, net);
            let distinct: HashSet<&String> = all.iter().collect();
            assert_eq!(all.len(), 11, "10 tasks and a VIP on {net}");
            assert_eq!(distinct.len(), all.len(), "duplicates on {net}: {all:?}");
            let gw = if net == "n1" {
                "10.0.0.1/24"
            } else {
                "192.168.7.1/24"
            };
            assert!(!all.iter().any(|a| a == gw), "the gateway was handed out");
        }
    }

    #[tokio::test]
    async fn a_full_network_leaves_tasks_new_with_the_reason_and_stopped_tasks_free_theirs() {
        let store = Store::new();
        // A /29: 6 host addresses, one the gateway, one the VIP: room for 4 tasks.
        let mut txn = Txn::new()
            .create(network("n1", "app", "10.9.0.0/29"))
            .create(service("s1", "api").on_networks(&["n1"]));
        for i in 0..6 {
            txn = txn.create(task(&format!("t{i}"), "s1").on_networks(&["n1"]));
        }
        write(&store, txn).await;
        settle(&store).await;
        let waiting: Vec<Task> = store.view(|t| {
            t.tasks
                .iter()
                .filter(|x| observed(x) == TaskState::New)
                .cloned()
                .collect()
        });
        assert_eq!(waiting.len(), 2);
        for x in &waiting {
            assert_eq!(
                x.status.as_ref().unwrap().message,
                "no address left in network app (10.9.0.0/29)"
            );
        }
        // Two allocated tasks stop: their addresses go to the waiting ones.
        let stopped: Vec<Task> = store.view(|t| {
            t.tasks
                .iter()
                .filter(|x| observed(x) == TaskState::Pending)
                .take(2)
                .cloned()
                .map(|x| x.in_state(TaskState::Failed))
                .collect()
        });
        let mut txn = Txn::new();
        for x in stopped {
            txn = txn.update(x);
        }
        write(&store, txn).await;
        settle(&store).await;
        store.view(|t| {
            assert_eq!(
                t.tasks
                    .iter()
                    .filter(|x| observed(x) == TaskState::New)
                    .count(),
                0
            );
            let live: Vec<&String> = t
                .tasks
                .iter()
                .filter(|x| observed(x) == TaskState::Pending)
                .flat_map(|x| &x.networks)
                .flat_map(|a| &a.addresses)
                .collect();
            let distinct: HashSet<_> = live.iter().collect();
            assert_eq!((live.len(), distinct.len()), (4, 4), "{live:?}");
        });
    }

    #[tokio::test]
    async fn a_new_leaders_pass_keeps_every_address_and_dropping_a_network_drops_its_vip() {
        let store = Store::new();
        let mut txn = Txn::new()
            .create(network("n1", "app", ""))
            .create(network("n2", "db", ""))
            .create(service("s1", "api").on_networks(&["n1", "n2"]));
        for i in 0..3 {
            txn = txn.create(task(&format!("t{i}"), "s1").on_networks(&["n1", "n2"]));
        }
        write(&store, txn).await;
        settle(&store).await;
        let before = store.snapshot();
        // A pass over the same state (as a new leader's allocator makes) changes nothing.
        assert!(store.view(pass).is_empty());
        let mut s = store.view(|t| t.services.get("s1").cloned()).unwrap();
        s = s.on_networks(&["n1"]);
        write(&store, Txn::new().update(s)).await;
        settle(&store).await;
        let after = store.view(|t| t.services.get("s1").cloned()).unwrap();
        let e = after.endpoint.unwrap();
        assert_eq!(e.vip_networks, ["n1"]);
        assert_eq!(e.virtual_ips.len(), 1);
        let old_vip = before
            .services
            .iter()
            .flat_map(|s| s.endpoint.iter().flat_map(|e| e.virtual_ips.clone()))
            .find(|v| v.network_id == "n1")
            .unwrap();
        assert_eq!(e.virtual_ips[0], old_vip, "the VIP on a kept network stays");
        assert_eq!(
            addresses(&store, "n2").len(),
            3,
            "only the tasks' addresses are left on db"
        );
    }
}
