//! The scheduler: assigns PENDING tasks to nodes (PENDING → ASSIGNED). Planning is pure
//! ([`plan::plan`] over a store view: filters, then spread onto the least-loaded node);
//! this module only runs it as a leader component, batching new tasks (50 ms after the last,
//! at most 1 s), and writes the decisions back. It never creates or stops tasks.

pub mod constraint;
pub mod filters;
pub mod plan;

use crate::component_loop::{run_loop, LoopConfig};
use crate::orchestrator::observed;
use crate::proposer::Proposer;
use std::sync::Arc;
use std::time::Duration;
use swarm_api::*;
use swarm_store::{Store, Tables, Txn};
use tokio_util::sync::CancellationToken;

/// Runs the scheduler until `cancel`: what the leader starts, and what `scheduler-bench` times
/// on a store without Raft.
pub async fn run(
    store: Store,
    proposer: Arc<dyn Proposer>,
    metrics: crate::ManagerMetrics,
    cancel: CancellationToken,
) {
    let cfg = LoopConfig {
        name: "scheduler",
        debounce: Duration::from_millis(50),
        max_delay: Duration::from_secs(1),
        tick: Duration::from_secs(1),
        // A new service's tasks are placed at once; a burst's later writes still gather.
        leading_edge: true,
        // Tasks waiting to be placed: while status reports pour in (thousands a second in a
        // big cluster), a burst of new tasks still gets its pass 50 ms after the last of them,
        // not 1 s later (node loss at 5,000 nodes waited out that second, pass after pass).
        relevant: Some(|t| t.pending_count()),
    };
    let view = store.clone();
    run_loop(cfg, store, cancel, move || {
        let start = std::time::Instant::now();
        let txn = view.view(decide);
        let proposer = proposer.clone();
        let metrics = metrics.clone();
        async move {
            let mut again = false;
            let mut written = 0;
            for batch in txn.into_batches(2_000) {
                let n = batch.actions.len() as u64;
                match proposer.propose(batch).await {
                    Ok(_) => written += n,
                    Err(e) => {
                        tracing::debug!(error = %e, "scheduler write refused; will retry");
                        again = true;
                    }
                }
            }
            // Each written action moves one task to ASSIGNED (or confirms a global task's
            // node, which is the same step for that task).
            metrics.tasks_scheduled.inc_by(written);
            metrics
                .scheduler_pass_seconds
                .observe(start.elapsed().as_secs_f64());
            again
        }
    })
    .await;
}

fn status(state: TaskState, message: String) -> Option<TaskStatus> {
    Some(TaskStatus {
        timestamp: now_ms(),
        state: state as i32,
        message,
        ..Default::default()
    })
}

/// The writes of one scheduling pass.
pub fn decide(t: &Tables) -> Txn {
    let mut txn = Txn::new();
    // Tasks created for a given node (global services) only need that node to still be fit.
    for task in t.pending_tasks() {
        if observed(task) != TaskState::Pending
            || task.node_id.is_empty()
            || task.desired_state > TaskState::Running as i32
        {
            continue;
        }
        let fit = t
            .nodes
            .get(&task.node_id)
            .is_some_and(|n| filters::check_node_state(n).is_ok());
        if !fit {
            // The global orchestrator stops tasks of nodes that stay unfit; until then, wait.
            continue;
        }
        let mut x = task.clone();
        x.status = status(
            TaskState::Assigned,
            "scheduler confirmed task on its node".into(),
        );
        txn = txn.update(x);
    }
    let p = plan::plan(t);
    for (task_id, node_id) in p.assignments {
        if let Some(task) = t.tasks.get(&task_id) {
            let mut x = task.clone();
            x.node_id = node_id;
            x.status = status(
                TaskState::Assigned,
                "scheduler assigned task to node".into(),
            );
            txn = txn.update(x);
        }
    }
    for (task_id, message) in p.unplaceable {
        if let Some(task) = t.tasks.get(&task_id) {
            // Write the explanation only when it changes, or this loop would feed itself.
            if task.status.as_ref().is_some_and(|s| s.message == message) {
                continue;
            }
            let mut x = task.clone();
            x.status = status(TaskState::Pending, message);
            txn = txn.update(x);
        }
    }
    txn
}
