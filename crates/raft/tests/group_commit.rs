//! Group commit seen from the proposers: concurrent transactions share log entries, yet each
//! gets its own answer — racing updates of one object let exactly one through, a name already
//! taken is refused alone — every member ends with exactly the acknowledged writes, and the
//! grouped entries replay the same after a restart.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;

use common::*;
use swarm_api::StoreBatch;
use swarm_raft::{RaftNode, WriteError};
use swarm_store::{ApplyError, Store, Txn};

const SERVICES: usize = 10;
const RACERS: usize = 8;
const CREATES: usize = 100;

/// An update of service `i` that says which racer wrote it, from the version read before.
fn racing_update(store: &Store, i: usize, racer: usize) -> StoreBatch {
    let mut svc = store
        .view(|t| t.services.get(&service_id(i)).cloned())
        .unwrap();
    let labels = &mut svc
        .spec
        .as_mut()
        .unwrap()
        .annotations
        .as_mut()
        .unwrap()
        .labels;
    labels.insert("writer".into(), racer.to_string());
    Txn::new().update(svc).into_batch()
}

enum Sent {
    Update { service: usize, racer: usize },
    Create { service: usize },
    Duplicate,
}

/// Fires every proposal at once and returns each with its answer.
async fn race(
    leader: &RaftNode,
    proposals: Vec<(Sent, StoreBatch)>,
) -> Vec<(Sent, Result<(), WriteError>)> {
    let mut set = tokio::task::JoinSet::new();
    for (sent, batch) in proposals {
        let node = leader.clone();
        set.spawn(async move { (sent, node.propose(batch).await.map(|_| ())) });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

/// Checks the answers against each other and returns what the store must hold: the winning
/// racer per service.
fn check_answers(answers: &[(Sent, Result<(), WriteError>)]) -> BTreeMap<usize, usize> {
    let mut winners = BTreeMap::new();
    for (sent, res) in answers {
        match (sent, res) {
            (Sent::Update { service, racer }, Ok(())) => {
                assert!(
                    winners.insert(*service, *racer).is_none(),
                    "two racing updates of service {service} from the same version both landed"
                );
            }
            (Sent::Update { .. }, Err(WriteError::Refused(ApplyError::Conflict { .. }))) => {}
            (Sent::Create { service }, r) => assert!(r.is_ok(), "create {service}: {r:?}"),
            (Sent::Duplicate, Err(WriteError::Refused(ApplyError::AlreadyExists { .. }))) => {}
            (_, r) => panic!("unexpected answer {r:?}"),
        }
    }
    assert_eq!(winners.len(), SERVICES, "one racer wins per service");
    winners
}

fn check_store(store: &Store, winners: &BTreeMap<usize, usize>) {
    assert_eq!(
        service_names(store),
        expected_names(0..SERVICES + CREATES),
        "exactly the acknowledged creates"
    );
    for (service, racer) in winners {
        let writer = store.view(|t| {
            t.services
                .get(&service_id(*service))
                .and_then(|s| s.spec.clone())
                .and_then(|s| s.annotations)
                .and_then(|a| a.labels.get("writer").cloned())
        });
        assert_eq!(writer, Some(racer.to_string()), "service {service}");
    }
}

fn proposals(store: &Store) -> Vec<(Sent, StoreBatch)> {
    let mut out = Vec::new();
    for service in 0..SERVICES {
        for racer in 0..RACERS {
            out.push((
                Sent::Update { service, racer },
                racing_update(store, service, racer),
            ));
        }
        out.push((Sent::Duplicate, create_service(service)));
    }
    for service in SERVICES..SERVICES + CREATES {
        out.push((Sent::Create { service }, create_service(service)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_entries_and_each_gets_its_own_answer() {
    let mut members = Vec::new();
    for id in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let (listener, addr) = listener().await;
        let mut cfg = config(dir.path(), id, &addr.to_string());
        cfg.tick_ms = 100;
        let store = Store::new();
        let node = RaftNode::open(cfg, store.clone(), connector())
            .await
            .unwrap();
        let server = serve(&node, listener);
        members.push((node, store, addr.to_string(), server, dir));
    }
    let leader = members[0].0.clone();
    form_cluster(
        &leader,
        &[(2, members[1].2.as_str()), (3, members[2].2.as_str())],
    )
    .await;
    for i in 0..SERVICES {
        leader.propose(create_service(i)).await.unwrap();
    }

    let before = leader.status().last_log_index.unwrap();
    let sent = proposals(&members[0].1);
    let n = sent.len();
    let answers = race(&leader, sent).await;
    let entries = leader.status().last_log_index.unwrap() - before;
    assert!(
        entries * 4 <= n as u64,
        "{n} concurrent proposals took {entries} log entries: they were not grouped"
    );
    let winners = check_answers(&answers);

    let want = leader.status().last_applied;
    for (node, store, ..) in &members {
        eventually("every member applied the groups", || {
            node.status().last_applied >= want
        })
        .await;
        check_store(store, &winners);
    }
    for (node, _, _, server, _) in &members {
        node.shutdown().await.unwrap();
        server.abort();
    }
}

/// Groups in the log replay after a full restart as they were applied the first time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_entries_replay_the_same_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let open = || async {
        let store = Store::new();
        let node = RaftNode::open(
            config(dir.path(), 1, "127.0.0.1:1"),
            store.clone(),
            connector(),
        )
        .await
        .unwrap();
        (node, store)
    };
    let (node, store) = open().await;
    node.bootstrap().await.unwrap();
    wait_leader(&node).await;
    for i in 0..SERVICES {
        node.propose(create_service(i)).await.unwrap();
    }
    let first = node.status().last_log_index.unwrap();
    let sent = proposals(&store);
    let n = sent.len() as u64;
    let answers = race(&node, sent).await;
    let entries = node.status().last_log_index.unwrap() - first;
    assert!(
        entries * 4 <= n,
        "{n} proposals, {entries} entries: no groups to replay"
    );
    let winners = check_answers(&answers);
    check_store(&store, &winners);
    let before = store.snapshot();
    node.shutdown().await.unwrap();

    let (node, store) = open().await;
    assert_eq!(store.snapshot(), before, "replayed state differs");
    check_store(&store, &winners);
    node.shutdown().await.unwrap();
}
