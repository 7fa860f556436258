//! Leader-only lifecycle: while this manager leads, run the orchestrator, allocator,
//! scheduler, the root rotation reconciler, the dispatcher's health loop, and the managers'
//! own role changes and reachability (members); stop them all the moment leadership is lost.
//! On taking over, the leader records itself as such in the manager nodes' status.

use crate::dispatcher::{self, Dispatcher};
use crate::members::{self, ManagerDialer};
use crate::orchestrator::Orchestrator;
use crate::proposer::Proposer;
use crate::{allocator, scheduler};
use std::sync::Arc;
use swarm_api::*;
use swarm_store::{GroupMembership, Store, Txn};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub struct LeaderConfig {
    pub store: Store,
    pub proposer: Arc<dyn Proposer>,
    pub dispatcher: Dispatcher,
    /// This manager's node ID.
    pub node_id: String,
    /// Where the scheduler records its passes.
    pub metrics: crate::ManagerMetrics,
    /// The replicated group, reconciled with the managers the store records (None: no group
    /// to reconcile, as in tests without Raft).
    pub members: Option<Arc<dyn GroupMembership>>,
    /// The way to the other managers, for reachability probes (None: not probed).
    pub dialer: Option<Arc<dyn ManagerDialer>>,
}

/// Runs until `shutdown`; `leader` says whether this manager currently leads.
pub async fn run_leader_components(
    cfg: LeaderConfig,
    mut leader: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    loop {
        while !*leader.borrow_and_update() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = leader.changed() => if r.is_err() { return },
            }
        }
        tracing::info!("became leader: starting orchestrator, allocator, scheduler, dispatcher");
        let cancel = shutdown.child_token();
        mark_leader(&cfg).await;
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(Orchestrator::new(cfg.store.clone(), cfg.proposer.clone()).run(cancel.clone()));
        tasks.spawn(allocator::run(
            cfg.store.clone(),
            cfg.proposer.clone(),
            cancel.clone(),
        ));
        tasks.spawn(scheduler::run(
            cfg.store.clone(),
            cfg.proposer.clone(),
            cfg.metrics.clone(),
            cancel.clone(),
        ));
        tasks.spawn(crate::ca_rotation::run(
            cfg.store.clone(),
            cfg.proposer.clone(),
            cancel.clone(),
        ));
        tasks.spawn(dispatcher::run_leader(
            cfg.dispatcher.clone(),
            cancel.clone(),
        ));
        if let Some(members) = &cfg.members {
            tasks.spawn(members::roles::run(
                cfg.store.clone(),
                cfg.proposer.clone(),
                members.clone(),
                cancel.clone(),
            ));
        }
        if let Some(dialer) = &cfg.dialer {
            tasks.spawn(members::reachability::run(
                cfg.store.clone(),
                cfg.proposer.clone(),
                dialer.clone(),
                cfg.node_id.clone(),
                cancel.clone(),
            ));
        }
        // The end of a takeover, as `failover-bench` times it.
        tracing::info!("leader components started");
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = leader.changed() => if r.is_err() || !*leader.borrow() { break },
            }
        }
        cancel.cancel();
        while tasks.join_next().await.is_some() {}
        tracing::info!("leader components stopped");
        if shutdown.is_cancelled() {
            return;
        }
    }
}

/// Writes `leader` on this manager's node status and clears it on the others.
async fn mark_leader(cfg: &LeaderConfig) {
    for _ in 0..10 {
        let txn = cfg.store.view(|t| {
            let mut txn = Txn::new();
            for node in t
                .nodes
                .iter()
                .filter(|n| n.role == NodeRole::Manager as i32)
            {
                let me = node.id == cfg.node_id;
                let ms = node.manager_status.clone().unwrap_or_default();
                if ms.leader == me && (!me || ms.reachability == Reachability::Reachable as i32) {
                    continue;
                }
                let mut n = node.clone();
                let m = n.manager_status.get_or_insert_with(Default::default);
                m.leader = me;
                if me {
                    m.reachability = Reachability::Reachable as i32;
                }
                txn = txn.update(n);
            }
            txn
        });
        if txn.is_empty() || cfg.proposer.propose(txn.into_batch()).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
