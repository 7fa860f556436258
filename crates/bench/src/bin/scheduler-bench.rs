//! scheduler-bench: the scheduler like for like with SwarmKit's own benchmark. The real
//! scheduler component runs on a store with the in-memory proposer (no Raft); the timer runs
//! from committing one setup transaction of N nodes and T PENDING tasks until every task has
//! been seen ASSIGNED on the store's watch stream — SwarmKit's measure, debounce included.
//!
//! `--swarmkit` runs SwarmKit's sizes on two inputs: SwarmKit's own (tasks with no service or
//! spec version) and tasks that cannot be grouped (each its own reservation, so each scans
//! every node, as SwarmKit schedules every task), and prints them beside SwarmKit's figures
//! from `../shared/spec/REFERENCE-FIGURES.md`.
//!
//! Owns nothing but its stores; it must not be used as a test (results depend on the machine).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use swarm_api::{StoreBatch, TaskState};
use swarm_bench::shapes::{self, Shape};
use swarm_store::{Change, Store, Txn};
use swarm_testkit::MemoryProposer;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Input {
    /// SwarmKit's benchmark input: no service, no spec version.
    NoService,
    /// Each task its own memory reservation: no two share a group.
    Ungroupable,
    /// A label constraint one node in three satisfies.
    Constraints,
}

impl Input {
    fn shape(self) -> Shape {
        match self {
            Input::NoService => Shape::NoService,
            Input::Ungroupable => Shape::Ungroupable,
            Input::Constraints => Shape::Constraints,
        }
    }
}

#[derive(Parser, Debug)]
#[command(about = "The scheduler component like for like with SwarmKit's benchmark")]
struct Args {
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    #[arg(long, default_value_t = 1000)]
    tasks: usize,
    #[arg(long, value_enum, default_value_t = Input::NoService)]
    input: Input,
    /// Runs per size; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Every SwarmKit size on both inputs, beside SwarmKit's figures.
    #[arg(long)]
    swarmkit: bool,
    /// Give up on one run after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

/// SwarmKit's medians of 3 on our machine (REFERENCE-FIGURES.md, re-run 2026-12-01).
const SWARMKIT: &[(&str, usize, usize, Input, f64)] = &[
    ("1k x 1k", 1_000, 1_000, Input::NoService, 0.118),
    ("1k x 10k", 1_000, 10_000, Input::NoService, 1.443),
    ("1k x 100k", 1_000, 100_000, Input::NoService, 15.73),
    ("100k x 1k", 100_000, 1_000, Input::NoService, 15.23),
    (
        "constraints 1k x 10k",
        1_000,
        10_000,
        Input::Constraints,
        1.486,
    ),
];

/// One timed run: seconds from the setup commit until every task was seen ASSIGNED.
async fn run_once(nodes: usize, tasks: usize, input: Input, timeout: Duration) -> Result<f64> {
    let store = Store::new();
    let proposer = MemoryProposer::new(store.clone());
    let cancel = CancellationToken::new();
    let mut events = store.watch();
    let scheduler = swarm_manager::scheduler::run(
        store.clone(),
        proposer.clone(),
        swarm_manager::ManagerMetrics::default(),
        cancel.clone(),
    );
    // Built before the clock starts, as SwarmKit's benchmark builds its objects.
    let setup = setup_batch(nodes, tasks, input.shape());
    let counted = async {
        // The scheduler must be waiting on the store before the commit, as a leader's is.
        tokio::task::yield_now().await;
        let started = Instant::now();
        swarm_store::Proposer::propose(&*proposer, setup)
            .await
            .context("setup commit")?;
        let mut assigned = HashSet::with_capacity(tasks);
        while assigned.len() < tasks {
            match events.recv().await {
                Ok(change) => {
                    if let Change::Batch { events, .. } = &*change {
                        for e in events {
                            if let Some(swarm_api::store_object::Object::Task(t)) = &e.object.object
                            {
                                if task_state(t) == TaskState::Assigned {
                                    assigned.insert(t.id.clone());
                                }
                            }
                        }
                    }
                }
                // Fell behind the stream: count from the tables instead (still correct, only
                // slower to read).
                Err(RecvError::Lagged(_)) => {
                    assigned = store.view(|t| {
                        t.tasks
                            .iter()
                            .filter(|x| task_state(x) == TaskState::Assigned)
                            .map(|x| x.id.clone())
                            .collect()
                    });
                }
                Err(RecvError::Closed) => bail!("the store's watch stream closed"),
            }
        }
        Ok::<_, anyhow::Error>(started.elapsed().as_secs_f64())
    };
    let result = tokio::select! {
        r = tokio::time::timeout(timeout, counted) => r.map_err(|_| anyhow::anyhow!(
            "not every task ASSIGNED within {timeout:?}"
        )).and_then(|r| r),
        () = scheduler => Err(anyhow::anyhow!("the scheduler stopped")),
    };
    cancel.cancel();
    result
}

fn task_state(t: &swarm_api::Task) -> TaskState {
    t.status
        .as_ref()
        .and_then(|s| TaskState::try_from(s.state).ok())
        .unwrap_or(TaskState::New)
}

fn setup_batch(nodes: usize, tasks: usize, shape: Shape) -> StoreBatch {
    let mut txn = Txn::new();
    for i in 0..nodes {
        txn = txn.create(shapes::node(i));
    }
    for i in 0..tasks {
        txn = txn.create(shapes::pending_task(i, shape));
    }
    txn.into_batch()
}

async fn median(
    nodes: usize,
    tasks: usize,
    input: Input,
    runs: usize,
    timeout: Duration,
) -> Result<(f64, Vec<f64>)> {
    let mut all = Vec::with_capacity(runs);
    for _ in 0..runs {
        all.push(run_once(nodes, tasks, input, timeout).await?);
    }
    let mut sorted = all.clone();
    sorted.sort_by(f64::total_cmp);
    Ok((sorted[sorted.len() / 2], all))
}

fn secs(all: &[f64]) -> String {
    all.iter()
        .map(|s| format!("{s:.3}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.runs == 0 || args.nodes == 0 {
        bail!("--runs and --nodes must be at least 1");
    }
    let timeout = Duration::from_secs(args.timeout_secs);
    if !args.swarmkit {
        let (med, all) = median(args.nodes, args.tasks, args.input, args.runs, timeout).await?;
        println!(
            "scheduler-bench: {} nodes x {} tasks, {:?}: median {med:.3} s (runs: {})",
            args.nodes,
            args.tasks,
            args.input,
            secs(&all)
        );
        return Ok(());
    }
    println!("| nodes x tasks | SwarmKit | ours, SwarmKit's input | x faster | ours, ungroupable | x faster |");
    println!("|---|---|---|---|---|---|");
    for &(label, nodes, tasks, input, theirs) in SWARMKIT {
        let (same, _) = median(nodes, tasks, input, args.runs, timeout).await?;
        let ungroupable = match input {
            Input::Constraints => None,
            _ => Some(
                median(nodes, tasks, Input::Ungroupable, args.runs, timeout)
                    .await?
                    .0,
            ),
        };
        let (u, ux) = match ungroupable {
            Some(u) => (format!("{u:.3} s"), format!("{:.1}", theirs / u)),
            None => ("–".into(), "–".into()),
        };
        println!(
            "| {label} | {theirs:.3} s | {same:.3} s | {:.1} | {u} | {ux} |",
            theirs / same
        );
    }
    Ok(())
}
