//! `--listen-metrics` and `--listen-web` through the real binaries: Prometheus metrics scraped
//! from a manager and a worker, and the web view rendered by headless Chromium (skipped, with
//! a message, where Debian's `chromium` is not installed; `scripts/test.sh` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::swarm::*;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// `GET path` over plain HTTP/1.0; the body, or None when nothing answers.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_string())
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

struct Cluster {
    _tmp: tempfile::TempDir,
    ctl: Ctl,
    _nodes: Vec<Node>,
}

/// A manager `m` and a worker `w1` (sim executor), with `extra` manager flags.
fn cluster(manager_extra: &[String], worker_extra: &[String]) -> Cluster {
    let tmp = test_dir();
    let root = tmp.path().to_path_buf();
    let addr = format!("127.0.0.1:{}", free_port());
    let socket = root.join("m.sock");
    let mut args = manager_args(&root.join("m"), "m", &socket, &addr, None);
    args.extend(manager_extra.iter().cloned());
    let m = Node::start("m", &root.join("m"), &args);
    let ctl = Ctl { socket };
    wait_for("manager", Duration::from_secs(30), || {
        ctl.run(&["node", "ls"]).status.success().then_some(())
    });
    let token = token(&ctl, "Worker:");
    let mut wargs: Vec<String> = vec![
        "-d".into(),
        root.join("w1").display().to_string(),
        "--hostname".into(),
        "w1".into(),
        "--join-addr".into(),
        addr,
        "--join-token".into(),
        token,
        "--executor".into(),
        "sim".into(),
    ];
    wargs.extend(worker_extra.iter().cloned());
    let w = Node::start("w1", &root.join("w1"), &wargs);
    wait_for("both nodes READY", Duration::from_secs(30), || {
        (ctl.ok(&["node", "ls"]).matches(" READY ").count() == 2).then_some(())
    });
    Cluster {
        _tmp: tmp,
        ctl,
        _nodes: vec![m, w],
    }
}

#[test]
fn metrics_count_what_the_cluster_holds() {
    let m_addr = format!("127.0.0.1:{}", free_port());
    let w_addr = format!("127.0.0.1:{}", free_port());
    let c = cluster(
        &["--listen-metrics".into(), m_addr.clone()],
        &["--listen-metrics".into(), w_addr.clone()],
    );
    // Waits for convergence: 4 tasks running when it returns.
    c.ctl.ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--image",
        "x",
        "--replicas",
        "4",
    ]);

    let m = wait_for("manager metrics", Duration::from_secs(10), || {
        http_get(&m_addr, "/metrics")
    });
    assert_eq!(
        sample(&m, r#"swarm_tasks{state="running"}"#),
        Some(4.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, r#"swarm_tasks{state="failed"}"#),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, r#"swarm_nodes{state="ready",availability="active"}"#),
        Some(2.0),
        "{m}"
    );
    assert_eq!(sample(&m, "swarm_raft_is_leader"), Some(1.0), "{m}");
    assert!(sample(&m, "swarm_raft_term").unwrap() >= 1.0, "{m}");
    assert!(sample(&m, "swarm_raft_last_applied").unwrap() >= 3.0, "{m}");
    assert_eq!(sample(&m, "swarm_dispatcher_sessions"), Some(2.0), "{m}");
    assert!(
        sample(&m, "swarm_scheduler_tasks_scheduled_total").unwrap() >= 4.0,
        "{m}"
    );
    assert!(sample(&m, "swarm_scheduler_pass_seconds_count").unwrap() >= 1.0);
    assert!(sample(&m, "swarm_raft_proposal_seconds_count").unwrap() >= 2.0);
    assert_eq!(
        sample(
            &m,
            r#"swarm_control_rpc_seconds_count{method="CreateService"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, r#"swarm_node_executor{executor="sim"}"#),
        Some(1.0)
    );
    let on_m = sample(&m, r#"swarm_node_tasks{state="running"}"#).unwrap();
    assert!((1.0..=3.0).contains(&on_m), "spread over both nodes: {m}");

    // A worker has no store or Raft: only its own metrics.
    let w = http_get(&w_addr, "/metrics").expect("worker metrics");
    assert_eq!(
        sample(&w, r#"swarm_node_executor{executor="sim"}"#),
        Some(1.0),
        "{w}"
    );
    assert!(
        sample(&w, "swarm_raft_is_leader").unwrap_or(0.0) == 0.0,
        "{w}"
    );
    assert_eq!(http_get(&w_addr, "/nope"), None, "only /metrics is served");
}

#[test]
fn the_web_view_refuses_a_public_address_unless_told() {
    let tmp = test_dir();
    let out = Command::new(swarmd_bin())
        .args(["-d", &tmp.path().display().to_string()])
        .args(["--listen-web", "0.0.0.0:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--listen-web") && err.contains("--listen-web-public"),
        "{err}"
    );
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|b| {
        let ok = Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| PathBuf::from(b))
    })
}

/// Where test artifacts are kept: `target/test-artifacts/`.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_web_view_shows_nodes_and_their_tasks_in_chromium() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED the_web_view_shows_nodes_and_their_tasks_in_chromium: no chromium installed (scripts/test.sh installs Debian's)");
        return;
    };
    let web = format!("127.0.0.1:{}", free_port());
    let c = cluster(&["--listen-web".into(), web.clone()], &[]);
    c.ctl.ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--image",
        "x",
        "--replicas",
        "3",
    ]);
    c.ctl.ok(&[
        "service", "create", "--name", "agent", "--image", "x", "--mode", "global",
    ]);
    // The snapshot endpoint: 5 live tasks.
    let state = http_get(&web, "/api/state").expect("snapshot");
    let v: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(v["tasks"].as_array().unwrap().len(), 5, "{v}");

    let url = format!("http://{web}/");
    let profile = tempfile::tempdir().unwrap();
    let common = |extra: &[&str]| {
        let out = Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            // No --virtual-time-budget: the page's open event stream would stall virtual time.
            .args(["--window-size=1280,800"])
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // The cards appear once the first snapshot arrives: look again until they are there.
    let dom = wait_for("five running cards", Duration::from_secs(60), || {
        let dom = common(&["--dump-dom"]);
        (dom.matches(r#"data-state="running""#).count() == 5).then_some(dom)
    });
    for node in ["m", "w1"] {
        assert!(dom.contains(&format!(r#"data-node="{node}""#)), "{dom}");
    }
    let running = dom.matches(r#"data-state="running""#).count();
    assert_eq!(running, 5, "five running cards: {dom}");
    for card in ["web.1", "web.2", "web.3"] {
        assert!(dom.contains(&format!(r#"data-task="{card}""#)), "{dom}");
    }
    // Each chromium run loads the page afresh and may shoot before its first snapshot has
    // drawn the cards (an empty page is ~7 KB): shoot again until the cards are in the picture.
    let shot = artifacts().join("web-view.png");
    wait_for(
        "a screenshot over 10 KB (the cards drawn)",
        Duration::from_secs(60),
        || {
            let _ = std::fs::remove_file(&shot);
            common(&[&format!("--screenshot={}", shot.display())]);
            let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
            eprintln!("web view screenshot: {} is {size} bytes", shot.display());
            (size > 10_000).then_some(size)
        },
    );
}
