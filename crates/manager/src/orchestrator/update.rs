//! The rolling updater: tasks whose spec version is older than their service's are replaced in
//! batches of `parallelism` (0 = all at once). A batch's new tasks must reach RUNNING, then
//! `delay` passes, before the next batch starts. Progress lives in memory: a new leader finds
//! the out-of-date tasks in the store and simply continues with the next batch.

use super::{is_live, observed, shut_down, task::new_task, Plan};
use crate::orchestrator::restart::Replaced;
use std::collections::HashMap;
use swarm_api::*;
use swarm_store::Tables;

#[derive(Default)]
pub(crate) struct Updates {
    by_service: HashMap<String, Progress>,
}

struct Progress {
    spec_version: u64,
    /// New tasks of the batch in flight.
    inflight: Vec<String>,
    /// When every task of the batch was first seen RUNNING.
    batch_running_at: Option<i64>,
}

impl Updates {
    pub(crate) fn forget_except(&mut self, services: &[String]) {
        self.by_service.retain(|id, _| services.contains(id));
    }

    pub(crate) fn reconcile(
        &mut self,
        t: &Tables,
        service: &Service,
        replaced: &Replaced,
        now: i64,
        plan: &mut Plan,
    ) {
        let spec = service.spec.clone().unwrap_or_default();
        let cfg = spec.update.unwrap_or_default();
        let progress = self
            .by_service
            .entry(service.id.clone())
            .or_insert(Progress {
                spec_version: service.spec_version,
                inflight: Vec::new(),
                batch_running_at: None,
            });
        if progress.spec_version != service.spec_version {
            *progress = Progress {
                spec_version: service.spec_version,
                inflight: Vec::new(),
                batch_running_at: None,
            };
        }

        if !progress.inflight.is_empty() {
            // A new task that vanished or was itself replaced no longer holds the batch up.
            progress
                .inflight
                .retain(|id| t.tasks.get(id).is_some_and(is_live));
            let all_running = progress.inflight.iter().all(|id| {
                t.tasks
                    .get(id)
                    .is_some_and(|x| observed(x) == TaskState::Running)
            });
            if !all_running {
                return;
            }
            let since = *progress.batch_running_at.get_or_insert(now);
            let due = since.saturating_add(cfg.delay_ms.max(0));
            if now < due {
                plan.wake(due);
                return;
            }
            progress.inflight.clear();
            progress.batch_running_at = None;
        }

        let mut dirty: Vec<&Task> = t
            .tasks_of_service(&service.id)
            .filter(|x| {
                is_live(x)
                    && x.spec_version != service.spec_version
                    && !replaced.old_ids.contains(&x.id)
            })
            .collect();
        if dirty.is_empty() {
            mark_completed(service, plan);
            return;
        }
        dirty.sort_by_key(|x| (x.slot, x.node_id.clone()));
        let take = if cfg.parallelism == 0 {
            dirty.len()
        } else {
            cfg.parallelism as usize
        };
        for old in dirty.into_iter().take(take) {
            shut_down(&mut plan.txn, old);
            let new = new_task(
                service,
                old.slot,
                if old.slot == 0 { &old.node_id } else { "" },
            );
            progress.inflight.push(new.id.clone());
            plan.txn = std::mem::take(&mut plan.txn).create(new);
        }
    }
}

fn mark_completed(service: &Service, plan: &mut Plan) {
    let updating = service
        .update_status
        .as_ref()
        .is_some_and(|u| u.state == UpdateState::Updating as i32);
    if !updating {
        return;
    }
    let mut s = service.clone();
    if let Some(u) = s.update_status.as_mut() {
        u.state = UpdateState::Completed as i32;
        u.completed_at = now_ms();
        u.message = "update completed".into();
    }
    plan.txn = std::mem::take(&mut plan.txn).update(s);
}
