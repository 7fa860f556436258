//! The agent: the worker side of a node, which runs the tasks a manager assigns to it.
//!
//! It keeps a session with a manager's dispatcher (`session`), reconciles the assigned tasks
//! with what runs here (`worker`, one `runner` per task), runs them through an executor
//! (`executor`), reports their states back (`reporter`), and sends their output to the
//! managers' log broker when asked (`logs`). It owns `<state_dir>/worker/` and
//! must never touch the cluster store: everything it learns and says goes through the
//! dispatcher API.

mod delivered;
mod description;
pub mod executor;
mod logs;
pub mod network;
mod reporter;
mod runner;
mod session;
mod templates;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};
pub use tokio_util::sync::CancellationToken;

use crate::executor::process::ProcessExecutor;
use crate::executor::sim::SimExecutor;
use crate::executor::Executor;

/// Builds a channel (mTLS in production, plaintext in tests) to a manager's remote API address.
pub type ConnectFn = Arc<
    dyn Fn(String) -> BoxFuture<'static, Result<tonic::transport::Channel, String>> + Send + Sync,
>;

/// How long a stopping agent keeps trying to deliver the last task states.
const FINAL_REPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// Which executor runs this node's tasks.
#[derive(Clone)]
pub enum ExecutorKind {
    /// Child process groups (DESIGN §6 `process`); the node ID names the node's directory
    /// for secret files on the tmpfs.
    Process { node_id: String },
    /// No work: tasks reach RUNNING after `start_delay` (DESIGN §6 `sim`).
    Sim { start_delay: Duration },
    /// Containers on a Docker engine; connected (and the engine checked) by the node.
    Docker(Arc<executor::docker::DockerExecutor>),
}

impl std::fmt::Debug for ExecutorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecutorKind::Process { node_id } => {
                f.debug_struct("Process").field("node_id", node_id).finish()
            }
            ExecutorKind::Sim { start_delay } => f
                .debug_struct("Sim")
                .field("start_delay", start_delay)
                .finish(),
            ExecutorKind::Docker(_) => f.write_str("Docker"),
        }
    }
}

/// Everything the agent needs from the node.
#[derive(Clone)]
pub struct AgentConfig {
    /// The node's state directory; the agent owns `<state_dir>/worker/`.
    pub state_dir: PathBuf,
    pub hostname: String,
    /// Manager remote API addresses (host:port) to try, in order; managers' own lists are
    /// added once a session is open.
    pub managers: Vec<String>,
    pub connect: ConnectFn,
    pub executor: ExecutorKind,
    /// The address the node tells managers it is reachable at.
    pub advertise_addr: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("no manager address to connect to")]
    NoManagers,
    #[error("creating {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("agent {component} task failed: {reason}")]
    Component {
        component: &'static str,
        reason: String,
    },
}

/// A node's worker side; `run` it until the node stops.
pub struct Agent {
    cfg: AgentConfig,
    executor: Arc<dyn Executor>,
    /// The node as the managers last described it (role, spec), from session messages.
    node: watch::Sender<Option<swarm_api::Node>>,
    /// The managers' network view of this node, for the data plane.
    networks: watch::Sender<Option<swarm_api::NetworksMessage>>,
    /// The data plane's loop (not for sim), run by `run` as a task of `plane_owner`, which
    /// stops and awaits it once the worker is done.
    plane: Option<BoxFuture<'static, ()>>,
    plane_owner: swarm_tasks::TaskOwner,
}

impl Agent {
    pub fn new(cfg: AgentConfig) -> Result<Agent, AgentError> {
        if cfg.managers.is_empty() {
            return Err(AgentError::NoManagers);
        }
        let worker_dir = cfg.state_dir.join("worker");
        std::fs::create_dir_all(&worker_dir).map_err(|source| AgentError::StateDir {
            path: worker_dir.clone(),
            source,
        })?;
        let networks = watch::channel(None).0;
        let mut plane = None;
        let plane_owner = swarm_tasks::TaskOwner::new();
        // The data plane, for the executors that run real work (not sim).
        let mut new_plane = |node_id: &str| {
            let (net, run) = network::start(
                node_id.to_string(),
                worker_dir.clone(),
                networks.subscribe(),
                plane_owner.token().clone(),
            );
            plane = Some(Box::pin(run) as BoxFuture<'static, ()>);
            net
        };
        let executor: Arc<dyn Executor> = match &cfg.executor {
            ExecutorKind::Process { node_id } => {
                let net = new_plane(node_id);
                Arc::new(ProcessExecutor::new(&worker_dir, node_id, Some(net)))
            }
            ExecutorKind::Sim { start_delay } => Arc::new(SimExecutor::new(*start_delay)),
            ExecutorKind::Docker(e) => {
                e.use_network(new_plane(e.node_id()));
                e.clone()
            }
        };
        Ok(Agent {
            cfg,
            executor,
            node: watch::channel(None).0,
            networks,
            plane,
            plane_owner,
        })
    }

    /// Follows the node's object as the managers send it: how a node learns it was promoted
    /// or demoted.
    pub fn node_updates(&self) -> watch::Receiver<Option<swarm_api::Node>> {
        self.node.subscribe()
    }

    /// Runs until `shutdown` fires, reconnecting with backoff and failing over across
    /// managers. On shutdown every task is stopped (within its stop grace period) and its
    /// last state offered to the manager before this returns.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AgentError> {
        let host = description::host(&self.cfg.hostname);
        let description = match self.executor.describe(host.clone()).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "executor could not describe the node");
                host
            }
        };
        let node_description = description.clone();
        let (status_tx, status_rx) = mpsc::unbounded_channel();
        let (assign_tx, assign_rx) = mpsc::unbounded_channel();
        let (link_tx, link_rx) = watch::channel(None);
        if let Some(run) = self.plane {
            self.plane_owner.spawn(run);
        }
        // The session outlives the worker so the tasks' final states can still be sent.
        let session_stop = CancellationToken::new();

        // Owned by `run`: before it returns it awaits the worker and session and aborts the
        // reporter and the log streams.
        #[allow(clippy::disallowed_methods)]
        let logs = tokio::spawn(logs::run(
            self.executor.clone(),
            link_tx.subscribe(),
            session_stop.clone(),
        ));
        #[allow(clippy::disallowed_methods)]
        let session = tokio::spawn(session::run(
            session::SessionConfig {
                managers: self.cfg.managers.clone(),
                connect: self.cfg.connect.clone(),
                description,
                advertise_addr: self.cfg.advertise_addr.clone(),
                node: self.node.clone(),
                networks: self.networks.clone(),
            },
            assign_tx,
            link_tx,
            session_stop.clone(),
        ));
        #[allow(clippy::disallowed_methods)]
        let mut reporter = tokio::spawn(reporter::run(status_rx, link_rx));
        #[allow(clippy::disallowed_methods)]
        let worker = tokio::spawn(
            worker::Worker::new(self.executor.clone(), status_tx, node_description)
                .run(assign_rx, shutdown),
        );

        let worker_result = worker.await;
        // The tasks that used the data plane are done: stop it and wait for it.
        self.plane_owner.stop().await;
        // All status senders are gone now: the reporter ends once it has sent what is left.
        if tokio::time::timeout(FINAL_REPORT_TIMEOUT, &mut reporter)
            .await
            .is_err()
        {
            tracing::warn!("gave up delivering the last task states");
            reporter.abort();
        }
        session_stop.cancel();
        let session_result = session.await;
        // Log streams are best effort: one still open is cut, not awaited.
        logs.abort();
        worker_result.map_err(|e| AgentError::Component {
            component: "worker",
            reason: e.to_string(),
        })?;
        session_result.map_err(|e| AgentError::Component {
            component: "session",
            reason: e.to_string(),
        })?;
        Ok(())
    }
}
