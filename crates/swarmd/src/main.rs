//! `swarmd`: one node of a swarm. This binary only parses its flags into a
//! `swarm_node::NodeConfig`, sets up logging and signals, and runs the node (`swarm-node`
//! wires everything); plus the offline `inspect-state` command.

mod args;
mod file_limit;
mod inspect;

use anyhow::Result;
use clap::Parser;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// mimalloc rather than glibc's malloc. A manager's heap is millions of small objects
/// (tasks, their strings, Raft entries) allocated and freed from several threads; at 10,000
/// nodes × 1,000,000 tasks glibc's malloc (`_int_malloc`, `malloc_consolidate`, `free`) took
/// about a quarter of the manager's CPU, and with mimalloc the same run used half the CPU
/// and ended in half the time (docs/benchmarks.md, "Session 13").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    match file_limit::raise() {
        Ok(n) => tracing::debug!(open_files = n, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
    }
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
            eprintln!("Error: {}", swarm_node::one_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(args: args::Args) -> Result<()> {
    let cfg = args.into_config()?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let node = swarm_node::run(cfg, swarm_node::Listeners::default(), shutdown);
    tokio::pin!(node);
    tokio::select! {
        r = &mut node => return Ok(r?),
        _ = wait_for_signal() => {}
    }
    tracing::info!("shutting down");
    stop.cancel();
    Ok(node.await?)
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
