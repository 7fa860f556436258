//! Check-quorum for the leader, as etcd-raft (and so SwarmKit) runs it: a leader that has not
//! heard from a majority of voters for a while stops acting as leader. etcd's "while" is one
//! election timeout; ours is openraft's leader lease plus the shortest randomised election wait,
//! 1.5 election timeouts (see `RaftConfig::quorum_window` for why).
//!
//! openraft 0.9 has no such step-down. Its leader keeps `ServerState::Leader` for as long as
//! nobody shows it a higher term, however long it is cut off, and `Raft::trigger().elect()` is
//! ignored on a leader; leader transfer only arrived in 0.10. What 0.9 does give is the time a
//! quorum last acknowledged the leader (`RaftMetrics::millis_since_quorum_ack`, fed by the clock
//! of each AppendEntries/heartbeat a voter answered). This module turns that into a verdict:
//!
//! - the reference instant is the newest of "a quorum acknowledged us" and "we became leader in
//!   this term" (winning the vote was itself a quorum's acknowledgement; openraft reports no ack
//!   time until the first heartbeat round-trip);
//! - once now − reference reaches the window (after it, openraft's followers may
//!   elect someone else), quorum is lost. Acknowledgements coming back restore it.
//!
//! The verdict is computed from the wall clock of *this* task, not re-read from metrics: openraft
//! only republishes metrics when its core loop wakes, so a stale metrics value must never look
//! like a fresh acknowledgement. A lost verdict only hides leadership from our callers (the
//! leadership watch and `propose`); openraft underneath still leads until it meets a higher
//! term, which is harmless because nothing it appends alone can commit, and anything it did
//! append is truncated (and its waiting proposer told "forward to leader") once it follows the
//! new leader.
//!
//! A leadership restored from disk is not yet a leadership: openraft 0.9 starts a member whose
//! saved vote is its own committed vote as leader at once, without asking anyone. If the others
//! elected someone else in a later term while it was down or cut off, it would answer reads from
//! its stale store as leader until it met the higher term. So a leadership in the term the vote
//! on disk held at start stays [`Quorum::Unconfirmed`] (not leading, for our callers) until a
//! quorum acknowledges it; a leadership won by an election in this process is in a later term
//! and needs no such proof.
//!
//! A leader that is the only voter is its own quorum and never loses it: its acknowledgement
//! clock only moves when openraft republishes metrics, which a busy core does late (a lone
//! manager under a thousand clients stepped down for 1.5 s with nobody to cut it off from).
//!
//! Owns the bookkeeping only; it reads no metrics and publishes nothing itself (see
//! `leadership`).

use std::time::Duration;

use tokio::time::Instant;

/// Whether this member may act as leader, as far as quorum contact goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Quorum {
    /// openraft does not consider this member the leader: nothing to check.
    #[default]
    NotLeading,
    /// Leading, and a quorum acknowledged us within the window.
    Held,
    /// openraft leads in the term restored from disk, and no quorum has acknowledged that yet.
    Unconfirmed,
    /// openraft still leads here, but no quorum acknowledged us for `silent_ms`.
    Lost { silent_ms: u64 },
}

impl Quorum {
    pub(crate) fn is_lost(&self) -> bool {
        matches!(self, Quorum::Lost { .. })
    }

    /// Whether callers may treat this member as the leader: it leads and a quorum has
    /// acknowledged it (or it is the only voter).
    pub(crate) fn may_lead(&self) -> bool {
        matches!(self, Quorum::Held)
    }
}

/// The leader's quorum clock: fed with openraft observations, asked for a verdict.
#[derive(Debug)]
pub(crate) struct QuorumCheck {
    window: Duration,
    /// Term we lead in and when we first saw ourselves leading it.
    leading: Option<(u64, Instant)>,
    /// The term of the vote on disk when this member started: leading in it means openraft
    /// restored the leadership rather than won it here.
    restored_term: u64,
    /// A quorum acknowledged the leadership in the current term at least once (or it was won
    /// by an election here, which is such an acknowledgement).
    confirmed: bool,
    /// Newest instant a quorum is known to have acknowledged this leadership.
    last_ack: Option<Instant>,
    /// This member is the only voter: it is the quorum.
    sole_voter: bool,
}

impl QuorumCheck {
    pub(crate) fn new(window: Duration, restored_term: u64) -> Self {
        QuorumCheck {
            window,
            leading: None,
            restored_term,
            confirmed: false,
            last_ack: None,
            sole_voter: false,
        }
    }

    /// Feeds one fresh metrics publication observed at `now`. Call it only when openraft
    /// published new metrics: `millis_since_ack` is relative to the moment it was computed.
    pub(crate) fn observe(
        &mut self,
        leading: bool,
        term: u64,
        millis_since_ack: Option<u64>,
        sole_voter: bool,
        now: Instant,
    ) {
        self.sole_voter = sole_voter;
        if !leading {
            self.leading = None;
            self.last_ack = None;
            return;
        }
        if self.leading.map(|(t, _)| t) != Some(term) {
            self.leading = Some((term, now));
            self.last_ack = None;
            self.confirmed = term > self.restored_term;
        }
        if let Some(ms) = millis_since_ack {
            // openraft's clock of acknowledgements lives in memory: any value is an answer to
            // this process's leadership.
            self.confirmed = true;
            let at = now.checked_sub(Duration::from_millis(ms)).unwrap_or(now);
            // Acknowledgements only move forward; an older report must not rewind the clock.
            self.last_ack = Some(self.last_ack.map_or(at, |prev| prev.max(at)));
        }
    }

    /// The verdict at `now`, and the instant it turns to `Lost` if nothing new is observed.
    pub(crate) fn verdict(&self, now: Instant) -> (Quorum, Option<Instant>) {
        let Some((_, since)) = self.leading else {
            return (Quorum::NotLeading, None);
        };
        if self.sole_voter {
            return (Quorum::Held, None);
        }
        let reference = self.last_ack.map_or(since, |a| a.max(since));
        let silent = now.saturating_duration_since(reference);
        if silent >= self.window {
            let silent_ms = u64::try_from(silent.as_millis()).unwrap_or(u64::MAX);
            (Quorum::Lost { silent_ms }, None)
        } else if !self.confirmed {
            (Quorum::Unconfirmed, Some(reference + self.window))
        } else {
            (Quorum::Held, Some(reference + self.window))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_millis(500);

    #[test]
    fn follower_is_not_checked() {
        let mut c = QuorumCheck::new(W, 0);
        let t0 = Instant::now();
        c.observe(false, 3, None, false, t0);
        assert_eq!(c.verdict(t0 + W * 10).0, Quorum::NotLeading);
    }

    #[test]
    fn election_counts_as_an_ack_until_the_window_passes() {
        let mut c = QuorumCheck::new(W, 0);
        let t0 = Instant::now();
        c.observe(true, 3, None, false, t0);
        let (q, next) = c.verdict(t0 + Duration::from_millis(100));
        assert_eq!(q, Quorum::Held);
        assert_eq!(next, Some(t0 + W));
        assert!(c.verdict(t0 + W).0.is_lost());
    }

    #[test]
    fn acks_extend_and_silence_loses() {
        let mut c = QuorumCheck::new(W, 0);
        let t0 = Instant::now();
        c.observe(true, 3, None, false, t0);
        // At t0+400ms openraft reports an ack 50 ms old.
        let t1 = t0 + Duration::from_millis(400);
        c.observe(true, 3, Some(50), false, t1);
        assert_eq!(c.verdict(t0 + Duration::from_millis(800)).0, Quorum::Held);
        assert_eq!(
            c.verdict(t0 + Duration::from_millis(850)).0,
            Quorum::Lost { silent_ms: 500 }
        );
        // An older report (a stale publication) does not rewind the clock.
        c.observe(true, 3, Some(300), false, t1);
        assert_eq!(c.verdict(t0 + Duration::from_millis(800)).0, Quorum::Held);
        // Acks come back: held again.
        let t2 = t0 + Duration::from_millis(2000);
        c.observe(true, 3, Some(10), false, t2);
        assert_eq!(c.verdict(t2).0, Quorum::Held);
    }

    #[test]
    fn the_only_voter_is_its_own_quorum() {
        let mut c = QuorumCheck::new(W, 0);
        let t0 = Instant::now();
        c.observe(true, 3, Some(0), true, t0);
        assert_eq!(c.verdict(t0 + W * 10), (Quorum::Held, None));
        // A second voter joins: the clock counts again.
        c.observe(true, 3, Some(0), false, t0);
        assert!(c.verdict(t0 + W * 10).0.is_lost());
    }

    #[test]
    fn a_leadership_restored_from_disk_waits_for_an_acknowledgement() {
        // The vote on disk at start was ours, committed, in term 7: openraft leads in 7 at once.
        let mut c = QuorumCheck::new(W, 7);
        let t0 = Instant::now();
        c.observe(true, 7, None, false, t0);
        let (q, next) = c.verdict(t0 + Duration::from_millis(100));
        assert_eq!(q, Quorum::Unconfirmed);
        assert!(!q.may_lead() && !q.is_lost());
        assert_eq!(next, Some(t0 + W));
        // Nobody answers (the others moved on to a later term): lost when the window passes.
        assert!(c.verdict(t0 + W).0.is_lost());
        // A quorum answers: a leader like any other.
        let mut c = QuorumCheck::new(W, 7);
        c.observe(true, 7, None, false, t0);
        c.observe(true, 7, Some(5), false, t0 + Duration::from_millis(50));
        assert_eq!(c.verdict(t0 + Duration::from_millis(60)).0, Quorum::Held);
        // An election won here is in a later term: held at once.
        let mut c = QuorumCheck::new(W, 7);
        c.observe(true, 8, None, false, t0);
        assert_eq!(c.verdict(t0).0, Quorum::Held);
        // The only voter needs nobody's answer.
        let mut c = QuorumCheck::new(W, 7);
        c.observe(true, 7, None, true, t0);
        assert_eq!(c.verdict(t0).0, Quorum::Held);
    }

    #[test]
    fn a_new_term_restarts_the_clock() {
        let mut c = QuorumCheck::new(W, 0);
        let t0 = Instant::now();
        c.observe(true, 3, Some(0), false, t0);
        let t1 = t0 + W * 4;
        assert!(c.verdict(t1).0.is_lost());
        c.observe(true, 4, None, false, t1);
        assert_eq!(c.verdict(t1).0, Quorum::Held);
    }
}
