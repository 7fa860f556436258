//! One watcher of the store for all of the dispatcher's per-node streams: it reads each
//! committed batch once, indexes it by node, and wakes only the streams of the nodes it
//! touches; it wakes the network views only for batches that can change one (see
//! [`Networking`]); it also keeps the list of managers' addresses that session messages carry.
//!
//! It owns the wake-up signals and the cached manager list; it must not read or build what a
//! stream sends (the streams re-read the store themselves when woken) and never writes.
//!
//! Why: with one store subscription per stream, every batch was scanned by every node's
//! assignment and session streams (2 × nodes × events per batch), and every node write made
//! each session stream rescan all nodes for the manager list (nodes³ while nodes register).
//! Likewise every node's network view was rebuilt after every batch: with 10,000 nodes
//! registering, that kept a core busy and heartbeats timed out (issue 18).

use crate::allocator_networks::publishes_ingress;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use swarm_api::*;
use swarm_store::{Change, EventKind, Store, Tables};
use swarm_tasks::TaskOwner;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

/// A manager's remote API address, as session messages list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ManagerAddr {
    pub node_id: String,
    pub addr: String,
}

/// The wake-ups of one node's streams. A `changed()` means "something of yours may have
/// changed: read the store again"; several changes between two reads wake once.
pub(crate) struct NodeWake {
    /// A task whose `node_id` is this node was written.
    pub tasks: TaskWake,
    /// This node's object was written.
    pub node: watch::Receiver<()>,
}

/// The task IDs of a node written since its stream last took them.
#[derive(Default)]
pub(crate) struct TaskChanges {
    /// Batches were missed or a snapshot was installed: anything may have changed.
    pub all: bool,
    pub ids: HashSet<String>,
}

impl TaskChanges {
    pub(crate) fn everything() -> TaskChanges {
        TaskChanges {
            all: true,
            ids: HashSet::new(),
        }
    }
}

/// A task stream's wake-up, with the IDs written since it last took them: a status report
/// then costs the stream one task read, not a read of every task on its node (100 per node
/// at 10,000 × 1M, every report waking the stream).
pub(crate) struct TaskWake {
    pub signal: watch::Receiver<()>,
    changes: Arc<Mutex<TaskChanges>>,
}

impl TaskWake {
    /// What was written since the last call. Take it before reading the store: whatever is
    /// recorded after that wakes the stream again.
    pub(crate) fn take(&self) -> TaskChanges {
        std::mem::take(&mut *self.changes.lock())
    }
}

struct Signals {
    tasks: watch::Sender<()>,
    /// Each task stream's own record (one per subscriber: a session replacing another
    /// briefly has two, and neither may take the other's).
    task_changes: Vec<Weak<Mutex<TaskChanges>>>,
    node: watch::Sender<()>,
}

impl Signals {
    fn unused(&self) -> bool {
        self.tasks.receiver_count() == 0 && self.node.receiver_count() == 0
    }

    fn record(&mut self, edit: impl Fn(&mut TaskChanges)) {
        self.task_changes.retain(|w| match w.upgrade() {
            Some(c) => {
                edit(&mut c.lock());
                true
            }
            None => false,
        });
        self.tasks.send_replace(());
    }
}

struct Inner {
    nodes: Mutex<HashMap<String, Signals>>,
    managers: watch::Sender<Arc<Vec<ManagerAddr>>>,
    /// Something a node's network view reads was written.
    networking: watch::Sender<()>,
}

/// Whether a batch can change any node's network view. A view reads networks, services,
/// the cluster, tasks attached to a network (or of a service publishing through the routing
/// mesh), and nodes as peers or task hosts: those holding such tasks or a mesh sandbox.
/// Everything else (a node registering with nothing on a network, status reports of tasks on
/// no network) leaves every view as it was.
#[derive(Default)]
struct Networking {
    /// Nodes last seen with a mesh sandbox address: clearing it is a change too.
    sandboxed: HashSet<String>,
}

impl Networking {
    fn rebuild(&mut self, t: &Tables) {
        self.sandboxed = t
            .nodes
            .iter()
            .filter(|n| !n.ingress_address.is_empty())
            .map(|n| n.id.clone())
            .collect();
    }

    fn touched(&mut self, store: &Store, events: &[swarm_store::Event]) -> bool {
        let mut hosts: HashSet<&str> = HashSet::new();
        let mut services: HashSet<&str> = HashSet::new();
        let mut touched = false;
        for e in events {
            match &e.object.object {
                Some(store_object::Object::Service(_))
                | Some(store_object::Object::Network(_))
                | Some(store_object::Object::Cluster(_)) => touched = true,
                Some(store_object::Object::Task(x)) => {
                    if !x.networks.is_empty() {
                        touched = true;
                    } else if !x.service_id.is_empty() {
                        services.insert(&x.service_id);
                    }
                }
                Some(store_object::Object::Node(n)) => {
                    let sandbox = !n.ingress_address.is_empty() && e.kind != EventKind::Remove;
                    let had = if sandbox {
                        !self.sandboxed.insert(n.id.clone())
                    } else {
                        self.sandboxed.remove(&n.id)
                    };
                    if sandbox || had {
                        touched = true;
                    } else {
                        hosts.insert(&n.id);
                    }
                }
                _ => {}
            }
        }
        if touched || (hosts.is_empty() && services.is_empty()) {
            return touched;
        }
        store.view(|t| {
            hosts
                .iter()
                .any(|n| t.tasks_of_node(n).any(|x| !x.networks.is_empty()))
                || services
                    .iter()
                    .any(|s| t.services.get(s).is_some_and(publishes_ingress))
        })
    }
}

#[derive(Clone)]
pub(crate) struct Fanout {
    inner: Arc<Inner>,
}

/// Managers with an address, in table order (the order `Tables::nodes` iterates).
fn manager_addrs(t: &Tables) -> Vec<ManagerAddr> {
    t.nodes
        .iter()
        .filter(|n| n.role == NodeRole::Manager as i32)
        .filter_map(|n| {
            let addr = n.manager_status.as_ref()?.addr.clone();
            (!addr.is_empty()).then(|| ManagerAddr {
                node_id: n.id.clone(),
                addr,
            })
        })
        .collect()
}

impl Fanout {
    /// Subscribes to `store` and starts the watcher task as one of `tasks`: it holds a store
    /// handle, so only stopping `tasks` ends it (the store's stream never closes while it runs).
    pub(crate) fn start(store: Store, tasks: &TaskOwner) -> Fanout {
        let mut networking = Networking::default();
        let (managers, rx) = store.view_and_watch(|t| {
            networking.rebuild(t);
            manager_addrs(t)
        });
        let (managers, _) = watch::channel(Arc::new(managers));
        let fanout = Fanout {
            inner: Arc::new(Inner {
                nodes: Mutex::new(HashMap::new()),
                managers,
                networking: watch::channel(()).0,
            }),
        };
        tasks.spawn_until_stopped(fanout.clone().run(store, rx, networking));
        fanout
    }

    /// Wake-ups for `node_id`'s streams. Subscribe before the first read of the store: any
    /// batch applied after that read then wakes the receiver.
    pub(crate) fn watch_node(&self, node_id: &str) -> NodeWake {
        let mut nodes = self.inner.nodes.lock();
        let s = nodes.entry(node_id.to_string()).or_insert_with(|| Signals {
            tasks: watch::channel(()).0,
            task_changes: Vec::new(),
            node: watch::channel(()).0,
        });
        let changes = Arc::new(Mutex::new(TaskChanges::default()));
        s.task_changes.push(Arc::downgrade(&changes));
        NodeWake {
            tasks: TaskWake {
                signal: s.tasks.subscribe(),
                changes,
            },
            node: s.node.subscribe(),
        }
    }

    /// Wakes after every batch that may change some node's network view. Subscribe before
    /// the first read of the store, as with [`Fanout::watch_node`].
    pub(crate) fn networking(&self) -> watch::Receiver<()> {
        self.inner.networking.subscribe()
    }

    /// The managers' addresses, updated after every batch that changes them.
    pub(crate) fn managers(&self) -> watch::Receiver<Arc<Vec<ManagerAddr>>> {
        self.inner.managers.subscribe()
    }

    async fn run(
        self,
        store: Store,
        mut rx: tokio::sync::broadcast::Receiver<Arc<Change>>,
        mut networking: Networking,
    ) {
        loop {
            match rx.recv().await {
                Ok(c) => match c.as_ref() {
                    Change::Batch { events, .. } => {
                        let touched = networking.touched(&store, events);
                        self.batch(&store, events);
                        // After the nodes' signals: whoever sees this wake also finds this
                        // batch's node signals sent.
                        if touched {
                            self.inner.networking.send_replace(());
                        }
                    }
                    Change::Restored => self.everything(&store, &mut networking),
                },
                // Missed batches could have touched anyone: wake every stream to re-read.
                Err(RecvError::Lagged(_)) => self.everything(&store, &mut networking),
                Err(RecvError::Closed) => return,
            }
        }
    }

    fn batch(&self, store: &Store, events: &[swarm_store::Event]) {
        let mut task_nodes: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut node_ids: HashSet<&str> = HashSet::new();
        let mut managers_changed = false;
        {
            let current = self.inner.managers.borrow();
            for e in events {
                match &e.object.object {
                    Some(store_object::Object::Task(x)) if !x.node_id.is_empty() => {
                        task_nodes.entry(&x.node_id).or_default().push(&x.id);
                    }
                    Some(store_object::Object::Node(n)) => {
                        node_ids.insert(&n.id);
                        // A manager written, or one that may have stopped being one.
                        managers_changed |= n.role == NodeRole::Manager as i32
                            || current.iter().any(|m| m.node_id == n.id);
                    }
                    _ => {}
                }
            }
        }
        if managers_changed {
            self.refresh_managers(store);
        }
        if task_nodes.is_empty() && node_ids.is_empty() {
            return;
        }
        let mut nodes = self.inner.nodes.lock();
        for (id, tasks) in task_nodes {
            if let Some(s) = nodes.get_mut(id) {
                s.record(|c| c.ids.extend(tasks.iter().map(|t| t.to_string())));
            }
        }
        for id in node_ids {
            if let Some(s) = nodes.get(id) {
                s.node.send_replace(());
            }
        }
        // Streams that ended leave their signals behind; drop those no one listens to.
        nodes.retain(|_, s| !s.unused());
    }

    fn everything(&self, store: &Store, networking: &mut Networking) {
        store.view(|t| networking.rebuild(t));
        self.inner.networking.send_replace(());
        self.refresh_managers(store);
        let mut nodes = self.inner.nodes.lock();
        for s in nodes.values_mut() {
            s.record(|c| *c = TaskChanges::everything());
            s.node.send_replace(());
        }
        nodes.retain(|_, s| !s.unused());
    }

    fn refresh_managers(&self, store: &Store) {
        let now = store.view(manager_addrs);
        self.inner.managers.send_if_modified(|cur| {
            if **cur == now {
                false
            } else {
                *cur = Arc::new(now);
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::Duration;
    use swarm_store::Txn;
    use swarm_testkit::fixtures::{self, NodeFixture, TaskFixture};

    fn task(id: &str, node: &str) -> Task {
        fixtures::task(id, "").on(node)
    }

    fn node(id: &str, manager_addr: Option<&str>) -> Node {
        match manager_addr {
            Some(addr) => fixtures::node(id).with_manager_role(addr),
            None => fixtures::node(id),
        }
    }

    async fn woken(rx: &mut watch::Receiver<()>) {
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .expect("woken in time")
            .expect("signal alive");
    }

    /// A batch wakes the task streams of the nodes its tasks name, and no others.
    #[tokio::test]
    async fn wakes_only_the_nodes_a_batch_touches() {
        let store = Store::new();
        let f = Fanout::start(store.clone(), &TaskOwner::new());
        let mut n1 = f.watch_node("n1");
        let mut n2 = f.watch_node("n2");
        store
            .apply(1, &Txn::new().create(task("t1", "n1")).into_batch())
            .unwrap();
        woken(&mut n1.tasks.signal).await;
        let taken = n1.tasks.take();
        assert_eq!(taken.ids, HashSet::from(["t1".to_string()]));
        assert!(!taken.all);
        assert!(n1.tasks.take().ids.is_empty(), "taken once");
        // The watcher handles batches in order, so the batch is fully handled by now.
        assert!(!n2.tasks.signal.has_changed().unwrap());
        assert!(!n1.node.has_changed().unwrap());
        store
            .apply(2, &Txn::new().create(node("n2", None)).into_batch())
            .unwrap();
        woken(&mut n2.node).await;
        assert!(!n2.tasks.signal.has_changed().unwrap());
    }

    /// The network views wake for what they read (services, tasks on a network or of a
    /// service on the routing mesh, nodes hosting those or holding a mesh sandbox) and sleep
    /// through the rest: nodes registering, status reports of tasks on no network.
    #[tokio::test]
    async fn network_views_wake_only_for_what_they_read() {
        use fixtures::ServiceFixture;
        let store = Store::new();
        let f = Fanout::start(store.clone(), &TaskOwner::new());
        let mut nets = f.networking();
        let mut mark = f.watch_node("mark");
        let mut index = 0;
        // Applies `txn`, then a write only `mark`'s stream wakes for, and waits for that
        // wake: batches are handled in order, so `txn`'s is handled in full by then.
        let mut step = async |txn: Txn| {
            index += 2;
            store.apply(index - 1, &txn.into_batch()).unwrap();
            let marker = task(&format!("m{index}"), "mark");
            store
                .apply(index, &Txn::new().create(marker).into_batch())
                .unwrap();
            woken(&mut mark.tasks.signal).await;
        };
        let node_written = |id: &str, f: &dyn Fn(&mut Node)| {
            let mut n = store.view(|t| t.nodes.get(id).cloned()).unwrap();
            f(&mut n);
            Txn::new().update(n)
        };
        let mut woke = || {
            let changed = nets.has_changed().unwrap();
            nets.borrow_and_update();
            changed
        };

        step(Txn::new().create(node("n1", None)).create(task("t1", "n1"))).await;
        assert!(!woke(), "a node registering, a task on no network");
        step(Txn::new().create(fixtures::service("s1", "api"))).await;
        assert!(woke(), "a service");
        step(Txn::new().create(fixtures::task("t2", "s1").on("n1"))).await;
        assert!(!woke(), "a task of a service on no network");
        let mut attached = fixtures::task("t3", "s1").on("n1");
        attached.networks = vec![NetworkAttachment {
            network_id: "net".into(),
            addresses: vec!["10.0.1.3/24".into()],
            aliases: vec![],
        }];
        step(Txn::new().create(attached)).await;
        assert!(woke(), "a task on a network");
        step(node_written("n1", &|n| {
            n.status.get_or_insert_default().addr = "192.0.2.1".into()
        }))
        .await;
        assert!(woke(), "a node hosting a task on a network");
        step(Txn::new().create(node("n2", None))).await;
        assert!(!woke(), "a node with nothing on a network");
        step(node_written("n2", &|n| {
            n.ingress_address = "10.0.0.2".into()
        }))
        .await;
        assert!(woke(), "a mesh sandbox given");
        step(node_written("n2", &|n| n.ingress_address.clear())).await;
        assert!(woke(), "a mesh sandbox taken away");
        step(node_written("n2", &|n| {
            n.status.get_or_insert_default().message = "x".into()
        }))
        .await;
        assert!(!woke(), "a node whose sandbox is gone");
        step(Txn::new().create(fixtures::service("s2", "web").publishing(8080, 80))).await;
        assert!(woke(), "a service on the routing mesh");
        step(Txn::new().create(fixtures::task("t4", "s2").on("n2"))).await;
        assert!(
            woke(),
            "a task of a service on the routing mesh, not attached yet"
        );
    }

    /// The manager list follows promotions and demotions, and a worker's write leaves it be.
    #[tokio::test]
    async fn manager_list_follows_role_changes() {
        let store = Store::new();
        let f = Fanout::start(store.clone(), &TaskOwner::new());
        let mut m = f.managers();
        store
            .apply(
                1,
                &Txn::new()
                    .create(node("a", Some("10.0.0.1:4242")))
                    .into_batch(),
            )
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), m.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.borrow_and_update()[0].addr, "10.0.0.1:4242");
        let mut w = f.watch_node("w");
        store
            .apply(2, &Txn::new().create(node("w", None)).into_batch())
            .unwrap();
        woken(&mut w.node).await;
        assert!(!m.has_changed().unwrap());
        // Demoted: written from the stored copy so the version check passes.
        let mut a = store.view(|t| t.nodes.get("a").cloned()).unwrap();
        a.role = NodeRole::Worker as i32;
        a.manager_status = None;
        store.apply(3, &Txn::new().update(a).into_batch()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), m.changed())
            .await
            .unwrap()
            .unwrap();
        assert!(m.borrow().is_empty());
    }
}
