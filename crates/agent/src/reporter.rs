//! The status reporter: carries task status changes to the manager in batches.
//!
//! Owns the queue of unsent updates. Task runners hand it updates over an unbounded channel so
//! reporting never blocks task execution; it sends them through whatever session is current
//! (published by `session.rs`) and keeps what was not acknowledged for the next session; what
//! was acknowledged goes again to a new session (`delivered.rs` says why). Must not decide
//! task states: it only carries them.

use crate::delivered::Delivered;
use std::collections::HashMap;
use std::time::Duration;

use swarm_api::dispatcher_client::DispatcherClient;
use swarm_api::state::can_advance;
use swarm_api::{TaskState, TaskStatus, TaskStatusUpdate, UpdateTaskStatusRequest};
use tokio::sync::{mpsc, watch};
use tonic::transport::Channel;

/// Where task runners send status changes.
pub(crate) type StatusTx = mpsc::UnboundedSender<TaskStatusUpdate>;
pub(crate) type StatusRx = mpsc::UnboundedReceiver<TaskStatusUpdate>;

/// At most this many updates per RPC; the rest go in the next one.
const MAX_BATCH: usize = 1_000;
/// A send that takes longer than this is given up and retried.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait before retrying a failed send on the same session.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// The session status updates go through, as the session loop publishes it (None while
/// disconnected).
#[derive(Clone)]
pub(crate) struct SessionLink {
    /// The connection to the session's manager, for other APIs on it (the log broker).
    pub channel: Channel,
    pub client: DispatcherClient<Channel>,
    pub session_id: String,
}

/// Runs until every sender of `updates` is gone and all updates were sent, or until the
/// session publisher is gone (nothing could be sent any more).
pub(crate) async fn run(mut updates: StatusRx, mut session: watch::Receiver<Option<SessionLink>>) {
    // Only the newest status of a task matters to the manager (states only move forward), so
    // pending updates are kept per task: a burst of changes costs one entry.
    let mut pending: HashMap<String, TaskStatus> = HashMap::new();
    let mut delivered = Delivered::default();
    let mut closed = false;
    loop {
        while let Ok(u) = updates.try_recv() {
            merge(&mut pending, u);
        }
        if closed && pending.is_empty() {
            return;
        }
        let link = session.borrow_and_update().clone();
        if let Some(link) = &link {
            for (task_id, status) in delivered.take_for_new_session(&link.session_id) {
                merge(
                    &mut pending,
                    TaskStatusUpdate {
                        task_id,
                        status: Some(status),
                    },
                );
            }
        }
        if let (Some(link), false) = (link, pending.is_empty()) {
            if send(&link, &mut pending, &mut delivered).await {
                continue;
            }
            // Failed: the session loop will notice the broken session too; wait for a new
            // one, or retry this one a little later.
            tokio::select! {
                r = session.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(RETRY_DELAY) => {}
            }
            continue;
        }
        tokio::select! {
            u = updates.recv(), if !closed => match u {
                Some(u) => merge(&mut pending, u),
                None => closed = true,
            },
            r = session.changed() => if r.is_err() {
                if !pending.is_empty() {
                    tracing::warn!(unsent = pending.len(), "agent stopping with unsent task status updates");
                }
                return;
            },
        }
    }
}

fn merge(pending: &mut HashMap<String, TaskStatus>, u: TaskStatusUpdate) {
    let Some(status) = u.status else { return };
    let newer = pending.get(&u.task_id).is_none_or(|old| {
        old.state == status.state || can_advance(state_of(old), state_of(&status))
    });
    if newer {
        pending.insert(u.task_id, status);
    }
}

fn state_of(s: &TaskStatus) -> TaskState {
    TaskState::try_from(s.state).unwrap_or(TaskState::New)
}

/// Sends one batch; on success drops the sent entries that were not superseded meanwhile.
async fn send(
    link: &SessionLink,
    pending: &mut HashMap<String, TaskStatus>,
    delivered: &mut Delivered,
) -> bool {
    let batch: Vec<TaskStatusUpdate> = pending
        .iter()
        .take(MAX_BATCH)
        .map(|(id, s)| TaskStatusUpdate {
            task_id: id.clone(),
            status: Some(s.clone()),
        })
        .collect();
    let req = UpdateTaskStatusRequest {
        session_id: link.session_id.clone(),
        updates: batch.clone(),
    };
    let mut client = link.client.clone();
    match tokio::time::timeout(SEND_TIMEOUT, client.update_task_status(req)).await {
        Ok(Ok(_)) => {
            for u in batch {
                if pending.get(&u.task_id) == u.status.as_ref() {
                    pending.remove(&u.task_id);
                }
                if let Some(s) = &u.status {
                    delivered.acked(&link.session_id, &u.task_id, s);
                }
            }
            true
        }
        Ok(Err(status)) => {
            tracing::debug!(%status, "sending task status updates failed; will retry");
            false
        }
        Err(_) => {
            tracing::debug!("sending task status updates timed out; will retry");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: &str, state: TaskState) -> TaskStatusUpdate {
        TaskStatusUpdate {
            task_id: id.into(),
            status: Some(TaskStatus {
                state: state as i32,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn merge_keeps_the_newest_state_per_task() {
        let mut p = HashMap::new();
        merge(&mut p, update("a", TaskState::Running));
        merge(&mut p, update("a", TaskState::Preparing));
        merge(&mut p, update("b", TaskState::Accepted));
        merge(&mut p, update("b", TaskState::Failed));
        assert_eq!(p["a"].state, TaskState::Running as i32);
        assert_eq!(p["b"].state, TaskState::Failed as i32);
    }
}
