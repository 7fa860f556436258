//! The cluster state machine: typed tables of nodes, services, tasks, clusters, secrets,
//! configs and networks, with indexes, atomic multi-object transactions, a watch stream of changes, and
//! snapshot/restore.
//!
//! The store knows nothing of Raft or the network: the `raft` crate feeds it committed
//! transactions in log order through [`Store::apply`], which must stay deterministic (no clock,
//! no randomness) so every manager ends with the same state. Everyone else only reads, and
//! writes by proposing transactions to Raft.

mod apply;
mod item;
mod membership;
mod node_load;
mod proposer;
mod snapshot_bytes;
mod snapshot_restore;
mod tables;
mod txn;
mod watch;

pub use apply::ApplyError;
pub use item::{Kind, StoreItem};
pub use membership::{GroupMembership, MembershipError};
pub use node_load::{host_ports, HostPort, NodeLoad, NodeLoads, NodeSlot, Reserved};
pub use proposer::{ProposeFuture, Proposer, WriteError};
pub use tables::{Table, Tables};
pub use txn::Txn;
pub use watch::{Change, Event, EventKind};

use parking_lot::RwLock;
use std::sync::Arc;
use swarm_api::{StoreBatch, StoreObject, StoreSnapshot};
use tokio::sync::{broadcast, watch as tokio_watch};

/// Capacity of the watch stream; a subscriber that falls further behind sees `Lagged` and must
/// re-read the tables (every consumer can: they all reconcile from full state).
const WATCH_CAPACITY: usize = 4096;

/// The shared, cheaply cloned handle to one manager's copy of the cluster state.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// A store handle that does not keep it alive ([`Store::downgrade`]).
#[derive(Clone)]
pub struct WeakStore(std::sync::Weak<Inner>);

impl WeakStore {
    /// The store, if some strong handle still holds it.
    pub fn upgrade(&self) -> Option<Store> {
        self.0.upgrade().map(|inner| Store { inner })
    }
}

struct Inner {
    tables: RwLock<Tables>,
    events: broadcast::Sender<Arc<Change>>,
    /// Counts applied batches and restores. For readers that only need "something changed":
    /// it holds no events, whereas every broadcast subscriber that falls behind keeps up to
    /// `WATCH_CAPACITY` batches (each with full copies of the objects written) alive.
    changed: tokio_watch::Sender<u64>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Store {
        let (events, _) = broadcast::channel(WATCH_CAPACITY);
        Store {
            inner: Arc::new(Inner {
                tables: RwLock::new(Tables::default()),
                events,
                changed: tokio_watch::channel(0).0,
            }),
        }
    }

    /// A handle that does not keep the store alive: it says whether anyone still does (a role
    /// that stopped must have let go of its store; see the manager's `role_stop` test).
    pub fn downgrade(&self) -> WeakStore {
        WeakStore(Arc::downgrade(&self.inner))
    }

    /// Applies one committed transaction at Raft log `index`: every action or none. Written
    /// objects get `meta.version = index` and the batch's timestamp.
    pub fn apply(&self, index: u64, batch: &StoreBatch) -> Result<Vec<StoreObject>, ApplyError> {
        self.apply_owned(index, batch.clone())
    }

    /// [`Store::apply`] of a batch the caller gives up: its objects become the rows, not
    /// copies of them (the Raft state machine owns each entry it applies).
    pub fn apply_owned(
        &self,
        index: u64,
        batch: StoreBatch,
    ) -> Result<Vec<StoreObject>, ApplyError> {
        let mut tables = self.inner.tables.write();
        let (written, events) = apply::apply_batch(&mut tables, index, batch)?;
        if !events.is_empty() {
            // No receiver is not an error: nobody watches on a fresh follower.
            let _ = self
                .inner
                .events
                .send(Arc::new(Change::Batch { index, events }));
            self.inner.changed.send_modify(|n| *n += 1);
        }
        Ok(written)
    }

    /// Applies the transactions one Raft entry carries (group commit), in order, at one `index`:
    /// each lands whole or not at all on its own, and its result is returned in its place. All
    /// of them share the version `index`, so one object written by two of them would be
    /// refused as a conflict for the second (it could not have read that version). Watchers
    /// see one change per index, as with [`Store::apply`].
    pub fn apply_group(
        &self,
        index: u64,
        batches: &[StoreBatch],
    ) -> Vec<Result<Vec<StoreObject>, ApplyError>> {
        self.apply_group_owned(index, batches.to_vec())
    }

    /// [`Store::apply_group`] of batches the caller gives up (see [`Store::apply_owned`]).
    pub fn apply_group_owned(
        &self,
        index: u64,
        batches: Vec<StoreBatch>,
    ) -> Vec<Result<Vec<StoreObject>, ApplyError>> {
        let mut tables = self.inner.tables.write();
        let mut all_events = Vec::new();
        let results = batches
            .into_iter()
            .map(|batch| {
                apply::apply_batch(&mut tables, index, batch).map(|(written, events)| {
                    all_events.extend(events);
                    written
                })
            })
            .collect();
        if !all_events.is_empty() {
            let _ = self.inner.events.send(Arc::new(Change::Batch {
                index,
                events: all_events,
            }));
            self.inner.changed.send_modify(|n| *n += 1);
        }
        results
    }

    /// A full copy of every table.
    pub fn snapshot(&self) -> StoreSnapshot {
        self.inner.tables.read().to_snapshot()
    }

    /// The current state encoded as a `StoreSnapshot` (the bytes `snapshot().encode_to_vec()`
    /// gives), without copying the objects first.
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        self.inner.tables.read().encode_snapshot()
    }

    /// Replaces every table with the snapshot's content.
    pub fn restore(&self, snap: StoreSnapshot) {
        self.restore_tables(Tables::from_snapshot(snap));
    }

    /// Replaces every table with `tables` (built with [`Tables::from_snapshot_bytes`], which
    /// needs no lock: the store goes on answering while a snapshot is decoded).
    pub fn restore_tables(&self, new: Tables) {
        let mut tables = self.inner.tables.write();
        *tables = new;
        let _ = self.inner.events.send(Arc::new(Change::Restored));
        self.inner.changed.send_modify(|n| *n += 1);
    }

    /// Reads under one consistent view.
    pub fn view<R>(&self, f: impl FnOnce(&Tables) -> R) -> R {
        f(&self.inner.tables.read())
    }

    /// Subscribes to changes, reading the current state in the same instant so no change falls
    /// between the read and the subscription.
    pub fn view_and_watch<R>(
        &self,
        f: impl FnOnce(&Tables) -> R,
    ) -> (R, broadcast::Receiver<Arc<Change>>) {
        let tables = self.inner.tables.read();
        let rx = self.inner.events.subscribe();
        (f(&tables), rx)
    }

    pub fn watch(&self) -> broadcast::Receiver<Arc<Change>> {
        self.inner.events.subscribe()
    }

    /// Wakes after every applied batch or restore (several coalesce into one wake-up). For
    /// readers that re-read the tables anyway: unlike [`Store::watch`], a slow reader keeps no
    /// events alive.
    pub fn changes(&self) -> tokio_watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }
}
