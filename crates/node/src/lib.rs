//! `swarm-node`: everything that turns a [`NodeConfig`] into a running swarm node — its
//! identity and certificates (bootstrap a cluster, join one with a token, or load them from
//! the state dir), autolock's keys, the manager role (Raft, store, servers, leader components)
//! and the agent, role changes and certificate renewal, the metrics endpoint.
//!
//! This is the composition root: the crates below own the pieces (`manager` decides, `raft`
//! replicates, `agent` runs tasks, `ca` signs and speaks TLS); this crate only wires them and
//! owns their lifetimes: every task it starts belongs to a [`swarm_tasks::TaskOwner`] of the
//! node or of one role, and ends with it. It must not hold cluster logic of its own, nor parse
//! command lines (the `swarmd` binary does, and fills a `NodeConfig`).
//!
//! [`start`] runs a node in the background and hands back a [`RunningNode`] to stop it and
//! watch what it is; [`run`] runs one until a token is cancelled.

mod auth;
mod autolock;
mod bootstrap;
mod ca_client;
mod config;
mod error;
mod force_new;
mod health;
mod http;
mod identity;
mod incarnation;
mod info;
mod lifecycle;
mod lock;
mod manager_role;
mod membership;
mod metrics_http;
mod peers;
mod renewal;
mod role;
mod role_env;
mod role_watch;
mod serving;
mod sockets;
mod web;

pub use autolock::read_data_key;
pub use config::{ControlSocket, ExecutorChoice, Join, Listeners, NodeConfig, RaftTiming};
pub use error::{one_line, NodeError, Result};
pub use info::{ManagerHandle, NodeInfo};
pub use peers::{agent_connect, PeerFilter, PeerVerdict};
/// Where the Docker executor finds the engine unless told otherwise.
pub use swarm_agent::executor::docker::DEFAULT_ENGINE_ADDR;
pub use swarm_manager::objects::NetworkDefaults;

use swarm_tasks::TaskOwner;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A node running in the background ([`start`]).
pub struct RunningNode {
    /// Owns the node's task; stopping it stops the node.
    owner: TaskOwner,
    info: watch::Receiver<Option<NodeInfo>>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl RunningNode {
    /// What the node is now; None until it has its identity.
    pub fn info(&self) -> watch::Receiver<Option<NodeInfo>> {
        self.info.clone()
    }

    /// Resolves once the node serves in its role ([`NodeInfo::serving`]), with what it is
    /// then; None if it stopped first.
    pub async fn up(&self) -> Option<NodeInfo> {
        let mut info = self.info.clone();
        loop {
            if let Some(i) = info.borrow_and_update().as_ref().filter(|i| i.serving()) {
                return Some(i.clone());
            }
            // Voting is Raft's state, not published on the watch: look again shortly too.
            tokio::select! {
                r = info.changed() => if r.is_err() { return None },
                _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            }
        }
    }

    /// Cancelling this token stops the node.
    pub fn stop_token(&self) -> CancellationToken {
        self.owner.token().clone()
    }

    /// Stops the node and waits until everything it started has ended.
    pub async fn stop(self) -> Result<()> {
        self.owner.token().cancel();
        self.wait().await
    }

    /// Waits until the node stops by itself (an error) or through its token.
    pub async fn wait(self) -> Result<()> {
        let res = match self.task.await {
            Ok(r) => r,
            Err(e) => Err(NodeError::Failed(format!("the node's task ended: {e}"))),
        };
        self.owner.stop().await;
        res
    }
}

/// Starts a node on the current runtime. Errors (a setting, a port in use, a refused join)
/// come out of [`RunningNode::wait`].
pub fn start(cfg: NodeConfig, listeners: Listeners) -> RunningNode {
    let owner = TaskOwner::new();
    let (tx, info) = watch::channel(None);
    let token = owner.token().clone();
    let task = owner.spawn(async move { run_publishing(cfg, listeners, token, tx).await });
    RunningNode { owner, info, task }
}

/// Runs a node until `shutdown` is cancelled (or it fails).
pub async fn run(cfg: NodeConfig, listeners: Listeners, shutdown: CancellationToken) -> Result<()> {
    run_publishing(cfg, listeners, shutdown, watch::channel(None).0).await
}

async fn run_publishing(
    mut cfg: NodeConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
    published: watch::Sender<Option<NodeInfo>>,
) -> Result<()> {
    if let Some(l) = &listeners.remote_api {
        cfg.remote_api = l.local_addr()?.to_string();
    }
    cfg.validate()?;
    std::fs::create_dir_all(&cfg.state_dir).map_err(|source| NodeError::Step {
        what: format!("state dir {}", cfg.state_dir.display()),
        source: Box::new(source),
    })?;
    let _lock = lock::StateDirLock::acquire(&cfg.state_dir)?;
    // The node's own tasks (metrics endpoint, the publisher below); each role has its own.
    let tasks = TaskOwner::with_token(shutdown.child_token());
    let res = run_owned(&cfg, &listeners, &shutdown, &tasks, published).await;
    tasks.stop().await;
    res
}

async fn run_owned(
    cfg: &NodeConfig,
    listeners: &Listeners,
    shutdown: &CancellationToken,
    tasks: &TaskOwner,
    published: watch::Sender<Option<NodeInfo>>,
) -> Result<()> {
    // A manager whose keys autolock sealed waits here for its unlock key.
    let Some(keys) = autolock::open(cfg, shutdown).await? else {
        return Ok(());
    };
    let env = role_env::RoleEnv {
        cfg,
        remote_listener: listeners.remote_api.as_ref(),
        info: &published,
        shutdown,
        // `remote_api` names the handed-in listener's address by now.
        advertise: cfg.advertise_addr(),
        peer_filter: listeners.peer_filter.clone(),
    };
    let node = identity::obtain(cfg, &env.advertise, &keys).await?;
    tracing::info!(node = %node.creds.node_id, role = ?node.creds.role, cluster = %node.creds.cluster_id, "node identity ready");
    // One registry for this node, for its whole life across role changes.
    let metrics = metrics_http::NodeMetrics::new();
    if let Some(addr) = &cfg.metrics_addr {
        metrics_http::serve(addr, metrics.clone(), tasks).await?;
    }
    let res = lifecycle::run_node(&env, node, keys, metrics).await;
    role::forget_manager(&published);
    res
}
