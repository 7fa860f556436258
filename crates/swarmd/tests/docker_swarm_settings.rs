//! The swarm's own settings through the Docker API, with the real `docker` CLI: `swarm
//! join-token [-q] [--rotate] worker|manager` (the tokens swarmctl shows), `swarm update
//! --task-history-limit|--cert-expiry|--autolock` (seen in `docker info` and swarmctl),
//! `swarm unlock-key [-q] [--rotate]`, `swarm ca [--rotate]` (a new root, waited for), a setting this swarm cannot change refused naming its
//! field, and in raw HTTP a stale version (409), `swarm/unlock` on a running manager and
//! `swarm/leave` (pointing to swarmd). Skipped, with a message, where no `docker` CLI is
//! installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::docker::*;
use serde_json::{json, Value};
use std::time::Duration;

fn tokens(s: &Swarm) -> (String, String) {
    let c = s.ctl.json(&["cluster", "inspect", "default"]);
    let t = &c["root_ca"]["join_tokens"];
    let get = |k: &str| t[k].as_str().unwrap_or_else(|| panic!("{c}")).to_string();
    (get("worker"), get("manager"))
}

fn docker_fails(s: &Swarm, args: &[&str]) -> String {
    let out = s.docker(args);
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "docker {args:?} succeeded");
    text
}

#[test]
fn swarm_settings_through_the_docker_cli() {
    if !docker_installed() {
        return;
    }
    let s = Swarm::start();

    // join-token: the tokens swarmctl shows; the full form prints a join command.
    let (worker, manager) = tokens(&s);
    assert!(worker.starts_with("SWMTKN-1-"), "{worker}");
    let q = s.docker_ok(&["swarm", "join-token", "-q", "worker"]);
    assert_eq!(q.trim(), worker);
    let q = s.docker_ok(&["swarm", "join-token", "-q", "manager"]);
    assert_eq!(q.trim(), manager);
    let full = s.docker_ok(&["swarm", "join-token", "worker"]);
    assert!(
        full.contains(&format!("docker swarm join --token {worker}")),
        "{full}"
    );

    // --rotate replaces the worker's token only.
    let rotated = s.docker_ok(&["swarm", "join-token", "--rotate", "-q", "worker"]);
    let (worker2, manager2) = tokens(&s);
    assert_ne!(worker2, worker);
    assert_eq!(rotated.trim(), worker2);
    assert_eq!(manager2, manager);

    // Settings this swarm honours show in `docker info` (and in swarmctl).
    s.docker_ok(&["swarm", "update", "--task-history-limit", "3"]);
    let limit = s.docker_ok(&[
        "info",
        "--format",
        "{{.Swarm.Cluster.Spec.Orchestration.TaskHistoryRetentionLimit}}",
    ]);
    assert_eq!(limit.trim(), "3");
    let c = s.ctl.json(&["cluster", "inspect", "default"]);
    assert_eq!(
        c["spec"]["orchestration"]["task_history_retention_limit"],
        3
    );
    s.docker_ok(&["swarm", "update", "--cert-expiry", "48h"]);
    let expiry = s.docker_ok(&[
        "info",
        "--format",
        "{{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}",
    ]);
    assert_eq!(expiry.trim(), "48h0m0s");
    // The first update left the limit as it was set.
    let limit = s.docker_ok(&[
        "info",
        "--format",
        "{{.Swarm.Cluster.Spec.Orchestration.TaskHistoryRetentionLimit}}",
    ]);
    assert_eq!(limit.trim(), "3");

    // One it cannot: refused naming the field, nothing changed.
    let err = docker_fails(&s, &["swarm", "update", "--dispatcher-heartbeat", "7s"]);
    assert!(err.contains("Dispatcher.HeartbeatPeriod"), "{err}");

    // Autolock: the CLI prints the new key; unlock-key shows it; --rotate replaces it.
    let none = docker_fails(&s, &["swarm", "unlock-key", "-q"]);
    assert!(none.contains("no unlock key"), "{none}");
    let out = s.docker_ok(&["swarm", "update", "--autolock=true"]);
    assert!(out.contains("SWMKEY-1-"), "{out}");
    let key = s
        .docker_ok(&["swarm", "unlock-key", "-q"])
        .trim()
        .to_string();
    assert!(key.starts_with("SWMKEY-1-"), "{key}");
    assert!(out.contains(&key), "{out}");
    assert_eq!(s.ctl.ok(&["cluster", "unlock-key", "-q"]).trim(), key);
    let new = s.docker_ok(&["swarm", "unlock-key", "--rotate", "-q"]);
    assert!(
        new.trim().starts_with("SWMKEY-1-") && new.trim() != key,
        "{new}"
    );

    // `swarm ca --rotate`: a new root, which the CLI waits for every node to trust.
    let before = s.docker_ok(&["swarm", "ca"]);
    assert!(
        before.starts_with("-----BEGIN CERTIFICATE-----"),
        "{before}"
    );
    let out = s.docker_within(Duration::from_secs(120), &["swarm", "ca", "--rotate"]);
    assert!(
        out.status.success(),
        "swarm ca --rotate: {}{}\n--- swarmd log ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.node.log()
    );
    let after = s.docker_ok(&["swarm", "ca"]);
    assert!(after.starts_with("-----BEGIN CERTIFICATE-----") && after != before);
    let rotating = s.docker_ok(&[
        "info",
        "--format",
        "{{.Swarm.Cluster.RootRotationInProgress}}",
    ]);
    assert_eq!(rotating.trim(), "false");
    let root = s.ctl.json(&["cluster", "inspect", "default"]);
    let pem = root["root_ca"]["ca_cert"].as_array().map(|b| {
        b.iter()
            .map(|x| x.as_u64().unwrap() as u8)
            .collect::<Vec<u8>>()
    });
    assert_eq!(
        pem.map(|p| String::from_utf8(p).unwrap()),
        Some(after.clone())
    );

    // Raw HTTP: a stale version, unlock on a running manager, leave. (The rotation gave
    // the join tokens the new root's digest.)
    let tokens_before = tokens(&s);
    let (code, body) = api(
        &s.docker_sock,
        "POST",
        "/v1.41/swarm/update?version=1&rotateWorkerToken=true",
        &json!({}),
    );
    assert_eq!(code, 409, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("update out of sequence"));
    assert_eq!(
        tokens(&s),
        tokens_before,
        "a refused update rotates nothing"
    );
    let (code, body) = api(
        &s.docker_sock,
        "POST",
        "/v1.41/swarm/unlock",
        &json!({"UnlockKey": key}),
    );
    assert_eq!(code, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("not locked"),
        "{body}"
    );
    let (code, body) = api(
        &s.docker_sock,
        "POST",
        "/v1.41/swarm/leave?force=1",
        &Value::Null,
    );
    assert_eq!(code, 503, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("swarmd"),
        "{body}"
    );
}
