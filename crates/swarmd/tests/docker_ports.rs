//! Published ports end to end: the built `swarmd` (`--executor docker`) and `swarmctl` on a
//! one-node swarm against the real engine. A container (busybox `httpd` from the locally built
//! image) published in host mode answers on the node's port; `service ls` shows the port; a
//! second service asking for the same port, and any ingress port, are refused with one line;
//! a port left open is allocated from 30000-32767; two host-mode replicas of one port on one
//! node leave one RUNNING and one PENDING with the reason. Skipped with a visible `SKIPPED:`
//! line when no engine answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../agent/tests/support/docker_image.rs"]
mod image;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const RUNNING: i64 = 512;
const PENDING: i64 = 64;

/// The body of `GET /path` on 127.0.0.1:`port`, if anything answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

fn tasks_of(ctl: &Ctl, service: &str) -> Vec<Value> {
    ctl.json(&["task", "ls", "--service", service])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn published_host_ports() {
    if !image::engine_or_skip("published_host_ports") {
        return;
    }
    image::ensure_images();
    let tmp = test_dir();
    let root = tmp.path();
    let (_node, ctl, node_id) = start_docker_node(root, "docker-ports");
    let _cleanup = image::Cleanup(format!("swarmd.node.id={node_id}"));

    // A web server published on a free host port answers there.
    let port = free_port();
    let publish = format!("published={port},target=80,mode=host");
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--image",
        image::IMAGE_1,
        "--publish",
        &publish,
        "--stop-grace-period",
        "1s",
        "--command",
        "busybox",
        "--args",
        "httpd",
        "--args",
        "-f",
        "--args",
        "-p",
        "--args",
        "80",
        "--args",
        "-h",
        "--args",
        "/",
    ]);
    let body = wait_for(
        "the container to answer on the published port",
        WAIT,
        || http_get(port, "/version"),
    );
    assert_eq!(body.trim(), "1");
    let ls = ctl.ok(&["service", "ls"]);
    assert!(ls.contains(&format!("*:{port}->80/tcp")), "{ls}");
    let inspect = ctl.ok(&["service", "inspect", "web"]);
    assert!(inspect.contains(&format!("*:{port}->80/tcp")), "{inspect}");

    // The same port for another service, in ingress mode (the mesh's ports are as unique as
    // host ports) or host mode: refused, one line each.
    let clash = ctl.run(&[
        "service",
        "create",
        "--name",
        "clash",
        "--image",
        image::IMAGE_1,
        "-p",
        &format!("{port}:81"),
    ]);
    assert!(!clash.status.success());
    let err = String::from_utf8_lossy(&clash.stderr);
    assert!(
        err.contains(&format!("port {port}/tcp is already published")),
        "{err}"
    );
    let clash = ctl.run(&[
        "service",
        "create",
        "--name",
        "clash",
        "--image",
        image::IMAGE_1,
        "--publish",
        &format!("published={port},target=81,mode=host"),
    ]);
    assert!(!clash.status.success());
    let err = String::from_utf8_lossy(&clash.stderr);
    assert!(
        err.contains(&format!(
            "port {port}/tcp is already published by service web"
        )),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // A port left open is allocated from the dynamic range (no replica binds it here).
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "dyn",
        "--image",
        image::IMAGE_1,
        "--replicas",
        "0",
        "--publish",
        "target=80,mode=host",
    ]);
    let allocated = wait_for("a port allocated for dyn", WAIT, || {
        let s = ctl.json(&["service", "inspect", "dyn"]);
        s["endpoint"]["ports"][0]["published_port"].as_u64()
    });
    assert!((30000..=32767).contains(&allocated), "{allocated}");

    // Two replicas of one host port on one node: one runs, one waits with the reason.
    let port2 = free_port();
    ctl.ok(&[
        "service",
        "create",
        // One of the two never runs: don't wait for convergence.
        "--detach",
        "--name",
        "pair",
        "--image",
        image::IMAGE_1,
        "--replicas",
        "2",
        "--publish",
        &format!("published={port2},target=80,mode=host"),
        "--stop-grace-period",
        "1s",
        "--command",
        "sleep",
        "--args",
        "3600",
    ]);
    let pending = wait_for("one RUNNING and one PENDING task of pair", WAIT, || {
        let tasks = tasks_of(&ctl, "pair");
        let running = tasks
            .iter()
            .filter(|t| t["status"]["state"].as_i64() == Some(RUNNING))
            .count();
        let pending: Vec<&Value> = tasks
            .iter()
            .filter(|t| t["status"]["state"].as_i64() == Some(PENDING))
            .collect();
        (running == 1 && pending.len() == 1).then(|| pending[0].clone())
    });
    let why = pending["status"]["message"].as_str().unwrap_or("");
    assert!(
        why.contains("host-mode port already in use on 1 node"),
        "{pending}"
    );

    for s in ["web", "dyn", "pair"] {
        ctl.ok(&["service", "rm", s]);
    }
    wait_for("no container left", WAIT, || {
        image::containers_with(&format!("swarmd.node.id={node_id}"))
            .is_empty()
            .then_some(())
    });
}
