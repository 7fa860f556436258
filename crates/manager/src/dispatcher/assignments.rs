//! One agent's assignment stream: the complete set of tasks the node must run or stop, sent
//! again whenever that set (or a desired state in it) changes. Woken by the dispatcher's
//! fan-out (`fanout.rs`) when a task of the node is written; it reads the store, never writes.

use swarm_api::*;
use swarm_store::{Store, Tables};
use tokio::sync::{mpsc, watch};
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

/// The secrets and configs `tasks` use, with their data: the only ones this node may receive
/// (DESIGN §3). Secrets are immutable, so they change only when the task set does.
fn dependencies(t: &Tables, tasks: &[Task]) -> (Vec<Secret>, Vec<Config>) {
    let mut secret_ids = std::collections::BTreeSet::new();
    let mut config_ids = std::collections::BTreeSet::new();
    for spec in tasks.iter().filter_map(|x| x.spec.as_ref()) {
        secret_ids.extend(spec.secrets.iter().map(|r| r.secret_id.as_str()));
        config_ids.extend(spec.configs.iter().map(|r| r.config_id.as_str()));
    }
    // A reference to something gone (removal raced a service write) is left out; the agent
    // then fails that task rather than start it without its file.
    let secrets = secret_ids
        .into_iter()
        .filter_map(|id| t.secrets.get(id).cloned())
        .collect();
    let configs = config_ids
        .into_iter()
        .filter_map(|id| t.configs.get(id).cloned())
        .collect();
    (secrets, configs)
}

/// The node's assignment set: its tasks and what they use.
fn snapshot(t: &Tables, node_id: &str) -> (Vec<Task>, Vec<Secret>, Vec<Config>) {
    let tasks = assigned(t, node_id);
    let (secrets, configs) = dependencies(t, &tasks);
    (tasks, secrets, configs)
}

fn fingerprint(tasks: &[Task]) -> Vec<(String, i32, u64)> {
    tasks
        .iter()
        .map(|x| (x.id.clone(), x.desired_state, x.spec_version))
        .collect()
}

pub(crate) async fn stream(
    store: Store,
    node_id: String,
    // Subscribed by the caller before this first read, so no change falls in between.
    mut wake: watch::Receiver<()>,
    cancel: CancellationToken,
    tx: mpsc::Sender<Result<AssignmentsMessage, Status>>,
) {
    let (mut tasks, mut secrets, mut configs) = store.view(|t| snapshot(t, &node_id));
    let mut last = None;
    loop {
        let fp = fingerprint(&tasks);
        if last.as_ref() != Some(&fp) {
            let msg = AssignmentsMessage {
                r#type: AssignmentsType::Complete as i32,
                tasks,
                removed_task_ids: vec![],
                secrets,
                configs,
            };
            if tx.send(Ok(msg)).await.is_err() {
                return;
            }
            last = Some(fp);
        }
        // Wait for a change to this node's tasks (or a snapshot install, or a missed batch).
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tx.closed() => return,
            r = wake.changed() => if r.is_err() { return },
        }
        (tasks, secrets, configs) = store.view(|t| snapshot(t, &node_id));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use swarm_store::Txn;

    fn task(id: &str, node: &str, secret: &str, state: TaskState) -> Task {
        Task {
            id: id.into(),
            node_id: node.into(),
            spec: Some(TaskSpec {
                secrets: vec![SecretReference {
                    secret_id: secret.into(),
                    secret_name: secret.into(),
                    target: secret.into(),
                }],
                ..Default::default()
            }),
            status: Some(TaskStatus {
                state: state as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn secret(id: &str) -> Secret {
        Secret {
            id: id.into(),
            spec: Some(SecretSpec {
                annotations: Some(Annotations {
                    name: id.into(),
                    ..Default::default()
                }),
                data: b"data".to_vec(),
            }),
            ..Default::default()
        }
    }

    /// A node gets the secrets of its own unfinished tasks, and no one else's.
    #[test]
    fn only_secrets_of_the_nodes_live_tasks_are_sent() {
        let store = Store::new();
        let txn = Txn::new()
            .create(secret("a"))
            .create(secret("b"))
            .create(secret("c"))
            .create(task("t1", "n1", "a", TaskState::Running))
            .create(task("t2", "n2", "b", TaskState::Running))
            .create(task("t3", "n1", "c", TaskState::Complete));
        store.apply(1, &txn.into_batch()).unwrap();
        let (tasks, secrets, configs) = store.view(|t| snapshot(t, "n1"));
        assert_eq!(tasks.len(), 1);
        let ids: Vec<&str> = secrets.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a"]);
        assert_eq!(secrets[0].spec.as_ref().unwrap().data, b"data");
        assert!(configs.is_empty());
    }
}
