//! Batched task-status writes: agents' reports are queued and written in one transaction per
//! flush (at 2,000 updates or 100 ms; like every leader writer's, a transaction stays near
//! 1 MiB, so one Raft entry fits one AppendEntries message). A report only lands if the task is assigned to the
//! reporting node and the state moves forward.

use crate::proposer::{Proposer, WriteError};
use std::collections::HashMap;
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

pub(crate) async fn run(store: Store, proposer: Arc<dyn Proposer>, mut rx: mpsc::Receiver<Report>) {
    while let Some(first) = rx.recv().await {
        let mut pending = vec![first];
        let deadline = tokio::time::Instant::now() + FLUSH_AFTER;
        while pending.len() < FLUSH_ITEMS {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => pending.push(r),
                Ok(None) | Err(_) => break,
            }
        }
        flush(&store, proposer.as_ref(), pending).await;
    }
}

async fn flush(store: &Store, proposer: &dyn Proposer, reports: Vec<Report>) {
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
            return;
        }
        match proposer.propose(txn.into_batch()).await {
            Ok(_) => return,
            Err(WriteError::Refused(ApplyError::Conflict { .. })) if conflicts < 5 => {
                conflicts += 1;
                tracing::debug!(conflicts, "status write raced another writer; retrying");
            }
            Err(WriteError::Unavailable(e)) => {
                tracing::warn!(error = %e, "task status write not confirmed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                // Not the leader any more (the agents send their reports again to the next
                // one), or refused for good.
                tracing::warn!(error = %e, "dropping task status updates");
                return;
            }
        }
    }
}
