//! How the manager writes: a transaction goes to a [`Proposer`], which returns once the
//! transaction is committed and applied to the local store (or refused).

use futures::future::BoxFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use swarm_api::{StoreBatch, StoreObject};
use swarm_store::{ApplyError, Store};

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The store refused the transaction (stale version, name in use, ...).
    #[error(transparent)]
    Refused(#[from] ApplyError),
    /// This manager cannot commit writes now.
    #[error("this manager is not the leader{}", leader.as_ref().map(|l| format!(" (leader: {l})")).unwrap_or_default())]
    NotLeader { leader: Option<String> },
    #[error("cluster unavailable: {0}")]
    Unavailable(String),
}

pub trait Proposer: Send + Sync + 'static {
    fn propose(
        &self,
        batch: StoreBatch,
    ) -> BoxFuture<'static, Result<Vec<StoreObject>, WriteError>>;
}

/// Applies transactions straight to a store with a local counter as the log index: an
/// in-memory stand-in for Raft, for tests of the manager's components only.
pub struct DirectProposer {
    store: Store,
    index: AtomicU64,
}

impl DirectProposer {
    pub fn new(store: Store) -> Arc<DirectProposer> {
        Arc::new(DirectProposer {
            store,
            index: AtomicU64::new(0),
        })
    }
}

impl Proposer for DirectProposer {
    fn propose(
        &self,
        batch: StoreBatch,
    ) -> BoxFuture<'static, Result<Vec<StoreObject>, WriteError>> {
        let index = self.index.fetch_add(1, Ordering::SeqCst) + 1;
        let res = self.store.apply(index, &batch).map_err(WriteError::from);
        Box::pin(async move { res })
    }
}
