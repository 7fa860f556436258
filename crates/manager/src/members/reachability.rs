//! Leader-only: probes every other manager's remote API (health check over mutual TLS) and
//! records REACHABLE / UNREACHABLE on its node, which `swarmctl node ls` shows.

use super::ManagerDialer;
use crate::proposer::Proposer;
use std::sync::Arc;
use std::time::Duration;
use swarm_api::health_client::HealthClient;
use swarm_api::*;
use swarm_store::{Store, Txn};
use tokio_util::sync::CancellationToken;

const PERIOD: Duration = Duration::from_secs(2);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

async fn probe(peers: &dyn ManagerDialer, addr: &str) -> bool {
    let Some(ch) = peers.dial(addr) else {
        return false;
    };
    let mut client = HealthClient::new(ch);
    let call = client.check(HealthCheckRequest {
        service: String::new(),
    });
    matches!(tokio::time::timeout(PROBE_TIMEOUT, call).await, Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32)
}

/// Runs while this manager (`me`) leads, until `cancel`.
pub(crate) async fn run(
    store: Store,
    proposer: Arc<dyn Proposer>,
    peers: Arc<dyn ManagerDialer>,
    me: String,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(PERIOD);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let managers: Vec<Node> = store.view(|t| {
            t.nodes
                .iter()
                .filter(|n| n.role == NodeRole::Manager as i32 && n.id != me)
                .cloned()
                .collect()
        });
        let mut txn = Txn::new();
        for n in managers {
            let Some(addr) = n
                .manager_status
                .as_ref()
                .map(|m| m.addr.clone())
                .filter(|a| !a.is_empty())
            else {
                continue;
            };
            let want = if probe(peers.as_ref(), &addr).await {
                Reachability::Reachable
            } else {
                Reachability::Unreachable
            };
            if n.manager_status.as_ref().map(|m| m.reachability) != Some(want as i32) {
                let mut x = n.clone();
                if let Some(m) = x.manager_status.as_mut() {
                    m.reachability = want as i32;
                }
                txn = txn.update(x);
            }
        }
        if !txn.is_empty() {
            if let Err(e) = proposer.propose(txn.into_batch()).await {
                tracing::debug!(error = %e, "reachability write refused; next round retries");
            }
        }
    }
}
