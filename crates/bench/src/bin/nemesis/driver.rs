//! One nemesis run from start to verdict: start the cluster, start the clients, inject the
//! seeded faults one after another (each held, healed, then timed until the cluster converges),
//! take the final reads through every manager, check the history. Owns the sequence and the
//! report; the pieces it sequences live in the sibling modules.

use crate::cluster::Cluster;
use crate::control;
use crate::converge;
use crate::workload::{self, Recorder, Shared};
use anyhow::{Context, Result};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_api::*;
use swarm_bench::nemesis::history::{FaultRecord, Recorded};
use swarm_bench::nemesis::schedule::{schedule_of, FaultKind};

pub struct Options {
    pub managers: usize,
    pub workers: usize,
    pub faults: usize,
    pub seed: u64,
    pub clients: usize,
    pub settle_bound: Duration,
    pub keep: bool,
    /// Draw faults of these kinds only (every kind when empty).
    pub kinds: Vec<FaultKind>,
}

/// Set once SIGINT or SIGTERM arrives (see [`stop_on_signals`]): the run stops at its next
/// step, and dropping the cluster removes everything it started.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        anyhow::bail!("interrupted: the cluster, its namespaces and its state are removed");
    }
    Ok(())
}

/// Replaces the default action of SIGINT and SIGTERM (die at once, leaving processes,
/// namespaces and mounts behind) with setting [`INTERRUPTED`]. The thread lives as long as
/// the process: a nemesis run is the whole process.
fn stop_on_signals() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut int) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    std::thread::spawn(move || {
        rt.block_on(async {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        });
        eprintln!("nemesis: signal received; stopping and cleaning up");
        INTERRUPTED.store(true, Ordering::SeqCst);
    });
    Ok(())
}

/// Tells the clients to stop however the run ends, so an error does not leave them running
/// against a cluster being torn down.
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

/// A finished run: the record, and what had not converged at the end (if anything).
pub struct Run {
    pub recorded: Recorded,
    pub final_unconverged: Vec<String>,
}

pub fn run(o: &Options) -> Result<Run> {
    let wall = Instant::now();
    let plan = schedule_of(o.seed, o.faults, &o.kinds);
    stop_on_signals().context("signal handlers")?;
    let mut cluster = Cluster::start(o.managers, o.workers, o.keep)?;
    if o.keep {
        eprintln!(
            "keeping the nodes' state and logs in {}",
            cluster.dir().display()
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let nodes = rt.block_on(prepare(&cluster, o.workers))?;
    let shared = Arc::new(Shared {
        start: Instant::now(),
        sockets: cluster.sockets.clone(),
        nodes,
        leader: AtomicUsize::new(0),
        paused: AtomicBool::new(true),
        stop: AtomicBool::new(false),
        busy: AtomicUsize::new(0),
        ops: Mutex::new(Vec::new()),
    });
    let _stop = StopOnDrop(Arc::clone(&shared));
    let expected_nodes = o.managers + o.workers;
    let (first, _) = rt.block_on(settle(
        &shared,
        &mut cluster,
        expected_nodes,
        o.settle_bound,
    ));
    if let Some(p) = first {
        eprintln!("cluster up; converged {p} ms after start");
    }
    let mut clients = Vec::new();
    for p in 1..=o.clients {
        let s = Arc::clone(&shared);
        let seed = o.seed;
        clients.push(std::thread::spawn(move || workload::client(s, p, seed)));
    }
    shared.resume();
    let mut faults = Vec::new();
    for (k, p) in plan.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(p.calm_ms));
        check_interrupted()?;
        let leader = rt.block_on(converge::leader(&cluster.sockets));
        shared
            .leader
            .store(leader.map(|l| l + 1).unwrap_or(0), Ordering::SeqCst);
        let start_us = shared.now_us();
        let mut injected = cluster.inject(p, leader)?;
        std::thread::sleep(Duration::from_millis(p.hold_ms));
        cluster.heal(&mut injected)?;
        check_interrupted()?;
        let healed_us = shared.now_us();
        let healed = Instant::now();
        shared.pause();
        let (settled, unconverged) = rt.block_on(settle_from(
            &shared,
            &mut cluster,
            expected_nodes,
            o.settle_bound,
            healed,
        ));
        eprintln!(
            "fault {}/{} {} {}: {}",
            k + 1,
            o.faults,
            injected.kind.name(),
            injected.target,
            match settled {
                Some(ms) => format!("converged {:.1} s after healing", ms as f64 / 1000.0),
                None => format!("NOT converged after {:?}: {unconverged:?}", o.settle_bound),
            }
        );
        faults.push(FaultRecord {
            kind: injected.kind.name().to_string(),
            target: injected.target.clone(),
            start_us,
            healed_us,
            settle_ms: settled,
            unconverged,
        });
        shared.leader.store(
            rt.block_on(converge::leader(&cluster.sockets))
                .map(|l| l + 1)
                .unwrap_or(0),
            Ordering::SeqCst,
        );
        shared.resume();
    }
    std::thread::sleep(Duration::from_millis(1_000));
    shared.pause();
    let (_, final_unconverged) = rt.block_on(settle(
        &shared,
        &mut cluster,
        expected_nodes,
        o.settle_bound,
    ));
    rt.block_on(final_reads(&shared));
    shared.stop.store(true, Ordering::SeqCst);
    for c in clients {
        match c.join() {
            Ok(r) => r.context("a client")?,
            Err(_) => anyhow::bail!("a client thread panicked"),
        }
    }
    // Each manager's own store, from disk once it has stopped cleanly.
    let mut final_unconverged = final_unconverged;
    for (i, m) in cluster.managers.iter_mut().enumerate() {
        m.terminate();
        let name = Cluster::manager_name(i);
        if let Err(e) = crate::disk::read_store(&shared, &name, &m.dir) {
            final_unconverged.push(format!("{name}'s store: {e:#}"));
        }
    }
    let ops = std::mem::take(&mut *shared.ops.lock());
    drop(cluster);
    Ok(Run {
        recorded: swarm_bench::nemesis::history::Recorded {
            seed: o.seed,
            managers: o.managers,
            workers: o.workers,
            faults,
            ops,
            wall_ms: u64::try_from(wall.elapsed().as_millis()).unwrap_or(u64::MAX),
        },
        final_unconverged,
    })
}

/// Drains the managers (tasks run on the workers only, as real processes) and returns the
/// workers' `(key, node ID)`.
async fn prepare(cluster: &Cluster, workers: usize) -> Result<Vec<(String, String)>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() > deadline {
            anyhow::bail!("the nodes did not register and drain within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Some(mut c) = control::connect(&cluster.sockets[0]).await else {
            continue;
        };
        let Ok(r) = control::bounded(c.list_nodes(ListNodesRequest {})).await else {
            continue;
        };
        let mut out = Vec::new();
        let mut pending = false;
        for n in &r.nodes {
            let host = n
                .description
                .as_ref()
                .map(|d| d.hostname.clone())
                .unwrap_or_default();
            let spec = n.spec.clone().unwrap_or_default();
            if Cluster::manager_index(&host).is_some() {
                if spec.availability() != NodeAvailability::Drain {
                    pending = true;
                    let mut spec = spec;
                    spec.set_availability(NodeAvailability::Drain);
                    let _ = control::bounded(c.update_node(UpdateNodeRequest {
                        node_id: n.id.clone(),
                        node_version: n.meta.as_ref().map(|m| m.version).unwrap_or(0),
                        spec: Some(spec),
                    }))
                    .await;
                }
            } else if !host.is_empty() {
                out.push((format!("node/{host}"), n.id.clone()));
            }
        }
        if !pending && out.len() == workers {
            out.sort();
            return Ok(out);
        }
    }
}

/// Waits for convergence from now; see [`settle_from`].
async fn settle(
    shared: &Shared,
    cluster: &mut Cluster,
    nodes: usize,
    bound: Duration,
) -> (Option<u64>, Vec<String>) {
    settle_from(shared, cluster, nodes, bound, Instant::now()).await
}

/// Sets the workers active again (a paused worker takes no tasks, and the clients pause them
/// now and then), then polls until the cluster has converged: the milliseconds since `since`,
/// or what still had not after `bound`.
async fn settle_from(
    shared: &Shared,
    cluster: &mut Cluster,
    nodes: usize,
    bound: Duration,
    since: Instant,
) -> (Option<u64>, Vec<String>) {
    let deadline = Instant::now() + bound;
    let mut activated = false;
    loop {
        cluster.restart_stopped_on_full_disk();
        if !activated {
            activated = activate_workers(shared).await;
        }
        let pending = converge::pending(&shared.sockets, nodes).await;
        if pending.is_empty() && activated {
            let ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
            return (Some(ms), pending);
        }
        if Instant::now() > deadline || INTERRUPTED.load(Ordering::SeqCst) {
            let mut p = pending;
            if !activated {
                p.push("could not set the workers active".into());
            }
            return (None, p);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Sets every worker's availability back to active through a recorded compare-and-set (client
/// 0 is the driver). True when all are active.
async fn activate_workers(shared: &Shared) -> bool {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let mut all = true;
    for (key, id) in &shared.nodes {
        let Some(mut r) = recorder(shared, 0).await else {
            return false;
        };
        let Some(n) = r.read_node(key, id, false).await else {
            all = false;
            continue;
        };
        let spec = n.spec.clone().unwrap_or_default();
        if spec.availability() == NodeAvailability::Active {
            continue;
        }
        let label = format!("d-{}", SEQ.fetch_add(1, Ordering::SeqCst));
        all &= r
            .update_node(key, &n, NodeAvailability::Active, &label)
            .await;
    }
    all
}

/// A recorder for client `p` through the first manager that answers.
async fn recorder(shared: &Shared, p: usize) -> Option<Recorder<'_>> {
    for (m, socket) in shared.sockets.iter().enumerate() {
        if let Some(client) = control::connect(socket).await {
            return Some(Recorder {
                shared,
                p,
                m,
                client,
                answered: Default::default(),
            });
        }
    }
    None
}

/// Every object read through every manager, after the last healing: what lost writes would be
/// missing from. A read that gets no answer is retried a few times.
async fn final_reads(shared: &Shared) {
    let mut keys: Vec<(String, Option<String>)> = Vec::new();
    keys.extend((0..workload::SERVICES).map(|i| (format!("s{i}"), None)));
    keys.extend((0..workload::SECRETS).map(|i| (format!("c{i}"), Some("secret".into()))));
    for m in 0..shared.sockets.len() {
        let Some(client) = control::connect(&shared.sockets[m]).await else {
            continue;
        };
        let mut r = Recorder {
            shared,
            p: 0,
            m,
            client,
            answered: Default::default(),
        };
        for (name, kind) in &keys {
            for _ in 0..5 {
                if kind.is_some() {
                    r.read_secret(name, true).await;
                } else {
                    r.read_service(name, true).await;
                }
                if r.answered.get() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        for (key, id) in &shared.nodes {
            for _ in 0..5 {
                r.read_node(key, id, true).await;
                if r.answered.get() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
