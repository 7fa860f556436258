//! The first objects of a cluster and of a node, built once here: the cluster object a new
//! cluster starts with (root CA, join tokens, SwarmKit's defaults, its address pool), its
//! ingress network, and the node object the
//! CA records for a joining node (or a bootstrapping manager records for itself).
//!
//! Owns: their shape and defaults. Must not touch: the store (callers write the objects).

use swarm_api::*;
use swarm_ca::{CaError, RootCa};

/// The settings a new cluster's object takes from its first manager.
#[derive(Debug, Clone)]
pub struct NewClusterSettings {
    pub heartbeat_tick: u32,
    pub election_tick: u32,
    /// How often agents heartbeat.
    pub heartbeat_period_ms: i64,
    pub network: NetworkDefaults,
}

impl Default for NewClusterSettings {
    fn default() -> Self {
        NewClusterSettings {
            heartbeat_tick: defaults::HEARTBEAT_TICK,
            election_tick: defaults::ELECTION_TICK,
            heartbeat_period_ms: defaults::HEARTBEAT_PERIOD_MS,
            network: NetworkDefaults::default(),
        }
    }
}

/// Where a new cluster's networks draw their subnets from, and its VXLAN port (swarmd's
/// `--default-addr-pool`, `--default-addr-pool-mask-length`, `--data-path-port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDefaults {
    pub address_pool: Vec<String>,
    pub subnet_size: u32,
    pub data_path_port: u32,
}

impl Default for NetworkDefaults {
    fn default() -> Self {
        NetworkDefaults {
            address_pool: vec![defaults::ADDRESS_POOL.to_string()],
            subnet_size: defaults::SUBNET_SIZE,
            data_path_port: defaults::DATA_PATH_PORT,
        }
    }
}

impl NetworkDefaults {
    /// Checks the pool, the size carved from it and the port; the error names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.address_pool.is_empty() {
            return Err("--default-addr-pool: at least one CIDR is needed".into());
        }
        let mut pools: Vec<cidr::Subnet> = Vec::new();
        for p in &self.address_pool {
            let s = cidr::Subnet::parse(p).map_err(|e| format!("--default-addr-pool: {e}"))?;
            if let Some(o) = pools.iter().find(|o| o.overlaps(&s)) {
                return Err(format!("--default-addr-pool: {s} overlaps {o}"));
            }
            if self.subnet_size < u32::from(s.prefix_len()) {
                return Err(format!(
                    "--default-addr-pool-mask-length: /{} is larger than the pool {s}",
                    self.subnet_size
                ));
            }
            pools.push(s);
        }
        if !(8..=29).contains(&self.subnet_size) {
            return Err(format!(
                "--default-addr-pool-mask-length: {} must be between 8 and 29",
                self.subnet_size
            ));
        }
        if !(1024..=49151).contains(&self.data_path_port) {
            return Err(format!(
                "--data-path-port: {} must be between 1024 and 49151",
                self.data_path_port
            ));
        }
        Ok(())
    }
}

/// The routing mesh's network, as a new cluster creates it: the first subnet of the pool
/// (Docker's 10.0.0.0/24), its first address the gateway.
pub fn ingress_network(n: &NetworkDefaults) -> Network {
    let subnet = n
        .address_pool
        .first()
        .and_then(|p| cidr::Subnet::parse(p).ok())
        .and_then(|p| p.carve(n.subnet_size.min(32) as u8).next());
    Network {
        id: ids::new_id(),
        meta: None,
        spec: Some(NetworkSpec {
            annotations: Some(Annotations {
                name: defaults::INGRESS_NETWORK.into(),
                labels: Default::default(),
            }),
            driver: defaults::NETWORK_DRIVER.into(),
            ipam: subnet.map(|s| IpamConfig {
                subnet: s.to_string(),
                gateway: s.first_host().map(|g| g.to_string()).unwrap_or_default(),
            }),
            internal: false,
            attachable: false,
            ingress: true,
        }),
        ipam: None,
        vni: 0,
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
        default_address_pool: s.network.address_pool.clone(),
        subnet_size: s.network.subnet_size,
        data_path_port: s.network.data_path_port,
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
        // The allocator gives one while the routing mesh is in use.
        ingress_address: String::new(),
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
