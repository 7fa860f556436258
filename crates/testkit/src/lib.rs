//! `swarm-testkit`: the one test kit of the workspace (a dev-dependency, and of the bench
//! binaries: `scheduler-bench` times the scheduler on its in-memory proposer). It owns what
//! tests share so no test copies setup:
//! - [`fixtures`]: nodes, services and tasks as the store holds them, built in one line;
//! - [`MemoryProposer`]: writes straight into a store, for tests of components without Raft
//!   (and only for them: it is not part of any production crate);
//! - [`cluster`]: an in-process cluster of real `swarm-node` nodes (real TLS and Raft, sim
//!   agents) on loopback;
//! - [`process`]: the multi-process harness (the built `swarmd`/`swarmctl` binaries, test
//!   hosts in network namespaces).
//!
//! It must not be depended on by production code, and holds no assertions of its own beyond
//! "this fixture came up".
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod fixtures;
pub mod process;
mod proposer;

pub use proposer::MemoryProposer;
