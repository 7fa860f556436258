//! Jobs: services whose tasks run to completion. A replicated job needs `total_completions`
//! successful tasks (one per slot 1..=total), running at most `max_concurrent` at a time; a
//! global job runs one task on every eligible node. A finished task is never run again; a
//! failed one is restarted by the restart supervisor (jobs default to on-failure). Each spec
//! version is one run of the job: changing the spec (or `--force`) starts a new run and stops
//! whatever of the previous run is still going.

use super::global::{constraints_of, eligible};
use super::{is_live, observed, shut_down, task::new_task, ServiceWrites};
use crate::orchestrator::restart::Replaced;
use std::collections::HashSet;
use swarm_api::*;
use swarm_store::Tables;

/// Stops live tasks of earlier runs.
fn stop_previous_runs(
    service: &Service,
    tasks: &[&Task],
    replaced: &Replaced,
    plan: &mut ServiceWrites,
) {
    for x in tasks.iter().copied() {
        if is_live(x) && x.spec_version != service.spec_version && !replaced.old_ids.contains(&x.id)
        {
            shut_down(&mut plan.txn, x);
        }
    }
}

/// A task of the current run that completed is desired COMPLETE from then on (as Docker
/// shows it): it is no longer live, so nothing stops, moves or restarts it. (Earlier runs'
/// tasks are `stop_previous_runs`'s.)
fn settle_completed(service: &Service, tasks: &[&Task], plan: &mut ServiceWrites) {
    for x in tasks.iter().copied() {
        if x.spec_version == service.spec_version
            && is_live(x)
            && observed(x) == TaskState::Complete
        {
            let mut done = x.clone();
            done.desired_state = TaskState::Complete as i32;
            plan.txn = std::mem::take(&mut plan.txn).update(done);
        }
    }
}

pub(crate) fn replicated(
    service: &Service,
    tasks: &[&Task],
    job: &ReplicatedJob,
    replaced: &Replaced,
    plan: &mut ServiceWrites,
) {
    stop_previous_runs(service, tasks, replaced, plan);
    settle_completed(service, tasks, plan);
    let total = job.total_completions.max(1);
    let max_concurrent = if job.max_concurrent == 0 {
        total
    } else {
        job.max_concurrent
    };
    let mut done: HashSet<u64> = HashSet::new();
    let mut active: HashSet<u64> = replaced.slots.clone();
    for x in tasks
        .iter()
        .copied()
        .filter(|x| x.spec_version == service.spec_version)
    {
        if observed(x) == TaskState::Complete {
            done.insert(x.slot);
        } else if is_live(x) && !replaced.old_ids.contains(&x.id) {
            active.insert(x.slot);
        }
    }
    let mut running = active.difference(&done).count() as u64;
    for slot in 1..=total {
        if running >= max_concurrent {
            break;
        }
        if done.contains(&slot) || active.contains(&slot) {
            continue;
        }
        plan.txn = std::mem::take(&mut plan.txn).create(new_task(service, slot, ""));
        running += 1;
    }
}

pub(crate) fn global<'a>(
    t: &'a Tables,
    service: &Service,
    tasks: &[&'a Task],
    replaced: &Replaced,
    plan: &mut ServiceWrites,
) {
    stop_previous_runs(service, tasks, replaced, plan);
    settle_completed(service, tasks, plan);
    let constraints = constraints_of(service);
    // Nodes that already have a task of this run, finished or not.
    let covered: HashSet<&str> = tasks
        .iter()
        .copied()
        .filter(|x| {
            x.spec_version == service.spec_version
                && (is_live(x) || observed(x) == TaskState::Complete)
        })
        .map(|x| x.node_id.as_str())
        .collect();
    for node in t.nodes.iter().filter(|n| eligible(n, &constraints)) {
        if !covered.contains(node.id.as_str()) && !replaced.nodes.contains(&node.id) {
            plan.txn = std::mem::take(&mut plan.txn).create(new_task(service, 0, &node.id));
        }
    }
}
