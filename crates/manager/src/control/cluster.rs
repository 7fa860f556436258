//! Control API: the cluster object (settings, root CA certificate, join tokens).

use super::{first, ControlApi};
use crate::errors::status;
use swarm_api::*;
use swarm_store::Txn;
use tonic::Status;

/// The cluster as operators see it: the CA's private keys and the unlock key never leave the
/// store (the unlock key has its own call); a rotation shows its progress.
fn redact(api: &ControlApi, c: Cluster) -> Cluster {
    let mut c = redact_keys(c);
    if let Some(rot) = c.root_ca.as_mut().and_then(|ca| ca.root_rotation.as_mut()) {
        let (done, total) = api
            .store
            .view(crate::ca_rotation::progress)
            .unwrap_or_default();
        rot.nodes_done = done as u32;
        rot.nodes_total = total as u32;
    }
    c
}

/// The cluster without its CA keys and unlock key.
pub(super) fn redact_keys(mut c: Cluster) -> Cluster {
    if let Some(ca) = c.root_ca.as_mut() {
        ca.ca_key.clear();
        if let Some(rot) = ca.root_rotation.as_mut() {
            rot.ca_key.clear();
        }
    }
    c.manager_unlock_key.clear();
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
            cluster: Some(redact(api, c)),
        })
        .ok_or_else(|| Status::not_found(format!("cluster {} not found", r.cluster_id)))
}

pub(super) fn list(api: &ControlApi) -> ListClustersResponse {
    ListClustersResponse {
        clusters: api
            .store
            .view(|t| t.clusters.iter().cloned().collect::<Vec<_>>())
            .into_iter()
            .map(|c| redact(api, c))
            .collect(),
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
    if let Some(ca) = &spec.ca_config {
        // 0 means "the default" (see the CA service); anything else must be a usable life.
        let ms = ca.node_cert_expiry_ms;
        if ms < 0 || (ms > 0 && ms < defaults::MIN_NODE_CERT_EXPIRY_MS) {
            return Err(Status::invalid_argument("cert-expiry: must be at least 1h"));
        }
    }
    if let Some(rot) = &r.rotation {
        rotate(&mut cluster, rot)?;
    }
    set_autolock(&mut cluster, &spec, r.rotation.as_ref())?;
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
        store_object::Object::Cluster(c) => Some(redact(api, *c)),
        _ => None,
    });
    Ok(UpdateClusterResponse { cluster })
}

/// The autolock unlock key: made when autolock is turned on, replaced on request, dropped
/// when it is turned off. Every manager follows the cluster object and seals (or unseals) its
/// own keys with it.
fn set_autolock(
    cluster: &mut Cluster,
    spec: &ClusterSpec,
    rot: Option<&ClusterRotation>,
) -> Result<(), Status> {
    let on = spec
        .encryption
        .as_ref()
        .is_some_and(|e| e.auto_lock_managers);
    let rotate = rot.is_some_and(|r| r.manager_unlock_key);
    if rotate && !on {
        return Err(Status::failed_precondition(
            "rotate unlock key: autolock is off, there is no unlock key",
        ));
    }
    if !on {
        cluster.manager_unlock_key.clear();
    } else if rotate || cluster.manager_unlock_key.is_empty() {
        cluster.manager_unlock_key = swarm_ca::UnlockKey::generate().to_text().to_string();
    }
    Ok(())
}

pub(super) fn unlock_key(api: &ControlApi) -> Result<GetUnlockKeyResponse, Status> {
    let cluster = find(api, DEFAULT_CLUSTER_NAME)
        .ok_or_else(|| Status::not_found("cluster default not found"))?;
    Ok(GetUnlockKeyResponse {
        unlock_key: cluster.manager_unlock_key,
    })
}

/// Replaces the join tokens `rot` names with fresh ones of the same root CA. Written with the
/// rest of the update, so the CA service (which compares against the stored tokens) refuses
/// the old ones from the moment the write commits; certificates already issued are untouched.
fn rotate(cluster: &mut Cluster, rot: &ClusterRotation) -> Result<(), Status> {
    if rot.root_ca {
        start_root_rotation(cluster)?;
    }
    if !rot.worker_join_token && !rot.manager_join_token {
        return Ok(());
    }
    let root = cluster
        .root_ca
        .as_mut()
        .ok_or_else(|| Status::failed_precondition("the cluster has no root CA"))?;
    // The certificate alone is enough: a token carries the root's digest, not its key.
    let ca = swarm_ca::RootCa::from_pem(&String::from_utf8_lossy(&root.ca_cert), None)
        .map_err(|e| Status::internal(format!("root CA: {e}")))?;
    let tokens = root.join_tokens.get_or_insert_with(Default::default);
    if rot.worker_join_token {
        tokens.worker = swarm_ca::generate_join_token(&ca);
    }
    if rot.manager_join_token {
        tokens.manager = swarm_ca::generate_join_token(&ca);
    }
    Ok(())
}

/// Starts a root CA rotation: a new root, and its certificate cross-signed by the current
/// root. From the moment this commits, the CA signs with the new root; the rotation
/// reconciler then brings every node over and finishes (ca_rotation.rs).
fn start_root_rotation(cluster: &mut Cluster) -> Result<(), Status> {
    let root = cluster
        .root_ca
        .as_mut()
        .ok_or_else(|| Status::failed_precondition("the cluster has no root CA"))?;
    if root.root_rotation.is_some() {
        return Err(Status::failed_precondition(
            "rotate-root-ca: a root CA rotation is already in progress",
        ));
    }
    let current = swarm_ca::RootCa::from_pem(
        &String::from_utf8_lossy(&root.ca_cert),
        Some(&String::from_utf8_lossy(&root.ca_key)),
    )
    .map_err(|e| Status::internal(format!("root CA: {e}")))?;
    let next = swarm_ca::RootCa::generate().map_err(|e| Status::internal(e.to_string()))?;
    let bridge = current
        .cross_sign(&next)
        .map_err(|e| Status::internal(e.to_string()))?;
    let key = next
        .key_pem()
        .ok_or_else(|| Status::internal("new root CA has no key"))?;
    root.root_rotation = Some(RootRotation {
        ca_cert: next.cert_pem().as_bytes().to_vec(),
        ca_key: key.as_bytes().to_vec(),
        cross_signed_ca_cert: bridge.into_bytes(),
        nodes_done: 0,
        nodes_total: 0,
    });
    tracing::info!(new_root = %next.digest(), "root CA rotation started");
    Ok(())
}
