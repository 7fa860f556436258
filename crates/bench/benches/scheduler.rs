//! Criterion benchmark of the scheduler's planning pass (`swarm_manager::scheduler::plan::plan`)
//! at SwarmKit's benchmark sizes. Owns only the synthetic cluster states and the timing; it
//! must not touch the scheduler's code or a real store. Only `plan(&tables)` is timed: the
//! tables are built before the timer starts. Results go to docs/benchmarks.md.
//!
//! Shapes:
//! - `one_service`: every task of one service and one spec version (one group).
//! - `no_service`: SwarmKit's own benchmark input (tasks with no service and no spec version,
//!   which SwarmKit schedules one by one). Our planner groups them because every filter gives
//!   them the same answer.
//! - `distinct_versions`: one service, each task its own spec version but the same placement;
//!   also one group here, since grouping keys on what the filters read.
//! - `ungroupable`: each task its own memory reservation, so no two tasks share a group and
//!   every task scans every node (the cost SwarmKit pays for every task). 100k × 100k would be
//!   10^10 node checks (minutes per iteration) and is left out.
//! - `constraints`: a label constraint that one node in three satisfies (SwarmKit's
//!   "constraints" benchmark gives one node in three a required network plugin).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use std::time::Duration;
use swarm_api::{
    Annotations, Node, NodeAvailability, NodeDescription, NodeSpec, NodeState, NodeStatus,
    Placement, ResourceRequirements, Resources, StoreSnapshot, Task, TaskSpec, TaskState,
    TaskStatus,
};
use swarm_manager::scheduler::plan::plan;
use swarm_store::Tables;

#[derive(Clone, Copy)]
enum Shape {
    OneService,
    NoService,
    DistinctVersions,
    Ungroupable,
    Constraints,
}

fn node(i: usize) -> Node {
    let mut labels = std::collections::HashMap::new();
    if i.is_multiple_of(3) {
        labels.insert("net".to_string(), "special".to_string());
    }
    Node {
        id: format!("node{i:07}"),
        spec: Some(NodeSpec {
            annotations: Some(Annotations {
                name: format!("name{i}"),
                labels,
            }),
            availability: NodeAvailability::Active as i32,
            ..Default::default()
        }),
        description: Some(NodeDescription {
            hostname: format!("host{i}"),
            resources: Some(Resources {
                nano_cpus: 64_000_000_000,
                memory_bytes: 1 << 40,
            }),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: NodeState::Ready as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn task(i: usize, shape: Shape) -> Task {
    let mut spec = TaskSpec::default();
    let (service_id, spec_version) = match shape {
        Shape::OneService => ("svc1", 1),
        Shape::NoService | Shape::Constraints => ("", 0),
        Shape::DistinctVersions | Shape::Ungroupable => ("svc1", i as u64 + 1),
    };
    if let Shape::Ungroupable = shape {
        spec.resources = Some(ResourceRequirements {
            limits: None,
            reservations: Some(Resources {
                nano_cpus: 0,
                memory_bytes: i as i64 + 1,
            }),
        });
    }
    if let Shape::Constraints = shape {
        spec.placement = Some(Placement {
            constraints: vec!["node.labels.net==special".to_string()],
            ..Default::default()
        });
    }
    Task {
        id: format!("task{i:07}"),
        service_id: service_id.to_string(),
        spec_version,
        spec: Some(spec),
        desired_state: TaskState::Running as i32,
        status: Some(TaskStatus {
            state: TaskState::Pending as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tables(nodes: usize, tasks: usize, shape: Shape) -> Tables {
    Tables::from_snapshot(StoreSnapshot {
        nodes: (0..nodes).map(node).collect(),
        tasks: (0..tasks).map(|i| task(i, shape)).collect(),
        ..Default::default()
    })
}

fn label(n: usize) -> String {
    if n >= 1000 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

fn bench_shape(c: &mut Criterion, name: &str, shape: Shape, sizes: &[(usize, usize)]) {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for &(nodes, tasks) in sizes {
        let t = tables(nodes, tasks, shape);
        // Sanity outside the timer: everything fits, so everything must be placed.
        let p = plan(&t);
        assert_eq!(p.assignments.len(), tasks, "{name} {nodes}x{tasks}");
        let id = BenchmarkId::from_parameter(format!("{}x{}", label(nodes), label(tasks)));
        group.bench_with_input(id, &t, |b, t| b.iter(|| plan(t)));
    }
    group.finish();
}

const ALL: &[(usize, usize)] = &[
    (1_000, 1_000),
    (1_000, 10_000),
    (1_000, 100_000),
    (100_000, 1_000),
    (100_000, 100_000),
];

fn scheduler(c: &mut Criterion) {
    bench_shape(c, "one_service", Shape::OneService, ALL);
    bench_shape(c, "no_service", Shape::NoService, ALL);
    bench_shape(c, "distinct_versions", Shape::DistinctVersions, ALL);
    bench_shape(c, "ungroupable", Shape::Ungroupable, &ALL[..4]);
    bench_shape(c, "constraints", Shape::Constraints, &[(1_000, 10_000)]);
}

criterion_group!(benches, scheduler);
criterion_main!(benches);
