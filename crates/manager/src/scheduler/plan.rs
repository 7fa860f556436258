//! The scheduler's planning pass: which pending task goes to which node. A pure function over
//! one consistent view of the tables; it owns the grouping of tasks and the spread order, and
//! must not write the store, read clocks or do I/O (the leader loop in `mod.rs` turns a
//! [`Plan`] into a transaction).
//!
//! Cost: nothing when no task waits (read from the store's PENDING index); otherwise one
//! pass over nodes to read each node's load from the store's aggregates (the tasks already
//! placed are never counted), then per group of tasks that the filters cannot tell apart, one
//! pass over nodes plus a heap operation per task, i.e.
//! O(nodes + groups × nodes + pending × log nodes). SwarmKit filters nodes per task when tasks
//! carry no spec version, which is what makes its large benchmarks take tens of seconds.

use super::filters::{self, Free, GroupKey, HostPort, Requirements, Tally};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use swarm_api::{Node, Task, TaskState};
use swarm_store::{NodeLoads, NodeSlot, Tables};

/// The outcome of one planning pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// (task ID, node ID): tasks to move PENDING → ASSIGNED on that node.
    pub assignments: Vec<(String, String)>,
    /// (task ID, "no suitable node (…)"): tasks to leave PENDING with that status message.
    pub unplaceable: Vec<(String, String)>,
}

/// Spread order of an eligible node inside a group: fewest live tasks of the group's service,
/// then fewest live tasks overall, then node ID (nodes are indexed in ID order, so the index
/// breaks ties deterministically).
type Rank = Reverse<(bool, u32, u32, u32)>;

/// A node where a service failed this often within the window is used for that service only
/// when no other node fits (SwarmKit: 5 failures within 5 minutes).
const MAX_RECENT_FAILURES: u32 = 5;
const FAILURE_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Plans every pending, unassigned task that should run, as of now.
pub fn plan(tables: &Tables) -> Plan {
    plan_at(tables, swarm_api::now_ms())
}

/// Plans as of `now` (unix ms): recent failures are counted back from it.
pub fn plan_at(tables: &Tables, now: i64) -> Plan {
    // Tasks to place, in ID order. Most passes (status reports coming in) have none, and
    // then the load count below is not needed.
    let to_place: Vec<&Task> = tables
        .pending_tasks()
        .filter(|x| x.node_id.is_empty() && x.desired_state <= TaskState::Running as i32)
        .collect();
    if to_place.is_empty() {
        return Plan::default();
    }
    // Nodes in ID order (the table is ordered), addressed by index from here on.
    let nodes: Vec<&Node> = tables.nodes.iter().collect();
    // Each node's live load as the store keeps it (no pass over tasks), addressed by the
    // node's index here; nodes that left the cluster load nothing we schedule onto.
    let loads = tables.node_loads();
    let mut index_of_slot: Vec<Option<u32>> = vec![None; loads.slot_count()];
    let mut load = Load {
        total: vec![0; nodes.len()],
        free: nodes.iter().map(|n| Free::capacity(n)).collect(),
        by_service: HashMap::new(),
        dense: vec![0; nodes.len()],
        failures: HashMap::new(),
        ports: vec![HashSet::new(); nodes.len()],
        now,
    };
    for (i, node) in nodes.iter().enumerate() {
        if let Some((slot, l)) = loads.of_node(&node.id) {
            if let Some(x) = index_of_slot.get_mut(slot.index()) {
                *x = Some(i as u32);
            }
            load.total[i] = l.tasks();
            load.free[i] = load.free[i].less(l);
            load.ports[i].extend(l.host_ports());
        }
    }
    // The tasks to place, grouped by what the filters read (see `GroupKey`): tasks of one
    // service with different spec versions but the same placement share a group, as every
    // filter and the spread order give them the same answers.
    let mut group_of: HashMap<GroupKey<'_>, usize> = HashMap::new();
    let mut groups: Vec<(GroupKey<'_>, Vec<&Task>)> = Vec::new();
    for task in to_place {
        let key = GroupKey::of_task(task);
        let g = *group_of.entry(key).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(task);
    }

    // Node state and availability do not depend on the task: check them once.
    let node_ok: Vec<Result<(), filters::Refusal>> =
        nodes.iter().map(|n| filters::check_node_state(n)).collect();

    let mut out = Plan::default();
    // Groups in order of their first task's ID, tasks in ID order: a deterministic plan.
    for (key, tasks) in &groups {
        load.fetch_service(key.service_id, loads, &index_of_slot);
        place_group(key, tasks, &nodes, &node_ok, &mut load, &mut out);
    }
    out
}

/// Live load per node, updated as the plan assigns tasks.
struct Load<'a> {
    /// Live tasks per node.
    total: Vec<u32>,
    /// Unreserved resources per node.
    free: Vec<Free>,
    /// Live tasks per service per node (sparse: most services run on few nodes), read from
    /// the store when a group of the service is first placed.
    by_service: HashMap<&'a str, HashMap<u32, u32>>,
    /// The current group's service counts spread out by node index, so the node scan reads
    /// an array instead of hashing once per node. All zero between groups.
    dense: Vec<u32>,
    /// Recent failures per service per node, read with the service's counts.
    failures: HashMap<&'a str, HashMap<u32, u32>>,
    /// Host-mode ports bound by live tasks per node.
    ports: Vec<HashSet<HostPort>>,
    /// Failures are recent when they are within the window before this (unix ms).
    now: i64,
}

impl<'a> Load<'a> {
    /// Reads the service's per-node counts and recent failures from the store, once per pass:
    /// later groups of the same service see this pass's assignments too.
    fn fetch_service(&mut self, service_id: &'a str, loads: &NodeLoads, index: &[Option<u32>]) {
        if service_id.is_empty() || self.by_service.contains_key(service_id) {
            return;
        }
        let at = |slot: NodeSlot| index.get(slot.index()).copied().flatten();
        let counts = loads
            .of_service(service_id)
            .filter_map(|(slot, n)| at(slot).map(|i| (i, n)))
            .collect();
        self.by_service.insert(service_id, counts);
        let failures = loads
            .failures_since(service_id, self.now - FAILURE_WINDOW_MS)
            .filter_map(|(slot, n)| at(slot).map(|i| (i, n)))
            .collect();
        self.failures.insert(service_id, failures);
    }
}

fn place_group<'a>(
    key: &GroupKey<'a>,
    tasks: &[&Task],
    nodes: &[&Node],
    node_ok: &[Result<(), filters::Refusal>],
    load: &mut Load<'a>,
    out: &mut Plan,
) {
    let req = match Requirements::new(key) {
        Ok(r) => r,
        Err(e) => {
            // Validation should have refused it at create time; leave the tasks pending with
            // the reason rather than ignore a constraint and place them anywhere.
            let msg = format!("no suitable node ({e})");
            out.unplaceable
                .extend(tasks.iter().map(|t| (t.id.clone(), msg.clone())));
            return;
        }
    };
    let Load {
        total,
        free,
        by_service,
        dense,
        failures,
        ports,
        now: _,
    } = load;
    let failing_here = failures.get(key.service_id);
    let failing = |i: usize| {
        failing_here
            .and_then(|f| f.get(&(i as u32)))
            .is_some_and(|&n| n >= MAX_RECENT_FAILURES)
    };
    // Tasks without a service have no service to spread over: their count stays 0.
    let mut sparse = if key.service_id.is_empty() {
        None
    } else {
        Some(by_service.entry(key.service_id).or_default())
    };
    if let Some(s) = sparse.as_ref() {
        for (&i, &c) in s.iter() {
            dense[i as usize] = c;
        }
    }

    // Scan every node once for the group. A lone task (the common case when tasks cannot be
    // grouped) only needs the best node, so it skips building a heap of all of them.
    let mut tally = Tally::default();
    // With a spread preference, nodes fall into buckets by the attribute's value and each
    // task goes to the bucket holding the fewest of the service's tasks, then to the best
    // node in it; without one there is a single bucket.
    let (names, node_bucket) = match req.spread.as_ref() {
        Some(key) => {
            let mut names: Vec<&str> = Vec::new();
            let mut index: HashMap<&str, usize> = HashMap::new();
            let mut node_bucket: Vec<usize> = Vec::with_capacity(nodes.len());
            for node in nodes {
                let v = key.value_of(node);
                let b = *index.entry(v).or_insert_with(|| {
                    names.push(v);
                    names.len() - 1
                });
                node_bucket.push(b);
            }
            (names, node_bucket)
        }
        // One bucket: no value to look up per node (hashing "" for every node of every
        // group was most of an ungroupable task's placement).
        None => (vec![""], vec![0; nodes.len()]),
    };
    let mut placed_in: Vec<u32> = vec![0; names.len()];
    if req.spread.is_some() {
        for (i, &b) in node_bucket.iter().enumerate() {
            placed_in[b] += dense[i];
        }
    }
    let lone = tasks.len() == 1 && req.spread.is_none();
    let mut best: Option<Rank> = None;
    let mut eligible: Vec<Vec<Rank>> = vec![Vec::new(); names.len()];
    for (i, node) in nodes.iter().enumerate() {
        let svc = dense[i];
        let verdict = node_ok[i]
            .and_then(|()| filters::check_resources(&req, free[i]))
            .and_then(|()| filters::check_constraints(&req, node))
            .and_then(|()| filters::check_max_replicas(&req, u64::from(svc)))
            .and_then(|()| filters::check_host_ports(&req, &ports[i]));
        match verdict {
            Ok(()) => {
                let rank = Reverse((failing(i), svc, total[i], i as u32));
                if !lone {
                    eligible[node_bucket[i]].push(rank);
                } else if best.as_ref().is_none_or(|b| rank > *b) {
                    best = Some(rank);
                }
            }
            Err(r) => tally.record(r),
        }
    }
    let mut heaps: Vec<BinaryHeap<Rank>> = eligible.into_iter().map(BinaryHeap::from).collect();
    if let (Some(b), Some(h)) = (best, heaps.first_mut()) {
        h.push(b);
    }

    for (n, task) in tasks.iter().enumerate() {
        // The emptiest bucket that still has a fitting node (ties: by value, for determinism).
        let pick = (0..heaps.len())
            .filter(|&b| !heaps[b].is_empty())
            .min_by_key(|&b| (placed_in[b], names[b]));
        let Some(Reverse((penalised, _, tot, idx))) = pick.and_then(|b| heaps[b].pop()) else {
            // Every node is refused now; the same holds for the rest of the group.
            let msg = tally.explain();
            out.unplaceable
                .extend(tasks[n..].iter().map(|t| (t.id.clone(), msg.clone())));
            break;
        };
        let i = idx as usize;
        let b = node_bucket[i];
        out.assignments.push((task.id.clone(), nodes[i].id.clone()));
        // Account the assignment so later tasks (of this and later groups) see it.
        total[i] += 1;
        placed_in[b] += 1;
        free[i].reserve(req.nano_cpus, req.memory_bytes);
        ports[i].extend(req.host_ports.iter().copied());
        if let Some(s) = sparse.as_mut() {
            dense[i] += 1;
            *s.entry(idx).or_default() += 1;
        }
        // Only resources, the replica limit and bound ports change with an assignment.
        match filters::check_resources(&req, free[i])
            .and_then(|()| filters::check_max_replicas(&req, u64::from(dense[i])))
            .and_then(|()| filters::check_host_ports(&req, &ports[i]))
        {
            Ok(()) => heaps[b].push(Reverse((penalised, dense[i], tot + 1, idx))),
            Err(r) => tally.record(r),
        }
    }

    // Leave the scratch array all zero for the next group.
    if let Some(s) = sparse {
        for &i in s.keys() {
            dense[i as usize] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use swarm_api::{
        NodeAvailability, NodeState, Placement, ResourceRequirements, Resources, TaskSpec,
        TaskStatus,
    };
    use swarm_store::{Store, Txn};
    use swarm_testkit::fixtures::{self, NodeFixture};

    const GIB: i64 = 1 << 30;

    fn node(id: &str) -> Node {
        fixtures::node(id).with_resources(4_000_000_000, GIB)
    }

    fn pending(id: &str, service: &str, version: u64) -> Task {
        Task {
            id: id.into(),
            service_id: service.into(),
            spec_version: version,
            spec: Some(TaskSpec::default().into()),
            desired_state: TaskState::Running as i32,
            status: Some(TaskStatus {
                state: TaskState::Pending as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn running(id: &str, service: &str, node: &str) -> Task {
        let mut t = pending(id, service, 1);
        t.node_id = node.into();
        if let Some(s) = t.status.as_mut() {
            s.state = TaskState::Running as i32;
        }
        t
    }

    fn with_memory(mut t: Task, mem: i64) -> Task {
        if let Some(s) = t.spec.as_mut() {
            s.resources = Some(ResourceRequirements {
                limits: None,
                reservations: Some(Resources {
                    nano_cpus: 0,
                    memory_bytes: mem,
                }),
            });
        }
        t
    }

    fn with_constraints(mut t: Task, cs: &[&str]) -> Task {
        if let Some(s) = t.spec.as_mut() {
            s.placement = Some(Placement {
                constraints: cs.iter().map(|c| c.to_string()).collect(),
                max_replicas_per_node: 0,
                ..Default::default()
            });
        }
        t
    }

    fn run(nodes: Vec<Node>, tasks: Vec<Task>) -> Plan {
        let store = Store::new();
        let mut txn = Txn::new();
        for n in nodes {
            txn = txn.create(n);
        }
        for t in tasks {
            txn = txn.create(t);
        }
        store.apply(1, &txn.into_batch()).unwrap();
        store.view(plan)
    }

    fn per_node(p: &Plan) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (_, n) in &p.assignments {
            *m.entry(n.clone()).or_default() += 1;
        }
        m
    }

    fn counts(p: &Plan) -> Vec<usize> {
        per_node(p).values().copied().collect()
    }

    #[test]
    fn six_tasks_spread_two_per_node() {
        let tasks = (0..6).map(|i| pending(&format!("t{i}"), "s", 1)).collect();
        let p = run(vec![node("a"), node("b"), node("c")], tasks);
        assert!(p.unplaceable.is_empty());
        assert_eq!(p.assignments.len(), 6);
        assert_eq!(counts(&p), vec![2, 2, 2]);
    }

    #[test]
    fn existing_load_is_respected() {
        let mut tasks: Vec<Task> = vec![running("r1", "s", "a"), running("r2", "s", "a")];
        tasks.extend((0..4).map(|i| pending(&format!("t{i}"), "s", 1)));
        let p = run(vec![node("a"), node("b"), node("c")], tasks);
        let m = per_node(&p);
        assert_eq!(m.get("a"), None, "the loaded node gets nothing: {m:?}");
        assert_eq!(m.get("b"), Some(&2));
        assert_eq!(m.get("c"), Some(&2));
    }

    #[test]
    fn other_services_load_breaks_ties() {
        // Service s has nothing anywhere; node a runs another service's task, so the single
        // new task goes to b (fewest tasks overall), not a (first by ID).
        let tasks = vec![running("r1", "other", "a"), pending("t1", "s", 1)];
        let p = run(vec![node("a"), node("b")], tasks);
        assert_eq!(p.assignments, vec![("t1".to_string(), "b".to_string())]);
    }

    #[test]
    fn dead_tasks_do_not_count_as_load() {
        let mut failed = running("f1", "s", "a");
        if let Some(s) = failed.status.as_mut() {
            s.state = TaskState::Failed as i32;
        }
        let mut stopping = running("f2", "s", "a");
        stopping.desired_state = TaskState::Shutdown as i32;
        let mut tasks = vec![failed, stopping];
        tasks.extend((0..2).map(|i| pending(&format!("t{i}"), "s", 1)));
        let p = run(vec![node("a"), node("b")], tasks);
        assert_eq!(counts(&p), vec![1, 1]);
    }

    #[test]
    fn constraint_excludes_labelled_node() {
        let mut labelled = node("b");
        if let Some(a) = labelled.spec.as_mut().and_then(|s| s.annotations.as_mut()) {
            a.labels.insert("foo".into(), "bar".into());
        }
        let tasks = (0..4)
            .map(|i| with_constraints(pending(&format!("t{i}"), "s", 1), &["node.labels.foo!=bar"]))
            .collect();
        let p = run(vec![node("a"), labelled, node("c")], tasks);
        let m = per_node(&p);
        assert_eq!(m.get("b"), None, "{m:?}");
        assert_eq!(m.get("a"), Some(&2));
        assert_eq!(m.get("c"), Some(&2));
    }

    #[test]
    fn unplaceable_tasks_get_the_explanation() {
        let mut drained = node("a");
        if let Some(s) = drained.spec.as_mut() {
            s.availability = NodeAvailability::Drain as i32;
        }
        let mut down = node("b");
        if let Some(s) = down.status.as_mut() {
            s.state = NodeState::Down as i32;
        }
        let full = node("c");
        let tasks = vec![
            with_memory(running("r1", "x", "c"), GIB),
            with_memory(pending("t1", "s", 1), 512 << 20),
        ];
        let p = run(vec![drained, down, full], tasks);
        assert!(p.assignments.is_empty());
        assert_eq!(
            p.unplaceable,
            vec![(
                "t1".to_string(),
                "no suitable node (2 nodes not available for new tasks; \
                 1 node has insufficient memory)"
                    .to_string()
            )]
        );
    }

    #[test]
    fn reservations_are_subtracted_as_tasks_are_assigned() {
        // 1 GiB node, 400 MiB each: two fit, the third does not.
        let tasks = (0..3)
            .map(|i| with_memory(pending(&format!("t{i}"), "s", 1), 400 << 20))
            .collect();
        let p = run(vec![node("a")], tasks);
        assert_eq!(p.assignments.len(), 2);
        assert_eq!(
            p.unplaceable,
            vec![(
                "t2".to_string(),
                "no suitable node (1 node has insufficient memory)".to_string()
            )]
        );
    }

    #[test]
    fn a_live_tasks_reservation_holds_its_node_until_it_ends() {
        // 1 GiB nodes; a running task holds 700 MiB of a, so 400 MiB more only fit on b,
        // though b runs more tasks (two that reserve nothing).
        let store = Store::new();
        let holder = with_memory(running("r1", "other", "a"), 700 << 20);
        let txn = Txn::new()
            .create(node("a"))
            .create(node("b"))
            .create(holder)
            .create(running("r2", "other", "b"))
            .create(running("r3", "other", "b"))
            .create(with_memory(pending("t1", "s", 1), 400 << 20));
        store.apply(1, &txn.into_batch()).unwrap();
        let on_b = vec![("t1".to_string(), "b".to_string())];
        assert_eq!(store.view(plan).assignments, on_b);
        // Once the holder has ended, a has room again (and comes first by ID).
        let mut done = store.view(|t| t.tasks.get("r1").cloned()).unwrap();
        if let Some(st) = done.status.as_mut() {
            st.state = TaskState::Complete as i32;
        }
        store
            .apply(2, &Txn::new().update(done).into_batch())
            .unwrap();
        let on_a = vec![("t1".to_string(), "a".to_string())];
        assert_eq!(store.view(plan).assignments, on_a);
    }

    #[test]
    fn max_replicas_per_node_is_enforced() {
        let tasks = (0..3)
            .map(|i| {
                let mut t = pending(&format!("t{i}"), "s", 1);
                if let Some(s) = t.spec.as_mut() {
                    s.placement = Some(Placement {
                        constraints: vec![],
                        max_replicas_per_node: 1,
                        ..Default::default()
                    });
                }
                t
            })
            .collect();
        let p = run(vec![node("a"), node("b")], tasks);
        assert_eq!(counts(&p), vec![1, 1]);
        assert_eq!(
            p.unplaceable,
            vec![(
                "t2".to_string(),
                "no suitable node (max replicas per node reached on 2 nodes)".to_string()
            )]
        );
    }

    #[test]
    fn a_host_port_is_bound_once_per_node() {
        let with_port = |mut t: Task, port: u32| {
            t.endpoint = Some(swarm_api::Endpoint {
                spec: None,
                ports: vec![swarm_api::PortConfig {
                    target_port: 80,
                    published_port: port,
                    publish_mode: swarm_api::PublishMode::Host as i32,
                    ..Default::default()
                }],
                ..Default::default()
            });
            t
        };
        // One node: the second task of the port waits, with the reason.
        let tasks = vec![
            with_port(pending("t1", "s", 1), 8080),
            with_port(pending("t2", "s", 1), 8080),
        ];
        let p = run(vec![node("a")], tasks);
        assert_eq!(p.assignments.len(), 1);
        assert_eq!(
            p.unplaceable,
            vec![(
                "t2".to_string(),
                "no suitable node (host-mode port already in use on 1 node)".to_string()
            )]
        );
        // A running task holding the port keeps it; another port is free.
        let mut holder = with_port(running("r1", "s", "a"), 8080);
        holder.spec_version = 1;
        let tasks = vec![
            holder,
            with_port(pending("t1", "s", 2), 8080),
            with_port(pending("t2", "s", 2), 8081),
        ];
        let p = run(vec![node("a"), node("b")], tasks);
        let on: BTreeMap<String, String> = p.assignments.iter().cloned().collect();
        assert_eq!(on.get("t1").map(String::as_str), Some("b"));
        assert_eq!(on.len(), 2);
    }

    #[test]
    fn tasks_of_two_spec_versions_are_both_placed() {
        let tasks = vec![
            pending("t1", "s", 1),
            pending("t2", "s", 1),
            pending("t3", "s", 2),
            // A different placement under the new version forms its own group.
            with_constraints(pending("t4", "s", 2), &["node.id==b"]),
        ];
        let p = run(vec![node("a"), node("b")], tasks);
        assert!(p.unplaceable.is_empty());
        let placed: BTreeMap<_, _> = p.assignments.iter().cloned().collect();
        assert_eq!(placed.len(), 4);
        assert_eq!(placed.get("t4").map(String::as_str), Some("b"));
        assert_eq!(counts(&p), vec![2, 2], "spread holds across versions");
    }

    #[test]
    fn ungroupable_tasks_still_spread() {
        // Each task its own reservation, so each is its own group of one.
        let tasks = (0..4)
            .map(|i| with_memory(pending(&format!("t{i}"), "s", 1), 1 + i))
            .collect();
        let p = run(vec![node("a"), node("b")], tasks);
        assert_eq!(counts(&p), vec![2, 2]);
    }

    #[test]
    fn only_pending_unassigned_wanted_tasks_are_placed() {
        let mut new = pending("n1", "s", 1);
        if let Some(s) = new.status.as_mut() {
            s.state = TaskState::New as i32;
        }
        let mut removing = pending("n2", "s", 1);
        removing.desired_state = TaskState::Shutdown as i32;
        let mut preassigned = pending("n3", "s", 1);
        preassigned.node_id = "a".into();
        let p = run(
            vec![node("a")],
            vec![new, removing, preassigned, pending("t1", "s", 1)],
        );
        assert_eq!(p.assignments, vec![("t1".to_string(), "a".to_string())]);
        assert!(p.unplaceable.is_empty());
    }

    #[test]
    fn tasks_without_a_service_are_placed() {
        let tasks = vec![pending("t1", "", 0), pending("t2", "", 0)];
        let p = run(vec![node("a"), node("b")], tasks);
        assert_eq!(counts(&p), vec![1, 1]);
    }

    #[test]
    fn invalid_constraint_leaves_tasks_pending_with_reason() {
        let t = with_constraints(pending("t1", "s", 1), &["node.labels.foo~bar"]);
        let p = run(vec![node("a")], vec![t]);
        assert!(p.assignments.is_empty());
        assert_eq!(
            p.unplaceable[0].1,
            r#"no suitable node (constraint "node.labels.foo~bar": expected == or !=)"#
        );
    }

    #[test]
    fn no_nodes() {
        let p = run(vec![], vec![pending("t1", "s", 1)]);
        assert_eq!(
            p.unplaceable[0].1,
            "no suitable node (no nodes in the cluster)"
        );
    }

    #[test]
    fn a_node_where_the_service_keeps_failing_is_avoided() {
        let now = 10_000_000;
        let mut tasks = vec![pending("p1", "s1", 1)];
        for k in 0..5 {
            let mut t = running(&format!("f{k}"), "s1", "a");
            t.desired_state = TaskState::Shutdown as i32;
            t.status = Some(TaskStatus {
                state: TaskState::Failed as i32,
                timestamp: now - 1_000,
                ..Default::default()
            });
            tasks.push(t);
        }
        let store = swarm_store::Store::new();
        let mut txn = swarm_store::Txn::new();
        for n in [node("a"), node("b")] {
            txn = txn.create(n);
        }
        for t in tasks.clone() {
            txn = txn.create(t);
        }
        store.apply(1, &txn.into_batch()).unwrap();
        // "a" would win the tie on ID; five recent failures there send the task to "b".
        let p = store.view(|t| plan_at(t, now));
        assert_eq!(p.assignments, vec![("p1".to_string(), "b".to_string())]);
        // Outside the window the failures no longer count.
        let p = store.view(|t| plan_at(t, now + FAILURE_WINDOW_MS + 2_000));
        assert_eq!(p.assignments, vec![("p1".to_string(), "a".to_string())]);
    }

    #[test]
    fn spread_preference_balances_label_values_before_nodes() {
        // Zone x has three nodes, zone y one: by nodes alone y would get a quarter of the
        // tasks; spread over zones gives each zone half.
        let mut nodes = Vec::new();
        for (id, zone) in [("a", "x"), ("b", "x"), ("c", "x"), ("d", "y")] {
            let mut n = node(id);
            n.spec
                .as_mut()
                .unwrap()
                .annotations
                .get_or_insert_with(Default::default)
                .labels
                .insert("zone".into(), zone.into());
            nodes.push(n);
        }
        let tasks: Vec<Task> = (0..8)
            .map(|k| {
                let mut t = pending(&format!("t{k}"), "s1", 1);
                t.spec.get_or_insert_with(Default::default).placement =
                    Some(swarm_api::Placement {
                        preferences: vec!["spread=node.labels.zone".into()],
                        ..Default::default()
                    });
                t
            })
            .collect();
        let p = run(nodes, tasks);
        let by_node = per_node(&p);
        assert_eq!(by_node.get("d"), Some(&4), "zone y gets half: {by_node:?}");
        let x: usize = ["a", "b", "c"]
            .iter()
            .map(|n| by_node.get(*n).copied().unwrap_or(0))
            .sum();
        assert_eq!(x, 4);
        assert!(
            ["a", "b", "c"]
                .iter()
                .all(|n| by_node.get(*n).copied().unwrap_or(0) >= 1),
            "spread within the zone too"
        );
    }

    #[test]
    fn plan_is_deterministic() {
        let mk = || {
            let tasks: Vec<Task> = (0..50)
                .map(|i| pending(&format!("t{i:02}"), &format!("s{}", i % 3), i % 2))
                .collect();
            run((0..7).map(|i| node(&format!("n{i}"))).collect(), tasks)
        };
        let p = mk();
        assert_eq!(p, mk());
        let c = counts(&p);
        assert!(
            c.iter().max().unwrap() - c.iter().min().unwrap() <= 1,
            "{c:?}"
        );
    }
}
