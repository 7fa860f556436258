//! A real cluster inside the bench process: each manager is a `swarm_node` node (the same
//! wiring as `swarmd`: Raft log in a state dir with fsync, mutual-TLS remote API, dispatcher,
//! CA, control API, log broker, leader components, its own agent), started on the bench's
//! runtime for it; the first bootstraps the cluster and the others join it with the manager
//! token. The simulated nodes are bare `swarm_agent::Agent`s with the sim executor, each with
//! a certificate issued by the cluster's root and its node object written in batches: joining
//! 5,000 nodes through the CA one by one is not what is measured.
//!
//! The managers are drained, as operators do with managers, so every task lands on a
//! simulated node, as before they had agents.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;
use swarm_agent::{Agent, AgentConfig, ExecutorKind};
use swarm_api::*;
use swarm_ca::{LiveCredentials, NodeCredentials, RootCa};
use swarm_manager::control::ControlApi;
use swarm_node::{
    ControlSocket, ExecutorChoice, Join, Listeners, NodeConfig, RaftTiming, RunningNode,
};
use swarm_raft::RaftNode;
use swarm_store::{Store, Tables, Txn, WriteError};
use tokio_util::sync::CancellationToken;

/// Certificates issued by the bench live this long: far beyond any run.
const CERT_EXPIRY_MS: i64 = 24 * 3600 * 1000;

/// Node objects are written in batches of this many (one Raft entry each).
const NODE_BATCH: usize = 500;

/// One running manager.
pub struct Manager {
    pub addr: String,
    pub raft: RaftNode,
    pub store: Store,
    pub control: ControlApi,
    /// The state dir (its `raft/` holds the log and snapshots).
    pub dir: PathBuf,
    /// Owns the node; dropped with the manager's runtime in the failover scenario.
    _node: RunningNode,
}

/// Credentials for a new node of `role`, issued directly by the root (as the first manager
/// issues its own; the CA service would sign a CSR instead, with the same result).
pub fn issue(
    root: &RootCa,
    node_id: &str,
    role: NodeRole,
    cluster_id: &str,
) -> Result<LiveCredentials> {
    let (cert, key) = root.issue(node_id, role, cluster_id, CERT_EXPIRY_MS)?;
    let creds = NodeCredentials::from_pems(cert, key, root.cert_pem().to_string())?;
    // Nobody renews in the bench: the writing end can go, readers keep the last value.
    let (_swap, live) = swarm_ca::live_credentials(creds)?;
    Ok(live)
}

/// Starts one manager node on the current runtime (dropping that runtime is how the failover
/// scenario kills it): a new cluster when `join` is None, else a member of the one it names.
/// Returns once it serves as a Raft voter, or fails after `up_within`.
pub async fn start_manager(
    dir: PathBuf,
    tick_ms: u64,
    join: Option<Join>,
    up_within: Duration,
) -> Result<Manager> {
    let remote = std::net::TcpListener::bind("127.0.0.1:0")?;
    let mut cfg = NodeConfig::new(&dir);
    cfg.control_socket = ControlSocket::At(dir.join("control.sock"));
    cfg.hostname = Some(format!(
        "manager-{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("m")
    ));
    cfg.executor = ExecutorChoice::Sim;
    cfg.raft = RaftTiming {
        tick_ms,
        ..RaftTiming::default()
    };
    cfg.join = join;
    let node = swarm_node::start(
        cfg,
        Listeners {
            remote_api: Some(remote),
            ..Default::default()
        },
    );
    let m = match tokio::time::timeout(up_within, node.up()).await {
        Ok(Some(info)) => info.manager.context("a serving manager has its parts")?,
        Ok(None) => bail!("the manager node in {} stopped", dir.display()),
        Err(_) => bail!("manager in {} not up within {up_within:?}", dir.display()),
    };
    Ok(Manager {
        addr: m.addr,
        raft: m.raft,
        store: m.store,
        control: m.control,
        dir,
        _node: node,
    })
}

/// The cluster's root CA (with its key) and ID, from the leader's store.
pub fn cluster_root(store: &Store) -> Result<(RootCa, String)> {
    let cluster = store
        .view(|t| t.default_cluster().cloned())
        .context("no cluster object")?;
    let ca = cluster.root_ca.context("cluster without root CA")?;
    let cert = String::from_utf8(ca.ca_cert).context("root CA certificate")?;
    let key = String::from_utf8(ca.ca_key).context("root CA key")?;
    Ok((RootCa::from_pem(&cert, Some(&key))?, cluster.id))
}

/// The manager join token, from the leader's store.
pub fn manager_token(store: &Store) -> Result<String> {
    store
        .view(|t| t.default_cluster().cloned())
        .and_then(|c| c.root_ca?.join_tokens)
        .map(|t| t.manager)
        .context("no manager join token")
}

/// Sets the agents' heartbeat period and drains every manager, in one write on `leader`.
/// The managers write their own node objects while they start (certificate, status), so the
/// write may find one changed since it was read: it is then read again and retried.
pub async fn settle_cluster(leader: &Manager, heartbeat_ms: i64) -> Result<()> {
    let mut attempt = 0;
    loop {
        let txn = leader.store.view(|t| settle_txn(t, heartbeat_ms));
        match leader.raft.propose(txn.into_batch()).await {
            Ok(_) => return Ok(()),
            Err(WriteError::Refused(_)) if attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                return Err(e).context("writing the heartbeat period and draining the managers")
            }
        }
    }
}

fn settle_txn(t: &Tables, heartbeat_ms: i64) -> Txn {
    let mut txn = Txn::new();
    if let Some(mut c) = t.default_cluster().cloned() {
        if let Some(d) = c.spec.as_mut().and_then(|s| s.dispatcher.as_mut()) {
            d.heartbeat_period_ms = heartbeat_ms;
        }
        txn = txn.update(c);
    }
    for n in t
        .nodes
        .iter()
        .filter(|n| n.role == NodeRole::Manager as i32)
    {
        let mut n = n.clone();
        if let Some(s) = n.spec.as_mut() {
            s.availability = NodeAvailability::Drain as i32;
        }
        txn = txn.update(n);
    }
    txn
}

/// A simulated node: its ID and credentials, before its agent starts.
pub struct SimNode {
    pub node_id: String,
    pub hostname: String,
    pub creds: LiveCredentials,
}

/// Issues `count` worker certificates and records their nodes in the store, in batches.
pub async fn register_nodes(
    root: &RootCa,
    cluster_id: &str,
    leader: &RaftNode,
    count: usize,
) -> Result<Vec<SimNode>> {
    let mut nodes = Vec::with_capacity(count);
    for i in 0..count {
        let node_id = ids::new_id();
        let creds = issue(root, &node_id, NodeRole::Worker, cluster_id)?;
        nodes.push(SimNode {
            node_id,
            hostname: format!("sim-{i:05}"),
            creds,
        });
    }
    for chunk in nodes.chunks(NODE_BATCH) {
        let mut txn = Txn::new();
        for n in chunk {
            let cert = n.creds.current().cert_pem;
            let record = swarm_manager::objects::issued_by_root(
                root,
                NodeRole::Worker,
                &cert,
                now_ms() + CERT_EXPIRY_MS,
            )?;
            txn = txn.create(swarm_manager::objects::joined_node(
                &n.node_id,
                &n.hostname,
                NodeRole::Worker,
                "",
                record,
            ));
        }
        leader
            .propose(txn.into_batch())
            .await
            .context("writing nodes")?;
    }
    Ok(nodes)
}

/// Starts the node's agent with the sim executor on the current runtime. Its tasks (session,
/// worker, reporter, TLS connections) live on that runtime, so shutting the runtime down is
/// how the bench makes nodes vanish without a goodbye.
pub fn start_agent(
    node: &SimNode,
    managers: Vec<String>,
    state_dir: PathBuf,
    sim_start_delay: Duration,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let agent = Agent::new(AgentConfig {
        state_dir,
        hostname: node.hostname.clone(),
        managers,
        connect: swarm_node::agent_connect(node.creds.clone()),
        executor: ExecutorKind::Sim {
            start_delay: sim_start_delay,
        },
        // Nothing dials an agent in this cluster; the address is only recorded.
        advertise_addr: "127.0.0.1:0".into(),
    })?;
    let id = node.node_id.clone();
    // The bench's runtimes own these: they are dropped with them.
    #[allow(clippy::disallowed_methods)]
    Ok(tokio::spawn(async move {
        if let Err(e) = agent.run(shutdown).await {
            eprintln!("agent {id}: {e}");
        }
    }))
}
