//! The replicated group's membership, as the manager's leader components see it: who is in
//! the group and how to take a member out. The `raft` crate implements it; the components
//! that reconcile the group with the managers the store records only see this trait.

use std::error::Error;
use std::future::Future;
use std::pin::Pin;

/// Why a membership change did not happen (the implementation's own error, kept as it is).
pub type MembershipError = Box<dyn Error + Send + Sync + 'static>;

pub trait GroupMembership: Send + Sync + 'static {
    /// This member's ID in the group.
    fn member_id(&self) -> u64;
    /// Every member (voters and learners) with its address.
    fn members(&self) -> Vec<(u64, String)>;
    /// Takes `id` out of the group; returns once the change is committed.
    fn remove_member(
        &self,
        id: u64,
    ) -> Pin<Box<dyn Future<Output = Result<(), MembershipError>> + Send + 'static>>;
}
