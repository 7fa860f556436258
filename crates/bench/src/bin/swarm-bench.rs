//! swarm-bench: a real cluster in one process, timed end to end.
//!
//! Managers run real Raft (openraft, redb log in a temp dir, fsync on), real mutual-TLS gRPC
//! servers on 127.0.0.1 and the real leader components; every simulated node is a real
//! `swarm_agent::Agent` with the sim executor, its own certificate from the cluster's root and
//! its own dispatcher session over mTLS. Scenarios:
//!
//! - `scale` (alias `create`): create the service(s), 0 → N; time until every task is RUNNING.
//! - `update`: after `create`, a rolling update of every task at once (parallelism 0).
//! - `node-loss`: after `create`, 10 % of the agents vanish (their runtime is dropped, no
//!   goodbye); time until their tasks run elsewhere. Detection takes 3 heartbeat periods
//!   (`--heartbeat-ms`, written into the cluster object).
//! - `failover` (needs `--managers 3`): during `scale`, once half the tasks run, the leader's
//!   runtime is dropped (a crash: no goodbye); time until a survivor accepts a write, and
//!   until the new leader's store shows every task RUNNING.
//! - `join`: after `create`, the leader snapshots its store and one more manager joins; it
//!   can only catch up from that snapshot. Times the snapshot, the join and the catch-up.
//!
//! Each manager runs on its own tokio runtime (threads named `mgr`), the agents on another
//! (`agent`, and `lost` for the agents node-loss removes), the driver on the main thread, so
//! the manager's CPU time is measured apart from the agents' (per-thread `/proc` counters).
//! Progress is counted from the leader's watch stream, never by scanning the store.
//!
//!   cargo build --release -p swarm-bench --bin swarm-bench && \
//!   target/release/swarm-bench --nodes 100 --replicas 1000 --scenario update --out r.json
//!
//! `--out r.json` also writes `r.svg`: tasks RUNNING over time, one line per phase.
//! `--agents-process` runs the agents in child processes instead (same agents, same
//! certificates), so this process's peak RSS is the managers' own.

#[path = "swarm_bench/agents_process.rs"]
mod agents_process;
#[path = "swarm_bench/args.rs"]
mod args;
#[path = "swarm_bench/cluster.rs"]
mod cluster;
#[path = "swarm_bench/failover.rs"]
mod failover;
#[path = "swarm_bench/heap.rs"]
mod heap;
#[path = "swarm_bench/join.rs"]
mod join;
#[path = "swarm_bench/metrics.rs"]
mod metrics;
#[path = "swarm_bench/phase.rs"]
mod phase;
#[path = "swarm_bench/plot.rs"]
mod plot;
#[path = "swarm_bench/scale.rs"]
mod scale;
#[path = "swarm_bench/stages.rs"]
mod stages;
#[path = "swarm_bench/tally.rs"]
mod tally;
#[path = "swarm_bench/windows.rs"]
mod windows;

use anyhow::{bail, Context, Result};
use args::{Args, Scenario};
use clap::Parser;
use failover::{next_accepted_write, state_histogram};
use phase::{is_running, latencies, phase_result, snap, wait_phase, Progress};
use scale::{scale_share, service_spec, wait_scale};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use swarm_api::control_server::Control;
use swarm_api::*;
use tally::Tally;
use tokio_util::sync::CancellationToken;

/// How long each of the cluster's first managers may take to come up.
const MANAGER_UP: Duration = Duration::from_secs(60);

/// Counts heap bytes per thread group: the manager's apart from the agents'.
#[global_allocator]
static GLOBAL: heap::Counting = heap::Counting;

fn main() -> Result<()> {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    if std::env::args().nth(1).as_deref() == Some(agents_process::CHILD_FLAG) {
        swarm_ca::install_ring_provider();
        return agents_process::child_main();
    }
    let args = Args::parse();
    if args.managers == 0 || args.nodes == 0 || args.services == 0 || args.replicas == 0 {
        bail!("--managers, --nodes, --services and --replicas must be at least 1");
    }
    if args.scenario == Scenario::Failover && args.managers < 3 {
        bail!("--scenario failover needs --managers 3 (a quorum must survive the leader)");
    }
    swarm_ca::install_ring_provider();
    // Blocking threads keep living so their CPU time stays in the per-thread counters.
    let keep = Duration::from_secs(24 * 3600);
    // A manager's runtime: its threads named `name`, their heap counted by `mark`.
    let manager_rt = |name: &str, mark: fn()| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.manager_threads)
            .thread_name(name)
            .on_thread_start(mark)
            .thread_keep_alive(keep)
            .enable_all()
            .build()
    };
    // One runtime per manager, so failover can drop the leader's as a crash would.
    let mut mgr_rts = Vec::new();
    for _ in 0..args.managers {
        mgr_rts.push(Some(manager_rt("mgr", heap::mark_manager_thread)?));
    }
    // The manager the join scenario adds, on a runtime of its own (heap and CPU apart).
    let joiner_rt = match args.scenario {
        Scenario::Join => Some(manager_rt("joiner", heap::mark_joiner_thread)?),
        _ => None,
    };
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
    let joiner = joiner_rt.as_ref().map(|r| r.handle().clone());
    let res = driver.block_on(run(&args, &mut mgr_rts, joiner, &agent_rt, &mut lost_rt));
    // Stopping 10,000 sim tasks politely is not part of any figure: just go.
    if let Some(rt) = lost_rt {
        rt.shutdown_background();
    }
    agent_rt.shutdown_background();
    for rt in mgr_rts.into_iter().flatten().chain(joiner_rt) {
        rt.shutdown_background();
    }
    res
}

async fn run(
    args: &Args,
    // Taken (and dropped) by failover to kill the leader; main drops what is left.
    mgr_rts: &mut [Option<tokio::runtime::Runtime>],
    joiner_rt: Option<tokio::runtime::Handle>,
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
    let shutdown = CancellationToken::new();
    let mgr_handles: Vec<tokio::runtime::Handle> = mgr_rts
        .iter()
        .flatten()
        .map(|r| r.handle().clone())
        .collect();
    // The first manager bootstraps the cluster; the others join it with the manager token.
    let mut managers: Vec<cluster::Manager> = Vec::new();
    for (i, h) in mgr_handles.iter().enumerate() {
        let mdir = dir.path().join("managers").join(format!("m{i}"));
        let tick = args.tick_ms;
        let join = match managers.first() {
            None => None,
            Some(first) => Some(swarm_node::Join {
                addr: first.addr.clone(),
                token: cluster::manager_token(&first.store)?,
            }),
        };
        managers.push(
            h.spawn(async move { cluster::start_manager(mdir, tick, join, MANAGER_UP).await })
                .await??,
        );
    }
    let managers = std::sync::Arc::new(managers);
    {
        let (hb, ms) = (args.heartbeat_ms, managers.clone());
        mgr_handles[0]
            .spawn(async move { cluster::settle_cluster(&ms[0], hb).await })
            .await??;
    }
    let leader = &managers[0];
    let store = leader.store.clone();
    let (root, cluster_id) = cluster::cluster_root(&store)?;
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
        mgr_handles[0]
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
    // With --agents-process: the processes holding the kept and the lost nodes' agents.
    let mut kept_agents = None;
    let mut lost_agents = None;
    if args.agents_process {
        let agents_dir = dir.path().join("agents");
        let (lost, kept): (Vec<&cluster::SimNode>, Vec<&cluster::SimNode>) =
            nodes.iter().partition(|n| lost_ids.contains(&n.node_id));
        kept_agents = Some(agents_process::AgentsProcess::spawn(
            &kept,
            &addrs,
            &agents_dir,
            delay,
            args.agent_threads,
        )?);
        if !lost.is_empty() {
            lost_agents = Some(agents_process::AgentsProcess::spawn(
                &lost,
                &addrs,
                &agents_dir,
                delay,
                1,
            )?);
        }
    }
    for (i, n) in nodes.iter().enumerate().filter(|_| !args.agents_process) {
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
    let heap_before_nodes = heap::manager_bytes().0;
    let connect = snap();
    let timeout = Duration::from_secs(args.timeout_secs);
    let want_nodes = args.nodes;
    let no_tasks = |_: &Task| Tally::default();
    wait_phase(&store, "agents", connect, timeout, no_tasks, |_| {
        let ready = store.view(|t| {
            t.nodes
                .iter()
                .filter(|n| n.role == NodeRole::Worker as i32)
                .filter(|n| n.status.as_ref().map(|s| s.state) == Some(NodeState::Ready as i32))
                .count()
        });
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
    let heap_with_nodes = heap::manager_bytes().0;
    eprintln!("all {want_nodes} agents have a session (READY) after {agents_ready_s} s");
    // Let the first heartbeats and session messages settle before timing.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut phases = Vec::new();
    let want = args.replicas as usize;

    // Scale: 0 → N. Failover stops this phase at half and kills the leader.
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
            .map_err(|s| anyhow::anyhow!("create service: {s:?}"))?
            .into_inner();
        service_ids.insert(resp.service.context("created service")?.id);
    }
    let failover = args.scenario == Scenario::Failover;
    let until = if failover { want / 2 } else { want };
    let waited = wait_scale(&store, "scale", start, timeout, &service_ids, want, until).await?;
    let mut series = vec![("scale".to_string(), waited.series.clone())];
    let scale_done = waited.done;
    if !failover {
        let lat = store.view(|t| latencies(t, &service_ids, |_| true));
        phases.push(phase_result("scale", start, &waited, &lat, want));
    }
    // The manager whose store is read at the end (the leader).
    let mut leader_ix = 0;
    // The manager the join scenario adds: kept running until the end.
    let mut _joined = None;

    match args.scenario {
        Scenario::Scale => {}
        Scenario::Join => {
            let joiner_rt = joiner_rt.context("the join scenario's runtime")?;
            let mdir = dir.path().join("managers").join("joiner");
            let (v, m) = join::run(
                leader,
                &mgr_handles[0],
                &joiner_rt,
                mdir,
                args.tick_ms,
                timeout,
            )
            .await?;
            _joined = Some(m);
            phases.push(v);
        }
        Scenario::Failover => {
            let kill = snap();
            let running = store.view(|t| {
                t.tasks
                    .iter()
                    .map(|x| scale_share(x, &service_ids).running)
                    .sum::<usize>()
            });
            // A crash: the leader's runtime goes with all its tasks and sockets, no goodbye.
            if let Some(rt) = mgr_rts[0].take() {
                rt.shutdown_background();
            }
            eprintln!("[failover] leader killed with {running}/{want} tasks running");
            let first_write = next_accepted_write(&managers[1..], kill.at, timeout).await?;
            eprintln!(
                "[failover] first write accepted {:.2} s after the kill",
                first_write.as_secs_f64()
            );
            leader_ix = (1..managers.len())
                .find(|i| managers[*i].raft.leadership().borrow().is_leader)
                .context("a write was accepted but no survivor leads")?;
            let new_store = managers[leader_ix].store.clone();
            let waited = wait_scale(
                &new_store,
                "failover",
                kill,
                timeout,
                &service_ids,
                want,
                want,
            )
            .await;
            let waited = match waited {
                Ok(w) => w,
                Err(e) => {
                    // What the tasks that never ran are stuck at, to tell lost status reports
                    // from lost assignments.
                    let stuck = new_store.view(|t| state_histogram(t, &service_ids));
                    bail!("{e}; tasks not RUNNING by state: {stuck:?}");
                }
            };
            let lat = new_store.view(|t| latencies(t, &service_ids, |_| true));
            let mut v = phase_result("failover", kill, &waited, &lat, want);
            v["first_write_accepted_s"] = json!(metrics::secs(first_write));
            v["tasks_running_at_kill"] = json!(running);
            v["tick_ms"] = json!(args.tick_ms);
            // The killed manager's threads are gone from the per-thread counters.
            v["manager_cpu_s"] = serde_json::Value::Null;
            // On the scale phase's time axis, so the plot shows one timeline with the gap.
            let at = scale_done.as_secs_f64();
            let shifted = waited.series.iter().map(|(t, n)| (t + at, *n)).collect();
            series.push((format!("after the leader was killed at {at:.1} s"), shifted));
            phases.push(v);
        }
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
            let share = move |x: &Task| {
                let mut c = Tally::default();
                let Some(v) = nv.get(&x.service_id) else {
                    return c;
                };
                if x.spec_version < *v {
                    c.old_running = usize::from(is_running(x));
                } else if x.desired_state == TaskState::Running as i32 {
                    c.placed = usize::from(!x.node_id.is_empty());
                    c.running = usize::from(is_running(x));
                }
                c
            };
            let waited = wait_phase(&store, "update", start, timeout, share, |c| Progress {
                want,
                placed: c.placed,
                running: c.running,
                extra: None,
                done: c.running == want && c.old_running == 0,
            })
            .await?;
            let lat = store.view(|t| {
                latencies(t, &service_ids, |x| {
                    new_version
                        .get(&x.service_id)
                        .is_some_and(|v| x.spec_version >= *v)
                })
            });
            phases.push(phase_result("update", start, &waited, &lat, want));
            series.push(("update (new version)".to_string(), waited.series.clone()));
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
            if let Some(p) = lost_agents.take() {
                p.kill();
            } else if let Some(rt) = lost_rt.take() {
                rt.shutdown_background();
            }
            eprintln!("[node-loss] stopped {lose} agents running {on_lost} tasks");
            let (ids_c, lost_c) = (service_ids.clone(), lost_ids.clone());
            let lost_s = lost_c.clone();
            let share = move |x: &Task| {
                if lost_s.contains(&x.node_id) {
                    return Tally::default();
                }
                scale_share(x, &ids_c)
            };
            let waited = wait_phase(&store, "node-loss", start, timeout, share, |c| {
                let down = store.view(|t| {
                    lost_c
                        .iter()
                        .filter_map(|id| t.nodes.get(id))
                        .filter(|n| {
                            n.status.as_ref().map(|s| s.state) == Some(NodeState::Down as i32)
                        })
                        .count()
                });
                Progress {
                    want,
                    placed: c.placed,
                    running: c.running,
                    extra: Some((down, lost_c.len())),
                    done: c.running == want,
                }
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
            // The target: their tasks RUNNING elsewhere within the heartbeat grace (DOWN after
            // 3 missed heartbeats) + 2 s.
            let target_s = 3.0 * args.heartbeat_ms as f64 / 1000.0 + 2.0;
            v["target_s"] = json!(target_s);
            v["within_target"] = json!(waited.done.as_secs_f64() <= target_s);
            series.push(("after node loss".to_string(), waited.series.clone()));
            phases.push(v);
        }
    }

    let leader = &managers[leader_ix];
    let (heap_now, heap_peak) = heap::manager_bytes();
    let per_manager = args.managers as i64;
    let snapshot_bytes = prost::Message::encoded_len(&leader.store.snapshot());
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
        // Every manager's log and snapshots are sealed with a data key, as swarmd's are
        // (RaftConfig::data_key None: the raft crate creates one in a new state dir); true
        // when each manager's key is there and unwraps.
        "raft_log_sealed": managers
            .iter()
            .all(|m| swarm_raft::load_data_key(&m.dir, false).is_ok()),
        "raft_last_applied": leader.raft.status().last_applied,
        "tick_ms": args.tick_ms,
        // The leader's store encoded as a snapshot: the state's size without in-memory overhead.
        "store_snapshot_bytes": snapshot_bytes,
        // With agents_process, the managers' (and the driver's) alone.
        "peak_rss_bytes": metrics::peak_rss_bytes(),
        "agents_process": args.agents_process,
        "agents_peak_rss_bytes": agents_process::children_peak_rss_bytes(),
        // Heap bytes allocated by the managers' threads (all managers together), live at the
        // end and at their peak; per node and per task divide by the manager count first.
        "manager_heap_bytes_end": heap_now,
        "manager_heap_bytes_peak": heap_peak,
        "manager_heap_bytes_per_node":
            (heap_with_nodes - heap_before_nodes) / per_manager / args.nodes as i64,
        "manager_heap_bytes_per_task_end":
            (heap_now - heap_with_nodes) / per_manager / args.replicas as i64,
        "process_cpu_s_total": (metrics::process_cpu_secs() * 100.0).round() / 100.0,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    if let Some(p) = &args.out {
        std::fs::write(p, serde_json::to_string_pretty(&result)?)
            .with_context(|| format!("writing {}", p.display()))?;
        let title = format!(
            "swarm-bench {:?}: {} manager(s), {} nodes, {} replicas",
            args.scenario, args.managers, args.nodes, args.replicas
        );
        let svg_path = p.with_extension("svg");
        std::fs::write(&svg_path, plot::svg(&title, &series))
            .with_context(|| format!("writing {}", svg_path.display()))?;
        eprintln!("wrote {} and {}", p.display(), svg_path.display());
    }
    shutdown.cancel();
    drop(kept_agents);
    Ok(())
}
