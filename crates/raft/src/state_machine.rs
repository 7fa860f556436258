//! openraft's state machine over the shared [`swarm_store::Store`]: applies committed entries in
//! log order, tracks the last applied log id and membership, and builds, installs and serves
//! snapshots (files via `snapshot_file`). It treats store batches as opaque: the store decides
//! what they mean.
//!
//! The store lives in memory only, so on open it is rebuilt from the newest snapshot here and
//! openraft then re-applies the committed log after it.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use prost::Message;
use swarm_api::StoreSnapshot;
use swarm_store::Store;

use crate::error::{DiskError, RaftError};
use crate::snapshot_file::SnapshotDir;
use crate::types::{
    ApplyResult, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

pub(crate) struct StateMachine {
    store: Store,
    snapshots: Arc<SnapshotDir>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

impl StateMachine {
    /// Opens the snapshot dir and loads the newest snapshot into `store`. Returns whether a
    /// snapshot was there.
    pub(crate) fn open(
        store: Store,
        snapshots: SnapshotDir,
    ) -> Result<(StateMachine, bool), RaftError> {
        let mut sm = StateMachine {
            store,
            snapshots: Arc::new(snapshots),
            last_applied: None,
            membership: StoredMembership::default(),
        };
        let loaded = sm
            .snapshots
            .load_newest()
            .map_err(|e| DiskError::io("snapshot", e))?;
        let found = loaded.is_some();
        if let Some((meta, data)) = loaded {
            let snap =
                StoreSnapshot::decode(data.as_slice()).map_err(|source| DiskError::Decode {
                    context: format!("snapshot {}", meta.snapshot_id),
                    source,
                })?;
            sm.store.restore(snap);
            sm.last_applied = meta.last_log_id;
            sm.membership = meta.last_membership;
        }
        Ok((sm, found))
    }
}

/// Captures one consistent view at creation (no entry is applied while openraft asks for a
/// builder), then encodes and writes it off the apply path.
pub(crate) struct SnapshotBuilder {
    snapshots: Arc<SnapshotDir>,
    /// The store encoded as a `StoreSnapshot` when the builder was made: the view is encoded
    /// directly rather than copied (`Store::snapshot_bytes`), so the only image in memory is
    /// the bytes.
    bytes: Vec<u8>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let bytes = std::mem::take(&mut self.bytes);
        let index = self.last_applied.map(|l| l.index).unwrap_or(0);
        let term = self.last_applied.map(|l| l.leader_id.term).unwrap_or(0);
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{term}-{index}"),
        };
        let bytes = save(&self.snapshots, &meta, bytes).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

/// Writes the snapshot file off the runtime's threads; hands the bytes back (moved, not
/// copied: a snapshot of a large store is hundreds of MiB).
async fn save(
    dir: &Arc<SnapshotDir>,
    meta: &SnapshotMeta,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, StorageError> {
    let (dir, m) = (dir.clone(), meta.clone());
    let sig = Some(meta.signature());
    tokio::task::spawn_blocking(move || dir.save(&m, &bytes).map(|()| bytes))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| StorageIOError::write_snapshot(sig, AnyError::new(&e)).into())
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut results = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            let result = match entry.payload {
                EntryPayload::Blank => Vec::new(),
                // A refused batch is an answer for its proposer, not a storage failure: every
                // member refuses it the same way, so the replicas stay identical.
                EntryPayload::Normal(proposal) => {
                    self.store.apply_group_owned(entry.log_id.index, proposal.0)
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    Vec::new()
                }
            };
            results.push(result);
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Encoded while nothing is applied: how long that holds the apply path back is worth
        // knowing on a large store.
        let started = std::time::Instant::now();
        let bytes = self.store.snapshot_bytes();
        tracing::info!(
            bytes = bytes.len(),
            ms = started.elapsed().as_millis(),
            index = self.last_applied.map(|l| l.index).unwrap_or(0),
            "snapshot encoded"
        );
        SnapshotBuilder {
            snapshots: self.snapshots.clone(),
            bytes,
            last_applied: self.last_applied,
            membership: self.membership.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let snap = StoreSnapshot::decode(bytes.as_slice()).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        // Persist first: once the store shows the new state, a crash must not bring back an
        // older one.
        drop(save(&self.snapshots, meta, bytes).await?);
        self.store.restore(snap);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let dir = self.snapshots.clone();
        let loaded = tokio::task::spawn_blocking(move || dir.load_newest())
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)))?;
        Ok(loaded.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
