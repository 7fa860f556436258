//! The manager's event metrics: what can only be measured where it happens (a scheduling
//! pass, a Raft proposal). Owns the metric handles and their registration in the node's
//! registry; it must not keep a registry itself (several nodes share one process in
//! swarm-bench) nor read the store (state gauges are computed at scrape time by swarmd).

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use swarm_api::StoreBatch;

use crate::proposer::{ProposeFuture, Proposer};

/// Handles shared by every component of one node's manager role (cheap to clone). A default
/// value works unregistered: tests and benches that do not export metrics just pass one.
#[derive(Clone)]
pub struct ManagerMetrics {
    pub scheduler_pass_seconds: Histogram,
    /// Tasks the scheduler moved to ASSIGNED. Registered without `_total`: prometheus-client
    /// appends it to counters itself.
    pub tasks_scheduled: Counter,
    pub proposal_seconds: Histogram,
}

/// 0.5 ms to ~16 s: a pass or proposal on a loaded 2-core machine spans this range.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for ManagerMetrics {
    fn default() -> Self {
        ManagerMetrics {
            scheduler_pass_seconds: latency_buckets(),
            tasks_scheduled: Counter::default(),
            proposal_seconds: latency_buckets(),
        }
    }
}

impl ManagerMetrics {
    /// Adds the handles to `registry` (under the caller's `swarm_` prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "scheduler_pass_seconds",
            "Time of one scheduling pass: planning and writing its decisions",
            self.scheduler_pass_seconds.clone(),
        );
        registry.register(
            "scheduler_tasks_scheduled",
            "Tasks the scheduler assigned to a node",
            self.tasks_scheduled.clone(),
        );
        registry.register(
            "raft_proposal_seconds",
            "Time from proposing a write to its commit and apply on this manager",
            self.proposal_seconds.clone(),
        );
    }
}

/// A proposer that times every proposal into `proposal_seconds` (failed ones too: a refused
/// write's wait is latency the caller saw).
pub struct TimedProposer {
    pub inner: Arc<dyn Proposer>,
    pub metrics: ManagerMetrics,
}

impl Proposer for TimedProposer {
    fn propose(&self, batch: StoreBatch) -> ProposeFuture {
        let fut = self.inner.propose(batch);
        let histogram = self.metrics.proposal_seconds.clone();
        Box::pin(async move {
            let start = Instant::now();
            let res = fut.await;
            histogram.observe(start.elapsed().as_secs_f64());
            res
        })
    }
}
