#![allow(clippy::unwrap_used)]
//! The per-node load aggregates always equal a recount of the task rows: after any sequence
//! of creates, updates and removes (batches rolled back included), every node's live count,
//! reservations and host ports, every service's count per node and every service's failures
//! per node match what counting the tasks from scratch gives; and a node that nothing refers
//! to any more keeps no slot.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use swarm_api::*;
use swarm_store::{NodeLoads, Reserved, Store, Tables, Txn};

const NODES: [&str; 4] = ["", "n1", "n2", "n3"];
const SERVICES: [&str; 3] = ["", "s1", "s2"];
const OBSERVED: [TaskState; 8] = [
    TaskState::New,
    TaskState::Pending,
    TaskState::Assigned,
    TaskState::Running,
    TaskState::Complete,
    TaskState::Failed,
    TaskState::Rejected,
    TaskState::Shutdown,
];
const CPU_CAPACITY: i64 = 100;
const MEM_CAPACITY: i64 = 1_000;

/// One write: which task, and what it becomes (or that it goes).
#[derive(Debug, Clone)]
struct Write {
    task: usize,
    remove: bool,
    node: usize,
    service: usize,
    desired_running: bool,
    observed: usize,
    cpus: i64,
    mem: i64,
    port: Option<u32>,
    at: i64,
}

fn write() -> impl Strategy<Value = Write> {
    (
        (0usize..6, prop::bool::weighted(0.15), 0..NODES.len()),
        (
            0..SERVICES.len(),
            prop::bool::weighted(0.8),
            0..OBSERVED.len(),
        ),
        (0i64..3, 0i64..3, prop::option::of(80u32..82), 0i64..4),
    )
        .prop_map(
            |(
                (task, remove, node),
                (service, desired_running, observed),
                (cpus, mem, port, at),
            )| {
                Write {
                    task,
                    remove,
                    node,
                    service,
                    desired_running,
                    observed,
                    cpus,
                    mem,
                    port,
                    at,
                }
            },
        )
}

fn task_of(w: &Write) -> Task {
    let spec = TaskSpec {
        resources: Some(ResourceRequirements {
            limits: None,
            reservations: Some(Resources {
                nano_cpus: w.cpus,
                memory_bytes: w.mem,
            }),
        }),
        ..Default::default()
    };
    Task {
        id: format!("t{}", w.task),
        service_id: SERVICES[w.service].into(),
        node_id: NODES[w.node].into(),
        desired_state: if w.desired_running {
            TaskState::Running
        } else {
            TaskState::Shutdown
        } as i32,
        spec: Some(spec.into()),
        status: Some(TaskStatus {
            state: OBSERVED[w.observed] as i32,
            timestamp: w.at,
            ..Default::default()
        }),
        endpoint: w.port.map(|p| Endpoint {
            ports: vec![PortConfig {
                protocol: PortProtocol::Tcp as i32,
                published_port: p,
                publish_mode: PublishMode::Host as i32,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Adds `w` to the batch as the store would accept it: create, update at the row's version,
/// or remove (a remove of a missing row is skipped).
fn stage(s: &Store, txn: Txn, w: &Write) -> Txn {
    let id = format!("t{}", w.task);
    let current = s.view(|t| t.tasks.get(&id).cloned());
    match (current, w.remove) {
        (None, true) => txn,
        (None, false) => txn.create(task_of(w)),
        (Some(old), true) => txn.remove(old),
        (Some(old), false) => {
            let mut t = task_of(w);
            t.meta = old.meta;
            txn.update(t)
        }
    }
}

/// What one node holds, as the aggregates report it or a recount gives it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Held {
    tasks: u32,
    free_cpus: i64,
    free_mem: i64,
    ports: BTreeSet<(i32, u32)>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Loads {
    nodes: BTreeMap<String, Held>,
    by_service: BTreeMap<(String, String), u32>,
    failures: BTreeMap<(String, String, i64), u32>,
}

fn live(t: &Task) -> bool {
    let observed = t.status.as_ref().map_or(0, |s| s.state);
    !t.node_id.is_empty()
        && t.desired_state <= TaskState::Running as i32
        && observed <= TaskState::Running as i32
}

fn failed(t: &Task) -> bool {
    let observed = t.status.as_ref().map_or(0, |s| s.state);
    !t.node_id.is_empty()
        && (observed == TaskState::Failed as i32 || observed == TaskState::Rejected as i32)
}

fn recount(t: &Tables) -> Loads {
    let mut out = Loads::default();
    for task in t.tasks.iter() {
        if live(task) || failed(task) {
            let held = out.nodes.entry(task.node_id.clone()).or_insert(Held {
                free_cpus: CPU_CAPACITY,
                free_mem: MEM_CAPACITY,
                ..Held::default()
            });
            if live(task) {
                let r = task.spec.as_ref().unwrap().resources.as_ref().unwrap();
                let r = r.reservations.as_ref().unwrap();
                held.tasks += 1;
                held.free_cpus -= r.nano_cpus;
                held.free_mem -= r.memory_bytes;
                for p in task.endpoint.iter().flat_map(|e| &e.ports) {
                    held.ports.insert((p.protocol, p.published_port));
                }
                if !task.service_id.is_empty() {
                    *out.by_service
                        .entry((task.service_id.clone(), task.node_id.clone()))
                        .or_default() += 1;
                }
            }
        }
        if failed(task) {
            for since in 0..4 {
                if task.status.as_ref().unwrap().timestamp >= since {
                    *out.failures
                        .entry((task.service_id.clone(), task.node_id.clone(), since))
                        .or_default() += 1;
                }
            }
        }
    }
    out
}

fn reported(l: &NodeLoads) -> Loads {
    let mut out = Loads::default();
    let mut name_of = std::collections::HashMap::new();
    for node in NODES {
        if let Some((slot, load)) = l.of_node(node) {
            name_of.insert(slot, node.to_string());
            out.nodes.insert(
                node.to_string(),
                Held {
                    tasks: load.tasks(),
                    free_cpus: load.free_of(CPU_CAPACITY, Reserved::NanoCpus),
                    free_mem: load.free_of(MEM_CAPACITY, Reserved::MemoryBytes),
                    ports: load.host_ports().collect(),
                },
            );
        }
    }
    for service in SERVICES {
        for (slot, n) in l.of_service(service) {
            out.by_service
                .insert((service.to_string(), name_of[&slot].clone()), n);
        }
        for since in 0..4 {
            for (slot, n) in l.failures_since(service, since) {
                out.failures
                    .insert((service.to_string(), name_of[&slot].clone(), since), n);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn aggregates_match_a_recount_after_any_writes(
        batches in prop::collection::vec(
            (prop::collection::vec(write(), 1..4), prop::bool::weighted(0.2)),
            1..40,
        ),
    ) {
        let s = Store::new();
        for (i, (writes, poisoned)) in batches.iter().enumerate() {
            let mut txn = Txn::new();
            for w in writes {
                txn = stage(&s, txn, w);
            }
            if *poisoned {
                // A create of a row that the batch or the store already holds fails the whole
                // batch after its other writes were applied: they must all be undone.
                let mut dup = task_of(&writes[0]);
                dup.id = "poison".into();
                txn = txn.create(dup.clone()).create(dup);
            }
            let _ = s.apply(i as u64 + 1, &txn.into_batch());
            let (want, got, slots) =
                s.view(|t| (recount(t), reported(t.node_loads()), t.node_loads().slot_count()));
            prop_assert_eq!(&got, &want, "after batch {}", i);
            // Freed slots are reused: never more than the nodes ever referred to at once.
            prop_assert!(slots < NODES.len(), "{} slots", slots);
        }
        // A restore rebuilds the same aggregates from the rows alone.
        let restored = Store::new();
        restored.restore(s.snapshot());
        let want = s.view(recount);
        prop_assert_eq!(restored.view(|t| reported(t.node_loads())), want);
    }
}
