//! How long a role's gRPC servers may take to stop. tonic's graceful shutdown waits for every
//! request in flight, and a request can wait on something that never answers (a call passed
//! on to a leader that is cut off waits for its client to give up: swarmctl's 60 s). The role
//! cannot end, nor the next one bind its sockets, before its servers have. So after the stop,
//! requests in flight get [`STOP_GRACE`]; then the server is dropped with its connections.
//!
//! Owns nothing: it only bounds a server future it is given.

use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What requests in flight get to finish once the role stops.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(3);

/// Runs `server` (started with a graceful shutdown on `stop`) until it ends, or until
/// [`STOP_GRACE`] after `stop`, whichever is first. `what` names the server in the logs.
pub(crate) async fn until_stopped<F, E>(server: F, stop: CancellationToken, what: &'static str)
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(server);
    let overdue = async {
        stop.cancelled().await;
        tokio::time::sleep(STOP_GRACE).await;
    };
    tokio::select! {
        r = &mut server => if let Err(e) = r {
            tracing::error!(server = what, error = %e, "server stopped");
        },
        _ = overdue => tracing::warn!(
            server = what,
            grace = ?STOP_GRACE,
            "requests still in flight after the stop: their connections are closed"
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A server whose requests never end is dropped once the grace is over; one that ends by
    /// itself is not held up.
    #[tokio::test(start_paused = true)]
    async fn a_server_stuck_in_a_request_stops_after_the_grace() {
        let owner = swarm_tasks::TaskOwner::new();
        let stop = CancellationToken::new();
        let stuck = std::future::pending::<Result<(), String>>();
        let running = owner.spawn(until_stopped(stuck, stop.clone(), "test"));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!running.is_finished(), "a server runs until the stop");
        let stopped_at = tokio::time::Instant::now();
        stop.cancel();
        running.await.unwrap();
        assert_eq!(stopped_at.elapsed(), STOP_GRACE);

        let stop = CancellationToken::new();
        let quick = {
            let stop = stop.clone();
            async move {
                stop.cancelled().await;
                Ok::<(), String>(())
            }
        };
        let running = owner.spawn(until_stopped(quick, stop.clone(), "test"));
        let stopped_at = tokio::time::Instant::now();
        stop.cancel();
        running.await.unwrap();
        assert_eq!(stopped_at.elapsed(), Duration::ZERO);
    }
}
