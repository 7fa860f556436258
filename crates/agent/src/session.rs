//! The session with a manager's dispatcher: open it, keep it alive with heartbeats, pass its
//! assignments on, and when anything breaks, tear it down and open one with the next manager
//! after a jittered, doubling backoff.
//!
//! Owns the list of manager addresses (refreshed from what managers send) and the current
//! session, which it publishes to the reporter. Must not interpret assignments (the worker
//! does) nor hold task state.

use std::time::Duration;

use rand::Rng;
use swarm_api::dispatcher_client::DispatcherClient;
use swarm_api::Node as NodeObject;
use swarm_api::{
    AssignmentsMessage, AssignmentsRequest, HeartbeatRequest, NetworksMessage, NetworksRequest,
    NodeDescription, SessionMessage, SessionRequest,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::reporter::SessionLink;
use crate::ConnectFn;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Connecting and opening a session must finish within this, or the manager counts as down.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Each opening that timed out doubles the next one's time, up to this. A manager that is
/// merely slow (thousands of agents reconnecting at once) then gets to finish: an opening given
/// up on is work it did for nothing (a TLS handshake, a node write) and, worse, the session it
/// opens late replaces the one the agent opened meanwhile.
const OPEN_TIMEOUT_MAX: Duration = Duration::from_secs(60);
/// A session that lived this long resets the reconnect wait.
const SESSION_LASTED: Duration = Duration::from_secs(10);
/// A heartbeat unanswered this long (at least) means the manager is gone (e.g. partitioned).
const MIN_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("connecting to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("{what}: {status}")]
    Rpc {
        what: &'static str,
        status: tonic::Status,
    },
    /// Connecting or an opening step.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// A session that was open went quiet: the manager is gone (e.g. partitioned), not slow.
    #[error("heartbeat timed out")]
    HeartbeatTimeout,
    #[error("{0} stream closed by the manager")]
    Closed(&'static str),
}

impl SessionError {
    /// Connecting or one of the opening steps took too long.
    fn opening_timed_out(&self) -> bool {
        matches!(self, SessionError::Timeout(_))
    }

    /// The leader's address a refusing follower put in the response metadata.
    fn leader_hint(&self) -> Option<String> {
        let SessionError::Rpc { status, .. } = self else {
            return None;
        };
        let addr = status
            .metadata()
            .get(swarm_api::LEADER_METADATA)?
            .to_str()
            .ok()?;
        (!addr.is_empty()).then(|| addr.to_string())
    }
}

fn rpc(what: &'static str) -> impl FnOnce(tonic::Status) -> SessionError {
    move |status| SessionError::Rpc { what, status }
}

/// Everything the session loop needs, fixed for the agent's life.
pub(crate) struct SessionConfig {
    pub managers: Vec<String>,
    pub connect: ConnectFn,
    pub description: NodeDescription,
    pub advertise_addr: String,
    /// Where the node's object from each session message goes.
    pub node: watch::Sender<Option<NodeObject>>,
    /// Where the managers' network view of this node goes (the data plane follows it).
    pub networks: watch::Sender<Option<NetworksMessage>>,
}

/// The next network view, or never when the manager serves none.
async fn next_view(
    s: &mut Option<tonic::Streaming<NetworksMessage>>,
) -> Result<Option<NetworksMessage>, tonic::Status> {
    match s {
        Some(s) => s.message().await,
        None => std::future::pending().await,
    }
}

/// Keeps a session open with some manager until `stop` fires.
pub(crate) async fn run(
    cfg: SessionConfig,
    assignments: mpsc::UnboundedSender<AssignmentsMessage>,
    link: watch::Sender<Option<SessionLink>>,
    stop: CancellationToken,
) {
    let mut managers = cfg.managers.clone();
    let mut current = managers.first().cloned().unwrap_or_default();
    let mut backoff = BACKOFF_MIN;
    let mut patience = OPEN_TIMEOUT;
    loop {
        let mut open = Open {
            cfg: &cfg,
            addr: current.clone(),
            managers: &mut managers,
            assignments: &assignments,
            link: &link,
            established: false,
            patience,
        };
        let began = Instant::now();
        let result = tokio::select! {
            _ = stop.cancelled() => None,
            r = open.run() => Some(r),
        };
        // A session the manager ends right after opening it (an overloaded leader whose
        // heartbeat deadlines run out, or a newer session of ours replacing it) is no sign of
        // health: the wait only starts over after a session that lasted.
        let established = open.established && began.elapsed() >= SESSION_LASTED;
        link.send_replace(None);
        let Some(Err(e)) = result else { return };
        tracing::warn!(manager = %current, error = %e, "dispatcher session ended; reconnecting");
        if established {
            backoff = BACKOFF_MIN;
            patience = OPEN_TIMEOUT;
        }
        if e.opening_timed_out() {
            patience = (patience * 2).min(OPEN_TIMEOUT_MAX);
        }
        current = match e.leader_hint() {
            // A follower named the leader: go there next. The wait is not reset: a hint says
            // where to go, not that the leader can take the session. After a failover 5,000
            // agents bounced between a busy new leader (sessions timing out) and its
            // followers (hints) every 100 ms, and their TLS handshakes kept the managers too
            // busy to ever open their sessions. Once a session is established the wait is
            // short again, so the usual single redirect stays quick.
            Some(leader) => {
                if !managers.contains(&leader) {
                    managers.insert(0, leader.clone());
                }
                leader
            }
            None => next_manager(&managers, &current),
        };
        // Full jitter in the upper half: many agents losing one manager do not all return at once.
        let delay = backoff.mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
        backoff = (backoff * 2).min(BACKOFF_MAX);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// The address after `current` in the list, wrapping around.
fn next_manager(managers: &[String], current: &str) -> String {
    let i = managers.iter().position(|m| m == current);
    let next = i.map_or(0, |i| (i + 1) % managers.len().max(1));
    managers
        .get(next)
        .cloned()
        .unwrap_or_else(|| current.to_string())
}

/// The manager list learned from a session, then the configured ones it did not name (they
/// stay as a fallback should every learned address fail).
fn merge_managers(configured: &[String], learned: &SessionMessage) -> Vec<String> {
    let mut list: Vec<String> = learned
        .managers
        .iter()
        .map(|p| p.addr.clone())
        .filter(|a| !a.is_empty())
        .collect();
    for m in configured {
        if !list.contains(m) {
            list.push(m.clone());
        }
    }
    list
}

/// `period` ±10 %, so a cluster's heartbeats spread out.
fn jittered(period: Duration) -> Duration {
    period.mul_f64(rand::thread_rng().gen_range(0.9..=1.1))
}

fn period_of(ms: i64) -> Duration {
    let ms = if ms > 0 {
        ms
    } else {
        swarm_api::defaults::HEARTBEAT_PERIOD_MS
    };
    Duration::from_millis(u64::try_from(ms).unwrap_or(5_000))
}

/// One session attempt with one manager.
struct Open<'a> {
    cfg: &'a SessionConfig,
    addr: String,
    managers: &'a mut Vec<String>,
    assignments: &'a mpsc::UnboundedSender<AssignmentsMessage>,
    link: &'a watch::Sender<Option<SessionLink>>,
    established: bool,
    /// How long connecting and each opening step may take.
    patience: Duration,
}

impl Open<'_> {
    async fn run(&mut self) -> Result<(), SessionError> {
        let addr = self.addr.clone();
        let channel = tokio::time::timeout(self.patience, (self.cfg.connect)(addr.clone()))
            .await
            .map_err(|_| SessionError::Timeout("connecting"))?
            .map_err(|reason| SessionError::Connect { addr, reason })?;
        let mut client = DispatcherClient::new(channel.clone());
        let request = SessionRequest {
            description: Some(self.cfg.description.clone()),
            addr: self.cfg.advertise_addr.clone(),
        };
        let (mut session, first) = tokio::time::timeout(self.patience, async {
            let mut s = client
                .session(request)
                .await
                .map_err(rpc("opening session"))?
                .into_inner();
            let first = s
                .message()
                .await
                .map_err(rpc("session"))?
                .ok_or(SessionError::Closed("session"))?;
            Ok::<_, SessionError>((s, first))
        })
        .await
        .map_err(|_| SessionError::Timeout("opening session"))??;
        let session_id = first.session_id.clone();
        if first.node.is_some() {
            self.cfg.node.send_replace(first.node.clone());
        }
        let mut period = period_of(first.heartbeat_period_ms);
        *self.managers = merge_managers(&self.cfg.managers, &first);
        let mut tasks = tokio::time::timeout(
            self.patience,
            client.assignments(AssignmentsRequest {
                session_id: session_id.clone(),
            }),
        )
        .await
        .map_err(|_| SessionError::Timeout("opening assignments"))?
        .map_err(rpc("opening assignments"))?
        .into_inner();
        let networks = tokio::time::timeout(
            self.patience,
            client.networks(NetworksRequest {
                session_id: session_id.clone(),
            }),
        )
        .await
        .map_err(|_| SessionError::Timeout("opening networks"))?;
        // A manager of an older version serves no view: tasks then run without networks.
        let mut views = match networks {
            Ok(s) => Some(s.into_inner()),
            Err(s) if s.code() == tonic::Code::Unimplemented => None,
            Err(s) => return Err(rpc("opening networks")(s)),
        };
        self.link.send_replace(Some(SessionLink {
            channel,
            client: client.clone(),
            session_id: session_id.clone(),
        }));
        self.established = true;
        tracing::info!(manager = %self.addr, %session_id, "dispatcher session open");

        let mut next_beat = Instant::now() + jittered(period);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next_beat) => {
                    let beat = client.heartbeat(HeartbeatRequest { session_id: session_id.clone() });
                    let resp = tokio::time::timeout(period.max(MIN_HEARTBEAT_TIMEOUT), beat)
                        .await
                        .map_err(|_| SessionError::HeartbeatTimeout)?
                        .map_err(rpc("heartbeat"))?;
                    if resp.get_ref().period_ms > 0 {
                        period = period_of(resp.get_ref().period_ms);
                    }
                    next_beat = Instant::now() + jittered(period);
                }
                m = session.message() => {
                    let m = m.map_err(rpc("session"))?.ok_or(SessionError::Closed("session"))?;
                    if m.heartbeat_period_ms > 0 {
                        period = period_of(m.heartbeat_period_ms);
                    }
                    if !m.managers.is_empty() {
                        *self.managers = merge_managers(&self.cfg.managers, &m);
                    }
                    if m.node.is_some() {
                        self.cfg.node.send_replace(m.node.clone());
                    }
                }
                v = next_view(&mut views) => {
                    let v = v.map_err(rpc("networks"))?.ok_or(SessionError::Closed("networks"))?;
                    self.cfg.networks.send_replace(Some(v));
                }
                m = tasks.message() => {
                    let m = m.map_err(rpc("assignments"))?.ok_or(SessionError::Closed("assignments"))?;
                    // The worker only goes away when the agent stops; nothing to do then.
                    let _ = self.assignments.send(m);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_api::WeightedPeer;

    #[test]
    fn next_manager_wraps_and_handles_unknown() {
        let l = vec!["a".to_string(), "b".to_string()];
        assert_eq!(next_manager(&l, "a"), "b");
        assert_eq!(next_manager(&l, "b"), "a");
        assert_eq!(next_manager(&l, "x"), "a");
    }

    #[test]
    fn learned_managers_come_first_configured_stay() {
        let msg = SessionMessage {
            managers: vec![WeightedPeer {
                node_id: "n".into(),
                addr: "b".into(),
            }],
            ..Default::default()
        };
        assert_eq!(
            merge_managers(&["a".to_string(), "b".to_string()], &msg),
            vec!["b".to_string(), "a".to_string()]
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_millis(1000));
            assert!(d >= Duration::from_millis(900) && d <= Duration::from_millis(1100));
        }
    }
}
