//! The restart supervisor: a task that ended while it should run, or that sits on a node that
//! is lost (down, drained, removed, or no longer satisfying the service's constraints), is replaced in the same slot (replicated) or on the same
//! node (global), following the service's restart policy. Tasks on lost nodes move at once:
//! the node is gone, there is nothing to wait for. Ended tasks wait out the policy's delay,
//! counted from the moment they ended, so a new leader resumes the same schedule.

use super::{is_live, node_lost, observed, shut_down, task::new_task, ServiceWrites};
use crate::scheduler::constraint;
use std::collections::HashSet;
use swarm_api::*;
use swarm_store::Tables;

/// What the supervisor replaced this pass, so slot and node filling don't do it twice.
#[derive(Default)]
pub(crate) struct Replaced {
    pub old_ids: HashSet<String>,
    pub slots: HashSet<u64>,
    pub nodes: HashSet<String>,
}

pub(crate) fn policy(spec: &ServiceSpec) -> RestartPolicy {
    let job = matches!(
        spec.mode,
        Some(service_spec::Mode::ReplicatedJob(_)) | Some(service_spec::Mode::GlobalJob(_))
    );
    let mut p = spec
        .task
        .as_ref()
        .and_then(|t| t.restart)
        .unwrap_or(RestartPolicy {
            condition: RestartCondition::Any as i32,
            delay_ms: defaults::RESTART_DELAY_MS,
            max_attempts: 0,
            window_ms: 0,
            ..Default::default()
        });
    // A job's finished task is never run again, whatever the policy says.
    if job && p.condition == RestartCondition::Any as i32 {
        p.condition = RestartCondition::OnFailure as i32;
    }
    p
}

pub(crate) fn reconcile(
    t: &Tables,
    service: &Service,
    tasks: &[&Task],
    spec: &ServiceSpec,
    now: i64,
    plan: &mut ServiceWrites,
) -> Replaced {
    let mut out = Replaced::default();
    let global = super::places_per_node(spec);
    let job = matches!(
        spec.mode,
        Some(service_spec::Mode::ReplicatedJob(_)) | Some(service_spec::Mode::GlobalJob(_))
    );
    let policy = policy(spec);
    // A node that stopped satisfying the constraints (a label removed) loses the task too.
    let constraints = spec
        .task
        .as_ref()
        .and_then(|x| x.placement.as_ref())
        .and_then(|p| constraint::parse_all(&p.constraints).ok())
        .unwrap_or_default();
    let unfit = |node_id: &str| {
        t.nodes
            .get(node_id)
            .is_some_and(|n| !constraint::all_match(&constraints, n))
    };
    for task in tasks.iter().copied().filter(|x| is_live(x)) {
        // A job's completed task is done, whatever becomes of its node: replacing it would run
        // the work again. (`jobs` marks it desired COMPLETE in this same pass.)
        if job && observed(task) == TaskState::Complete {
            continue;
        }
        let on_lost_node = !task.node_id.is_empty()
            && (node_lost(t, &task.node_id) || (!global && unfit(&task.node_id)));
        let state = observed(task);
        if on_lost_node {
            shut_down(&mut plan.txn, task);
            out.old_ids.insert(task.id.clone());
            // A global task belongs to its node: the global orchestrator decides about that node.
            if !global {
                replace(service, task, plan, &mut out);
            }
            continue;
        }
        if !state::is_terminal(state) {
            continue;
        }
        if !should_restart(tasks, task, state, &policy, now) {
            continue;
        }
        let ended_at = task.status.as_ref().map(|s| s.timestamp).unwrap_or(0);
        let due = ended_at.saturating_add(policy.delay_ms.max(0));
        if now < due {
            plan.wake(due);
            continue;
        }
        shut_down(&mut plan.txn, task);
        out.old_ids.insert(task.id.clone());
        replace(service, task, plan, &mut out);
    }
    out
}

fn replace(service: &Service, old: &Task, plan: &mut ServiceWrites, out: &mut Replaced) {
    let new = new_task(
        service,
        old.slot,
        if old.slot == 0 { &old.node_id } else { "" },
    );
    if old.slot > 0 {
        out.slots.insert(old.slot);
    } else {
        out.nodes.insert(old.node_id.clone());
    }
    plan.txn = std::mem::take(&mut plan.txn).create(new);
}

fn should_restart(
    tasks: &[&Task],
    task: &Task,
    state: TaskState,
    policy: &RestartPolicy,
    now: i64,
) -> bool {
    let condition = RestartCondition::try_from(policy.condition).unwrap_or(RestartCondition::Any);
    match condition {
        RestartCondition::None => return false,
        RestartCondition::OnFailure if state == TaskState::Complete => return false,
        _ => {}
    }
    if policy.max_attempts == 0 {
        return true;
    }
    // Earlier attempts: the slot's (or node's) tasks that already ended and were replaced.
    let attempts = tasks
        .iter()
        .copied()
        .filter(|x| x.id != task.id && !is_live(x))
        .filter(|x| {
            if task.slot > 0 {
                x.slot == task.slot
            } else {
                x.node_id == task.node_id
            }
        })
        .filter(|x| state::is_terminal(observed(x)))
        .filter(|x| {
            policy.window_ms <= 0
                || x.status
                    .as_ref()
                    .is_some_and(|s| s.timestamp >= now - policy.window_ms)
        })
        .count() as u64;
    attempts < policy.max_attempts
}
