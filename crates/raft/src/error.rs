//! The crate's error types: what callers of [`crate::RaftNode`] can see go wrong. openraft's
//! own errors are flattened into these so its types never cross the crate boundary.

/// Failure of opening, bootstrapping, membership changes or shutdown.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error("invalid raft configuration: {0}")]
    Config(String),
    #[error("raft storage: {0}")]
    Storage(String),
    #[error("raft state in {0} was written by an unknown format version {1}")]
    Format(String, String),
    /// The Raft dir predates encryption at rest (or lost its data key); it cannot be read.
    #[error("state dir written by an older format; {0}")]
    OldFormat(String),
    #[error("this raft cluster is already initialized")]
    AlreadyInitialized,
    #[error("not the raft leader (leader: {leader_id:?} at {leader_addr:?})")]
    NotLeader {
        leader_id: Option<u64>,
        leader_addr: Option<String>,
    },
    #[error("membership change refused: {0}")]
    Membership(String),
    #[error("raft is stopped or failed: {0}")]
    Fatal(String),
    #[error("raft unavailable: {0}")]
    Unavailable(String),
}
