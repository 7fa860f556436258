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
    let current = node
        .spec
        .as_ref()
        .map(|s| s.desired_role)
        .unwrap_or_default();
    if spec.desired_role != current {
        api.store
            .view(|t| check_role_change(t, &node, spec.desired_role))?;
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
        store_object::Object::Node(n) => Some(*n),
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
    let manager = node.role == NodeRole::Manager as i32;
    if manager {
        if node.manager_status.as_ref().is_some_and(|m| m.leader) {
            return Err(Status::failed_precondition(format!(
                "node {} is the leader: demote it first (leadership moves to another manager)",
                r.node_id
            )));
        }
        // Same guard as a demotion: the leader then takes it out of the Raft group.
        api.store
            .view(|t| check_role_change(t, &node, NodeRole::Worker as i32))?;
    }
    let state = node.status.as_ref().map(|s| s.state).unwrap_or_default();
    let reachable = node
        .manager_status
        .as_ref()
        .is_some_and(|m| m.reachability == Reachability::Reachable as i32);
    if (state == NodeState::Ready as i32 || (manager && reachable)) && !r.force {
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

/// Refuses role changes that cannot work or would hurt the cluster: promoting a node that is
/// not up, demoting the last manager, or demoting one whose loss would leave the remaining
/// managers without a reachable majority.
fn check_role_change(t: &swarm_store::Tables, node: &Node, desired: i32) -> Result<(), Status> {
    if desired == NodeRole::Manager as i32 {
        let ready = node
            .status
            .as_ref()
            .is_some_and(|s| s.state == NodeState::Ready as i32);
        if !ready {
            return Err(Status::failed_precondition(format!(
                "node {} is not ready and cannot be promoted",
                node.id
            )));
        }
        return Ok(());
    }
    let managers: Vec<&Node> = t
        .nodes
        .iter()
        .filter(|n| {
            n.role == NodeRole::Manager as i32
                || n.spec
                    .as_ref()
                    .is_some_and(|s| s.desired_role == NodeRole::Manager as i32)
        })
        .filter(|n| n.id != node.id)
        .collect();
    if managers.is_empty() {
        return Err(Status::failed_precondition(format!(
            "node {} is the last manager and cannot be demoted",
            node.id
        )));
    }
    let reachable = managers
        .iter()
        .filter(|n| {
            n.manager_status
                .as_ref()
                .is_some_and(|m| m.reachability == Reachability::Reachable as i32)
        })
        .count();
    if reachable < managers.len() / 2 + 1 {
        return Err(Status::failed_precondition(format!(
            "demoting node {} would leave {reachable} reachable of {} managers: quorum would be lost",
            node.id,
            managers.len()
        )));
    }
    Ok(())
}
