//! The join phase: the leader takes a snapshot of the whole store (the log behind it is then
//! purged), and one more manager joins, so it can only catch up by installing that snapshot,
//! streamed to it in chunks. Times the snapshot, the join until the new manager is a voter,
//! and until it has applied everything the leader had; checks its store holds the same tasks.
//!
//! The new manager runs on a runtime of its own whose threads count their heap apart
//! (`heap::mark_joiner_thread`), so what installing the snapshot costs is seen on its own.

use super::{cluster, heap, metrics};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use swarm_store::Store;

/// Task count and tasks RUNNING in a store: what must match between leader and joiner.
fn tasks(store: &Store) -> (usize, usize) {
    store.view(|t| {
        let running = t
            .tasks
            .iter()
            .filter(|x| super::phase::is_running(x))
            .count();
        (t.tasks.len(), running)
    })
}

/// Runs the phase against `leader` (on `leader_rt`); the new manager starts on `joiner_rt`
/// in `dir`. Returns the phase's JSON and the new manager (kept until the end of the run).
pub async fn run(
    leader: &cluster::Manager,
    leader_rt: &tokio::runtime::Handle,
    joiner_rt: &tokio::runtime::Handle,
    dir: PathBuf,
    tick_ms: u64,
    timeout: Duration,
) -> Result<(Value, cluster::Manager)> {
    let raft = leader.raft.clone();
    let started = Instant::now();
    let index = leader_rt
        .spawn(async move { raft.snapshot_now(timeout).await })
        .await??;
    let snapshot_s = started.elapsed();
    let status = leader.raft.status();
    let snapshot_file_bytes = metrics::dir_bytes(&leader.dir.join("raft").join("snapshots"));
    eprintln!(
        "[join] snapshot at index {index} ({} MiB on disk) in {:.1} s; log purged to {:?}",
        snapshot_file_bytes >> 20,
        snapshot_s.as_secs_f64(),
        status.purged_index
    );

    let join = swarm_node::Join {
        addr: leader.addr.clone(),
        token: cluster::manager_token(&leader.store)?,
    };
    let leader_tasks = tasks(&leader.store);
    let started = Instant::now();
    let joiner = joiner_rt
        .spawn(async move { cluster::start_manager(dir, tick_ms, Some(join), timeout).await })
        .await??;
    let voter_s = started.elapsed();
    eprintln!(
        "[join] new manager is a voter after {:.1} s",
        voter_s.as_secs_f64()
    );
    // Caught up: it has applied what the leader had applied once it became a voter.
    let target = leader.raft.status().last_applied.unwrap_or(0);
    while joiner.raft.status().last_applied.unwrap_or(0) < target {
        if started.elapsed() > timeout {
            bail!("the new manager did not apply index {target} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let caught_up_s = started.elapsed();
    let joiner_tasks = tasks(&joiner.store);
    if joiner_tasks != leader_tasks {
        bail!(
            "the new manager's store has {joiner_tasks:?} (tasks, running), the leader's \
             {leader_tasks:?}"
        );
    }
    let joined = joiner.raft.status();
    eprintln!(
        "[join] caught up (index {target}, {} tasks) after {:.1} s",
        joiner_tasks.0,
        caught_up_s.as_secs_f64()
    );
    let (heap_end, heap_peak) = heap::joiner_bytes();
    let v = json!({
        "phase": "join",
        "snapshot_index": index,
        "snapshot_s": metrics::secs(snapshot_s),
        "snapshot_file_bytes": snapshot_file_bytes,
        "leader_purged_index": status.purged_index,
        "joiner_voter_s": metrics::secs(voter_s),
        "joiner_caught_up_s": metrics::secs(caught_up_s),
        "joiner_snapshot_index": joined.snapshot_index,
        "tasks": joiner_tasks.0,
        "joiner_heap_bytes_end": heap_end,
        "joiner_heap_bytes_peak": heap_peak,
        "joiner_cpu_s": metrics::thread_cpu_secs("joiner"),
    });
    Ok((v, joiner))
}
