//! The dispatcher's registry of live agent sessions: one per node, the newest wins. Only this
//! module touches it; a session's token is cancelled when it is replaced or expires, which
//! ends that session's streams. It also limits how often one node may open a session: each
//! opening registers the node (a store read, maybe a write), so a node opening thousands would
//! cost every other node its share of the leader.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub(crate) struct Session {
    pub id: String,
    pub last_seen: Instant,
    pub cancel: CancellationToken,
}

impl Session {
    /// A session seen now, and its id and token for the caller.
    fn new() -> (Session, (String, CancellationToken)) {
        let id = swarm_api::ids::new_id();
        let cancel = CancellationToken::new();
        let handle = (id.clone(), cancel.clone());
        let session = Session {
            id,
            last_seen: Instant::now(),
            cancel,
        };
        (session, handle)
    }
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
    /// Nodes with a session opening under way (its node write in flight), and how many.
    opening: Mutex<HashMap<String, usize>>,
}

/// A session opening under way, from before its node write until its session is registered
/// (or the opening is given up): the health loop leaves such a node alone.
pub(crate) struct Opening {
    sessions: Arc<Sessions>,
    node_id: String,
}

impl Drop for Opening {
    fn drop(&mut self) {
        let mut opening = self.sessions.opening.lock();
        if let Some(n) = opening.get_mut(&self.node_id) {
            *n -= 1;
            if *n == 0 {
                opening.remove(&self.node_id);
            }
        }
    }
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
        let (session, handle) = Session::new();
        if let Some(old) = self.by_node.lock().insert(node_id.to_string(), session) {
            old.cancel.cancel();
        }
        handle
    }

    /// Replaces `node_id`'s session with a new one if it has one (not yet expired); `None`
    /// when it has none. Atomic with [`Sessions::expire`]: a session either expires (and its
    /// node may be written DOWN) or is replaced here, never both.
    pub fn replace_live(&self, node_id: &str) -> Option<(String, CancellationToken)> {
        let mut map = self.by_node.lock();
        let live = map.get_mut(node_id)?;
        let (session, handle) = Session::new();
        std::mem::replace(live, session).cancel.cancel();
        Some(handle)
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

    /// Marks a session opening for `node_id` until the mark is dropped; take it before the
    /// node write and drop it after [`Sessions::open`].
    pub fn opening(self: &Arc<Self>, node_id: &str) -> Opening {
        *self.opening.lock().entry(node_id.to_string()).or_default() += 1;
        Opening {
            sessions: self.clone(),
            node_id: node_id.to_string(),
        }
    }

    /// Whether `node_id` has a session or one is opening. Checked while reading the store, a
    /// node write seen there that an opening made is always covered: its mark was taken
    /// before the write, and is dropped only once the session is registered (hence the order
    /// of the two checks).
    pub fn attended(&self, node_id: &str) -> bool {
        self.opening.lock().contains_key(node_id) || self.has(node_id)
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
