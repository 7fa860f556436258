//! Criterion benchmark of the Raft write path in process: `RaftNode::propose` of one small
//! service on a single-member cluster (redb log, fsync on every append), from proposal to
//! applied in the store, with the log sealed at rest (as swarmd runs it) and without. Owns
//! only the temp state dirs and the timing; it must not change Raft. Replication over mTLS
//! to followers is measured by `raft-bench` (docs/benchmarks.md), not here.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::sync::Arc;
use std::time::Duration;
use swarm_api::service_spec::Mode;
use swarm_api::{Annotations, ReplicatedService, Service, ServiceSpec};
use swarm_raft::{DataKey, PeerConnectError, PeerConnector, RaftConfig, RaftNode};
use swarm_store::{Store, Txn};
use tonic::transport::Channel;

/// A single member never dials anyone.
struct NoPeers;

impl PeerConnector for NoPeers {
    fn channel(&self, addr: &str) -> Result<Channel, PeerConnectError> {
        Err(PeerConnectError::NoRoute {
            addr: addr.into(),
            reason: "no peers in this bench".into(),
        })
    }
}

fn service(i: u64) -> Service {
    Service {
        id: format!("svc{i:012}"),
        spec: Some(ServiceSpec {
            annotations: Some(Annotations {
                name: format!("bench-{i}"),
                ..Default::default()
            }),
            mode: Some(Mode::Replicated(ReplicatedService { replicas: 1 })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let mut g = c.benchmark_group("raft_propose_fsync");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20);
    for sealed in [false, true] {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("temp dir: {e}"),
        };
        let raft = rt.block_on(async {
            let mut cfg = RaftConfig::new(dir.path(), 1, "127.0.0.1:1".to_string());
            cfg.tick_ms = 250;
            if sealed {
                cfg.data_key = Some(DataKey::generate().map_err(|e| e.to_string())?);
            }
            let raft = RaftNode::open(cfg, Store::new(), Arc::new(NoPeers))
                .await
                .map_err(|e| e.to_string())?;
            raft.bootstrap().await.map_err(|e| e.to_string())?;
            raft.leadership()
                .wait_for(|l| l.is_leader)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(raft)
        });
        let raft = match raft {
            Ok(r) => r,
            Err(e) => panic!("raft: {e}"),
        };
        let mut n = 0u64;
        let name = if sealed { "sealed" } else { "plain" };
        g.bench_with_input(BenchmarkId::from_parameter(name), &sealed, |b, _| {
            b.iter(|| {
                n += 1;
                let batch = Txn::new().create(service(n)).into_batch();
                if let Err(e) = rt.block_on(raft.propose(batch)) {
                    panic!("propose: {e}");
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
