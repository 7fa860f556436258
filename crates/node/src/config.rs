//! What a node is asked to be: [`NodeConfig`], plain values with no command-line types (the
//! `swarmd` binary maps its flags onto it; tests and the bench fill it in directly), and the
//! [`Listeners`] a caller may hand in instead of addresses to bind.
//!
//! Errors name the setting by its `swarmd` flag, which is how operators know it.

use crate::error::{NodeError, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use swarm_api::defaults;

/// What runs the node's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorChoice {
    /// Docker when the engine at `engine_addr` answers at start-up, else processes.
    Auto,
    Process,
    Sim,
    Docker,
}

/// Where a manager role serves the control API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlSocket {
    /// Asked for (`--listen-control-api`): a manager role that cannot bind it fails.
    At(PathBuf),
    /// Not asked for: this default path, bound by a manager role only when no live process
    /// serves it; otherwise the role runs without a control socket, since the path may belong
    /// to another swarmd on the host (a worker promoted later must not fail, or take it).
    Default(PathBuf),
}

impl ControlSocket {
    pub fn path(&self) -> &Path {
        match self {
            ControlSocket::At(p) | ControlSocket::Default(p) => p,
        }
    }
}

/// A manager to join and the token to present.
#[derive(Debug, Clone)]
pub struct Join {
    pub addr: String,
    pub token: String,
}

/// Raft's timing (DESIGN.md §4).
#[derive(Debug, Clone, Copy)]
pub struct RaftTiming {
    /// Length of one tick.
    pub tick_ms: u64,
    pub heartbeat_tick: u32,
    pub election_tick: u32,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            // Why not SwarmKit's 1000: see swarmd's `--tick-ms`.
            tick_ms: 100,
            heartbeat_tick: defaults::HEARTBEAT_TICK,
            election_tick: defaults::ELECTION_TICK,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Certificates, Raft log and snapshots, worker state.
    pub state_dir: PathBuf,
    /// The control API's unix socket (managers only).
    pub control_socket: ControlSocket,
    /// The Docker Engine API subset's unix socket (managers only; off when None).
    pub docker_socket: Option<PathBuf>,
    /// Address of the mutual-TLS remote API (managers only), unless a listener is handed in.
    pub remote_api: String,
    /// Address other nodes use to reach this manager (default: the listening address, with an
    /// unspecified host replaced by 127.0.0.1).
    pub advertise_addr: Option<String>,
    pub join: Option<Join>,
    /// Node name (default: the machine's hostname).
    pub hostname: Option<String>,
    pub executor: ExecutorChoice,
    /// Docker engine API address: unix:///path or tcp://host:port.
    pub engine_addr: String,
    /// How long a simulated task takes to start (sim executor).
    pub sim_start_delay: Duration,
    pub raft: RaftTiming,
    /// Restart this manager as the only member of a new Raft group, keeping the state.
    pub force_new_cluster: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    pub metrics_addr: Option<String>,
    /// Serve the web view at http://ADDR/ (managers only).
    pub web_addr: Option<String>,
    /// Allow `web_addr` on a non-loopback address (the page has no authentication).
    pub web_public: bool,
    /// Unlock key of an autolocked manager.
    pub unlock_key: Option<String>,
    /// Test only: renew the certificate this long after start instead of at its renewal point.
    pub cert_renew_after: Option<Duration>,
    /// A new cluster's address pool and VXLAN port (bootstrap only; a joining node takes the
    /// cluster's).
    pub network: swarm_manager::objects::NetworkDefaults,
}

impl NodeConfig {
    /// A node with SwarmKit's defaults, keeping its state in `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            state_dir: state_dir.into(),
            control_socket: ControlSocket::Default(defaults::CONTROL_SOCKET.into()),
            docker_socket: None,
            remote_api: defaults::REMOTE_API_ADDR.into(),
            advertise_addr: None,
            join: None,
            hostname: None,
            executor: ExecutorChoice::Auto,
            engine_addr: swarm_agent::executor::docker::DEFAULT_ENGINE_ADDR.into(),
            sim_start_delay: Duration::from_millis(100),
            raft: RaftTiming::default(),
            force_new_cluster: false,
            metrics_addr: None,
            web_addr: None,
            web_public: false,
            unlock_key: None,
            cert_renew_after: None,
            network: Default::default(),
        }
    }

    /// Checks every setting; the error names the first unusable one and why.
    pub fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(NodeError::Invalid(m));
        if let Err(m) = self.network.validate() {
            return invalid(m);
        }
        if self.remote_api.parse::<SocketAddr>().is_err() {
            return invalid(format!(
                "--listen-remote-api: {:?} is not an IP:port address",
                self.remote_api
            ));
        }
        if let Some(a) = &self.metrics_addr {
            if a.parse::<SocketAddr>().is_err() {
                return invalid(format!("--listen-metrics: {a:?} is not an IP:port address"));
            }
        }
        if let Some(a) = &self.web_addr {
            match a.parse::<SocketAddr>() {
                Err(_) => return invalid(format!("--listen-web: {a:?} is not an IP:port address")),
                Ok(addr) if !addr.ip().is_loopback() && !self.web_public => {
                    return invalid(format!(
                        "--listen-web: {a} is not a loopback address; the page has no \
                         authentication (add --listen-web-public to serve it there anyway)"
                    ))
                }
                Ok(_) => {}
            }
        }
        let t = self.raft;
        if t.heartbeat_tick == 0 || t.election_tick <= t.heartbeat_tick {
            return invalid(
                "--election-tick must be greater than --heartbeat-tick, and both above 0".into(),
            );
        }
        if self.docker_socket.as_deref() == Some(self.control_socket.path()) {
            return invalid("--listen-docker-api must differ from --listen-control-api".into());
        }
        if t.tick_ms == 0 {
            return invalid("--tick-ms must be above 0".into());
        }
        if let Some(h) = &self.hostname {
            swarm_api::validate::validate_name("hostname", h)
                .map_err(|e| NodeError::Invalid(e.to_string()))?;
        }
        Ok(())
    }

    /// The node's name: as configured, else the machine's hostname.
    pub fn hostname(&self) -> String {
        self.hostname.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "localhost".into())
        })
    }

    /// The address other nodes dial for this manager.
    pub fn advertise_addr(&self) -> String {
        if let Some(a) = &self.advertise_addr {
            return a.clone();
        }
        match self.remote_api.parse::<SocketAddr>() {
            Ok(a) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
            _ => self.remote_api.clone(),
        }
    }
}

/// What a caller hands to the node instead of letting it make its own: sockets it bound
/// itself (tests and the bench bind `127.0.0.1:0`, so nodes never race for ports), and in
/// tests a filter on its Raft links.
#[derive(Default)]
pub struct Listeners {
    /// Serves the remote API in every manager role of this node; `remote_api` is then set to
    /// its address.
    pub remote_api: Option<std::net::TcpListener>,
    /// Tests only: cuts or slows this node's Raft calls to other managers.
    pub peer_filter: Option<std::sync::Arc<dyn crate::peers::PeerFilter>>,
}
