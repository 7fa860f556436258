//! `swarmd inspect-state` with the built binaries: a real manager creates services, is stopped,
//! and its state dir is inspected (text, `--log`, JSON), with secrets redacted and the dir left
//! untouched; inspecting a running manager's dir, and missing, empty, garbage or truncated
//! dirs, end in one line on stderr and a non-zero exit, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn inspect(dir: &Path, extra: &[&str]) -> Output {
    Command::new(swarmd_bin())
        .arg("inspect-state")
        .arg("-d")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "inspect-state failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn one_line_error(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.starts_with("Error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Every file under `dir` with its content, to prove inspection changed nothing.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_none_or(|x| x != "sock") {
                out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

/// The lines of the section whose heading starts with `heading`, up to the next blank line.
fn section(text: &str, heading: &str) -> String {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(heading));
    assert!(lines.next().is_some(), "no {heading} section:\n{text}");
    lines
        .take_while(|l| !l.trim().is_empty())
        .collect::<Vec<&str>>()
        .join("\n")
}

/// The row of a text table whose cells include `cell`.
fn row_with<'a>(text: &'a str, cell: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().any(|w| w == cell))
        .unwrap_or_else(|| panic!("no row with {cell:?} in:\n{text}"))
}

#[test]
fn inspect_state_of_a_stopped_manager() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let socket = tmp.path().join("m.sock");
    let addr = format!("127.0.0.1:{}", free_port());
    let args: Vec<String> = vec![
        "-d".into(),
        dir.display().to_string(),
        "--listen-control-api".into(),
        socket.display().to_string(),
        "--listen-remote-api".into(),
        addr.clone(),
        "--hostname".into(),
        "m".into(),
        // The process executor, whether or not a Docker engine answers on this machine.
        "--executor".into(),
        "process".into(),
    ];
    let mut node = Node::start("m", &dir, &args);
    let ctl = Ctl { socket };
    wait_for(
        "the manager's control socket",
        Duration::from_secs(30),
        || ctl.run(&["node", "ls"]).status.success().then_some(()),
    );
    let cluster = ctl.ok(&["cluster", "inspect", "default"]);
    let secrets: Vec<String> = cluster
        .split_whitespace()
        .filter(|w| w.starts_with("SWMTKN-1-"))
        .map(|t| t.rsplit('-').next().unwrap().to_string())
        .collect();
    assert_eq!(secrets.len(), 2, "{cluster}");
    let web = ctl
        .ok(&[
            "service",
            "create",
            "--name",
            "web",
            "--image",
            "nginx",
            "--replicas",
            "2",
        ])
        .trim()
        .to_string();
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "redis",
        "--image",
        "redis:3.0.5",
    ]);
    wait_for("three tasks", Duration::from_secs(30), || {
        let ls = ctl.ok(&["task", "ls"]);
        (ls.lines().filter(|l| l.contains("RUNNING")).count() >= 3).then_some(())
    });

    // While the manager runs, its dir is refused in one line.
    let err = one_line_error(&inspect(&dir, &[]));
    assert!(err.contains("in use by a running swarmd"), "{err}");

    node.terminate();
    let before = files(&dir);

    let text = stdout_ok(&inspect(&dir, &[]));
    // Header: term, vote, the one voter at its advertised address, indexes.
    let voter = text
        .lines()
        .find(|l| l.trim_start().starts_with("voter"))
        .unwrap_or_else(|| panic!("no voter line:\n{text}"));
    assert!(voter.contains(&addr), "{voter}");
    assert!(voter.contains("node m"), "{voter}");
    for key in [
        "Term",
        "Voted for",
        "First index",
        "Last index",
        "Committed",
        "Snapshot",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(key)),
            "{key} missing:\n{text}"
        );
    }
    let last_index: u64 = text
        .lines()
        .find(|l| l.trim_start().starts_with("Last index"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no last index:\n{text}"));
    assert!(last_index >= 5, "{text}");

    // Objects.
    let nodes = section(&text, "Nodes");
    let node_row = row_with(&nodes, "m");
    assert!(
        node_row.contains("MANAGER") && node_row.contains("ACTIVE"),
        "{node_row}"
    );
    let services = section(&text, "Services");
    let web_row = row_with(&services, &web);
    assert!(
        web_row.contains("web") && web_row.contains("nginx") && web_row.contains("replicated 2"),
        "{web_row}"
    );
    let redis_row = row_with(&services, "redis:3.0.5");
    assert!(redis_row.contains("replicated 1"), "{redis_row}");
    let web_tasks = section(&text, "Tasks")
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("web"))
        .count();
    assert_eq!(web_tasks, 2, "{text}");

    // Secrets: tokens masked, never the secret part.
    let clusters = section(&text, "Cluster");
    let cluster_row = row_with(&clusters, "default");
    assert!(cluster_row.contains("SWMTKN-1-"), "{cluster_row}");
    assert!(cluster_row.contains("-****"), "{cluster_row}");
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "token secret printed:\n{text}");
    }
    assert!(!text.contains("PRIVATE KEY"), "{text}");

    // The log: one line per entry, summarised.
    let log = stdout_ok(&inspect(&dir, &["--log"]));
    assert!(log.contains("create service web"), "{log}");
    assert!(log.contains("create service redis"), "{log}");
    let entries = section(&log, "Log after the snapshot");
    assert!(entries.lines().any(|l| l.contains("membership")), "{log}");
    assert!(entries.lines().any(|l| l.contains("blank")), "{log}");
    // Header plus one line per entry up to the last index (no snapshot yet: from index 0).
    assert_eq!(entries.lines().count() as u64, last_index + 2, "{log}");

    // JSON: parses, with the same facts and the same redaction.
    let out = inspect(&dir, &["--format", "json"]);
    let raw = stdout_ok(&out);
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(json["last_log_index"].as_u64(), Some(last_index));
    assert_eq!(
        json["membership"]["voters"][0]["addr"].as_str(),
        Some(addr.as_str())
    );
    let mut names: Vec<&str> = json["current"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["spec"]["annotations"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["redis", "web"]);
    let root_ca = &json["current"]["clusters"][0]["root_ca"];
    assert_eq!(root_ca["ca_key"].as_array().map(|a| a.len()), Some(0));
    assert!(root_ca["join_tokens"]["worker"]
        .as_str()
        .unwrap()
        .ends_with("-****"));
    for s in &secrets {
        assert!(!raw.contains(s.as_str()), "token secret in JSON");
    }
    assert!(!raw.contains("PRIVATE KEY"));
    assert!(json["entries"].as_array().unwrap().len() >= 5);

    assert!(files(&dir) == before, "inspect-state changed the state dir");

    // A truncated log: an error line or a report, never a panic.
    let log_path = dir.join("raft/log.redb");
    let bytes = std::fs::read(&log_path).unwrap();
    for len in [0, 100, 4096, bytes.len() / 2] {
        std::fs::write(&log_path, &bytes[..len]).unwrap();
        let out = inspect(&dir, &[]);
        if !out.status.success() {
            one_line_error(&out);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "len {len}: {stderr}");
    }
}

#[test]
fn inspect_state_refuses_what_is_not_raft_state() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let err = one_line_error(&inspect(&missing, &[]));
    assert!(err.contains("does not exist"), "{err}");

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = one_line_error(&inspect(&empty, &[]));
    assert!(err.contains("no raft state"), "{err}");
    assert!(
        std::fs::read_dir(&empty).unwrap().next().is_none(),
        "inspect-state created files"
    );

    let garbage = tmp.path().join("garbage");
    std::fs::create_dir_all(garbage.join("raft/snapshots")).unwrap();
    std::fs::write(garbage.join("raft/log.redb"), b"").unwrap();
    one_line_error(&inspect(&garbage, &[]));
    let noise: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(garbage.join("raft/log.redb"), &noise).unwrap();
    std::fs::write(
        garbage.join("raft/snapshots/snapshot-00000000000000000009.snap"),
        &noise,
    )
    .unwrap();
    one_line_error(&inspect(&garbage, &["--format", "json"]));
}
