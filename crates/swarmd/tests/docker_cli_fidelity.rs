//! More of the real `docker` CLI than `docker_cli.rs` drives, where a Swarm user meets it in
//! the first minute: jobs without `-d` (the CLI follows their progress), their states and
//! counts across runs, published ports in `service ps` and `inspect --pretty`, and what
//! `docker info`, `docker version` and `node inspect --pretty` print. Checked through
//! `swarmctl` where the CLI's words are not enough. Skipped, with a message, where no
//! `docker` CLI is installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::docker::*;
use common::*;
use std::time::Duration;

const COMPLETE: i64 = 576;

/// Runs `docker ARGS` within a minute and requires success; returns stdout and stderr.
fn docker_done(s: &Swarm, args: &[&str]) -> String {
    let out = s.docker_within(Duration::from_secs(60), args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "docker {args:?}: {text}\n{}",
        s.node.log()
    );
    text
}

/// Creates a job and follows it to the end, as `docker service create` without `-d` does.
fn run_job(s: &Swarm, mode: &str, name: &str) -> String {
    docker_done(
        s,
        &[
            "service", "create", "--mode", mode, "--name", name, "busybox", "true",
        ],
    )
}

fn job_tasks(s: &Swarm, name: &str) -> Vec<serde_json::Value> {
    s.ctl
        .json(&["task", "ls", "-a", "--service", name])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn jobs_run_to_completion_under_the_cli() {
    if !docker_installed() {
        return;
    }
    let s = Swarm::start();
    // Without -d the CLI follows the job until it completes (it read JobStatus and each
    // task's JobIteration and slot; without them it crashed or never returned).
    let text = run_job(&s, "replicated-job", "once");
    assert!(text.contains("job complete"), "{text}");

    // Done: desired COMPLETE, as Docker shows it (the orchestrator's next pass sets it).
    wait_for("desired state Complete", Duration::from_secs(10), || {
        let ps = s.docker_ok(&[
            "service",
            "ps",
            "--format",
            "{{.DesiredState}} {{.CurrentState}}",
            "once",
        ]);
        ps.trim().starts_with("Complete Complete").then_some(())
    });

    // A second run: the counts are of this run only.
    docker_done(&s, &["service", "update", "--force", "once"]);
    let ls = wait_for(
        "the second run to complete",
        Duration::from_secs(30),
        || {
            let ls = s.docker_ok(&["service", "ls", "--format", "{{.Name}} {{.Replicas}}"]);
            ls.contains("(1/1 completed)").then_some(ls)
        },
    );
    assert!(ls.contains("once 0/0 (1/1 completed)"), "{ls}");
    let tasks = job_tasks(&s, "once");
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert!(
        tasks.iter().all(|t| t["desired_state"] == COMPLETE),
        "{tasks:?}"
    );

    // Draining the node does not run completed work again.
    s.docker_ok(&["node", "update", "--availability", "drain", "m1"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        job_tasks(&s, "once").len(),
        2,
        "completed tasks were re-run"
    );

    // A global job too.
    s.docker_ok(&["node", "update", "--availability", "active", "m1"]);
    run_job(&s, "global-job", "each");
    wait_for("each 0/0 (1/1 completed)", Duration::from_secs(10), || {
        let ls = s.docker_ok(&[
            "service",
            "ls",
            "--format",
            "{{.Name}} {{.Replicas}}",
            "--filter",
            "name=each",
        ]);
        ls.contains("each 0/0 (1/1 completed)").then_some(())
    });
}

#[test]
fn published_ports_and_system_facts_show_in_the_cli() {
    if !docker_installed() {
        return;
    }
    let s = Swarm::start();
    let port = free_port();
    let publish = format!("published={port},target=80,mode=host");
    s.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--publish",
        &publish,
        "busybox",
        "sleep",
        "1000",
    ]);
    let want = format!("*:{port}->80/tcp");
    wait_for(
        "the running task's port in service ps",
        Duration::from_secs(30),
        || {
            let ps = s.docker_ok(&[
                "service",
                "ps",
                "--format",
                "{{.CurrentState}} {{.Ports}}",
                "web",
            ]);
            (ps.starts_with("Running") && ps.contains(&want)).then_some(())
        },
    );
    let pretty = s.docker_ok(&["service", "inspect", "--pretty", "web"]);
    assert!(
        pretty.contains(&format!("PublishedPort = {port}")),
        "{pretty}"
    );
    assert!(pretty.contains("PublishMode = host"), "{pretty}");

    let info = s.docker_ok(&["info"]);
    let memory = info
        .lines()
        .find(|l| l.trim_start().starts_with("Total Memory:"))
        .unwrap_or("");
    assert!(!memory.is_empty() && !memory.ends_with(" 0B"), "{info}");
    let version = s.docker_ok(&[
        "version",
        "--format",
        "{{.Server.GitCommit}} {{.Server.GoVersion}}",
    ]);
    assert!(
        version.trim().split(' ').all(|w| !w.is_empty()),
        "{version}"
    );
    let node = s.docker_ok(&["node", "inspect", "--pretty", "m1"]);
    assert!(node.contains("TLS Info:"), "{node}");
    assert!(node.contains("BEGIN CERTIFICATE"), "{node}");
    let issuer = node
        .lines()
        .find(|l| l.contains("Issuer Subject:"))
        .unwrap_or("");
    assert!(
        issuer
            .split(':')
            .nth(1)
            .is_some_and(|v| !v.trim().is_empty()),
        "{node}"
    );
}
