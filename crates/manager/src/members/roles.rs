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
        // A manager certificate issued after this record: a node demoted and promoted again
        // before it noticed still holds the one its demotion record names, and members
        // replaying the log past that record (a follower catching up after a partition)
        // judge it by that record and refuse it until it presents a newer one
        // (node/src/auth.rs, still_a_manager). The node renews at once, as for a root
        // rotation; one that noticed the demotion renews for its new role anyway.
        node.certificate.get_or_insert_with(Default::default).status =
            CertificateStatus::Rotate as i32;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::Mutex;
    use swarm_store::MembershipError;
    use swarm_testkit::fixtures::{self, NodeFixture};
    use swarm_testkit::MemoryProposer;

    /// A group of fixed members that records what it was asked to remove.
    struct Group {
        me: u64,
        members: Vec<u64>,
        removed: Mutex<Vec<u64>>,
    }

    impl GroupMembership for Group {
        fn member_id(&self) -> u64 {
            self.me
        }
        fn members(&self) -> Vec<(u64, String)> {
            self.members.iter().map(|id| (*id, String::new())).collect()
        }
        fn remove_member(
            &self,
            id: u64,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), MembershipError>> + Send + 'static>,
        > {
            self.removed.lock().unwrap().push(id);
            Box::pin(async { Ok(()) })
        }
    }

    fn setup(n: Node, members: Vec<u64>) -> (Store, Arc<dyn Proposer>, Arc<Group>) {
        let store = Store::new();
        let proposer: Arc<dyn Proposer> = MemoryProposer::new(store.clone());
        store.apply(1, &Txn::new().create(n).into_batch()).unwrap();
        let group = Arc::new(Group {
            me: 1,
            members,
            removed: Mutex::new(Vec::new()),
        });
        (store, proposer, group)
    }

    #[tokio::test]
    async fn a_promotion_asks_the_node_for_a_new_certificate() {
        let mut n = fixtures::node("w1");
        n.spec.as_mut().unwrap().desired_role = NodeRole::Manager as i32;
        n.certificate = Some(NodeCertificate {
            status: CertificateStatus::Issued as i32,
            ..Default::default()
        });
        let (store, proposer, group) = setup(n, vec![1]);
        let raft: Arc<dyn GroupMembership> = group;
        let node = store.view(|t| t.nodes.get("w1").cloned()).unwrap();
        reconcile(&proposer, &raft, node).await.unwrap();
        let after = store.view(|t| t.nodes.get("w1").cloned()).unwrap();
        assert_eq!(after.role, NodeRole::Manager as i32);
        assert_eq!(
            after.certificate.map(|c| c.status),
            Some(CertificateStatus::Rotate as i32),
            "the node must renew: its certificate may predate its demotion"
        );
    }

    #[tokio::test]
    async fn a_demotion_removes_the_member_the_record_names() {
        let mut n = fixtures::node("m2").with_manager_role("10.0.0.2:4242");
        let incarnation = ids::raft_member_id("m2", 42);
        n.manager_status.as_mut().unwrap().raft_id = incarnation;
        n.spec.as_mut().unwrap().desired_role = NodeRole::Worker as i32;
        let (store, proposer, group) = setup(n, vec![1, incarnation]);
        let raft: Arc<dyn GroupMembership> = group.clone();
        let node = store.view(|t| t.nodes.get("m2").cloned()).unwrap();
        reconcile(&proposer, &raft, node).await.unwrap();
        assert_eq!(*group.removed.lock().unwrap(), vec![incarnation]);
        let after = store.view(|t| t.nodes.get("m2").cloned()).unwrap();
        assert_eq!(after.role, NodeRole::Worker as i32);
    }
}
