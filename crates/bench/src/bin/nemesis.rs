//! The nemesis: a real cluster (swarmd managers and workers on test hosts, tasks as real
//! `sleep` processes) under a recorded workload of several clients while seeded faults are
//! injected — SIGKILL, SIGSTOP, partitions one- and two-way, a whole-cluster restart, a full
//! disk, a demotion and promotion back — then a linearizability check of every operation the
//! clients saw and of the final state. Ends with
//! one line `faults=K operations=M anomalies=A lost=L`; exits 1 on anomalies or lost writes, 2
//! when only convergence failed, 0 otherwise. Needs root (network namespaces, iptables).
//!
//!   cargo build --bins && target/debug/nemesis --managers 3 --workers 2 --faults 20 --seed 19
//!   target/debug/nemesis --check run.json      # re-check a history saved with --out
//!
//! This file only parses arguments and prints the report; see docs/reliability.md.

#[path = "nemesis/cluster.rs"]
mod cluster;
#[path = "nemesis/control.rs"]
mod control;
#[path = "nemesis/converge.rs"]
mod converge;
#[path = "nemesis/disk.rs"]
mod disk;
#[path = "nemesis/driver.rs"]
mod driver;
#[path = "nemesis/workload.rs"]
mod workload;

use anyhow::{Context, Result};
use clap::Parser;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use swarm_bench::nemesis::checker::{check, Verdict};
use swarm_bench::nemesis::history::{OpKind, Outcome, Recorded};
use swarm_bench::nemesis::schedule::FaultKind;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 3)]
    managers: usize,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    #[arg(long, default_value_t = 20)]
    faults: usize,
    #[arg(long, default_value_t = 19)]
    seed: u64,
    /// Client threads issuing operations.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// How long the cluster may take to converge after each healing.
    #[arg(long = "settle-secs", default_value_t = 60)]
    settle_secs: u64,
    /// Keeps the nodes' state directory and logs (its path is printed).
    #[arg(long)]
    keep: bool,
    /// Writes the run (faults and history) as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Faults of these kinds only, comma-separated (kill-leader, kill-follower, pause-leader,
    /// pause-follower, isolate-follower, isolate-leader, one-way, restart-all, disk-full,
    /// demote); the default mix (all of them) when absent.
    #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
    kinds: Vec<FaultKind>,
    /// Checks a history saved with --out instead of running a cluster.
    #[arg(long)]
    check: Option<PathBuf>,
}

fn parse_kind(name: &str) -> Result<FaultKind, String> {
    FaultKind::parse(name).ok_or_else(|| {
        let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
        format!("no fault kind {name:?}; the kinds: {}", names.join(", "))
    })
}

fn main() {
    let code = match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nemesis: {e:#}");
            3
        }
    };
    std::process::exit(code);
}

fn real_main() -> Result<i32> {
    let args = Args::parse();
    let (recorded, final_unconverged) = match &args.check {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let r: Recorded = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            (r, Vec::new())
        }
        None => {
            let run = driver::run(&driver::Options {
                managers: args.managers,
                workers: args.workers,
                faults: args.faults,
                seed: args.seed,
                clients: args.clients,
                settle_bound: Duration::from_secs(args.settle_secs),
                keep: args.keep,
                kinds: args.kinds.clone(),
            })?;
            if let Some(out) = &args.out {
                let text = serde_json::to_string(&run.recorded)?;
                std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
            }
            (run.recorded, run.final_unconverged)
        }
    };
    let verdict = check(&recorded.ops);
    Ok(report(&recorded, &verdict, &final_unconverged))
}

/// Prints the report and returns the exit code.
fn report(r: &Recorded, v: &Verdict, final_unconverged: &[String]) -> i32 {
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &r.faults {
        *by_kind.entry(f.kind.as_str()).or_default() += 1;
    }
    println!("faults by kind: {by_kind:?}");
    let mut settles: Vec<u64> = r.faults.iter().filter_map(|f| f.settle_ms).collect();
    settles.sort_unstable();
    if let (Some(max), false) = (settles.last(), settles.is_empty()) {
        println!(
            "settle after healing: median {:.1} s, max {:.1} s ({} of {} faults converged)",
            settles[settles.len() / 2] as f64 / 1000.0,
            *max as f64 / 1000.0,
            settles.len(),
            r.faults.len()
        );
    }
    let mut unconverged = false;
    for (i, f) in r.faults.iter().enumerate() {
        if f.settle_ms.is_none() {
            unconverged = true;
            println!(
                "NOT CONVERGED after fault {} ({} {}): {:?}",
                i + 1,
                f.kind,
                f.target,
                f.unconverged
            );
        }
    }
    if !final_unconverged.is_empty() {
        unconverged = true;
        println!("NOT CONVERGED at the end: {final_unconverged:?}");
    }
    for k in &v.unverified {
        unconverged = true;
        println!("UNVERIFIED (no final read answered): {k}");
    }
    let (mut ok, mut failed, mut unknown) = (0, 0, 0);
    for op in &r.ops {
        match op.outcome {
            Outcome::Ok { .. } => ok += 1,
            Outcome::Failed { .. } => failed += 1,
            Outcome::Indeterminate { .. } => unknown += 1,
        }
    }
    println!("operations: {ok} ok, {failed} refused, {unknown} indeterminate");
    let (mut via_leader, mut via_follower) = (0, 0);
    for op in &r.ops {
        if let OpKind::Read { via_leader: l, .. } = op.kind {
            if l {
                via_leader += 1;
            } else {
                via_follower += 1;
            }
        }
    }
    println!("reads: {via_leader} through the leader, {via_follower} through followers");
    for a in v.anomalies.iter().take(50) {
        println!("ANOMALY {:?}: {}", a.kind, a.description);
    }
    for a in v.lost.iter().take(50) {
        println!("LOST {:?}: {}", a.kind, a.description);
    }
    println!("wall time: {:.0} s", r.wall_ms as f64 / 1000.0);
    println!(
        "faults={} operations={} anomalies={} lost={}",
        r.faults.len(),
        r.ops.len(),
        v.anomalies.len(),
        v.lost.len()
    );
    if !v.is_clean() {
        1
    } else if unconverged {
        2
    } else {
        0
    }
}
