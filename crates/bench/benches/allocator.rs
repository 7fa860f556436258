//! Criterion benchmark of one allocator pass (`swarm_manager::allocator::pass`) over 10,000 new
//! tasks of one service on one /16 network: each gets an address and moves to PENDING. Also
//! the pass over the same tasks once allocated (nothing to do: what every later pass costs).
//! Owns only the synthetic states and the timing; the tables are built before the timer
//! starts. Results and the command go to docs/benchmarks.md.

use criterion::{criterion_group, criterion_main, Criterion};
use prost::Message;
use std::time::Duration;
use swarm_api::*;
use swarm_store::Tables;

const TASKS: usize = 10_000;

fn network() -> Network {
    Network {
        id: "net".into(),
        spec: Some(NetworkSpec {
            annotations: Some(Annotations {
                name: "app".into(),
                ..Default::default()
            }),
            driver: "overlay".into(),
            ..Default::default()
        }),
        ipam: Some(IpamConfig {
            subnet: "10.10.0.0/16".into(),
            gateway: "10.10.0.1".into(),
        }),
        vni: 4097,
        ..Default::default()
    }
}

fn spec() -> TaskSpec {
    TaskSpec {
        networks: vec![NetworkAttachmentConfig {
            target: "net".into(),
            aliases: vec![],
        }],
        ..Default::default()
    }
}

fn service() -> Service {
    Service {
        id: "svc".into(),
        spec: Some(ServiceSpec {
            annotations: Some(Annotations {
                name: "api".into(),
                ..Default::default()
            }),
            task: Some(spec().into()),
            mode: Some(service_spec::Mode::Replicated(ReplicatedService {
                replicas: TASKS as u64,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn new_task(i: usize) -> Task {
    Task {
        id: format!("task{i:020}"),
        service_id: "svc".into(),
        slot: i as u64 + 1,
        spec: Some(spec().into()),
        desired_state: TaskState::Running as i32,
        status: Some(TaskStatus {
            state: TaskState::New as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tables(tasks: Vec<Task>, service: Service) -> Tables {
    Tables::from_snapshot(StoreSnapshot {
        services: vec![service],
        tasks,
        networks: vec![network()],
        ..Default::default()
    })
}

/// The state after one pass: every task with its address, the service with its VIP.
fn allocated() -> Tables {
    let t = tables((0..TASKS).map(new_task).collect(), service());
    let mut services = Vec::new();
    let mut tasks = Vec::new();
    for action in swarm_manager::allocator::pass(&t).into_batch().actions {
        match action.object.and_then(|o| o.object) {
            Some(store_object::Object::Service(s)) => services.push(*s),
            Some(store_object::Object::Task(x)) => tasks.push(*x),
            _ => {}
        }
    }
    let bytes: usize = tasks
        .iter()
        .flat_map(|x| &x.networks)
        .map(|a| a.encoded_len())
        .sum();
    eprintln!(
        "{} tasks allocated; an attachment is {} bytes encoded on average",
        tasks.len(),
        bytes / tasks.len().max(1)
    );
    tables(tasks, services.pop().unwrap_or_else(service))
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("allocator");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let fresh = tables((0..TASKS).map(new_task).collect(), service());
    g.bench_function("10k_new_tasks_one_network", |b| {
        b.iter(|| swarm_manager::allocator::pass(&fresh))
    });
    let done = allocated();
    g.bench_function("10k_allocated_tasks_nothing_to_do", |b| {
        b.iter(|| swarm_manager::allocator::pass(&done))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
