//! [`RaftNode`]: the handle the manager uses — open/restart, bootstrap, propose, leadership,
//! membership and shutdown. Owns the wiring of log store, state machine, network and openraft;
//! the pieces themselves live in their own modules.
//!
//! Proposals fail fast when this member leads without a quorum (see `quorum` for the
//! check-quorum rule): at once if quorum is already known lost, otherwise as soon as it is lost
//! while the proposal waits, and never later than [`RaftNode::propose`]'s deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError};
use openraft::storage::RaftLogStorage;
use openraft::BasicNode;
use swarm_api::raft_server::RaftServer;
use swarm_api::{StoreBatch, StoreObject};
use swarm_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::at_rest::load_data_key;
use crate::config::RaftConfig;
use crate::error::{DiskError, RaftError};
use crate::group_commit::GroupCommit;
use crate::leadership::{self, Leadership};
use crate::log_store::LogStore;
use crate::network::{NetworkFactory, PeerConnector, MAX_MESSAGE};
use crate::quorum::Quorum;
use crate::service::RaftGrpc;
use crate::snapshot_file::SnapshotDir;
use crate::state_machine::StateMachine;
use crate::types::{LogId, NodeId, OpenRaft};
use swarm_store::{GroupMembership, MembershipError, ProposeFuture, Proposer, WriteError};

/// How long a leader waits for a new member to catch up before giving up on adding it (the
/// joining manager asks again). Under the joining manager's own deadline for the whole join.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(100);

/// How long shutdown waits for openraft's tasks to let go of the log file.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// One manager's Raft member. Cheap to clone; all clones drive the same member.
#[derive(Clone)]
pub struct RaftNode {
    inner: Arc<Inner>,
}

struct Inner {
    raft: OpenRaft,
    cfg: RaftConfig,
    has_state: bool,
    leadership: watch::Receiver<Leadership>,
    /// Whether this member leads: wakes only when that flips.
    leads: watch::Receiver<bool>,
    /// How this member dials the others (also the route to the leader).
    peers: Arc<dyn PeerConnector>,
    /// The leader's check-quorum verdict, kept by the leadership watcher.
    quorum: watch::Receiver<Quorum>,
    watcher: Mutex<Option<JoinHandle<()>>>,
    /// The queue every proposal goes through.
    commits: GroupCommit,
    log_db: Weak<redb::Database>,
}

/// Log positions of one member (see [`RaftNode::status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftStatus {
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    /// Last entry covered by the newest snapshot.
    pub snapshot_index: Option<u64>,
    /// Last entry removed from the log.
    pub purged_index: Option<u64>,
}

type OpenRaftError<E> = openraft::error::RaftError<NodeId, E>;

impl RaftNode {
    /// Opens (or creates) the durable log and snapshots, restores `store` from the newest
    /// snapshot and starts openraft, which then re-applies the committed log after it.
    pub async fn open(
        cfg: RaftConfig,
        store: Store,
        peers: Arc<dyn PeerConnector>,
    ) -> Result<RaftNode, RaftError> {
        let ocfg = Arc::new(cfg.to_openraft()?);
        let dir = cfg.raft_dir();
        let state_dir = cfg.state_dir.clone();
        let given_key = cfg.data_key.clone();
        let (log, sm, has_state) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| DiskError::io(dir.display(), e))?;
            // Before the log is created: a Raft dir with state but no key is refused there.
            let key = match given_key {
                Some(k) => k,
                None => load_data_key(&state_dir, true)?,
            };
            let (log, log_state) = LogStore::open(&dir.join("log.redb"), key.clone())?;
            let snaps = SnapshotDir::open(dir.join("snapshots"), key)
                .map_err(|e| DiskError::io(dir.display(), e))?;
            let (sm, had_snapshot) = StateMachine::open(store, snaps)?;
            Ok::<_, RaftError>((log, sm, log_state || had_snapshot))
        })
        .await
        .map_err(|source| DiskError::Task {
            context: "opening the raft state".into(),
            source,
        })??;

        let log_db = log.weak();
        // openraft restores a committed vote of our own as leadership without an election; the
        // quorum check holds such a leadership back until a quorum confirms it (see `quorum`).
        let restored_term = log
            .clone()
            .read_vote()
            .await
            .map_err(|e| RaftError::Fatal(Box::new(e)))?
            .map_or(0, |v| v.leader_id().get_term());
        let raft = OpenRaft::new(
            cfg.raft_id,
            ocfg,
            NetworkFactory::new(peers.clone()),
            log,
            sm,
        )
        .await
        .map_err(|e| RaftError::Fatal(Box::new(e)))?;
        let commits = GroupCommit::start(raft.clone(), cfg.group_limits());
        let (tx, rx) = watch::channel(Leadership::default());
        let (quorum_tx, quorum_rx) = watch::channel(Quorum::NotLeading);
        let (leads_tx, leads_rx) = watch::channel(false);
        let watcher = leadership::spawn_watcher(
            &raft,
            cfg.quorum_window(),
            restored_term,
            leadership::Publish {
                leadership: tx,
                quorum: quorum_tx,
                leads: leads_tx,
            },
        );
        tracing::info!(raft_id = cfg.raft_id, has_state, "raft member opened");
        Ok(RaftNode {
            inner: Arc::new(Inner {
                raft,
                cfg,
                has_state,
                leadership: rx,
                leads: leads_rx,
                peers,
                quorum: quorum_rx,
                watcher: Mutex::new(Some(watcher)),
                commits,
                log_db,
            }),
        })
    }

    /// True when the state dir already held a log, vote or snapshot (a restart).
    pub fn has_state(&self) -> bool {
        self.inner.has_state
    }

    /// Resolves when openraft stops by itself on a fatal error — a log write that failed
    /// because the disk is full or the file went away — with that error. Pending while the
    /// member runs; `None` once it stopped because it was asked to. A member in that state
    /// answers nothing ever again, so its owner must stop (see the node's manager role).
    pub async fn failure(&self) -> Option<RaftError> {
        let mut metrics = self.inner.raft.metrics();
        loop {
            let fatal = match &metrics.borrow_and_update().running_state {
                Ok(()) => None,
                Err(openraft::error::Fatal::Stopped) => return None,
                Err(f) => Some(f.clone()),
            };
            if let Some(f) = fatal {
                return Some(RaftError::Fatal(Box::new(f)));
            }
            if metrics.changed().await.is_err() {
                return None;
            }
        }
    }

    /// This member's Raft id.
    pub fn raft_id(&self) -> u64 {
        self.inner.cfg.raft_id
    }

    /// Initialises a new one-member cluster with this node as its voter (the first manager).
    pub async fn bootstrap(&self) -> Result<(), RaftError> {
        let mut members = BTreeMap::new();
        members.insert(
            self.inner.cfg.raft_id,
            BasicNode::new(&self.inner.cfg.advertise_addr),
        );
        match self.inner.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(OpenRaftError::APIError(InitializeError::NotAllowed(_))) => {
                Err(RaftError::AlreadyInitialized)
            }
            Err(OpenRaftError::APIError(e)) => Err(RaftError::Membership(e.to_string())),
            Err(OpenRaftError::Fatal(e)) => Err(RaftError::Fatal(Box::new(e))),
        }
    }

    /// Commits one transaction and returns once it is applied to this member's store, with the
    /// objects as written. Transactions proposed concurrently share log entries (`group_commit`);
    /// each still lands or is refused on its own.
    ///
    /// Fails with [`WriteError::Unavailable`] (message containing "quorum") at once when this
    /// member leads without a quorum, or as soon as quorum is lost while waiting; and with
    /// `Unavailable` after [`RaftConfig::propose_deadline`] otherwise. After a failure while
    /// waiting the entry may still commit: callers must not assume either outcome.
    pub async fn propose(&self, batch: StoreBatch) -> Result<Vec<StoreObject>, WriteError> {
        let mut quorum = self.inner.quorum.clone();
        let now = *quorum.borrow_and_update();
        if let Quorum::Lost { silent_ms } = now {
            return Err(quorum_lost(silent_ms, false));
        }
        let deadline = self.inner.cfg.propose_deadline();
        let lost = async {
            let res = quorum.wait_for(Quorum::is_lost).await;
            res.map(|q| *q)
        };
        tokio::select! {
            res = self.inner.commits.propose(batch) => res,
            // A closed channel (raft stopped) disables this branch; the write then reports it.
            Ok(Quorum::Lost { silent_ms }) = lost => Err(quorum_lost(silent_ms, true)),
            _ = tokio::time::sleep(deadline) => {
                Err(WriteError::Unavailable(format!(
                    "not applied within {deadline:?}; it may still commit"
                )))
            }
        }
    }

    /// Leadership changes, starting with the current view.
    pub fn leadership(&self) -> watch::Receiver<Leadership> {
        self.inner.leadership.clone()
    }

    /// The way to the leader for calls a follower passes on (the member's own connector).
    pub fn leader_route(&self) -> crate::route::RaftRoute {
        crate::route::RaftRoute::new(self.leadership(), self.inner.peers.clone())
    }

    /// Whether this member leads, woken only when that changes (false once Raft stops): what
    /// the leader-only components start and stop on.
    pub fn is_leader_watch(&self) -> watch::Receiver<bool> {
        self.inner.leads.clone()
    }

    /// The `Raft` gRPC service to mount on the manager's (mTLS) remote API server.
    pub fn grpc_service(&self) -> RaftServer<RaftGrpc> {
        RaftServer::new(self.grpc_handler())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// The service's handler without its transport: what the fuzz targets call with peers'
    /// messages as bytes.
    pub fn grpc_handler(&self) -> RaftGrpc {
        RaftGrpc::new(self.inner.raft.clone(), self.inner.cfg.raft_id)
    }

    /// Adds a non-voting member and waits until it has caught up with the log. Leader only.
    pub async fn add_learner(&self, raft_id: u64, addr: &str) -> Result<(), RaftError> {
        let res = self
            .inner
            .raft
            .add_learner(raft_id, BasicNode::new(addr), false)
            .await;
        let added = res.map_err(membership_error)?;
        self.wait_caught_up(raft_id, added.log_id).await
    }

    /// Waits until this leader has replicated to `raft_id` everything in its log now.
    ///
    /// openraft's own wait (`add_learner` with `blocking`) counts a learner as caught up once
    /// it is within `replication_lag_threshold` entries (snapshot interval + slow-follower
    /// entries, 10,500 by default) of the leader: with a shorter log, at once. A joining
    /// manager was then promoted while it was still receiving and installing the snapshot,
    /// and with two voters the leader had no quorum for as long as that took (36 s for a
    /// 1M-task store).
    ///
    /// `added` is the log id of the membership entry that added it: until the metrics show
    /// that entry, a member missing from them has not left, it is not in them yet.
    async fn wait_caught_up(&self, raft_id: u64, added: LogId) -> Result<(), RaftError> {
        let target = self
            .inner
            .raft
            .metrics()
            .borrow()
            .last_log_index
            .unwrap_or(0)
            .max(added.index);
        let waited = self.wait_metrics(CATCH_UP_TIMEOUT, |m| {
            let seen = *m.membership_config.log_id() >= Some(added);
            if seen
                && m.membership_config
                    .membership()
                    .get_node(&raft_id)
                    .is_none()
            {
                return Some(Err(RaftError::Membership(format!(
                    "member {raft_id:x} left while catching up"
                ))));
            }
            let Some(repl) = &m.replication else {
                return Some(Err(RaftError::NotLeader {
                    leader_id: m.current_leader,
                    leader_addr: None,
                }));
            };
            let matched = repl.get(&raft_id).and_then(|l| l.map(|l| l.index));
            matched.filter(|i| *i >= target).map(|_| Ok(()))
        });
        waited.await.unwrap_or_else(|| {
            Err(RaftError::Unavailable(format!(
                "member {raft_id:x} did not catch up to index {target} within {CATCH_UP_TIMEOUT:?}"
            )))
        })
    }

    /// Reads openraft's metrics, now and at each change, until `check` has an answer; None
    /// when `timeout` passes first. Raft stopping is an answer: `Unavailable`.
    async fn wait_metrics<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&openraft::RaftMetrics<NodeId, BasicNode>) -> Option<Result<T, RaftError>>,
    ) -> Option<Result<T, RaftError>> {
        let mut metrics = self.inner.raft.metrics();
        let answer = async {
            loop {
                if let Some(answer) = check(&metrics.borrow_and_update()) {
                    return answer;
                }
                if metrics.changed().await.is_err() {
                    return Err(RaftError::Unavailable("raft stopped".into()));
                }
            }
        };
        tokio::time::timeout(timeout, answer).await.ok()
    }

    /// Replaces the set of voters; members not listed leave the cluster. Leader only.
    pub async fn change_membership(&self, voters: BTreeSet<u64>) -> Result<(), RaftError> {
        let res = self.inner.raft.change_membership(voters, false).await;
        res.map(|_| ()).map_err(membership_error)
    }

    /// Adds a manager as a voter: first as a learner so it catches up without counting toward
    /// quorum, then promoted.
    ///
    /// The promotion names only this member (not a whole new voter set read beforehand): two
    /// managers joining at once would otherwise each write "the voters I saw, plus me", and the
    /// second change would silently demote the first joiner back to a learner.
    /// openraft takes one configuration change at a time, so a promotion that meets another
    /// change in flight waits for it and tries again.
    pub async fn add_voter(&self, raft_id: u64, addr: &str) -> Result<(), RaftError> {
        let raft = &self.inner.raft;
        let mut attempts = 0;
        loop {
            let res = match raft.add_learner(raft_id, BasicNode::new(addr), false).await {
                Ok(added) => {
                    // Promoted only once caught up: a voter that is still installing the
                    // snapshot would count toward quorum without being able to answer.
                    self.wait_caught_up(raft_id, added.log_id).await?;
                    raft.change_membership(
                        openraft::ChangeMembers::AddVoterIds(BTreeSet::from([raft_id])),
                        false,
                    )
                    .await
                    .map(|_| ())
                }
                Err(e) => Err(e),
            };
            match res {
                Err(e) if change_in_progress(&e) && attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other.map_err(membership_error),
            }
        }
    }

    /// Removes a member (voter or learner) from the cluster.
    pub async fn remove_member(&self, raft_id: u64) -> Result<(), RaftError> {
        let mut voters = self.voters();
        if !voters.remove(&raft_id) {
            // A learner: replacing the voters with themselves would leave it in.
            return self
                .inner
                .raft
                .change_membership(
                    openraft::ChangeMembers::RemoveNodes(BTreeSet::from([raft_id])),
                    false,
                )
                .await
                .map(|_| ())
                .map_err(membership_error);
        }
        if voters.is_empty() {
            return Err(RaftError::Membership("cannot remove the last voter".into()));
        }
        self.change_membership(voters).await
    }

    /// Every member (voters and learners) with its advertised address, as this member knows it.
    pub fn members(&self) -> Vec<(u64, String)> {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        m.membership_config
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect()
    }

    /// The voting members' ids.
    pub fn voters(&self) -> BTreeSet<u64> {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        m.membership_config.voter_ids().collect()
    }

    /// Log positions as this member sees them, for diagnostics and tests.
    pub fn status(&self) -> RaftStatus {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        RaftStatus {
            term: m.current_term,
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
        }
    }

    /// Takes a snapshot now, outside the `snapshot_interval` policy, and waits until it covers
    /// everything applied when called; returns its last index. openraft then purges the log
    /// behind it (keeping `log_entries_for_slow_followers`), so a member joining afterwards
    /// is brought up from the snapshot: what benches and tests use to measure that path.
    pub async fn snapshot_now(&self, timeout: Duration) -> Result<u64, RaftError> {
        let applied = self.status().last_applied.unwrap_or(0);
        self.inner
            .raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| RaftError::Fatal(Box::new(e)))?;
        let covered = self.wait_metrics(timeout, |m| {
            let at = m.snapshot.map(|l| l.index);
            at.filter(|i| *i >= applied).map(Ok)
        });
        covered.await.unwrap_or_else(|| {
            Err(RaftError::Unavailable(format!(
                "no snapshot covering index {applied} within {timeout:?}"
            )))
        })
    }

    /// Stops openraft and waits until the log file is released, so the same state dir can be
    /// opened again (also in this process).
    pub async fn shutdown(&self) -> Result<(), RaftError> {
        self.inner.commits.stop();
        let res = self.inner.raft.shutdown().await;
        if let Ok(mut w) = self.inner.watcher.lock() {
            // The watcher ends by itself once openraft drops its metrics sender; aborting would
            // skip its final "no leader" update.
            drop(w.take());
        }
        res.map_err(|e| RaftError::Fatal(Box::new(e)))?;
        let deadline = tokio::time::Instant::now() + RELEASE_TIMEOUT;
        while self.inner.log_db.strong_count() > 0 {
            if tokio::time::Instant::now() > deadline {
                return Err(RaftError::Unavailable(
                    "raft log still in use after shutdown".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

fn quorum_lost(silent_ms: u64, in_flight: bool) -> WriteError {
    let tail = if in_flight {
        "; the entry may still commit"
    } else {
        ""
    };
    WriteError::Unavailable(format!(
        "quorum lost: no acknowledgement from a majority of managers for {silent_ms} ms; \
         this member stopped acting as leader{tail}"
    ))
}

/// Whether a membership change was refused only because another one is still in flight.
fn change_in_progress(e: &OpenRaftError<ClientWriteError<NodeId, BasicNode>>) -> bool {
    matches!(
        e,
        OpenRaftError::APIError(ClientWriteError::ChangeMembershipError(
            openraft::error::ChangeMembershipError::InProgress(_)
        ))
    )
}

fn membership_error(e: OpenRaftError<ClientWriteError<NodeId, BasicNode>>) -> RaftError {
    match e {
        OpenRaftError::APIError(ClientWriteError::ForwardToLeader(f)) => RaftError::NotLeader {
            leader_id: f.leader_id,
            leader_addr: f.leader_node.map(|n| n.addr),
        },
        OpenRaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            RaftError::Membership(e.to_string())
        }
        OpenRaftError::Fatal(e) => RaftError::Fatal(Box::new(e)),
    }
}

/// Raft is the cluster's write path: the manager's components propose through this.
impl Proposer for RaftNode {
    fn propose(&self, batch: StoreBatch) -> ProposeFuture {
        let raft = self.clone();
        Box::pin(async move { RaftNode::propose(&raft, batch).await })
    }
}

/// Raft's group is the managers' group: the leader components reconcile it through this.
impl GroupMembership for RaftNode {
    fn member_id(&self) -> u64 {
        self.raft_id()
    }

    fn members(&self) -> Vec<(u64, String)> {
        RaftNode::members(self)
    }

    fn remove_member(
        &self,
        id: u64,
    ) -> Pin<Box<dyn Future<Output = Result<(), MembershipError>> + Send + 'static>> {
        let raft = self.clone();
        Box::pin(async move {
            RaftNode::remove_member(&raft, id)
                .await
                .map_err(|e| Box::new(e) as MembershipError)
        })
    }
}
