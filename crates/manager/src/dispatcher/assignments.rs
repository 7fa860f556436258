//! One agent's assignment stream: the complete set of tasks the node must run or stop, sent
//! again whenever that set (or a desired state in it) changes.

use swarm_api::*;
use swarm_store::{Change, Store, Tables};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// Tasks the agent has to act on: assigned and not yet finished.
fn assigned(t: &Tables, node_id: &str) -> Vec<Task> {
    t.tasks_of_node(node_id)
        .filter(|x| {
            let s = x.status.as_ref().map(|s| s.state).unwrap_or(0);
            s >= TaskState::Assigned as i32
                && !state::is_terminal(TaskState::try_from(s).unwrap_or(TaskState::New))
        })
        .cloned()
        .collect()
}

fn fingerprint(tasks: &[Task]) -> Vec<(String, i32, u64)> {
    tasks
        .iter()
        .map(|x| (x.id.clone(), x.desired_state, x.spec_version))
        .collect()
}

fn touches(change: &Change, node_id: &str) -> bool {
    match change {
        Change::Restored => true,
        Change::Batch { events, .. } => events.iter().any(|e| match &e.object.object {
            Some(store_object::Object::Task(x)) => x.node_id == node_id,
            _ => false,
        }),
    }
}

pub(crate) async fn stream(
    store: Store,
    node_id: String,
    cancel: CancellationToken,
    tx: mpsc::Sender<Result<AssignmentsMessage, Status>>,
) {
    let (mut tasks, mut rx) = store.view_and_watch(|t| assigned(t, &node_id));
    let mut last = None;
    loop {
        let fp = fingerprint(&tasks);
        if last.as_ref() != Some(&fp) {
            let msg = AssignmentsMessage {
                r#type: AssignmentsType::Complete as i32,
                tasks,
                removed_task_ids: vec![],
            };
            if tx.send(Ok(msg)).await.is_err() {
                return;
            }
            last = Some(fp);
        }
        // Wait for a change to this node's tasks.
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tx.closed() => return,
                r = rx.recv() => match r {
                    Ok(c) if touches(&c, &node_id) => break,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                },
            }
        }
        tasks = store.view(|t| assigned(t, &node_id));
    }
}
