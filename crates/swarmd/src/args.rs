//! Command-line flags of `swarmd` (defaults are SwarmKit's, DESIGN.md §4).

use anyhow::{bail, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;
use swarm_api::defaults;
use swarm_node::{ControlSocket, ExecutorChoice, Join, NetworkDefaults, NodeConfig, RaftTiming};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorArg {
    /// `docker` when the engine at `--engine-addr` answers at start-up, else `process`.
    Auto,
    Process,
    Sim,
    Docker,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "swarmd",
    version,
    about = "Run a swarm node (manager or worker)",
    // The node's flags and a subcommand never mix: `swarmd -d X inspect-state` would be ambiguous.
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// Without a subcommand, swarmd runs the node.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// State directory: certificates, Raft log and snapshots, worker state.
    #[arg(short = 'd', long = "state-dir", default_value = defaults::STATE_DIR)]
    pub state_dir: PathBuf,
    /// Unix socket for the control API (managers only) [default: /var/run/swarmd.sock, used
    /// only while no other process serves it: a node promoted later never takes over another
    /// swarmd's socket, and runs without one instead].
    #[arg(long = "listen-control-api")]
    pub listen_control_api: Option<PathBuf>,
    /// Unix socket for the Docker Engine API's swarm subset (managers only; off unless given),
    /// for `docker -H unix://PATH node ls`, `service create`...
    #[arg(long = "listen-docker-api")]
    pub listen_docker_api: Option<PathBuf>,
    /// Address of the mutual-TLS remote API (managers only).
    #[arg(long = "listen-remote-api", default_value = defaults::REMOTE_API_ADDR)]
    pub listen_remote_api: String,
    /// Address other nodes use to reach this manager (default: the listen address, with an
    /// unspecified host replaced by 127.0.0.1).
    #[arg(long = "advertise-remote-api")]
    pub advertise_remote_api: Option<String>,
    /// A manager's remote API address to join.
    #[arg(long = "join-addr")]
    pub join_addr: Option<String>,
    /// Join token (see `swarmctl cluster inspect default`).
    #[arg(long = "join-token", env = "SWARM_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    /// Node name (default: the machine's hostname).
    #[arg(long)]
    pub hostname: Option<String>,
    /// What runs tasks: docker containers, local processes, or a simulation (tests).
    #[arg(long, value_enum, default_value = "auto")]
    pub executor: ExecutorArg,
    /// Docker engine API address (docker executor): unix:///path or tcp://host:port.
    #[arg(long = "engine-addr", default_value = swarm_node::DEFAULT_ENGINE_ADDR)]
    pub engine_addr: String,
    /// Milliseconds a simulated task takes to start (sim executor).
    #[arg(long = "sim-start-delay-ms", default_value_t = 100, hide = true)]
    pub sim_start_delay_ms: u64,
    /// Log filter (error, warn, info, debug, trace, or a tracing filter).
    #[arg(long = "log-level", default_value = "info")]
    pub log_level: String,
    /// Raft heartbeat interval, in ticks.
    #[arg(long = "heartbeat-tick", default_value_t = defaults::HEARTBEAT_TICK)]
    pub heartbeat_tick: u32,
    /// Raft election timeout, in ticks.
    #[arg(long = "election-tick", default_value_t = defaults::ELECTION_TICK)]
    pub election_tick: u32,
    /// Restart this manager as the only member of a new Raft group, keeping the cluster's
    /// state: for when a majority of managers is lost for good.
    #[arg(long = "force-new-cluster")]
    pub force_new_cluster: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (off by default).
    #[arg(long = "listen-metrics", value_name = "ADDR")]
    pub listen_metrics: Option<String>,
    /// Serve the live web view of nodes and tasks at http://ADDR/ (managers only; off by
    /// default; a loopback address unless --listen-web-public).
    #[arg(long = "listen-web", value_name = "ADDR")]
    pub listen_web: Option<String>,
    /// Allow --listen-web on a non-loopback address: the page has no authentication.
    #[arg(long = "listen-web-public")]
    pub listen_web_public: bool,
    /// Length of one Raft tick in milliseconds.
    // Why not SwarmKit's 1000: SwarmKit's users expect a lost leader to be replaced within
    // its 10-20 s, and we aim for a couple of seconds. openraft 0.9's followers wait for
    // 1.5-2 election timeouts (lease plus randomised wait, `swarm_raft::RaftConfig`) before
    // campaigning, so the tick sets the failover time: 100 ms ticks (1 s election timeout,
    // heartbeats every 100 ms) measured 1.8 s median, 2.0 s max from SIGKILL to the next
    // accepted write (docs/benchmarks.md), where 250 ms ticks measured 8.6 s under the former
    // lease and 1 s ticks 33 s.
    // Heartbeats every 100 ms cost little; the multi-process tests have used them from the
    // start without spurious elections. Many managers on few cores (the in-process test
    // cluster, swarm-bench) keep 250 ms.
    #[arg(long = "tick-ms", default_value_t = 100)]
    pub tick_ms: u64,
    /// Unlock key of an autolocked manager (see `swarmctl cluster unlock-key`); without it a
    /// locked manager waits for `swarmctl cluster unlock`.
    #[arg(long = "unlock-key", env = "SWARM_UNLOCK_KEY", hide_env_values = true)]
    pub unlock_key: Option<String>,
    /// Test only: renew the node certificate this many ms after start instead of at its
    /// renewal point (50-80 % of its life), to exercise renewal without waiting.
    #[arg(long = "cert-renew-after-ms", hide = true)]
    pub cert_renew_after_ms: Option<u64>,
    /// Where networks without --subnet draw their subnets from (repeatable; bootstrap only).
    #[arg(long = "default-addr-pool", value_name = "CIDR", default_value = defaults::ADDRESS_POOL)]
    pub default_addr_pool: Vec<String>,
    /// Prefix length of the subnets carved from the default address pool (bootstrap only).
    #[arg(long = "default-addr-pool-mask-length", value_name = "N", default_value_t = defaults::SUBNET_SIZE)]
    pub default_addr_pool_mask_length: u32,
    /// UDP port of the VXLAN traffic between nodes (bootstrap only).
    #[arg(long = "data-path-port", value_name = "PORT", default_value_t = defaults::DATA_PATH_PORT)]
    pub data_path_port: u32,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Offline: print the Raft membership, log positions and the objects of a stopped manager's
    /// state dir.
    InspectState(crate::inspect::InspectArgs),
}

impl Args {
    /// The node these flags describe; every setting checked (errors name the flag).
    pub fn into_config(self) -> Result<NodeConfig> {
        let join = match (self.join_addr, self.join_token) {
            (Some(addr), Some(token)) => Some(Join { addr, token }),
            (None, None) => None,
            _ => bail!("--join-addr and --join-token go together"),
        };
        let cfg = NodeConfig {
            state_dir: self.state_dir,
            control_socket: match self.listen_control_api {
                Some(path) => ControlSocket::At(path),
                None => ControlSocket::Default(defaults::CONTROL_SOCKET.into()),
            },
            docker_socket: self.listen_docker_api,
            remote_api: self.listen_remote_api,
            advertise_addr: self.advertise_remote_api,
            join,
            hostname: self.hostname,
            executor: match self.executor {
                ExecutorArg::Auto => ExecutorChoice::Auto,
                ExecutorArg::Process => ExecutorChoice::Process,
                ExecutorArg::Sim => ExecutorChoice::Sim,
                ExecutorArg::Docker => ExecutorChoice::Docker,
            },
            engine_addr: self.engine_addr,
            sim_start_delay: Duration::from_millis(self.sim_start_delay_ms),
            raft: RaftTiming {
                tick_ms: self.tick_ms,
                heartbeat_tick: self.heartbeat_tick,
                election_tick: self.election_tick,
            },
            force_new_cluster: self.force_new_cluster,
            metrics_addr: self.listen_metrics,
            web_addr: self.listen_web,
            web_public: self.listen_web_public,
            unlock_key: self.unlock_key,
            cert_renew_after: self.cert_renew_after_ms.map(Duration::from_millis),
            network: NetworkDefaults {
                address_pool: self.default_addr_pool,
                subnet_size: self.default_addr_pool_mask_length,
                data_path_port: self.data_path_port,
            },
        };
        cfg.validate()?;
        Ok(cfg)
    }
}
