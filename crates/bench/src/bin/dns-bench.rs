//! dns-bench: the tasks' resolver (`swarm_agent::network::dns`) answering over UDP on
//! loopback, with a view of many services on one network: queries per second and latency
//! (p50, p99) for one client asking in turn and for several asking at once, names of the
//! view only (nothing forwarded). Owns only the synthetic view and the timing; results and
//! the command go to docs/benchmarks.md.
//!
//!   cargo run --release -p swarm-bench --bin dns-bench -- [--services N] [--queries N] [--clients N]

use anyhow::{Context, Result};
use clap::Parser;
use std::time::{Duration, Instant};
use swarm_agent::network::dns::{serve, Scope};
use swarm_api::{DnsRecord, Network, NetworksMessage, NodeNetwork};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// Services on the network (each a name and tasks.NAME with 3 addresses).
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Queries per client.
    #[arg(long, default_value_t = 20_000)]
    queries: usize,
    /// Clients asking at the same time in the second run.
    #[arg(long, default_value_t = 8)]
    clients: usize,
}

fn view(services: usize) -> NetworksMessage {
    let mut records = Vec::new();
    for i in 0..services {
        let a = |k: usize| format!("10.{}.{}.{}", i / 250, i % 250, k);
        records.push(DnsRecord {
            name: format!("svc{i}"),
            addresses: vec![a(1)],
        });
        records.push(DnsRecord {
            name: format!("tasks.svc{i}"),
            addresses: vec![a(2), a(3), a(4)],
        });
    }
    NetworksMessage {
        networks: vec![NodeNetwork {
            network: Some(Network {
                id: "net".into(),
                ..Default::default()
            }),
            records,
            ..Default::default()
        }],
        data_path_port: 4789,
        ..Default::default()
    }
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        b.push(l.len() as u8);
        b.extend_from_slice(l.as_bytes());
    }
    b.extend_from_slice(&[0, 0, 1, 0, 1]);
    b
}

/// One client: `n` queries in turn for names spread over the view; each latency.
async fn client(
    server: std::net::SocketAddr,
    n: usize,
    services: usize,
    seed: usize,
) -> Result<Vec<Duration>> {
    let s = UdpSocket::bind("127.0.0.1:0").await?;
    s.connect(server).await?;
    let mut buf = [0u8; 1500];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let k = (i * 7919 + seed) % services;
        let name = if i % 2 == 0 {
            format!("svc{k}")
        } else {
            format!("tasks.svc{k}")
        };
        let q = query(i as u16, &name);
        let t = Instant::now();
        s.send(&q).await?;
        tokio::time::timeout(Duration::from_secs(2), s.recv(&mut buf))
            .await
            .context("no answer within 2 s")??;
        out.push(t.elapsed());
    }
    Ok(out)
}

fn report(label: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    println!(
        "{label}: {} queries in {:.2} s = {:.0} queries/s; p50 {:?}, p99 {:?}",
        lat.len(),
        wall.as_secs_f64(),
        lat.len() as f64 / wall.as_secs_f64(),
        p(0.50),
        p(0.99)
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let server = socket.local_addr()?;
    let (_view_tx, view_rx) = watch::channel(Some(view(args.services)));
    let scope = Scope {
        networks: vec!["net".into()],
        view: view_rx,
        upstreams: vec![],
    };
    let cancel = CancellationToken::new();
    // The resolver runs beside the clients in this task and ends with them.
    let served = serve(socket, scope, cancel.clone());
    let clients = async {
        let r = measure(server, &args).await;
        cancel.cancel();
        r
    };
    let (r, ()) = tokio::join!(clients, served);
    r
}

async fn measure(server: std::net::SocketAddr, args: &Args) -> Result<()> {
    let t = Instant::now();
    let one = client(server, args.queries, args.services, 0).await?;
    report("1 client", one, t.elapsed());
    let t = Instant::now();
    let runs = futures::future::try_join_all(
        (0..args.clients).map(|c| client(server, args.queries, args.services, c * 13)),
    )
    .await?;
    report(
        &format!("{} clients", args.clients),
        runs.into_iter().flatten().collect(),
        t.elapsed(),
    );
    Ok(())
}
