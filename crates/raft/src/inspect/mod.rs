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
//!
//! The work is split by what it reads: `log_reader` (the redb log), `snapshot_reader` (the
//! snapshot files), `replay` (rebuilding the store and the report) and `report` (the types).

mod log_reader;
mod replay;
mod report;
mod snapshot_reader;

use std::path::Path;

use crate::at_rest::{load_data_key, DataKey};
use crate::error::{DiskError, RaftError};

pub use report::{
    EntryKind, EntryReport, LogPos, Member, MembershipReport, SnapshotReport, StateReport,
    VoteReport,
};

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
        return Err(DiskError::Invalid(format!(
            "state dir {} does not exist",
            state_dir.display()
        ))
        .into());
    }
    if !log_path.is_file() {
        return Err(DiskError::Invalid(format!(
            "no raft state in {} (no {}): not a manager's state dir?",
            state_dir.display(),
            log_path.display()
        ))
        .into());
    }

    let key = match key {
        Some(k) => k.clone(),
        None => load_data_key(state_dir, false)?,
    };
    let log = log_reader::read_log(&log_path, &key)?;
    let mut warnings = Vec::new();
    let snapshot =
        snapshot_reader::newest_snapshot(&raft_dir.join("snapshots"), &key, &mut warnings)?;
    Ok(replay::assemble(raft_dir, log, snapshot, warnings))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::snapshot_reader::newest_snapshot;
    use super::*;
    use crate::log_schema::LOG;
    use crate::types::{LogId, SnapshotMeta};
    use crate::{PeerConnectError, PeerConnector, RaftConfig, RaftNode};
    use prost::Message;
    use redb::ReadableTable;
    use std::fs;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;
    use swarm_api::{
        store_object, Annotations, Service, ServiceSpec, StoreAction, StoreActionKind, StoreObject,
    };
    use swarm_api::{StoreBatch, StoreSnapshot};
    use swarm_store::Store;
    use tonic::transport::Channel;

    struct NoPeers;
    impl PeerConnector for NoPeers {
        fn channel(&self, addr: &str) -> Result<Channel, PeerConnectError> {
            Err(PeerConnectError::NoRoute {
                addr: addr.into(),
                reason: "no peers in this test".into(),
            })
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
                    object: Some(store_object::Object::Service(Box::new(svc))),
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
                    store_object::Object::Service(s) => Some(*s),
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
