//! The change events the store publishes after each applied transaction.

use swarm_api::StoreObject;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Create,
    Update,
    Remove,
}

/// One object written by a transaction: the new value (the removed one for `Remove`).
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub object: StoreObject,
}

#[derive(Debug, Clone)]
pub enum Change {
    /// One committed transaction, its events in the order of its actions.
    Batch { index: u64, events: Vec<Event> },
    /// Every table was replaced (snapshot installed): re-read everything.
    Restored,
}
