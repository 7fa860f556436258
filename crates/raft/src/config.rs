//! Raft settings as SwarmKit expresses them (ticks), and their translation into openraft's
//! millisecond-based `Config`. Owns no state.

use std::path::PathBuf;
use std::time::Duration;

use openraft::SnapshotPolicy;
use swarm_api::defaults;

use crate::at_rest::DataKey;
use crate::error::RaftError;

/// Largest snapshot chunk sent in one InstallSnapshot message: with framing it stays well under
/// the 4 MiB a gRPC peer accepts by default.
const SNAPSHOT_CHUNK_BYTES: u64 = 1024 * 1024;

/// How long one InstallSnapshot call may take. The answer to the last chunk waits until the
/// member has installed the snapshot (decoded, saved and loaded it: 29 s for a store of a
/// million tasks on a loaded 2-vCPU machine), and a call that times out makes openraft start
/// the whole transfer again from its first byte. The other chunks' calls get a shorter
/// deadline (`network`), so a member that stopped answering is given up on sooner.
const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 120_000;

/// At most this many entries per AppendEntries; fewer entries keep each message small, and an
/// oversize batch is split further by the network layer.
const MAX_PAYLOAD_ENTRIES: u64 = 64;

/// Settings of one manager's Raft member.
#[derive(Debug, Clone)]
pub struct RaftConfig {
    /// The node's state dir; this crate owns `<state_dir>/raft/`.
    pub state_dir: PathBuf,
    /// This manager's Raft node id (nonzero).
    pub raft_id: u64,
    /// host:port where peers reach this manager's remote API.
    pub advertise_addr: String,
    /// Length of one tick. SwarmKit's is 1 s; the node's default is shorter (see its config).
    pub tick_ms: u64,
    /// Leader heartbeat period, in ticks.
    pub heartbeat_tick: u32,
    /// Election timeout, in ticks: a follower that stops hearing from its leader campaigns a
    /// random 1.5-2 election timeouts later (see `to_openraft`).
    pub election_tick: u32,
    /// Take a snapshot after this many entries since the last one.
    pub snapshot_interval: u64,
    /// Entries kept in the log behind a snapshot, so a slightly slow follower catches up from
    /// the log instead of a whole snapshot.
    pub log_entries_for_slow_followers: u64,
    /// Upper bound on how long `propose` waits for its entry to be applied before giving up
    /// with `Unavailable` (the entry may still commit later). The effective deadline is also
    /// capped at two election timeouts (5 s at least); see [`RaftConfig::propose_deadline`].
    pub propose_timeout_ms: u64,
    /// Log entries a leader has in flight at once (group commit): while they are, concurrent
    /// proposals gather into the next entry. See `group_commit`.
    pub entries_in_flight: usize,
    /// The key sealing the log and snapshots. `None`: load it from the state dir (creating it
    /// with a new Raft dir), see [`crate::load_data_key`]. Autolock supplies its own here.
    pub data_key: Option<DataKey>,
}

/// Default of [`RaftConfig::entries_in_flight`].
pub const DEFAULT_ENTRIES_IN_FLIGHT: usize = 2;

/// One group-commit entry closes before its transactions pass this many bytes (a larger
/// transaction goes alone): entries stay far below a peer's message limit.
const GROUP_MAX_BYTES: usize = 1024 * 1024;

/// Nor more than this many transactions in one entry.
const GROUP_MAX_LEN: usize = 1024;

/// The shortest deadline `propose` is given, whatever the ticks (see
/// [`RaftConfig::propose_deadline`]).
pub const PROPOSE_DEADLINE_FLOOR: Duration = Duration::from_secs(5);

impl RaftConfig {
    /// Settings with SwarmKit's defaults for everything but identity and place.
    pub fn new(
        state_dir: impl Into<PathBuf>,
        raft_id: u64,
        advertise_addr: impl Into<String>,
    ) -> Self {
        RaftConfig {
            state_dir: state_dir.into(),
            raft_id,
            advertise_addr: advertise_addr.into(),
            tick_ms: 1000,
            heartbeat_tick: defaults::HEARTBEAT_TICK,
            election_tick: defaults::ELECTION_TICK,
            snapshot_interval: defaults::SNAPSHOT_INTERVAL,
            log_entries_for_slow_followers: defaults::LOG_ENTRIES_FOR_SLOW_FOLLOWERS,
            propose_timeout_ms: 30_000,
            entries_in_flight: DEFAULT_ENTRIES_IN_FLIGHT,
            data_key: None,
        }
    }

    pub(crate) fn group_limits(&self) -> crate::group_commit::Limits {
        crate::group_commit::Limits {
            in_flight: self.entries_in_flight,
            max_bytes: GROUP_MAX_BYTES,
            max_len: GROUP_MAX_LEN,
        }
    }

    /// Where the log, vote and snapshots live.
    pub fn raft_dir(&self) -> PathBuf {
        self.state_dir.join("raft")
    }

    /// One election timeout (`tick_ms × election_tick`), SwarmKit's unit for failure detection.
    pub fn election_timeout(&self) -> Duration {
        Duration::from_millis(self.tick_ms.saturating_mul(u64::from(self.election_tick)))
    }

    /// openraft's leader lease: how long a follower that heard from its leader refuses to vote
    /// for anyone else. openraft 0.9 takes it to be `election_timeout_max`, so that is set to
    /// one election timeout (see `to_openraft`).
    pub(crate) fn leader_lease(&self) -> Duration {
        self.election_timeout()
    }

    /// The shortest randomised wait a follower adds to the lease before it campaigns
    /// (`election_timeout_min`): half an election timeout, but above the heartbeat interval,
    /// which openraft requires.
    fn election_wait_min(&self) -> Duration {
        let heartbeat = self.tick_ms.saturating_mul(u64::from(self.heartbeat_tick));
        (self.election_timeout() / 2).max(Duration::from_millis(heartbeat.saturating_add(1)))
    }

    /// How long a leader may go without an acknowledgement from a quorum before it stops
    /// acting as leader (check-quorum; see the `quorum` module).
    ///
    /// openraft's followers campaign only once the lease *and* their randomised wait have run
    /// out since they last heard from the leader, so no other member can start an election
    /// (let alone win one) before lease + `election_timeout_min` have passed since the leader's
    /// last acknowledged heartbeat; stepping down sooner would only open a window with no
    /// leader at all. openraft also timestamps an acknowledgement with the *sending* time of a
    /// request that may sit behind a multi-MiB AppendEntries, so the shortest safe window is
    /// also the one least prone to flapping under load. Hence 1.5 election timeouts.
    pub(crate) fn quorum_window(&self) -> Duration {
        self.leader_lease() + self.election_wait_min()
    }

    /// How long `propose` waits at most: `propose_timeout_ms`, but never more than two election
    /// timeouts (the quorum window plus half a timeout) or [`PROPOSE_DEADLINE_FLOOR`],
    /// whichever is longer. By then a healthy cluster has long committed, and a sick one has
    /// either lost quorum (which fails the proposal first, with the clearer error) or is
    /// electing another leader; waiting longer only holds the caller hostage, and a caller
    /// that retries reaches the new leader sooner. The floor is for a healthy cluster on a
    /// starved machine: with 100 ms ticks, two election timeouts are 2 s, which a lone manager
    /// answering a thousand clients next to a compiler overran, failing writes that then
    /// committed.
    pub fn propose_deadline(&self) -> Duration {
        Duration::from_millis(self.propose_timeout_ms)
            .min((self.election_timeout() * 2).max(PROPOSE_DEADLINE_FLOOR))
    }

    pub(crate) fn to_openraft(&self) -> Result<openraft::Config, RaftError> {
        if self.raft_id == 0 {
            return Err(RaftError::Config("raft_id must be nonzero".into()));
        }
        if self.tick_ms == 0
            || self.heartbeat_tick == 0
            || self.election_tick <= self.heartbeat_tick
        {
            return Err(RaftError::Config(format!(
                "need tick_ms > 0 and election_tick ({}) > heartbeat_tick ({}) > 0",
                self.election_tick, self.heartbeat_tick
            )));
        }
        let heartbeat = self.tick_ms * u64::from(self.heartbeat_tick);
        let election = self.tick_ms * u64::from(self.election_tick);
        let wait_min = u64::try_from(self.election_wait_min().as_millis()).unwrap_or(u64::MAX);
        // openraft 0.9 has no separate lease setting: a follower refuses votes for
        // `election_timeout_max` after hearing from its leader, then waits a random time in
        // `election_timeout_min..election_timeout_max` (drawn once per process) before it
        // campaigns. SwarmKit's (etcd's) followers campaign a random [E, 2E) after the last
        // heartbeat; with max = E and min = E/2 ours campaign within [1.5E, 2E), inside that
        // range. With the former min = E, max = 2E a lost leader took 3E-4E to replace.
        let cfg = openraft::Config {
            cluster_name: "swarm".into(),
            heartbeat_interval: heartbeat,
            election_timeout_min: wait_min,
            // Also the leader lease; `quorum_window` relies on it.
            election_timeout_max: election,
            install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS.max(election),
            max_payload_entries: MAX_PAYLOAD_ENTRIES,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_interval.max(1)),
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            max_in_snapshot_log_to_keep: self.log_entries_for_slow_followers,
            // openraft asks for this to exceed the snapshot interval, or a snapshot may not be
            // enough to bring a lagging follower back.
            replication_lag_threshold: self.snapshot_interval.max(1)
                + self.log_entries_for_slow_followers,
            ..Default::default()
        };
        cfg.validate().map_err(|e| RaftError::Config(e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ticks_become_milliseconds() {
        let mut c = RaftConfig::new("/tmp/x", 1, "127.0.0.1:1");
        c.tick_ms = 100;
        let o = c.to_openraft().unwrap();
        assert_eq!(o.heartbeat_interval, 100);
        assert_eq!(o.election_timeout_min, 500);
        assert_eq!(o.election_timeout_max, 1000);
        assert_eq!(o.max_in_snapshot_log_to_keep, 500);
        // The last chunk's call lasts as long as the install: never an election timeout.
        assert_eq!(o.install_snapshot_timeout, INSTALL_SNAPSHOT_TIMEOUT_MS);
        assert_eq!(
            c.leader_lease(),
            Duration::from_millis(o.election_timeout_max)
        );
        assert_eq!(c.quorum_window(), Duration::from_millis(1500));
        assert_eq!(c.propose_deadline(), PROPOSE_DEADLINE_FLOOR);
        c.tick_ms = 1000;
        assert_eq!(c.propose_deadline(), Duration::from_secs(20));
        c.propose_timeout_ms = 500;
        assert_eq!(c.propose_deadline(), Duration::from_millis(500));
    }

    #[test]
    fn the_shortest_wait_stays_above_the_heartbeat() {
        let mut c = RaftConfig::new("/tmp/x", 1, "127.0.0.1:1");
        c.tick_ms = 100;
        c.heartbeat_tick = 1;
        c.election_tick = 2;
        let o = c.to_openraft().unwrap();
        assert_eq!(o.election_timeout_min, 101);
        assert_eq!(o.election_timeout_max, 200);
    }

    #[test]
    fn zero_id_is_refused() {
        assert!(RaftConfig::new("/tmp/x", 0, "a:1").to_openraft().is_err());
    }
}
