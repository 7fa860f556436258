//! Global services: one live task on every node that can take new tasks and satisfies the
//! service's constraints; tasks on nodes that no longer qualify are stopped.

use super::{is_live, shut_down, task::new_task, ServiceWrites};
use crate::orchestrator::restart::Replaced;
use crate::scheduler::constraint;
use std::collections::HashSet;
use swarm_api::*;
use swarm_store::Tables;

pub(crate) fn reconcile(
    t: &Tables,
    service: &Service,
    tasks: &[&Task],
    replaced: &Replaced,
    plan: &mut ServiceWrites,
) {
    let constraints = constraints_of(service);
    let fits = |n: &Node| eligible(n, &constraints);
    let mut covered: HashSet<&str> = HashSet::new();
    for task in tasks
        .iter()
        .copied()
        .filter(|x| is_live(x) && !replaced.old_ids.contains(&x.id))
    {
        let keep = t.nodes.get(&task.node_id).is_some_and(|n| {
            // A paused node keeps what it runs; a node that stopped matching does not.
            let paused = n
                .spec
                .as_ref()
                .is_some_and(|s| s.availability == NodeAvailability::Pause as i32);
            fits(n) || (paused && constraint::all_match(&constraints, n))
        });
        if keep && covered.insert(task.node_id.as_str()) {
            continue;
        }
        shut_down(&mut plan.txn, task);
    }
    for node in t.nodes.iter().filter(|n| fits(n)) {
        if !covered.contains(node.id.as_str()) && !replaced.nodes.contains(&node.id) {
            plan.txn = std::mem::take(&mut plan.txn).create(new_task(service, 0, &node.id));
        }
    }
}

pub(crate) fn constraints_of(service: &Service) -> Vec<constraint::Constraint> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.task.as_ref())
        .and_then(|t| t.placement.as_ref())
        .map(|p| constraint::parse_all(&p.constraints).unwrap_or_default())
        .unwrap_or_default()
}

/// A node that may take a new task of a per-node service: up, active, and matching.
pub(crate) fn eligible(n: &Node, constraints: &[constraint::Constraint]) -> bool {
    let ready = n
        .status
        .as_ref()
        .is_some_and(|s| s.state == NodeState::Ready as i32);
    let active = n
        .spec
        .as_ref()
        .is_none_or(|s| s.availability == NodeAvailability::Active as i32);
    ready && active && constraint::all_match(constraints, n)
}
