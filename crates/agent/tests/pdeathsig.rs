//! A task process dies with its agent: `kill -9` of the process that runs the executor must
//! not leave the task behind. The test re-runs its own binary as that process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use swarm_agent::executor::process::ProcessExecutor;
use swarm_agent::executor::Executor;
use swarm_api::{ContainerSpec, Task, TaskSpec};

const CHILD_ENV: &str = "SWARM_AGENT_PDEATHSIG_CHILD";

/// In the child role: starts `sleep 30` through the executor, prints its pid, and waits to be
/// killed. Outside it (a normal test run) it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_role() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let ex = ProcessExecutor::new(std::path::Path::new(&dir), "test", None);
    let task = Task {
        id: "t".into(),
        spec: Some(
            TaskSpec {
                container: Some(ContainerSpec {
                    command: vec!["sleep".into(), "30".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }
            .into(),
        ),
        ..Default::default()
    };
    let mut ctl = ex.controller(&task).expect("controller");
    ctl.prepare().await.expect("prepare");
    let pid = ctl.start().await.expect("start").pid;
    println!("TASKPID {pid}");
    tokio::time::sleep(Duration::from_secs(60)).await;
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn task_dies_when_the_agent_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let pid = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split_once("TASKPID ")
                .and_then(|(_, p)| p.trim().parse::<u32>().ok())
        })
        .expect("child printed the task pid");
    assert!(alive(pid));
    child.kill().expect("kill -9 the agent");
    child.wait().expect("reap");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(Instant::now() < deadline, "task {pid} outlived its agent");
        std::thread::sleep(Duration::from_millis(20));
    }
}
