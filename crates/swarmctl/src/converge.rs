//! Whether a service has converged, judged from one look at the service, its tasks and the
//! nodes: a line per slot (per node for global services), the overall count, and whether to
//! keep waiting, stop happy, or stop with a failure. Pure: it neither calls the manager nor
//! prints (the wait loop in `cmd/wait.rs` and the display in `progress.rs` do).

use std::collections::{BTreeMap, HashMap, HashSet};

use swarm_api::{
    service_spec::Mode, state, Node, NodeState, Service, Task, TaskState, UpdateState, UpdateStatus,
};

use crate::resolve::node_name;

/// Failed or rejected tasks of the wanted spec in one slot before the wait gives up. The
/// manager would go on restarting them; the operator should hear about it instead.
pub const MAX_FAILURES: usize = 3;

/// The states a task goes through up to RUNNING, in order: a slot's bar is its position here.
pub const STEPS: [TaskState; 8] = swarm_api::state::UP_TO_RUNNING;

/// One line of progress: a slot ("2/3") or a node of a global service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub label: String,
    /// How far along `STEPS` the slot's current task is (a terminal state counts as 0).
    pub step: usize,
    /// What to print after the label: the state, lower case, and why it failed if it did.
    pub text: String,
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Waiting,
    Converged,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub lines: Vec<Line>,
    /// The overall line, e.g. "2 out of 3 tasks".
    pub overall: String,
    pub outcome: Outcome,
}

/// What was there before the wait began, so old failures and an earlier update's pause are
/// not blamed on this change.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub task_ids: HashSet<String>,
    pub update_status: Option<UpdateStatus>,
    /// The operator asked for the rollback, so rolling back is the goal, not a failure.
    pub rollback: bool,
}

/// Judges one poll. `grace_over` says the orchestrator has had time to create tasks, so a
/// global service with none (no node matches) counts as converged rather than not started.
pub fn assess(
    service: &Service,
    tasks: &[Task],
    nodes: &[Node],
    base: &Baseline,
    grace_over: bool,
) -> Assessment {
    let mode = service.spec.as_ref().and_then(|s| s.mode);
    let mut a = match mode {
        Some(Mode::Replicated(r)) => replicated(service, tasks, base, r.replicas),
        Some(Mode::Global(_)) => global(service, tasks, nodes, base, grace_over),
        Some(Mode::ReplicatedJob(j)) => job(service, tasks, base, Some(j.total_completions.max(1))),
        Some(Mode::GlobalJob(_)) => job(service, tasks, base, None),
        None => Assessment {
            lines: vec![],
            overall: "no mode".into(),
            outcome: Outcome::Converged,
        },
    };
    if let Some(why) = update_failure(service, base) {
        a.outcome = Outcome::Failed(why);
    }
    a
}

/// An update started by this change that paused or rolled back is a failed convergence.
fn update_failure(service: &Service, base: &Baseline) -> Option<String> {
    let now = service.update_status.as_ref()?;
    if let Some(before) = &base.update_status {
        if before.started_at == now.started_at && before.state == now.state {
            return None;
        }
    }
    let message = if now.message.is_empty() {
        String::new()
    } else {
        format!(": {}", now.message)
    };
    match now.state() {
        UpdateState::Paused | UpdateState::RollbackPaused => {
            Some(format!("update paused{message}"))
        }
        UpdateState::RollbackStarted | UpdateState::RollbackCompleted if !base.rollback => {
            Some(format!("update rolled back{message}"))
        }
        _ => None,
    }
}

fn observed(t: &Task) -> TaskState {
    swarm_api::state::observed(t)
}

fn created(t: &Task) -> i64 {
    t.meta.as_ref().map(|m| m.created_at).unwrap_or(0)
}

/// The task a slot is about: the newest one still meant to run, else the newest of all.
fn current<'a>(slot_tasks: &[&'a Task]) -> Option<&'a Task> {
    let newest = |a: &&&Task, b: &&&Task| created(a).cmp(&created(b)).then(a.id.cmp(&b.id));
    slot_tasks
        .iter()
        .filter(|t| t.desired_state() as i32 <= TaskState::Running as i32)
        .max_by(newest)
        .or_else(|| slot_tasks.iter().max_by(newest))
        .copied()
}

/// One line for a group of tasks (a slot or a node), and its failure if it keeps failing.
fn line(
    label: String,
    group: &[&Task],
    service: &Service,
    base: &Baseline,
) -> (Line, Option<String>) {
    let failures: Vec<&&Task> = group
        .iter()
        .filter(|t| !base.task_ids.contains(&t.id) && t.spec_version == service.spec_version)
        .filter(|t| matches!(observed(t), TaskState::Failed | TaskState::Rejected))
        .collect();
    let Some(task) = current(group) else {
        let l = Line {
            label,
            step: 0,
            text: "new".into(),
            done: false,
        };
        return (l, None);
    };
    let st = observed(task);
    let status = task.status.clone().unwrap_or_default();
    let why = if status.err.is_empty() {
        status.message.clone()
    } else {
        status.err.clone()
    };
    let mut text = state::task_state_name(st).to_lowercase();
    if (state::is_terminal(st) || st == TaskState::Pending) && !why.is_empty() {
        text = format!("{text}: {why}");
    }
    let done = st == TaskState::Running
        && task.desired_state() == TaskState::Running
        && task.spec_version == service.spec_version;
    let step = STEPS.iter().position(|s| *s == st).map_or(0, |i| i + 1);
    let failure = (failures.len() >= MAX_FAILURES).then(|| {
        let last = failures
            .iter()
            .max_by_key(|t| created(t))
            .and_then(|t| t.status.clone())
            .unwrap_or_default();
        let why = if last.err.is_empty() {
            last.message
        } else {
            last.err
        };
        format!("{label}: task failed {} times: {why}", failures.len())
    });
    let l = Line {
        label,
        step,
        text,
        done,
    };
    (l, failure)
}

fn replicated(service: &Service, tasks: &[Task], base: &Baseline, replicas: u64) -> Assessment {
    let mut slots: BTreeMap<u64, Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        slots.entry(t.slot).or_default().push(t);
    }
    let mut lines = Vec::new();
    let mut failure = None;
    for slot in 1..=replicas {
        let group = slots.get(&slot).cloned().unwrap_or_default();
        let (l, f) = line(format!("{slot}/{replicas}"), &group, service, base);
        failure = failure.or(f);
        lines.push(l);
    }
    // After a scale-down the removed slots' tasks must really stop, as `docker` waits for.
    let extra = tasks
        .iter()
        .filter(|t| t.slot > replicas && observed(t) == TaskState::Running)
        .count();
    let done = lines.iter().filter(|l| l.done).count();
    let mut overall = format!("{done} out of {replicas} tasks");
    if extra > 0 {
        overall.push_str(&format!(" ({extra} more still stopping)"));
    }
    let outcome = match failure {
        Some(f) => Outcome::Failed(f),
        None if done as u64 == replicas && extra == 0 => Outcome::Converged,
        None => Outcome::Waiting,
    };
    Assessment {
        lines,
        overall,
        outcome,
    }
}

fn global(
    service: &Service,
    tasks: &[Task],
    nodes: &[Node],
    base: &Baseline,
    grace_over: bool,
) -> Assessment {
    let names: HashMap<&str, &str> = nodes
        .iter()
        .map(|n| (n.id.as_str(), node_name(n)))
        .collect();
    // A down node's task cannot run until it is back; the orchestrator deals with it.
    let down: HashSet<&str> = nodes
        .iter()
        .filter(|n| n.status.as_ref().map(|s| s.state()) == Some(NodeState::Down))
        .map(|n| n.id.as_str())
        .collect();
    let mut by_node: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        if !t.node_id.is_empty() && !down.contains(t.node_id.as_str()) {
            by_node.entry(t.node_id.as_str()).or_default().push(t);
        }
    }
    let mut lines = Vec::new();
    let mut failure = None;
    for (node, group) in &by_node {
        // Nodes the service no longer wants (drained, constraint changed) are not waited for.
        if !group
            .iter()
            .any(|t| t.desired_state() == TaskState::Running)
        {
            continue;
        }
        let label = match names.get(node) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => node.to_string(),
        };
        let (l, f) = line(label, group, service, base);
        failure = failure.or(f);
        lines.push(l);
    }
    let done = lines.iter().filter(|l| l.done).count();
    let overall = format!("{done} out of {} tasks", lines.len());
    let outcome = match failure {
        Some(f) => Outcome::Failed(f),
        None if done == lines.len() && (!lines.is_empty() || grace_over) => Outcome::Converged,
        None => Outcome::Waiting,
    };
    Assessment {
        lines,
        overall,
        outcome,
    }
}

/// Jobs converge when their run completes: `total` completions, or (global jobs, `None`)
/// every task of this run.
fn job(service: &Service, tasks: &[Task], base: &Baseline, total: Option<u64>) -> Assessment {
    let run: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.spec_version == service.spec_version)
        .collect();
    let complete = run
        .iter()
        .filter(|t| observed(t) == TaskState::Complete)
        .count() as u64;
    let total = total.unwrap_or(run.len() as u64);
    let failed: Vec<&&Task> = run
        .iter()
        .filter(|t| !base.task_ids.contains(&t.id))
        .filter(|t| matches!(observed(t), TaskState::Failed | TaskState::Rejected))
        .collect();
    let outcome = if failed.len() >= MAX_FAILURES {
        let why = failed
            .last()
            .and_then(|t| t.status.as_ref())
            .map(|s| {
                if s.err.is_empty() {
                    s.message.clone()
                } else {
                    s.err.clone()
                }
            })
            .unwrap_or_default();
        Outcome::Failed(format!("job tasks failed {} times: {why}", failed.len()))
    } else if total > 0 && complete >= total {
        Outcome::Converged
    } else {
        Outcome::Waiting
    };
    Assessment {
        lines: vec![],
        overall: format!("{complete} out of {total} completed"),
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_api::{Meta, ReplicatedService, ServiceSpec, TaskStatus};

    fn service(replicas: u64) -> Service {
        Service {
            id: "s".into(),
            spec_version: 2,
            spec: Some(ServiceSpec {
                mode: Some(Mode::Replicated(ReplicatedService { replicas })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn task(id: &str, slot: u64, st: TaskState, created: i64) -> Task {
        Task {
            id: id.into(),
            slot,
            spec_version: 2,
            desired_state: TaskState::Running as i32,
            meta: Some(Meta {
                created_at: created,
                ..Default::default()
            }),
            status: Some(TaskStatus {
                state: st as i32,
                err: if st == TaskState::Failed {
                    "exit code 1".into()
                } else {
                    String::new()
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn converges_only_when_every_slot_runs_the_current_spec() {
        let svc = service(2);
        let base = Baseline::default();
        let mut tasks = vec![
            task("a", 1, TaskState::Running, 1),
            task("b", 2, TaskState::Preparing, 1),
        ];
        let a = assess(&svc, &tasks, &[], &base, true);
        assert_eq!(a.outcome, Outcome::Waiting);
        assert_eq!(a.overall, "1 out of 2 tasks");
        assert_eq!(a.lines[1].text, "preparing");
        assert_eq!(a.lines[1].step, 5);
        tasks[1] = task("b", 2, TaskState::Running, 1);
        tasks[1].spec_version = 1;
        let a = assess(&svc, &tasks, &[], &base, true);
        assert_eq!(a.outcome, Outcome::Waiting, "old spec is not converged");
        tasks[1].spec_version = 2;
        let a = assess(&svc, &tasks, &[], &base, true);
        assert_eq!(a.outcome, Outcome::Converged);
        assert_eq!(a.overall, "2 out of 2 tasks");
    }

    #[test]
    fn a_slot_that_keeps_failing_fails_the_wait_and_says_why() {
        let svc = service(1);
        let mut tasks = vec![
            task("f1", 1, TaskState::Failed, 1),
            task("f2", 1, TaskState::Failed, 2),
        ];
        let base = Baseline::default();
        assert_eq!(
            assess(&svc, &tasks, &[], &base, true).outcome,
            Outcome::Waiting
        );
        tasks.push(task("f3", 1, TaskState::Failed, 3));
        assert_eq!(
            assess(&svc, &tasks, &[], &base, true).outcome,
            Outcome::Failed("1/1: task failed 3 times: exit code 1".into())
        );
        // Failures from before the change are not this change's fault.
        let old = Baseline {
            task_ids: ["f1".to_string()].into_iter().collect(),
            ..Default::default()
        };
        assert_eq!(
            assess(&svc, &tasks, &[], &old, true).outcome,
            Outcome::Waiting
        );
    }

    #[test]
    fn scale_down_waits_for_removed_slots_to_stop() {
        let svc = service(1);
        let tasks = vec![
            task("a", 1, TaskState::Running, 1),
            task("b", 2, TaskState::Running, 1),
        ];
        let a = assess(&svc, &tasks, &[], &Baseline::default(), true);
        assert_eq!(a.outcome, Outcome::Waiting);
        assert_eq!(a.overall, "1 out of 1 tasks (1 more still stopping)");
    }

    #[test]
    fn a_paused_update_of_this_change_fails_but_an_older_one_does_not() {
        let mut svc = service(1);
        let tasks = vec![task("a", 1, TaskState::Running, 1)];
        let paused = UpdateStatus {
            state: UpdateState::Paused as i32,
            started_at: 5,
            message: "update paused due to failure".into(),
            ..Default::default()
        };
        svc.update_status = Some(paused.clone());
        let fresh = Baseline::default();
        assert_eq!(
            assess(&svc, &tasks, &[], &fresh, true).outcome,
            Outcome::Failed("update paused: update paused due to failure".into())
        );
        let before = Baseline {
            update_status: Some(paused),
            ..Default::default()
        };
        assert_eq!(
            assess(&svc, &tasks, &[], &before, true).outcome,
            Outcome::Converged
        );
    }
}
