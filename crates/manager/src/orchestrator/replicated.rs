//! Replicated services: slots 1..=replicas each hold one live task. Missing slots get a new
//! task; slots beyond the count (scale down) have their tasks stopped, highest slots first; a
//! slot holding two live tasks of the same spec version keeps the one furthest along.

use super::{is_live, observed, shut_down, task::new_task, ServiceWrites};
use crate::orchestrator::restart::Replaced;
use std::collections::BTreeMap;
use swarm_api::*;

pub(crate) fn reconcile(
    service: &Service,
    tasks: &[&Task],
    replicas: u64,
    replaced: &Replaced,
    plan: &mut ServiceWrites,
) {
    let mut slots: BTreeMap<u64, Vec<&Task>> = BTreeMap::new();
    for task in tasks
        .iter()
        .copied()
        .filter(|x| is_live(x) && !replaced.old_ids.contains(&x.id))
    {
        slots.entry(task.slot).or_default().push(task);
    }
    for s in &replaced.slots {
        slots.entry(*s).or_default();
    }
    for tasks in slots.values() {
        stop_duplicates(tasks, plan);
    }
    let occupied: Vec<u64> = slots.keys().copied().collect();
    let count = occupied.len() as u64;
    if count > replicas {
        // Keep the lowest slots; stop everything in the rest.
        for slot in occupied.iter().skip(replicas as usize) {
            for task in slots.get(slot).into_iter().flatten() {
                shut_down(&mut plan.txn, task);
            }
        }
    } else if count < replicas {
        let mut missing = replicas - count;
        let mut slot = 1;
        while missing > 0 {
            if !slots.contains_key(&slot) {
                plan.txn = std::mem::take(&mut plan.txn).create(new_task(service, slot, ""));
                missing -= 1;
            }
            slot += 1;
        }
    }
}

/// Two live tasks of one spec version in one slot are one too many, however they came about
/// (a leader that decided before its store held its predecessor's last writes). Two versions
/// in a slot are a start-first update's, and the updater's to settle.
fn stop_duplicates(tasks: &[&Task], plan: &mut ServiceWrites) {
    if tasks.len() < 2 {
        return;
    }
    let mut by_version: BTreeMap<u64, Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        by_version.entry(t.spec_version).or_default().push(t);
    }
    for mut same in by_version.into_values().filter(|v| v.len() > 1) {
        // The keeper: not ended, furthest along, then the lowest ID (every manager agrees).
        same.sort_by(|a, b| {
            let rank = |t: &Task| {
                let state = observed(t);
                (!state::is_terminal(state), state as i32)
            };
            rank(b).cmp(&rank(a)).then_with(|| a.id.cmp(&b.id))
        });
        for extra in &same[1..] {
            shut_down(&mut plan.txn, extra);
        }
    }
}
