//! Leader-only: carries out promotions and demotions, and takes removed managers out of the
//! Raft group. A promotion records the node as a
//! manager (its next certificate renewal then says so, and it joins Raft itself). A demotion
//! first takes the node out of the Raft group, then records it as a worker. Demoting the
//! leader itself: it leaves the group and steps down, and the next leader finishes the job.

use crate::proposer::Proposer;
use std::sync::Arc;
use std::time::Duration;
use swarm_api::*;
use swarm_store::{GroupMembership, Store, Txn};
use tokio_util::sync::CancellationToken;

/// Runs while this manager leads, until `cancel`.
pub(crate) async fn run(
    store: Store,
    proposer: Arc<dyn Proposer>,
    raft: Arc<dyn GroupMembership>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let pending: Vec<Node> = store.view(|t| {
            t.nodes
                .iter()
                .filter(|n| n.spec.as_ref().is_some_and(|s| s.desired_role != n.role))
                .cloned()
                .collect()
        });
        for node in pending {
            if let Err(e) = reconcile(&proposer, &raft, node).await {
                tracing::info!(error = %e, "role change not done yet; retrying");
            }
        }
        // Raft members with no manager node behind them (the node was removed): out of the group.
        let managers: Vec<u64> = store.view(|t| {
            t.nodes
                .iter()
                .filter(|n| n.role == NodeRole::Manager as i32)
                .map(recorded_member_id)
                .collect()
        });
        if managers.is_empty() {
            // Nothing replicated yet: never empty the group on an empty view.
            continue;
        }
        for (id, addr) in raft.members() {
            if !managers.contains(&id) && id != raft.member_id() {
                tracing::info!(raft_id = id, %addr, "removing a removed manager from Raft");
                if let Err(e) = raft.remove_member(id).await {
                    tracing::info!(error = %e, "removing a Raft member; retrying");
                }
            }
        }
    }
}

async fn reconcile(
    proposer: &Arc<dyn Proposer>,
    raft: &Arc<dyn GroupMembership>,
    mut node: Node,
) -> Result<(), String> {
    let desired = node
        .spec
        .as_ref()
        .map(|s| s.desired_role)
        .unwrap_or_default();
    if desired == NodeRole::Manager as i32 {
        node.role = NodeRole::Manager as i32;
        // The member ID of the Raft state it will start is recorded when it joins.
        node.manager_status = Some(ManagerStatus {
            raft_id: ids::raft_id_of(&node.id),
            addr: String::new(),
            leader: false,
            reachability: Reachability::Unknown as i32,
        });
        tracing::info!(node = %node.id, "promoting node");
    } else {
        let raft_id = recorded_member_id(&node);
        if raft.members().iter().any(|(id, _)| *id == raft_id) {
            tracing::info!(node = %node.id, raft_id, "removing demoted manager from Raft");
            raft.remove_member(raft_id)
                .await
                .map_err(|e| e.to_string())?;
            if raft_id == raft.member_id() {
                // No longer a member: leadership passes on, the next leader records the role.
                return Ok(());
            }
        }
        node.role = NodeRole::Worker as i32;
        node.manager_status = None;
        tracing::info!(node = %node.id, "demoted node");
    }
    proposer
        .propose(Txn::new().update(node).into_batch())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The Raft member ID a manager's record names: the one it joined with, or, for a record
/// that names none, the ID of Raft state made before incarnations existed.
fn recorded_member_id(node: &Node) -> u64 {
    node.manager_status
        .as_ref()
        .map(|m| m.raft_id)
        .filter(|id| *id != 0)
        .unwrap_or_else(|| ids::raft_id_of(&node.id))
}
