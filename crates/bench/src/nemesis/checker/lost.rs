//! Lost writes: what the reads taken after the final healing (one per manager, `last`) must
//! reflect. Owns the final-state rules only; what happened during the run is `register`'s.

use super::{name, Anomaly, Kind, Object};
use crate::nemesis::history::{OpKind, Outcome};
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn check(obj: &Object<'_>, lost: &mut Vec<Anomaly>, unverified: &mut Vec<String>) {
    let finals: Vec<usize> = obj
        .iter()
        .filter(|(_, op)| matches!(op.kind, OpKind::Read { last: true, .. }) && op.is_ok())
        .map(|(i, _)| i)
        .collect();
    // The newest acknowledged write of each incarnation.
    let mut newest: BTreeMap<&str, usize> = BTreeMap::new();
    let mut removes: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut maybe_removed: BTreeSet<&str> = BTreeSet::new();
    for (i, op) in obj.iter() {
        match (&op.kind, op.seen()) {
            (OpKind::Create { .. } | OpKind::Update { .. }, Some(s)) => {
                let keep = newest
                    .get(s.id.as_str())
                    .and_then(|&j| obj.ops[j].seen())
                    .is_some_and(|o| o.version >= s.version);
                if !keep {
                    newest.insert(s.id.as_str(), i);
                }
            }
            (OpKind::Remove, _) => {
                let Some(id) = op.target.as_deref() else {
                    continue;
                };
                if op.is_ok() {
                    removes.entry(id).or_default().push(i);
                }
                if op.is_ok() || op.is_indeterminate() {
                    maybe_removed.insert(id);
                }
            }
            _ => {}
        }
    }
    if finals.is_empty() {
        if !newest.is_empty() || !removes.is_empty() {
            unverified.push(obj.key.to_string());
        }
        return;
    }
    let mut reported: BTreeSet<usize> = BTreeSet::new();
    for &f in &finals {
        let fop = &obj.ops[f];
        let shown = match &fop.outcome {
            Outcome::Ok { seen } => seen.as_ref(),
            _ => None,
        };
        for (&id, &w) in &newest {
            let wv = obj.ops[w].seen().map(|s| s.version).unwrap_or(0);
            let same = shown.filter(|s| s.id == id);
            if let Some(s) = same {
                if s.version < wv && reported.insert(w) {
                    lost.push(obj.anomaly(
                        Kind::LostWrite,
                        vec![w, f],
                        format!(
                            "{} was acknowledged at version {wv}, but {} shows version {}",
                            name(w, &obj.ops[w]),
                            name(f, fop),
                            s.version
                        ),
                    ));
                }
            } else if !maybe_removed.contains(id) && reported.insert(w) {
                let what = shown
                    .map(|s| format!("incarnation {} at version {}", s.id, s.version))
                    .unwrap_or_else(|| "nothing".into());
                lost.push(obj.anomaly(
                    Kind::LostCreate,
                    vec![w, f],
                    format!(
                        "{} left incarnation {id} at version {wv} and nothing removed it, \
                             but {} shows {what}",
                        name(w, &obj.ops[w]),
                        name(f, fop)
                    ),
                ));
            }
        }
        let Some(s) = shown else { continue };
        for &r in removes.get(s.id.as_str()).into_iter().flatten() {
            if reported.insert(r) {
                lost.push(obj.anomaly(
                    Kind::UndoneRemove,
                    vec![r, f],
                    format!(
                        "{} removed incarnation {}, but {} shows it at version {}",
                        name(r, &obj.ops[r]),
                        s.id,
                        name(f, fop),
                        s.version
                    ),
                ));
            }
        }
    }
}
