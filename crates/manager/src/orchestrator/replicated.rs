//! Replicated services: slots 1..=replicas each hold one live task. Missing slots get a new
//! task; slots beyond the count (scale down) have their tasks stopped, highest slots first.

use super::{is_live, shut_down, task::new_task, ServiceWrites};
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
