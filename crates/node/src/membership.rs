//! Raft membership for managers: the `RaftMembership` service, through which a manager that
//! joined with the manager token asks the leader to add it as a voter (a learner first, until
//! it has caught up), and the joining side of that call.

use crate::error::NodeError;
use crate::error::{bail, Context, Result};
use std::time::Duration;
use swarm_api::raft_membership_client::RaftMembershipClient;
use swarm_api::raft_membership_server::{RaftMembership, RaftMembershipServer};
use swarm_api::*;
use swarm_manager::{Proposer, WriteError};
use swarm_raft::{PeerConnector, RaftNode};
use swarm_store::{Store, Txn};
use tonic::{Request, Response, Status};

use crate::peers::TlsPeers;

pub struct Membership {
    pub raft: RaftNode,
    pub store: Store,
    pub proposer: std::sync::Arc<dyn Proposer>,
    pub cluster_id: String,
}

impl Membership {
    pub fn into_service(self) -> RaftMembershipServer<Membership> {
        RaftMembershipServer::new(self)
    }

    fn members(&self) -> Vec<RaftMember> {
        self.raft
            .members()
            .into_iter()
            .map(|(raft_id, addr)| RaftMember { raft_id, addr })
            .collect()
    }

    /// Records the manager's Raft address and reachability on its node.
    async fn record(&self, node_id: &str, raft_id: u64, addr: &str) -> Result<(), Status> {
        for _ in 0..10 {
            let Some(node) = self.store.view(|t| t.nodes.get(node_id).cloned()) else {
                return Ok(());
            };
            let mut n = node;
            let m = n.manager_status.get_or_insert_with(Default::default);
            m.raft_id = raft_id;
            m.addr = addr.to_string();
            m.reachability = Reachability::Reachable as i32;
            match self
                .proposer
                .propose(Txn::new().update(n).into_batch())
                .await
            {
                Ok(_) => return Ok(()),
                Err(WriteError::Refused(swarm_store::ApplyError::Conflict { .. })) => continue,
                Err(e) => return Err(Status::unavailable(e.to_string())),
            }
        }
        Err(Status::unavailable(
            "could not record the new manager; retry",
        ))
    }
}

#[tonic::async_trait]
impl RaftMembership for Membership {
    async fn join(
        &self,
        req: Request<JoinRaftRequest>,
    ) -> Result<Response<JoinRaftResponse>, Status> {
        let peer = swarm_ca::authorize(&req, &self.cluster_id, &[NodeRole::Manager])?;
        let addr = req.get_ref().addr.clone();
        if addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(Status::invalid_argument(format!(
                "addr: {addr:?} is not an IP:port address"
            )));
        }
        let leadership = self.raft.leadership().borrow().clone();
        if !leadership.is_leader {
            return Ok(Response::new(JoinRaftResponse {
                joined: false,
                leader_addr: leadership.leader_addr.unwrap_or_default(),
                members: self.members(),
            }));
        }
        // A node being demoted is still recorded as a manager until the leader has taken it
        // out of Raft: taking it back in then would undo the demotion, and the two would
        // take turns. Wanted as a manager means recorded as one and desired as one.
        let is_manager = self.store.view(|t| {
            t.nodes.get(&peer.node_id).is_some_and(|n| {
                n.role == NodeRole::Manager as i32
                    && n.spec
                        .as_ref()
                        .is_none_or(|s| s.desired_role == NodeRole::Manager as i32)
            })
        });
        if !is_manager {
            return Err(Status::permission_denied(format!(
                "node {} is not a manager of this cluster",
                peer.node_id
            )));
        }
        let req = req.into_inner();
        let raft_id = ids::raft_member_id(&peer.node_id, req.incarnation);
        if raft_id == self.raft.raft_id() {
            return Err(Status::failed_precondition(format!(
                "node {}: raft member {raft_id:x} is the leader itself",
                peer.node_id
            )));
        }
        // The node's earlier incarnations still in the group: their state is gone (the node
        // runs one Raft state at a time), so they go before the new one comes in.
        let recorded = self.store.view(|t| {
            t.nodes
                .get(&peer.node_id)
                .and_then(|n| n.manager_status.as_ref())
                .map_or(0, |m| m.raft_id)
        });
        let members = self.raft.members();
        for old in earlier_incarnations(&members, &peer.node_id, recorded, raft_id) {
            tracing::info!(node = %peer.node_id, raft_id = old, "taking a manager's earlier Raft state out of the group");
            self.raft
                .remove_member(old)
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
        }
        // Recorded before it is added: the role reconciler takes members no manager records
        // out of the group.
        self.record(&peer.node_id, raft_id, &addr).await?;
        // Already a voter at this address: nothing to do (a member asking again after a
        // partition, with its log kept). A learner (a join cut short) is promoted again.
        let known = self.raft.voters().contains(&raft_id)
            && members.iter().any(|(id, a)| *id == raft_id && *a == addr);
        if !known {
            tracing::info!(node = %peer.node_id, raft_id, %addr, "adding manager to Raft");
            self.raft
                .add_voter(raft_id, &addr)
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
        }
        Ok(Response::new(JoinRaftResponse {
            joined: true,
            leader_addr: String::new(),
            members: self.members(),
        }))
    }
}

/// Members of `members` that are earlier incarnations of `node_id`'s Raft state than
/// `joining`: the one its record names and the one of state made before incarnations existed.
fn earlier_incarnations(
    members: &[(u64, String)],
    node_id: &str,
    recorded: u64,
    joining: u64,
) -> Vec<u64> {
    let legacy = ids::raft_id_of(node_id);
    members
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| *id != joining && (*id == recorded || *id == legacy))
        .collect()
}

/// Asks the managers at `addrs` (following redirects to the leader) to add this manager to
/// Raft; returns once it is a voter.
pub async fn join_raft(
    peers: &TlsPeers,
    addrs: &[String],
    advertise: &str,
    incarnation: u64,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut targets: Vec<String> = addrs
        .iter()
        .filter(|a| a.as_str() != advertise)
        .cloned()
        .collect();
    if targets.is_empty() {
        bail!("no other manager known to join (give --join-addr)");
    }
    let mut i = 0;
    loop {
        let target = targets[i % targets.len()].clone();
        i += 1;
        let res = async {
            let ch = peers.channel(&target).map_err(|e| NodeError::Step {
                what: format!("dialling {target}"),
                source: Box::new(e),
            })?;
            let resp = RaftMembershipClient::new(ch)
                .join(JoinRaftRequest {
                    addr: advertise.to_string(),
                    incarnation,
                })
                .await
                .with_context(|| format!("asking {target} to join Raft"))?;
            Ok::<_, NodeError>(resp.into_inner())
        }
        .await;
        match res {
            Ok(r) if r.joined => {
                tracing::info!(via = %target, members = r.members.len(), "joined Raft");
                return Ok(());
            }
            Ok(r) if !r.leader_addr.is_empty() => {
                if !targets.contains(&r.leader_addr) {
                    targets.push(r.leader_addr.clone());
                }
                i = targets
                    .iter()
                    .position(|t| *t == r.leader_addr)
                    .unwrap_or(0);
            }
            Ok(_) => tracing::info!(%target, "no leader yet; retrying"),
            Err(e) if crate::error::one_line(&e).contains("not a manager") => return Err(e),
            Err(e) => tracing::info!(error = %e, "joining Raft; retrying"),
        }
        if tokio::time::Instant::now() > deadline {
            bail!("could not join the managers' Raft group within 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// While the manager role runs: if the Raft group no longer counts this member as a voter,
/// or no leader has been heard of for `leaderless_after` (a few election timeouts), asks to
/// join again, and again after as long, until it is back or the role ends. The leader answers a member it still counts with "already a
/// voter" and changes nothing, so asking is harmless.
///
/// Why: a demotion takes the member out of Raft first and records the node as a worker after;
/// a promotion that comes before the node has seen the demotion (the nemesis's demote fault
/// did this within half a second) leaves it recorded as a manager, running as one, and
/// outside the group. No leader replicates to it again: a removed follower never even learns
/// it was removed and campaigns forever; a removed leader thinks itself still leading. Its
/// store stays as it was. Being added back with its log and vote kept is what Raft allows;
/// the leader refuses while the node is still wanted as a worker.
pub async fn rejoin_when_removed(
    raft: RaftNode,
    peers: TlsPeers,
    managers: Vec<String>,
    advertise: String,
    incarnation: u64,
    leaderless_after: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let me = raft.raft_id();
    let leadership = raft.leadership();
    let mut leaderless_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let l = leadership.borrow().clone();
        let leaderless = !l.is_leader && l.leader_id.is_none_or(|id| id == me);
        let now = tokio::time::Instant::now();
        leaderless_since = if leaderless {
            Some(leaderless_since.unwrap_or(now))
        } else {
            None
        };
        let removed = !raft.voters().contains(&me);
        let long_leaderless = leaderless_since.is_some_and(|t| now - t >= leaderless_after);
        if !removed && !long_leaderless {
            continue;
        }
        leaderless_since = leaderless_since.map(|_| now);
        tracing::info!(
            removed,
            "this manager hears from no leader: asking to join the Raft group again"
        );
        // The group as this member last knew it names the managers to ask (the first
        // manager of a cluster was given no others).
        let mut targets: Vec<String> = raft.members().into_iter().map(|(_, a)| a).collect();
        for m in &managers {
            if !targets.contains(m) {
                targets.push(m.clone());
            }
        }
        let attempt = tokio::time::timeout(
            Duration::from_secs(10),
            join_raft(&peers, &targets, &advertise, incarnation),
        );
        tokio::select! {
            _ = stop.cancelled() => return,
            r = attempt => match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::info!(error = %e, "joining Raft again: not now"),
                Err(_) => tracing::info!("joining Raft again: no answer within 10 s"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_new_incarnation_replaces_the_recorded_and_the_legacy_member_only() {
        let legacy = ids::raft_id_of("n1");
        let recorded = ids::raft_member_id("n1", 5);
        let joining = ids::raft_member_id("n1", 9);
        let other = ids::raft_id_of("n2");
        let members: Vec<(u64, String)> = [legacy, recorded, joining, other]
            .iter()
            .map(|id| (*id, format!("10.0.0.{}:4242", id % 200)))
            .collect();
        let mut old = earlier_incarnations(&members, "n1", recorded, joining);
        old.sort_unstable();
        let mut want = vec![legacy, recorded];
        want.sort_unstable();
        assert_eq!(old, want);
        // The same incarnation asking again (its log kept) replaces only what is not it.
        assert_eq!(
            earlier_incarnations(&members, "n1", joining, joining),
            vec![legacy]
        );
        assert_eq!(
            earlier_incarnations(&members[2..], "n1", joining, joining),
            Vec::<u64>::new()
        );
    }
}
