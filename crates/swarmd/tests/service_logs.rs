//! `swarmctl service logs` end to end with the built binaries: one manager and one worker,
//! both running tasks with the process executor, so the lines of one service come from two
//! nodes through the leader's log broker. Checks every line with its task-name prefix,
//! `--tail 1`, and `-f` showing a line written after the call started.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs swarmctl, killing it if it has not ended after `timeout` (a logs call that never
/// ends is a failure, not a hung test). Returns (success, stdout, stderr).
fn ctl_timed(ctl: &Ctl, args: &[&str], timeout: Duration) -> (bool, String, String) {
    let mut child = Command::new(swarmctl_bin())
        .arg("-s")
        .arg(&ctl.socket)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "swarmctl {args:?} did not end within {timeout:?}; printed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Task name → node name, for the service's running tasks.
fn placement(ctl: &Ctl, service: &str) -> Vec<(String, String)> {
    let nodes = ctl.json(&["node", "ls"]);
    let name_of = |id: &str| -> String {
        nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .map(|n| {
                n["spec"]["annotations"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .unwrap_or_default()
    };
    ctl.json(&["task", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["service_name"] == service && t["status"]["state"] == 512)
        .map(|t| {
            (
                format!("{service}.{}", t["slot"]),
                name_of(t["node_id"].as_str().unwrap()),
            )
        })
        .collect()
}

#[test]
fn service_logs_through_the_broker() {
    let tmp = test_dir();
    let root = tmp.path();
    let addr = format!("127.0.0.1:{}", free_port());
    let socket = root.join("m/swarm.sock");
    let d = |n: &str| root.join(n);
    let s = |v: &str| v.to_string();
    let _manager = Node::start(
        "node-1",
        &d("node-1"),
        &[
            s("-d"),
            d("node-1").display().to_string(),
            s("--listen-control-api"),
            socket.display().to_string(),
            s("--hostname"),
            s("node-1"),
            s("--executor"),
            s("process"),
            s("--listen-remote-api"),
            addr.clone(),
        ],
    );
    let ctl = Ctl { socket };
    wait_for("the control socket", Duration::from_secs(30), || {
        ctl.run(&["node", "ls"]).status.success().then_some(())
    });
    let token = common::swarm::token(&ctl, "Worker");
    let _worker = Node::start(
        "node-2",
        &d("node-2"),
        &[
            s("-d"),
            d("node-2").display().to_string(),
            s("--hostname"),
            s("node-2"),
            s("--executor"),
            s("process"),
            s("--join-addr"),
            addr.clone(),
            s("--join-token"),
            token,
        ],
    );
    wait_for("two READY nodes", Duration::from_secs(30), || {
        let out = ctl.ok(&["node", "ls"]);
        (out.matches("READY").count() == 2).then_some(())
    });

    // Two tasks, spread one per node, each printing three lines then idling.
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "lines",
        "--image",
        "busybox",
        "--replicas",
        "2",
        "--command",
        "sh",
        "--args",
        "-c",
        "--args",
        "for i in 1 2 3; do echo line-$i; done; echo oops >&2; sleep 3600",
    ]);
    let tasks = wait_for("both tasks RUNNING", Duration::from_secs(30), || {
        let p = placement(&ctl, "lines");
        (p.len() == 2).then_some(p)
    });
    let mut on: Vec<&str> = tasks.iter().map(|(_, n)| n.as_str()).collect();
    on.sort();
    assert_eq!(on, ["node-1", "node-2"], "one task per node: {tasks:?}");

    // Every line of both tasks, each named by its task and node.
    let expected: Vec<String> = tasks
        .iter()
        .flat_map(|(task, node)| (1..=3).map(move |i| format!("{task}@{node} | line-{i}")))
        .collect();
    let (out, err) = wait_for("every line of both tasks", Duration::from_secs(20), || {
        let (ok, out, err) =
            ctl_timed(&ctl, &["service", "logs", "lines"], Duration::from_secs(20));
        assert!(ok, "service logs failed: {err}");
        expected
            .iter()
            .all(|l| out.lines().any(|o| o == l))
            .then_some((out, err))
    });
    assert_eq!(out.lines().count(), 6, "only the tasks' lines: {out}");
    // The tasks' stderr goes to stderr, named too.
    for (task, node) in &tasks {
        assert!(
            err.contains(&format!("{task}@{node} | oops")),
            "stderr: {err}"
        );
    }

    // --tail 1: the last line of each task's stdout (and of its stderr), nothing else.
    let (ok, out, err) = ctl_timed(
        &ctl,
        &["service", "logs", "lines", "--tail", "1"],
        Duration::from_secs(20),
    );
    assert!(ok, "{err}");
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    let mut want: Vec<String> = tasks
        .iter()
        .map(|(task, node)| format!("{task}@{node} | line-3"))
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        err.lines().filter(|l| l.contains("| oops")).count(),
        2,
        "{err}"
    );

    // Through a follower: a second manager forwards the call to the leader, which holds the
    // broker, and passes the stream back.
    let socket3 = root.join("m3/swarm.sock");
    let _manager3 = Node::start(
        "node-3",
        &d("node-3"),
        &[
            s("-d"),
            d("node-3").display().to_string(),
            s("--listen-control-api"),
            socket3.display().to_string(),
            s("--hostname"),
            s("node-3"),
            s("--executor"),
            s("process"),
            s("--listen-remote-api"),
            format!("127.0.0.1:{}", free_port()),
            s("--join-addr"),
            addr.clone(),
            s("--join-token"),
            common::swarm::token(&ctl, "Manager"),
        ],
    );
    let follower_ctl = Ctl { socket: socket3 };
    let out = wait_for("logs through the follower", Duration::from_secs(30), || {
        let out = follower_ctl.run(&["service", "logs", "lines", "--tail", "1"]);
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    });
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    assert_eq!(got, want);

    // An unknown service is an error, not an empty stream.
    let (ok, _, err) = ctl_timed(&ctl, &["service", "logs", "nope"], Duration::from_secs(20));
    assert!(!ok && err.starts_with("Error:"), "{err}");

    // -f: lines written after the call started arrive while it runs.
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "ticker",
        "--image",
        "busybox",
        "--command",
        "sh",
        "--args",
        "-c",
        "--args",
        "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done",
    ]);
    wait_for("the ticker RUNNING", Duration::from_secs(30), || {
        (placement(&ctl, "ticker").len() == 1).then_some(())
    });
    let tick = |l: &str| -> Option<u64> { l.rsplit("| tick-").next()?.parse().ok() };
    let before = wait_for("a first tick", Duration::from_secs(20), || {
        let (_, out, _) = ctl_timed(
            &ctl,
            &["service", "logs", "ticker"],
            Duration::from_secs(20),
        );
        out.lines().filter_map(tick).max()
    });
    let mut follower = Command::new(swarmctl_bin())
        .arg("-s")
        .arg(&ctl.socket)
        .args(["service", "logs", "ticker", "-f", "--tail", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let later = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                assert!(line.starts_with("ticker.1@"), "{line}");
                // Well past the last tick printed before, so certainly written after the
                // call started.
                if tick(&line).is_some_and(|n| n >= before + 10) {
                    break line;
                }
                seen.push(line);
            }
            Err(_) => {
                let _ = follower.kill();
                panic!("no new tick within 20 s (after tick-{before}); saw {seen:?}");
            }
        }
    };
    // Still streaming: it did not end after the backlog.
    assert!(follower.try_wait().unwrap().is_none(), "{later}");
    follower.kill().unwrap();
    follower.wait().unwrap();
}
