//! `swarmd`: one node of a swarm. Loads or obtains the node's certificate (bootstrapping a new
//! cluster, or joining one with a token), then runs what its role needs: a manager runs Raft,
//! the store, the control socket and the mutual-TLS remote API (dispatcher, CA, Raft), plus
//! the leader-only components; every node runs an agent that executes its tasks.

mod adapters;
mod args;
mod autolock;
mod force_new;
mod http;
mod identity;
mod inspect;
mod lifecycle;
mod lock;
mod manager;
mod membership;
mod metrics_http;
mod reachability;
mod renewal;
mod roles;
mod route;
mod web;

use anyhow::{Context, Result};
use clap::Parser;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let args = args::Args::parse();
    if let Some(args::Command::InspectState(a)) = &args.command {
        return inspect::main(a);
    }
    swarm_ca::install_ring_provider();
    // openraft narrates every election at info; keep it to warnings unless asked by name.
    let directives = if args.log_level.contains("openraft") {
        args.log_level.clone()
    } else {
        format!("{},openraft=warn", args.log_level)
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

async fn run(args: args::Args) -> Result<()> {
    args.validate()?;
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("state dir {}", args.state_dir.display()))?;
    let _lock = lock::StateDirLock::acquire(&args.state_dir)?;
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        });
    }
    // A manager whose keys autolock sealed waits here for its unlock key.
    let Some(keys) = autolock::open(&args, &shutdown).await? else {
        return Ok(());
    };
    let node = identity::obtain(&args, &keys).await?;
    tracing::info!(node = %node.creds.node_id, role = ?node.creds.role, cluster = %node.creds.cluster_id, "node identity ready");
    // One registry for this node, for its whole life across role changes.
    let metrics = metrics_http::NodeMetrics::new();
    if let Some(addr) = &args.listen_metrics {
        metrics_http::serve(addr, metrics.clone(), shutdown.clone()).await?;
    }
    lifecycle::run_node(args, node, keys, metrics, shutdown).await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the node still runs; it just can't stop gracefully.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
