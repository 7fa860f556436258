//! An in-memory stand-in for Raft: each transaction is applied straight to one store, with a
//! local counter as the log index. For tests of the manager's components only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use swarm_api::StoreBatch;
use swarm_store::{ProposeFuture, Proposer, Store, WriteError};

pub struct MemoryProposer {
    store: Store,
    index: AtomicU64,
}

impl MemoryProposer {
    pub fn new(store: Store) -> Arc<MemoryProposer> {
        Arc::new(MemoryProposer {
            store,
            index: AtomicU64::new(0),
        })
    }
}

impl Proposer for MemoryProposer {
    fn propose(&self, batch: StoreBatch) -> ProposeFuture {
        let index = self.index.fetch_add(1, Ordering::SeqCst) + 1;
        let res = self
            .store
            .apply_owned(index, batch)
            .map_err(WriteError::from);
        Box::pin(async move { res })
    }
}
