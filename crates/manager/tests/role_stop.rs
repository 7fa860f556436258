//! A manager role's components let go of its store when the role's task owner stops. swarmd
//! builds a fresh store and dispatcher for every manager role, so anything that outlives its
//! role keeps a whole copy of the cluster state alive for each promotion and demotion (the
//! dispatcher's fan-out task did, until it became a task of the role). In-memory proposer:
//! this test is about ownership, not replication.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;
use swarm_manager::ca_server::CaService;
use swarm_manager::control::ControlApi;
use swarm_manager::dispatcher::Dispatcher;
use swarm_manager::logbroker::LogBroker;
use swarm_manager::{run_leader_components, AlwaysLeader, LeaderConfig, Proposer};
use swarm_store::{Store, Txn, WeakStore};
use swarm_tasks::TaskOwner;
use swarm_testkit::fixtures::{self, TaskFixture};
use swarm_testkit::MemoryProposer;
use tokio::sync::watch;

const TASKS: usize = 5_000;

/// One role's worth of manager components on a store of `TASKS` tasks, all owned by `owner`.
async fn start_role(owner: &TaskOwner) -> WeakStore {
    let store = Store::new();
    let proposer: Arc<dyn Proposer> = MemoryProposer::new(store.clone());
    let mut txn = Txn::new();
    for i in 0..TASKS {
        txn = txn.create(fixtures::task(&format!("t{i}"), "s").in_slot(i as u64 + 1));
    }
    proposer.propose(txn.into_batch()).await.unwrap();
    let route: Arc<dyn swarm_manager::LeaderRoute> = Arc::new(AlwaysLeader);
    let dispatcher = Dispatcher::new(
        store.clone(),
        proposer.clone(),
        "c".into(),
        "127.0.0.1:1".into(),
        route.clone(),
        owner,
    );
    let _control = ControlApi::new(store.clone(), proposer.clone(), route.clone());
    let _ca = CaService::new(store.clone(), proposer.clone(), route.clone());
    let _logs = LogBroker::new(store.clone(), dispatcher.clone(), route);
    let (leader_tx, leader) = watch::channel(true);
    let cfg = LeaderConfig {
        store: store.clone(),
        proposer,
        dispatcher,
        node_id: "m".into(),
        metrics: Default::default(),
        members: None,
        dialer: None,
    };
    let token = owner.token().clone();
    owner.spawn(async move {
        let _keep = leader_tx;
        run_leader_components(cfg, leader, token).await
    });
    // Let the components start and read the store before the role stops.
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.downgrade()
}

#[tokio::test]
async fn stopped_roles_leave_no_store_behind() {
    let mut stores = Vec::new();
    for cycle in 0..20 {
        let owner = TaskOwner::new();
        stores.push(start_role(&owner).await);
        assert!(
            owner.running() > 0,
            "cycle {cycle}: the role started no task"
        );
        tokio::time::timeout(Duration::from_secs(10), owner.stop())
            .await
            .unwrap_or_else(|_| panic!("cycle {cycle}: the role's tasks did not stop"));
        assert_eq!(owner.running(), 0);
    }
    let alive = stores.iter().filter(|w| w.upgrade().is_some()).count();
    assert_eq!(
        alive, 0,
        "{alive} of 20 stopped roles' stores are still alive"
    );
}
