//! Node health, leader-only: a node whose agent missed three heartbeat periods is marked DOWN
//! (its tasks then move, see the orchestrator). A node still READY in the store that never
//! opened a session with this leader is marked DOWN after the same grace, so a worker that died
//! while the managers were restarting is noticed too.

use super::sessions::Sessions;
use super::Dispatcher;
use std::time::{Duration, Instant};
use swarm_api::*;
use swarm_store::{Tables, Txn};
use tokio_util::sync::CancellationToken;

pub async fn run(d: Dispatcher, cancel: CancellationToken) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let period = d.heartbeat_period();
        let grace = period * defaults::HEARTBEAT_GRACE_MULTIPLIER as u32;
        let mut down: Vec<String> = d.inner.sessions.expire(grace);
        if started.elapsed() > grace {
            let silent: Vec<String> = d.inner.store.view(|t| {
                t.nodes
                    .iter()
                    .filter(|n| {
                        n.status
                            .as_ref()
                            .is_some_and(|s| s.state == NodeState::Ready as i32)
                    })
                    .filter(|n| !d.inner.sessions.has(&n.id))
                    .map(|n| n.id.clone())
                    .collect()
            });
            down.extend(silent);
        }
        if down.is_empty() {
            continue;
        }
        let (txn, down) = d
            .inner
            .store
            .view(|t| down_txn(t, &d.inner.sessions, &down));
        if txn.is_empty() {
            continue;
        }
        tracing::info!(nodes = ?down, "marking nodes down after missed heartbeats");
        // Refused (a node changed meanwhile): the next tick finds the nodes again, as READY
        // with no session. Ending sessions here would end those opened since, the very
        // nodes the refusal was about.
        if let Err(e) = d.inner.proposer.propose(txn.into_batch()).await {
            tracing::debug!(error = %e, "node-down write refused; will retry");
        }
    }
}

/// The write marking `candidates` DOWN, and the nodes it marks. Built while reading the store,
/// so a node whose session opening wrote it READY (seen here) is known to be attended: that
/// node is left alone, or the DOWN would land after the READY and stay, with the node's agent
/// connected and heartbeating.
fn down_txn(t: &Tables, sessions: &Sessions, candidates: &[String]) -> (Txn, Vec<String>) {
    let mut txn = Txn::new();
    let mut down = Vec::new();
    for id in candidates {
        let Some(node) = t.nodes.get(id) else {
            continue;
        };
        let is_down = node
            .status
            .as_ref()
            .is_some_and(|s| s.state == NodeState::Down as i32);
        if is_down || sessions.attended(id) {
            continue;
        }
        let mut n = node.clone();
        let addr = n
            .status
            .as_ref()
            .map(|s| s.addr.clone())
            .unwrap_or_default();
        n.status = Some(NodeStatus {
            state: NodeState::Down as i32,
            message: "heartbeat failure".into(),
            addr,
        });
        txn = txn.update(n);
        down.push(id.clone());
    }
    (txn, down)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use swarm_store::Store;
    use swarm_testkit::fixtures;

    /// A candidate is left alone while a session of its is opening or open, and written DOWN
    /// otherwise (once).
    #[test]
    fn a_node_with_a_session_opening_or_open_is_not_written_down() {
        let store = Store::new();
        store
            .apply(1, &Txn::new().create(fixtures::node("n1")).into_batch())
            .unwrap();
        let sessions = Arc::new(Sessions::default());
        let candidates = vec!["n1".to_string(), "gone".to_string()];
        let decide = || store.view(|t| down_txn(t, &sessions, &candidates).1);

        let opening = sessions.opening("n1");
        assert!(decide().is_empty(), "opening");
        let _ = sessions.open("n1");
        drop(opening);
        assert!(decide().is_empty(), "open");
        sessions.end("n1");
        assert_eq!(decide(), vec!["n1".to_string()], "neither");

        let (txn, _) = store.view(|t| down_txn(t, &sessions, &candidates));
        store.apply(2, &txn.into_batch()).unwrap();
        assert!(decide().is_empty(), "already DOWN");
    }
}
