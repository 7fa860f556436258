//! Replays what `inspect` read into a fresh store and assembles the report: the snapshot
//! first, then the committed entries after it, stopping at the first hole or unreadable entry.
//!
//! Owns the replay rules and the report's warnings. Must not touch the disk: it works on what
//! `log_reader` and `snapshot_reader` return.

use std::collections::BTreeSet;
use std::path::PathBuf;

use openraft::{EntryPayload, RaftLogId};
use swarm_api::StoreSnapshot;
use swarm_store::Store;

use super::log_reader::LogContent;
use super::report::{
    EntryKind, EntryReport, LogPos, Member, MembershipReport, SnapshotReport, StateReport,
    VoteReport,
};
use crate::types::{LogId, Node, NodeId, SnapshotMeta};

fn pos(l: &LogId) -> LogPos {
    LogPos {
        term: l.leader_id.term,
        index: l.index,
    }
}

fn membership_report(
    log_index: Option<u64>,
    m: &openraft::Membership<NodeId, Node>,
) -> MembershipReport {
    let addr = |id: u64| m.get_node(&id).map(|n| n.addr.clone()).unwrap_or_default();
    let voters: BTreeSet<u64> = m.voter_ids().collect();
    MembershipReport {
        log_index,
        voters: voters
            .iter()
            .map(|&raft_id| Member {
                raft_id,
                addr: addr(raft_id),
            })
            .collect(),
        learners: m
            .learner_ids()
            .map(|raft_id| Member {
                raft_id,
                addr: addr(raft_id),
            })
            .collect(),
        joint: m.get_joint_config().len() > 1,
    }
}

/// Puts the pieces together and replays the snapshot and the committed entries into a store.
pub(super) fn assemble(
    raft_dir: PathBuf,
    log: LogContent,
    snapshot: Option<(PathBuf, SnapshotMeta, StoreSnapshot)>,
    mut warnings: Vec<String>,
) -> StateReport {
    let store = Store::new();
    let mut applied: Option<LogPos> = None;
    let mut membership = MembershipReport::default();
    let snapshot = snapshot.map(|(file, meta, objects)| {
        store.restore(objects.clone());
        applied = meta.last_log_id.as_ref().map(pos);
        membership = membership_report(
            meta.last_membership.log_id().map(|l| l.index),
            meta.last_membership.membership(),
        );
        SnapshotReport {
            file,
            id: meta.snapshot_id.clone(),
            last: applied,
            membership: membership.clone(),
            objects,
        }
    });
    let snapshot_index = applied.map(|p| p.index);
    let committed_index = log.committed.map(|l| l.index);

    let first_log_index = log.entries.first().map(|(k, _)| *k);
    let last_log_index = log.entries.last().map(|(k, _)| *k);
    if let (Some(first), Some(snap)) = (first_log_index, snapshot_index) {
        if first > snap + 1 {
            warnings.push(format!(
                "log starts at {first} but the snapshot ends at {snap}: entries {} to {} are missing",
                snap + 1,
                first - 1
            ));
        }
    }
    if snapshot.is_none() {
        if let Some(p) = log.purged {
            warnings.push(format!(
                "log purged up to {} but no readable snapshot covers it: the objects shown lack those entries",
                p.index
            ));
        }
    }

    // Replay stops at the first hole or unreadable entry: later entries depend on it.
    let mut replaying = true;
    let mut expected = snapshot_index.map(|i| i + 1);
    let mut entries = Vec::new();
    for (key, decoded) in log.entries {
        if snapshot_index.is_some_and(|s| key <= s) {
            continue;
        }
        let committed = committed_index.is_some_and(|c| key <= c);
        if replaying && expected.is_some_and(|e| e != key) {
            replaying = false;
        }
        expected = Some(key + 1);
        let entry = match decoded {
            Ok(e) => e,
            Err(error) => {
                warnings.push(format!("log entry {key} is unreadable: {error}"));
                replaying = false;
                entries.push(EntryReport {
                    index: key,
                    term: 0,
                    committed,
                    kind: EntryKind::Unreadable { error },
                    refused: None,
                });
                continue;
            }
        };
        let id = *entry.get_log_id();
        let apply = replaying && committed;
        let mut refused = None;
        let kind = match entry.payload {
            EntryPayload::Blank => EntryKind::Blank,
            EntryPayload::Normal(p) => {
                if apply {
                    // A refused batch is not a failure: it was refused the same way at runtime.
                    let reasons: Vec<String> = store
                        .apply_group(id.index, &p.0)
                        .into_iter()
                        .enumerate()
                        .filter_map(|(i, r)| r.err().map(|e| (i, e)))
                        .map(|(i, e)| match p.0.len() {
                            1 => e.to_string(),
                            _ => format!("transaction {i}: {e}"),
                        })
                        .collect();
                    if !reasons.is_empty() {
                        refused = Some(reasons.join("; "));
                    }
                }
                EntryKind::Normal { batches: p.0 }
            }
            EntryPayload::Membership(m) => {
                // openraft acts on a membership entry as soon as it is in the log, committed
                // or not, so the newest one is the membership in force.
                membership = membership_report(Some(id.index), &m);
                EntryKind::Membership {
                    membership: membership.clone(),
                }
            }
        };
        if apply {
            applied = Some(pos(&id));
        }
        entries.push(EntryReport {
            index: id.index,
            term: id.leader_id.term,
            committed,
            kind,
            refused,
        });
    }
    if committed_index.is_some_and(|c| applied.is_none_or(|a| a.index < c)) {
        warnings.push(format!(
            "replay stopped at {:?} before the commit index {:?}",
            applied.map(|a| a.index),
            committed_index
        ));
    }

    StateReport {
        raft_dir,
        vote: log.vote.map(|v| VoteReport {
            term: v.leader_id.get_term(),
            voted_for: v.leader_id.voted_for(),
            committed: v.committed,
        }),
        membership,
        first_log_index,
        last_log_index,
        committed: log.committed.as_ref().map(pos),
        last_purged: log.purged.as_ref().map(pos),
        snapshot,
        entries,
        applied,
        current: store.snapshot(),
        warnings,
        log_repaired: log.repaired,
    }
}
