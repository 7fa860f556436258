//! The loop every leader component runs: a pass over a consistent view of the store whenever
//! the watch stream says something changed (debounced), on a periodic tick for time-driven
//! work (delays, heartbeats), and again soon after a pass whose writes were refused.
//!
//! It listens to `Store::changes` (a counter), not to the event stream: a pass re-reads the
//! tables, so the events are not needed, and a loop busy in a long pass would otherwise keep
//! thousands of batches of object copies alive in the broadcast buffer.

use std::time::Duration;
use swarm_store::Store;
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
                // Gather the burst: stop at a quiet gap of `debounce` or at `max_delay`.
                let deadline = tokio::time::Instant::now() + cfg.max_delay;
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep_until(deadline) => break,
                        r = tokio::time::timeout(cfg.debounce, rx.changed()) => match r {
                            Err(_) => break,
                            Ok(Ok(())) => continue,
                            Ok(Err(_)) => return,
                        },
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
#[allow(clippy::unwrap_used, clippy::disallowed_methods)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use swarm_store::Txn;
    use swarm_testkit::fixtures;

    /// Passes run after one change, with the clock stopped: a leading-edge loop has run its
    /// pass without any time passing; a plain one still waits for the debounce.
    async fn passes_before_the_debounce(leading_edge: bool) -> (usize, usize) {
        let store = Store::new();
        let passes = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let cfg = LoopConfig {
            name: "test",
            debounce: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
            tick: Duration::from_secs(3600),
            leading_edge,
        };
        let counted = passes.clone();
        let running = tokio::spawn(run_loop(cfg, store.clone(), cancel.clone(), move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { false }
        }));
        while passes.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
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
        cancel.cancel();
        running.await.unwrap();
        (at_once, after)
    }

    #[tokio::test(start_paused = true)]
    async fn a_leading_edge_loop_answers_the_first_change_at_once() {
        assert_eq!(passes_before_the_debounce(true).await, (1, 1));
        assert_eq!(passes_before_the_debounce(false).await, (0, 1));
    }
}
