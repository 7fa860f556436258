//! The Control API served to operators (`swarmctl`) on the control socket: reads from the local
//! store, writes proposed as transactions. Validation happens here, before anything is
//! proposed, so bad input changes nothing.

mod cluster;
mod nodes;
mod services;
mod tasks;

use crate::proposer::Proposer;
use std::sync::Arc;
use swarm_api::control_server::Control;
use swarm_api::*;
use swarm_store::Store;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct ControlApi {
    pub(crate) store: Store,
    pub(crate) proposer: Arc<dyn Proposer>,
}

impl ControlApi {
    pub fn new(store: Store, proposer: Arc<dyn Proposer>) -> ControlApi {
        ControlApi { store, proposer }
    }

    pub fn into_service(self) -> control_server::ControlServer<ControlApi> {
        control_server::ControlServer::new(self)
    }
}

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Control for ControlApi {
    async fn get_node(&self, r: Request<GetNodeRequest>) -> R<GetNodeResponse> {
        nodes::get(self, r.into_inner()).map(Response::new)
    }
    async fn list_nodes(&self, _r: Request<ListNodesRequest>) -> R<ListNodesResponse> {
        Ok(Response::new(nodes::list(self)))
    }
    async fn update_node(&self, r: Request<UpdateNodeRequest>) -> R<UpdateNodeResponse> {
        nodes::update(self, r.into_inner()).await.map(Response::new)
    }
    async fn remove_node(&self, r: Request<RemoveNodeRequest>) -> R<RemoveNodeResponse> {
        nodes::remove(self, r.into_inner()).await.map(Response::new)
    }
    async fn get_service(&self, r: Request<GetServiceRequest>) -> R<GetServiceResponse> {
        services::get(self, r.into_inner()).map(Response::new)
    }
    async fn list_services(&self, _r: Request<ListServicesRequest>) -> R<ListServicesResponse> {
        Ok(Response::new(services::list(self)))
    }
    async fn create_service(&self, r: Request<CreateServiceRequest>) -> R<CreateServiceResponse> {
        services::create(self, r.into_inner())
            .await
            .map(Response::new)
    }
    async fn update_service(&self, r: Request<UpdateServiceRequest>) -> R<UpdateServiceResponse> {
        services::update(self, r.into_inner())
            .await
            .map(Response::new)
    }
    async fn remove_service(&self, r: Request<RemoveServiceRequest>) -> R<RemoveServiceResponse> {
        services::remove(self, r.into_inner())
            .await
            .map(Response::new)
    }
    async fn get_task(&self, r: Request<GetTaskRequest>) -> R<GetTaskResponse> {
        tasks::get(self, r.into_inner()).map(Response::new)
    }
    async fn list_tasks(&self, r: Request<ListTasksRequest>) -> R<ListTasksResponse> {
        Ok(Response::new(tasks::list(self, r.into_inner())))
    }
    async fn get_cluster(&self, r: Request<GetClusterRequest>) -> R<GetClusterResponse> {
        cluster::get(self, r.into_inner()).map(Response::new)
    }
    async fn list_clusters(&self, _r: Request<ListClustersRequest>) -> R<ListClustersResponse> {
        Ok(Response::new(cluster::list(self)))
    }
    async fn update_cluster(&self, r: Request<UpdateClusterRequest>) -> R<UpdateClusterResponse> {
        cluster::update(self, r.into_inner())
            .await
            .map(Response::new)
    }
}

/// The first object of the given kind a transaction wrote back.
pub(crate) fn first<T>(
    objs: Vec<StoreObject>,
    pick: impl Fn(store_object::Object) -> Option<T>,
) -> Option<T> {
    objs.into_iter().filter_map(|o| o.object).find_map(pick)
}
