//! Bad input through the real binaries: each mistake ends in one line naming what was wrong,
//! a non-zero exit, and no change to the cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs swarmd to completion (it must exit by itself) and returns (success, last stderr line).
fn swarmd_exits(args: &[String], within: Duration) -> (bool, String) {
    let mut child = Command::new(swarmd_bin())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + within;
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("swarmd {args:?} did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let last = stderr.lines().last().unwrap_or("").to_string();
    (out.status.success(), last)
}

fn one_line_error(out: &std::process::Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got success: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.starts_with("Error: "), "{err}");
    err
}

struct Cluster {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    addr: String,
    manager: Node,
    ctl: Ctl,
}

fn one_manager() -> Cluster {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let addr = format!("127.0.0.1:{}", free_port());
    let socket = root.join("m.sock");
    let args: Vec<String> = vec![
        "-d".into(),
        root.join("node-1").display().to_string(),
        "--listen-control-api".into(),
        socket.display().to_string(),
        "--hostname".into(),
        "node-1".into(),
        // The process executor, whether or not a Docker engine answers on this machine.
        "--executor".into(),
        "process".into(),
        "--listen-remote-api".into(),
        addr.clone(),
    ];
    let manager = Node::start("node-1", &root.join("node-1"), &args);
    let ctl = Ctl { socket };
    wait_for("manager", Duration::from_secs(30), || {
        ctl.run(&["cluster", "inspect", "default"])
            .status
            .success()
            .then_some(())
    });
    Cluster {
        _tmp: tmp,
        root,
        addr,
        manager,
        ctl,
    }
}

fn worker_args(c: &Cluster, name: &str, token: &str) -> Vec<String> {
    vec![
        "-d".into(),
        c.root.join(name).display().to_string(),
        "--hostname".into(),
        name.into(),
        "--join-addr".into(),
        c.addr.clone(),
        "--join-token".into(),
        token.into(),
        // Last, so the tests above can edit the join flags by position.
        "--executor".into(),
        "process".into(),
    ]
}

fn token(c: &Cluster, which: &str) -> String {
    let out = c.ctl.ok(&["cluster", "inspect", "default"]);
    let line = out.lines().find(|l| l.contains(which)).unwrap();
    line.split_whitespace()
        .find(|w| w.starts_with("SWMTKN-1-"))
        .unwrap()
        .to_string()
}

#[test]
fn joins_with_bad_tokens_or_addresses_fail_with_one_line() {
    let c = one_manager();
    let good = token(&c, "Worker:");

    // Right format, wrong secret.
    let mut parts: Vec<String> = good.split('-').map(String::from).collect();
    let secret = parts[3].clone();
    parts[3] = secret.chars().rev().collect();
    let wrong = parts.join("-");
    let (ok, last) = swarmd_exits(&worker_args(&c, "w1", &wrong), Duration::from_secs(30));
    assert!(!ok);
    assert!(
        last.starts_with("Error: ") && last.contains("token"),
        "{last}"
    );

    // Malformed.
    let (ok, last) = swarmd_exits(
        &worker_args(&c, "w2", "SWMTKN-2-abc"),
        Duration::from_secs(30),
    );
    assert!(!ok);
    assert!(
        last.starts_with("Error: ") && last.contains("join token"),
        "{last}"
    );

    // Token of another cluster: the root CA digest does not match.
    let other = format!("SWMTKN-1-{}-{}", "1".repeat(50), secret);
    let (ok, last) = swarmd_exits(&worker_args(&c, "w3", &other), Duration::from_secs(30));
    assert!(!ok);
    assert!(last.contains("digest"), "{last}");

    // Nobody listening.
    let mut args = worker_args(&c, "w4", &good);
    args[5] = format!("127.0.0.1:{}", free_port());
    let (ok, last) = swarmd_exits(&args, Duration::from_secs(30));
    assert!(!ok);
    assert!(
        last.starts_with("Error: ") && last.contains("reach"),
        "{last}"
    );

    // None of them joined.
    let nodes = c.ctl.json(&["node", "ls"]);
    assert_eq!(nodes.as_array().unwrap().len(), 1, "{nodes}");
    // None of them left credentials behind either.
    for w in ["w1", "w2", "w3", "w4"] {
        assert!(
            !c.root.join(w).join("certificates/swarm-node.crt").exists(),
            "{w} kept a certificate"
        );
    }
}

#[test]
fn a_state_dir_in_use_is_refused() {
    let c = one_manager();
    let args: Vec<String> = vec![
        "-d".into(),
        c.root.join("node-1").display().to_string(),
        "--listen-control-api".into(),
        c.root.join("other.sock").display().to_string(),
        "--listen-remote-api".into(),
        format!("127.0.0.1:{}", free_port()),
    ];
    let (ok, last) = swarmd_exits(&args, Duration::from_secs(20));
    assert!(!ok);
    assert!(last.contains("in use by another swarmd"), "{last}");
    // The first one is unharmed.
    c.ctl.ok(&["node", "ls"]);
    drop(c.manager);
}

#[test]
fn bad_cli_input_changes_nothing() {
    let c = one_manager();
    let ctl = &c.ctl;
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--image",
        "nginx",
        "--replicas",
        "2",
    ]);
    let before = ctl.json(&["service", "inspect", "web"]);

    let err = one_line_error(&ctl.run(&["service", "inspect", "nope"]));
    assert!(err.contains("not found"), "{err}");
    let err = one_line_error(&ctl.run(&["service", "update", "web", "--replicas", "x"]));
    assert!(err.contains("replicas"), "{err}");
    let err = one_line_error(&ctl.run(&["service", "update", "web", "--update-delay", "-1s"]));
    assert!(err.contains("update-delay"), "{err}");
    let err = one_line_error(&ctl.run(&[
        "service",
        "update",
        "web",
        "--constraint",
        "node.labels.foo~bar",
    ]));
    assert!(err.contains("constraint"), "{err}");
    let err = one_line_error(&ctl.run(&["service", "create", "--name", "web", "--image", "x"]));
    assert!(
        err.contains("already in use") || err.contains("exists"),
        "{err}"
    );
    let err =
        one_line_error(&ctl.run(&["service", "create", "--name", "bad name", "--image", "x"]));
    assert!(err.contains("name"), "{err}");
    let err = one_line_error(&ctl.run(&["node", "drain", "no-such-node"]));
    assert!(err.contains("not found"), "{err}");
    let err = one_line_error(&ctl.run(&["node", "rm", "node-1"]));
    assert!(err.contains("manager") || err.contains("down"), "{err}");

    let after = ctl.json(&["service", "inspect", "web"]);
    assert_eq!(before["spec"], after["spec"], "the service did not change");
    assert_eq!(before["meta"]["version"], after["meta"]["version"]);
    let services = ctl.json(&["service", "ls"]);
    assert_eq!(services.as_array().unwrap().len(), 1);

    // A missing socket is one line too.
    let ghost = Ctl {
        socket: c.root.join("missing.sock"),
    };
    let err = one_line_error(&ghost.run(&["node", "ls"]));
    assert!(err.contains("missing.sock"), "{err}");
}
