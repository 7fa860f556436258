//! The manager: everything that decides. It serves the control API (operators), the
//! dispatcher (agents), the log broker and the CA (joining nodes), and while this manager leads, runs the
//! leader-only components: orchestrator, allocator, scheduler, and the dispatcher's node
//! health checks.
//!
//! Components meet only in the store: each reads a consistent view, consumes the watch stream,
//! and writes back by proposing transactions through a [`Proposer`] (Raft in production). No
//! component calls another. The manager never runs tasks (that is the agent's job) and never
//! touches Raft's log directly.

pub mod allocator;
mod allocator_networks;
pub mod allocator_ports;
mod ca_rotation;
pub mod ca_server;
mod ca_signer;
mod component_loop;
pub mod control;
pub mod dispatcher;
mod errors;
pub mod leader;
pub mod logbroker;
pub mod members;
pub mod metrics;
pub mod objects;
pub mod orchestrator;
pub mod proposer;
pub mod route;
pub mod scheduler;

pub use leader::{run_leader_components, LeaderConfig};
pub use members::ManagerDialer;
pub use metrics::ManagerMetrics;
pub use proposer::{Proposer, WriteError};
pub use route::{AlwaysLeader, LeaderRoute};
