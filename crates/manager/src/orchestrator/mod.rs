//! Orchestration: drives every service's tasks toward its spec. One leader-only component
//! whose pass, per service, (1) replaces tasks that failed or sit on lost or drained nodes,
//! following the restart policy, (2) fills or trims slots (replicated) or nodes (global), and
//! (3) moves out-of-date tasks to the current spec in rolling batches; then the reaper prunes
//! task history. It writes only tasks' desired state, new tasks and services' update status;
//! it never assigns nodes (scheduler) nor writes observed state (dispatcher).

mod global;
#[cfg(test)]
mod inherited_tests;
mod jobs;
mod reaper;
mod rebalance;
mod replicated;
mod restart;
mod scope;
#[cfg(test)]
mod scope_tests;
pub mod task;
mod update;

use crate::component_loop::{run_loop, LoopConfig};
use crate::proposer::Proposer;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_api::service_spec::Mode;
use swarm_api::*;
use swarm_store::{Store, Tables, Txn};
use tokio_util::sync::CancellationToken;

/// What one pass decided for one service.
#[derive(Default)]
pub(crate) struct ServiceWrites {
    /// The service these writes are for; None for writes that span services (history
    /// pruning, orphans).
    pub service: Option<String>,
    pub txn: Txn,
    /// Ask for another pass by then (a restart delay or update delay runs out).
    pub wake_at_ms: Option<i64>,
}

impl ServiceWrites {
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

pub(crate) use swarm_api::state::observed;

/// Whether the service places one task per eligible node (global services and global jobs)
/// rather than a number of replicas.
pub(crate) fn places_per_node(spec: &ServiceSpec) -> bool {
    matches!(spec.mode, Some(Mode::Global(_)) | Some(Mode::GlobalJob(_)))
}

pub(crate) fn is_live(t: &Task) -> bool {
    t.desired_state <= TaskState::Running as i32
}

/// Whether a task of `service` still holds its slot (or node): it is live, or it is a
/// finished task of the job's current run, which must stay so the work is not run again.
pub(crate) fn holds_slot(service: &Service, t: &Task) -> bool {
    is_live(t)
        || (t.desired_state == TaskState::Complete as i32 && t.spec_version == service.spec_version)
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
    /// What changed since the last pass (see `scope`).
    changes: scope::Changes,
    /// Per service: when its time-driven work (a delay) is due.
    wake: HashMap<String, i64>,
    last_full_pass: i64,
    /// Time between full passes, from how long the last one took (`scope::full_pass_every`).
    full_pass_every: i64,
}

impl Orchestrator {
    pub fn new(store: Store, proposer: Arc<dyn Proposer>) -> Orchestrator {
        Orchestrator {
            changes: scope::Changes::subscribe(&store),
            store,
            proposer,
            updates: update::Updates::default(),
            rebalances: rebalance::Rebalances::default(),
            wake: HashMap::new(),
            last_full_pass: 0,
            full_pass_every: scope::FULL_PASS_MS,
        }
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        let cfg = LoopConfig {
            name: "orchestrator",
            debounce: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            tick: Duration::from_millis(500),
            leading_edge: false,
            relevant: None,
        };
        let store = self.store.clone();
        run_loop(cfg, store, cancel, move || {
            let now = now_ms();
            let plans = self.plan(now);
            // A delay running out soon: come back for it rather than wait for the tick.
            let soon = self.wake.values().any(|at| *at <= now + 500);
            let proposer = self.proposer.clone();
            let refusals = self.changes.refusals();
            async move {
                let refusal = propose_all(proposer, plans, &refusals).await;
                refusal || soon
            }
        })
        .await;
    }

    /// What this pass covers: the services the watch stream names or whose writes were
    /// refused, those whose delay is due, those a changed node concerns, and everything now
    /// and then (`scope::full_pass_every`).
    fn scope(&mut self, now: i64) -> scope::Scope {
        let mut scope = self.changes.take();
        if now - self.last_full_pass >= self.full_pass_every {
            scope.all = true;
        }
        if !scope.all {
            for (id, _) in self.wake.iter().filter(|(_, at)| **at <= now) {
                scope.services.insert(id.clone());
            }
            if !scope.nodes.is_empty() {
                self.resolve_nodes(&mut scope);
            }
        }
        // However it came about (the clock, the stream, many nodes at once), a full pass
        // restarts the wait for the next.
        if scope.all {
            self.last_full_pass = now;
        }
        scope
    }

    /// Turns changed nodes into the services whose decisions they can change: those with
    /// tasks on them (lost, drained, or no longer fit), those that place a task per node
    /// (global services and jobs), and those in the middle of something (not quiet: an
    /// update or rebalance spreading over the nodes). Before, any node change meant a pass
    /// over every task of every service: at 1,000,000 tasks, seconds per joining node.
    /// When many nodes changed at once (a failover's reconnections) it is everything.
    fn resolve_nodes(&self, scope: &mut scope::Scope) {
        let nodes = std::mem::take(&mut scope.nodes);
        self.store.view(|t| {
            if nodes.len().saturating_mul(8) > t.nodes.len() {
                scope.all = true;
                return;
            }
            for node in &nodes {
                for task in t.tasks_of_node(node) {
                    if !task.service_id.is_empty() && !scope.services.contains(&task.service_id) {
                        scope.services.insert(task.service_id.clone());
                    }
                }
            }
            for service in t.services.iter_unordered() {
                let per_node = service.spec.as_ref().is_some_and(places_per_node);
                if per_node || !self.changes.is_quiet(&service.id) {
                    scope.services.insert(service.id.clone());
                }
            }
        });
    }

    /// One pass: a transaction per service in scope, plus history pruning and the stopping
    /// of tasks whose service is gone.
    ///
    /// Each service is planned under a view of its own, not the whole pass under one: a view
    /// held for the seconds a full pass over 1M tasks takes held back the store's apply, and
    /// behind that waiting writer every other reader, so both runtime threads stood still
    /// and 10,000 agents' heartbeats timed out together. A service's decisions read only a
    /// consistent view of its own tasks and the nodes; its writes carry the versions it read,
    /// so a change between two services' views is refused and planned again.
    pub(crate) fn plan(&mut self, now: i64) -> Vec<ServiceWrites> {
        let started = Instant::now();
        let scope = self.scope(now);
        let store = self.store.clone();
        let in_scope: Vec<String> = if scope.all {
            store.view(|t| {
                let all: Vec<String> = t.services.iter().map(|s| s.id.clone()).collect();
                self.updates.forget_except(&all);
                self.wake.retain(|id, _| t.services.get(id).is_some());
                all
            })
        } else {
            scope.services.into_iter().collect()
        };
        let mut plans = Vec::new();
        let mut orphans = ServiceWrites::default();
        for id in &in_scope {
            store.view(|t| match t.services.get(id) {
                Some(service) => {
                    if let Some(plan) = self.plan_service(t, service, now, &mut orphans) {
                        plans.push(plan);
                    }
                }
                // Tasks of a service removed since the last pass (their IDs come in scope
                // through the removal and through their tasks' own changes). A full pass
                // leaves them to its scan below, which would stop them a second time in
                // the same write, and so have it refused.
                None if !scope.all => reaper::stop_orphans(t, t.tasks_of_service(id), &mut orphans),
                None => {}
            });
        }
        if scope.all {
            store.view(|t| reaper::stop_orphans(t, t.tasks.iter_unordered(), &mut orphans));
            let took = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            self.full_pass_every = scope::full_pass_every(took);
            tracing::debug!(
                took_ms = took,
                next_in_ms = self.full_pass_every,
                "full pass"
            );
        }
        if !orphans.txn.is_empty() {
            plans.push(orphans);
        }
        plans
    }

    /// One service's decisions; its history pruning goes into `pruned`.
    fn plan_service(
        &mut self,
        t: &Tables,
        service: &Service,
        now: i64,
        pruned: &mut ServiceWrites,
    ) -> Option<ServiceWrites> {
        // The service's tasks are read from the index once and handed to every step: each
        // walk of the index costs a table lookup per task, which dominated the pass at 100,000
        // tasks when every step walked it again.
        let tasks: Vec<&Task> = t.tasks_of_service(&service.id).collect();
        let mut plan = ServiceWrites {
            service: Some(service.id.clone()),
            ..ServiceWrites::default()
        };
        let spec = service.spec.clone().unwrap_or_default();
        let replaced = restart::reconcile(t, service, &tasks, &spec, now, &mut plan);
        match &spec.mode {
            Some(Mode::Replicated(r)) => {
                replicated::reconcile(service, &tasks, r.replicas, &replaced, &mut plan)
            }
            Some(Mode::Global(_)) => global::reconcile(t, service, &tasks, &replaced, &mut plan),
            Some(Mode::ReplicatedJob(j)) => {
                jobs::replicated(service, &tasks, j, &replaced, &mut plan)
            }
            Some(Mode::GlobalJob(_)) => jobs::global(t, service, &tasks, &replaced, &mut plan),
            None => {}
        }
        // Jobs have no rolling updates: a new spec is a new run.
        if matches!(spec.mode, Some(Mode::Replicated(_)) | Some(Mode::Global(_))) {
            self.updates
                .reconcile(t, service, &tasks, &replaced, now, &mut plan);
        }
        // Rebalancing waits for a pass with nothing else to do for the service.
        if matches!(spec.mode, Some(Mode::Replicated(_))) && plan.txn.is_empty() {
            self.rebalances
                .reconcile(t, service, &tasks, &replaced, now, &mut plan);
        }
        match plan.wake_at_ms {
            Some(at) => self.wake.insert(service.id.clone(), at),
            None => self.wake.remove(&service.id),
        };
        let quiet = plan.txn.is_empty()
            && plan.wake_at_ms.is_none()
            && !service.rebalance_requested
            && !self.updates.in_flight(&service.id);
        self.changes.set_quiet(&service.id, quiet);
        reaper::prune_history(t, service, &tasks, pruned);
        (!plan.txn.is_empty() || plan.wake_at_ms.is_some()).then_some(plan)
    }
}

/// Proposes each plan; returns whether a write was refused. Each refusal is reported, so
/// the next pass plans its service again (not every service).
async fn propose_all(
    proposer: Arc<dyn Proposer>,
    plans: Vec<ServiceWrites>,
    refusals: &scope::Refusals,
) -> bool {
    let mut again = false;
    for plan in plans {
        if plan.txn.is_empty() {
            continue;
        }
        for batch in plan.txn.into_batches(MAX_ACTIONS_PER_BATCH) {
            if let Err(e) = proposer.propose(batch).await {
                tracing::debug!(error = %e, service = ?plan.service, "orchestrator write refused; will retry");
                refusals.refused(plan.service.as_deref());
                again = true;
            }
        }
    }
    again
}

/// Large services are written in several transactions to keep Raft entries small.
const MAX_ACTIONS_PER_BATCH: usize = 2_000;
