//! How the manager writes: the store's write contract ([`Proposer`], [`WriteError`]),
//! implemented by Raft in production.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use swarm_api::StoreBatch;
use swarm_store::Store;
pub use swarm_store::{ProposeFuture, Proposer, WriteError};

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
    fn propose(&self, batch: StoreBatch) -> ProposeFuture {
        let index = self.index.fetch_add(1, Ordering::SeqCst) + 1;
        let res = self.store.apply(index, &batch).map_err(WriteError::from);
        Box::pin(async move { res })
    }
}
