//! The fault schedule and the workload's randomness, derived from the seed alone: the same
//! seed gives the same faults in the same order with the same hold times (which manager a
//! "leader" fault hits still depends on who leads at that moment). Owns the plan only; it
//! must not inject anything or read the clock.

use serde::{Deserialize, Serialize};

/// SplitMix64: a tiny generator whose output is fixed forever by its seed (a library RNG may
/// change its stream between versions, and a saved seed must replay the same schedule).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FaultKind {
    /// SIGKILL of the leader, restarted after the hold.
    KillLeader,
    /// SIGKILL of a follower, restarted after the hold.
    KillFollower,
    /// SIGSTOP of the leader for longer than an election timeout, then SIGCONT.
    PauseLeader,
    /// SIGSTOP of a follower, then SIGCONT.
    PauseFollower,
    /// A follower cut off from every other host, both ways.
    IsolateFollower,
    /// The leader cut off while clients attached to it go on sending to it.
    IsolateLeader,
    /// One manager drops every packet from another (one direction only).
    OneWay,
    /// Every manager killed with SIGKILL, then all restarted.
    RestartAll,
    /// A manager's state dir (a small tmpfs) filled to the last byte; freed at healing, and
    /// the manager started again if it had stopped on a failed write.
    DiskFull,
    /// A manager (the leader or a follower) demoted to a worker through another manager,
    /// promoted back at healing: Raft membership changes while the workload runs.
    Demote,
    /// A manager killed and started again armed to tear one of its next Raft log writes
    /// (only the first half lands) and die at once of SIGKILL; started again unarmed at
    /// healing, it must recover its log with nothing acknowledged lost.
    TornWrite,
}

impl FaultKind {
    /// The default mix: every run draws from these.
    pub const ALL: [FaultKind; 11] = [
        FaultKind::KillLeader,
        FaultKind::KillFollower,
        FaultKind::PauseLeader,
        FaultKind::PauseFollower,
        FaultKind::IsolateFollower,
        FaultKind::IsolateLeader,
        FaultKind::OneWay,
        FaultKind::RestartAll,
        FaultKind::DiskFull,
        FaultKind::Demote,
        FaultKind::TornWrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillLeader => "kill-leader",
            FaultKind::KillFollower => "kill-follower",
            FaultKind::PauseLeader => "pause-leader",
            FaultKind::PauseFollower => "pause-follower",
            FaultKind::IsolateFollower => "isolate-follower",
            FaultKind::IsolateLeader => "isolate-leader",
            FaultKind::OneWay => "one-way",
            FaultKind::RestartAll => "restart-all",
            FaultKind::DiskFull => "disk-full",
            FaultKind::Demote => "demote",
            FaultKind::TornWrite => "torn-write",
        }
    }

    /// The kind named `name` (as [`FaultKind::name`] spells it).
    pub fn parse(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One planned fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    pub kind: FaultKind,
    /// Picks among the candidate managers when the fault is injected (`pick % candidates`).
    pub pick: u64,
    /// A second pick, for faults between two managers.
    pub pick2: u64,
    /// How long the fault lasts before it is healed.
    pub hold_ms: u64,
    /// How long the workload runs on a healthy cluster before the next fault.
    pub calm_ms: u64,
}

/// `faults` faults from `seed`: every kind once (in a seeded order) before any repeats, so
/// even a short run meets them all.
pub fn schedule(seed: u64, faults: usize) -> Vec<Planned> {
    schedule_of(seed, faults, &FaultKind::ALL)
}

/// As [`schedule`], drawing from `only` (all kinds when empty): a run aimed at a few kinds.
pub fn schedule_of(seed: u64, faults: usize, only: &[FaultKind]) -> Vec<Planned> {
    let all: &[FaultKind] = if only.is_empty() {
        &FaultKind::ALL
    } else {
        only
    };
    let mut rng = Rng::new(seed);
    let mut kinds = all.to_vec();
    // Fisher–Yates with the seeded generator.
    for i in (1..kinds.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        kinds.swap(i, j);
    }
    (0..faults)
        .map(|i| {
            let kind = match kinds.get(i) {
                Some(k) => *k,
                None => all[rng.below(all.len() as u64) as usize],
            };
            // Longer than the election timeout (1 s at the 100 ms ticks the managers run),
            // so pauses and partitions do cause elections.
            let hold_ms = 1_500 + rng.below(2_000);
            Planned {
                kind,
                pick: rng.next_u64(),
                pick2: rng.next_u64(),
                hold_ms,
                calm_ms: 500 + rng.below(1_000),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        assert_eq!(schedule(19, 30), schedule(19, 30));
        assert_ne!(schedule(19, 30), schedule(20, 30));
        // A prefix of a longer run is the shorter run.
        assert_eq!(schedule(7, 60)[..20], schedule(7, 20)[..]);
    }

    #[test]
    fn every_kind_comes_before_any_repeats() {
        let s = schedule(3, FaultKind::ALL.len());
        let kinds: BTreeSet<FaultKind> = s.iter().map(|p| p.kind).collect();
        assert_eq!(kinds.len(), FaultKind::ALL.len());
        assert!(s.iter().all(|p| p.hold_ms >= 1_500 && p.hold_ms < 3_500));
    }

    #[test]
    fn a_run_aimed_at_some_kinds_draws_only_those() {
        let only = [FaultKind::Demote, FaultKind::DiskFull];
        let s = schedule_of(5, 40, &only);
        assert!(s.iter().all(|p| only.contains(&p.kind)));
        assert!(s.iter().any(|p| p.kind == FaultKind::Demote));
        assert_eq!(schedule_of(5, 40, &[]), schedule(5, 40));
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::parse(k.name()), Some(k));
        }
        assert_eq!(FaultKind::parse("no-such-fault"), None);
    }

    #[test]
    fn the_generator_is_the_fixed_splitmix64_stream() {
        // SplitMix64's published first output for seed 0: a saved seed must replay exactly.
        assert_eq!(Rng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }
}
