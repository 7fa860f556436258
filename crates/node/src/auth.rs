//! Who may call the manager-to-manager services (Raft, membership, forwarded control and
//! log calls): an interceptor on the remote API. Agents' and joiners' services check their
//! callers themselves.

use swarm_api::{Node, NodeRole};
use swarm_raft::RaftNode;
use swarm_store::Store;

/// Manager-to-manager calls (membership, forwarded control and log calls): the caller must
/// present a `swarm-manager` certificate of this cluster AND be a manager by this member's
/// store (see [`still_a_manager`]), so a demoted or removed manager's old certificate is
/// refused before anything is read. The Raft service has [`raft_peers_only`].
pub(crate) fn managers_only(
    cluster_id: String,
    store: Store,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |req| check_manager(&req, &cluster_id, &store, || false).map(|()| req)
}

/// The Raft service: as [`managers_only`], except that a member that is not a voter in its
/// own view (a learner catching up, a new incarnation replaying the log) takes any manager
/// certificate of this cluster. Why: it judges callers by its own store, which lags the
/// leader's then, and at the entry where the leader itself was once recorded as a worker
/// (demoted, and promoted again before it renewed its certificate) it refused the very
/// appends that carry the promotion, and never caught up (the nemesis's demote fault under
/// load). A non-voter's vote counts for nothing and a leader's log matching replaces what it
/// appended, so letting it hear any manager risks nothing.
pub(crate) fn raft_peers_only(
    cluster_id: String,
    store: Store,
    raft: RaftNode,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |req| {
        let catching_up = || !raft.voters().contains(&raft.raft_id());
        check_manager(&req, &cluster_id, &store, catching_up).map(|()| req)
    }
}

/// `any_manager_certificate` is asked only for a caller the store does not let in.
fn check_manager(
    req: &tonic::Request<()>,
    cluster_id: &str,
    store: &Store,
    any_manager_certificate: impl FnOnce() -> bool,
) -> Result<(), tonic::Status> {
    let peer = swarm_ca::authorize(req, cluster_id, &[NodeRole::Manager])?;
    // The certificate is parsed only for a caller not recorded as a manager, and the Raft
    // membership read only after that: every Raft append passes here.
    let member = store.view(|t| {
        t.nodes.is_empty()
            || still_a_manager(t.nodes.get(&peer.node_id), || {
                swarm_ca::peer_cert_not_after_ms(req)
            })
    });
    if member || any_manager_certificate() {
        Ok(())
    } else {
        Err(tonic::Status::permission_denied(format!(
            "node {} is no longer a manager of this cluster",
            peer.node_id
        )))
    }
}

/// Whether a caller presenting a manager certificate that expires at `presented_not_after_ms()`
/// is a manager by `recorded`, this member's record of it (which may lag the leader's).
///
/// Recorded as a manager: yes. Recorded otherwise: only if the certificate is newer than the
/// one the record names. Why: a member catching up replays the log, and at some entry the
/// leader itself may be recorded as a worker (demoted once, promoted since, by entries still
/// ahead). Refusing it by the record then would refuse the appends that carry the promotion,
/// and the member would never get past that entry (the nemesis's demote fault did this). A
/// certificate issued after the one recorded was issued after the demotion, and the CA signs
/// a manager certificate only for a node recorded as a manager, so the caller was promoted
/// again; a demoted node's old manager certificate is never newer than its record's.
pub(crate) fn still_a_manager(
    recorded: Option<&Node>,
    presented_not_after_ms: impl FnOnce() -> Option<i64>,
) -> bool {
    let Some(node) = recorded else {
        return false;
    };
    if node.role == NodeRole::Manager as i32 {
        return true;
    }
    match (
        node.certificate.as_ref().map(|c| c.expires_at),
        presented_not_after_ms(),
    ) {
        (Some(recorded_expiry), Some(presented)) => presented > recorded_expiry,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use swarm_api::NodeCertificate;

    fn node(role: NodeRole, cert_expires_at: Option<i64>) -> Node {
        Node {
            id: "n1".into(),
            role: role as i32,
            certificate: cert_expires_at.map(|e| NodeCertificate {
                expires_at: e,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_recorded_manager_passes_and_an_unknown_node_does_not() {
        assert!(still_a_manager(
            Some(&node(NodeRole::Manager, None)),
            || None
        ));
        assert!(!still_a_manager(None, || Some(i64::MAX)));
    }

    #[test]
    fn a_demoted_node_passes_only_with_a_certificate_issued_after_its_record() {
        // Recorded (at demotion) with the worker certificate expiring at 1,000,500 ms.
        let demoted = node(NodeRole::Worker, Some(1_000_500));
        // Its old manager certificate, issued before: refused.
        assert!(!still_a_manager(Some(&demoted), || Some(900_000)));
        // The same instant (X.509 seconds round down): refused.
        assert!(!still_a_manager(Some(&demoted), || Some(1_000_000)));
        // A manager certificate issued since (a promotion the record does not show yet).
        assert!(still_a_manager(Some(&demoted), || Some(1_002_000)));
        // No certificate to compare with: refused.
        assert!(!still_a_manager(
            Some(&node(NodeRole::Worker, None)),
            || { Some(i64::MAX) }
        ));
        assert!(!still_a_manager(Some(&demoted), || None));
    }
}
