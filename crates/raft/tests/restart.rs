//! One member: proposals survive a restart, with and without snapshots and log purging.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use swarm_raft::{RaftNode, WriteError};
use swarm_store::Store;

async fn propose_restart_and_check(snapshot_interval: Option<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let addr = "127.0.0.1:1";
    let mk_cfg = || {
        let mut cfg = config(dir.path(), 1, addr);
        if let Some(n) = snapshot_interval {
            cfg.snapshot_interval = n;
            cfg.log_entries_for_slow_followers = 3;
        }
        cfg
    };

    let store = Store::new();
    let node = RaftNode::open(mk_cfg(), store.clone(), connector())
        .await
        .unwrap();
    assert!(!node.has_state());
    node.bootstrap().await.unwrap();
    let l = wait_leader(&node).await;
    assert_eq!(l.leader_id, Some(1));
    assert_eq!(l.leader_addr.as_deref(), Some(addr));

    for i in 0..50 {
        let written = node.propose(create_service(i)).await.unwrap();
        assert_eq!(written.len(), 1);
    }
    assert_eq!(service_names(&store), expected_names(0..50));

    // A refused transaction comes back as the store's error, and changes nothing.
    match node.propose(create_service(7)).await {
        Err(WriteError::Refused(_)) => {}
        other => panic!("duplicate create should be refused, got {other:?}"),
    }
    node.shutdown().await.unwrap();
    wait_for(&node, "leadership dropped on shutdown", |l| !l.is_leader).await;

    let snap_dir = dir.path().join("raft").join("snapshots");
    let snaps: Vec<_> = std::fs::read_dir(&snap_dir).unwrap().collect();
    if snapshot_interval.is_some() {
        assert_eq!(snaps.len(), 1, "exactly the newest snapshot is kept");
    }

    // Restart with an empty store: everything acknowledged must come back.
    let store = Store::new();
    let node = RaftNode::open(mk_cfg(), store.clone(), connector())
        .await
        .unwrap();
    assert!(node.has_state());
    // openraft re-applies the committed log while opening, before any election.
    assert_eq!(service_names(&store), expected_names(0..50));
    // Metrics are published by openraft's core shortly after it starts.
    eventually("metrics", || node.status().last_applied.is_some()).await;
    let status = node.status();
    if snapshot_interval.is_some() {
        let snap = status.snapshot_index.unwrap_or(0);
        let purged = status.purged_index.unwrap_or(0);
        assert!(snap >= 40, "snapshot taken near the end: {status:?}");
        assert!(
            purged > 0 && purged < snap,
            "log purged, keeping a tail: {status:?}"
        );
    } else {
        assert_eq!(status.snapshot_index, None, "{status:?}");
    }
    assert!(matches!(
        node.bootstrap().await,
        Err(swarm_raft::RaftError::AlreadyInitialized)
    ));
    wait_leader(&node).await;

    node.propose(create_service(50)).await.unwrap();
    assert_eq!(service_names(&store), expected_names(0..51));
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_restart_replays_log() {
    propose_restart_and_check(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_restart_from_snapshot_and_log() {
    propose_restart_and_check(Some(10)).await;
}

#[tokio::test]
async fn propose_before_leadership_is_not_leader() {
    let dir = tempfile::tempdir().unwrap();
    let node = RaftNode::open(
        config(dir.path(), 1, "127.0.0.1:1"),
        Store::new(),
        connector(),
    )
    .await
    .unwrap();
    match node.propose(create_service(0)).await {
        Err(WriteError::NotLeader { .. }) => {}
        other => panic!("expected NotLeader, got {other:?}"),
    }
    node.shutdown().await.unwrap();
}
