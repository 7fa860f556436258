//! Where a call that needs the leader goes. Every manager serves the control and CA APIs; a
//! follower passes calls that must be decided by the leader on to it, unchanged, over the
//! managers' mutual-TLS API. A call already forwarded once is never forwarded again, so a
//! moment of disagreement about who leads ends in an error, not a loop.

use tonic::transport::Channel;
use tonic::{Request, Status};

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
pub(crate) fn unreachable_leader(route: &dyn LeaderRoute, status: Status) -> Status {
    if status.code() != tonic::Code::Unavailable || status.metadata().contains_key(FORWARDED) {
        return status;
    }
    let leader = route.leader_addr().unwrap_or_else(|| "unknown".into());
    Status::unavailable(format!(
        "cannot reach the leader ({leader}): {}; the managers may have lost quorum",
        status.message()
    ))
}
