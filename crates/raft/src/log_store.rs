//! The durable Raft log: entries, vote, committed log id and last purged log id in one redb file,
//! `<raft dir>/log.redb`, with our own schema version. Owns that file only; snapshots are
//! `snapshot_file`'s and applying entries is `state_machine`'s.
//!
//! The file's layout (tables, meta keys, schema version, how a row seals an entry) is
//! `log_schema`'s, shared with the offline reader in `inspect`.
//!
//! redb is synchronous and commits with fsync, so every operation runs on tokio's blocking pool
//! rather than stalling the Raft core's task.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Weak};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, OptionalSend, RaftLogId, RaftLogReader, StorageIOError};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{de::DeserializeOwned, Serialize};

use crate::at_rest::DataKey;
use crate::codec;
use crate::error::{log_err, DiskError, RaftError};
use crate::log_file::{Fault, LogBackend};
use crate::log_schema::{
    decode_row, encode_row, COMMITTED_KEY, LOG, META, OLD_SCHEMA_VERSIONS, PURGED_KEY, SCHEMA_KEY,
    SCHEMA_VERSION, UPGRADABLE_SCHEMA_VERSIONS, VOTE_KEY,
};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// The log; cheap to clone, every clone shares the one open database.
#[derive(Clone)]
pub(crate) struct LogStore {
    db: Arc<Database>,
    key: DataKey,
}

/// What kind of storage step failed, so openraft reports the right subject.
#[derive(Clone, Copy)]
enum Op {
    ReadLogs,
    WriteLogs,
    ReadVote,
    WriteVote,
}

/// redb's page cache for the log. Its default, 1 GiB, is filled by the pages writes touch and
/// only evicted past that size, so a long-lived manager's memory would creep towards it.
/// Appends and the recent entries followers ask for are what the log reads; older pages are
/// the kernel's page cache's business.
const LOG_CACHE_BYTES: usize = 32 << 20;

impl LogStore {
    /// Opens or creates the log file. Returns the store and whether it already held state.
    pub(crate) fn open(path: &Path, key: DataKey) -> Result<(LogStore, bool), RaftError> {
        let fault = Fault::from_env().map_err(|e| DiskError::io(path.display(), e))?;
        LogStore::open_with(path, key, fault.as_ref())
    }

    /// As [`LogStore::open`], with a given fault plan (a test's torn write).
    pub(crate) fn open_with(
        path: &Path,
        key: DataKey,
        fault: Option<&Fault>,
    ) -> Result<(LogStore, bool), RaftError> {
        let backend = LogBackend::open(path, fault).map_err(log_err(path))?;
        let shown = path.display().to_string();
        let once = std::sync::Once::new();
        let db = redb::Builder::new()
            .set_cache_size(LOG_CACHE_BYTES)
            // Called only for a file not closed cleanly (a crash, a torn write): say so once.
            .set_repair_callback(move |_| {
                once.call_once(|| tracing::warn!("{shown} was not closed cleanly: repairing it"));
            })
            .create_with_backend(backend)
            .map_err(log_err(path))?;
        let txn = db.begin_write().map_err(log_err(path))?;
        let has_state = {
            let log = txn.open_table(LOG).map_err(log_err(path))?;
            let mut meta = txn.open_table(META).map_err(log_err(path))?;
            let schema = meta
                .get(SCHEMA_KEY)
                .map_err(log_err(path))?
                .map(|v| v.value().to_vec());
            match schema {
                Some(v) if OLD_SCHEMA_VERSIONS.contains(&v.as_slice()) => {
                    return Err(RaftError::OldFormat(format!(
                        "{} is an unencrypted {} log; remove the state dir and join the node again",
                        path.display(),
                        String::from_utf8_lossy(&v)
                    )))
                }
                Some(v) if UPGRADABLE_SCHEMA_VERSIONS.contains(&v.as_slice()) => {
                    meta.insert(SCHEMA_KEY, SCHEMA_VERSION)
                        .map_err(log_err(path))?;
                }
                Some(v) if v != SCHEMA_VERSION => {
                    return Err(RaftError::Format(
                        path.display().to_string(),
                        String::from_utf8_lossy(&v).into_owned(),
                    ))
                }
                Some(_) => {}
                None => {
                    meta.insert(SCHEMA_KEY, SCHEMA_VERSION)
                        .map_err(log_err(path))?;
                }
            }
            !log.is_empty().map_err(log_err(path))?
                || meta.get(VOTE_KEY).map_err(log_err(path))?.is_some()
                || meta.get(PURGED_KEY).map_err(log_err(path))?.is_some()
        };
        txn.commit().map_err(log_err(path))?;
        Ok((
            LogStore {
                db: Arc::new(db),
                key,
            },
            has_state,
        ))
    }

    /// Lets shutdown wait until every clone (replication tasks hold some) has been dropped, so
    /// the file lock is free for a reopen in the same process.
    pub(crate) fn weak(&self) -> Weak<Database> {
        Arc::downgrade(&self.db)
    }

    async fn run<T, F>(&self, op: Op, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, redb::Error> + Send + 'static,
    {
        let db = self.db.clone();
        let res = tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| redb::Error::Corrupted(format!("log task failed: {e}")))
            .and_then(|r| r);
        res.map_err(|e| {
            let e = AnyError::new(&e);
            match op {
                Op::ReadLogs => StorageIOError::read_logs(e),
                Op::WriteLogs => StorageIOError::write_logs(e),
                Op::ReadVote => StorageIOError::read_vote(e),
                Op::WriteVote => StorageIOError::write_vote(e),
            }
            .into()
        })
    }

    /// Seals and appends `entries` in one durable transaction: redb's default durability
    /// fsyncs on commit, and only then may openraft count these entries as persisted. Sealing
    /// happens on the blocking pool too, so large entries never stall the Raft core's task.
    pub(crate) async fn write_entries(&self, entries: Vec<Entry>) -> Result<(), StorageError> {
        let key = self.key.clone();
        self.run(Op::WriteLogs, move |db| {
            let mut rows = Vec::with_capacity(entries.len());
            for e in &entries {
                let bytes = encode_row(&key, e).map_err(redb::Error::Corrupted)?;
                rows.push((e.get_log_id().index, bytes));
            }
            let txn = db.begin_write()?;
            {
                let mut log = txn.open_table(LOG)?;
                for (index, bytes) in &rows {
                    log.insert(*index, bytes.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    async fn read_meta<T: DeserializeOwned + Send + 'static>(
        &self,
        op: Op,
        key: &'static str,
    ) -> Result<Option<T>, StorageError> {
        self.run(op, move |db| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            match meta.get(key)? {
                Some(v) => Ok(Some(decode(v.value())?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn write_meta<T: Serialize>(
        &self,
        op: Op,
        key: &'static str,
        value: &T,
        durability: Durability,
    ) -> Result<(), StorageError> {
        let bytes = codec::encode(value).map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        self.run(op, move |db| {
            let mut txn = db.begin_write()?;
            txn.set_durability(durability)
                .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
            txn.open_table(META)?.insert(key, bytes.as_slice())?;
            txn.commit()?;
            Ok(())
        })
        .await
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, redb::Error> {
    codec::decode(bytes).map_err(|e| redb::Error::Corrupted(e.to_string()))
}

fn owned_bounds(range: &impl RangeBounds<u64>) -> (Bound<u64>, Bound<u64>) {
    (range.start_bound().cloned(), range.end_bound().cloned())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let bounds = owned_bounds(&range);
        let key = self.key.clone();
        self.run(Op::ReadLogs, move |db| {
            let txn = db.begin_read()?;
            let log = txn.open_table(LOG)?;
            let mut out = Vec::new();
            for item in log.range::<u64>(bounds)? {
                let (k, v) = item?;
                out.push(decode_row(&key, k.value(), v.value()).map_err(redb::Error::Corrupted)?);
            }
            Ok(out)
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let key = self.key.clone();
        let (purged, last) = self
            .run(Op::ReadLogs, move |db| {
                let txn = db.begin_read()?;
                let meta = txn.open_table(META)?;
                let purged: Option<LogId> = match meta.get(PURGED_KEY)? {
                    Some(v) => Some(decode(v.value())?),
                    None => None,
                };
                let log = txn.open_table(LOG)?;
                let last = match log.last()? {
                    Some((k, v)) => Some(
                        *decode_row(&key, k.value(), v.value())
                            .map_err(redb::Error::Corrupted)?
                            .get_log_id(),
                    ),
                    None => None,
                };
                Ok((purged, last))
            })
            .await?;
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        // A vote must survive a crash, or this member could vote twice in one term.
        self.write_meta(Op::WriteVote, VOTE_KEY, vote, Durability::Immediate)
            .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(Op::ReadVote, VOTE_KEY).await
    }

    // Saving the committed id lets a restart re-apply every committed entry beyond the newest
    // snapshot before serving, so acknowledged writes are visible again at once.
    //
    // It is written without its own fsync: it sits on openraft's commit path (the core awaits it
    // before applying), and a second fsync per commit roughly halved write throughput. Nothing
    // depends on it for safety (openraft treats it as optional): the next durable commit of this
    // file (every append, vote, truncate and purge is one) persists it too, and redb makes it
    // durable on a clean close. After a crash it may lag by the last few entries, which are
    // still in the log; they are applied as soon as the leader's commit index arrives again.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.write_meta(Op::WriteLogs, COMMITTED_KEY, &committed, Durability::None)
            .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .read_meta::<Option<LogId>>(Op::ReadLogs, COMMITTED_KEY)
            .await?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let res = self.write_entries(entries.into_iter().collect()).await;
        match &res {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        res
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let from = log_id.index;
        self.run(Op::WriteLogs, move |db| {
            let txn = db.begin_write()?;
            txn.open_table(LOG)?
                .retain_in::<u64, _>(from.., |_, _| false)?;
            txn.commit()?;
            Ok(())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let upto = log_id.index;
        let purged =
            codec::encode(&log_id).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        // The purge marker and the deletion commit together, so a crash never leaves a hole
        // that the marker does not account for.
        self.run(Op::WriteLogs, move |db| {
            let txn = db.begin_write()?;
            txn.open_table(META)?
                .insert(PURGED_KEY, purged.as_slice())?;
            txn.open_table(LOG)?
                .retain_in::<u64, _>(..=upto, |_, _| false)?;
            txn.commit()?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::types::Proposal;
    use openraft::{CommittedLeaderId, EntryPayload};
    use swarm_api::StoreBatch;

    pub(crate) fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(Proposal(vec![StoreBatch {
                actions: vec![],
                timestamp: index as i64,
            }])),
        }
    }

    async fn append(store: &mut LogStore, entries: Vec<Entry>) {
        store.write_entries(entries).await.unwrap();
    }

    #[tokio::test]
    async fn entries_vote_and_purge_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let key = DataKey::generate().unwrap();
        {
            let (mut s, has_state) = LogStore::open(&path, key.clone()).unwrap();
            assert!(!has_state);
            append(&mut s, (1..=10).map(|i| entry(1, i)).collect()).await;
            s.save_vote(&Vote::new(3, 1)).await.unwrap();
            s.truncate(LogId::new(CommittedLeaderId::new(1, 1), 9))
                .await
                .unwrap();
            s.purge(LogId::new(CommittedLeaderId::new(1, 1), 4))
                .await
                .unwrap();
        }
        let (mut s, has_state) = LogStore::open(&path, key).unwrap();
        assert!(has_state);
        assert_eq!(s.read_vote().await.unwrap(), Some(Vote::new(3, 1)));
        let st = s.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id.map(|l| l.index), Some(4));
        assert_eq!(st.last_log_id.map(|l| l.index), Some(8));
        let got: Vec<u64> = s
            .try_get_log_entries(0..100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.log_id.index)
            .collect();
        assert_eq!(got, vec![5, 6, 7, 8]);
    }

    fn raw(s: &LogStore, index: u64) -> Vec<u8> {
        let txn = s.db.begin_read().unwrap();
        let log = txn.open_table(LOG).unwrap();
        let v = log.get(index).unwrap().unwrap().value().to_vec();
        v
    }

    fn put_raw(s: &LogStore, index: u64, bytes: &[u8]) {
        let txn = s.db.begin_write().unwrap();
        txn.open_table(LOG).unwrap().insert(index, bytes).unwrap();
        txn.commit().unwrap();
    }

    async fn read_err(s: &mut LogStore, range: std::ops::Range<u64>) -> String {
        let err = s.try_get_log_entries(range).await.unwrap_err();
        format!("{err:?} {err}")
    }

    #[tokio::test]
    async fn tampered_moved_and_wrongly_keyed_entries_fail_naming_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let key = DataKey::generate().unwrap();
        let (mut s, _) = LogStore::open(&path, key.clone()).unwrap();
        append(&mut s, (1..=6).map(|i| entry(2, i)).collect()).await;
        assert_eq!(s.try_get_log_entries(1..7).await.unwrap().len(), 6);

        // One flipped byte in the ciphertext of entry 3.
        let good3 = raw(&s, 3);
        let mut bad = good3.clone();
        let last = bad.len() - 1;
        bad[last - 20] ^= 0x01;
        put_raw(&s, 3, &bad);
        let err = read_err(&mut s, 1..7).await;
        assert!(err.contains("log entry 3"), "{err}");
        assert!(err.contains("authentication"), "{err}");
        // Entries before it still read; the damaged one is never served.
        assert_eq!(s.try_get_log_entries(1..3).await.unwrap().len(), 2);
        put_raw(&s, 3, &good3);

        // Entry 3's row copied over entry 5: the additional data binds it to index 3.
        put_raw(&s, 5, &good3);
        let err = read_err(&mut s, 5..6).await;
        assert!(err.contains("log entry 5"), "{err}");
        // The last entry is opened for the log state too.
        put_raw(&s, 6, &good3);
        assert!(s.get_log_state().await.is_err());
        drop(s);

        // Another key opens nothing.
        let (mut other, has_state) = LogStore::open(&path, DataKey::generate().unwrap()).unwrap();
        assert!(has_state);
        let err = read_err(&mut other, 1..2).await;
        assert!(err.contains("log entry 1"), "{err}");
    }

    #[tokio::test]
    async fn entries_are_not_stored_in_the_clear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let (mut s, _) = LogStore::open(&path, DataKey::generate().unwrap()).unwrap();
        let mut e = entry(1, 1);
        if let EntryPayload::Normal(p) = &mut e.payload {
            p.0[0].actions.push(swarm_api::StoreAction {
                kind: 1,
                object: Some(swarm_api::StoreObject {
                    object: Some(swarm_api::store_object::Object::Service(Box::new(
                        swarm_api::Service {
                            id: "plaintext-marker-0b1e".into(),
                            ..Default::default()
                        },
                    ))),
                }),
            });
        }
        append(&mut s, vec![e.clone()]).await;
        assert_eq!(s.try_get_log_entries(1..2).await.unwrap(), vec![e]);
        drop(s);
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(21).any(|w| w == b"plaintext-marker-0b1e"));
    }

    /// A log of the format before group commit holds only single-transaction entries, which
    /// read unchanged: it opens, and is marked with the new version so older builds refuse it
    /// once it may hold groups.
    #[tokio::test]
    async fn a_log_before_group_commit_opens_and_is_marked_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let key = DataKey::generate().unwrap();
        {
            let (mut s, _) = LogStore::open(&path, key.clone()).unwrap();
            append(&mut s, vec![entry(1, 1), entry(1, 2)]).await;
        }
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_KEY, b"swarm-raft-log/2".as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let (mut s, has_state) = LogStore::open(&path, key.clone()).unwrap();
        assert!(has_state);
        let got = s.try_get_log_entries(1..3).await.unwrap();
        assert_eq!(got, vec![entry(1, 1), entry(1, 2)]);
        drop(s);
        let db = Database::create(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        assert_eq!(
            meta.get(SCHEMA_KEY).unwrap().unwrap().value(),
            SCHEMA_VERSION
        );
    }

    #[test]
    fn an_unencrypted_log_is_refused_as_an_older_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_KEY, b"swarm-raft-log/1".as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let err = LogStore::open(&path, DataKey::generate().unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("state dir written by an older format;"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }
}
