//! Tests of whole passes over states a new leader inherits: what its predecessor left half
//! done. Uses the store with the in-memory proposer (no Raft).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::Orchestrator;
use std::collections::BTreeMap;
use swarm_api::*;
use swarm_store::{Proposer, Store, Txn};
use swarm_testkit::fixtures::{self, ServiceFixture, TaskFixture};
use swarm_testkit::MemoryProposer;

/// A store holding node n1, `service` and `tasks`, and an orchestrator on it.
async fn inherit(service: Service, tasks: Vec<Task>) -> (Store, Orchestrator) {
    let store = Store::new();
    let proposer = MemoryProposer::new(store.clone());
    let mut txn = Txn::new().create(fixtures::node("n1")).create(service);
    for t in tasks {
        txn = txn.create(t);
    }
    proposer.propose(txn.into_batch()).await.unwrap();
    let orchestrator = Orchestrator::new(store.clone(), proposer);
    (store, orchestrator)
}

/// Runs one pass and commits what it decided.
async fn pass(o: &mut Orchestrator) {
    for plan in o.plan(now_ms()) {
        for batch in plan.txn.into_batches(100) {
            o.proposer.propose(batch).await.unwrap();
        }
    }
}

/// Per slot, the IDs of the live tasks.
fn live_by_slot(store: &Store, service: &str) -> BTreeMap<u64, Vec<String>> {
    store.view(|t| {
        let mut m: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for x in t.live_tasks_of_service(service) {
            m.entry(x.slot).or_default().push(x.id.clone());
        }
        m.values_mut().for_each(|v| v.sort());
        m
    })
}

fn running(id: &str, slot: u64, version: u64) -> Task {
    let mut t = fixtures::task(id, "s1")
        .on("n1")
        .in_slot(slot)
        .in_state_at(TaskState::Running, now_ms());
    t.spec_version = version;
    t
}

#[tokio::test]
async fn slots_filled_twice_across_a_leader_change_keep_one_task_each() {
    let mut service = fixtures::service("s1", "web").with_replicas(2);
    service.spec_version = 1;
    let tasks = vec![
        running("a1", 1, 1),
        fixtures::task("a2", "s1").in_slot(1),
        running("b2", 2, 1),
        running("b1", 2, 1),
    ];
    let (store, mut o) = inherit(service, tasks).await;
    pass(&mut o).await;
    let live = live_by_slot(&store, "s1");
    // Slot 1 keeps the running task over the new one; slot 2 the lowest ID of two equals.
    assert_eq!(
        live,
        BTreeMap::from([(1, vec!["a1".to_string()]), (2, vec!["b1".to_string()])])
    );
    // Nothing new was made for them.
    assert_eq!(store.view(|t| t.tasks_of_service("s1").count()), 4);
}

#[tokio::test]
async fn a_start_first_update_a_former_leader_began_reuses_its_new_task() {
    let mut service = fixtures::service("s1", "web").with_replicas(2);
    service.spec_version = 2;
    if let Some(spec) = service.spec.as_mut() {
        spec.update = Some(UpdateConfig {
            parallelism: 1,
            order: UpdateOrder::StartFirst as i32,
            ..swarm_api::defaults::update_config()
        });
    }
    // The former leader started slot 1's new task (version 2) beside the old one, then died.
    let tasks = vec![
        running("old1", 1, 1),
        running("new1", 1, 2),
        running("old2", 2, 1),
    ];
    let (store, mut o) = inherit(service, tasks).await;
    pass(&mut o).await;
    // Slot 1's running new task is taken as the replacement: nothing new is made for it.
    assert_eq!(store.view(|t| t.tasks_of_service("s1").count()), 3);
    pass(&mut o).await;
    let live = live_by_slot(&store, "s1");
    assert_eq!(
        live[&1],
        vec!["new1".to_string()],
        "old1 stopped, new1 kept"
    );
    // Slot 2 moves on to its own new task, started first.
    assert_eq!(live[&2].len(), 2, "{live:?}");
    assert!(live[&2].contains(&"old2".to_string()));
}
