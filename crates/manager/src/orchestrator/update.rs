//! The rolling updater: tasks whose spec version is older than their service's are replaced in
//! batches of `parallelism` (0 = all at once). A batch's new tasks must reach RUNNING (for a
//! task with a healthcheck, its agent reports RUNNING at the first passing check: STARTING
//! holds the batch), then `delay` passes, before the next batch starts. Each new task is
//! watched from its creation until `monitor` after it runs: ending on its own before that
//! (an unhealthy task FAILS) counts as a failed update. Once failures exceed
//! `max_failure_ratio` of the tasks updated so far, the failure action applies: pause (wait
//! for the next spec change), continue, or roll back to the previous spec (which then rolls
//! out with the rollback config). Order start-first starts a slot's new task before stopping
//! its old one (replicated services; global services always stop first).
//!
//! Progress lives in memory: a new leader finds the out-of-date tasks in the store and goes on
//! with the next batch (failure counts start again from zero).

use super::{is_live, observed, shut_down, task::new_task, ServiceWrites};
use crate::orchestrator::restart::Replaced;
use std::collections::{HashMap, HashSet};
use swarm_api::*;
use swarm_store::{Tables, Txn};

#[derive(Default)]
pub(crate) struct Updates {
    by_service: HashMap<String, Progress>,
}

#[derive(Default)]
struct Progress {
    spec_version: u64,
    /// New tasks of the batch in flight.
    inflight: Vec<String>,
    /// When every task of the batch was first seen RUNNING.
    batch_running_at: Option<i64>,
    /// start-first: new task → the old task it replaces, stopped once the new one runs.
    replaces: HashMap<String, String>,
    /// New tasks still inside their monitor window.
    monitoring: HashSet<String>,
    /// Tasks created by this update so far.
    updated: u64,
    /// New tasks that ended on their own while monitored.
    failed: Vec<String>,
}

/// SwarmKit's defaults for a service whose spec carries no update config.
fn default_config() -> UpdateConfig {
    swarm_api::defaults::update_config()
}

fn state_of(service: &Service) -> UpdateState {
    service
        .update_status
        .as_ref()
        .and_then(|u| UpdateState::try_from(u.state).ok())
        .unwrap_or(UpdateState::Unknown)
}

/// When a task reported RUNNING (its status time while it is RUNNING).
fn running_since(task: &Task) -> Option<i64> {
    (observed(task) == TaskState::Running)
        .then(|| task.status.as_ref().map(|s| s.timestamp).unwrap_or(0))
}

impl Updates {
    /// Whether an update of this service waits on its tasks: a batch not yet running, new
    /// tasks being monitored, or old tasks waiting for their replacements (start-first).
    pub(crate) fn in_flight(&self, service_id: &str) -> bool {
        self.by_service.get(service_id).is_some_and(|p| {
            !p.inflight.is_empty() || !p.monitoring.is_empty() || !p.replaces.is_empty()
        })
    }

    pub(crate) fn forget_except(&mut self, services: &[String]) {
        self.by_service.retain(|id, _| services.contains(id));
    }

    pub(crate) fn reconcile(
        &mut self,
        t: &Tables,
        service: &Service,
        tasks: &[&Task],
        replaced: &Replaced,
        now: i64,
        plan: &mut ServiceWrites,
    ) {
        let spec = service.spec.clone().unwrap_or_default();
        let state = state_of(service);
        if matches!(state, UpdateState::Paused | UpdateState::RollbackPaused) {
            // Halted until the next spec change (which resets the status).
            return;
        }
        let rolling_back = state == UpdateState::RollbackStarted;
        let cfg = if rolling_back {
            spec.rollback
        } else {
            spec.update
        }
        .unwrap_or_else(default_config);
        let global = matches!(spec.mode, Some(service_spec::Mode::Global(_)));
        let p = self.by_service.entry(service.id.clone()).or_default();
        if p.spec_version != service.spec_version {
            *p = Progress {
                spec_version: service.spec_version,
                ..Default::default()
            };
        }

        watch_new_tasks(t, p, &cfg, now, plan);
        if let Some(task) = p.failed.last().cloned() {
            let ratio = p.failed.len() as f32 / p.updated.max(1) as f32;
            if ratio > cfg.max_failure_ratio {
                let action = UpdateFailureAction::try_from(cfg.failure_action)
                    .unwrap_or(UpdateFailureAction::Pause);
                match action {
                    UpdateFailureAction::Continue => {}
                    UpdateFailureAction::Rollback
                        if !rolling_back && service.previous_spec.is_some() =>
                    {
                        plan.txn =
                            std::mem::take(&mut plan.txn).update(rolled_back(service, &task));
                        return;
                    }
                    _ => {
                        plan.txn = std::mem::take(&mut plan.txn).update(paused(
                            service,
                            &task,
                            rolling_back,
                        ));
                        return;
                    }
                }
            }
        }

        // Old tasks stopped in this pass: still live in this view, but no longer out of date.
        let mut stopping: HashSet<String> = HashSet::new();
        if !p.inflight.is_empty() {
            // Done: running, counted as failed, or gone (replaced, reaped).
            let done = |id: &String| match t.tasks.get(id) {
                None => true,
                Some(x) => {
                    !is_live(x) || observed(x) == TaskState::Running || p.failed.contains(id)
                }
            };
            // start-first: the old task stops once its replacement runs.
            let started: Vec<String> = p
                .replaces
                .keys()
                .filter(|new| {
                    t.tasks
                        .get(new)
                        .is_none_or(|x| observed(x) >= TaskState::Running)
                })
                .cloned()
                .collect();
            for new in started {
                if let Some(old) = p.replaces.remove(&new).and_then(|o| t.tasks.get(&o)) {
                    if is_live(old) {
                        shut_down(&mut plan.txn, old);
                        stopping.insert(old.id.clone());
                    }
                }
            }
            if !p.inflight.iter().all(done) {
                return;
            }
            let since = *p.batch_running_at.get_or_insert(now);
            let due = since.saturating_add(cfg.delay_ms.max(0));
            if now < due {
                plan.wake(due);
                return;
            }
            p.inflight.clear();
            p.batch_running_at = None;
        }

        let pending_old: HashSet<&String> = p.replaces.values().collect();
        let mut dirty: Vec<&Task> = tasks
            .iter()
            .copied()
            .filter(|x| is_live(x) && x.spec_version != service.spec_version)
            .filter(|x| {
                !replaced.old_ids.contains(&x.id)
                    && !pending_old.contains(&x.id)
                    && !stopping.contains(&x.id)
            })
            .collect();
        if dirty.is_empty() {
            if p.monitoring.is_empty() && p.replaces.is_empty() && stopping.is_empty() {
                if let Some(done) = completed(service, state) {
                    plan.txn = std::mem::take(&mut plan.txn).update(done);
                }
            }
            return;
        }
        dirty.sort_by_key(|x| (x.slot, x.node_id.clone()));
        let take = if cfg.parallelism == 0 {
            dirty.len()
        } else {
            cfg.parallelism as usize
        };
        let start_first = cfg.order == UpdateOrder::StartFirst as i32 && !global;
        // Slots (or nodes) that already hold a task of the new spec: a start-first batch a
        // former leader began, whose progress died with it. That task is the replacement.
        let mut current: HashMap<(u64, &str), &Task> = tasks
            .iter()
            .copied()
            .filter(|x| is_live(x) && x.spec_version == service.spec_version)
            .map(|x| (place(x), x))
            .collect();
        let mut txn: Txn = std::mem::take(&mut plan.txn);
        for old in dirty.into_iter().take(take) {
            let new_id = match current.remove(&place(old)) {
                Some(existing) => {
                    // It may already run: no write will bring the service back, so ask.
                    plan.wake(now);
                    existing.id.clone()
                }
                None => {
                    let new = new_task(
                        service,
                        old.slot,
                        if old.slot == 0 { &old.node_id } else { "" },
                    );
                    let id = new.id.clone();
                    txn = txn.create(new);
                    id
                }
            };
            if start_first {
                p.replaces.insert(new_id.clone(), old.id.clone());
            } else {
                shut_down(&mut txn, old);
            }
            p.inflight.push(new_id.clone());
            p.monitoring.insert(new_id);
            p.updated += 1;
        }
        plan.txn = txn;
    }
}

/// Where a task runs as far as updates go: its slot, or its node for a global service.
fn place(t: &Task) -> (u64, &str) {
    if t.slot == 0 {
        (0, t.node_id.as_str())
    } else {
        (t.slot, "")
    }
}

/// Follows the update's new tasks through their monitor window: ending on their own inside it
/// is a failure; running through it is a success.
fn watch_new_tasks(
    t: &Tables,
    p: &mut Progress,
    cfg: &UpdateConfig,
    now: i64,
    plan: &mut ServiceWrites,
) {
    let monitor = cfg.monitor_ms.max(0);
    let mut finished = Vec::new();
    for id in &p.monitoring {
        let Some(task) = t.tasks.get(id) else {
            finished.push(id.clone());
            continue;
        };
        let state = observed(task);
        if state::is_terminal(state) && is_live(task) {
            p.failed.push(id.clone());
            finished.push(id.clone());
        } else if !is_live(task) {
            // Stopped by the orchestrator (scaled down, superseded): neither success nor failure.
            finished.push(id.clone());
        } else if let Some(since) = running_since(task) {
            if now >= since.saturating_add(monitor) {
                finished.push(id.clone());
            } else {
                plan.wake(since.saturating_add(monitor));
            }
        }
    }
    for id in finished {
        p.monitoring.remove(&id);
    }
}

fn with_status(service: &Service, state: UpdateState, message: String, done: bool) -> Service {
    let mut s = service.clone();
    let started_at = s
        .update_status
        .as_ref()
        .map(|u| u.started_at)
        .unwrap_or_else(now_ms);
    s.update_status = Some(UpdateStatus {
        state: state as i32,
        started_at,
        completed_at: if done { now_ms() } else { 0 },
        message,
    });
    s
}

fn paused(service: &Service, task: &str, rolling_back: bool) -> Service {
    let (state, what) = if rolling_back {
        (UpdateState::RollbackPaused, "rollback")
    } else {
        (UpdateState::Paused, "update")
    };
    with_status(
        service,
        state,
        format!("{what} paused due to failure or early termination of task {task}"),
        false,
    )
}

/// The service going back to its previous spec: a new spec version, rolled out with the
/// rollback config.
fn rolled_back(service: &Service, task: &str) -> Service {
    let mut s = with_status(
        service,
        UpdateState::RollbackStarted,
        format!("update rolled back due to failure or early termination of task {task}"),
        false,
    );
    s.update_status
        .get_or_insert_with(Default::default)
        .started_at = now_ms();
    let current = s.spec.take();
    s.spec = s.previous_spec.take();
    s.previous_spec = current;
    s.spec_version += 1;
    s
}

fn completed(service: &Service, state: UpdateState) -> Option<Service> {
    match state {
        UpdateState::Updating => Some(with_status(
            service,
            UpdateState::Completed,
            "update completed".into(),
            true,
        )),
        UpdateState::RollbackStarted => Some(with_status(
            service,
            UpdateState::RollbackCompleted,
            "rollback completed".into(),
            true,
        )),
        _ => None,
    }
}
