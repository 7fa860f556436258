//! The first objects of a cluster and of a node, built once here: the cluster object a new
//! cluster starts with (root CA, join tokens, SwarmKit's defaults), and the node object the
//! CA records for a joining node (or a bootstrapping manager records for itself).
//!
//! Owns: their shape and defaults. Must not touch: the store (callers write the objects).

use swarm_api::*;
use swarm_ca::{CaError, RootCa};

/// The settings a new cluster's object takes from its first manager.
#[derive(Debug, Clone, Copy)]
pub struct NewClusterSettings {
    pub heartbeat_tick: u32,
    pub election_tick: u32,
    /// How often agents heartbeat.
    pub heartbeat_period_ms: i64,
}

impl Default for NewClusterSettings {
    fn default() -> Self {
        NewClusterSettings {
            heartbeat_tick: defaults::HEARTBEAT_TICK,
            election_tick: defaults::ELECTION_TICK,
            heartbeat_period_ms: defaults::HEARTBEAT_PERIOD_MS,
        }
    }
}

/// The cluster object of a new cluster whose CA is `root`. Errors if `root` has no key.
pub fn new_cluster(
    root: &RootCa,
    cluster_id: &str,
    s: NewClusterSettings,
) -> Result<Cluster, CaError> {
    let key = root.key_pem().ok_or(CaError::NoSigningKey)?;
    Ok(Cluster {
        id: cluster_id.to_string(),
        meta: None,
        spec: Some(ClusterSpec {
            annotations: Some(Annotations {
                name: DEFAULT_CLUSTER_NAME.into(),
                labels: Default::default(),
            }),
            orchestration: Some(OrchestrationConfig {
                task_history_retention_limit: defaults::TASK_HISTORY_RETENTION,
            }),
            raft: Some(swarm_api::RaftConfig {
                snapshot_interval: defaults::SNAPSHOT_INTERVAL,
                log_entries_for_slow_followers: defaults::LOG_ENTRIES_FOR_SLOW_FOLLOWERS,
                heartbeat_tick: s.heartbeat_tick,
                election_tick: s.election_tick,
            }),
            dispatcher: Some(DispatcherConfig {
                heartbeat_period_ms: s.heartbeat_period_ms,
            }),
            ca_config: Some(CaConfig {
                node_cert_expiry_ms: defaults::NODE_CERT_EXPIRY_MS,
            }),
            encryption: Some(EncryptionConfig {
                auto_lock_managers: false,
            }),
        }),
        root_ca: Some(swarm_api::RootCa {
            ca_key: key.as_bytes().to_vec(),
            ca_cert: root.cert_pem().as_bytes().to_vec(),
            ca_cert_hash: root.digest(),
            join_tokens: Some(JoinTokens {
                worker: swarm_ca::generate_join_token(root),
                manager: swarm_ca::generate_join_token(root),
            }),
            root_rotation: None,
        }),
        manager_unlock_key: String::new(),
    })
}

/// A node as the cluster first records it: accepted, active, in `role`, its remote address
/// `addr` (a manager's Raft address too), holding `certificate`.
pub fn joined_node(
    node_id: &str,
    hostname: &str,
    role: NodeRole,
    addr: &str,
    certificate: NodeCertificate,
) -> Node {
    Node {
        id: node_id.to_string(),
        meta: None,
        spec: Some(NodeSpec {
            annotations: Some(Annotations {
                name: hostname.to_string(),
                labels: Default::default(),
            }),
            desired_role: role as i32,
            membership: NodeMembership::Accepted as i32,
            availability: NodeAvailability::Active as i32,
        }),
        description: Some(NodeDescription {
            hostname: hostname.to_string(),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: NodeState::Unknown as i32,
            message: "joined".into(),
            addr: addr.to_string(),
        }),
        manager_status: (role == NodeRole::Manager).then(|| ManagerStatus {
            raft_id: ids::raft_id_of(node_id),
            addr: addr.to_string(),
            leader: false,
            reachability: Reachability::Unknown as i32,
        }),
        role: role as i32,
        certificate: Some(certificate),
    }
}

/// The record of a certificate `root` issued itself (not through a rotation): the root
/// rotation reconciler leaves such a node alone.
pub fn issued_by_root(
    root: &RootCa,
    role: NodeRole,
    cert_pem: &str,
    expires_at: i64,
) -> Result<NodeCertificate, CaError> {
    Ok(NodeCertificate {
        role: role as i32,
        certificate: cert_pem.as_bytes().to_vec(),
        expires_at,
        signer_digest: root.digest(),
        trust_digest: swarm_ca::bundle_digest(root.cert_pem())?,
        status: CertificateStatus::Issued as i32,
    })
}
