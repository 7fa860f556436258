//! The allocator: moves new tasks from NEW to PENDING once their resources are allocated.
//! Today a task needs nothing allocated (published ports come later), so this is the hand-off
//! point between the orchestrator and the scheduler, and the place port allocation will live.

use crate::orchestrator::observed;
use crate::proposer::Proposer;
use crate::reconcile::{run_loop, LoopConfig};
use std::sync::Arc;
use std::time::Duration;
use swarm_api::*;
use swarm_store::{Store, Txn};
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(store: Store, proposer: Arc<dyn Proposer>, cancel: CancellationToken) {
    let cfg = LoopConfig {
        name: "allocator",
        debounce: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        tick: Duration::from_secs(2),
    };
    let view = store.clone();
    run_loop(cfg, store, cancel, move || {
        let txn = view.view(|t| {
            let mut txn = Txn::new();
            for task in t.tasks.iter() {
                if observed(task) == TaskState::New
                    && task.desired_state <= TaskState::Running as i32
                {
                    let mut x = task.clone();
                    x.status = Some(TaskStatus {
                        timestamp: now_ms(),
                        state: TaskState::Pending as i32,
                        message: "pending task scheduling".into(),
                        ..Default::default()
                    });
                    txn = txn.update(x);
                }
            }
            txn
        });
        let proposer = proposer.clone();
        async move {
            let mut again = false;
            for batch in txn.into_batches(2_000) {
                again |= proposer.propose(batch).await.is_err();
            }
            again
        }
    })
    .await;
}
