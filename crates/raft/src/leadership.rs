//! Leadership events: who leads, in which term, and whether it is us, derived from openraft's
//! metrics, the leader's quorum check (`quorum`) and how far this member's store has applied
//! the log (`CatchUp`). Owns the two watch channels (the public [`Leadership`] and the
//! internal [`Quorum`] verdict `propose` consults); acting on leadership is the manager's job.

use std::time::Duration;

use openraft::{RaftMetrics, ServerState};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::quorum::{Quorum, QuorumCheck};
use crate::types::{Node, NodeId, OpenRaft};

/// One view of the cluster's leadership as this member sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leadership {
    /// This member is the leader and may accept proposals. False while a leader has lost
    /// contact with a quorum (check-quorum), even though no other leader is known yet.
    pub is_leader: bool,
    /// The leader as far as this member knows; `None` while unknown, including while this
    /// member is a leader without quorum.
    pub leader_id: Option<u64>,
    /// The leader's advertised address, from the membership config.
    pub leader_addr: Option<String>,
    pub term: u64,
}

fn openraft_leads(m: &RaftMetrics<NodeId, Node>) -> bool {
    m.state == ServerState::Leader && m.current_leader == Some(m.id)
}

/// Whether a new leader's store holds everything its log held when it began to lead.
///
/// Why: entries a deposed leader wrote last (the orchestrator's new tasks, say) may sit in the
/// new leader's log without being known committed yet; they commit with the new leader's
/// first entry and only then reach its store. Leader-side components started before that
/// decide on a store that lacks them: an orchestrator fills the slots again, and once the old
/// entries apply each slot holds two tasks (the nemesis saw services at 4/2 for minutes).
/// Reads served in that gap would be stale as well.
#[derive(Debug, Default)]
pub(crate) struct CatchUp {
    /// While leading: the last log index when leadership began (or quorum came back).
    target: Option<u64>,
}

impl CatchUp {
    /// Follows one publication of the metrics; returns whether this member may act as
    /// leader: openraft leads, the quorum check allows it, and the store has applied the log
    /// up to where it stood when that became true.
    pub(crate) fn observe(
        &mut self,
        leads: bool,
        quorum_allows: bool,
        last_log_index: Option<u64>,
        last_applied_index: Option<u64>,
    ) -> bool {
        if !(leads && quorum_allows) {
            self.target = None;
            return false;
        }
        let target = *self.target.get_or_insert(last_log_index.unwrap_or(0));
        last_applied_index.unwrap_or(0) >= target
    }
}

pub(crate) fn from_metrics(
    m: &RaftMetrics<NodeId, Node>,
    quorum: Quorum,
    caught_up: bool,
) -> Leadership {
    if openraft_leads(m) && (!quorum.may_lead() || !caught_up) {
        // A leader cut off from its voters cannot tell who leads now; claiming itself would
        // send proposers to a member that cannot commit. A leadership restored from disk is
        // not claimed either until a quorum answers it: the others may have moved on. Nor is
        // one whose store has not yet applied its log (`CatchUp`): callers retry shortly.
        return Leadership {
            is_leader: false,
            leader_id: None,
            leader_addr: None,
            term: m.current_term,
        };
    }
    let leader_addr = m.current_leader.and_then(|id| {
        m.membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
    });
    Leadership {
        is_leader: openraft_leads(m),
        leader_id: m.current_leader,
        leader_addr,
        term: m.current_term,
    }
}

fn publish<T: PartialEq>(tx: &watch::Sender<T>, next: T) {
    tx.send_if_modified(|cur| {
        if *cur == next {
            false
        } else {
            *cur = next;
            true
        }
    });
}

/// This member's role, term and leader as last logged. Every change is logged at info: the
/// timeline of an election (who campaigned when, who won) is what one needs to read a
/// failover, and `failover-bench` measures its phases from these lines.
#[derive(Default, PartialEq)]
struct Role {
    state: Option<ServerState>,
    term: u64,
    leader: Option<NodeId>,
}

impl Role {
    fn log_change(&mut self, raft_id: NodeId, m: &RaftMetrics<NodeId, Node>) {
        let next = Role {
            state: Some(m.state),
            term: m.current_term,
            leader: m.current_leader,
        };
        if next != *self {
            tracing::info!(
                raft_id,
                role = ?m.state,
                term = m.current_term,
                leader = ?m.current_leader,
                "raft role changed"
            );
            *self = next;
        }
    }
}

/// Where the watcher publishes.
pub(crate) struct Publish {
    pub leadership: watch::Sender<Leadership>,
    pub quorum: watch::Sender<Quorum>,
    /// `leadership.is_leader` alone.
    pub leads: watch::Sender<bool>,
}

/// Follows openraft's metrics, runs the quorum check on every publication and when its window
/// would run out, and publishes a new [`Leadership`] / [`Quorum`] only when they change, so
/// watchers are not woken by every applied entry.
/// Whether `raft_id` is the only voter of the membership in force.
fn sole_voter(
    m: &openraft::RaftMetrics<crate::types::NodeId, crate::types::Node>,
    raft_id: u64,
) -> bool {
    let mut voters = m.membership_config.membership().voter_ids();
    voters.next() == Some(raft_id) && voters.next().is_none()
}

pub(crate) fn spawn_watcher(
    raft: &OpenRaft,
    quorum_window: Duration,
    restored_term: u64,
    out: Publish,
) -> JoinHandle<()> {
    let Publish {
        leadership: tx,
        quorum: quorum_tx,
        leads: leads_tx,
    } = out;
    let mut metrics = raft.metrics();
    let raft_id = metrics.borrow().id;
    // The RaftNode keeps the handle and awaits it on shutdown.
    #[allow(clippy::disallowed_methods)]
    tokio::spawn(async move {
        let mut check = QuorumCheck::new(quorum_window, restored_term);
        let mut catch_up = CatchUp::default();
        let mut current = metrics.borrow_and_update().clone();
        let mut role = Role::default();
        check.observe(
            openraft_leads(&current),
            current.current_term,
            current.millis_since_quorum_ack,
            sole_voter(&current, raft_id),
            Instant::now(),
        );
        loop {
            let (quorum, lost_at) = check.verdict(Instant::now());
            let was_lost = quorum_tx.borrow().is_lost();
            if quorum.is_lost() != was_lost {
                match quorum {
                    Quorum::Lost { silent_ms } => tracing::warn!(
                        raft_id,
                        silent_ms,
                        term = current.current_term,
                        "quorum lost: no acknowledgement from a majority of voters; no longer acting as leader"
                    ),
                    _ => tracing::info!(raft_id, "quorum contact restored or leadership ended"),
                }
            }
            let was = *quorum_tx.borrow();
            if quorum == Quorum::Unconfirmed && was != Quorum::Unconfirmed {
                tracing::info!(
                    raft_id,
                    term = current.current_term,
                    "leadership restored from disk: not acting as leader until a quorum confirms it"
                );
            } else if quorum == Quorum::Held && was == Quorum::Unconfirmed {
                tracing::info!(raft_id, "restored leadership confirmed by a quorum");
            }
            role.log_change(raft_id, &current);
            publish(&quorum_tx, quorum);
            let leads = openraft_leads(&current);
            let caught_up = catch_up.observe(
                leads,
                quorum.may_lead(),
                current.last_log_index,
                current.last_applied.map(|l| l.index),
            );
            if leads && quorum.may_lead() && !caught_up && !*leads_tx.borrow() {
                tracing::debug!(
                    raft_id,
                    last_log_index = ?current.last_log_index,
                    last_applied = ?current.last_applied.map(|l| l.index),
                    "leading: applying the log before acting as leader"
                );
            }
            let now = from_metrics(&current, quorum, caught_up);
            publish(&leads_tx, now.is_leader);
            publish(&tx, now);

            let deadline = lost_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                changed = metrics.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    current = metrics.borrow_and_update().clone();
                    // Observe only fresh publications: the ack age in them is relative to when
                    // openraft computed it.
                    check.observe(
                        openraft_leads(&current),
                        current.current_term,
                        current.millis_since_quorum_ack,
                        sole_voter(&current, raft_id),
                        Instant::now(),
                    );
                }
                // The window ran out with no new metrics: re-evaluate with the clock alone.
                _ = tokio::time::sleep_until(deadline), if lost_at.is_some() => {}
            }
        }
        // Raft stopped: nobody here leads any more.
        quorum_tx.send_replace(Quorum::NotLeading);
        publish(&leads_tx, false);
        tx.send_modify(|cur| {
            cur.is_leader = false;
            cur.leader_id = None;
            cur.leader_addr = None;
        });
    })
}

#[cfg(test)]
mod tests {
    use super::CatchUp;

    #[test]
    fn a_new_leader_acts_only_once_its_store_applied_its_log() {
        let mut c = CatchUp::default();
        // Follower: never.
        assert!(!c.observe(false, true, Some(10), Some(10)));
        // Elected with entries 9 and 10 of the old leader in its log, not yet applied.
        assert!(!c.observe(true, true, Some(11), Some(8)));
        // New entries appended meanwhile do not move the target.
        assert!(!c.observe(true, true, Some(14), Some(10)));
        assert!(c.observe(true, true, Some(15), Some(11)));
        assert!(c.observe(true, true, Some(20), Some(12)));
    }

    #[test]
    fn quorum_coming_back_sets_a_new_target() {
        let mut c = CatchUp::default();
        assert!(c.observe(true, true, Some(5), Some(5)));
        // Quorum lost: proposals made before were appended and may still commit.
        assert!(!c.observe(true, false, Some(9), Some(5)));
        assert!(!c.observe(true, true, Some(9), Some(5)));
        assert!(c.observe(true, true, Some(9), Some(9)));
        // A log with nothing in it is caught up at once.
        let mut fresh = CatchUp::default();
        assert!(fresh.observe(true, true, None, None));
    }
}
