//! A leader restored from disk is not a leader until a quorum says so. openraft 0.9 starts a
//! member whose saved vote is its own committed vote as leader without an election; if the
//! others elected someone else meanwhile, that member would serve its stale store as leader.
//! Found by the nemesis (a full-cluster restart after the old leader had been deposed).
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use swarm_raft::RaftNode;
use swarm_store::Store;

struct Member {
    node: RaftNode,
    store: Store,
    addr: String,
    server: tokio::task::JoinHandle<()>,
}

async fn open(dir: &Path, id: u64, listener: tokio::net::TcpListener, addr: String) -> Member {
    let store = Store::new();
    let node = RaftNode::open(config(dir, id, &addr), store.clone(), connector())
        .await
        .unwrap();
    let server = serve(&node, listener);
    Member {
        node,
        store,
        addr,
        server,
    }
}

async fn start(dir: &Path, id: u64) -> Member {
    let (listener, addr) = listener().await;
    open(dir, id, listener, addr.to_string()).await
}

/// Reopens a member on its old address (tokio's listeners set SO_REUSEADDR).
async fn restart(dir: &Path, id: u64, addr: &str) -> Member {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    open(dir, id, listener, addr.to_string()).await
}

async fn stop(m: Member) {
    m.node.shutdown().await.unwrap();
    m.server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_restarted_from_disk_does_not_lead_on_its_stale_store() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let m1 = start(dirs[0].path(), 1).await;
    let m2 = start(dirs[1].path(), 2).await;
    let m3 = start(dirs[2].path(), 3).await;
    form_cluster(&m1.node, &[(2, &m2.addr), (3, &m3.addr)]).await;
    m1.node.propose(create_service(0)).await.unwrap();
    let old_term = m1.node.leadership().borrow().term;

    // The leader goes down; the other two elect a new one and commit a write it never sees.
    let addrs = [m1.addr.clone(), m2.addr.clone(), m3.addr.clone()];
    stop(m1).await;
    let new_leader = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            for m in [&m2, &m3] {
                if m.node.leadership().borrow().is_leader {
                    return m.node.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert!(new_leader.leadership().borrow().term > old_term);
    new_leader.propose(create_service(1)).await.unwrap();
    drop(new_leader);
    stop(m2).await;
    stop(m3).await;

    // The old leader comes back first, alone: openraft restores it as leader of its old term.
    // It must not claim leadership (callers would read its store, which lacks service 1), not
    // within the quorum window and not after it.
    let m1 = restart(dirs[0].path(), 1, &addrs[0]).await;
    assert_eq!(service_names(&m1.store), expected_names(0..1));
    let mut leads = m1.node.is_leader_watch();
    let claimed = tokio::time::timeout(Duration::from_secs(2), leads.wait_for(|l| *l)).await;
    assert!(
        claimed.is_err(),
        "the restored leader claimed leadership: {:?}",
        *m1.node.leadership().borrow()
    );

    // The others come back: one leadership for all three, and every store holds both writes.
    let m2 = restart(dirs[1].path(), 2, &addrs[1]).await;
    let m3 = restart(dirs[2].path(), 3, &addrs[2]).await;
    for m in [&m1, &m2, &m3] {
        eventually("every member holds both writes", || {
            service_names(&m.store) == expected_names(0..2)
        })
        .await;
    }
    let leader = wait_for(&m1.node, "a leader known to member 1", |l| {
        l.leader_id.is_some()
    })
    .await;
    assert!(leader.term > old_term, "{leader:?}");
    for m in [m1, m2, m3] {
        stop(m).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_restarted_with_its_followers_is_confirmed_and_takes_writes() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let m1 = start(dirs[0].path(), 1).await;
    let m2 = start(dirs[1].path(), 2).await;
    let m3 = start(dirs[2].path(), 3).await;
    form_cluster(&m1.node, &[(2, &m2.addr), (3, &m3.addr)]).await;
    m1.node.propose(create_service(0)).await.unwrap();
    let addrs = [m1.addr.clone(), m2.addr.clone(), m3.addr.clone()];
    stop(m2).await;
    stop(m3).await;
    stop(m1).await;

    // Everyone back (followers first, so the restored leadership can be answered at once):
    // someone leads again and writes go through, whoever it is.
    let m2 = restart(dirs[1].path(), 2, &addrs[1]).await;
    let m3 = restart(dirs[2].path(), 3, &addrs[2]).await;
    let m1 = restart(dirs[0].path(), 1, &addrs[0]).await;
    let leader = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            for m in [&m1, &m2, &m3] {
                if m.node.leadership().borrow().is_leader {
                    return m.node.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    leader.propose(create_service(1)).await.unwrap();
    drop(leader);
    for m in [&m1, &m2, &m3] {
        eventually("every member holds both writes", || {
            service_names(&m.store) == expected_names(0..2)
        })
        .await;
    }
    for m in [m1, m2, m3] {
        stop(m).await;
    }
}
