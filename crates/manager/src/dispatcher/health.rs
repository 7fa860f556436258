//! Node health, leader-only: a node whose agent missed three heartbeat periods is marked DOWN
//! (its tasks then move, see the orchestrator). A node still READY in the store that never
//! opened a session with this leader is marked DOWN after the same grace, so a worker that died
//! while the managers were restarting is noticed too.

use super::Dispatcher;
use std::time::{Duration, Instant};
use swarm_api::*;
use swarm_store::Txn;
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
        let txn = d.inner.store.view(|t| {
            let mut txn = Txn::new();
            for id in &down {
                let Some(node) = t.nodes.get(id) else {
                    continue;
                };
                if node
                    .status
                    .as_ref()
                    .is_some_and(|s| s.state == NodeState::Down as i32)
                {
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
            }
            txn
        });
        if txn.is_empty() {
            continue;
        }
        tracing::info!(nodes = ?down, "marking nodes down after missed heartbeats");
        if let Err(e) = d.inner.proposer.propose(txn.into_batch()).await {
            tracing::debug!(error = %e, "node-down write refused; will retry");
            for id in &down {
                // Forget them so the next tick re-checks from the store.
                d.inner.sessions.end(id);
            }
        }
    }
}
