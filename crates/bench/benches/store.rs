//! Criterion benchmarks of the in-memory store (`swarm_store::Store`): one-object create and
//! update transactions, get by ID, lookups through the task indexes (by service, by node),
//! the watch fan-out (one applied batch delivered to K subscribers), and a Raft snapshot's
//! encoding. Owns only synthetic
//! tables and the timing; it must not change the store. Results go to docs/benchmarks.md.
//!
//! The store is pre-filled with 100,000 tasks of 100 services on 1,000 nodes, SwarmKit's
//! store-benchmark scale, so lookups and writes pay for realistic index sizes.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::time::Duration;
use swarm_api::{Meta, Task};
use swarm_bench::shapes::running_task;
use swarm_store::{Store, Txn};

const TASKS: usize = 100_000;
const SERVICES: usize = 100;
const NODES: usize = 1_000;

fn task(i: usize) -> Task {
    running_task(i, SERVICES, NODES)
}

/// A store holding `TASKS` tasks, written in batches of 10,000 as the orchestrator would.
fn filled() -> (Store, u64) {
    let store = Store::new();
    let mut index = 0;
    for chunk in (0..TASKS).collect::<Vec<_>>().chunks(10_000) {
        let mut txn = Txn::new();
        for i in chunk {
            txn = txn.create(task(*i));
        }
        index += 1;
        if let Err(e) = store.apply(index, &txn.into_batch()) {
            panic!("filling the store: {e}");
        }
    }
    (store, index)
}

fn bench(c: &mut Criterion) {
    let (store, mut index) = filled();
    let mut g = c.benchmark_group("store");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // A new task each iteration, in a store of its own: it grows by the iteration count
    // (from 100k), which must not inflate the lookups below.
    let (cstore, mut cindex) = filled();
    let mut next = TASKS;
    g.bench_function("create_one_task", |b| {
        b.iter(|| {
            cindex += 1;
            next += 1;
            let r = cstore.apply(cindex, &Txn::new().create(task(next)).into_batch());
            black_box(r.is_ok())
        })
    });
    drop(cstore);

    // Read-modify-write of one task, as the dispatcher's status writes do (clone, change,
    // write with the version read).
    let mut i = 0usize;
    g.bench_function("update_one_task", |b| {
        b.iter(|| {
            i = (i + 7919) % TASKS;
            let id = format!("task{i:08}");
            let Some(mut t) = store.view(|tb| tb.tasks.get(&id).cloned()) else {
                panic!("task {id} missing");
            };
            t.meta.get_or_insert_with(Meta::default);
            if let Some(s) = t.status.as_mut() {
                s.timestamp += 1;
            }
            index += 1;
            black_box(
                store
                    .apply(index, &Txn::new().update(t).into_batch())
                    .is_ok(),
            )
        })
    });

    g.bench_function("get_by_id", |b| {
        b.iter(|| {
            i = (i + 7919) % TASKS;
            let id = format!("task{i:08}");
            black_box(store.view(|tb| tb.tasks.get(&id).map(|t| t.slot)))
        })
    });

    // ~1,000 tasks per service, ~100 per node: count through the index.
    g.bench_function("find_by_service_1000", |b| {
        b.iter(|| {
            i = (i + 1) % SERVICES;
            let sid = format!("svc{i:04}");
            black_box(store.view(|tb| tb.tasks_of_service(&sid).count()))
        })
    });
    g.bench_function("find_by_node_100", |b| {
        b.iter(|| {
            i = (i + 1) % NODES;
            let nid = format!("node{i:05}");
            black_box(store.view(|tb| tb.tasks_of_node(&nid).count()))
        })
    });
    g.finish();

    // Watch fan-out: one 1-task update batch applied, then received by every subscriber.
    let mut g = c.benchmark_group("store_watch_fanout");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for subs in [1usize, 100, 1_000] {
        let mut rxs: Vec<_> = (0..subs).map(|_| store.watch()).collect();
        g.bench_with_input(BenchmarkId::from_parameter(subs), &subs, |b, _| {
            b.iter(|| {
                i = (i + 7919) % TASKS;
                let id = format!("task{i:08}");
                let Some(t) = store.view(|tb| tb.tasks.get(&id).cloned()) else {
                    panic!("task {id} missing");
                };
                index += 1;
                if let Err(e) = store.apply(index, &Txn::new().update(t).into_batch()) {
                    panic!("update: {e}");
                }
                let mut got = 0;
                for rx in rxs.iter_mut() {
                    got += usize::from(rx.try_recv().is_ok());
                }
                assert_eq!(got, subs, "every subscriber gets the batch");
            })
        });
    }
    g.finish();

    // A Raft snapshot of the 100,000-task store: the copy-then-encode it was, and the bytes
    // encoded straight from the view (`Store::snapshot_bytes`, what the state machine does).
    let mut g = c.benchmark_group("store_snapshot_100k");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("copy_then_encode", |b| {
        b.iter(|| black_box(prost::Message::encode_to_vec(&store.snapshot()).len()))
    });
    g.bench_function("encode_from_view", |b| {
        b.iter(|| black_box(store.snapshot_bytes().len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
