//! The rules of one object during the run (everything but the final state, which is `lost`):
//! versions, values, real-time order, compare-and-set and existence. Owns these rules only; it
//! must not look at other keys (versions are compared within one object: one Raft entry may
//! carry writes of several objects at the same index).

use super::{name, Anomaly, Kind, Object};
use crate::nemesis::history::{Op, OpKind, Outcome, INITIAL};
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn check(obj: &Object<'_>, out: &mut Vec<Anomaly>) {
    versions(obj, out);
    values(obj, out);
    real_time(obj, out);
    cas(obj, out);
    existence(obj, out);
}

/// One version, one write, one value, one incarnation.
fn versions(obj: &Object<'_>, out: &mut Vec<Anomaly>) {
    let mut writes: BTreeMap<u64, usize> = BTreeMap::new();
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, op) in obj.iter() {
        let Some(s) = op.seen() else { continue };
        if op.kind.is_write() {
            if let Some(&j) = writes.get(&s.version) {
                out.push(obj.anomaly(
                    Kind::ReusedVersion,
                    vec![j, i],
                    format!(
                        "{} and {} were both acknowledged at version {}",
                        name(j, &obj.ops[j]),
                        name(i, op),
                        s.version
                    ),
                ));
            } else {
                writes.insert(s.version, i);
            }
        }
        match seen.get(&s.version) {
            Some(&j) => {
                let o = obj.ops[j].seen();
                if o.is_some_and(|o| o.value != s.value || o.id != s.id) {
                    let o = o.map(|o| (o.id.as_str(), o.value.as_str()));
                    out.push(obj.anomaly(
                        Kind::VersionMismatch,
                        vec![j, i],
                        format!(
                            "version {} is {:?} for {} but ({:?}, {:?}) for {}",
                            s.version,
                            o,
                            name(j, &obj.ops[j]),
                            s.id,
                            s.value,
                            name(i, op)
                        ),
                    ));
                }
            }
            None => {
                seen.insert(s.version, i);
            }
        }
    }
}

/// Values come from writes that may have happened, and never come back once replaced.
fn values(obj: &Object<'_>, out: &mut Vec<Anomaly>) {
    // Every write's value: values are unique per write, so one op per value.
    let mut writer: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, op) in obj.iter() {
        if let Some(v) = op.kind.written_value() {
            writer.insert(v, i);
        }
    }
    for (i, op) in obj.iter() {
        if op.kind.is_write() {
            continue;
        }
        let Some(s) = op.seen() else { continue };
        if s.value == INITIAL {
            continue;
        }
        match writer.get(s.value.as_str()) {
            None => out.push(obj.anomaly(
                Kind::NeverWritten,
                vec![i],
                format!(
                    "{} saw {:?} at version {}, which no operation wrote",
                    name(i, op),
                    s.value,
                    s.version
                ),
            )),
            Some(&w) => {
                let wop = &obj.ops[w];
                if matches!(wop.outcome, Outcome::Failed { .. }) {
                    out.push(obj.anomaly(
                        Kind::FailedWriteVisible,
                        vec![w, i],
                        format!(
                            "{} saw {:?} at version {}, written by {} which was refused",
                            name(i, op),
                            s.value,
                            s.version,
                            name(w, wop)
                        ),
                    ));
                } else if wop.invoke_us > op.complete_us {
                    out.push(obj.anomaly(
                        Kind::FutureRead,
                        vec![w, i],
                        format!(
                            "{} saw {:?} at version {} before {} wrote it",
                            name(i, op),
                            s.value,
                            s.version,
                            name(w, wop)
                        ),
                    ));
                }
            }
        }
    }
    // A value appears at the version of the acknowledged write that wrote it, not before.
    for (i, op) in obj.iter() {
        let Some(s) = op.seen() else { continue };
        let Some(&w) = writer.get(s.value.as_str()) else {
            continue;
        };
        let wop = &obj.ops[w];
        if let (true, Some(ws)) = (wop.kind.is_write(), wop.seen()) {
            if s.version < ws.version {
                out.push(obj.anomaly(
                    Kind::VersionMismatch,
                    vec![w, i],
                    format!(
                        "{} saw {:?} at version {}, but {} wrote it at version {}",
                        name(i, op),
                        s.value,
                        s.version,
                        name(w, wop),
                        ws.version
                    ),
                ));
            }
        }
    }
    // In version order, a value that gave way to another must not reappear.
    let mut by_version: BTreeMap<u64, (usize, &str)> = BTreeMap::new();
    for (i, op) in obj.iter() {
        if let Some(s) = op.seen() {
            by_version.entry(s.version).or_insert((i, s.value.as_str()));
        }
    }
    let mut replaced: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    let mut prev: Option<(usize, u64, &str)> = None;
    for (&version, &(i, value)) in &by_version {
        if let Some((pi, pv, pval)) = prev {
            if pval != value {
                replaced.entry(pval).or_insert((pi, pv));
                if let Some(&(ri, rv)) = replaced.get(value) {
                    out.push(obj.anomaly(
                        Kind::ValueReappeared,
                        vec![ri, pi, i],
                        format!(
                            "{:?} (version {rv}, {}) was replaced by {:?} (version {pv}, {}) \
                             and seen again at version {version} by {}",
                            value,
                            name(ri, &obj.ops[ri]),
                            pval,
                            name(pi, &obj.ops[pi]),
                            name(i, &obj.ops[i])
                        ),
                    ));
                }
            }
        }
        prev = Some((i, version, value));
    }
}

/// An operation invoked after another completed sees that one's version or a newer one.
fn real_time(obj: &Object<'_>, out: &mut Vec<Anomaly>) {
    // (complete, version, op) of every operation with a version, by completion.
    let mut done: Vec<(u64, u64, usize)> = obj
        .iter()
        .filter_map(|(i, op)| op.seen().map(|s| (op.complete_us, s.version, i)))
        .collect();
    done.sort_unstable();
    // The newest version completed up to each position (and which op had it).
    let mut best: Vec<(u64, usize)> = Vec::with_capacity(done.len());
    for &(_, v, i) in &done {
        let b = match best.last() {
            Some(&(bv, bi)) if bv >= v => (bv, bi),
            _ => (v, i),
        };
        best.push(b);
    }
    for (i, op) in obj.iter() {
        let Some(s) = op.seen() else { continue };
        // Operations that completed strictly before this one was invoked.
        let n = done.partition_point(|&(c, _, _)| c < op.invoke_us);
        let Some(&(bv, bi)) = n.checked_sub(1).and_then(|k| best.get(k)) else {
            continue;
        };
        let (bad, kind, what) = if op.kind.is_write() {
            (s.version <= bv, Kind::WriteOrder, "was acknowledged at")
        } else {
            (s.version < bv, Kind::StaleRead, "saw")
        };
        if bad {
            out.push(obj.anomaly(
                kind,
                vec![bi, i],
                format!(
                    "{} {what} version {} though {} had completed at version {bv} before it began",
                    name(i, op),
                    s.version,
                    name(bi, &obj.ops[bi])
                ),
            ));
        }
    }
}

/// A successful compare-and-set from `expected` to `r`: no version of the object in between.
fn cas(obj: &Object<'_>, out: &mut Vec<Anomaly>) {
    let versions: BTreeMap<u64, usize> = obj
        .iter()
        .filter_map(|(i, op)| op.seen().map(|s| (s.version, i)))
        .collect();
    for (i, op) in obj.iter() {
        let (OpKind::Update { expected, .. }, Some(s)) = (&op.kind, op.seen()) else {
            continue;
        };
        if s.version <= *expected {
            out.push(obj.anomaly(
                Kind::StaleCas,
                vec![i],
                format!(
                    "{} expected version {expected} and was acknowledged at version {}",
                    name(i, op),
                    s.version
                ),
            ));
        } else if let Some((&v, &j)) = versions.range(expected + 1..s.version).next() {
            out.push(obj.anomaly(
                Kind::StaleCas,
                vec![j, i],
                format!(
                    "{} expected version {expected} and succeeded at version {}, but {} saw \
                     version {v} in between",
                    name(i, op),
                    s.version,
                    name(j, &obj.ops[j])
                ),
            ));
        }
    }
}

/// Created objects stay until a remove may have come; removed incarnations stay gone.
fn existence(obj: &Object<'_>, out: &mut Vec<Anomaly>) {
    // Acknowledged removes, by incarnation.
    let mut removed: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    // Removes that may have happened (acknowledged or indeterminate), by incarnation.
    let mut maybe_removed: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in obj.iter() {
        if !matches!(op.kind, OpKind::Remove) {
            continue;
        }
        let Some(id) = op.target.as_deref() else {
            continue;
        };
        if op.is_ok() {
            removed.entry(id).or_default().push(i);
        }
        if op.is_ok() || op.is_indeterminate() {
            maybe_removed.entry(id).or_default().push(i);
        }
    }
    let mut reported: BTreeSet<(usize, usize)> = BTreeSet::new();
    for (i, op) in obj.iter() {
        // An incarnation used after its remove completed.
        if let Some(s) = op.seen() {
            for &r in removed.get(s.id.as_str()).into_iter().flatten() {
                if obj.ops[r].complete_us < op.invoke_us && reported.insert((r, i)) {
                    out.push(obj.anomaly(
                        Kind::RemovedVisible,
                        vec![r, i],
                        format!(
                            "{} found incarnation {} at version {} after {} removed it",
                            name(i, op),
                            s.id,
                            s.version,
                            name(r, &obj.ops[r])
                        ),
                    ));
                }
            }
        }
        // A read finding nothing though an acknowledged incarnation must still be there.
        let OpKind::Read { .. } = op.kind else {
            continue;
        };
        if !matches!(op.outcome, Outcome::Ok { seen: None }) {
            continue;
        }
        if let Some(w) = must_exist(obj, op, &maybe_removed) {
            out.push(obj.anomaly(
                Kind::MissingObject,
                vec![w, i],
                format!(
                    "{} found nothing, though {} completed at version {} before it began and no \
                     remove of {} could come between",
                    name(i, op),
                    name(w, &obj.ops[w]),
                    obj.ops[w].seen().map(|s| s.version).unwrap_or(0),
                    obj.ops[w].seen().map(|s| s.id.as_str()).unwrap_or("?")
                ),
            ));
        }
    }
}

/// An acknowledged operation that produced or saw an incarnation, completed before `read`
/// began, with no remove of that incarnation that could be ordered after it and before `read`.
fn must_exist(
    obj: &Object<'_>,
    read: &Op,
    maybe_removed: &BTreeMap<&str, Vec<usize>>,
) -> Option<usize> {
    obj.iter()
        .filter(|(_, w)| w.complete_us < read.invoke_us)
        .filter_map(|(i, w)| w.seen().map(|s| (i, w, s)))
        .filter(|(_, w, s)| {
            !maybe_removed
                .get(s.id.as_str())
                .into_iter()
                .flatten()
                .any(|&r| {
                    let rm = &obj.ops[r];
                    // An indeterminate remove may take effect any time after it was sent,
                    // even after its client gave up (the leader still had it): it never
                    // completes, as Jepsen counts an `:info` operation.
                    let rm_end = if rm.is_indeterminate() {
                        u64::MAX
                    } else {
                        rm.complete_us
                    };
                    rm.invoke_us < read.complete_us && rm_end > w.invoke_us
                })
        })
        .map(|(i, _, _)| i)
        .last()
}
