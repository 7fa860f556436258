//! The Control API served to operators (`swarmctl`, the Docker API) on the control socket:
//! reads from the local store, writes proposed as transactions, and `Watch`, the store's
//! changes as a stream (`watch.rs`). Validation happens here, before anything is proposed, so
//! bad input changes nothing.

mod cluster;
mod configs;
mod networks;
mod nodes;
mod payloads;
mod secrets;
mod services;
mod tasks;
mod watch;

pub use watch::WatchStream;

use crate::proposer::Proposer;
use crate::route::{forward_to, forwarded, on_leader, LeaderRoute};
use std::sync::Arc;
use swarm_api::control_client::ControlClient;
use swarm_api::control_server::Control;
use swarm_api::*;
use swarm_store::Store;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct ControlApi {
    pub(crate) store: Store,
    pub(crate) proposer: Arc<dyn Proposer>,
    route: Arc<dyn LeaderRoute>,
}

impl ControlApi {
    pub fn new(
        store: Store,
        proposer: Arc<dyn Proposer>,
        route: Arc<dyn LeaderRoute>,
    ) -> ControlApi {
        ControlApi {
            store,
            proposer,
            route,
        }
    }

    pub fn into_service(self) -> control_server::ControlServer<ControlApi> {
        control_server::ControlServer::new(self)
    }
}

type R<T> = Result<Response<T>, Status>;

/// Each call: forwarded to the leader when this manager follows (the leader's store is the
/// one every write and read must agree with), else served here.
macro_rules! routed {
    ($( $method:ident($req:ty) -> $resp:ty => |$api:ident, $r:ident| $body:expr; )*) => {
        #[tonic::async_trait]
        impl Control for ControlApi {
            type WatchStream = WatchStream;

            /// Forwarded like the rest; the leader's stream is passed through.
            async fn watch(&self, req: Request<WatchRequest>) -> R<WatchStream> {
                if let Some(leader) = forward_to(self.route.as_ref(), &req)? {
                    let mut client = ControlClient::new(leader);
                    let call = client.watch(forwarded(req));
                    let stream = on_leader(self.route.as_ref(), call).await?.into_inner();
                    return Ok(Response::new(Box::pin(stream)));
                }
                watch::watch(&self.store, req.into_inner()).map(Response::new)
            }

            $(
                async fn $method(&self, req: Request<$req>) -> R<$resp> {
                    if let Some(leader) = forward_to(self.route.as_ref(), &req)? {
                        let mut client = ControlClient::new(leader);
                        let call = client.$method(forwarded(req));
                        return on_leader(self.route.as_ref(), call).await;
                    }
                    let $api = self;
                    let $r = req.into_inner();
                    $body.map(Response::new)
                }
            )*
        }
    };
}

routed! {
    get_node(GetNodeRequest) -> GetNodeResponse => |api, r| nodes::get(api, r);
    list_nodes(ListNodesRequest) -> ListNodesResponse => |api, _r| Ok::<_, Status>(nodes::list(api));
    update_node(UpdateNodeRequest) -> UpdateNodeResponse => |api, r| nodes::update(api, r).await;
    remove_node(RemoveNodeRequest) -> RemoveNodeResponse => |api, r| nodes::remove(api, r).await;
    get_service(GetServiceRequest) -> GetServiceResponse => |api, r| services::get(api, r);
    list_services(ListServicesRequest) -> ListServicesResponse => |api, _r| Ok::<_, Status>(services::list(api));
    create_service(CreateServiceRequest) -> CreateServiceResponse => |api, r| services::create(api, r).await;
    update_service(UpdateServiceRequest) -> UpdateServiceResponse => |api, r| services::update(api, r).await;
    remove_service(RemoveServiceRequest) -> RemoveServiceResponse => |api, r| services::remove(api, r).await;
    get_task(GetTaskRequest) -> GetTaskResponse => |api, r| tasks::get(api, r);
    list_tasks(ListTasksRequest) -> ListTasksResponse => |api, r| Ok::<_, Status>(tasks::list(api, r));
    get_cluster(GetClusterRequest) -> GetClusterResponse => |api, r| cluster::get(api, r);
    list_clusters(ListClustersRequest) -> ListClustersResponse => |api, _r| Ok::<_, Status>(cluster::list(api));
    update_cluster(UpdateClusterRequest) -> UpdateClusterResponse => |api, r| cluster::update(api, r).await;
    get_unlock_key(GetUnlockKeyRequest) -> GetUnlockKeyResponse => |api, _r| cluster::unlock_key(api);
    get_secret(GetSecretRequest) -> GetSecretResponse => |api, r| secrets::get_secret(api, r);
    list_secrets(ListSecretsRequest) -> ListSecretsResponse => |api, _r| Ok::<_, Status>(secrets::list_secrets(api));
    create_secret(CreateSecretRequest) -> CreateSecretResponse => |api, r| secrets::create_secret(api, r).await;
    update_secret(UpdateSecretRequest) -> UpdateSecretResponse => |api, r| secrets::update_secret(api, r).await;
    remove_secret(RemoveSecretRequest) -> RemoveSecretResponse => |api, r| secrets::remove_secret(api, r).await;
    get_config(GetConfigRequest) -> GetConfigResponse => |api, r| configs::get_config(api, r);
    list_configs(ListConfigsRequest) -> ListConfigsResponse => |api, _r| Ok::<_, Status>(configs::list_configs(api));
    create_config(CreateConfigRequest) -> CreateConfigResponse => |api, r| configs::create_config(api, r).await;
    update_config(UpdateConfigRequest) -> UpdateConfigResponse => |api, r| configs::update_config(api, r).await;
    remove_config(RemoveConfigRequest) -> RemoveConfigResponse => |api, r| configs::remove_config(api, r).await;
    get_network(GetNetworkRequest) -> GetNetworkResponse => |api, r| networks::get(api, r);
    list_networks(ListNetworksRequest) -> ListNetworksResponse => |api, _r| Ok::<_, Status>(networks::list(api));
    create_network(CreateNetworkRequest) -> CreateNetworkResponse => |api, r| networks::create(api, r).await;
    remove_network(RemoveNetworkRequest) -> RemoveNetworkResponse => |api, r| networks::remove(api, r).await;
}

/// The first object of the given kind a transaction wrote back.
pub(crate) fn first<T>(
    objs: Vec<StoreObject>,
    pick: impl Fn(store_object::Object) -> Option<T>,
) -> Option<T> {
    objs.into_iter().filter_map(|o| o.object).find_map(pick)
}
