//! Consensus for the manager's store: openraft with a durable redb log, snapshot files and a
//! gRPC peer transport, all kept under `<state_dir>/raft/`.
//!
//! This crate owns ordering and durability only. It hands committed [`swarm_api::StoreBatch`]es
//! to [`swarm_store::Store::apply_group`] in log order (several
//! concurrent proposals may share one entry: `group_commit`) and never looks inside them; interpreting store
//! contents belongs to the store and manager crates. openraft is walled in here: nothing of its
//! API leaks through the public types, so an upgrade stays local.
//!
//! Everything it writes that could reveal store contents (log entries, snapshots) is sealed
//! with this manager's data key; see `at_rest`.

mod at_rest;
mod codec;
mod config;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod group_commit;
mod inspect;
mod leadership;
mod log_file;
mod log_schema;
mod log_store;
mod network;
mod node;
mod quorum;
mod route;
mod service;
mod snapshot_file;
mod state_machine;
mod types;

pub use at_rest::{load_data_key, DataKey, KeyEncryptionKey, KEK_SEED_FILE};
pub use config::RaftConfig;
pub use error::{CodecError, DiskError, RaftError, SealError};
pub use inspect::{
    inspect, inspect_with_key, EntryKind, EntryReport, LogPos, Member, MembershipReport,
    SnapshotReport, StateReport, VoteReport,
};
pub use leadership::Leadership;
pub use log_file::TEAR_LOG_WRITE_ENV;
pub use network::{PeerConnectError, PeerConnector};
pub use node::{RaftNode, RaftStatus};
pub use route::RaftRoute;
pub use service::RaftGrpc;
/// A proposal's failure: the store's one write error (`RaftNode` implements its `Proposer`).
pub use swarm_store::WriteError;
