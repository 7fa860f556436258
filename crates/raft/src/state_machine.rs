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
use swarm_store::{Store, Tables};

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
            let tables =
                Tables::from_snapshot_bytes(&data).map_err(|source| DiskError::Decode {
                    context: format!("snapshot {}", meta.snapshot_id),
                    source,
                })?;
            drop(data);
            sm.store.restore_tables(tables);
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
    /// the bytes. An error when the encoding thread failed.
    bytes: Result<Vec<u8>, String>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let bytes = std::mem::replace(&mut self.bytes, Ok(Vec::new()))
            .map_err(|e| StorageIOError::write_snapshot(None, AnyError::error(e)))?;
        let index = self.last_applied.map(|l| l.index).unwrap_or(0);
        let term = self.last_applied.map(|l| l.leader_id.term).unwrap_or(0);
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{term}-{index}"),
        };
        let started = std::time::Instant::now();
        let bytes = save(&self.snapshots, &meta, bytes).await?;
        tracing::info!(
            bytes = bytes.len(),
            ms = started.elapsed().as_millis(),
            index,
            "snapshot written"
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

/// Why a received snapshot was not installed.
enum InstallError {
    Decode(prost::DecodeError),
    Save(std::io::Error),
}

/// Installs a received snapshot into `store` (on a blocking thread). Decoded first, so a
/// snapshot that does not decode is never saved; saved before the store shows it, so a crash
/// never brings back an older state. The bytes are decoded a row at a time straight into the
/// new tables, so besides the bytes nothing holds the state but the tables themselves.
fn install(
    store: &Store,
    dir: &SnapshotDir,
    meta: &SnapshotMeta,
    bytes: Vec<u8>,
) -> Result<(), InstallError> {
    let started = std::time::Instant::now();
    let len = bytes.len();
    let tables = Tables::from_snapshot_bytes(&bytes).map_err(InstallError::Decode)?;
    let decoded_ms = started.elapsed().as_millis();
    dir.save(meta, &bytes).map_err(InstallError::Save)?;
    drop(bytes);
    let saved_ms = started.elapsed().as_millis();
    store.restore_tables(tables);
    tracing::info!(
        bytes = len,
        decoded_ms,
        saved_ms,
        ms = started.elapsed().as_millis(),
        index = meta.last_log_id.map(|l| l.index).unwrap_or(0),
        "snapshot installed"
    );
    Ok(())
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
        // Encoded while nothing is applied (openraft's state machine task waits here), on a
        // blocking thread: at a million tasks it takes seconds, and the runtime's workers must
        // go on answering heartbeats meanwhile. How long it holds the apply path back is worth
        // knowing on a large store.
        let started = std::time::Instant::now();
        let store = self.store.clone();
        let bytes = tokio::task::spawn_blocking(move || store.snapshot_bytes())
            .await
            .map_err(|e| format!("encoding the snapshot: {e}"));
        tracing::info!(
            bytes = bytes.as_ref().map_or(0, Vec::len),
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
        let (store, dir, m) = (self.store.clone(), self.snapshots.clone(), meta.clone());
        // Off the runtime's workers (decoding and loading a million tasks takes seconds, and
        // heartbeats must still be answered); the state machine task waits, so nothing is
        // applied meanwhile.
        let installed = tokio::task::spawn_blocking(move || install(&store, &dir, &m, bytes))
            .await
            .map_err(std::io::Error::other);
        let sig = Some(meta.signature());
        match installed {
            Ok(Ok(())) => {}
            Ok(Err(InstallError::Decode(e))) => {
                return Err(StorageIOError::read_snapshot(sig, AnyError::new(&e)).into())
            }
            Ok(Err(InstallError::Save(e))) | Err(e) => {
                return Err(StorageIOError::write_snapshot(sig, AnyError::new(&e)).into())
            }
        }
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
