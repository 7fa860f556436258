//! Who may call the manager-to-manager services (Raft, membership, forwarded control and
//! log calls): an interceptor on the remote API. Agents' and joiners' services check their
//! callers themselves.

use swarm_api::NodeRole;
use swarm_store::Store;

/// Manager-to-manager calls (Raft, membership, forwarded control calls): the caller must
/// present a `swarm-manager` certificate of this cluster AND still be recorded as a manager,
/// so a demoted or removed manager's old certificate is refused before anything is read.
pub(crate) fn managers_only(
    cluster_id: String,
    store: Store,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |req| {
        let peer = swarm_ca::authorize(&req, &cluster_id, &[NodeRole::Manager])?;
        // A manager still catching up (nothing replicated yet) can only go by the certificate.
        let member = store.view(|t| {
            t.nodes.is_empty()
                || t.nodes
                    .get(&peer.node_id)
                    .is_some_and(|n| n.role == NodeRole::Manager as i32)
        });
        if !member {
            return Err(tonic::Status::permission_denied(format!(
                "node {} is no longer a manager of this cluster",
                peer.node_id
            )));
        }
        Ok(req)
    }
}
