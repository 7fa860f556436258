//! Three members in one process over plaintext gRPC on loopback: membership changes,
//! replication, and followers refusing proposals with the leader's address.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;

use common::*;
use swarm_api::{
    store_object, Annotations, Secret, SecretSpec, StoreAction, StoreActionKind, StoreBatch,
    StoreObject,
};
use swarm_raft::{RaftNode, WriteError};
use swarm_store::Store;

struct Member {
    node: RaftNode,
    store: Store,
    addr: String,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start(id: u64, snapshot_interval: u64) -> Member {
    let dir = tempfile::tempdir().unwrap();
    let (listener, addr) = listener().await;
    let addr = addr.to_string();
    let mut cfg = config(dir.path(), id, &addr);
    // swarmd's tick rather than the other tests' 50 ms: these send entries of 1-5 MiB, and on a
    // loaded machine one can take longer than 50 ms ticks allow (quorum window 0.75 s, propose
    // deadline 1 s): the leader stepped down under its own writes, or the proposal timed out.
    cfg.tick_ms = 100;
    cfg.snapshot_interval = snapshot_interval;
    cfg.log_entries_for_slow_followers = 5;
    let store = Store::new();
    let node = RaftNode::open(cfg, store.clone(), connector())
        .await
        .unwrap();
    let server = serve(&node, listener);
    Member {
        node,
        store,
        addr,
        server,
        _dir: dir,
    }
}

fn big_secret(i: usize) -> StoreBatch {
    let secret = Secret {
        id: format!("sec{i:022}"),
        spec: Some(SecretSpec {
            annotations: Some(Annotations {
                name: format!("secret-{i}"),
                ..Default::default()
            }),
            data: vec![i as u8; 1024 * 1024],
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

/// One transaction of about 5 MiB: more than any AppendEntries message should carry, but a
/// single entry cannot be split, so it must go as it is. It used to be refused before it was
/// sent ("message too large"), and the followers never got past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_entry_over_the_message_limit_still_replicates() {
    let m1 = start(1, 1_000).await;
    let m2 = start(2, 1_000).await;
    let m3 = start(3, 1_000).await;
    form_cluster(&m1.node, &[(2, &m2.addr), (3, &m3.addr)]).await;
    let mut batch = big_secret(0);
    for i in 1..5 {
        batch.actions.extend(big_secret(i).actions);
    }
    m1.node.propose(batch).await.unwrap();
    for m in [&m2, &m3] {
        eventually("the big entry replicated", || {
            m.store.view(|t| t.secrets.len()) == 5
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_converge_and_followers_redirect() {
    // A small snapshot interval so that the late members catch up through a snapshot transfer
    // as well as through the log.
    let m1 = start(1, 20).await;
    let m2 = start(2, 20).await;
    let m3 = start(3, 20).await;

    m1.node.bootstrap().await.unwrap();
    wait_leader(&m1.node).await;
    for i in 0..40 {
        m1.node.propose(create_service(i)).await.unwrap();
    }

    // The leader has purged the start of its log, so the newcomers can only catch up through
    // a snapshot sent over gRPC.
    eventually("leader purged its log", || {
        m1.node.status().purged_index.unwrap_or(0) > 0
    })
    .await;

    m1.node.add_learner(2, &m2.addr).await.unwrap();
    m1.node.add_learner(3, &m3.addr).await.unwrap();
    m1.node
        .change_membership(BTreeSet::from([1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(m1.node.voters(), BTreeSet::from([1, 2, 3]));
    let mut members = m1.node.members();
    members.sort();
    assert_eq!(
        members,
        vec![
            (1, m1.addr.clone()),
            (2, m2.addr.clone()),
            (3, m3.addr.clone())
        ]
    );

    for i in 40..60 {
        m1.node.propose(create_service(i)).await.unwrap();
    }
    for m in [&m1, &m2, &m3] {
        eventually("stores converge", || {
            service_names(&m.store) == expected_names(0..60)
        })
        .await;
    }

    // Entries of about 1 MiB proposed at once: AppendEntries must split them to stay under the
    // 4 MiB message size and still deliver all of them.
    let mut proposals = Vec::new();
    for i in 0..8 {
        let node = m1.node.clone();
        proposals.push(tokio::spawn(
            async move { node.propose(big_secret(i)).await },
        ));
    }
    for p in proposals {
        p.await.unwrap().unwrap();
    }
    for m in [&m1, &m2, &m3] {
        eventually("big entries replicated", || {
            m.store.view(|t| t.secrets.len()) == 8
        })
        .await;
    }

    // Followers know the leader and send proposers there.
    for m in [&m2, &m3] {
        let l = wait_for(&m.node, "leader known", |l| l.leader_id == Some(1)).await;
        assert!(!l.is_leader);
        assert_eq!(l.leader_addr.as_deref(), Some(m1.addr.as_str()));
        match m.node.propose(create_service(100)).await {
            Err(WriteError::NotLeader { leader_id, leader }) => {
                assert_eq!(leader_id, Some(1));
                assert_eq!(leader.as_deref(), Some(m1.addr.as_str()));
            }
            other => panic!("follower accepted a proposal: {other:?}"),
        }
    }

    // The leader goes away: the other two elect one of themselves and keep every write.
    m1.node.shutdown().await.unwrap();
    m1.server.abort();
    let mut rx2 = m2.node.leadership();
    let mut rx3 = m3.node.leadership();
    let new_leader = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            if rx2.borrow().is_leader {
                return &m2;
            }
            if rx3.borrow().is_leader {
                return &m3;
            }
            tokio::select! {
                _ = rx2.changed() => {}
                _ = rx3.changed() => {}
            }
        }
    })
    .await
    .unwrap();
    new_leader.node.propose(create_service(60)).await.unwrap();
    for m in [&m2, &m3] {
        eventually("survivors converge", || {
            service_names(&m.store) == expected_names(0..61)
        })
        .await;
    }

    for m in [&m2, &m3] {
        m.node.shutdown().await.unwrap();
        m.server.abort();
    }
}

/// Two managers joining at the same moment both end up voters: each promotion names only its
/// own member, so neither undoes the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_joins_both_become_voters() {
    let m1 = start(1, 1000).await;
    let m2 = start(2, 1000).await;
    let m3 = start(3, 1000).await;
    m1.node.bootstrap().await.unwrap();
    wait_leader(&m1.node).await;
    for i in 0..5 {
        m1.node.propose(create_service(i)).await.unwrap();
    }
    let (a, b) = tokio::join!(
        m1.node.add_voter(2, &m2.addr),
        m1.node.add_voter(3, &m3.addr)
    );
    a.unwrap();
    b.unwrap();
    eventually("three voters", || {
        m1.node.voters() == BTreeSet::from([1, 2, 3])
    })
    .await;
    // And they count: with the leader gone, the other two elect one of themselves.
    m1.node.shutdown().await.unwrap();
    m1.server.abort();
    eventually("a new leader among m2 and m3", || {
        [&m2, &m3]
            .iter()
            .any(|m| m.node.leadership().borrow().is_leader)
    })
    .await;
}

/// Removing a learner takes it out of the group (replacing the voters with themselves, as for
/// a voter, left it in): a manager's earlier Raft state may be a learner when it rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_learner_leaves_the_group() {
    let m1 = start(1, 1000).await;
    let m2 = start(2, 1000).await;
    m1.node.bootstrap().await.unwrap();
    wait_leader(&m1.node).await;
    m1.node.add_learner(2, &m2.addr).await.unwrap();
    assert!(m1.node.members().iter().any(|(id, _)| *id == 2));
    m1.node.remove_member(2).await.unwrap();
    eventually("m2 gone", || {
        m1.node.members().iter().all(|(id, _)| *id != 2)
    })
    .await;
    assert_eq!(m1.node.voters(), BTreeSet::from([1]));
}

/// A member is promoted to voter only once it holds what the leader had. openraft's own wait
/// counts a learner as caught up within 10,500 entries of the leader, so a joining manager
/// became a voter as soon as it first answered, while the snapshot was still on its way; with
/// two voters the leader then had no quorum until the newcomer had installed it (36 s at a
/// million tasks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_becomes_a_voter_only_once_caught_up() {
    let m1 = start(1, 4).await;
    m1.node.bootstrap().await.unwrap();
    wait_leader(&m1.node).await;
    // 12 MiB: the snapshot takes a while to stream and install.
    for i in 0..12 {
        m1.node.propose(big_secret(i)).await.unwrap();
    }
    eventually("a snapshot and the log behind it purged", || {
        m1.node.status().purged_index.is_some()
    })
    .await;
    let target = m1.node.status().last_log_index.unwrap();
    let m2 = start(2, 4).await;
    let adding = m1.node.add_voter(2, &m2.addr);
    tokio::pin!(adding);
    // Whenever the leader counts member 2 as a voter, member 2 already holds the log.
    let added = loop {
        tokio::select! {
            res = &mut adding => break res,
            _ = tokio::time::sleep(std::time::Duration::from_millis(1)) => {}
        }
        if m1.node.voters().contains(&2) {
            let st = m2.node.status();
            let held = st.last_log_index.max(st.snapshot_index).unwrap_or(0);
            assert!(
                held >= target,
                "member 2 became a voter holding up to {held} of {target}"
            );
        }
    };
    added.unwrap();
    assert!(
        m2.node.status().snapshot_index.is_some(),
        "caught up from the snapshot"
    );
    assert_eq!(m1.node.voters(), BTreeSet::from([1, 2]));
    eventually("member 2 holds every secret", || {
        m2.store.view(|t| t.secrets.len()) == 12
    })
    .await;
}
