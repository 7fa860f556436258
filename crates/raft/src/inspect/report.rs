//! The shape of what `inspect` finds: plain, serializable report types, no logic beyond
//! encoding the whole report as JSON.
//!
//! Owns the public report types (re-exported at the crate root). Must not read files or
//! replay anything: `log_reader`, `snapshot_reader` and `replay` fill these in.

use std::path::PathBuf;

use serde::Serialize;
use swarm_api::{StoreBatch, StoreSnapshot};

use crate::error::{DiskError, RaftError};

/// A log position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LogPos {
    pub term: u64,
    pub index: u64,
}

/// One member of the Raft group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub raft_id: u64,
    pub addr: String,
}

/// A membership configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MembershipReport {
    /// Index of the log entry that set it (`None`: never set).
    pub log_index: Option<u64>,
    pub voters: Vec<Member>,
    pub learners: Vec<Member>,
    /// True while a membership change is half done (two voter sets must both agree).
    pub joint: bool,
}

/// The persisted vote: the term this member is in and whom it voted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VoteReport {
    pub term: u64,
    pub voted_for: Option<u64>,
    /// The vote was granted by a quorum: `voted_for` was the leader of `term`.
    pub committed: bool,
}

/// The newest readable snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotReport {
    pub file: PathBuf,
    pub id: String,
    pub last: Option<LogPos>,
    pub membership: MembershipReport,
    pub objects: StoreSnapshot,
}

/// What one log entry carries.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryKind {
    /// Written by each new leader to commit its term.
    Blank,
    /// Store transactions: one, or a group committed together.
    Normal {
        batches: Vec<StoreBatch>,
    },
    Membership {
        membership: MembershipReport,
    },
    /// The stored bytes do not decode; replay stops before it.
    Unreadable {
        error: String,
    },
}

/// One log entry after the snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct EntryReport {
    pub index: u64,
    pub term: u64,
    /// At or below the persisted commit index.
    pub committed: bool,
    #[serde(flatten)]
    pub kind: EntryKind,
    /// Why the store refused this transaction during replay (it was refused at runtime too).
    pub refused: Option<String>,
}

/// Everything `inspect` found.
#[derive(Debug, Clone, Serialize)]
pub struct StateReport {
    pub raft_dir: PathBuf,
    pub vote: Option<VoteReport>,
    /// The latest membership: from the newest membership entry in the log, else the snapshot.
    pub membership: MembershipReport,
    /// First and last index the log holds (either may be covered by the snapshot).
    pub first_log_index: Option<u64>,
    pub last_log_index: Option<u64>,
    pub committed: Option<LogPos>,
    pub last_purged: Option<LogPos>,
    pub snapshot: Option<SnapshotReport>,
    /// Entries after the snapshot, in order.
    pub entries: Vec<EntryReport>,
    /// Last entry replayed into `current`.
    pub applied: Option<LogPos>,
    /// The store after the snapshot and the committed entries: the cluster's current objects.
    pub current: StoreSnapshot,
    /// Things an operator should know (unreadable snapshot files, holes in the log, ...).
    pub warnings: Vec<String>,
    /// The log was not closed cleanly and was read from a repaired private copy.
    pub log_repaired: bool,
}

impl StateReport {
    /// The whole report as pretty-printed JSON (callers redact secrets first).
    pub fn to_json(&self) -> Result<String, RaftError> {
        serde_json::to_string_pretty(self).map_err(|e| DiskError::Report(e).into())
    }
}
