//! The test cluster's link filters partition real nodes: with the leader's Raft links cut, the
//! other two managers elect a leader and commit a write the cut-off one does not see; healed,
//! the old leader follows and catches up. (If the filter cut nothing, no new leader would be
//! elected.) Real nodes in one process (`swarm_testkit::cluster`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use swarm_api::control_server::Control;
use swarm_api::CreateServiceRequest;
use swarm_testkit::cluster::Cluster;
use swarm_testkit::fixtures::service_spec;

const ELECTION: Duration = Duration::from_secs(60);

fn leads(c: &Cluster, i: usize) -> bool {
    c.nodes[i]
        .manager()
        .is_some_and(|m| m.raft.leadership().borrow().is_leader)
}

fn has_service(c: &Cluster, i: usize, name: &str) -> bool {
    c.nodes[i]
        .manager()
        .is_some_and(|m| m.store.view(|t| t.services.by_name(name).is_some()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_leader_is_replaced_and_catches_up_once_healed() {
    let c = Cluster::start(3, 0).await;
    let old = (0..3).find(|i| leads(&c, *i)).expect("a leader");
    c.isolate(old);
    let new = c
        .wait_for("a new leader among the other two", ELECTION, |c| {
            (0..3).find(|j| *j != old && leads(c, *j))
        })
        .await;
    c.nodes[new]
        .manager()
        .unwrap()
        .control
        .create_service(tonic::Request::new(CreateServiceRequest {
            spec: Some(service_spec("after-the-cut")),
        }))
        .await
        .expect("the majority side accepts writes");
    assert!(
        !has_service(&c, old, "after-the-cut"),
        "the cut-off manager saw a write made after the cut"
    );
    c.heal(old);
    c.wait_for("the old leader caught up", ELECTION, |c| {
        has_service(c, old, "after-the-cut").then_some(())
    })
    .await;
    assert!(!leads(&c, old) || !leads(&c, new), "two leaders at once");
    c.stop().await;
}
