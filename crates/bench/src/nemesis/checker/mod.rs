//! The linearizability checker of a recorded history (see `history`). Each object is a
//! versioned register: the store stamps every write with the Raft index that committed it
//! (`meta.version`), so the acknowledged writes of one object are totally ordered by their
//! versions and the check needs no search over orderings — every rule below is a sort or a
//! lookup, polynomial in the history's length. The rules, per object key:
//!
//! - an acknowledged version belongs to one write and one value (versions are never reused);
//! - real-time order: an operation invoked after another completed sees a version at least as
//!   new (reads) or strictly newer (writes);
//! - a read sees a value some create or update wrote (acknowledged, or indeterminate and
//!   invoked before the read completed), never one the manager refused, and a value once
//!   overwritten never comes back, nor shows at a version older than the write that made it;
//! - a compare-and-set that succeeded found exactly the version it expected: nothing was seen
//!   between its expected and its resulting version;
//! - an object acknowledged as created exists for every later read unless a remove may have
//!   come between, and an acknowledged remove is final for that incarnation;
//! - lost writes (`lost`): the reads taken after the final healing, through every manager,
//!   show each object at a version no older than its last acknowledged write, no acknowledged
//!   create missing and no acknowledged remove undone.
//!
//! Owns the verdict only; it must not read clocks, files or the network (`--check` feeds it a
//! saved history, tests hand-built ones).

mod lost;
mod register;
#[cfg(test)]
mod tests;

use crate::nemesis::history::Op;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// Two acknowledged writes of one object carry the same version.
    ReusedVersion,
    /// One version of an object seen with two different values or IDs.
    VersionMismatch,
    /// A value seen again after a newer value had replaced it.
    ValueReappeared,
    /// A read saw a value no create or update ever tried to write.
    NeverWritten,
    /// A read saw the value of a write the manager refused.
    FailedWriteVisible,
    /// A read saw a value whose write was invoked only after the read completed.
    FutureRead,
    /// A read saw an older version than an operation that completed before it began.
    StaleRead,
    /// A write got a version not newer than an operation that completed before it began.
    WriteOrder,
    /// A compare-and-set succeeded though the object changed after the version it expected.
    StaleCas,
    /// A read found no object though an acknowledged create or update completed before it and
    /// no remove could have come between.
    MissingObject,
    /// An incarnation read or written after its acknowledged remove completed.
    RemovedVisible,
    /// After the final healing: an acknowledged write older than what a manager shows.
    LostWrite,
    /// After the final healing: an acknowledged create's object gone with no remove.
    LostCreate,
    /// After the final healing: an incarnation whose remove was acknowledged still there.
    UndoneRemove,
}

/// One violation: the object, the operations involved (indices into the history) and one line
/// naming them and their versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: Kind,
    pub key: String,
    pub ops: Vec<usize>,
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Violations of linearizability during the run.
    pub anomalies: Vec<Anomaly>,
    /// Acknowledged writes the final reads do not reflect.
    pub lost: Vec<Anomaly>,
    /// Keys with acknowledged writes but no final read to check them against.
    pub unverified: Vec<String>,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.anomalies.is_empty() && self.lost.is_empty()
    }
}

/// Checks a whole history.
pub fn check(ops: &[Op]) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        by_key.entry(op.key.as_str()).or_default().push(i);
    }
    let mut v = Verdict::default();
    for (key, idx) in by_key {
        let obj = Object {
            key,
            ops,
            idx: &idx,
        };
        register::check(&obj, &mut v.anomalies);
        lost::check(&obj, &mut v.lost, &mut v.unverified);
    }
    v
}

/// The operations of one key.
pub(crate) struct Object<'a> {
    pub key: &'a str,
    pub ops: &'a [Op],
    /// Indices into `ops`, in history order.
    pub idx: &'a [usize],
}

impl<'a> Object<'a> {
    fn iter(&self) -> impl Iterator<Item = (usize, &'a Op)> + '_ {
        let ops = self.ops;
        self.idx.iter().map(move |&i| (i, &ops[i]))
    }

    fn anomaly(&self, kind: Kind, ops: Vec<usize>, description: String) -> Anomaly {
        Anomaly {
            kind,
            key: self.key.to_string(),
            ops,
            description: format!("{}: {description}", self.key),
        }
    }
}

/// `op 12 (p3 Update)`: how descriptions name an operation.
pub(crate) fn name(i: usize, op: &Op) -> String {
    let what = match &op.kind {
        crate::nemesis::history::OpKind::Create { .. } => "create",
        crate::nemesis::history::OpKind::Update { .. } => "update",
        crate::nemesis::history::OpKind::Remove => "remove",
        crate::nemesis::history::OpKind::Read { last: true, .. } => "final read",
        crate::nemesis::history::OpKind::Read { .. } => "read",
    };
    format!("op {i} (p{} {what})", op.process)
}
