//! The loop every leader component runs: a pass over a consistent view of the store whenever
//! the watch stream says something changed (debounced), on a periodic tick for time-driven
//! work (delays, heartbeats), and again soon after a pass whose writes were refused.
//!
//! It listens to `Store::changes` (a counter), not to the event stream: a pass re-reads the
//! tables, so the events are not needed, and a loop busy in a long pass would otherwise keep
//! thousands of batches of object copies alive in the broadcast buffer.

use std::time::Duration;
use swarm_store::{Store, Tables};
use tokio_util::sync::CancellationToken;

pub(crate) struct LoopConfig {
    pub name: &'static str,
    /// Wait this long after a change for more changes before running the pass.
    pub debounce: Duration,
    /// Upper bound on the debounce while changes keep coming.
    pub max_delay: Duration,
    /// Run a pass at least this often even without changes.
    pub tick: Duration,
    /// The first change after a quiet spell runs a pass at once; only changes that follow it
    /// within `debounce` are gathered. For a component whose latency users see (the
    /// scheduler: a new service's tasks are placed without waiting out the debounce), at the
    /// cost of one more pass per burst.
    pub leading_edge: bool,
    /// What the component waits for, read from the tables (the scheduler: how many tasks
    /// wait to be placed). When set, only a change that moves it keeps a burst gathering;
    /// other changes (status reports, which flow all the time in a big cluster) no longer
    /// hold a pass back until `max_delay`. None: every change counts.
    pub relevant: Option<fn(&Tables) -> usize>,
}

/// Runs `pass` until cancelled. `pass` returns whether it wants to run again soon (it was
/// refused, or it left work for later).
pub(crate) async fn run_loop<F, Fut>(
    cfg: LoopConfig,
    store: Store,
    cancel: CancellationToken,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut rx = store.changes();
    let mut again = pass().await;
    // Until when a change counts as part of the burst the last pass served.
    let mut burst_until = tokio::time::Instant::now();
    loop {
        let wait = if again { cfg.debounce } else { cfg.tick };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            r = rx.changed() => {
                if r.is_err() {
                    // The store is gone.
                    return;
                }
                if cfg.leading_edge && tokio::time::Instant::now() >= burst_until {
                    tracing::trace!(component = cfg.name, "pass (leading edge)");
                    again = pass().await;
                    burst_until = tokio::time::Instant::now() + cfg.debounce;
                    continue;
                }
                // Gather the burst: stop at a quiet gap of `debounce` (in what the component
                // waits for, if it says) or at `max_delay`.
                let now = tokio::time::Instant::now();
                let deadline = now + cfg.max_delay;
                let mut quiet_at = now + cfg.debounce;
                let mut seen = cfg.relevant.map(|f| store.view(f));
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep_until(deadline) => break,
                        _ = tokio::time::sleep_until(quiet_at) => break,
                        r = rx.changed() => {
                            if r.is_err() {
                                return;
                            }
                            let now_seen = cfg.relevant.map(|f| store.view(f));
                            if cfg.relevant.is_none() || now_seen != seen {
                                seen = now_seen;
                                quiet_at = tokio::time::Instant::now() + cfg.debounce;
                            }
                        }
                    }
                }
            }
        }
        tracing::trace!(component = cfg.name, "pass");
        again = pass().await;
        burst_until = tokio::time::Instant::now() + cfg.debounce;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use swarm_api::TaskState;
    use swarm_store::Txn;
    use swarm_testkit::fixtures::{self, TaskFixture};

    /// A loop over `store` that counts its passes, started and past its first pass; stopped
    /// by `owner.stop()`.
    async fn counting_loop(
        store: &Store,
        owner: &swarm_tasks::TaskOwner,
        leading_edge: bool,
        relevant: Option<fn(&Tables) -> usize>,
    ) -> Arc<AtomicUsize> {
        let cfg = LoopConfig {
            name: "test",
            debounce: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
            tick: Duration::from_secs(3600),
            leading_edge,
            relevant,
        };
        let passes = Arc::new(AtomicUsize::new(0));
        let counted = passes.clone();
        owner.spawn(run_loop(
            cfg,
            store.clone(),
            owner.token().clone(),
            move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { false }
            },
        ));
        while passes.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        passes
    }

    /// Passes run after one change, with the clock stopped: a leading-edge loop has run its
    /// pass without any time passing; a plain one still waits for the debounce.
    async fn passes_before_the_debounce(leading_edge: bool) -> (usize, usize) {
        let store = Store::new();
        let owner = swarm_tasks::TaskOwner::new();
        let passes = counting_loop(&store, &owner, leading_edge, None).await;
        store
            .apply(
                1,
                &Txn::new().create(fixtures::service("s1", "a")).into_batch(),
            )
            .unwrap();
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        let at_once = passes.load(Ordering::SeqCst) - 1;
        tokio::time::sleep(Duration::from_millis(60)).await;
        let after = passes.load(Ordering::SeqCst) - 1;
        owner.stop().await;
        (at_once, after)
    }

    /// While unrelated changes arrive every 10 ms, a pending task arrives: with `relevant`
    /// the pass comes one debounce after it; without, only at `max_delay`.
    async fn wait_for_a_pass_in_a_flood(relevant: Option<fn(&Tables) -> usize>) -> Duration {
        let store = Store::new();
        let owner = swarm_tasks::TaskOwner::new();
        let passes = counting_loop(&store, &owner, false, relevant).await;
        let mut index = 1;
        store
            .apply(index, &Txn::new().create(fixtures::node("n1")).into_batch())
            .unwrap();
        index += 1;
        let pending = fixtures::task("t1", "s1").in_state(TaskState::Pending);
        store
            .apply(index, &Txn::new().create(pending).into_batch())
            .unwrap();
        let began = tokio::time::Instant::now();
        while passes.load(Ordering::SeqCst) == 1 && began.elapsed() < Duration::from_secs(5) {
            // An unrelated write: the node's labels.
            let mut n = store.view(|t| t.nodes.get("n1").cloned()).unwrap();
            n.spec
                .get_or_insert_with(Default::default)
                .annotations
                .get_or_insert_with(Default::default)
                .labels
                .insert("k".into(), index.to_string());
            index += 1;
            store
                .apply(index, &Txn::new().update(n).into_batch())
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let waited = began.elapsed();
        owner.stop().await;
        waited
    }

    #[tokio::test(start_paused = true)]
    async fn unrelated_changes_do_not_hold_back_a_pass_that_says_what_it_waits_for() {
        let with = wait_for_a_pass_in_a_flood(Some(|t| t.pending_count())).await;
        let without = wait_for_a_pass_in_a_flood(None).await;
        assert!(with < Duration::from_millis(200), "{with:?}");
        assert!(without >= Duration::from_millis(1000), "{without:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_leading_edge_loop_answers_the_first_change_at_once() {
        assert_eq!(passes_before_the_debounce(true).await, (1, 1));
        assert_eq!(passes_before_the_debounce(false).await, (0, 1));
    }
}
