//! Orchestration: drives every service's tasks toward its spec. One leader-only component
//! whose pass, per service, (1) replaces tasks that failed or sit on lost or drained nodes,
//! following the restart policy, (2) fills or trims slots (replicated) or nodes (global), and
//! (3) moves out-of-date tasks to the current spec in rolling batches; then the reaper prunes
//! task history. It writes only tasks' desired state, new tasks and services' update status;
//! it never assigns nodes (scheduler) nor writes observed state (dispatcher).

mod global;
mod jobs;
mod reaper;
mod rebalance;
mod replicated;
mod restart;
pub mod task;
mod update;

use crate::proposer::Proposer;
use crate::reconcile::{run_loop, LoopConfig};
use std::sync::Arc;
use std::time::Duration;
use swarm_api::service_spec::Mode;
use swarm_api::*;
use swarm_store::{Store, Tables, Txn};
use tokio_util::sync::CancellationToken;

/// What one pass decided for one service.
#[derive(Default)]
pub(crate) struct Plan {
    pub txn: Txn,
    /// Ask for another pass by then (a restart delay or update delay runs out).
    pub wake_at_ms: Option<i64>,
}

impl Plan {
    pub fn wake(&mut self, at_ms: i64) {
        self.wake_at_ms = Some(self.wake_at_ms.map_or(at_ms, |w| w.min(at_ms)));
    }
}

/// Whether tasks on this node must be moved: it is gone, down, or drained.
pub(crate) fn node_lost(t: &Tables, node_id: &str) -> bool {
    match t.nodes.get(node_id) {
        None => true,
        Some(n) => {
            let down = n
                .status
                .as_ref()
                .is_some_and(|s| s.state == NodeState::Down as i32);
            let drained = n
                .spec
                .as_ref()
                .is_some_and(|s| s.availability == NodeAvailability::Drain as i32);
            down || drained
        }
    }
}

pub(crate) fn observed(t: &Task) -> TaskState {
    t.status
        .as_ref()
        .and_then(|s| TaskState::try_from(s.state).ok())
        .unwrap_or(TaskState::New)
}

pub(crate) fn is_live(t: &Task) -> bool {
    t.desired_state <= TaskState::Running as i32
}

/// Marks a task to be stopped: the agent stops it and reports SHUTDOWN.
pub(crate) fn shut_down(txn: &mut Txn, task: &Task) {
    let mut t = task.clone();
    t.desired_state = TaskState::Shutdown as i32;
    *txn = std::mem::take(txn).update(t);
}

pub struct Orchestrator {
    store: Store,
    proposer: Arc<dyn Proposer>,
    updates: update::Updates,
    rebalances: rebalance::Rebalances,
}

impl Orchestrator {
    pub fn new(store: Store, proposer: Arc<dyn Proposer>) -> Orchestrator {
        Orchestrator {
            store,
            proposer,
            updates: update::Updates::default(),
            rebalances: rebalance::Rebalances::default(),
        }
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        let cfg = LoopConfig {
            name: "orchestrator",
            debounce: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            tick: Duration::from_millis(500),
        };
        let store = self.store.clone();
        run_loop(cfg, store, cancel, move || {
            let plans = self.plan(now_ms());
            let proposer = self.proposer.clone();
            async move { propose_all(proposer, plans).await }
        })
        .await;
    }

    /// One pass over a consistent view: a transaction per service, plus history pruning.
    pub(crate) fn plan(&mut self, now: i64) -> Vec<Plan> {
        let store = self.store.clone();
        store.view(|t| {
            let mut plans = Vec::new();
            let mut seen = Vec::new();
            // Each service's tasks are read from the index once per pass and handed to every
            // step: each walk of the index costs a table lookup per task, which dominated the
            // pass at 100,000 tasks when every step walked it again.
            let services: Vec<(&Service, Vec<&Task>)> = t
                .services
                .iter()
                .map(|s| (s, t.tasks_of_service(&s.id).collect()))
                .collect();
            for (service, tasks) in &services {
                let service = *service;
                seen.push(service.id.clone());
                let mut plan = Plan::default();
                let spec = service.spec.clone().unwrap_or_default();
                let replaced = restart::reconcile(t, service, tasks, &spec, now, &mut plan);
                match &spec.mode {
                    Some(Mode::Replicated(r)) => {
                        replicated::reconcile(service, tasks, r.replicas, &replaced, &mut plan)
                    }
                    Some(Mode::Global(_)) => {
                        global::reconcile(t, service, tasks, &replaced, &mut plan)
                    }
                    Some(Mode::ReplicatedJob(j)) => {
                        jobs::replicated(service, tasks, j, &replaced, &mut plan)
                    }
                    Some(Mode::GlobalJob(_)) => {
                        jobs::global(t, service, tasks, &replaced, &mut plan)
                    }
                    None => {}
                }
                // Jobs have no rolling updates: a new spec is a new run.
                if matches!(spec.mode, Some(Mode::Replicated(_)) | Some(Mode::Global(_))) {
                    self.updates
                        .reconcile(t, service, tasks, &replaced, now, &mut plan);
                }
                // Rebalancing waits for a pass with nothing else to do for the service.
                if matches!(spec.mode, Some(Mode::Replicated(_))) && plan.txn.is_empty() {
                    self.rebalances
                        .reconcile(t, service, tasks, &replaced, now, &mut plan);
                }
                if !plan.txn.is_empty() || plan.wake_at_ms.is_some() {
                    plans.push(plan);
                }
            }
            self.updates.forget_except(&seen);
            let mut orphans = Plan::default();
            reaper::stop_orphans(t, &mut orphans);
            reaper::prune_history(t, &services, &mut orphans);
            if !orphans.txn.is_empty() {
                plans.push(orphans);
            }
            plans
        })
    }
}

/// Proposes each plan; returns whether another pass is wanted soon.
async fn propose_all(proposer: Arc<dyn Proposer>, plans: Vec<Plan>) -> bool {
    let mut again = false;
    let now = now_ms();
    for plan in plans {
        if let Some(w) = plan.wake_at_ms {
            // Time-driven work is picked up by the loop's tick; ask sooner when it is close.
            again |= w <= now + 500;
        }
        if plan.txn.is_empty() {
            continue;
        }
        for batch in plan.txn.into_batches(MAX_ACTIONS_PER_BATCH) {
            if let Err(e) = proposer.propose(batch).await {
                tracing::debug!(error = %e, "orchestrator write refused; will retry");
                again = true;
            }
        }
    }
    again
}

/// Large services are written in several transactions to keep Raft entries small.
const MAX_ACTIONS_PER_BATCH: usize = 2_000;
