//! A manager demoted and promoted 20 times, with 5,000 tasks in the cluster's store, leaves
//! none of its old roles' stores alive: each role's dispatcher, leader components and servers
//! end with the role. Before roles owned their tasks, the dispatcher's fan-out kept every
//! role's whole copy of the cluster state alive for the life of the process. Real nodes in one
//! process (`swarm_testkit::cluster`): real TLS, Raft and role changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use swarm_api::control_server::Control;
use swarm_api::*;
use swarm_store::WeakStore;
use swarm_testkit::cluster::Cluster;
use swarm_testkit::fixtures::{service_spec, ServiceFixture};

const CYCLES: usize = 20;
const TASKS: u64 = 5_000;
const ROLE_CHANGE: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demoted_and_promoted_managers_leave_no_store_behind() {
    let c = Cluster::start(3, 0).await;
    // 5,000 tasks that fit on no node: they stay in the store, PENDING, with no agent load.
    let mut spec = service_spec("pending").with_replicas(TASKS);
    if let Some(t) = spec.task.as_mut() {
        t.placement = Some(Placement {
            constraints: vec!["node.labels.nowhere==true".into()],
            ..Default::default()
        });
    }
    c.leader()
        .control
        .create_service(tonic::Request::new(CreateServiceRequest {
            spec: Some(spec),
        }))
        .await
        .unwrap();
    c.wait_for("5,000 tasks in the store", ROLE_CHANGE, |c| {
        let n = c.leader().store.view(|t| t.tasks.len()) as u64;
        (n >= TASKS).then_some(())
    })
    .await;

    // Cycle a manager that does not lead, so the cluster keeps its leader throughout.
    let leader_addr = c.leader().addr;
    let i = (0..3)
        .find(|i| c.nodes[*i].manager().is_some_and(|m| m.addr != leader_addr))
        .unwrap();
    let mut old: Vec<WeakStore> = Vec::new();
    for cycle in 0..CYCLES {
        old.push(c.nodes[i].manager().unwrap().store.downgrade());
        c.set_role(i, NodeRole::Worker).await;
        c.wait_for(&format!("cycle {cycle}: demoted"), ROLE_CHANGE, |c| {
            let info = c.nodes[i].info();
            (info.role == NodeRole::Worker && info.manager.is_none()).then_some(())
        })
        .await;
        c.set_role(i, NodeRole::Manager).await;
        c.wait_for(
            &format!("cycle {cycle}: promoted and caught up"),
            ROLE_CHANGE,
            |c| {
                let m = c.nodes[i].manager()?;
                let voter = m.raft.voters().contains(&m.raft.raft_id());
                let tasks = m.store.view(|t| t.tasks.len()) as u64;

                (voter && tasks >= TASKS).then_some(())
            },
        )
        .await;
    }
    // Anything still finishing its shutdown gets a moment; a leak holds on for good.
    let mut alive = CYCLES;
    for _ in 0..100 {
        alive = old.iter().filter(|w| w.upgrade().is_some()).count();
        if alive == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        alive, 0,
        "{alive} of {CYCLES} stopped manager roles' stores are alive"
    );
    c.stop().await;
}
