//! Whether a node's new assignment set can go to its agent as an increment of the last one
//! sent, and which tasks that increment holds. Pure: it compares the fingerprints the
//! assignment stream (`assignments.rs`) keeps; it reads no store and sends nothing.
//!
//! Why: a complete set per change costs O(tasks on the node) per message, so filling a node
//! with k tasks encoded, encrypted and decoded k²/2 tasks. An increment is only used when it
//! leaves the agent exactly where the complete set would (see [`additions`]).

use std::collections::HashMap;

/// (task ID, desired state, spec version) of each task sent, in the set's order.
pub(crate) type Fingerprint = Vec<(String, i32, u64)>;

/// Positions in `now` of the tasks to send as an increment over `last`, or `None` when only a
/// complete set is right: a task left the set (the agent must drop it, and the secrets and
/// configs only it used), or a task's spec version changed (its spec may reference other
/// secrets or configs, and a complete set lets the agent drop the old ones). New tasks and
/// desired-state changes only add to what the agent holds, so the increment and the
/// complete set end in the same state on the agent.
pub(crate) fn additions(last: &Fingerprint, now: &Fingerprint) -> Option<Vec<usize>> {
    let before: HashMap<&str, (i32, u64)> = last
        .iter()
        .map(|(id, desired, version)| (id.as_str(), (*desired, *version)))
        .collect();
    let mut kept = 0;
    let mut changed = Vec::new();
    for (i, (id, desired, version)) in now.iter().enumerate() {
        match before.get(id.as_str()) {
            None => changed.push(i),
            Some((_, v)) if v != version => return None,
            Some((d, _)) => {
                kept += 1;
                if d != desired {
                    changed.push(i);
                }
            }
        }
    }
    (kept == before.len()).then_some(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(x: &[(&str, i32, u64)]) -> Fingerprint {
        x.iter().map(|(a, b, c)| (a.to_string(), *b, *c)).collect()
    }

    #[test]
    fn new_tasks_and_desired_changes_are_an_increment() {
        let last = fp(&[("a", 5, 1), ("b", 5, 1)]);
        let now = fp(&[("a", 5, 1), ("b", 7, 1), ("c", 5, 1)]);
        assert_eq!(additions(&last, &now), Some(vec![1, 2]));
    }

    #[test]
    fn a_removed_task_needs_a_complete_set() {
        let last = fp(&[("a", 5, 1), ("b", 5, 1)]);
        let now = fp(&[("a", 5, 1), ("c", 5, 1)]);
        assert_eq!(additions(&last, &now), None);
    }

    #[test]
    fn a_new_spec_version_needs_a_complete_set() {
        let last = fp(&[("a", 5, 1)]);
        let now = fp(&[("a", 5, 2)]);
        assert_eq!(additions(&last, &now), None);
    }

    #[test]
    fn nothing_changed_is_an_empty_increment() {
        let last = fp(&[("a", 5, 1)]);
        assert_eq!(additions(&last, &last.clone()), Some(vec![]));
    }
}
