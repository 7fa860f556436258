//! Rebalancing (beyond SwarmKit, opt-in with `service update --rebalance`): tasks on nodes
//! holding more than their even share of a replicated service (the ceiling of tasks over
//! eligible nodes) are moved, in batches of the update config's parallelism with its delay
//! between batches; the scheduler's spread puts each replacement on the least-loaded node.
//! Waits while an update is rolling; clears the request once the service is balanced.

use super::global::{constraints_of, eligible};
use super::{is_live, observed, shut_down, task::new_task, ServiceWrites};
use crate::orchestrator::restart::Replaced;
use std::collections::HashMap;
use swarm_api::*;
use swarm_store::Tables;

#[derive(Default)]
pub(crate) struct Rebalances {
    /// Per service: replacement tasks in flight, and when they all first ran.
    inflight: HashMap<String, (Vec<String>, Option<i64>)>,
}

impl Rebalances {
    pub(crate) fn reconcile(
        &mut self,
        t: &Tables,
        service: &Service,
        tasks: &[&Task],
        replaced: &Replaced,
        now: i64,
        plan: &mut ServiceWrites,
    ) {
        if !service.rebalance_requested {
            self.inflight.remove(&service.id);
            return;
        }
        let live: Vec<&Task> = tasks
            .iter()
            .copied()
            .filter(|x| is_live(x) && !replaced.old_ids.contains(&x.id))
            .collect();
        if live.iter().any(|x| x.spec_version != service.spec_version)
            || !replaced.old_ids.is_empty()
        {
            // An update or a restart is under way: let it finish first.
            return;
        }
        let cfg = service
            .spec
            .as_ref()
            .and_then(|s| s.update)
            .unwrap_or_default();
        let (moving, running_since) = self.inflight.entry(service.id.clone()).or_default();
        if !moving.is_empty() {
            let done = moving.iter().all(|id| {
                t.tasks
                    .get(id)
                    .is_none_or(|x| !is_live(x) || observed(x) == TaskState::Running)
            });
            if !done {
                return;
            }
            let since = *running_since.get_or_insert(now);
            if now < since.saturating_add(cfg.delay_ms.max(0)) {
                plan.wake(since.saturating_add(cfg.delay_ms.max(0)));
                return;
            }
            moving.clear();
            *running_since = None;
        }

        let constraints = constraints_of(service);
        let nodes: Vec<&Node> = t
            .nodes
            .iter()
            .filter(|n| eligible(n, &constraints))
            .collect();
        if nodes.is_empty() || live.is_empty() {
            return;
        }
        let share = live.len().div_ceil(nodes.len());
        let mut on_node: HashMap<&str, Vec<&Task>> = HashMap::new();
        for x in &live {
            on_node.entry(x.node_id.as_str()).or_default().push(x);
        }
        // Excess tasks, from the fullest nodes first, highest slots first.
        let mut excess: Vec<&Task> = Vec::new();
        let mut full: Vec<(&str, Vec<&Task>)> = on_node
            .into_iter()
            .filter(|(n, v)| !n.is_empty() && v.len() > share)
            .collect();
        full.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
        for (_, mut tasks) in full {
            tasks.sort_by_key(|x| std::cmp::Reverse(x.slot));
            let extra = tasks.len() - share;
            excess.extend(tasks.into_iter().take(extra));
        }
        if excess.is_empty() {
            let mut s = service.clone();
            s.rebalance_requested = false;
            plan.txn = std::mem::take(&mut plan.txn).update(s);
            return;
        }
        let take = if cfg.parallelism == 0 {
            excess.len()
        } else {
            cfg.parallelism as usize
        };
        for old in excess.into_iter().take(take) {
            shut_down(&mut plan.txn, old);
            let new = new_task(service, old.slot, "");
            moving.push(new.id.clone());
            plan.txn = std::mem::take(&mut plan.txn).create(new);
        }
    }
}
