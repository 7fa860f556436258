//! swarm-bench: a real cluster in one process, timed end to end.
//!
//! Managers run real Raft (openraft, redb log in a temp dir, fsync on), real mutual-TLS gRPC
//! servers on 127.0.0.1 and the real leader components; every simulated node is a real
//! `swarm_agent::Agent` with the sim executor, its own certificate from the cluster's root and
//! its own dispatcher session over mTLS. Scenarios:
//!
//! - `create`: create the service(s); time until every task is RUNNING.
//! - `update`: after `create`, a rolling update of every task at once (parallelism 0).
//! - `node-loss`: after `create`, 10 % of the agents vanish (their runtime is dropped, no
//!   goodbye); time until their tasks run elsewhere. Detection takes 3 heartbeat periods
//!   (`--heartbeat-ms`, written into the cluster object).
//!
//! The manager runs on its own tokio runtime (threads named `mgr`), the agents on another
//! (`agent`, and `lost` for the agents node-loss removes), the driver on the main thread, so
//! the manager's CPU time is measured apart from the agents' (per-thread `/proc` counters).
//!
//!   cargo build --release -p swarm-bench --bin swarm-bench && \
//!   target/release/swarm-bench --nodes 100 --replicas 1000 --scenario update --json r.json

#[path = "swarm_bench/cluster.rs"]
mod cluster;
#[path = "swarm_bench/metrics.rs"]
mod metrics;
#[path = "swarm_bench/tls_listener.rs"]
mod tls_listener;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use swarm_api::control_server::Control;
use swarm_api::service_spec::Mode;
use swarm_api::*;
use swarm_store::{Store, Tables};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Scenario {
    Create,
    Update,
    NodeLoss,
}

#[derive(Parser, Debug)]
#[command(about = "A real cluster in one process (Raft, mTLS, sim agents), timed end to end")]
struct Args {
    #[arg(long, default_value_t = 1)]
    managers: usize,
    /// Simulated nodes, one agent each.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Tasks in total, split evenly over the services.
    #[arg(long, default_value_t = 10_000)]
    replicas: u64,
    #[arg(long, default_value_t = 1)]
    services: usize,
    #[arg(long, value_enum, default_value_t = Scenario::Create)]
    scenario: Scenario,
    /// The dispatcher's heartbeat period in the cluster object (SwarmKit default 5 s).
    #[arg(long = "heartbeat-ms", default_value_t = defaults::HEARTBEAT_PERIOD_MS)]
    heartbeat_ms: i64,
    /// The sim executor's delay before a task is RUNNING.
    #[arg(long = "sim-start-delay-ms", default_value_t = 0)]
    sim_start_delay_ms: u64,
    /// Worker threads of the manager runtime and of the agents' runtime.
    #[arg(long = "manager-threads", default_value_t = 2)]
    manager_threads: usize,
    #[arg(long = "agent-threads", default_value_t = 2)]
    agent_threads: usize,
    /// Give up on a phase after this long.
    #[arg(long = "timeout-secs", default_value_t = 600)]
    timeout_secs: u64,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Counters at one instant.
#[derive(Clone, Copy)]
struct Snap {
    at: Instant,
    wall_ms: i64,
    mgr_cpu: f64,
    agent_cpu: f64,
    proc_cpu: f64,
}

fn snap() -> Snap {
    Snap {
        at: Instant::now(),
        wall_ms: now_ms(),
        mgr_cpu: metrics::thread_cpu_secs("mgr"),
        agent_cpu: metrics::thread_cpu_secs("agent") + metrics::thread_cpu_secs("lost"),
        proc_cpu: metrics::process_cpu_secs(),
    }
}

/// What a phase waits for, as seen in the leader's store.
#[derive(Default)]
struct Progress {
    want: usize,
    placed: usize,
    running: usize,
    /// Phase-specific second condition (node-loss: lost nodes marked DOWN).
    extra: Option<(usize, usize)>,
    done: bool,
}

/// When the phase's milestones were first seen (polling every 20 ms).
struct Waited {
    all_placed: Option<Duration>,
    extra_done: Option<Duration>,
    done: Duration,
}

async fn wait_phase(
    store: &Store,
    label: &str,
    start: Snap,
    timeout: Duration,
    f: impl Fn(&Tables) -> Progress,
) -> Result<Waited> {
    let mut all_placed = None;
    let mut extra_done = None;
    let mut last_print = Instant::now();
    loop {
        let p = store.view(&f);
        let el = start.at.elapsed();
        if all_placed.is_none() && p.want > 0 && p.placed >= p.want {
            all_placed = Some(el);
        }
        if extra_done.is_none() && p.extra.is_some_and(|(a, b)| a >= b) {
            extra_done = Some(el);
        }
        if p.done || last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            let extra = p
                .extra
                .map(|(a, b)| format!("  down {a}/{b}"))
                .unwrap_or_default();
            eprintln!(
                "[{label}] {:6.1} s  placed {}/{}  running {}/{}{extra}  mgr cpu {:.1} s  rss {} MiB",
                el.as_secs_f64(),
                p.placed,
                p.want,
                p.running,
                p.want,
                metrics::thread_cpu_secs("mgr") - start.mgr_cpu,
                metrics::rss_bytes() >> 20
            );
        }
        if p.done {
            return Ok(Waited {
                all_placed,
                extra_done,
                done: el,
            });
        }
        if el > timeout {
            bail!(
                "[{label}] timed out after {el:?}: running {}/{}",
                p.running,
                p.want
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_running(t: &Task) -> bool {
    t.status.as_ref().map(|s| s.state) == Some(TaskState::Running as i32)
}

/// Latency summary (ms) of a set of samples.
fn summary(mut v: Vec<i64>) -> serde_json::Value {
    v.sort_unstable();
    json!({
        "n": v.len(),
        "p50_ms": metrics::percentile(&v, 50.0),
        "p99_ms": metrics::percentile(&v, 99.0),
        "max_ms": v.last().copied().unwrap_or(0),
    })
}

/// The phase's figures: times, per-task latencies (task created → RUNNING, from the task's
/// `meta.created_at` and its RUNNING status timestamp; and request → RUNNING), CPU, memory.
fn phase_result(
    name: &str,
    start: Snap,
    waited: &Waited,
    tasks: &[(i64, i64)],
    want: usize,
) -> serde_json::Value {
    let end = snap();
    let created_to_running: Vec<i64> = tasks.iter().map(|(c, r)| r - c).collect();
    let since_request: Vec<i64> = tasks.iter().map(|(_, r)| r - start.wall_ms).collect();
    let last_running_ms = since_request.iter().copied().max().unwrap_or(0);
    let placed = waited.all_placed.map(metrics::secs);
    let v = json!({
        "phase": name,
        "tasks": want,
        "all_running_observed_s": metrics::secs(waited.done),
        "last_running_timestamp_s": last_running_ms as f64 / 1000.0,
        "all_placed_observed_s": placed,
        "placements_per_s": waited.all_placed.map(|d| (want as f64 / d.as_secs_f64()).round()),
        "nodes_down_observed_s": waited.extra_done.map(metrics::secs),
        "task_created_to_running": summary(created_to_running),
        "request_to_running": summary(since_request),
        "manager_cpu_s": ((end.mgr_cpu - start.mgr_cpu) * 100.0).round() / 100.0,
        "agents_cpu_s": ((end.agent_cpu - start.agent_cpu) * 100.0).round() / 100.0,
        "process_cpu_s": ((end.proc_cpu - start.proc_cpu) * 100.0).round() / 100.0,
        "peak_rss_bytes": metrics::peak_rss_bytes(),
    });
    eprintln!("[{name}] {}", serde_json::to_string(&v).unwrap_or_default());
    v
}

fn service_spec(name: &str, replicas: u64) -> ServiceSpec {
    ServiceSpec {
        annotations: Some(Annotations {
            name: name.to_string(),
            ..Default::default()
        }),
        task: Some(TaskSpec {
            container: Some(ContainerSpec {
                image: "nginx:1.27-alpine".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        mode: Some(Mode::Replicated(ReplicatedService { replicas })),
        update: Some(UpdateConfig {
            parallelism: 0,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.managers == 0 || args.nodes == 0 || args.services == 0 || args.replicas == 0 {
        bail!("--managers, --nodes, --services and --replicas must be at least 1");
    }
    swarm_ca::install_ring_provider();
    // Blocking threads keep living so their CPU time stays in the per-thread counters.
    let keep = Duration::from_secs(24 * 3600);
    let mgr_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.manager_threads)
        .thread_name("mgr")
        .thread_keep_alive(keep)
        .enable_all()
        .build()?;
    let agent_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.agent_threads)
        .thread_name("agent")
        .thread_keep_alive(keep)
        .enable_all()
        .build()?;
    let lost_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("lost")
        .enable_all()
        .build()?;
    let driver = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut lost_rt = Some(lost_rt);
    let res = driver.block_on(run(&args, &mgr_rt, &agent_rt, &mut lost_rt));
    // Stopping 10,000 sim tasks politely is not part of any figure: just go.
    if let Some(rt) = lost_rt {
        rt.shutdown_background();
    }
    agent_rt.shutdown_background();
    mgr_rt.shutdown_background();
    res
}

async fn run(
    args: &Args,
    mgr_rt: &tokio::runtime::Runtime,
    agent_rt: &tokio::runtime::Runtime,
    // Taken (and dropped without a goodbye) by node-loss; a runtime can't be dropped in async
    // code otherwise, so main drops what is left.
    lost_rt: &mut Option<tokio::runtime::Runtime>,
) -> Result<()> {
    let lost_handle = lost_rt
        .as_ref()
        .map(|r| r.handle().clone())
        .context("lost-agents runtime")?;
    let dir = tempfile::tempdir()?;
    let t0 = Instant::now();
    let root = swarm_ca::RootCa::generate()?;
    let cluster_id = ids::new_id();
    let shutdown = CancellationToken::new();
    let managers = {
        let (root, cid, base, hb, sd) = (
            root.clone(),
            cluster_id.clone(),
            dir.path().join("managers"),
            args.heartbeat_ms,
            shutdown.clone(),
        );
        let n = args.managers;
        mgr_rt
            .spawn(async move { cluster::start_managers(&root, &cid, n, &base, hb, sd).await })
            .await??
    };
    let leader = &managers[0];
    let store = leader.store.clone();
    let addrs: Vec<String> = managers.iter().map(|m| m.addr.clone()).collect();
    eprintln!(
        "{} manager(s) up at {:?} in {:.1} s",
        managers.len(),
        addrs,
        t0.elapsed().as_secs_f64()
    );

    let nodes = {
        let (root, cid, raft, n) = (
            root.clone(),
            cluster_id.clone(),
            leader.raft.clone(),
            args.nodes,
        );
        mgr_rt
            .spawn(async move { cluster::register_nodes(&root, &cid, &raft, n).await })
            .await??
    };
    eprintln!(
        "{} node certificates issued and nodes recorded in {:.1} s",
        nodes.len(),
        t0.elapsed().as_secs_f64()
    );

    // The last 10 % of the nodes run on the runtime node-loss drops.
    let lose = if args.scenario == Scenario::NodeLoss {
        (args.nodes / 10).max(1)
    } else {
        0
    };
    let lost_ids: HashSet<String> = nodes[nodes.len() - lose..]
        .iter()
        .map(|n| n.node_id.clone())
        .collect();
    let delay = Duration::from_millis(args.sim_start_delay_ms);
    for (i, n) in nodes.iter().enumerate() {
        let rt = if lost_ids.contains(&n.node_id) {
            &lost_handle
        } else {
            agent_rt.handle()
        };
        let _in = rt.enter();
        cluster::start_agent(
            n,
            addrs.clone(),
            dir.path().join("agents").join(format!("n{i}")),
            delay,
            shutdown.clone(),
        )?;
    }
    let connect = snap();
    let timeout = Duration::from_secs(args.timeout_secs);
    let want_nodes = args.nodes;
    wait_phase(&store, "agents", connect, timeout, |t| {
        let ready = t
            .nodes
            .iter()
            .filter(|n| n.role == NodeRole::Worker as i32)
            .filter(|n| n.status.as_ref().map(|s| s.state) == Some(NodeState::Ready as i32))
            .count();
        Progress {
            want: want_nodes,
            placed: ready,
            running: ready,
            extra: None,
            done: ready == want_nodes,
        }
    })
    .await?;
    let agents_ready_s = metrics::secs(connect.at.elapsed());
    eprintln!("all {want_nodes} agents have a session (READY) after {agents_ready_s} s");
    // Let the first heartbeats and session messages settle before timing.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut phases = Vec::new();
    let want = args.replicas as usize;

    // Create.
    let per = args.replicas / args.services as u64;
    let start = snap();
    let mut service_ids = HashSet::new();
    for i in 0..args.services {
        let replicas = per
            + if i == 0 {
                args.replicas % args.services as u64
            } else {
                0
            };
        let resp = leader
            .control
            .create_service(tonic::Request::new(CreateServiceRequest {
                spec: Some(service_spec(&format!("bench-{i}"), replicas)),
            }))
            .await
            .context("create service")?
            .into_inner();
        service_ids.insert(resp.service.context("created service")?.id);
    }
    let ids_c = service_ids.clone();
    let waited = wait_phase(&store, "create", start, timeout, |t| {
        let mut p = Progress {
            want,
            ..Default::default()
        };
        for x in t.tasks.iter().filter(|x| ids_c.contains(&x.service_id)) {
            if x.desired_state != TaskState::Running as i32 {
                continue;
            }
            p.placed += usize::from(!x.node_id.is_empty());
            p.running += usize::from(is_running(x));
        }
        p.done = p.running == want;
        p
    })
    .await?;
    let lat = store.view(|t| latencies(t, &service_ids, |_| true));
    phases.push(phase_result("create", start, &waited, &lat, want));

    match args.scenario {
        Scenario::Create => {}
        Scenario::Update => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let start = snap();
            let mut new_version: HashMap<String, u64> = HashMap::new();
            for id in &service_ids {
                let svc = store
                    .view(|t| t.services.get(id).cloned())
                    .context("service gone")?;
                let mut spec = svc.spec.clone().context("service without spec")?;
                if let Some(c) = spec.task.as_mut().and_then(|t| t.container.as_mut()) {
                    c.env.push("BENCH_GENERATION=2".into());
                }
                let resp = leader
                    .control
                    .update_service(tonic::Request::new(UpdateServiceRequest {
                        service_id: id.clone(),
                        service_version: svc.meta.as_ref().map(|m| m.version).unwrap_or(0),
                        spec: Some(spec),
                        rollback: false,
                        rebalance: false,
                    }))
                    .await
                    .context("update service")?
                    .into_inner();
                let v = resp.service.context("updated service")?.spec_version;
                new_version.insert(id.clone(), v);
            }
            let nv = new_version.clone();
            let waited = wait_phase(&store, "update", start, timeout, |t| {
                let mut p = Progress {
                    want,
                    ..Default::default()
                };
                let mut old_running = 0;
                for x in t.tasks.iter() {
                    let Some(v) = nv.get(&x.service_id) else {
                        continue;
                    };
                    if x.spec_version < *v {
                        old_running += usize::from(is_running(x));
                    } else if x.desired_state == TaskState::Running as i32 {
                        p.placed += usize::from(!x.node_id.is_empty());
                        p.running += usize::from(is_running(x));
                    }
                }
                p.done = p.running == want && old_running == 0;
                p
            })
            .await?;
            let lat = store.view(|t| {
                latencies(t, &service_ids, |x| {
                    nv.get(&x.service_id).is_some_and(|v| x.spec_version >= *v)
                })
            });
            phases.push(phase_result("update", start, &waited, &lat, want));
        }
        Scenario::NodeLoss => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let on_lost = store.view(|t| {
                t.tasks
                    .iter()
                    .filter(|x| service_ids.contains(&x.service_id) && is_running(x))
                    .filter(|x| lost_ids.contains(&x.node_id))
                    .count()
            });
            let start = snap();
            // The agents vanish as a crashed host would: no final reports, connections cut.
            if let Some(rt) = lost_rt.take() {
                rt.shutdown_background();
            }
            eprintln!("[node-loss] stopped {lose} agents running {on_lost} tasks");
            let (ids_c, lost_c) = (service_ids.clone(), lost_ids.clone());
            let waited = wait_phase(&store, "node-loss", start, timeout, |t| {
                let mut p = Progress {
                    want,
                    ..Default::default()
                };
                for x in t.tasks.iter().filter(|x| ids_c.contains(&x.service_id)) {
                    if x.desired_state != TaskState::Running as i32 || lost_c.contains(&x.node_id) {
                        continue;
                    }
                    p.placed += usize::from(!x.node_id.is_empty());
                    p.running += usize::from(is_running(x));
                }
                let down = lost_c
                    .iter()
                    .filter_map(|id| t.nodes.get(id))
                    .filter(|n| n.status.as_ref().map(|s| s.state) == Some(NodeState::Down as i32))
                    .count();
                p.extra = Some((down, lost_c.len()));
                p.done = p.running == want;
                p
            })
            .await?;
            let since = start.wall_ms;
            let lat = store.view(|t| {
                latencies(t, &service_ids, |x| {
                    x.meta.as_ref().is_some_and(|m| m.created_at >= since)
                })
            });
            let mut v = phase_result("node-loss", start, &waited, &lat, lat.len());
            // Placement rate is a create/update figure: here detection dominates.
            v["placements_per_s"] = serde_json::Value::Null;
            v["nodes_lost"] = json!(lose);
            v["tasks_on_lost_nodes"] = json!(on_lost);
            v["heartbeat_ms"] = json!(args.heartbeat_ms);
            phases.push(v);
        }
    }

    let raft_bytes: Vec<u64> = managers
        .iter()
        .map(|m| metrics::dir_bytes(&m.dir))
        .collect();
    let result = json!({
        "managers": args.managers,
        "nodes": args.nodes,
        "replicas": args.replicas,
        "services": args.services,
        "scenario": format!("{:?}", args.scenario),
        "heartbeat_ms": args.heartbeat_ms,
        "manager_threads": args.manager_threads,
        "agent_threads": args.agent_threads,
        "agents_ready_s": agents_ready_s,
        "phases": phases,
        "raft_dir_bytes": raft_bytes,
        "raft_last_applied": leader.raft.status().last_applied,
        "peak_rss_bytes": metrics::peak_rss_bytes(),
        "process_cpu_s_total": (metrics::process_cpu_secs() * 100.0).round() / 100.0,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&result)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    shutdown.cancel();
    Ok(())
}

/// (created_at, RUNNING timestamp) in ms of the RUNNING tasks of `services` that `pick` keeps.
fn latencies(
    t: &Tables,
    services: &HashSet<String>,
    pick: impl Fn(&Task) -> bool,
) -> Vec<(i64, i64)> {
    t.tasks
        .iter()
        .filter(|x| services.contains(&x.service_id) && is_running(x) && pick(x))
        .filter_map(|x| {
            let created = x.meta.as_ref()?.created_at;
            let running = x.status.as_ref()?.timestamp;
            Some((created, running))
        })
        .collect()
}
