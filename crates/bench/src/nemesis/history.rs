//! The recorded history of a nemesis run: every client operation with the instants it was
//! invoked and completed and what came back, plus the faults injected. It is plain data,
//! (de)serialised as JSON so a run's history can be saved (`--out`) and checked again later
//! (`--check`). Owns the vocabulary only: it must not judge a history (that is `checker`) nor
//! talk to a cluster (that is the binary's driver).

use serde::{Deserialize, Serialize};

/// The value an object holds before any client wrote it (a node's label nobody set yet).
pub const INITIAL: &str = "";

/// What an operation asked for. `key` (on [`Op`]) names the object: `service/NAME`,
/// `secret/NAME` or `node/HOSTNAME`; the same key may name several incarnations (object IDs)
/// over time, when a removed name is created again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    /// Creates the object holding `value` (a service or secret label unique to this write).
    Create {
        value: String,
    },
    /// A compare-and-set: writes `value` only if the object's version is still `expected`.
    Update {
        expected: u64,
        value: String,
    },
    Remove,
    /// Reads the object through manager `via`; `via_leader` is whether that manager was the
    /// leader as far as the client knew (reads through followers are forwarded to the leader).
    /// `last` marks the reads taken after the final healing, one per manager: what a lost
    /// write would be missing from.
    Read {
        via: String,
        via_leader: bool,
        #[serde(default)]
        last: bool,
    },
}

impl OpKind {
    pub fn is_write(&self) -> bool {
        !matches!(self, OpKind::Read { .. })
    }

    /// The value this operation tries to write, if it writes one.
    pub fn written_value(&self) -> Option<&str> {
        match self {
            OpKind::Create { value } | OpKind::Update { value, .. } => Some(value),
            _ => None,
        }
    }
}

/// What an object looked like to an operation that succeeded: a create's or update's result,
/// or what a read found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The object's ID (its incarnation).
    pub id: String,
    /// `meta.version`: the Raft index of the write that produced this state.
    pub version: u64,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Acknowledged. `seen` is the object as written or read; `None` for a remove, and for a
    /// read that found no such object.
    Ok { seen: Option<Seen> },
    /// Definitely not applied: the manager refused it (version conflict, not found, already
    /// exists, invalid).
    Failed { reason: String },
    /// Unknown: a timeout, a lost connection, "unavailable" — it may or may not have committed.
    Indeterminate { reason: String },
}

/// One client operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The client that issued it (each client runs one operation at a time).
    pub process: usize,
    pub kind: OpKind,
    pub key: String,
    /// The object ID an update or remove was aimed at.
    #[serde(default)]
    pub target: Option<String>,
    /// Microseconds since the start of the run.
    pub invoke_us: u64,
    pub complete_us: u64,
    pub outcome: Outcome,
}

impl Op {
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Ok { .. })
    }

    pub fn is_indeterminate(&self) -> bool {
        matches!(self.outcome, Outcome::Indeterminate { .. })
    }

    /// What the operation observed or produced, when it succeeded and there was an object.
    pub fn seen(&self) -> Option<&Seen> {
        match &self.outcome {
            Outcome::Ok { seen } => seen.as_ref(),
            _ => None,
        }
    }

    /// The object ID this operation concerns: the one it produced or read, else its target.
    pub fn object_id(&self) -> Option<&str> {
        self.seen()
            .map(|s| s.id.as_str())
            .or(self.target.as_deref())
    }
}

/// One injected fault and how the cluster came back from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub kind: String,
    /// The manager(s) or link it hit, e.g. `m2` or `m1<-m3`.
    pub target: String,
    pub start_us: u64,
    pub healed_us: u64,
    /// Time from healing until the cluster converged; `None` when it did not within the bound.
    pub settle_ms: Option<u64>,
    /// What had not converged when the bound ran out.
    #[serde(default)]
    pub unconverged: Vec<String>,
}

/// A whole run as `--out` writes it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Recorded {
    pub seed: u64,
    pub managers: usize,
    pub workers: usize,
    pub faults: Vec<FaultRecord>,
    pub ops: Vec<Op>,
    pub wall_ms: u64,
}
