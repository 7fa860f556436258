//! swarm-bench's command line: the scenario and the cluster's size and timing.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use swarm_api::defaults;

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum Scenario {
    #[value(alias = "create")]
    Scale,
    Update,
    NodeLoss,
    Failover,
    /// After `create`: snapshot the leader's store, then add one more manager, which can only
    /// catch up from that snapshot (the log behind it is purged).
    Join,
}

#[derive(Parser, Debug)]
#[command(about = "A real cluster in one process (Raft, mTLS, sim agents), timed end to end")]
pub struct Args {
    #[arg(long, default_value_t = 1)]
    pub managers: usize,
    /// Simulated nodes, one agent each.
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// Tasks in total, split evenly over the services.
    #[arg(long, default_value_t = 10_000)]
    pub replicas: u64,
    #[arg(long, default_value_t = 1)]
    pub services: usize,
    #[arg(long, value_enum, default_value_t = Scenario::Scale)]
    pub scenario: Scenario,
    /// The dispatcher's heartbeat period in the cluster object (SwarmKit default 5 s).
    #[arg(long = "heartbeat-ms", default_value_t = defaults::HEARTBEAT_PERIOD_MS)]
    pub heartbeat_ms: i64,
    /// The sim executor's delay before a task is RUNNING.
    #[arg(long = "sim-start-delay-ms", default_value_t = 0)]
    pub sim_start_delay_ms: u64,
    /// Worker threads of the manager runtime and of the agents' runtime.
    #[arg(long = "manager-threads", default_value_t = 2)]
    pub manager_threads: usize,
    #[arg(long = "agent-threads", default_value_t = 2)]
    pub agent_threads: usize,
    /// Give up on a phase after this long.
    #[arg(long = "timeout-secs", default_value_t = 600)]
    pub timeout_secs: u64,
    /// Raft tick of the managers (swarmd's default; elections take 10–20 ticks).
    #[arg(long = "tick-ms", default_value_t = 250)]
    pub tick_ms: u64,
    /// Also write the results as JSON here, and the plot next to it (same name, `.svg`).
    #[arg(long = "out", alias = "json")]
    pub out: Option<PathBuf>,
    /// Run the simulated agents in child processes, so this process's peak RSS is the
    /// managers' alone (node-loss then SIGKILLs the process holding the lost nodes).
    #[arg(long = "agents-process")]
    pub agents_process: bool,
}
