//! The `process` executor's stop reaches the whole process group, and respects the grace
//! period before SIGKILL. Checked against /proc.
#![allow(clippy::expect_used)]

use std::time::{Duration, Instant};

use swarm_agent::executor::process::ProcessExecutor;
use swarm_agent::executor::{Executor, ExitStatus};
use swarm_api::{ContainerSpec, Task, TaskSpec};

fn task(command: &[&str]) -> Task {
    Task {
        id: swarm_api::ids::new_id(),
        spec: Some(
            TaskSpec {
                container: Some(ContainerSpec {
                    command: command.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .into(),
        ),
        ..Default::default()
    }
}

/// Live (non-zombie) processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the command: state, ppid, pgrp.
        if fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str()) {
            out.push(pid);
        }
    }
    out
}

async fn wait_for_members(pgid: u32, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while group_members(pgid).len() < n {
        assert!(
            Instant::now() < deadline,
            "group {pgid} never had {n} members"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until group `pgid` has no live member. A signal is delivered asynchronously: a
/// member sent SIGKILL may still be running for a moment on a loaded machine, so "killed" is
/// checked as "gone within 5 s" (the members sleep for 30 s: a survivor fails).
async fn wait_until_empty(pgid: u32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !group_members(pgid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{what}: {:?} still in group {pgid}",
            group_members(pgid)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kills_every_process_of_the_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ex = ProcessExecutor::new(dir.path(), "test", None);
    let mut ctl = ex
        .controller(&task(&["sh", "-c", "sleep 30 & sleep 30; wait"]))
        .expect("controller");
    ctl.prepare().await.expect("prepare");
    let pid = ctl.start().await.expect("start").pid;
    assert!(pid > 0);
    wait_for_members(pid, 3).await;
    ctl.stop(Duration::from_secs(5)).await.expect("stop");
    assert!(matches!(
        ctl.wait().await.expect("wait"),
        ExitStatus::Signal(15)
    ));
    wait_until_empty(pid, "a process survived stop").await;
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "leader reaped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_ignoring_sigterm_are_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ex = ProcessExecutor::new(dir.path(), "test", None);
    // An ignored signal stays ignored across fork and exec: both shell and sleep ignore TERM.
    let mut ctl = ex
        .controller(&task(&[
            "sh",
            "-c",
            "trap '' TERM; sleep 30 & sleep 30; wait",
        ]))
        .expect("controller");
    ctl.prepare().await.expect("prepare");
    let pid = ctl.start().await.expect("start").pid;
    wait_for_members(pid, 3).await;
    let began = Instant::now();
    ctl.stop(Duration::from_millis(500)).await.expect("stop");
    assert!(
        began.elapsed() >= Duration::from_millis(500),
        "waited the grace period"
    );
    assert_eq!(ctl.wait().await.expect("wait"), ExitStatus::Signal(9));
    wait_until_empty(pid, "a process ignoring SIGTERM survived the SIGKILL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_an_exited_leader_are_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ex = ProcessExecutor::new(dir.path(), "test", None);
    let mut ctl = ex
        .controller(&task(&["sh", "-c", "sleep 30 & exit 0"]))
        .expect("controller");
    ctl.prepare().await.expect("prepare");
    let pid = ctl.start().await.expect("start").pid;
    assert_eq!(ctl.wait().await.expect("wait"), ExitStatus::Code(0));
    wait_until_empty(pid, "background sleep survived its task").await;
}
