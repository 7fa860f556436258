//! The control API's handlers (`swarm_manager::control::ControlApi`), as `swarmctl` and the
//! Docker API call them: the first byte picks a method, the rest is its protobuf request,
//! decoded as tonic would and handled by the real handler. Each input gets a fresh store with a
//! cluster, a node, a service, a task, a network and a secret; writes go through the in-memory
//! proposer (a stand-in for Raft, which the `raft_rpc` target covers).

use crate::input::choose;
use crate::runtime::block_on;
use prost::Message;
use std::sync::{Arc, OnceLock};
use swarm_api::control_server::Control;
use swarm_api::*;
use swarm_manager::control::ControlApi;
use swarm_manager::AlwaysLeader;
use swarm_store::{Proposer, Store, Txn};
use swarm_testkit::{fixtures, MemoryProposer};
use tonic::Request;

/// The cluster's root CA (a key generation: made once).
pub(crate) fn root() -> Option<&'static swarm_ca::RootCa> {
    static ROOT: OnceLock<Option<swarm_ca::RootCa>> = OnceLock::new();
    ROOT.get_or_init(|| swarm_ca::RootCa::generate().ok())
        .as_ref()
}

/// The cluster object, with [`root`] as its CA.
pub(crate) fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            swarm_manager::objects::new_cluster(root()?, "fuzz-cluster", Default::default()).ok()
        })
        .as_ref()
}

/// A control API over a store holding one of each object the methods name.
pub async fn api() -> Option<ControlApi> {
    let store = Store::new();
    let proposer = MemoryProposer::new(store.clone());
    let mut txn = Txn::new()
        .create(fixtures::node("node1"))
        .create(fixtures::service("svc1", "web"))
        .create(fixtures::task("task1", "svc1"))
        .create(fixtures::network("net1", "backend", "10.0.9.0/24"))
        .create(fixtures::secret("sec1", "pw", b"hunter2"));
    if let Some(c) = cluster() {
        txn = txn.create(c.clone());
    }
    proposer.propose(txn.into_batch()).await.ok()?;
    Some(ControlApi::new(store, proposer, Arc::new(AlwaysLeader)))
}

fn decoded<T: Message + Default>(b: &[u8]) -> Option<Request<T>> {
    T::decode(b).ok().map(Request::new)
}

/// Calls the method `which` picks with the request decoded from `body`; the outcome is
/// whatever the handler answers.
async fn call(api: &ControlApi, which: u8, body: &[u8]) {
    macro_rules! methods {
        ($($n:literal => $method:ident($req:ty)),* $(,)?) => {
            match which {
                $($n => {
                    if let Some(r) = decoded::<$req>(body) {
                        let _ = api.$method(r).await;
                    }
                })*
                _ => {}
            }
        };
    }
    methods! {
        0 => get_node(GetNodeRequest),
        1 => list_nodes(ListNodesRequest),
        2 => update_node(UpdateNodeRequest),
        3 => remove_node(RemoveNodeRequest),
        4 => get_service(GetServiceRequest),
        5 => list_services(ListServicesRequest),
        6 => create_service(CreateServiceRequest),
        7 => update_service(UpdateServiceRequest),
        8 => remove_service(RemoveServiceRequest),
        9 => get_task(GetTaskRequest),
        10 => list_tasks(ListTasksRequest),
        11 => get_cluster(GetClusterRequest),
        12 => update_cluster(UpdateClusterRequest),
        13 => create_secret(CreateSecretRequest),
        14 => update_secret(UpdateSecretRequest),
        15 => remove_secret(RemoveSecretRequest),
        16 => create_config(CreateConfigRequest),
        17 => create_network(CreateNetworkRequest),
        18 => remove_network(RemoveNetworkRequest),
        19 => list_networks(ListNetworksRequest),
    }
}

/// Number of methods [`call`] picks from.
const METHODS: u8 = 20;

/// One control call.
pub fn request(data: &[u8]) {
    let (which, body) = choose(data, METHODS);
    block_on(async {
        if let Some(api) = api().await {
            call(&api, which, body).await;
        }
    });
}
