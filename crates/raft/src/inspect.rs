//! Offline inspection of a manager's Raft state (`<state_dir>/raft/`): the vote, log positions,
//! membership, the newest snapshot and every log entry after it, plus the store as it stands
//! after replaying them. For operators recovering a cluster (`swarmd inspect-state`).
//!
//! Owns nothing on disk and must never change it: the log is opened with redb's read-only
//! handle, snapshots are read without `SnapshotDir::open` (which would delete `.partial`
//! leftovers). When the log was not closed cleanly, redb needs a repair to read it, and that
//! repair runs on a private copy in the temp dir, never on the original. It reads the same
//! layout as `log_store` and `snapshot_file`; the tests below write through those modules and
//! read back here, so the two cannot drift apart unnoticed. Entries and snapshots are opened
//! with the same functions those modules use, with the data key loaded (never created) from the
//! state dir; an entry that fails to open is reported as unreadable, naming its index, and
//! replay stops there.
//!
//! Interpreting the objects (tables, redaction, printing) is the caller's business; this module
//! only decodes and replays.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use openraft::{EntryPayload, RaftLogId};
use prost::Message;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use swarm_api::{StoreBatch, StoreSnapshot};
use swarm_store::Store;

use crate::at_rest::{load_data_key, DataKey};
use crate::codec;
use crate::error::RaftError;
use crate::log_store::{decode_row, OLD_SCHEMA_VERSIONS, SCHEMA_VERSION};
use crate::snapshot_file::{decode_file, PREFIX as SNAP_PREFIX, SUFFIX as SNAP_SUFFIX};
use crate::types::{Entry, LogId, Node, NodeId, SnapshotMeta, Vote};

// The log's schema, as `log_store` writes it.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SCHEMA_KEY: &str = "schema";
const VOTE_KEY: &str = "vote";
const COMMITTED_KEY: &str = "committed";
const PURGED_KEY: &str = "last_purged";

/// A log position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LogPos {
    pub term: u64,
    pub index: u64,
}

/// One member of the Raft group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub raft_id: u64,
    pub addr: String,
}

/// A membership configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MembershipReport {
    /// Index of the log entry that set it (`None`: never set).
    pub log_index: Option<u64>,
    pub voters: Vec<Member>,
    pub learners: Vec<Member>,
    /// True while a membership change is half done (two voter sets must both agree).
    pub joint: bool,
}

/// The persisted vote: the term this member is in and whom it voted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VoteReport {
    pub term: u64,
    pub voted_for: Option<u64>,
    /// The vote was granted by a quorum: `voted_for` was the leader of `term`.
    pub committed: bool,
}

/// The newest readable snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotReport {
    pub file: PathBuf,
    pub id: String,
    pub last: Option<LogPos>,
    pub membership: MembershipReport,
    pub objects: StoreSnapshot,
}

/// What one log entry carries.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryKind {
    /// Written by each new leader to commit its term.
    Blank,
    /// One store transaction.
    Normal {
        batch: StoreBatch,
    },
    Membership {
        membership: MembershipReport,
    },
    /// The stored bytes do not decode; replay stops before it.
    Unreadable {
        error: String,
    },
}

/// One log entry after the snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct EntryReport {
    pub index: u64,
    pub term: u64,
    /// At or below the persisted commit index.
    pub committed: bool,
    #[serde(flatten)]
    pub kind: EntryKind,
    /// Why the store refused this transaction during replay (it was refused at runtime too).
    pub refused: Option<String>,
}

/// Everything `inspect` found.
#[derive(Debug, Clone, Serialize)]
pub struct StateReport {
    pub raft_dir: PathBuf,
    pub vote: Option<VoteReport>,
    /// The latest membership: from the newest membership entry in the log, else the snapshot.
    pub membership: MembershipReport,
    /// First and last index the log holds (either may be covered by the snapshot).
    pub first_log_index: Option<u64>,
    pub last_log_index: Option<u64>,
    pub committed: Option<LogPos>,
    pub last_purged: Option<LogPos>,
    pub snapshot: Option<SnapshotReport>,
    /// Entries after the snapshot, in order.
    pub entries: Vec<EntryReport>,
    /// Last entry replayed into `current`.
    pub applied: Option<LogPos>,
    /// The store after the snapshot and the committed entries: the cluster's current objects.
    pub current: StoreSnapshot,
    /// Things an operator should know (unreadable snapshot files, holes in the log, ...).
    pub warnings: Vec<String>,
    /// The log was not closed cleanly and was read from a repaired private copy.
    pub log_repaired: bool,
}

impl StateReport {
    /// The whole report as pretty-printed JSON (callers redact secrets first).
    pub fn to_json(&self) -> Result<String, RaftError> {
        serde_json::to_string_pretty(self)
            .map_err(|e| RaftError::Storage(format!("encoding the report: {e}")))
    }
}

/// Reads `<state_dir>/raft/` without changing it and replays it into a fresh store, opening it
/// with the data key stored in the state dir (see [`crate::load_data_key`]).
pub fn inspect(state_dir: &Path) -> Result<StateReport, RaftError> {
    inspect_with(state_dir, None)
}

/// [`inspect`] with a data key the caller supplies (autolock: unwrapped with the unlock key).
pub fn inspect_with_key(state_dir: &Path, key: &DataKey) -> Result<StateReport, RaftError> {
    inspect_with(state_dir, Some(key))
}

fn inspect_with(state_dir: &Path, key: Option<&DataKey>) -> Result<StateReport, RaftError> {
    let raft_dir = state_dir.join("raft");
    let log_path = raft_dir.join("log.redb");
    if !state_dir.is_dir() {
        return Err(RaftError::Storage(format!(
            "state dir {} does not exist",
            state_dir.display()
        )));
    }
    if !log_path.is_file() {
        return Err(RaftError::Storage(format!(
            "no raft state in {} (no {}): not a manager's state dir?",
            state_dir.display(),
            log_path.display()
        )));
    }

    let key = match key {
        Some(k) => k.clone(),
        None => load_data_key(state_dir, false)?,
    };
    let log = read_log(&log_path, &key)?;
    let mut warnings = Vec::new();
    let snapshot = newest_snapshot(&raft_dir.join("snapshots"), &key, &mut warnings)?;
    Ok(assemble(raft_dir, log, snapshot, warnings))
}

/// The raw content of the log file.
struct LogContent {
    vote: Option<Vote>,
    committed: Option<LogId>,
    purged: Option<LogId>,
    /// Key and decoded entry (or why it did not decode), in index order.
    entries: Vec<(u64, Result<Entry, String>)>,
    repaired: bool,
}

fn read_log(path: &Path, key: &DataKey) -> Result<LogContent, RaftError> {
    match redb::ReadOnlyDatabase::open(path) {
        Ok(db) => read_tables(&db, path, key, false),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(RaftError::Unavailable(format!(
            "{} is in use by a running swarmd; stop it first",
            path.display()
        ))),
        // Not closed cleanly (a crash or kill -9): reading needs a repair, which writes. Do it
        // on a copy so the original stays exactly as the crashed swarmd left it.
        Err(redb::DatabaseError::RepairAborted) => read_repaired_copy(path, key),
        Err(e) => Err(RaftError::Storage(format!(
            "{}: not a readable raft log: {e}",
            path.display()
        ))),
    }
}

fn read_repaired_copy(path: &Path, key: &DataKey) -> Result<LogContent, RaftError> {
    let copy = TempCopy::new(path)?;
    let db = redb::Database::open(&copy.0).map_err(|e| {
        RaftError::Storage(format!(
            "{}: not a readable raft log (repair of a copy failed): {e}",
            path.display()
        ))
    })?;
    read_tables(&db, path, key, true)
}

/// A private copy of the log in the temp dir, removed on drop.
struct TempCopy(PathBuf);

impl TempCopy {
    fn new(src: &Path) -> Result<TempCopy, RaftError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dst = std::env::temp_dir().join(format!(
            "swarmd-inspect-{}-{nanos}.redb",
            std::process::id()
        ));
        fs::copy(src, &dst).map_err(|e| {
            RaftError::Storage(format!(
                "copying {} to {} for repair: {e}",
                src.display(),
                dst.display()
            ))
        })?;
        Ok(TempCopy(dst))
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        // Best effort: a leftover copy in the temp dir is harmless.
        let _ = fs::remove_file(&self.0);
    }
}

fn read_tables(
    db: &impl ReadableDatabase,
    path: &Path,
    key: &DataKey,
    repaired: bool,
) -> Result<LogContent, RaftError> {
    let err = |e: &dyn std::fmt::Display| RaftError::Storage(format!("{}: {e}", path.display()));
    let txn = db.begin_read().map_err(|e| err(&e))?;
    // A log that swarmd created always has both tables and the schema key; a missing one means
    // this is some other redb file (or one whose creation never committed).
    let meta = txn.open_table(META).map_err(|e| err(&e))?;
    let schema = meta
        .get(SCHEMA_KEY)
        .map_err(|e| err(&e))?
        .map(|v| v.value().to_vec());
    match schema {
        Some(v) if v == SCHEMA_VERSION => {}
        Some(v) if OLD_SCHEMA_VERSIONS.contains(&v.as_slice()) => {
            return Err(RaftError::OldFormat(format!(
                "{} is an unencrypted {} log",
                path.display(),
                String::from_utf8_lossy(&v)
            )))
        }
        Some(v) => {
            return Err(RaftError::Format(
                path.display().to_string(),
                String::from_utf8_lossy(&v).into_owned(),
            ))
        }
        None => return Err(err(&"no schema version: not a swarmd raft log")),
    }
    let vote: Option<Vote> = read_meta(&meta, VOTE_KEY).map_err(|e| err(&e))?;
    // Stored as `Option<LogId>` itself (openraft may save "nothing committed").
    let committed: Option<LogId> = read_meta::<Option<LogId>>(&meta, COMMITTED_KEY)
        .map_err(|e| err(&e))?
        .flatten();
    let purged: Option<LogId> = read_meta(&meta, PURGED_KEY).map_err(|e| err(&e))?;

    let log = txn.open_table(LOG).map_err(|e| err(&e))?;
    let mut entries = Vec::new();
    for item in log.iter().map_err(|e| err(&e))? {
        let (k, v) = item.map_err(|e| err(&e))?;
        let decoded = decode_row(key, k.value(), v.value());
        entries.push((k.value(), decoded));
    }
    Ok(LogContent {
        vote,
        committed,
        purged,
        entries,
        repaired,
    })
}

fn read_meta<T: serde::de::DeserializeOwned>(
    meta: &redb::ReadOnlyTable<&str, &[u8]>,
    key: &str,
) -> Result<Option<T>, String> {
    match meta.get(key).map_err(|e| e.to_string())? {
        Some(v) => codec::decode(v.value())
            .map(Some)
            .map_err(|e| format!("{key}: {e}")),
        None => Ok(None),
    }
}

/// The newest snapshot file that reads and decodes; damaged newer ones become warnings, the
/// way a restarting member would skip them.
fn newest_snapshot(
    dir: &Path,
    key: &DataKey,
    warnings: &mut Vec<String>,
) -> Result<Option<(PathBuf, SnapshotMeta, StoreSnapshot)>, RaftError> {
    let listing = match fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RaftError::Storage(format!("{}: {e}", dir.display()))),
    };
    let mut files = Vec::new();
    for entry in listing {
        let path = entry
            .map_err(|e| RaftError::Storage(format!("{}: {e}", dir.display())))?
            .path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(index) = name
            .strip_prefix(SNAP_PREFIX)
            .and_then(|n| n.strip_suffix(SNAP_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        {
            files.push((index, path));
        }
    }
    files.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
    for (index, path) in files {
        match read_snapshot(&path, key, index) {
            Ok((meta, snap)) => return Ok(Some((path, meta, snap))),
            Err(e) => warnings.push(format!(
                "skipped unreadable snapshot {}: {e}",
                path.display()
            )),
        }
    }
    Ok(None)
}

fn read_snapshot(
    path: &Path,
    key: &DataKey,
    index: u64,
) -> Result<(SnapshotMeta, StoreSnapshot), String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let (meta, data) = decode_file(key, index, &bytes)?;
    let snap = StoreSnapshot::decode(data.as_slice()).map_err(|e| e.to_string())?;
    Ok((meta, snap))
}

fn pos(l: &LogId) -> LogPos {
    LogPos {
        term: l.leader_id.term,
        index: l.index,
    }
}

fn membership_report(
    log_index: Option<u64>,
    m: &openraft::Membership<NodeId, Node>,
) -> MembershipReport {
    let addr = |id: u64| m.get_node(&id).map(|n| n.addr.clone()).unwrap_or_default();
    let voters: BTreeSet<u64> = m.voter_ids().collect();
    MembershipReport {
        log_index,
        voters: voters
            .iter()
            .map(|&raft_id| Member {
                raft_id,
                addr: addr(raft_id),
            })
            .collect(),
        learners: m
            .learner_ids()
            .map(|raft_id| Member {
                raft_id,
                addr: addr(raft_id),
            })
            .collect(),
        joint: m.get_joint_config().len() > 1,
    }
}

/// Puts the pieces together and replays the snapshot and the committed entries into a store.
fn assemble(
    raft_dir: PathBuf,
    log: LogContent,
    snapshot: Option<(PathBuf, SnapshotMeta, StoreSnapshot)>,
    mut warnings: Vec<String>,
) -> StateReport {
    let store = Store::new();
    let mut applied: Option<LogPos> = None;
    let mut membership = MembershipReport::default();
    let snapshot = snapshot.map(|(file, meta, objects)| {
        store.restore(objects.clone());
        applied = meta.last_log_id.as_ref().map(pos);
        membership = membership_report(
            meta.last_membership.log_id().map(|l| l.index),
            meta.last_membership.membership(),
        );
        SnapshotReport {
            file,
            id: meta.snapshot_id.clone(),
            last: applied,
            membership: membership.clone(),
            objects,
        }
    });
    let snapshot_index = applied.map(|p| p.index);
    let committed_index = log.committed.map(|l| l.index);

    let first_log_index = log.entries.first().map(|(k, _)| *k);
    let last_log_index = log.entries.last().map(|(k, _)| *k);
    if let (Some(first), Some(snap)) = (first_log_index, snapshot_index) {
        if first > snap + 1 {
            warnings.push(format!(
                "log starts at {first} but the snapshot ends at {snap}: entries {} to {} are missing",
                snap + 1,
                first - 1
            ));
        }
    }
    if snapshot.is_none() {
        if let Some(p) = log.purged {
            warnings.push(format!(
                "log purged up to {} but no readable snapshot covers it: the objects shown lack those entries",
                p.index
            ));
        }
    }

    // Replay stops at the first hole or unreadable entry: later entries depend on it.
    let mut replaying = true;
    let mut expected = snapshot_index.map(|i| i + 1);
    let mut entries = Vec::new();
    for (key, decoded) in log.entries {
        if snapshot_index.is_some_and(|s| key <= s) {
            continue;
        }
        let committed = committed_index.is_some_and(|c| key <= c);
        if replaying && expected.is_some_and(|e| e != key) {
            replaying = false;
        }
        expected = Some(key + 1);
        let entry = match decoded {
            Ok(e) => e,
            Err(error) => {
                warnings.push(format!("log entry {key} is unreadable: {error}"));
                replaying = false;
                entries.push(EntryReport {
                    index: key,
                    term: 0,
                    committed,
                    kind: EntryKind::Unreadable { error },
                    refused: None,
                });
                continue;
            }
        };
        let id = *entry.get_log_id();
        let apply = replaying && committed;
        let mut refused = None;
        let kind = match entry.payload {
            EntryPayload::Blank => EntryKind::Blank,
            EntryPayload::Normal(p) => {
                if apply {
                    // A refused batch is not a failure: it was refused the same way at runtime.
                    if let Err(e) = store.apply(id.index, &p.0) {
                        refused = Some(e.to_string());
                    }
                }
                EntryKind::Normal { batch: p.0 }
            }
            EntryPayload::Membership(m) => {
                // openraft acts on a membership entry as soon as it is in the log, committed
                // or not, so the newest one is the membership in force.
                membership = membership_report(Some(id.index), &m);
                EntryKind::Membership {
                    membership: membership.clone(),
                }
            }
        };
        if apply {
            applied = Some(pos(&id));
        }
        entries.push(EntryReport {
            index: id.index,
            term: id.leader_id.term,
            committed,
            kind,
            refused,
        });
    }
    if committed_index.is_some_and(|c| applied.is_none_or(|a| a.index < c)) {
        warnings.push(format!(
            "replay stopped at {:?} before the commit index {:?}",
            applied.map(|a| a.index),
            committed_index
        ));
    }

    StateReport {
        raft_dir,
        vote: log.vote.map(|v| VoteReport {
            term: v.leader_id.get_term(),
            voted_for: v.leader_id.voted_for(),
            committed: v.committed,
        }),
        membership,
        first_log_index,
        last_log_index,
        committed: log.committed.as_ref().map(pos),
        last_purged: log.purged.as_ref().map(pos),
        snapshot,
        entries,
        applied,
        current: store.snapshot(),
        warnings,
        log_repaired: log.repaired,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{PeerConnector, RaftConfig, RaftNode};
    use std::sync::Arc;
    use std::time::Duration;
    use swarm_api::{
        store_object, Annotations, Service, ServiceSpec, StoreAction, StoreActionKind, StoreObject,
    };
    use tonic::transport::Channel;

    struct NoPeers;
    impl PeerConnector for NoPeers {
        fn channel(&self, addr: &str) -> Result<Channel, String> {
            Err(format!("no peers in this test ({addr})"))
        }
    }

    fn create_service(i: usize) -> StoreBatch {
        let svc = Service {
            id: format!("svc{i:022}"),
            spec: Some(ServiceSpec {
                annotations: Some(Annotations {
                    name: format!("service-{i}"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        StoreBatch {
            actions: vec![StoreAction {
                kind: StoreActionKind::Create as i32,
                object: Some(StoreObject {
                    object: Some(store_object::Object::Service(svc)),
                }),
            }],
            timestamp: 1_700_000_000_000 + i as i64,
        }
    }

    fn names(s: &StoreSnapshot) -> Vec<String> {
        let mut v: Vec<String> = s
            .services
            .iter()
            .filter_map(|s| s.spec.as_ref()?.annotations.as_ref())
            .map(|a| a.name.clone())
            .collect();
        v.sort();
        v
    }

    /// Runs a one-member cluster in `dir`, proposes `n` services (plus one refused duplicate)
    /// and shuts it down cleanly.
    async fn build_state(dir: &Path, n: usize, snapshot_interval: Option<u64>) {
        let mut cfg = RaftConfig::new(dir, 1, "127.0.0.1:4242");
        cfg.tick_ms = 50;
        if let Some(i) = snapshot_interval {
            cfg.snapshot_interval = i;
            cfg.log_entries_for_slow_followers = 3;
        }
        let node = RaftNode::open(cfg, Store::new(), Arc::new(NoPeers))
            .await
            .unwrap();
        node.bootstrap().await.unwrap();
        let mut rx = node.leadership();
        tokio::time::timeout(Duration::from_secs(15), rx.wait_for(|l| l.is_leader))
            .await
            .unwrap()
            .unwrap();
        for i in 0..n {
            node.propose(create_service(i)).await.unwrap();
        }
        assert!(node.propose(create_service(0)).await.is_err());
        node.shutdown().await.unwrap();
    }

    fn listing(dir: &Path) -> Vec<(PathBuf, u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let bytes = fs::read(&p).unwrap();
                    out.push((p, bytes.len() as u64, bytes));
                }
            }
        }
        out.sort();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reports_log_membership_and_replayed_objects() {
        let tmp = tempfile::tempdir().unwrap();
        build_state(tmp.path(), 5, None).await;
        let before = listing(tmp.path());

        let r = inspect(tmp.path()).unwrap();
        assert_eq!(listing(tmp.path()), before, "inspect changed the state dir");

        assert!(r.snapshot.is_none(), "{r:?}");
        assert_eq!(
            r.membership.voters,
            vec![Member {
                raft_id: 1,
                addr: "127.0.0.1:4242".into()
            }]
        );
        assert!(r.membership.learners.is_empty());
        let vote = r.vote.unwrap();
        assert_eq!(vote.voted_for, Some(1));
        assert!(vote.term >= 1);
        // Initial membership, the leader's blank entry, 5 creates and 1 refused duplicate.
        assert_eq!(r.first_log_index, Some(0));
        assert_eq!(r.last_log_index, Some(7));
        assert_eq!(r.committed.map(|c| c.index), Some(7));
        assert_eq!(r.applied.map(|c| c.index), Some(7));
        assert_eq!(r.entries.len(), 8);
        assert!(matches!(r.entries[0].kind, EntryKind::Membership { .. }));
        assert!(matches!(r.entries[1].kind, EntryKind::Blank));
        let normal = r
            .entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::Normal { .. }))
            .count();
        assert_eq!(normal, 6);
        let refused: Vec<u64> = r
            .entries
            .iter()
            .filter(|e| e.refused.is_some())
            .map(|e| e.index)
            .collect();
        assert_eq!(refused, vec![7]);
        assert_eq!(
            names(&r.current),
            (0..5).map(|i| format!("service-{i}")).collect::<Vec<_>>()
        );
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        r.to_json().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_the_snapshot_and_the_entries_after_it() {
        let tmp = tempfile::tempdir().unwrap();
        build_state(tmp.path(), 30, Some(10)).await;
        let before = listing(tmp.path());
        let r = inspect(tmp.path()).unwrap();
        assert_eq!(listing(tmp.path()), before, "inspect changed the state dir");

        let snap = r.snapshot.as_ref().unwrap();
        let snap_index = snap.last.unwrap().index;
        assert!(snap_index >= 20, "{snap:?}");
        assert_eq!(snap.membership.voters.len(), 1);
        assert!(!snap.objects.services.is_empty());
        assert!(r.last_purged.is_some());
        assert!(r.entries.iter().all(|e| e.index > snap_index));
        assert_eq!(
            r.entries.first().map(|e| e.index),
            if r.entries.is_empty() {
                None
            } else {
                Some(snap_index + 1)
            }
        );
        assert_eq!(r.membership.voters.len(), 1);
        assert_eq!(names(&r.current).len(), 30);
        assert_eq!(r.applied.map(|a| a.index), Some(32));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn reads_what_snapshot_file_writes() {
        use crate::snapshot_file::SnapshotDir;
        use crate::types::StoredMembership;
        let tmp = tempfile::tempdir().unwrap();
        let key = DataKey::generate().unwrap();
        let dir = SnapshotDir::open(tmp.path().join("snapshots"), key.clone()).unwrap();
        let objects = StoreSnapshot {
            services: create_service(3)
                .actions
                .into_iter()
                .filter_map(|a| match a.object?.object? {
                    store_object::Object::Service(s) => Some(s),
                    _ => None,
                })
                .collect(),
            ..Default::default()
        };
        let meta = SnapshotMeta {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 9)),
            last_membership: StoredMembership::default(),
            snapshot_id: "2-9".into(),
        };
        dir.save(&meta, &objects.encode_to_vec()).unwrap();
        // A damaged newer file is reported and skipped here (a restarting member refuses it).
        fs::write(
            tmp.path()
                .join("snapshots")
                .join("snapshot-00000000000000000012.snap"),
            b"SWSNAP02garbage",
        )
        .unwrap();
        let mut warnings = Vec::new();
        let (_, m, snap) = newest_snapshot(&tmp.path().join("snapshots"), &key, &mut warnings)
            .unwrap()
            .unwrap();
        assert_eq!(m.snapshot_id, "2-9");
        assert_eq!(names(&snap), vec!["service-3".to_string()]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refuses_missing_garbage_and_locked_state() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        assert!(inspect(&missing)
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        assert!(inspect(tmp.path())
            .unwrap_err()
            .to_string()
            .contains("no raft state"));

        fs::create_dir_all(tmp.path().join("raft")).unwrap();
        fs::write(tmp.path().join("raft/log.redb"), b"").unwrap();
        assert!(inspect(tmp.path()).is_err());
        fs::write(tmp.path().join("raft/log.redb"), vec![0x5a; 70_000]).unwrap();
        assert!(inspect(tmp.path()).is_err());

        // A log held open by a running member.
        let live = tempfile::tempdir().unwrap();
        let node = RaftNode::open(
            RaftConfig::new(live.path(), 1, "127.0.0.1:4242"),
            Store::new(),
            Arc::new(NoPeers),
        )
        .await
        .unwrap();
        let err = inspect(live.path()).unwrap_err().to_string();
        assert!(err.contains("in use by a running swarmd"), "{err}");
        node.shutdown().await.unwrap();
        inspect(live.path()).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn truncated_log_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        build_state(tmp.path(), 3, None).await;
        let path = tmp.path().join("raft/log.redb");
        let bytes = fs::read(&path).unwrap();
        for len in [10, 512, 4096, bytes.len() / 2, bytes.len() - 1] {
            fs::write(&path, &bytes[..len]).unwrap();
            // Either a clean error or (if the cut missed everything live) a report; never a panic.
            let _ = inspect(tmp.path());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tampered_entry_is_reported_by_index_and_stops_replay() {
        let tmp = tempfile::tempdir().unwrap();
        build_state(tmp.path(), 5, None).await;
        let path = tmp.path().join("raft/log.redb");
        {
            let db = redb::Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut log = txn.open_table(LOG).unwrap();
                let mut row = log.get(4).unwrap().unwrap().value().to_vec();
                let n = row.len();
                row[n - 1] ^= 0x01;
                log.insert(4, row.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let r = inspect(tmp.path()).unwrap();
        let bad = r.entries.iter().find(|e| e.index == 4).unwrap();
        match &bad.kind {
            EntryKind::Unreadable { error } => assert!(error.contains("log entry 4"), "{error}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.applied.map(|a| a.index), Some(3));
        assert!(
            r.warnings.iter().any(|w| w.contains("log entry 4")),
            "{:?}",
            r.warnings
        );

        // Without the state dir's KEK seed nothing opens.
        fs::remove_file(tmp.path().join("certificates").join(crate::KEK_SEED_FILE)).unwrap();
        assert!(inspect(tmp.path()).is_err());
    }
}
