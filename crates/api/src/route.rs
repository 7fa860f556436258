//! The contract for reaching the leader: who leads, and a channel to it. The `raft` crate
//! implements it from its view of the group; the manager's services forward calls through
//! it. Only the contract lives here.

use tonic::transport::Channel;
use tonic::Status;

pub trait LeaderRoute: Send + Sync + 'static {
    /// None when this manager leads (serve locally); otherwise a channel to the leader, or
    /// why there is none.
    fn leader(&self) -> Option<Result<Channel, Status>>;

    /// The leader's remote API address, when another manager leads and it is known.
    fn leader_addr(&self) -> Option<String> {
        None
    }
}
