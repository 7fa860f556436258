//! Leader-only reconciliation of the managers themselves: promotions and demotions recorded in
//! the store carried out in the replicated group ([`roles`]), and each other manager's
//! reachability probed and recorded on its node ([`reachability`]). Started and stopped with
//! the other leader components; they reach the group and the other managers only through
//! the contracts below, implemented by the node's wiring.

pub(crate) mod reachability;
pub(crate) mod roles;

use tonic::transport::Channel;

/// Dials another manager's remote API (mutual TLS, with this node's certificate).
pub trait ManagerDialer: Send + Sync + 'static {
    /// A channel to `addr`, or None when none can be made.
    fn dial(&self, addr: &str) -> Option<Channel>;
}
