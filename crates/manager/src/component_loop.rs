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
    }
}
