//! Tests of what a pass covers after a node changes or a write is refused: the services
//! concerned, not every service. Uses the store with the in-memory proposer (no Raft).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{propose_all, Orchestrator};
use std::collections::HashSet;
use swarm_api::*;
use swarm_store::{Proposer, Store, Txn};
use swarm_testkit::fixtures::{self, NodeFixture, ServiceFixture, TaskFixture};
use swarm_testkit::MemoryProposer;

const NODES: usize = 9;

/// Nodes n1..n9; s1 and s2 of one replica each, running on n1 and n2; g global, running on
/// every node. The orchestrator has passed over it until it had nothing left to do.
async fn settled() -> (Store, std::sync::Arc<MemoryProposer>, Orchestrator) {
    let store = Store::new();
    let proposer = MemoryProposer::new(store.clone());
    let running = |id: &str, service: &str, node: &str, slot: u64| {
        fixtures::task(id, service)
            .on(node)
            .in_slot(slot)
            .in_state_at(TaskState::Running, now_ms())
    };
    let mut txn = Txn::new()
        .create(fixtures::service("s1", "one").with_replicas(1))
        .create(fixtures::service("s2", "two").with_replicas(1))
        .create(fixtures::service("g", "every").global())
        .create(running("s1-1", "s1", "n1", 1))
        .create(running("s2-1", "s2", "n2", 1));
    for i in 1..=NODES {
        txn = txn.create(fixtures::node(&format!("n{i}"))).create(running(
            &format!("g-{i}"),
            "g",
            &format!("n{i}"),
            0,
        ));
    }
    proposer.propose(txn.into_batch()).await.unwrap();
    let mut o = Orchestrator::new(store.clone(), proposer.clone());
    for _ in 0..3 {
        settle().await;
        pass(&mut o).await;
    }
    settle().await;
    assert_eq!(o.scope(now_ms()), super::scope::Scope::default(), "settled");
    (store, proposer, o)
}

/// Lets the orchestrator's stream reader catch up with what was written.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

async fn pass(o: &mut Orchestrator) {
    let plans = o.plan(now_ms());
    let refusals = o.changes.refusals();
    assert!(!propose_all(o.proposer.clone(), plans, &refusals).await);
}

/// Writes a label on `node`: a change the orchestrator reads, so the node is named in the
/// next scope again (a test that has taken the scope to look at it needs it back for a pass).
async fn name_again(store: &Store, proposer: &MemoryProposer, node: &str) {
    let n = store.view(|t| t.nodes.get(node).cloned()).unwrap();
    proposer
        .propose(
            Txn::new()
                .update(n.with_labels(&[("zone", "a")]))
                .into_batch(),
        )
        .await
        .unwrap();
}

fn ids(list: &[&str]) -> HashSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn live_on(store: &Store, node: &str) -> HashSet<String> {
    store.view(|t| {
        t.tasks_of_node(node)
            .filter(|x| x.desired_state <= TaskState::Running as i32)
            .map(|x| x.id.clone())
            .collect()
    })
}

#[tokio::test]
async fn a_drained_node_brings_in_its_services_and_the_global_ones_only() {
    let (store, proposer, mut o) = settled().await;
    let drained = store.view(|t| t.nodes.get("n1").cloned()).unwrap();
    let drained = drained.with_availability(NodeAvailability::Drain);
    proposer
        .propose(Txn::new().update(drained).into_batch())
        .await
        .unwrap();
    settle().await;

    let scope = o.scope(now_ms());
    assert!(
        !scope.all,
        "a node change is no longer a pass over everything"
    );
    assert_eq!(scope.services, ids(&["s1", "g"]));

    // And a pass over that scope does the work: both tasks leave n1, s1's is replaced.
    name_again(&store, &proposer, "n1").await;
    settle().await;
    pass(&mut o).await;
    assert_eq!(live_on(&store, "n1"), HashSet::new());
    assert_eq!(live_on(&store, "n2"), ids(&["s2-1", "g-2"]));
    let s1_live = store.view(|t| t.live_tasks_of_service("s1").count());
    assert_eq!(s1_live, 1, "s1's task was replaced");
}

#[tokio::test]
async fn a_new_node_brings_in_the_global_services_only() {
    let (store, proposer, mut o) = settled().await;
    proposer
        .propose(Txn::new().create(fixtures::node("n10")).into_batch())
        .await
        .unwrap();
    settle().await;
    let scope = o.scope(now_ms());
    assert!(!scope.all);
    assert_eq!(
        scope.services,
        ids(&["g"]),
        "no task is on it yet: only g places per node"
    );
    name_again(&store, &proposer, "n10").await;
    settle().await;
    pass(&mut o).await;
    let on_new = store.view(|t| {
        t.tasks
            .iter()
            .filter(|x| {
                x.service_id == "g"
                    && x.node_id == "n10"
                    && x.desired_state <= TaskState::Running as i32
            })
            .count()
    });
    assert_eq!(on_new, 1, "g got a task for the new node");
}

#[tokio::test]
async fn many_nodes_changing_at_once_is_a_pass_over_everything() {
    let (store, proposer, mut o) = settled().await;
    let mut txn = Txn::new();
    for i in 1..=2 {
        let n = store
            .view(|t| t.nodes.get(&format!("n{i}")).cloned())
            .unwrap();
        txn = txn.update(n.with_state(NodeState::Down));
    }
    proposer.propose(txn.into_batch()).await.unwrap();
    settle().await;
    assert!(o.scope(now_ms()).all, "2 of 9 nodes is more than an eighth");
}

#[tokio::test]
async fn a_refused_write_brings_back_its_service_only() {
    let (store, proposer, mut o) = settled().await;
    // s2's task fails: the next pass restarts it.
    let failed = store.view(|t| t.tasks.get("s2-1").cloned()).unwrap();
    proposer
        .propose(
            Txn::new()
                .update(failed.in_state_at(TaskState::Failed, 1))
                .into_batch(),
        )
        .await
        .unwrap();
    settle().await;
    let plans = o.plan(now_ms());
    assert_eq!(
        plans.iter().map(|p| p.service.clone()).collect::<Vec<_>>(),
        vec![Some("s2".to_string())]
    );
    // Written again before the plan lands: the plan read an older version and is refused.
    let again = store.view(|t| t.tasks.get("s2-1").cloned()).unwrap();
    proposer
        .propose(Txn::new().update(again).into_batch())
        .await
        .unwrap();
    let refusals = o.changes.refusals();
    assert!(propose_all(o.proposer.clone(), plans, &refusals).await);
    settle().await;
    let scope = o.scope(now_ms());
    assert!(!scope.all, "a refusal is no longer a pass over everything");
    assert!(scope.services.contains("s2"));
    assert!(!scope.services.contains("s1"));
}
