//! Which services the orchestrator's next pass must look at, read off the store's watch
//! stream. It owns the classification of changes and the list of "quiet" services; it never
//! reads the tables or decides anything about tasks.
//!
//! Why: a pass over one service costs a walk over all of its tasks. While tasks start, the
//! agents' status reports change the store hundreds of times a second, and with a pass over
//! every service after each burst, the orchestrator's work per placed task grew with the
//! number of tasks in the cluster. A status report of a task that is being placed or started
//! changes nothing the orchestrator decides, unless the service is in the middle of something
//! that waits for it (a rolling update, a rebalance, a restart delay): those services are not
//! quiet, and every change of their tasks brings them into the next pass.
//!
//! Anything else that could change a decision — a task ending or asked to stop, a task
//! removed, a service written, a write of the service refused — brings the service in. A node
//! whose orchestrated fields changed is named in the scope for the orchestrator to resolve
//! (into the services with tasks on it, and those that place per node). The cluster object
//! written, a snapshot installed, or events missed bring everything in. A full pass still
//! runs now and then ([`full_pass_every`]), so a rule missed here costs a delay, not a stuck
//! service.

use parking_lot::Mutex;
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use swarm_api::{state::is_terminal, store_object::Object, Node, Task, TaskState};
use swarm_store::{Change, EventKind, Store};
use tokio::sync::broadcast::error::RecvError;

/// A pass over every service at least this often (ms), whatever the stream said.
pub(crate) const FULL_PASS_MS: i64 = 10_000;

/// How long after a full pass that took `took_ms` the next one is due: at least
/// [`FULL_PASS_MS`], and at least 20 times the pass itself, so the safety net costs at most
/// about 5 % of the orchestrator's time however many tasks there are. At 1,000,000 tasks a
/// full pass takes seconds; every 10 s it was 38 % of the manager's CPU. Capped at 2 minutes.
pub(crate) fn full_pass_every(took_ms: i64) -> i64 {
    took_ms.saturating_mul(20).clamp(FULL_PASS_MS, 120_000)
}

/// What the next pass covers.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    /// Every service, and the scan for tasks whose service is gone.
    pub all: bool,
    /// Services (by ID) to look at; an ID with no service left names orphaned tasks.
    pub services: HashSet<String>,
    /// Nodes (by ID) whose state, availability, labels or role changed, or that were added
    /// or removed: the orchestrator resolves them into services before the pass.
    pub nodes: HashSet<String>,
}

/// The classifier's state, shared by the task that reads the stream and the orchestrator.
#[derive(Default)]
struct Shared {
    /// Services whose last pass found nothing to do and nothing to wait for.
    quiet: HashSet<String>,
    /// Per node, a digest of what orchestration reads of it (`node_digest`).
    nodes: HashMap<String, u64>,
    pending: Scope,
}

/// What the orchestrator reads of a node: its state and address, spec (availability, labels,
/// role asked for), role and description (hostname, platform, engine labels: constraints).
/// Not its manager status or certificate, which agents' sessions and renewals rewrite: after
/// a failover every agent's new session wrote its node, and each write cost a pass over
/// every task of every service.
fn node_digest(n: &Node) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    n.status
        .as_ref()
        .map(|s| (s.state, s.addr.as_str()))
        .hash(&mut h);
    n.spec.as_ref().map(|s| s.encode_to_vec()).hash(&mut h);
    n.role.hash(&mut h);
    n.description
        .as_ref()
        .map(|d| d.encode_to_vec())
        .hash(&mut h);
    h.finish()
}

/// Reads the watch stream as it arrives, on its own task: a stream left unread until the next
/// pass would keep every batch written in between alive (the orchestrator's own pass can
/// take seconds to commit 100,000 new tasks, and every status report lands meanwhile).
pub(crate) struct Changes {
    shared: Arc<Mutex<Shared>>,
    reader: tokio::task::AbortHandle,
}

impl Drop for Changes {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Changes {
    /// Subscribes to `store` (on the current runtime); the first scope is everything.
    pub(crate) fn subscribe(store: &Store) -> Changes {
        let shared = Arc::new(Mutex::new(Shared {
            quiet: HashSet::new(),
            nodes: HashMap::new(),
            pending: Scope {
                all: true,
                ..Scope::default()
            },
        }));
        let mut rx = store.watch();
        let s = shared.clone();
        // Aborted when `Changes` drops (it keeps the abort handle).
        #[allow(clippy::disallowed_methods)]
        let reader = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(change) => s.lock().classify(&change),
                    Err(RecvError::Lagged(_)) => s.lock().pending.all = true,
                    Err(RecvError::Closed) => return,
                }
            }
        })
        .abort_handle();
        Changes { shared, reader }
    }

    /// Records what the last pass found for one service.
    pub(crate) fn set_quiet(&mut self, service_id: &str, quiet: bool) {
        let mut s = self.shared.lock();
        if quiet {
            s.quiet.insert(service_id.to_string());
        } else {
            s.quiet.remove(service_id);
        }
    }

    /// Whether the last pass found nothing to do for the service and nothing to wait for.
    pub(crate) fn is_quiet(&self, service_id: &str) -> bool {
        self.shared.lock().quiet.contains(service_id)
    }

    /// A handle for the writes of a pass to report their refusals with.
    pub(crate) fn refusals(&self) -> Refusals {
        Refusals {
            shared: self.shared.clone(),
        }
    }

    /// What changed since the last call, as the scope of the next pass.
    pub(crate) fn take(&mut self) -> Scope {
        std::mem::take(&mut self.shared.lock().pending)
    }
}

/// Where a pass's refused writes are reported: the next pass plans again what they were for.
#[derive(Clone)]
pub(crate) struct Refusals {
    shared: Arc<Mutex<Shared>>,
}

impl Refusals {
    /// A write for `service` (None: for several, such as history pruning) was refused.
    pub(crate) fn refused(&self, service: Option<&str>) {
        let mut s = self.shared.lock();
        match service {
            Some(id) => {
                s.quiet.remove(id);
                s.pending.services.insert(id.to_string());
            }
            None => s.pending.all = true,
        }
    }
}

impl Shared {
    fn classify(&mut self, change: &Change) {
        let events = match change {
            Change::Restored => {
                self.pending.all = true;
                return;
            }
            Change::Batch { events, .. } => events,
        };
        for e in events {
            match &e.object.object {
                Some(Object::Task(x)) => {
                    if x.service_id.is_empty() || self.pending.services.contains(&x.service_id) {
                        continue;
                    }
                    if !self.quiet.contains(&x.service_id) || decisive(e.kind, x) {
                        self.pending.services.insert(x.service_id.clone());
                    }
                }
                Some(Object::Service(x)) => {
                    self.quiet.remove(&x.id);
                    self.pending.services.insert(x.id.clone());
                }
                // Node state, availability and labels decide where tasks may stay.
                Some(Object::Node(n)) => {
                    let digest = (e.kind != EventKind::Remove).then(|| node_digest(n));
                    let before = match digest {
                        Some(d) => self.nodes.insert(n.id.clone(), d),
                        None => self.nodes.remove(&n.id),
                    };
                    if before != digest {
                        self.pending.nodes.insert(n.id.clone());
                    }
                }
                // The cluster object holds the history limit; a rare write.
                Some(Object::Cluster(_)) => self.pending.all = true,
                Some(Object::Secret(_) | Object::Config(_) | Object::Network(_)) | None => {}
            }
        }
    }
}

/// Whether a change of this task can change a quiet service's decisions: it ended, it was
/// asked to stop, it went away, or it appeared already past NEW (written by someone other
/// than this orchestrator, whose own new tasks are NEW and already counted by the pass that
/// made them).
fn decisive(kind: EventKind, x: &Task) -> bool {
    let observed = super::observed(x);
    match kind {
        EventKind::Remove => true,
        EventKind::Create => observed != TaskState::New,
        EventKind::Update => x.desired_state > TaskState::Running as i32 || is_terminal(observed),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use swarm_api::Service;
    use swarm_store::Txn;
    use swarm_testkit::fixtures::{self, TaskFixture};

    fn task(id: &str, service: &str, state: TaskState) -> Task {
        fixtures::task(id, service).in_state(state)
    }

    fn set_state(store: &Store, index: u64, id: &str, edit: impl FnOnce(&mut Task)) {
        let mut x = store.view(|t| t.tasks.get(id).cloned()).unwrap();
        edit(&mut x);
        store
            .apply(index, &Txn::new().update(x).into_batch())
            .unwrap();
    }

    fn scope(services: &[&str]) -> Scope {
        Scope {
            services: services.iter().map(|s| s.to_string()).collect(),
            ..Scope::default()
        }
    }

    /// Lets the reader task catch up with what was written.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn status_reports_of_quiet_services_are_left_out() {
        let store = Store::new();
        let mut c = Changes::subscribe(&store);
        assert!(c.take().all, "the first pass covers everything");
        store
            .apply(
                1,
                &Txn::new()
                    .create(Service {
                        id: "s1".into(),
                        ..Default::default()
                    })
                    .create(task("t1", "s1", TaskState::New))
                    .create(task("t2", "s2", TaskState::New))
                    .into_batch(),
            )
            .unwrap();
        settle().await;
        assert_eq!(c.take(), scope(&["s1", "s2"]));
        c.set_quiet("s1", true);

        // s1 is quiet: its task starting is nobody's business; s2 is not quiet.
        set_state(&store, 2, "t1", |x| {
            x.status = task("", "", TaskState::Running).status
        });
        set_state(&store, 3, "t2", |x| {
            x.status = task("", "", TaskState::Running).status
        });
        settle().await;
        assert_eq!(c.take(), scope(&["s2"]));

        // A task ending or asked to stop counts even for a quiet service.
        set_state(&store, 4, "t1", |x| {
            x.status = task("", "", TaskState::Failed).status
        });
        settle().await;
        assert_eq!(c.take(), scope(&["s1"]));
        set_state(&store, 5, "t1", |x| {
            x.desired_state = TaskState::Shutdown as i32
        });
        settle().await;
        assert_eq!(c.take(), scope(&["s1"]));
        settle().await;
        assert_eq!(c.take(), Scope::default());
    }

    fn nodes(ids: &[&str]) -> Scope {
        Scope {
            nodes: ids.iter().map(|s| s.to_string()).collect(),
            ..Scope::default()
        }
    }

    #[tokio::test]
    async fn node_writes_name_the_node_and_refusals_their_service() {
        let store = Store::new();
        let mut c = Changes::subscribe(&store);
        c.take();
        store
            .apply(
                1,
                &Txn::new()
                    .create(swarm_api::Node {
                        id: "n1".into(),
                        ..Default::default()
                    })
                    .into_batch(),
            )
            .unwrap();
        settle().await;
        assert_eq!(c.take(), nodes(&["n1"]));
        // Written again with only its manager status changed: nothing orchestration reads.
        let mut again = store.view(|t| t.nodes.get("n1").cloned()).unwrap();
        again.manager_status = Some(Default::default());
        store
            .apply(2, &Txn::new().update(again).into_batch())
            .unwrap();
        settle().await;
        assert_eq!(c.take(), Scope::default());
        // Drained: that it does read.
        let mut drained = store.view(|t| t.nodes.get("n1").cloned()).unwrap();
        drained.spec = Some(swarm_api::NodeSpec {
            availability: swarm_api::NodeAvailability::Drain as i32,
            ..Default::default()
        });
        store
            .apply(3, &Txn::new().update(drained).into_batch())
            .unwrap();
        settle().await;
        assert_eq!(c.take(), nodes(&["n1"]));

        // A refused write brings its service back, no longer quiet; one for several
        // services brings everything.
        c.set_quiet("s1", true);
        c.refusals().refused(Some("s1"));
        assert!(!c.is_quiet("s1"));
        assert_eq!(c.take(), scope(&["s1"]));
        c.refusals().refused(None);
        assert!(c.take().all);
        assert!(!c.take().all);
    }

    #[test]
    fn a_long_full_pass_spaces_out_the_next() {
        assert_eq!(full_pass_every(0), FULL_PASS_MS);
        assert_eq!(full_pass_every(400), FULL_PASS_MS);
        assert_eq!(full_pass_every(3_000), 60_000);
        assert_eq!(full_pass_every(60_000), 120_000);
    }
}
