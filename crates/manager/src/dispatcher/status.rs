//! Batched task-status writes: agents' reports are queued and written in one transaction per
//! flush (at 2,000 updates or 100 ms; like every leader writer's, a transaction stays near
//! 1 MiB, so one Raft entry fits one AppendEntries message). A report only lands if the task is assigned to the
//! reporting node and the state moves forward. A report acknowledged but then dropped because
//! this manager stopped leading ends its node's session: the agent sends what was acknowledged
//! again only to a new session.

use super::sessions::Sessions;
use crate::proposer::{Proposer, WriteError};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use swarm_api::*;
use swarm_store::{ApplyError, Store, Txn};
use tokio::sync::mpsc;

pub(crate) const FLUSH_ITEMS: usize = 2_000;
/// Reports queued before agents' calls wait (several flushes' worth: a burst of starts).
pub(crate) const QUEUE_ITEMS: usize = 20_000;
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(100);

pub(crate) struct Report {
    pub node_id: String,
    pub task_id: String,
    pub status: TaskStatus,
}

/// Writes one flush at a time, on purpose. While a flush waits out its Raft round trip, the
/// queue fills and the agents' calls wait; meanwhile each agent merges its tasks' newer states
/// over the older ones (`swarm_agent`'s reporter keeps the latest per task), so a task's
/// ACCEPTED … STARTING often never reach the log. Four flushes in flight were tried at
/// 10,000 nodes × 1,000,000 tasks: every intermediate state was written, the agents' CPU rose
/// by a third and all RUNNING came later (docs/benchmarks.md, "Session 13").
pub(crate) async fn run(
    store: Store,
    proposer: Arc<dyn Proposer>,
    sessions: Arc<Sessions>,
    mut rx: mpsc::Receiver<Report>,
) {
    while let Some(first) = rx.recv().await {
        let mut pending = vec![first];
        let deadline = tokio::time::Instant::now() + FLUSH_AFTER;
        while pending.len() < FLUSH_ITEMS {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => pending.push(r),
                Ok(None) | Err(_) => break,
            }
        }
        for node_id in flush(&store, proposer.as_ref(), pending).await {
            sessions.end(&node_id);
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
}
