//! The leader components (orchestrator, allocator, scheduler) against a store with no Raft:
//! writes go through the in-memory `MemoryProposer`, and a scripted stand-in for the agents
//! (test-only) moves assigned tasks to RUNNING and stopped ones to SHUTDOWN. Each test drives
//! the cluster through a change and checks what the components converge to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_api::service_spec::Mode;
use swarm_api::*;
use swarm_manager::dispatcher::Dispatcher;
use swarm_manager::{run_leader_components, LeaderConfig, Proposer};
use swarm_store::{Store, Txn};
use swarm_testkit::fixtures::{self, NodeFixture};
use swarm_testkit::MemoryProposer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

struct Harness {
    store: Store,
    proposer: Arc<dyn Proposer>,
    cancel: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn node(id: &str, labels: &[(&str, &str)]) -> Node {
    fixtures::node(id).with_labels(labels)
}

fn cluster(history: i64) -> Cluster {
    Cluster {
        id: "c1".into(),
        spec: Some(ClusterSpec {
            annotations: Some(Annotations {
                name: "default".into(),
                ..Default::default()
            }),
            orchestration: Some(OrchestrationConfig {
                task_history_retention_limit: history,
            }),
            // Long heartbeats: no session exists here, nodes must not be marked down by it.
            dispatcher: Some(DispatcherConfig {
                heartbeat_period_ms: 3_600_000,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn service_spec(
    name: &str,
    mode: Mode,
    restart: Option<RestartPolicy>,
    constraints: &[&str],
) -> ServiceSpec {
    ServiceSpec {
        annotations: Some(Annotations {
            name: name.into(),
            ..Default::default()
        }),
        task: Some(
            TaskSpec {
                container: Some(ContainerSpec {
                    image: "img:1".into(),
                    ..Default::default()
                }),
                restart,
                placement: Some(Placement {
                    constraints: constraints.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .into(),
        ),
        mode: Some(mode),
        ..Default::default()
    }
}

/// A job whose tasks the stand-in agents complete (its image says "job").
fn job_spec(name: &str, mode: Mode) -> ServiceSpec {
    let mut spec = service_spec(name, mode, None, &[]);
    if let Some(c) = spec.task.as_mut().and_then(|t| t.container.as_mut()) {
        c.image = "job:1".into();
    }
    spec
}

async fn start(nodes: Vec<Node>, history: i64) -> Harness {
    let store = Store::new();
    let proposer: Arc<dyn Proposer> = MemoryProposer::new(store.clone());
    let mut txn = Txn::new().create(cluster(history));
    for n in nodes {
        txn = txn.create(n);
    }
    proposer.propose(txn.into_batch()).await.unwrap();
    let cancel = CancellationToken::new();
    let dispatcher = Dispatcher::new(
        store.clone(),
        proposer.clone(),
        "c1".into(),
        "127.0.0.1:1".into(),
        Arc::new(swarm_manager::AlwaysLeader),
        &swarm_tasks::TaskOwner::new(),
    );
    let (_tx, rx) = watch::channel(true);
    tokio::spawn({
        let cfg = LeaderConfig {
            store: store.clone(),
            proposer: proposer.clone(),
            dispatcher,
            node_id: "m".into(),
            metrics: Default::default(),
            members: None,
            dialer: None,
        };
        let cancel = cancel.clone();
        async move {
            let _keep = _tx;
            run_leader_components(cfg, rx, cancel).await
        }
    });
    tokio::spawn(fake_agents(store.clone(), proposer.clone(), cancel.clone()));
    Harness {
        store,
        proposer,
        cancel,
    }
}

/// Test-only stand-in for the agents: every assigned task starts at once; every task told to
/// stop stops. Tasks whose image contains "bad" fail instead of starting; "flaky" ones fail
/// 100 ms after they start; "job" ones complete 50 ms after they start.
async fn fake_agents(store: Store, proposer: Arc<dyn Proposer>, cancel: CancellationToken) {
    while !cancel.is_cancelled() {
        let txn = store.view(|t| {
            let mut txn = Txn::new();
            for task in t.tasks.iter() {
                let s = task.status.as_ref().map(|s| s.state).unwrap_or(0);
                let image = task
                    .spec
                    .as_ref()
                    .and_then(|x| x.container.as_ref())
                    .map(|c| c.image.as_str())
                    .unwrap_or("");
                let since = task.status.as_ref().map(|s| s.timestamp).unwrap_or(0);
                let next = if task.desired_state > TaskState::Running as i32 {
                    (s >= TaskState::Assigned as i32 && s <= TaskState::Running as i32)
                        .then_some(TaskState::Shutdown)
                } else if (s == TaskState::Assigned as i32 && image.contains("bad"))
                    || (s == TaskState::Running as i32
                        && image.contains("flaky")
                        && now_ms() - since > 100)
                {
                    Some(TaskState::Failed)
                } else if s == TaskState::Running as i32
                    && image.contains("job")
                    && now_ms() - since > 50
                {
                    Some(TaskState::Complete)
                } else {
                    (s == TaskState::Assigned as i32).then_some(TaskState::Running)
                };
                if let Some(next) = next {
                    let mut x = task.clone();
                    x.status = Some(TaskStatus {
                        state: next as i32,
                        timestamp: now_ms(),
                        ..Default::default()
                    });
                    txn = txn.update(x);
                }
            }
            txn
        });
        if !txn.is_empty() {
            let _ = proposer.propose(txn.into_batch()).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Harness {
    async fn create(&self, spec: ServiceSpec) -> String {
        let s = Service {
            id: ids::new_id(),
            spec: Some(spec),
            spec_version: 1,
            ..Default::default()
        };
        let id = s.id.clone();
        self.proposer
            .propose(Txn::new().create(s).into_batch())
            .await
            .unwrap();
        id
    }

    async fn edit_service(&self, id: &str, f: impl FnOnce(&mut Service)) {
        let mut s = self.store.view(|t| t.services.get(id).cloned()).unwrap();
        f(&mut s);
        self.proposer
            .propose(Txn::new().update(s).into_batch())
            .await
            .unwrap();
    }

    async fn edit_node(&self, id: &str, f: impl FnOnce(&mut Node)) {
        let mut n = self.store.view(|t| t.nodes.get(id).cloned()).unwrap();
        f(&mut n);
        self.proposer
            .propose(Txn::new().update(n).into_batch())
            .await
            .unwrap();
    }

    /// Running tasks of a service per node.
    fn running(&self, service: &str) -> BTreeMap<String, usize> {
        self.store.view(|t| {
            let mut m = BTreeMap::new();
            for task in t.live_tasks_of_service(service) {
                if task
                    .status
                    .as_ref()
                    .is_some_and(|s| s.state == TaskState::Running as i32)
                {
                    *m.entry(task.node_id.clone()).or_insert(0) += 1;
                }
            }
            m
        })
    }

    async fn until<T>(&self, what: &str, mut f: impl FnMut(&Harness) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Reports a task as ended, as an agent would.
    async fn end_task(&self, task_id: &str, state: TaskState) {
        let mut x = self.store.view(|t| t.tasks.get(task_id).cloned()).unwrap();
        x.status = Some(TaskStatus {
            state: state as i32,
            timestamp: now_ms(),
            exit_code: 1,
            ..Default::default()
        });
        self.proposer
            .propose(Txn::new().update(x).into_batch())
            .await
            .unwrap();
    }

    fn live_task_in_slot(&self, service: &str, slot: u64) -> Option<Task> {
        self.store.view(|t| {
            t.live_tasks_of_service(service)
                .find(|x| x.slot == slot)
                .cloned()
        })
    }
}

fn total(m: &BTreeMap<String, usize>) -> usize {
    m.values().sum()
}

#[tokio::test]
async fn replicated_spreads_scales_and_trims_highest_slots() {
    let h = start(vec![node("a", &[]), node("b", &[]), node("c", &[])], 5).await;
    let id = h
        .create(service_spec(
            "web",
            Mode::Replicated(ReplicatedService { replicas: 5 }),
            None,
            &[],
        ))
        .await;
    let spread = h
        .until("5 running", |h| {
            Some(h.running(&id)).filter(|m| total(m) == 5)
        })
        .await;
    let mut counts: Vec<usize> = spread.values().copied().collect();
    counts.sort();
    assert_eq!(counts, [1, 2, 2]);

    h.edit_service(&id, |s| {
        s.spec.as_mut().unwrap().mode = Some(Mode::Replicated(ReplicatedService { replicas: 2 }))
    })
    .await;
    h.until("2 running", |h| {
        Some(()).filter(|_| total(&h.running(&id)) == 2)
    })
    .await;
    let slots: Vec<u64> = h
        .store
        .view(|t| t.live_tasks_of_service(&id).map(|x| x.slot).collect());
    let mut slots = slots;
    slots.sort();
    assert_eq!(slots, [1, 2], "the lowest slots stay");
}

#[tokio::test]
async fn global_follows_eligible_nodes() {
    let h = start(
        vec![
            node("a", &[("zone", "x")]),
            node("b", &[("zone", "x")]),
            node("c", &[]),
        ],
        5,
    )
    .await;
    let id = h
        .create(service_spec(
            "agent",
            Mode::Global(GlobalService {}),
            None,
            &["node.labels.zone==x"],
        ))
        .await;
    let r = h
        .until("2 running", |h| {
            Some(h.running(&id)).filter(|m| total(m) == 2)
        })
        .await;
    assert_eq!(
        r.keys().cloned().collect::<Vec<_>>(),
        ["a", "b"],
        "only labelled nodes"
    );

    h.edit_node("b", |n| {
        n.spec.as_mut().unwrap().availability = NodeAvailability::Drain as i32
    })
    .await;
    h.until("drained node loses its task", |h| {
        Some(()).filter(|_| h.running(&id).keys().cloned().collect::<Vec<_>>() == ["a"])
    })
    .await;

    h.edit_node("c", |n| {
        n.spec
            .as_mut()
            .unwrap()
            .annotations
            .as_mut()
            .unwrap()
            .labels
            .insert("zone".into(), "x".into());
    })
    .await;
    h.proposer
        .propose(Txn::new().create(node("d", &[("zone", "x")])).into_batch())
        .await
        .unwrap();
    let r = h
        .until("new and relabelled nodes get tasks", |h| {
            Some(h.running(&id)).filter(|m| total(m) == 3)
        })
        .await;
    assert_eq!(r.keys().cloned().collect::<Vec<_>>(), ["a", "c", "d"]);
    // One task per node, never two.
    let per_node = h.store.view(|t| t.live_tasks_of_service(&id).count());
    assert_eq!(per_node, 3);
}

#[tokio::test]
async fn restart_policy_on_failure_with_max_attempts() {
    let h = start(vec![node("a", &[])], 10).await;
    let policy = RestartPolicy {
        condition: RestartCondition::OnFailure as i32,
        delay_ms: 100,
        max_attempts: 2,
        window_ms: 0,
        ..Default::default()
    };
    let id = h
        .create(service_spec(
            "job",
            Mode::Replicated(ReplicatedService { replicas: 1 }),
            Some(policy),
            &[],
        ))
        .await;
    h.until("running", |h| {
        Some(()).filter(|_| total(&h.running(&id)) == 1)
    })
    .await;

    // Two failures are restarted (with the delay), the third is not.
    for attempt in 1..=3 {
        let t = h.live_task_in_slot(&id, 1).unwrap();
        let failed_at = Instant::now();
        h.end_task(&t.id, TaskState::Failed).await;
        if attempt <= 2 {
            let new = h
                .until("a replacement", |h| {
                    h.live_task_in_slot(&id, 1).filter(|x| x.id != t.id)
                })
                .await;
            assert!(
                failed_at.elapsed() >= Duration::from_millis(100),
                "restart waited for the delay"
            );
            assert_ne!(new.id, t.id);
            h.until("replacement running", |h| {
                Some(()).filter(|_| total(&h.running(&id)) == 1)
            })
            .await;
        } else {
            tokio::time::sleep(Duration::from_millis(600)).await;
            let still = h.live_task_in_slot(&id, 1).unwrap();
            assert_eq!(still.id, t.id, "no third restart");
        }
    }
}

#[tokio::test]
async fn on_failure_does_not_restart_completed_tasks_and_none_never_restarts() {
    let h = start(vec![node("a", &[])], 10).await;
    let on_failure = RestartPolicy {
        condition: RestartCondition::OnFailure as i32,
        delay_ms: 0,
        ..Default::default()
    };
    let none = RestartPolicy {
        condition: RestartCondition::None as i32,
        delay_ms: 0,
        ..Default::default()
    };
    let a = h
        .create(service_spec(
            "a",
            Mode::Replicated(ReplicatedService { replicas: 1 }),
            Some(on_failure),
            &[],
        ))
        .await;
    let b = h
        .create(service_spec(
            "b",
            Mode::Replicated(ReplicatedService { replicas: 1 }),
            Some(none),
            &[],
        ))
        .await;
    h.until("both running", |h| {
        Some(()).filter(|_| total(&h.running(&a)) == 1 && total(&h.running(&b)) == 1)
    })
    .await;
    let ta = h.live_task_in_slot(&a, 1).unwrap();
    let tb = h.live_task_in_slot(&b, 1).unwrap();
    h.end_task(&ta.id, TaskState::Complete).await;
    h.end_task(&tb.id, TaskState::Failed).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(h.live_task_in_slot(&a, 1).unwrap().id, ta.id);
    assert_eq!(h.live_task_in_slot(&b, 1).unwrap().id, tb.id);
    assert_eq!(
        h.store.view(|t| t.tasks_of_service(&a).count()),
        1,
        "no replacement created"
    );
}

#[tokio::test]
async fn tasks_on_a_down_node_move_at_once() {
    let h = start(vec![node("a", &[]), node("b", &[])], 5).await;
    let id = h
        .create(service_spec(
            "web",
            Mode::Replicated(ReplicatedService { replicas: 4 }),
            None,
            &[],
        ))
        .await;
    h.until("4 running", |h| {
        Some(()).filter(|_| total(&h.running(&id)) == 4)
    })
    .await;
    h.edit_node("b", |n| {
        n.status.as_mut().unwrap().state = NodeState::Down as i32
    })
    .await;
    let r = h
        .until("all on a", |h| {
            Some(h.running(&id)).filter(|m| m.get("a") == Some(&4))
        })
        .await;
    assert_eq!(total(&r), 4);
}

#[tokio::test]
async fn history_is_pruned_to_the_limit() {
    let h = start(vec![node("a", &[])], 3).await;
    let policy = RestartPolicy {
        condition: RestartCondition::Any as i32,
        delay_ms: 0,
        ..Default::default()
    };
    let id = h
        .create(service_spec(
            "flappy",
            Mode::Replicated(ReplicatedService { replicas: 1 }),
            Some(policy),
            &[],
        ))
        .await;
    for _ in 0..8 {
        let t = h
            .until("a running task", |h| {
                h.live_task_in_slot(&id, 1)
                    .filter(|x| x.status.as_ref().unwrap().state == TaskState::Running as i32)
            })
            .await;
        h.end_task(&t.id, TaskState::Failed).await;
        h.until("replaced", |h| {
            h.live_task_in_slot(&id, 1).filter(|x| x.id != t.id)
        })
        .await;
    }
    h.until("history at the limit of 3 per slot", |h| {
        Some(()).filter(|_| h.store.view(|t| t.tasks_of_service(&id).count()) <= 3)
    })
    .await;
    assert!(h.store.view(|t| t.tasks_of_service(&id).count()) >= 1);
}

#[tokio::test]
async fn removing_a_service_stops_then_deletes_its_tasks() {
    let h = start(vec![node("a", &[])], 5).await;
    let id = h
        .create(service_spec(
            "web",
            Mode::Replicated(ReplicatedService { replicas: 3 }),
            None,
            &[],
        ))
        .await;
    h.until("3 running", |h| {
        Some(()).filter(|_| total(&h.running(&id)) == 3)
    })
    .await;
    let s = h.store.view(|t| t.services.get(&id).cloned()).unwrap();
    h.proposer
        .propose(Txn::new().remove(s).into_batch())
        .await
        .unwrap();
    h.until("tasks deleted", |h| {
        Some(()).filter(|_| h.store.view(|t| t.tasks.is_empty()))
    })
    .await;
}

#[tokio::test]
async fn unplaceable_tasks_stay_pending_with_a_reason() {
    let h = start(vec![node("a", &[])], 5).await;
    let id = h
        .create(service_spec(
            "picky",
            Mode::Replicated(ReplicatedService { replicas: 1 }),
            None,
            &["node.labels.gpu==yes"],
        ))
        .await;
    let msg = h
        .until("an explanation", |h| {
            h.store.view(|t| {
                t.tasks_of_service(&id).find_map(|x| {
                    x.status
                        .as_ref()
                        .filter(|s| s.message.contains("no suitable node"))
                        .map(|s| s.message.clone())
                })
            })
        })
        .await;
    assert!(msg.contains("constraint"), "{msg}");
    let state = h.store.view(|t| {
        t.tasks_of_service(&id)
            .next()
            .unwrap()
            .status
            .clone()
            .unwrap()
            .state
    });
    assert_eq!(state, TaskState::Pending as i32);
}

impl Harness {
    /// An update as the control API makes it: new spec version, previous spec kept, UPDATING.
    async fn update_image(&self, id: &str, image: &str, cfg: UpdateConfig) {
        self.edit_service(id, |s| {
            let old = s.spec.clone();
            let spec = s.spec.as_mut().unwrap();
            spec.task
                .as_mut()
                .unwrap()
                .container
                .as_mut()
                .unwrap()
                .image = image.into();
            spec.update = Some(cfg);
            s.previous_spec = old;
            s.spec_version += 1;
            s.update_status = Some(UpdateStatus {
                state: UpdateState::Updating as i32,
                started_at: now_ms(),
                ..Default::default()
            });
        })
        .await;
    }

    fn update_state(&self, id: &str) -> (i32, String) {
        self.store.view(|t| {
            let u = t
                .services
                .get(id)
                .and_then(|s| s.update_status.clone())
                .unwrap_or_default();
            (u.state, u.message)
        })
    }

    fn live_images(&self, id: &str) -> Vec<String> {
        let mut v: Vec<String> = self.store.view(|t| {
            t.live_tasks_of_service(id)
                .map(|x| {
                    x.spec
                        .clone()
                        .unwrap()
                        .into_inner()
                        .container
                        .unwrap()
                        .image
                })
                .collect()
        });
        v.sort();
        v
    }
}

fn update_config(
    parallelism: u64,
    action: UpdateFailureAction,
    order: UpdateOrder,
) -> UpdateConfig {
    UpdateConfig {
        parallelism,
        delay_ms: 0,
        failure_action: action as i32,
        monitor_ms: 500,
        max_failure_ratio: 0.0,
        order: order as i32,
        ..Default::default()
    }
}

async fn three_replicas(h: &Harness) -> String {
    let id = h
        .create(service_spec(
            "web",
            Mode::Replicated(ReplicatedService { replicas: 3 }),
            None,
            &[],
        ))
        .await;
    h.until("3 running", |h| {
        Some(()).filter(|_| total(&h.running(&id)) == 3)
    })
    .await;
    id
}

#[tokio::test]
async fn a_failing_update_rolls_back() {
    let h = start(vec![node("a", &[]), node("b", &[])], 10).await;
    let id = three_replicas(&h).await;
    h.update_image(
        &id,
        "img:bad",
        update_config(1, UpdateFailureAction::Rollback, UpdateOrder::StopFirst),
    )
    .await;
    h.until("rollback completed", |h| {
        Some(()).filter(|_| h.update_state(&id).0 == UpdateState::RollbackCompleted as i32)
    })
    .await;
    h.until("3 running on the old image", |h| {
        Some(()).filter(|_| {
            total(&h.running(&id)) == 3 && h.live_images(&id) == ["img:1", "img:1", "img:1"]
        })
    })
    .await;
    let spec_image = h.store.view(|t| {
        t.services
            .get(&id)
            .unwrap()
            .spec
            .clone()
            .unwrap()
            .task
            .unwrap()
            .into_inner()
            .container
            .unwrap()
            .image
    });
    assert_eq!(spec_image, "img:1", "the spec itself went back");
}

#[tokio::test]
async fn a_failing_update_pauses_after_the_first_batch() {
    let h = start(vec![node("a", &[])], 10).await;
    let id = three_replicas(&h).await;
    h.update_image(
        &id,
        "img:bad",
        update_config(1, UpdateFailureAction::Pause, UpdateOrder::StopFirst),
    )
    .await;
    let (_, msg) = h
        .until("paused", |h| {
            Some(h.update_state(&id)).filter(|s| s.0 == UpdateState::Paused as i32)
        })
        .await;
    assert!(msg.contains("paused due to failure"), "{msg}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Only the first batch was tried: two tasks still run the old image.
    let old = h.live_images(&id).iter().filter(|i| *i == "img:1").count();
    assert_eq!(old, 2, "{:?}", h.live_images(&id));
}

#[tokio::test]
async fn failure_inside_the_monitor_window_counts() {
    let h = start(vec![node("a", &[])], 10).await;
    let id = three_replicas(&h).await;
    h.update_image(
        &id,
        "img:flaky",
        update_config(1, UpdateFailureAction::Pause, UpdateOrder::StopFirst),
    )
    .await;
    h.until("paused by a task that failed after starting", |h| {
        Some(()).filter(|_| h.update_state(&id).0 == UpdateState::Paused as i32)
    })
    .await;
}

#[tokio::test]
async fn continue_goes_through_every_slot() {
    let h = start(vec![node("a", &[])], 10).await;
    let id = three_replicas(&h).await;
    h.update_image(
        &id,
        "img:bad",
        update_config(1, UpdateFailureAction::Continue, UpdateOrder::StopFirst),
    )
    .await;
    h.until("every slot on the new spec", |h| {
        let v = h.store.view(|t| {
            let sv = t.services.get(&id).unwrap().spec_version;
            t.live_tasks_of_service(&id)
                .filter(|x| x.spec_version == sv)
                .count()
        });
        Some(()).filter(|_| v >= 3)
    })
    .await;
    assert_ne!(h.update_state(&id).0, UpdateState::Paused as i32);
}

#[tokio::test]
async fn start_first_starts_the_new_task_before_stopping_the_old() {
    let h = start(vec![node("a", &[]), node("b", &[])], 10).await;
    let id = three_replicas(&h).await;
    h.update_image(
        &id,
        "img:2",
        update_config(1, UpdateFailureAction::Pause, UpdateOrder::StartFirst),
    )
    .await;
    let mut most_live = 0;
    let mut most_running = 0;
    h.until("update completed", |h| {
        most_live = most_live.max(h.store.view(|t| t.live_tasks_of_service(&id).count()));
        most_running = most_running.max(total(&h.running(&id)));
        Some(()).filter(|_| h.update_state(&id).0 == UpdateState::Completed as i32)
    })
    .await;
    assert!(
        most_live > 3,
        "a new task existed beside the old one (saw {most_live})"
    );
    assert!(h.live_images(&id) == ["img:2", "img:2", "img:2"]);
    assert!(most_running >= 3);
}

#[tokio::test]
async fn tasks_leave_a_node_that_stops_matching_constraints() {
    let h = start(
        vec![node("a", &[("zone", "x")]), node("b", &[("zone", "x")])],
        10,
    )
    .await;
    let id = h
        .create(service_spec(
            "web",
            Mode::Replicated(ReplicatedService { replicas: 4 }),
            None,
            &["node.labels.zone==x"],
        ))
        .await;
    h.until("4 running over a and b", |h| {
        Some(()).filter(|_| h.running(&id).len() == 2 && total(&h.running(&id)) == 4)
    })
    .await;
    h.edit_node("b", |n| {
        n.spec
            .as_mut()
            .unwrap()
            .annotations
            .as_mut()
            .unwrap()
            .labels
            .clear();
    })
    .await;
    h.until("all on a", |h| {
        Some(()).filter(|_| h.running(&id).get("a") == Some(&4) && h.running(&id).len() == 1)
    })
    .await;
}

#[tokio::test]
async fn a_replicated_job_runs_to_completion_within_its_concurrency_and_reruns_on_force() {
    let h = start(vec![node("a", &[]), node("b", &[])], 10).await;
    let id = h
        .create(job_spec(
            "batch",
            Mode::ReplicatedJob(ReplicatedJob {
                max_concurrent: 2,
                total_completions: 5,
            }),
        ))
        .await;
    let completed = |h: &Harness, version: u64| {
        h.store.view(|t| {
            t.tasks_of_service(&id)
                .filter(|x| {
                    x.spec_version == version
                        && x.status.as_ref().unwrap().state == TaskState::Complete as i32
                })
                .count()
        })
    };
    let mut most = 0;
    h.until("5 completions", |h| {
        most = most.max(total(&h.running(&id)));
        Some(()).filter(|_| completed(h, 1) == 5)
    })
    .await;
    assert!(most <= 2, "at most 2 at a time, saw {most}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(completed(&h, 1), 5, "finished tasks are not run again");
    let unfinished = h.store.view(|t| {
        t.live_tasks_of_service(&id)
            .filter(|x| x.status.as_ref().unwrap().state != TaskState::Complete as i32)
            .count()
    });
    assert_eq!(unfinished, 0);

    // --force: a new run.
    h.edit_service(&id, |s| {
        s.spec.as_mut().unwrap().task.as_mut().unwrap().force_update += 1;
        s.spec_version += 1;
    })
    .await;
    h.until("5 more completions", |h| {
        Some(()).filter(|_| completed(h, 2) == 5)
    })
    .await;
}

#[tokio::test]
async fn completed_job_tasks_are_done_whatever_becomes_of_their_node() {
    // History 0: finished tasks are pruned at once, so a completed job task must not count as
    // finished history either, or the job would run again.
    let h = start(vec![node("a", &[]), node("b", &[])], 0).await;
    let id = h
        .create(job_spec(
            "batch",
            Mode::ReplicatedJob(ReplicatedJob {
                max_concurrent: 2,
                total_completions: 2,
            }),
        ))
        .await;
    let tasks = |h: &Harness| {
        h.store
            .view(|t| t.tasks_of_service(&id).cloned().collect::<Vec<_>>())
    };
    let done = h
        .until("2 completions, desired COMPLETE", |h| {
            let all = tasks(h);
            let settled = all.len() == 2
                && all.iter().all(|x| {
                    x.status.as_ref().unwrap().state == TaskState::Complete as i32
                        && x.desired_state == TaskState::Complete as i32
                });
            settled.then_some(all)
        })
        .await;
    for n in ["a", "b"] {
        h.edit_node(n, |n| {
            n.spec.as_mut().unwrap().availability = NodeAvailability::Drain as i32
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = tasks(&h);
    let ids = |v: &[Task]| {
        let mut ids: Vec<String> = v.iter().map(|x| x.id.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(&after),
        ids(&done),
        "completed tasks were replaced: {after:?}"
    );
    assert!(after
        .iter()
        .all(|x| x.desired_state == TaskState::Complete as i32));
}

#[tokio::test]
async fn a_global_job_runs_once_per_node() {
    let h = start(vec![node("a", &[]), node("b", &[]), node("c", &[])], 10).await;
    let id = h
        .create(job_spec("once", Mode::GlobalJob(GlobalJob {})))
        .await;
    h.until("3 completions", |h| {
        let done = h.store.view(|t| {
            t.tasks_of_service(&id)
                .filter(|x| x.status.as_ref().unwrap().state == TaskState::Complete as i32)
                .count()
        });
        Some(()).filter(|_| done == 3)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.store.view(|t| t.tasks_of_service(&id).count()),
        3,
        "one task per node, not rerun"
    );
}

#[tokio::test]
async fn rebalance_spreads_tasks_onto_new_nodes_only_when_asked() {
    let h = start(vec![node("a", &[]), node("b", &[])], 10).await;
    let id = h
        .create(service_spec(
            "web",
            Mode::Replicated(ReplicatedService { replicas: 6 }),
            None,
            &[],
        ))
        .await;
    h.until("3 and 3", |h| {
        Some(()).filter(|_| h.running(&id).values().copied().collect::<Vec<_>>() == [3, 3])
    })
    .await;
    for n in ["c", "d"] {
        h.proposer
            .propose(Txn::new().create(node(n, &[])).into_batch())
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.running(&id).len(), 2, "nothing moves by itself");

    h.edit_service(&id, |s| {
        s.rebalance_requested = true;
        s.spec.as_mut().unwrap().update = Some(UpdateConfig {
            parallelism: 1,
            ..Default::default()
        });
    })
    .await;
    let spread = h
        .until("no node above its share and the request cleared", |h| {
            let r = h.running(&id);
            let cleared = h
                .store
                .view(|t| !t.services.get(&id).unwrap().rebalance_requested);
            Some(r).filter(|r| {
                cleared && r.values().sum::<usize>() == 6 && r.values().all(|c| *c <= 2)
            })
        })
        .await;
    assert_eq!(spread.len(), 4, "the new nodes got tasks: {spread:?}");
}
