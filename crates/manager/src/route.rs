//! Where a call that needs the leader goes. Every manager serves the control and CA APIs; a
//! follower passes calls that must be decided by the leader on to it, unchanged, over the
//! managers' mutual-TLS API. A call already forwarded once is never forwarded again, so a
//! moment of disagreement about who leads ends in an error, not a loop.

use std::future::Future;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// How long a follower waits for the leader to answer a call it passed on (for a stream: to
/// open it). The leader answers a write within its proposal timeout (two election timeouts)
/// and a read at once; a leader that is cut off would otherwise hold the call, and the
/// follower's server with it, until the client gives up.
pub(crate) const FORWARD_TIMEOUT: Duration = Duration::from_secs(20);

/// Metadata key marking a forwarded call.
pub const FORWARDED: &str = "x-swarm-forwarded";

/// The contract, implemented by Raft (`swarm_raft::RaftRoute`).
pub use swarm_api::route::LeaderRoute;

/// A route for a manager that always leads (one-manager tests).
pub struct AlwaysLeader;

impl LeaderRoute for AlwaysLeader {
    fn leader(&self) -> Option<Result<Channel, Status>> {
        None
    }
}

/// Decides for one call: `Ok(None)` serve here, `Ok(Some(channel))` forward, or an error.
pub(crate) fn forward_to<T>(
    route: &dyn LeaderRoute,
    req: &Request<T>,
) -> Result<Option<Channel>, Status> {
    match route.leader() {
        None => Ok(None),
        Some(_) if req.metadata().contains_key(FORWARDED) => {
            Err(Status::unavailable("leadership is changing; retry"))
        }
        Some(ch) => ch.map(Some),
    }
}

/// The request as passed on: same message, marked as forwarded.
pub(crate) fn forwarded<T>(req: Request<T>) -> Request<T> {
    let mut out = Request::new(req.into_inner());
    out.metadata_mut()
        .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    out
}

/// A forwarded call that could not reach the leader, said in the operator's terms.
fn unreachable_leader(route: &dyn LeaderRoute, status: Status) -> Status {
    if status.code() != tonic::Code::Unavailable || status.metadata().contains_key(FORWARDED) {
        return status;
    }
    let leader = route.leader_addr().unwrap_or_else(|| "unknown".into());
    Status::unavailable(format!(
        "cannot reach the leader ({leader}): {}; the managers may have lost quorum",
        status.message()
    ))
}

/// A call passed on to the leader, bounded by [`FORWARD_TIMEOUT`]; its error said in the
/// operator's terms (see [`unreachable_leader`]).
pub(crate) async fn on_leader<T>(
    route: &dyn LeaderRoute,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(FORWARD_TIMEOUT, call).await {
        Ok(r) => r.map_err(|s| unreachable_leader(route, s)),
        Err(_) => Err(unreachable_leader(
            route,
            Status::unavailable(format!("no answer within {} s", FORWARD_TIMEOUT.as_secs())),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct FarLeader;

    impl LeaderRoute for FarLeader {
        fn leader(&self) -> Option<Result<Channel, Status>> {
            None
        }
        fn leader_addr(&self) -> Option<String> {
            Some("10.0.0.9:4242".into())
        }
    }

    /// A leader that never answers costs the caller the timeout, and the error names it; an
    /// answer comes through as it is.
    #[tokio::test(start_paused = true)]
    async fn a_silent_leader_is_given_up_on() {
        let started = tokio::time::Instant::now();
        let silent = std::future::pending::<Result<(), Status>>();
        let err = on_leader(&FarLeader, silent).await.unwrap_err();
        assert_eq!(started.elapsed(), FORWARD_TIMEOUT);
        assert_eq!(err.code(), tonic::Code::Unavailable);
        assert!(
            err.message()
                .contains("cannot reach the leader (10.0.0.9:4242)")
                && err.message().contains("no answer within 20 s"),
            "{}",
            err.message()
        );
        let answered = on_leader(&FarLeader, async { Ok::<_, Status>(7) }).await;
        assert_eq!(answered.unwrap(), 7);
    }
}
