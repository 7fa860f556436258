//! Building transactions: what a writer hands to Raft. Writing objects already read from the
//! store keeps their `meta.version`, which is what makes updates optimistic.

use crate::item::StoreItem;
use swarm_api::{StoreAction, StoreActionKind, StoreBatch};

#[derive(Debug, Default, Clone)]
pub struct Txn {
    actions: Vec<StoreAction>,
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }

    pub fn create<T: StoreItem>(mut self, item: T) -> Txn {
        self.push(StoreActionKind::Create, item);
        self
    }

    /// Refused at apply time unless `item.meta.version` is still the stored one.
    pub fn update<T: StoreItem>(mut self, item: T) -> Txn {
        self.push(StoreActionKind::Update, item);
        self
    }

    pub fn remove<T: StoreItem>(mut self, item: T) -> Txn {
        self.push(StoreActionKind::Remove, item);
        self
    }

    pub fn push<T: StoreItem>(&mut self, kind: StoreActionKind, item: T) {
        self.actions.push(StoreAction {
            kind: kind as i32,
            object: Some(item.into_object()),
        });
    }

    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The batch, stamped with the proposer's clock.
    pub fn into_batch(self) -> StoreBatch {
        StoreBatch {
            actions: self.actions,
            timestamp: swarm_api::now_ms(),
        }
    }

    /// Splits into batches of at most `max` actions (large writes stay under message limits).
    pub fn into_batches(self, max: usize) -> Vec<StoreBatch> {
        let ts = swarm_api::now_ms();
        self.actions
            .chunks(max.max(1))
            .map(|c| StoreBatch {
                actions: c.to_vec(),
                timestamp: ts,
            })
            .collect()
    }
}
