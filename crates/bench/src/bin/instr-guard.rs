//! The instruction-count guard: counts the instructions of the hot paths (`swarm_bench::instr`)
//! under `valgrind --tool=callgrind`, which counts the same for the same binary and input
//! however busy the machine is, and compares them with the baseline committed in the repo.
//! Fails when a path takes more than `--tolerance` percent over its baseline.
//!
//!   cargo build --release -p swarm-bench --bin instr-guard && \
//!   target/release/instr-guard check            # CI: compare with crates/bench/instr-baseline.txt
//!   target/release/instr-guard check --update   # rewrite the baseline (commit it on its own, with the reason)

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use swarm_bench::instr::{run, Workload, WORKLOADS};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one workload (what callgrind measures).
    Run {
        workload: String,
        #[arg(long, default_value_t = 0)]
        ops: u64,
    },
    /// Measures every workload under callgrind and compares with the baseline.
    Check {
        /// The committed baseline: one `name instructions-per-op` line per workload.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/instr-baseline.txt"))]
        baseline: PathBuf,
        /// Percent over the baseline that fails the check.
        #[arg(long, default_value_t = 10.0)]
        tolerance: f64,
        /// Write the measured figures as the new baseline instead of comparing.
        #[arg(long)]
        update: bool,
        /// Only the workloads whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
}

fn main() -> Result<()> {
    match Args::parse().cmd {
        Cmd::Run { workload, ops } => Ok(run(&workload, ops)?),
        Cmd::Check {
            baseline,
            tolerance,
            update,
            only,
        } => check(&baseline, tolerance, update, only.as_deref()),
    }
}

/// Instructions callgrind collected over a whole run of `workload` with `ops` operations.
fn collected(workload: &str, ops: u64) -> Result<u64> {
    let me = std::env::current_exe().context("this binary's path")?;
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--dump-instr=no",
        ])
        .arg(&me)
        .args(["run", workload, "--ops", &ops.to_string()])
        .output()
        .context("starting valgrind (Debian's package `valgrind`)")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{workload} --ops {ops} under callgrind failed:\n{stderr}");
    }
    // "==123== Collected : 4567"
    stderr
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no instruction total in callgrind's output:\n{stderr}"))
}

fn per_op(w: &Workload) -> Result<u64> {
    let setup = collected(w.name, 0)?;
    let all = collected(w.name, w.ops)?;
    Ok(all.saturating_sub(setup) / w.ops.max(1))
}

/// The compiler that built this binary (build.rs), which the baseline records.
const RUSTC: &str = env!("BENCH_RUSTC_VERSION");
const RUSTC_LINE: &str = "# rustc: ";

/// The baseline's figures, refused when they were measured on code from another compiler:
/// a new compiler moves every count, and that move is not a regression of ours.
fn read_baseline(path: &PathBuf) -> Result<BTreeMap<String, u64>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(theirs) = line.strip_prefix(RUSTC_LINE) {
            if theirs != RUSTC {
                bail!(
                    "{}: measured with {theirs}, this binary was built by {RUSTC}: \
                     run `instr-guard check --update` and commit the baseline on its own",
                    path.display()
                );
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(name), Some(n), None) = (parts.next(), parts.next(), parts.next()) else {
            bail!("{}:{}: want `name instructions`", path.display(), i + 1);
        };
        let n = n
            .parse()
            .with_context(|| format!("{}:{}: instructions: not a number", path.display(), i + 1))?;
        out.insert(name.to_string(), n);
    }
    Ok(out)
}

fn check(path: &PathBuf, tolerance: f64, update: bool, only: Option<&str>) -> Result<()> {
    if update && only.is_some() {
        bail!("--only: the baseline is rewritten whole, so --update measures every workload");
    }
    let baseline = if update {
        BTreeMap::new()
    } else {
        read_baseline(path)?
    };
    let mut measured = BTreeMap::new();
    let mut over = Vec::new();
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "workload", "baseline", "now", "change"
    );
    for w in WORKLOADS {
        if only.is_some_and(|o| !w.name.contains(o)) {
            continue;
        }
        let now = per_op(w)?;
        measured.insert(w.name.to_string(), now);
        let Some(&base) = baseline.get(w.name) else {
            println!("{:<28} {:>14} {:>14} {:>8}", w.name, "-", now, "new");
            if !update {
                over.push(format!("{}: no baseline", w.name));
            }
            continue;
        };
        let change = (now as f64 - base as f64) * 100.0 / (base.max(1) as f64);
        println!("{:<28} {:>14} {:>14} {:>+7.1}%", w.name, base, now, change);
        if change > tolerance {
            over.push(format!(
                "{}: {now} instructions per op, {change:+.1}% over the baseline's {base} ({})",
                w.name, w.what
            ));
        }
    }
    if update {
        let mut text = String::from(
            "# Instructions per operation under callgrind (instr-guard check --update).\n\
             # Update on purpose, in a commit of its own that says why.\n",
        );
        text.push_str(&format!("{RUSTC_LINE}{RUSTC}\n"));
        for (name, n) in &measured {
            text.push_str(&format!("{name} {n}\n"));
        }
        std::fs::write(path, text).with_context(|| format!("{}", path.display()))?;
        println!("baseline written to {}", path.display());
        return Ok(());
    }
    if !over.is_empty() {
        bail!(
            "over the baseline by more than {tolerance}%:\n  {}",
            over.join("\n  ")
        );
    }
    Ok(())
}
