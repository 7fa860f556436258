//! The crate's error types: what callers of [`crate::RaftNode`] can see go wrong. openraft's
//! own errors are flattened into these so its types never cross the crate boundary.

pub use crate::at_rest::SealError;
pub use crate::codec::CodecError;

/// Failure of opening, bootstrapping, membership changes or shutdown.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error("invalid raft configuration: {0}")]
    Config(String),
    #[error("raft storage: {0}")]
    Storage(#[from] DiskError),
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
    /// openraft stopped (or failed to start); its error is kept as the source, boxed so that
    /// openraft's types stay inside this crate.
    #[error("raft is stopped or failed: {0}")]
    Fatal(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("raft unavailable: {0}")]
    Unavailable(String),
}

/// What failed reading or writing the Raft state on disk, with the failing call's own error
/// as the source; `context` says what was being done or to which file.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The redb log file (opening it, a transaction, a table).
    #[error("{context}: {source}")]
    Log {
        context: String,
        #[source]
        source: redb::Error,
    },
    #[error("{context}: {source}")]
    Codec {
        context: String,
        #[source]
        source: CodecError,
    },
    /// A snapshot's store content that does not decode.
    #[error("{context}: {source}")]
    Decode {
        context: String,
        #[source]
        source: prost::DecodeError,
    },
    /// Sealing or opening with a key, or getting random bytes for one.
    #[error("{context}: {source}")]
    Seal {
        context: String,
        #[source]
        source: SealError,
    },
    /// A blocking task that did the disk work panicked or was cancelled.
    #[error("{context}: {source}")]
    Task {
        context: String,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("encoding the report: {0}")]
    Report(#[source] serde_json::Error),
    /// The files are there but not what they should be; no lower error to keep, the message
    /// says what is wrong.
    #[error("{0}")]
    Invalid(String),
}

impl DiskError {
    pub(crate) fn io(context: impl std::fmt::Display, source: std::io::Error) -> DiskError {
        DiskError::Io {
            context: context.to_string(),
            source,
        }
    }

    pub(crate) fn log(
        context: impl std::fmt::Display,
        source: impl Into<redb::Error>,
    ) -> DiskError {
        DiskError::Log {
            context: context.to_string(),
            source: source.into(),
        }
    }
}

/// `map_err` for any redb call on the log file at `path` (each redb step has its own error
/// type, so a closure would not do).
pub(crate) fn log_err<E: Into<redb::Error>>(
    path: &std::path::Path,
) -> impl Fn(E) -> RaftError + '_ {
    move |e| DiskError::log(path.display(), e).into()
}
