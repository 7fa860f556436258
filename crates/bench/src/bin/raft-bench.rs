//! raft-bench: committed store writes per second and their latency on a three-manager Raft
//! cluster in one process, on loopback, over real mutual TLS, with the log fsynced as in
//! production.
//!
//! Each write is what the control API's CreateService does: one `StoreBatch` creating one small
//! Service, proposed on the leader, timed until `propose` returns (committed by a quorum and
//! applied to the leader's store). `--clients` closed-loop clients propose concurrently.
//!
//! Owns nothing but its temp dirs; it must not be used as a test (results depend on the disk
//! and on whatever else runs on the machine).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use swarm_api::service_spec::Mode;
use swarm_api::{
    Annotations, ContainerSpec, NodeRole, ReplicatedService, Service, ServiceSpec, TaskSpec,
};
use swarm_ca::{NodeCredentials, RootCa};
use swarm_raft::{PeerConnectError, PeerConnector, RaftConfig, RaftNode};
use swarm_store::{Store, Txn};
use tonic::transport::{Channel, Endpoint, Server};

#[derive(Parser, Debug)]
#[command(about = "Committed Raft store writes/s and latency, 3 managers, mTLS, fsync")]
struct Args {
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Total writes to time (after a short warm-up).
    #[arg(long, default_value_t = 2000)]
    writes: usize,
    /// Stop after this many seconds even if fewer writes were done.
    #[arg(long)]
    duration_secs: Option<u64>,
    /// Log entries the leader keeps in flight (group commit; default: swarmd's). While they
    /// are, concurrent writes gather into the next entry.
    #[arg(long)]
    entries_in_flight: Option<usize>,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

const CLUSTER_ID: &str = "raftbenchcluster";
const WARMUP_WRITES: usize = 50;

/// Raft peers over mutual TLS, as swarmd dials them.
struct TlsPeers(NodeCredentials);

impl PeerConnector for TlsPeers {
    fn channel(&self, addr: &str) -> Result<Channel, PeerConnectError> {
        Endpoint::from_shared(format!("https://{addr}"))
            .and_then(|e| e.tls_config(self.0.client_tls()))
            .map(|e| e.connect_timeout(Duration::from_secs(5)).connect_lazy())
            .map_err(|source| PeerConnectError::Endpoint {
                addr: addr.to_string(),
                source,
            })
    }
}

struct Member {
    node: RaftNode,
    addr: String,
    dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

async fn start(root: &RootCa, id: u64, in_flight: Option<usize>) -> Result<Member> {
    let (cert, key) = root.issue(
        &format!("benchnode{id}"),
        NodeRole::Manager,
        CLUSTER_ID,
        24 * 3600 * 1000,
    )?;
    let creds = NodeCredentials::from_pems(cert, key, root.cert_pem().to_string())?;
    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    // SwarmKit's defaults (1 s tick, election after 10): what a real cluster runs.
    let mut cfg = RaftConfig::new(dir.path(), id, &addr);
    if let Some(n) = in_flight {
        cfg.entries_in_flight = n;
    }
    let node = RaftNode::open(cfg, Store::new(), Arc::new(TlsPeers(creds.clone()))).await?;
    let router = Server::builder()
        .tls_config(creds.server_tls())
        .context("server tls")?
        .add_service(node.grpc_service());
    // The bench's own server: it ends with the bench's runtime.
    #[allow(clippy::disallowed_methods)]
    let server = tokio::spawn(async move {
        // As swarmd's listener does (swarm_ca::tls_incoming): no Nagle delay on small writes.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        if let Err(e) = router.serve_with_incoming(incoming).await {
            eprintln!("raft server stopped: {e}");
        }
    });
    Ok(Member {
        node,
        addr,
        dir,
        server,
    })
}

/// One CreateService-like batch: a small replicated service with an image.
fn create_service(i: usize) -> swarm_api::StoreBatch {
    let service = Service {
        id: swarm_api::ids::new_id(),
        spec: Some(ServiceSpec {
            annotations: Some(Annotations {
                name: format!("bench-{i}"),
                ..Default::default()
            }),
            task: Some(
                TaskSpec {
                    container: Some(ContainerSpec {
                        image: "nginx:1.27-alpine".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
                .into(),
            ),
            mode: Some(Mode::Replicated(ReplicatedService { replicas: 1 })),
            ..Default::default()
        }),
        spec_version: 1,
        ..Default::default()
    };
    Txn::new().create(service).into_batch()
}

fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.clients == 0 || args.writes == 0 {
        bail!("--clients and --writes must be at least 1");
    }
    swarm_ca::install_ring_provider();
    let root = RootCa::generate()?;

    let mut members = Vec::new();
    for id in 1..=3 {
        members.push(start(&root, id, args.entries_in_flight).await?);
    }
    let leader = members[0].node.clone();
    leader.bootstrap().await?;
    tokio::time::timeout(
        Duration::from_secs(10),
        leader.leadership().wait_for(|l| l.is_leader),
    )
    .await
    .context("bootstrap election")??;
    for m in &members[1..] {
        leader.add_voter(m.node.raft_id(), &m.addr).await?;
    }
    anyhow::ensure!(leader.voters().len() == 3, "expected 3 voters");

    // Warm-up: TLS handshakes, HTTP/2 connections, redb's first pages.
    for i in 0..WARMUP_WRITES {
        leader.propose(create_service(1_000_000 + i)).await?;
    }

    let first_entry = leader.status().last_log_index.unwrap_or(0);
    let next = Arc::new(AtomicUsize::new(0));
    let stop_at = args
        .duration_secs
        .map(|s| Instant::now() + Duration::from_secs(s));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        let node = leader.clone();
        let next = next.clone();
        let total = args.writes;
        // Awaited below, one per client.
        #[allow(clippy::disallowed_methods)]
        clients.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || stop_at.is_some_and(|t| Instant::now() >= t) {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let t = Instant::now();
                node.propose(create_service(i))
                    .await
                    .with_context(|| format!("write {i}"))?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for c in clients {
        latencies.extend(c.await??);
    }
    let elapsed = started.elapsed();
    let entries = leader
        .status()
        .last_log_index
        .unwrap_or(0)
        .saturating_sub(first_entry);
    latencies.sort();
    let done = latencies.len();

    // Replication check: every member applied everything the leader acknowledged.
    let want = leader.status().last_applied;
    for m in &members {
        let deadline = Instant::now() + Duration::from_secs(10);
        while m.node.status().last_applied < want {
            if Instant::now() > deadline {
                bail!("member {} did not catch up", m.node.raft_id());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    for m in &members {
        m.node.shutdown().await?;
        m.server.abort();
    }
    // After shutdown, so redb has closed its file.
    let disk: Vec<u64> = members.iter().map(|m| dir_bytes(m.dir.path())).collect();

    let rate = done as f64 / elapsed.as_secs_f64();
    let (p50, p99, max) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or_default(),
    );
    println!(
        "raft-bench: 3 managers, mTLS on loopback, fsync on; {} client(s), {done} writes in {:.2} s",
        args.clients,
        elapsed.as_secs_f64()
    );
    println!("  writes/s: {rate:.0}");
    println!(
        "  log entries: {entries} ({:.1} writes per entry)",
        done as f64 / entries.max(1) as f64
    );
    println!(
        "  latency ms: p50 {:.2}  p99 {:.2}  max {:.2}",
        ms(p50),
        ms(p99),
        ms(max)
    );
    println!(
        "  bytes on disk per member (raft dir, {} entries incl. warm-up): {:?}",
        done + WARMUP_WRITES,
        disk
    );
    if let Some(path) = &args.json {
        let v = serde_json::json!({
            "clients": args.clients,
            "writes": done,
            "elapsed_s": elapsed.as_secs_f64(),
            "writes_per_s": rate,
            "log_entries": entries,
            "latency_ms": { "p50": ms(p50), "p99": ms(p99), "max": ms(max) },
            "disk_bytes_per_member": disk,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
