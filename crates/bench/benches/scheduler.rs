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
//! - `trickle`: 10 pending tasks in a cluster already running many (100 services): the pass
//!   that replaces a lost node's tasks. Its cost should follow nodes and pending tasks, not
//!   the tasks already placed.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use std::time::Duration;
use swarm_bench::shapes::{tables, trickle, Shape};
use swarm_manager::scheduler::plan::plan;

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

fn bench_trickle(c: &mut Criterion, sizes: &[(usize, usize)]) {
    const PENDING: usize = 10;
    let mut group = c.benchmark_group("trickle");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for &(nodes, running) in sizes {
        let t = trickle(nodes, running, PENDING);
        let p = plan(&t);
        assert_eq!(p.assignments.len(), PENDING, "trickle {nodes}x{running}");
        let id = BenchmarkId::from_parameter(format!("{}x{}", label(nodes), label(running)));
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
    bench_trickle(
        c,
        &[(1_000, 100_000), (5_000, 100_000), (10_000, 1_000_000)],
    );
}

criterion_group!(benches, scheduler);
criterion_main!(benches);
