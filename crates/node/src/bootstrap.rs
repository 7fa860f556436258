//! The first write of a new cluster: once this manager leads its one-member Raft group, the
//! cluster object (root CA, join tokens, defaults), this manager's node and the ingress
//! network, as
//! `swarm_manager::objects` builds them.

use crate::config::NodeConfig;
use crate::error::{Context, Result};
use crate::identity::NodeIdentity;
use std::time::Duration;
use swarm_api::*;
use swarm_manager::objects::{self, NewClusterSettings};
use swarm_manager::Proposer;
use swarm_raft::RaftNode;
use swarm_store::Txn;

/// Writes the first objects of a new cluster: the cluster (root CA, join tokens, defaults)
/// and this manager's node, once this manager leads.
pub(crate) async fn create_cluster(
    raft: &RaftNode,
    proposer: &dyn Proposer,
    node: &NodeIdentity,
    root: &swarm_ca::RootCa,
    cfg: &NodeConfig,
    advertise: &str,
) -> Result<()> {
    let mut leadership = raft.leadership();
    tokio::time::timeout(
        Duration::from_secs(30),
        leadership.wait_for(|l| l.is_leader),
    )
    .await
    .context("waiting to lead the new cluster")?
    .context("waiting to lead the new cluster")?;
    let creds = &node.creds;
    let cluster = objects::new_cluster(
        root,
        &creds.cluster_id,
        NewClusterSettings {
            heartbeat_tick: cfg.raft.heartbeat_tick,
            election_tick: cfg.raft.election_tick,
            network: cfg.network.clone(),
            ..Default::default()
        },
    )?;
    let ingress = objects::ingress_network(&cfg.network);
    let certificate = objects::issued_by_root(
        root,
        NodeRole::Manager,
        &creds.cert_pem,
        now_ms() + defaults::NODE_CERT_EXPIRY_MS,
    )?;
    let mut me = objects::joined_node(
        &creds.node_id,
        &cfg.hostname(),
        NodeRole::Manager,
        advertise,
        certificate,
    );
    if let Some(s) = me.status.as_mut() {
        s.message.clear();
    }
    // The first manager leads, and can reach itself.
    if let Some(m) = me.manager_status.as_mut() {
        m.raft_id = raft.raft_id();
        m.leader = true;
        m.reachability = Reachability::Reachable as i32;
    }
    proposer
        .propose(
            Txn::new()
                .create(cluster)
                .create(me)
                .create(ingress)
                .into_batch(),
        )
        .await
        .context("writing the new cluster")?;
    Ok(())
}
