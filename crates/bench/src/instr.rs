//! The workloads of the instruction-count guard (`instr-guard`): each sets up a fixed input,
//! then performs its operation `ops` times. The guard runs each under callgrind twice (0 ops
//! and N ops) and divides the difference by N, so setup never counts. Owns only the inputs
//! and the loops; it must not change what it measures.

use std::hint::black_box;
use std::sync::Arc;

use swarm_api::service_spec::Mode;
use swarm_api::{Annotations, Meta, ReplicatedService, Service, ServiceSpec};
use swarm_manager::scheduler::plan::plan;
use swarm_raft::{DataKey, PeerConnectError, PeerConnector, RaftConfig, RaftNode};
use swarm_store::{Store, Txn};
use tonic::transport::Channel;

use crate::shapes::{running_task, tables, Shape};

/// One measured path at a fixed size.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub name: &'static str,
    /// Operations in the measured run (the other run does none).
    pub ops: u64,
    /// What one operation is, for the report.
    pub what: &'static str,
}

/// Every workload the guard checks, with the operations its measured run performs.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "plan_ungroupable_1k_x_1k",
        ops: 2,
        what: "scheduler planning pass, 1,000 nodes x 1,000 tasks that share no group",
    },
    Workload {
        name: "plan_no_service_1k_x_10k",
        ops: 2,
        what: "scheduler planning pass, 1,000 nodes x 10,000 tasks of no service",
    },
    Workload {
        name: "plan_constraints_1k_x_10k",
        ops: 2,
        what: "scheduler planning pass, 10,000 tasks constrained to a third of 1,000 nodes",
    },
    Workload {
        name: "store_create_task",
        ops: 5_000,
        what: "store transaction creating one task, in a store of 10,000",
    },
    Workload {
        name: "store_update_task",
        ops: 5_000,
        what: "store read-modify-write of one task, in a store of 10,000",
    },
    Workload {
        name: "raft_propose_sealed",
        ops: 300,
        what: "Raft proposal on one member, sealed log, to applied",
    },
];

/// Why a workload could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("no workload named {0}")]
    Unknown(String),
    #[error("{what}: {reason}")]
    Failed { what: &'static str, reason: String },
}

fn failed(what: &'static str) -> impl FnOnce(String) -> WorkloadError {
    move |reason| WorkloadError::Failed { what, reason }
}

/// Sets up `name`'s input, then performs its operation `ops` times.
pub fn run(name: &str, ops: u64) -> Result<(), WorkloadError> {
    match name {
        "plan_ungroupable_1k_x_1k" => plan_passes(tables(1_000, 1_000, Shape::Ungroupable), ops),
        "plan_no_service_1k_x_10k" => plan_passes(tables(1_000, 10_000, Shape::NoService), ops),
        "plan_constraints_1k_x_10k" => plan_passes(tables(1_000, 10_000, Shape::Constraints), ops),
        "store_create_task" => store_creates(ops),
        "store_update_task" => store_updates(ops),
        "raft_propose_sealed" => raft_proposals(ops),
        other => Err(WorkloadError::Unknown(other.to_string())),
    }
}

fn plan_passes(t: swarm_store::Tables, ops: u64) -> Result<(), WorkloadError> {
    for _ in 0..ops {
        black_box(plan(black_box(&t)).assignments.len());
    }
    Ok(())
}

const STORE_TASKS: usize = 10_000;

fn filled_store() -> Result<Store, WorkloadError> {
    let store = Store::new();
    let mut txn = Txn::new();
    for i in 0..STORE_TASKS {
        txn = txn.create(running_task(i, 100, 1_000));
    }
    store
        .apply(1, &txn.into_batch())
        .map_err(|e| failed("filling the store")(e.to_string()))?;
    Ok(store)
}

fn store_creates(ops: u64) -> Result<(), WorkloadError> {
    let store = filled_store()?;
    for n in 0..ops {
        let t = running_task(STORE_TASKS + n as usize, 100, 1_000);
        store
            .apply(2 + n, &Txn::new().create(t).into_batch())
            .map_err(|e| failed("create")(e.to_string()))?;
    }
    Ok(())
}

fn store_updates(ops: u64) -> Result<(), WorkloadError> {
    let store = filled_store()?;
    let mut i = 0usize;
    for n in 0..ops {
        i = (i + 7919) % STORE_TASKS;
        let id = format!("task{i:08}");
        let mut t = store
            .view(|tb| tb.tasks.get(&id).cloned())
            .ok_or_else(|| failed("update")(format!("task {id} missing")))?;
        t.meta.get_or_insert_with(Meta::default);
        if let Some(s) = t.status.as_mut() {
            s.timestamp += 1;
        }
        store
            .apply(2 + n, &Txn::new().update(t).into_batch())
            .map_err(|e| failed("update")(e.to_string()))?;
    }
    Ok(())
}

/// A single member never dials anyone.
struct NoPeers;

impl PeerConnector for NoPeers {
    fn channel(&self, addr: &str) -> Result<Channel, PeerConnectError> {
        Err(PeerConnectError::NoRoute {
            addr: addr.into(),
            reason: "no peers in the guard".into(),
        })
    }
}

fn service(i: u64) -> Service {
    Service {
        id: format!("svc{i:012}"),
        spec: Some(ServiceSpec {
            annotations: Some(Annotations {
                name: format!("guard-{i}"),
                ..Default::default()
            }),
            mode: Some(Mode::Replicated(ReplicatedService { replicas: 1 })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn raft_proposals(ops: u64) -> Result<(), WorkloadError> {
    // One thread: what the other threads of a multi-threaded runtime do while parked is
    // noise, and callgrind serialises threads anyway.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed("runtime")(e.to_string()))?;
    let dir = tempfile::tempdir().map_err(|e| failed("temp dir")(e.to_string()))?;
    rt.block_on(async {
        let mut cfg = RaftConfig::new(dir.path(), 1, "127.0.0.1:1".to_string());
        // Ticks cost instructions by the wall-clock second, and callgrind slows the run
        // down some 50 times: long ticks keep them out of the count.
        cfg.tick_ms = 10_000;
        cfg.data_key = Some(DataKey::generate().map_err(|e| failed("key")(e.to_string()))?);
        let raft = RaftNode::open(cfg, Store::new(), Arc::new(NoPeers))
            .await
            .map_err(|e| failed("open")(e.to_string()))?;
        raft.bootstrap()
            .await
            .map_err(|e| failed("bootstrap")(e.to_string()))?;
        raft.leadership()
            .wait_for(|l| l.is_leader)
            .await
            .map_err(|e| failed("leadership")(e.to_string()))?;
        for n in 0..ops {
            raft.propose(Txn::new().create(service(n)).into_batch())
                .await
                .map_err(|e| failed("propose")(e.to_string()))?;
        }
        raft.shutdown()
            .await
            .map_err(|e| failed("shutdown")(e.to_string()))
    })
}
