//! The one write contract of the cluster state: a transaction goes to a [`Proposer`], which
//! answers once it is committed and applied to the local store, or says why not.
//!
//! The `raft` crate implements it; the manager's components only see this trait. Nothing
//! here knows how a write is replicated.

use crate::ApplyError;
use std::future::Future;
use std::pin::Pin;
use swarm_api::{StoreBatch, StoreObject};

/// Why a proposed transaction did not land.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    /// It committed but the store refused it (stale version, name in use, ...): the same
    /// answer on every manager.
    #[error(transparent)]
    Refused(#[from] ApplyError),
    /// Only the leader accepts writes; retry there.
    #[error("this manager is not the leader{}", leader.as_ref().map(|l| format!(" (leader: {l})")).unwrap_or_default())]
    NotLeader {
        /// The leader's Raft ID, when known.
        leader_id: Option<u64>,
        /// The leader's remote API address, when known.
        leader: Option<String>,
    },
    /// No quorum, shutting down, or timed out; a timed-out write may still commit later.
    #[error("cluster unavailable: {0}")]
    Unavailable(String),
}

/// What a proposal returns: the objects as written (with their new versions).
pub type ProposeFuture =
    Pin<Box<dyn Future<Output = Result<Vec<StoreObject>, WriteError>> + Send + 'static>>;

pub trait Proposer: Send + Sync + 'static {
    fn propose(&self, batch: StoreBatch) -> ProposeFuture;
}
