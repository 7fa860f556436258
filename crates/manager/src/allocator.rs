//! The allocator: gives each service the published ports its spec leaves open (writing the
//! service's `endpoint`, see `allocator_ports`), and moves new tasks from NEW to PENDING once
//! their service's ports are allocated, with a copy of its endpoint. The hand-off point
//! between the orchestrator and the scheduler; it never places or runs tasks.

use crate::allocator_ports;
use crate::component_loop::{run_loop, LoopConfig};
use crate::orchestrator::observed;
use crate::proposer::Proposer;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use swarm_api::*;
use swarm_store::{Store, Txn};
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(store: Store, proposer: Arc<dyn Proposer>, cancel: CancellationToken) {
    let cfg = LoopConfig {
        name: "allocator",
        debounce: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        tick: Duration::from_secs(2),
    };
    let view = store.clone();
    run_loop(cfg, store, cancel, move || {
        let txn = view.view(|t| {
            let mut txn = Txn::new();
            let endpoints = allocate_services(t, &mut txn);
            for task in t.new_tasks() {
                if observed(task) == TaskState::New
                    && task.desired_state <= TaskState::Running as i32
                {
                    // A task waits until its service's ports are allocated for its spec.
                    let endpoint = match endpoints.get(task.service_id.as_str()) {
                        Some(Ok(e)) => e.clone(),
                        Some(Err(_)) => continue,
                        None => None,
                    };
                    let mut x = task.clone();
                    x.endpoint = endpoint;
                    x.status = Some(TaskStatus {
                        timestamp: now_ms(),
                        state: TaskState::Pending as i32,
                        message: "pending task scheduling".into(),
                        ..Default::default()
                    });
                    txn = txn.update(x);
                }
            }
            txn
        });
        let proposer = proposer.clone();
        async move {
            let mut again = false;
            for batch in txn.into_batches(2_000) {
                again |= proposer.propose(batch).await.is_err();
            }
            again
        }
    })
    .await;
}

/// Allocates the ports of every service whose endpoint does not match its spec (adding the
/// service updates to `txn`), and returns each service's endpoint for its tasks: `Ok(None)`
/// when it publishes nothing, `Err` when its ports could not be allocated (logged; its new
/// tasks stay NEW until a port frees up).
fn allocate_services<'a>(
    t: &'a swarm_store::Tables,
    txn: &mut Txn,
) -> HashMap<&'a str, Result<Option<Endpoint>, String>> {
    let mut out = HashMap::new();
    // Every port held now, by whichever service: those being reallocated drop theirs below.
    let mut held: HashSet<allocator_ports::PortKey> = allocator_ports::taken(t.services.iter(), "")
        .into_keys()
        .collect();
    for service in t.services.iter() {
        if allocator_ports::is_allocated(service) {
            let e = service.endpoint.clone().filter(|e| !e.ports.is_empty());
            out.insert(service.id.as_str(), Ok(e));
            continue;
        }
        let spec = service
            .spec
            .as_ref()
            .and_then(|s| s.endpoint.clone())
            .unwrap_or_default();
        // Its own old ports are free for it to keep (allocate prefers them).
        let mut others: HashSet<_> = allocator_ports::taken(t.services.iter(), &service.id)
            .into_keys()
            .collect();
        others.extend(held.iter().copied().filter(|k| {
            !service
                .endpoint
                .as_ref()
                .is_some_and(|e| e.ports.iter().any(|p| (p.protocol, p.published_port) == *k))
        }));
        match allocator_ports::allocate(&spec, service.endpoint.as_ref(), &mut others) {
            Ok(endpoint) => {
                held.extend(
                    endpoint
                        .ports
                        .iter()
                        .map(|p| (p.protocol, p.published_port)),
                );
                let mut s = service.clone();
                s.endpoint = Some(endpoint.clone());
                *txn = std::mem::take(txn).update(s);
                let e = (!endpoint.ports.is_empty()).then_some(endpoint);
                out.insert(service.id.as_str(), Ok(e));
            }
            Err(e) => {
                tracing::warn!(service = %service.id, error = %e, "allocating published ports");
                out.insert(service.id.as_str(), Err(e));
            }
        }
    }
    out
}
