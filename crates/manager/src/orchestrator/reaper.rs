//! The task reaper: stops the tasks of removed services, deletes them once they are done,
//! and keeps at most the cluster's `task_history_retention_limit` tasks per slot (or per node
//! for global services), deleting the oldest finished ones. History really shrinks.

use super::{holds_slot, is_live, node_lost, observed, shut_down, ServiceWrites};
use std::collections::HashMap;
use swarm_api::*;
use swarm_store::Tables;

/// A stopped task is finished when it reached a terminal state, never started, or its node is lost.
fn finished(t: &Tables, task: &Task) -> bool {
    let state = observed(task);
    state::is_terminal(state)
        || state < TaskState::Assigned
        || task.node_id.is_empty()
        || node_lost(t, &task.node_id)
}

/// Stops (then deletes, once finished) those of `tasks` whose service is gone.
pub(crate) fn stop_orphans<'a>(
    t: &Tables,
    tasks: impl Iterator<Item = &'a Task>,
    plan: &mut ServiceWrites,
) {
    for task in tasks {
        if t.services.get(&task.service_id).is_some() {
            continue;
        }
        if is_live(task) {
            shut_down(&mut plan.txn, task);
        } else if finished(t, task) {
            plan.txn = std::mem::take(&mut plan.txn).remove(task.clone());
        }
    }
}

/// `tasks`: the service's tasks, as its pass collected them.
pub(crate) fn prune_history(
    t: &Tables,
    service: &Service,
    tasks: &[&Task],
    plan: &mut ServiceWrites,
) {
    let limit = t
        .default_cluster()
        .and_then(|c| c.spec.as_ref())
        .and_then(|s| s.orchestration.as_ref())
        .map(|o| o.task_history_retention_limit)
        .unwrap_or(defaults::TASK_HISTORY_RETENTION)
        .max(0) as usize;
    let mut groups: HashMap<(u64, &str), (usize, Vec<&Task>)> = HashMap::new();
    for task in tasks.iter().copied() {
        let key = if task.slot > 0 {
            (task.slot, "")
        } else {
            (0, task.node_id.as_str())
        };
        let g = groups.entry(key).or_default();
        if holds_slot(service, task) {
            g.0 += 1;
        } else if finished(t, task) {
            g.1.push(task);
        }
    }
    for (_, (live, mut dead)) in groups {
        let keep = limit.saturating_sub(live);
        if dead.len() <= keep {
            continue;
        }
        // Newest first; drop the oldest beyond what may be kept.
        dead.sort_by_key(|x| std::cmp::Reverse(x.meta.as_ref().map(|m| m.version).unwrap_or(0)));
        for task in dead.into_iter().skip(keep) {
            plan.txn = std::mem::take(&mut plan.txn).remove(task.clone());
        }
    }
}
