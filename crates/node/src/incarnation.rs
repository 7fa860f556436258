//! The incarnation of this manager's Raft state: a number kept in `<raft dir>/incarnation`,
//! chosen at random when the Raft state is new, from which (with the node ID) the Raft member
//! ID is derived (`ids::raft_member_id`). Owns that one file; the rest of the Raft dir is the
//! raft crate's.
//!
//! Why: a demoted manager's Raft state is set aside (lifecycle.rs), and if it is promoted
//! again it starts with an empty log. Under its old member ID, which the group may still
//! count as a voter, that empty log could vote for a candidate lacking entries the old state
//! had acknowledged. A new incarnation is a new member, added as a learner and caught up
//! before it votes; the leader takes the old one out of the group (membership.rs).

use crate::error::{Context, NodeError, Result};
use rand::Rng;
use std::path::Path;

const FILE: &str = "incarnation";

/// The incarnation of the Raft state in `raft_dir`, recording a new one if the state is new.
/// State made before incarnations existed (a log or snapshot but no file) is incarnation 0,
/// whose member ID is the one it always had.
pub(crate) fn load_or_create(raft_dir: &Path) -> Result<u64> {
    let path = raft_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return text.trim().parse().map_err(|_| {
                NodeError::Invalid(format!(
                    "{}: {:?} is not a Raft incarnation number (a damaged state dir?)",
                    path.display(),
                    text.trim()
                ))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let incarnation = if holds_state(raft_dir) {
        0
    } else {
        rand::thread_rng().gen_range(1..=u64::MAX)
    };
    std::fs::create_dir_all(raft_dir)
        .with_context(|| format!("creating {}", raft_dir.display()))?;
    // Written and synced before the Raft state it names exists: a crash in between leaves a
    // new incarnation with no state, which is what it is.
    swarm_ca::write_file_durably(raft_dir, FILE, incarnation.to_string().as_bytes(), 0o600)?;
    Ok(incarnation)
}

/// Whether the raft crate has already written anything here (log or snapshots).
fn holds_state(raft_dir: &Path) -> bool {
    raft_dir.join("log.redb").exists()
        || std::fs::read_dir(raft_dir.join("snapshots"))
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_new_state_gets_a_new_nonzero_incarnation_that_stays() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let first = load_or_create(&a.path().join("raft")).unwrap();
        assert_ne!(first, 0);
        assert_eq!(load_or_create(&a.path().join("raft")).unwrap(), first);
        assert_ne!(load_or_create(&b.path().join("raft")).unwrap(), first);
    }

    #[test]
    fn state_from_before_incarnations_keeps_its_member_id() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("log.redb"), b"x").unwrap();
        assert_eq!(load_or_create(d.path()).unwrap(), 0);
        assert_eq!(
            load_or_create(d.path()).unwrap(),
            0,
            "recorded, not guessed again"
        );
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(FILE), b"not a number").unwrap();
        let e = load_or_create(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("incarnation") && e.contains("not a Raft incarnation"),
            "{e}"
        );
    }
}
