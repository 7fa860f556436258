//! One timed phase of swarm-bench: counters at its start, polling the leader's store until
//! its condition holds (printing progress and recording tasks RUNNING over time), and the
//! figures it reports. Reads the store only; starting or stopping anything is the caller's.

use super::metrics;
use super::tally::{Tally, TaskCounts};
use anyhow::{bail, Result};
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use swarm_api::*;
use swarm_store::{Store, Tables};

/// How often the leader's store is read while waiting.
const POLL: Duration = Duration::from_millis(20);

/// Counters at one instant.
#[derive(Clone, Copy)]
pub struct Snap {
    pub at: Instant,
    pub wall_ms: i64,
    pub mgr_cpu: f64,
    pub agent_cpu: f64,
    pub proc_cpu: f64,
    pub rss: u64,
}

pub fn snap() -> Snap {
    Snap {
        at: Instant::now(),
        wall_ms: now_ms(),
        mgr_cpu: metrics::thread_cpu_secs("mgr"),
        agent_cpu: metrics::thread_cpu_secs("agent")
            + metrics::thread_cpu_secs("lost")
            + super::agents_process::children_cpu_secs(),
        proc_cpu: metrics::process_cpu_secs(),
        rss: metrics::rss_bytes(),
    }
}

/// What a phase waits for, as seen in the leader's store.
#[derive(Default)]
pub struct Progress {
    pub want: usize,
    pub placed: usize,
    pub running: usize,
    /// Phase-specific second condition (node-loss: lost nodes marked DOWN).
    pub extra: Option<(usize, usize)>,
    pub done: bool,
}

/// When the phase's milestones were first seen, and tasks RUNNING at every poll.
pub struct Waited {
    pub all_placed: Option<Duration>,
    pub extra_done: Option<Duration>,
    pub done: Duration,
    /// (seconds since the phase started, tasks RUNNING), one point per poll.
    pub series: Vec<(f64, usize)>,
    /// (seconds since the phase started, tasks placed), one point per poll.
    pub placed_series: Vec<(f64, usize)>,
    /// Latency of each pipeline step for the tasks created during the phase (`stages`).
    pub stages: serde_json::Value,
}

/// Polls until `judge` says the phase is done. `classify` gives each task's share of the
/// counts, which are kept from the watch stream (see `tally`); `judge` turns the totals into
/// progress and may read the store for anything else it needs (keep that small: the read lock
/// it takes holds up the writes being timed).
pub async fn wait_phase(
    store: &Store,
    label: &str,
    start: Snap,
    timeout: Duration,
    classify: impl Fn(&Task) -> Tally + Send + 'static,
    judge: impl Fn(Tally) -> Progress,
) -> Result<Waited> {
    let counts = TaskCounts::spawn(store, classify);
    let stages = super::stages::Stages::spawn(store);
    let mut all_placed = None;
    let mut extra_done = None;
    let mut series = Vec::new();
    let mut placed_series = Vec::new();
    let mut last_print = Instant::now();
    loop {
        let p = judge(counts.current());
        let el = start.at.elapsed();
        series.push((el.as_secs_f64(), p.running));
        placed_series.push((el.as_secs_f64(), p.placed));
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
                "[{label}] {:6.1} s  placed {}/{}  running {}/{}{extra}  mgr cpu {:.1} s  rss {} MiB  mgr heap {} MiB",
                el.as_secs_f64(),
                p.placed,
                p.want,
                p.running,
                p.want,
                metrics::thread_cpu_secs("mgr") - start.mgr_cpu,
                metrics::rss_bytes() >> 20,
                super::heap::manager_bytes().0 >> 20
            );
        }
        if p.done {
            if counts.recounts() > 0 {
                eprintln!(
                    "[{label}] fell behind the watch stream {} time(s): recounted",
                    counts.recounts()
                );
            }
            return Ok(Waited {
                all_placed,
                extra_done,
                done: el,
                series,
                placed_series,
                stages: stages.report(),
            });
        }
        if el > timeout {
            bail!(
                "[{label}] timed out after {el:?}: running {}/{}",
                p.running,
                p.want
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

pub fn is_running(t: &Task) -> bool {
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

/// Every 5th poll (100 ms apart), for the JSON file; the SVG gets every point.
fn thinned(series: &[(f64, usize)]) -> Vec<(f64, usize)> {
    let mut out: Vec<(f64, usize)> = series
        .iter()
        .step_by(5)
        .map(|(t, n)| ((t * 1000.0).round() / 1000.0, *n))
        .collect();
    if let Some(last) = series.last() {
        out.push(*last);
    }
    out
}

/// The phase's figures: times, per-task latencies (task created → RUNNING, from the task's
/// `meta.created_at` and its RUNNING status timestamp; and request → RUNNING), CPU, memory.
pub fn phase_result(
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
        "rss_start_bytes": start.rss,
        "rss_end_bytes": end.rss,
        "peak_rss_bytes": metrics::peak_rss_bytes(),
        "manager_heap_bytes_end": super::heap::manager_bytes().0,
        "manager_heap_bytes_peak": super::heap::manager_bytes().1,
        "placed_per_window": super::windows::report(&waited.placed_series, want),
        "running_per_window": super::windows::report(&waited.series, want),
        "stages": waited.stages,
    });
    eprintln!("[{name}] {}", serde_json::to_string(&v).unwrap_or_default());
    let mut v = v;
    v["running_over_time"] = json!(thinned(&waited.series));
    v
}

/// (created_at, RUNNING timestamp) in ms of the RUNNING tasks of `services` that `pick` keeps.
pub fn latencies(
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
