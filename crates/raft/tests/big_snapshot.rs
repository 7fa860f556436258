//! A snapshot of more than 100 MiB reaches a new member: the leader's log is purged, so the
//! only way to catch up is the snapshot, streamed in chunks (no single message over the
//! 4 MiB limit, no timeout that the size can hit). Plaintext gRPC on loopback.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use swarm_api::{
    store_object, Annotations, Secret, SecretSpec, StoreAction, StoreActionKind, StoreBatch,
    StoreObject,
};
use swarm_raft::RaftNode;
use swarm_store::Store;

const ENTRIES: usize = 110;
const ENTRY_BYTES: usize = 1024 * 1024;

fn big(i: usize) -> StoreBatch {
    let secret = Secret {
        id: format!("big{i:022}"),
        spec: Some(SecretSpec {
            annotations: Some(Annotations {
                name: format!("big-{i}"),
                ..Default::default()
            }),
            // Varied bytes, so nothing along the way can shrink it much.
            data: (0..ENTRY_BYTES)
                .map(|k| (k.wrapping_mul(31) ^ i) as u8)
                .collect(),
        }),
        ..Default::default()
    };
    StoreBatch {
        actions: vec![StoreAction {
            kind: StoreActionKind::Create as i32,
            object: Some(StoreObject {
                object: Some(store_object::Object::Secret(Box::new(secret))),
            }),
        }],
        timestamp: 1,
    }
}

/// Polls for up to two minutes: a debug build moves 110 MiB slowly.
async fn within_2_min(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn total_bytes(store: &Store) -> usize {
    store.view(|t| {
        t.secrets
            .iter()
            .map(|s| s.spec.as_ref().map(|x| x.data.len()).unwrap_or(0))
            .sum()
    })
}

async fn member(
    id: u64,
) -> (
    RaftNode,
    Store,
    String,
    tempfile::TempDir,
    tokio::task::JoinHandle<()>,
) {
    let dir = tempfile::tempdir().unwrap();
    let (listener, addr) = listener().await;
    let addr = addr.to_string();
    let mut cfg = config(dir.path(), id, &addr);
    cfg.snapshot_interval = 20;
    cfg.log_entries_for_slow_followers = 2;
    let store = Store::new();
    let node = RaftNode::open(cfg, store.clone(), connector())
        .await
        .unwrap();
    let server = serve(&node, listener);
    (node, store, addr, dir, server)
}

// Opt-in: moving 110 MiB through sealing, fsync and gRPC takes from 11 s to over 2 min on
// 2 shared cores, too uncertain for CI's time budget. Run it with
// `cargo test -p swarm-raft --test big_snapshot -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "110 MiB transfer: run with --ignored"]
async fn a_snapshot_over_100_mib_reaches_a_new_member() {
    let (n1, s1, _a1, _d1, _srv1) = member(1).await;
    n1.bootstrap().await.unwrap();
    wait_leader(&n1).await;
    for i in 0..ENTRIES {
        n1.propose(big(i)).await.unwrap();
    }
    assert!(total_bytes(&s1) >= 100 * 1024 * 1024);
    // A snapshot of everything now: the policy's last one (every 20 entries) may stop short
    // of 100 MiB. The log behind it is purged, so the snapshot is the only way in.
    let index = n1
        .snapshot_now(std::time::Duration::from_secs(120))
        .await
        .unwrap();
    assert!(index >= ENTRIES as u64, "snapshot at {index}");
    within_2_min("the log behind the snapshot purged", || {
        n1.status().purged_index.unwrap_or(0) >= ENTRIES as u64 - 5
    })
    .await;

    let (n2, s2, a2, _d2, _srv2) = member(2).await;
    n1.add_voter(2, &a2).await.unwrap();
    within_2_min("the new member holds all 110 MiB", || {
        total_bytes(&s2) == ENTRIES * ENTRY_BYTES
    })
    .await;
    let same = s1.view(|a| {
        s2.view(|b| {
            a.secrets
                .iter()
                .all(|x| b.secrets.get(&x.id).is_some_and(|y| y.spec == x.spec))
        })
    });
    assert!(same, "the new member's copy is identical");
    assert!(n2.voters().contains(&2));
}
