//! The dispatcher's registry of live agent sessions: one per node, the newest wins. Only this
//! module touches it; a session's token is cancelled when it is replaced or expires, which
//! ends that session's streams. It also limits how often one node may open a session: each
//! opening registers the node (a store read, maybe a write), so a node opening thousands would
//! cost every other node its share of the leader.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub(crate) struct Session {
    pub id: String,
    pub last_seen: Instant,
    pub cancel: CancellationToken,
}

/// Sessions one node may open within [`SESSION_WINDOW`]. An agent opens one per manager it
/// fails over to, with back-off in between: ten in ten seconds is already a node in a loop.
pub(crate) const SESSIONS_PER_WINDOW: usize = 10;
pub(crate) const SESSION_WINDOW: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(crate) struct Sessions {
    by_node: Mutex<HashMap<String, Session>>,
    /// When each node opened its recent sessions (within the window), oldest first.
    opened: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Sessions {
    /// Whether `node_id` may open another session now; counts it when it may.
    pub fn admit(&self, node_id: &str) -> bool {
        let now = Instant::now();
        let mut opened = self.opened.lock();
        let recent = opened.entry(node_id.to_string()).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > SESSION_WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= SESSIONS_PER_WINDOW {
            return false;
        }
        recent.push_back(now);
        true
    }

    /// Registers a new session for `node_id`, ending any previous one.
    pub fn open(&self, node_id: &str) -> (String, CancellationToken) {
        let id = swarm_api::ids::new_id();
        let cancel = CancellationToken::new();
        let old = self.by_node.lock().insert(
            node_id.to_string(),
            Session {
                id: id.clone(),
                last_seen: Instant::now(),
                cancel: cancel.clone(),
            },
        );
        if let Some(old) = old {
            old.cancel.cancel();
        }
        (id, cancel)
    }

    /// Live sessions (one per connected node).
    pub fn len(&self) -> usize {
        self.by_node.lock().len()
    }

    /// The session's token if `session_id` is the node's current session.
    pub fn check(&self, node_id: &str, session_id: &str) -> Option<CancellationToken> {
        let map = self.by_node.lock();
        map.get(node_id)
            .filter(|s| s.id == session_id)
            .map(|s| s.cancel.clone())
    }

    pub fn heartbeat(&self, node_id: &str, session_id: &str) -> bool {
        let mut map = self.by_node.lock();
        match map.get_mut(node_id) {
            Some(s) if s.id == session_id => {
                s.last_seen = Instant::now();
                true
            }
            _ => false,
        }
    }

    /// Ends and returns the nodes whose last heartbeat is older than `grace`.
    pub fn expire(&self, grace: Duration) -> Vec<String> {
        let mut map = self.by_node.lock();
        let now = Instant::now();
        let expired: Vec<String> = map
            .iter()
            .filter(|(_, s)| now.duration_since(s.last_seen) > grace)
            .map(|(n, _)| n.clone())
            .collect();
        for n in &expired {
            if let Some(s) = map.remove(n) {
                s.cancel.cancel();
            }
        }
        expired
    }

    pub fn has(&self, node_id: &str) -> bool {
        self.by_node.lock().contains_key(node_id)
    }

    pub fn end(&self, node_id: &str) {
        if let Some(s) = self.by_node.lock().remove(node_id) {
            s.cancel.cancel();
        }
    }

    /// Ends every session (this manager stopped or started leading).
    pub fn end_all(&self) {
        for (_, s) in self.by_node.lock().drain() {
            s.cancel.cancel();
        }
    }
}
