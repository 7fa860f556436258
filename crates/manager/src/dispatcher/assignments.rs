//! One agent's assignment stream: first the complete set of tasks the node must run or stop,
//! then only what changed: tasks that are new to the node or whose desired state or spec
//! version moved (INCREMENTAL), or the complete set again when a task left it. Woken by the
//! dispatcher's fan-out (`fanout.rs`) when a task of the node is written; it reads the store,
//! never writes.
//!
//! Why deltas: most wake-ups are the node's own status reports, which change nothing the
//! agent is sent. Re-reading and copying the node's whole set on each of them made filling a
//! node with k tasks cost k² task copies, so placements slowed down as the cluster filled.
//! For the same reason a wake-up reads only the tasks written since the last one (the
//! fan-out records their IDs), not every task of the node: at 100 tasks per node those
//! reads were 12 % of the manager's CPU.

use super::fanout::{TaskChanges, TaskWake};
use std::collections::{HashMap, HashSet};
use swarm_api::*;
use swarm_store::{Store, Tables};
use tokio_util::sync::CancellationToken;

/// Whether the agent has to act on `x`: assigned and not yet finished.
fn live(x: &Task) -> bool {
    let s = x.status.as_ref().map(|s| s.state).unwrap_or(0);
    s >= TaskState::Assigned as i32
        && !state::is_terminal(TaskState::try_from(s).unwrap_or(TaskState::New))
}

/// Tasks the agent has to act on.
fn assigned<'a>(t: &'a Tables, node_id: &str) -> impl Iterator<Item = &'a Task> + 'a {
    t.tasks_of_node(node_id).filter(|x| live(x))
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

/// What the agent was last told of each task: (desired state, spec version).
type Sent = HashMap<String, (i32, u64)>;

fn sent_form(x: &Task) -> (i32, u64) {
    (x.desired_state, x.spec_version)
}

/// How the node's live tasks differ from what its agent was sent.
struct Diff<'a> {
    /// New or changed tasks, in ID order.
    changed: Vec<&'a Task>,
    /// A task the agent holds is no longer live on this node.
    left: bool,
}

/// Reads only the tasks written since the last message (`ids`).
fn diff_written<'a>(
    t: &'a Tables,
    node_id: &str,
    before: &Sent,
    ids: &HashSet<String>,
) -> Diff<'a> {
    let mut diff = Diff {
        changed: Vec::new(),
        left: false,
    };
    for id in ids {
        let now = t.tasks.get(id).filter(|x| x.node_id == node_id && live(x));
        match (before.get(id), now) {
            (Some(_), None) => diff.left = true,
            (Some(f), Some(x)) if *f == sent_form(x) => {}
            (_, Some(x)) => diff.changed.push(x),
            (None, None) => {}
        }
    }
    diff.changed.sort_by(|a, b| a.id.cmp(&b.id));
    diff
}

/// Reads every live task of the node.
fn diff_all<'a>(t: &'a Tables, node_id: &str, before: &Sent) -> Diff<'a> {
    let mut still = 0;
    let mut changed = Vec::new();
    for x in assigned(t, node_id) {
        match before.get(&x.id) {
            Some(f) if *f == sent_form(x) => still += 1,
            Some(_) => {
                still += 1;
                changed.push(x);
            }
            None => changed.push(x),
        }
    }
    Diff {
        changed,
        left: still < before.len(),
    }
}

/// The message that brings an agent holding `sent` up to date, or `None` when nothing it is
/// told changed. Updates `sent` to what the message says. `changes` names the tasks written
/// since the last call; only those are read (all of the node's when it says `all`).
fn next_message(
    t: &Tables,
    node_id: &str,
    sent: &mut Option<Sent>,
    changes: &TaskChanges,
) -> Option<AssignmentsMessage> {
    let (kind, tasks) = match sent {
        None => (AssignmentsType::Complete, assigned(t, node_id).collect()),
        Some(before) => {
            let diff = if changes.all {
                diff_all(t, node_id, before)
            } else {
                diff_written(t, node_id, before, &changes.ids)
            };
            if diff.left {
                // A task left the set: a complete set, so the agent also drops the secrets
                // only that task used.
                (AssignmentsType::Complete, assigned(t, node_id).collect())
            } else if diff.changed.is_empty() {
                return None;
            } else {
                (AssignmentsType::Incremental, diff.changed)
            }
        }
    };
    let tasks: Vec<Task> = tasks.into_iter().cloned().collect();
    let record = sent.get_or_insert_with(Sent::new);
    if kind == AssignmentsType::Complete {
        record.clear();
    }
    record.extend(tasks.iter().map(|x| (x.id.clone(), sent_form(x))));
    let (secrets, configs) = dependencies(t, &tasks);
    Some(AssignmentsMessage {
        r#type: kind as i32,
        tasks,
        removed_task_ids: vec![],
        secrets,
        configs,
    })
}

pub(crate) async fn stream(
    store: Store,
    node_id: String,
    // Subscribed by the caller before this first read, so no change falls in between.
    mut wake: TaskWake,
    cancel: CancellationToken,
    tx: super::streams::Sender<AssignmentsMessage>,
) {
    let mut sent = None;
    loop {
        let changes = wake.take();
        if let Some(msg) = store.view(|t| next_message(t, &node_id, &mut sent, &changes)) {
            if tx.send(Box::new(msg)).await.is_err() {
                return;
            }
        }
        // Wait for a change to this node's tasks (or a snapshot install, or a missed batch).
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tx.closed() => return,
            r = wake.signal.changed() => if r.is_err() { return },
        }
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
            spec: Some(
                TaskSpec {
                    secrets: vec![SecretReference {
                        secret_id: secret.into(),
                        secret_name: secret.into(),
                        target: secret.into(),
                    }],
                    ..Default::default()
                }
                .into(),
            ),
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
        let msg = store
            .view(|t| next_message(t, "n1", &mut None, &TaskChanges::everything()))
            .unwrap();
        assert_eq!(msg.tasks.len(), 1);
        let ids: Vec<&str> = msg.secrets.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a"]);
        assert_eq!(msg.secrets[0].spec.as_ref().unwrap().data, b"data");
        assert!(msg.configs.is_empty());
    }

    fn write(store: &Store, index: u64, id: &str, edit: impl FnOnce(&mut Task)) {
        let mut x = store.view(|t| t.tasks.get(id).cloned()).unwrap();
        edit(&mut x);
        store
            .apply(index, &Txn::new().update(x).into_batch())
            .unwrap();
    }

    /// The next message after a write to `written`: told just those IDs (as the fan-out
    /// does), or told that anything may have changed.
    fn next(
        store: &Store,
        sent: &mut Option<Sent>,
        listed: bool,
        written: &[&str],
    ) -> Option<AssignmentsMessage> {
        let changes = if listed {
            TaskChanges {
                all: false,
                ids: written.iter().map(|id| id.to_string()).collect(),
            }
        } else {
            TaskChanges::everything()
        };
        store.view(|t| next_message(t, "n1", sent, &changes))
    }

    /// After the first complete set: a status report sends nothing, a new task or a changed
    /// desired state is sent alone (with its secret), and a task leaving the set sends the
    /// complete set again. The same whether the stream reads only the written tasks or all
    /// of the node's.
    #[test]
    fn only_changes_are_sent_after_the_first_set() {
        only_changes_are_sent(false);
    }

    #[test]
    fn only_changes_are_sent_reading_only_the_written_tasks() {
        only_changes_are_sent(true);
    }

    fn only_changes_are_sent(listed: bool) {
        let store = Store::new();
        let txn = Txn::new()
            .create(secret("a"))
            .create(secret("b"))
            .create(task("t1", "n1", "a", TaskState::Assigned))
            .create(task("t2", "n1", "a", TaskState::Assigned));
        store.apply(1, &txn.into_batch()).unwrap();
        let mut sent = None;
        let first = next(&store, &mut sent, listed, &[]).unwrap();
        assert_eq!(first.r#type(), AssignmentsType::Complete);
        assert_eq!(first.tasks.len(), 2);

        write(&store, 2, "t1", |x| {
            x.status = task("", "", "", TaskState::Running).status;
        });
        assert!(next(&store, &mut sent, listed, &["t1"]).is_none());

        store
            .apply(
                3,
                &Txn::new()
                    .create(task("t3", "n1", "b", TaskState::Assigned))
                    .into_batch(),
            )
            .unwrap();
        let grew = next(&store, &mut sent, listed, &["t3"]).unwrap();
        assert_eq!(grew.r#type(), AssignmentsType::Incremental);
        let ids: Vec<&str> = grew.tasks.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, ["t3"]);
        let secrets: Vec<&str> = grew.secrets.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(secrets, ["b"]);

        write(&store, 4, "t2", |x| {
            x.desired_state = TaskState::Shutdown as i32
        });
        let stop = next(&store, &mut sent, listed, &["t2"]).unwrap();
        assert_eq!(stop.r#type(), AssignmentsType::Incremental);
        assert_eq!(stop.tasks.len(), 1);
        assert_eq!(stop.tasks[0].desired_state, TaskState::Shutdown as i32);

        write(&store, 5, "t2", |x| {
            x.status = task("", "", "", TaskState::Shutdown).status;
        });
        let left = next(&store, &mut sent, listed, &["t2"]).unwrap();
        assert_eq!(left.r#type(), AssignmentsType::Complete);
        let ids: Vec<&str> = left.tasks.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, ["t1", "t3"]);
        assert!(next(&store, &mut sent, listed, &["t2"]).is_none());
    }
}
