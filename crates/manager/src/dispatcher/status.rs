//! Batched task-status writes: agents' reports are queued and written in one transaction per
//! flush (at 2,000 updates or 100 ms; like every leader writer's, a transaction stays near
//! 1 MiB, so one Raft entry fits one AppendEntries message). A report only lands if the task is assigned to the
//! reporting node and the state moves forward. A report acknowledged but then dropped because
//! this manager stopped leading ends its node's session: the agent sends what was acknowledged
//! again only to a new session.

use super::sessions::Sessions;
use crate::proposer::{Proposer, WriteError};
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use swarm_api::*;
use swarm_store::{ApplyError, Store, Txn};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub(crate) const FLUSH_ITEMS: usize = 2_000;
/// Reports queued before agents' calls wait (several flushes' worth: a burst of starts).
pub(crate) const QUEUE_ITEMS: usize = 20_000;
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(100);
/// Flushes written at once. A flush waits out a Raft round trip whose every hop queues behind
/// thousands of agents' streams on a busy runtime; one flush at a time capped status writes
/// at about 5,000 a second at 10,000 nodes, while the agents had long reported every task
/// RUNNING. Concurrent flushes meet in the same Raft entries (group commit).
pub(crate) const FLUSHES_IN_FLIGHT: usize = 4;

pub(crate) struct Report {
    pub node_id: String,
    pub task_id: String,
    pub status: TaskStatus,
}

/// A flush in flight: the tasks it writes, then the nodes whose reports it dropped.
type Flush = Pin<Box<dyn Future<Output = (Vec<String>, BTreeSet<String>)> + Send>>;

pub(crate) async fn run(
    store: Store,
    proposer: Arc<dyn Proposer>,
    sessions: Arc<Sessions>,
    mut rx: mpsc::Receiver<Report>,
) {
    // Polled by this task alone, so they end with it.
    let mut flushes: FuturesUnordered<Flush> = FuturesUnordered::new();
    // Tasks some flush in flight writes. A newer report of one is held until that flush
    // ends: two flushes writing the same task at once would have one of them refused whole
    // (each write carries the version it read).
    let mut writing: HashSet<String> = HashSet::new();
    let mut held: HashMap<String, Report> = HashMap::new();
    let mut batch: Vec<Report> = Vec::new();
    let mut deadline: Option<Instant> = None;
    let mut closed = false;
    loop {
        let due =
            closed || batch.len() >= FLUSH_ITEMS || deadline.is_some_and(|d| Instant::now() >= d);
        if !batch.is_empty() && due && flushes.len() < FLUSHES_IN_FLIGHT {
            let reports = std::mem::take(&mut batch);
            deadline = None;
            let ids: Vec<String> = reports.iter().map(|r| r.task_id.clone()).collect();
            writing.extend(ids.iter().cloned());
            let (store, proposer) = (store.clone(), proposer.clone());
            flushes.push(Box::pin(async move {
                let dropped = flush(&store, proposer.as_ref(), reports).await;
                (ids, dropped)
            }));
            continue;
        }
        if closed && batch.is_empty() && held.is_empty() && flushes.is_empty() {
            return;
        }
        // The gathering deadline matters only while a flush could start; at the limit, the next
        // flush to end is what is waited for.
        let wait_until =
            deadline.filter(|_| !batch.is_empty() && flushes.len() < FLUSHES_IN_FLIGHT);
        tokio::select! {
            r = rx.recv(), if !closed && batch.len() < FLUSH_ITEMS => match r {
                Some(r) if writing.contains(&r.task_id) => drop(held.insert(r.task_id.clone(), r)),
                Some(r) => {
                    deadline.get_or_insert_with(|| Instant::now() + FLUSH_AFTER);
                    batch.push(r);
                }
                None => closed = true,
            },
            Some((ids, dropped)) = flushes.next(), if !flushes.is_empty() => {
                for id in ids {
                    writing.remove(&id);
                    if let Some(r) = held.remove(&id) {
                        deadline.get_or_insert_with(|| Instant::now() + FLUSH_AFTER);
                        batch.push(r);
                    }
                }
                for node_id in dropped {
                    sessions.end(&node_id);
                }
            },
            _ = tokio::time::sleep_until(wait_until.unwrap_or_else(Instant::now)), if wait_until.is_some() => {},
        }
    }
}

/// Writes the reports; returns the nodes whose reports were dropped unwritten.
async fn flush(store: &Store, proposer: &dyn Proposer, reports: Vec<Report>) -> BTreeSet<String> {
    // The latest report per task wins.
    let mut latest: HashMap<String, Report> = HashMap::new();
    for r in reports {
        latest.insert(r.task_id.clone(), r);
    }
    // Conflicts (another writer touched a task) retry at once, a few times; a write that
    // timed out may or may not have committed, so it is retried until it lands or this
    // manager stops leading: the agents were told their reports were received, and a report
    // dropped here left its task ASSIGNED for good (seen after a failover at 5,000 nodes).
    // Re-reading the store skips whatever did commit.
    let mut conflicts = 0;
    let mut wait = Duration::from_millis(100);
    loop {
        let txn = store.view(|t| {
            let mut txn = Txn::new();
            for r in latest.values() {
                let Some(task) = t.tasks.get(&r.task_id) else {
                    continue;
                };
                if task.node_id != r.node_id {
                    continue;
                }
                let current = task.status.as_ref().map(|s| s.state).unwrap_or(0);
                let cur = TaskState::try_from(current).unwrap_or(TaskState::New);
                let Ok(next) = TaskState::try_from(r.status.state) else {
                    continue;
                };
                if !state::can_advance(cur, next) {
                    continue;
                }
                let mut x = task.clone();
                x.status = Some(r.status.clone());
                txn = txn.update(x);
            }
            txn
        });
        if txn.is_empty() {
            return BTreeSet::new();
        }
        match proposer.propose(txn.into_batch()).await {
            Ok(_) => return BTreeSet::new(),
            Err(WriteError::Refused(ApplyError::Conflict { .. })) if conflicts < 5 => {
                conflicts += 1;
                tracing::debug!(conflicts, "status write raced another writer; retrying");
            }
            Err(WriteError::Unavailable(e)) => {
                tracing::warn!(error = %e, "task status write not confirmed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e @ WriteError::NotLeader { .. }) => {
                // Not the leader any more: the agents send their reports again to a new
                // session, so theirs end now.
                tracing::warn!(error = %e, "dropping task status updates; their nodes' sessions end");
                return latest.into_values().map(|r| r.node_id).collect();
            }
            Err(e) => {
                // Refused for good: sent again, they would be refused again.
                tracing::warn!(error = %e, "dropping task status updates");
                return BTreeSet::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use swarm_store::ProposeFuture;

    /// Applies to the store while it "leads"; refuses as a former leader once `deposed`.
    struct Deposable {
        store: Store,
        deposed: AtomicBool,
    }

    impl Proposer for Deposable {
        fn propose(&self, batch: StoreBatch) -> ProposeFuture {
            let res = if self.deposed.load(Ordering::SeqCst) {
                Err(WriteError::NotLeader {
                    leader_id: None,
                    leader: None,
                })
            } else {
                self.store.apply(2, &batch).map_err(WriteError::from)
            };
            Box::pin(async move { res })
        }
    }

    fn assigned(id: &str, node: &str) -> Task {
        Task {
            id: id.into(),
            node_id: node.into(),
            status: Some(TaskStatus {
                state: TaskState::Assigned as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn running(task_id: &str, node_id: &str) -> Report {
        Report {
            node_id: node_id.into(),
            task_id: task_id.into(),
            status: TaskStatus {
                state: TaskState::Running as i32,
                ..Default::default()
            },
        }
    }

    /// A report written keeps the node's session; a report dropped because this manager no
    /// longer leads ends it (and only its node's), so the agent sends it again.
    #[tokio::test]
    async fn a_dropped_report_ends_its_nodes_session() {
        let store = Store::new();
        let setup = Txn::new()
            .create(assigned("t1", "n1"))
            .create(assigned("t2", "n2"));
        store.apply(1, &setup.into_batch()).unwrap();
        let proposer = Arc::new(Deposable {
            store: store.clone(),
            deposed: AtomicBool::new(false),
        });
        let sessions = Arc::new(Sessions::default());
        let (_, n1) = sessions.open("n1");
        let (_, n2) = sessions.open("n2");
        let (tx, rx) = mpsc::channel(16);
        let owner = swarm_tasks::TaskOwner::new();
        let writer = owner.spawn(run(store.clone(), proposer.clone(), sessions.clone(), rx));

        tx.send(running("t2", "n2")).await.unwrap();
        let state = || store.view(|t| t.tasks.get("t2").unwrap().status.clone().unwrap().state);
        while state() != TaskState::Running as i32 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!n2.is_cancelled(), "a written report keeps the session");

        proposer.deposed.store(true, Ordering::SeqCst);
        tx.send(running("t1", "n1")).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), n1.cancelled())
            .await
            .expect("the session of the node whose report was dropped ends");
        assert!(!n2.is_cancelled(), "other nodes' sessions stay");
        assert!(sessions.has("n2") && !sessions.has("n1"));
        drop(tx);
        writer.await.unwrap();
    }

    /// Holds each proposal until the test lets it through, then applies it.
    struct Gate {
        store: Store,
        index: std::sync::atomic::AtomicU64,
        held: mpsc::UnboundedSender<(StoreBatch, tokio::sync::oneshot::Sender<()>)>,
    }

    impl Proposer for Gate {
        fn propose(&self, batch: StoreBatch) -> ProposeFuture {
            let (go, wait) = tokio::sync::oneshot::channel();
            let index = self.index.fetch_add(1, Ordering::SeqCst) + 1;
            let store = self.store.clone();
            let sent = self.held.send((batch.clone(), go));
            Box::pin(async move {
                sent.map_err(|_| WriteError::Unavailable("gate gone".into()))?;
                wait.await
                    .map_err(|_| WriteError::Unavailable("gate gone".into()))?;
                store.apply(index, &batch).map_err(WriteError::from)
            })
        }
    }

    fn report(task_id: &str, node_id: &str, state: TaskState) -> Report {
        let mut r = running(task_id, node_id);
        r.status.state = state as i32;
        r
    }

    type Held = mpsc::UnboundedReceiver<(StoreBatch, tokio::sync::oneshot::Sender<()>)>;

    /// The next proposal, within 5 s (of paused time: at once if nothing else can happen).
    async fn next_proposal(
        held: &mut Held,
        what: &str,
    ) -> (StoreBatch, tokio::sync::oneshot::Sender<()>) {
        tokio::time::timeout(Duration::from_secs(5), held.recv())
            .await
            .unwrap_or_else(|_| panic!("no proposal: {what}"))
            .unwrap()
    }

    fn task_ids(batch: &StoreBatch) -> Vec<String> {
        batch
            .actions
            .iter()
            .filter_map(|a| match a.object.as_ref()?.object.as_ref()? {
                swarm_api::store_object::Object::Task(t) => Some(t.id.clone()),
                _ => None,
            })
            .collect()
    }

    /// Flushes overlap (a second is written while the first waits on its round trip), but a
    /// task's newer report waits for the flush that writes its older one.
    #[tokio::test(start_paused = true)]
    async fn flushes_overlap_but_never_on_the_same_task() {
        let store = Store::new();
        let setup = Txn::new()
            .create(assigned("t1", "n1"))
            .create(assigned("t2", "n2"));
        store.apply(1, &setup.into_batch()).unwrap();
        let (held_tx, mut held) = mpsc::unbounded_channel();
        let proposer = Arc::new(Gate {
            store: store.clone(),
            index: std::sync::atomic::AtomicU64::new(1),
            held: held_tx,
        });
        let sessions = Arc::new(Sessions::default());
        let (tx, rx) = mpsc::channel(16);
        let owner = swarm_tasks::TaskOwner::new();
        let writer = owner.spawn(run(store.clone(), proposer, sessions, rx));

        tx.send(report("t1", "n1", TaskState::Preparing))
            .await
            .unwrap();
        let (first, go_first) = next_proposal(&mut held, "the first flush").await;
        assert_eq!(task_ids(&first), ["t1"]);

        tx.send(report("t2", "n2", TaskState::Running))
            .await
            .unwrap();
        let (second, go_second) =
            next_proposal(&mut held, "a second flush while the first waits").await;
        assert_eq!(
            task_ids(&second),
            ["t2"],
            "a second flush while the first waits"
        );

        tx.send(report("t1", "n1", TaskState::Running))
            .await
            .unwrap();
        // Time is paused: the wait ends at once if nothing else can happen.
        let early = tokio::time::timeout(Duration::from_secs(5), held.recv()).await;
        assert!(
            early.is_err(),
            "t1's newer report waits for the flush writing its older one"
        );
        go_first.send(()).unwrap();
        let (third, go_third) = next_proposal(&mut held, "t1's newer report").await;
        assert_eq!(task_ids(&third), ["t1"]);
        go_second.send(()).unwrap();
        go_third.send(()).unwrap();
        drop(tx);
        writer.await.unwrap();
        let state =
            |id: &str| store.view(|t| t.tasks.get(id).unwrap().status.clone().unwrap().state);
        assert_eq!(state("t1"), TaskState::Running as i32);
        assert_eq!(state("t2"), TaskState::Running as i32);
    }
}
