//! `swarmctl service logs` with the Docker executor: the built binaries on a one-node swarm
//! with `--executor docker` and the locally built busybox image; the container's output comes
//! from the engine's logs (all, `--tail 1`, and `-f`). Skipped with a visible `SKIPPED:` line
//! when no engine answers. The node's containers are removed at the end, also on failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../agent/tests/support/docker_image.rs"]
mod image;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// `swarmctl service logs …`, which must end by itself within 30 s; its stdout.
fn logs(ctl: &Ctl, args: &[&str]) -> String {
    let mut child = Command::new(swarmctl_bin())
        .arg("-s")
        .arg(&ctl.socket)
        .args(["service", "logs"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("service logs {args:?} did not end");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn running(ctl: &Ctl, service: &str) -> bool {
    ctl.json(&["task", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["service_name"] == service && t["status"]["state"] == 512)
}

#[test]
fn docker_service_logs() {
    if !image::engine_or_skip("docker_service_logs") {
        return;
    }
    image::ensure_images();
    let tmp = test_dir();
    let root = tmp.path();
    let socket = root.join("ctl.sock");
    let dir = root.join("n");
    let s = |v: &str| v.to_string();
    let _node = Node::start(
        "docker-logs",
        &dir,
        &[
            s("-d"),
            dir.display().to_string(),
            s("--listen-control-api"),
            socket.display().to_string(),
            s("--listen-remote-api"),
            format!("127.0.0.1:{}", free_port()),
            s("--hostname"),
            s("docker-logs"),
            s("--executor"),
            s("docker"),
            s("--tick-ms"),
            s("100"),
        ],
    );
    let ctl = Ctl { socket };
    let node_id = wait_for("the node", WAIT, || {
        let out = ctl.run(&["node", "ls", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v.as_array()?.first()?["id"].as_str().map(String::from)
    });
    let _cleanup = image::Cleanup(format!("swarmd.node.id={node_id}"));

    ctl.ok(&[
        "service",
        "create",
        "--name",
        "echo",
        "--image",
        image::IMAGE_1,
        "--command",
        "sh",
        "--args",
        "-c",
        "--args",
        "for i in 1 2 3; do echo line-$i; done; sleep 3600",
        "--stop-grace-period",
        "1s",
    ]);
    wait_for("the container running", WAIT, || {
        running(&ctl, "echo").then_some(())
    });
    let want: Vec<String> = (1..=3)
        .map(|i| format!("echo.1@docker-logs | line-{i}"))
        .collect();
    wait_for(
        "the container's three lines",
        Duration::from_secs(20),
        || {
            let out = logs(&ctl, &["echo"]);
            (out.lines().collect::<Vec<_>>() == want).then_some(())
        },
    );
    assert_eq!(
        logs(&ctl, &["echo", "--tail", "1"]),
        "echo.1@docker-logs | line-3\n"
    );

    // -f: a line the container writes after the call started.
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "ticker",
        "--image",
        image::IMAGE_1,
        "--command",
        "sh",
        "--args",
        "-c",
        "--args",
        "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done",
        "--stop-grace-period",
        "1s",
    ]);
    wait_for("the ticker running", WAIT, || {
        running(&ctl, "ticker").then_some(())
    });
    let tick = |l: &str| -> Option<u64> { l.rsplit("| tick-").next()?.parse().ok() };
    let before = wait_for("a first tick", Duration::from_secs(20), || {
        logs(&ctl, &["ticker"]).lines().filter_map(tick).max()
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
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if tick(&line).is_some_and(|n| n >= before + 10) => {
                assert!(line.starts_with("ticker.1@docker-logs | "), "{line}");
                break;
            }
            Ok(_) => {}
            Err(_) => {
                let _ = follower.kill();
                panic!("no new tick from the container within 20 s (after tick-{before})");
            }
        }
    }
    follower.kill().unwrap();
    follower.wait().unwrap();
}
