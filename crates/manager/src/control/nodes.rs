//! Control API: nodes.

use super::{first, ControlApi};
use crate::errors::status;
use swarm_api::*;
use swarm_store::Txn;
use tonic::Status;

pub(super) fn get(api: &ControlApi, r: GetNodeRequest) -> Result<GetNodeResponse, Status> {
    let node = api.store.view(|t| t.nodes.get(&r.node_id).cloned());
    node.map(|n| GetNodeResponse { node: Some(n) })
        .ok_or_else(|| Status::not_found(format!("node {} not found", r.node_id)))
}

pub(super) fn list(api: &ControlApi) -> ListNodesResponse {
    ListNodesResponse {
        nodes: api.store.view(|t| t.nodes.iter().cloned().collect()),
    }
}

pub(super) async fn update(
    api: &ControlApi,
    r: UpdateNodeRequest,
) -> Result<UpdateNodeResponse, Status> {
    let spec = r
        .spec
        .ok_or_else(|| Status::invalid_argument("spec: missing"))?;
    validate::validate_node_spec(&spec).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let mut node = api
        .store
        .view(|t| t.nodes.get(&r.node_id).cloned())
        .ok_or_else(|| Status::not_found(format!("node {} not found", r.node_id)))?;
    if spec.desired_role
        != node
            .spec
            .as_ref()
            .map(|s| s.desired_role)
            .unwrap_or_default()
    {
        return Err(Status::unimplemented(
            "role: promote and demote are not supported yet",
        ));
    }
    node.spec = Some(spec);
    // The caller's version, so a change made since the caller read the node is not overwritten.
    node.meta.get_or_insert_with(Default::default).version = r.node_version;
    let written = api
        .proposer
        .propose(Txn::new().update(node).into_batch())
        .await
        .map_err(status)?;
    let node = first(written, |o| match o {
        store_object::Object::Node(n) => Some(n),
        _ => None,
    });
    Ok(UpdateNodeResponse { node })
}

pub(super) async fn remove(
    api: &ControlApi,
    r: RemoveNodeRequest,
) -> Result<RemoveNodeResponse, Status> {
    let node = api
        .store
        .view(|t| t.nodes.get(&r.node_id).cloned())
        .ok_or_else(|| Status::not_found(format!("node {} not found", r.node_id)))?;
    if node.role == NodeRole::Manager as i32 {
        return Err(Status::failed_precondition(format!(
            "node {} is a manager: demote it before removing it",
            r.node_id
        )));
    }
    let state = node.status.as_ref().map(|s| s.state).unwrap_or_default();
    if state == NodeState::Ready as i32 && !r.force {
        return Err(Status::failed_precondition(format!(
            "node {} is not down and can't be removed (use --force)",
            r.node_id
        )));
    }
    api.proposer
        .propose(Txn::new().remove(node).into_batch())
        .await
        .map_err(status)?;
    Ok(RemoveNodeResponse {})
}
