//! Control API: the cluster object (settings, root CA certificate, join tokens).

use super::{first, ControlApi};
use crate::errors::status;
use swarm_api::*;
use swarm_store::Txn;
use tonic::Status;

/// The cluster as operators see it: the CA's private key never leaves the store.
fn redact(mut c: Cluster) -> Cluster {
    if let Some(ca) = c.root_ca.as_mut() {
        ca.ca_key.clear();
    }
    c
}

fn find(api: &ControlApi, key: &str) -> Option<Cluster> {
    api.store.view(|t| {
        t.clusters
            .get(key)
            .or_else(|| t.clusters.by_name(key))
            .cloned()
    })
}

pub(super) fn get(api: &ControlApi, r: GetClusterRequest) -> Result<GetClusterResponse, Status> {
    find(api, &r.cluster_id)
        .map(|c| GetClusterResponse {
            cluster: Some(redact(c)),
        })
        .ok_or_else(|| Status::not_found(format!("cluster {} not found", r.cluster_id)))
}

pub(super) fn list(api: &ControlApi) -> ListClustersResponse {
    ListClustersResponse {
        clusters: api
            .store
            .view(|t| t.clusters.iter().cloned().map(redact).collect()),
    }
}

pub(super) async fn update(
    api: &ControlApi,
    r: UpdateClusterRequest,
) -> Result<UpdateClusterResponse, Status> {
    let spec = r
        .spec
        .ok_or_else(|| Status::invalid_argument("spec: missing"))?;
    let mut cluster = find(api, &r.cluster_id)
        .ok_or_else(|| Status::not_found(format!("cluster {} not found", r.cluster_id)))?;
    if let Some(o) = &spec.orchestration {
        if o.task_history_retention_limit < 0 {
            return Err(Status::invalid_argument(
                "task-history-limit: must not be negative",
            ));
        }
    }
    if let Some(d) = &spec.dispatcher {
        if d.heartbeat_period_ms < 0 {
            return Err(Status::invalid_argument(
                "heartbeat-period: must not be negative",
            ));
        }
    }
    let name = cluster.spec.as_ref().and_then(|s| s.annotations.clone());
    cluster.spec = Some(ClusterSpec {
        annotations: name,
        ..spec
    });
    cluster.meta.get_or_insert_with(Default::default).version = r.cluster_version;
    let written = api
        .proposer
        .propose(Txn::new().update(cluster).into_batch())
        .await
        .map_err(status)?;
    let cluster = first(written, |o| match o {
        store_object::Object::Cluster(c) => Some(redact(c)),
        _ => None,
    });
    Ok(UpdateClusterResponse { cluster })
}
