//! How the manager writes: the store's write contract ([`Proposer`], [`WriteError`]),
//! implemented by Raft in production (tests without Raft use `swarm_testkit::MemoryProposer`).

pub use swarm_store::{ProposeFuture, Proposer, WriteError};
