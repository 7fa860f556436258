//! Healthchecks through the built binaries (one manager, process executor, real processes):
//! a task with `--health-cmd` is STARTING until its check passes, then RUNNING; a check that
//! keeps failing FAILS the task, which the restart policy replaces; the check runs in the
//! task's network namespace and directory; a rolling update waits for each new task to be
//! healthy, and an update to a spec that never is pauses or rolls back per its failure action.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::docker::Swarm;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const STARTING: i64 = 448;
const RUNNING: i64 = 512;
const FAILED: i64 = 704;
const HEALTH_STARTING: i64 = 1;
const HEALTH_HEALTHY: i64 = 2;
const HEALTH_UNHEALTHY: i64 = 3;
const PAUSED: i64 = 2;
const ROLLBACK_COMPLETED: i64 = 6;

/// Every task of `service`, finished ones too.
fn tasks(ctl: &Ctl, service: &str) -> Vec<Value> {
    ctl.json(&["task", "ls", "--service", service, "-a"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn state(t: &Value) -> i64 {
    t["status"]["state"].as_i64().unwrap_or(0)
}

fn health(t: &Value) -> i64 {
    t["status"]["health"].as_i64().unwrap_or(0)
}

/// Live (desired RUNNING) tasks of `service`, with their observed state.
fn live(ctl: &Ctl, service: &str) -> Vec<Value> {
    tasks(ctl, service)
        .into_iter()
        .filter(|t| t["desired_state"].as_i64() == Some(RUNNING))
        .collect()
}

fn task_dir(s: &Swarm, task: &Value) -> std::path::PathBuf {
    s.state
        .join("worker/tasks")
        .join(task["id"].as_str().unwrap())
}

fn create(ctl: &Ctl, name: &str, extra: &[&str]) {
    let mut args = vec![
        "service",
        "create",
        "-d",
        "--name",
        name,
        "--image",
        "busybox",
        "--command",
        "sleep",
        "--args",
        "3600",
    ];
    args.extend_from_slice(extra);
    ctl.ok(&args);
}

#[test]
fn a_task_is_running_only_once_its_check_passes() {
    let s = Swarm::start();
    create(
        &s.ctl,
        "web",
        &[
            "--health-cmd",
            "test -f ready",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1000",
        ],
    );
    let task = wait_for("a STARTING task", Duration::from_secs(30), || {
        live(&s.ctl, "web")
            .into_iter()
            .find(|t| state(t) == STARTING)
    });
    assert_eq!(health(&task), HEALTH_STARTING);
    // Its check fails every 200 ms; it stays STARTING, visibly so.
    std::thread::sleep(Duration::from_millis(1_500));
    let id = task["id"].as_str().unwrap();
    let same = live(&s.ctl, "web");
    assert_eq!(same.len(), 1);
    assert_eq!(
        (same[0]["id"].as_str(), state(&same[0])),
        (Some(id), STARTING)
    );
    let ls = s.ctl.ok(&["task", "ls", "--service", "web"]);
    assert!(
        ls.contains("STARTING") && ls.contains("(health: starting)"),
        "{ls}"
    );

    // The check looks in the task's directory: the marker makes it pass.
    std::fs::write(task_dir(&s, &task).join("ready"), "").unwrap();
    let running = wait_for("RUNNING once healthy", Duration::from_secs(30), || {
        live(&s.ctl, "web")
            .into_iter()
            .find(|t| state(t) == RUNNING)
    });
    assert_eq!(running["id"].as_str(), Some(id), "the same task");
    assert_eq!(health(&running), HEALTH_HEALTHY);
    let ls = s.ctl.ok(&["task", "ls", "--service", "web"]);
    assert!(ls.contains("RUNNING") && ls.contains("(healthy)"), "{ls}");
    let inspect = s.ctl.ok(&["service", "inspect", "web"]);
    assert!(inspect.contains("CMD-SHELL test -f ready"), "{inspect}");

    // Bad values are refused with one line naming the flag, and change nothing.
    let before = s.ctl.json(&["service", "inspect", "web"]);
    for (flag, value, field) in [
        ("--health-interval", "500us", "health-interval"),
        ("--health-timeout", "-1s", "health-timeout"),
        ("--health-retries", "-3", "health-retries"),
        ("--health-cmd", "", "health-cmd"),
    ] {
        let err = s.ctl.error(&["service", "update", "web", flag, value]);
        assert!(err.contains(field), "{flag} {value}: {err}");
    }
    assert_eq!(s.ctl.json(&["service", "inspect", "web"]), before);
}

#[test]
fn a_check_that_keeps_failing_fails_the_task_and_it_is_replaced() {
    let s = Swarm::start();
    create(
        &s.ctl,
        "sick",
        &[
            "--health-cmd",
            "echo no answer; exit 1",
            "--health-interval",
            "200ms",
            "--health-retries",
            "2",
            "--restart-delay",
            "0s",
        ],
    );
    let failed = wait_for("a FAILED task", Duration::from_secs(30), || {
        tasks(&s.ctl, "sick")
            .into_iter()
            .find(|t| state(t) == FAILED)
    });
    assert_eq!(health(&failed), HEALTH_UNHEALTHY);
    let err = failed["status"]["err"].as_str().unwrap();
    assert!(
        err.starts_with("unhealthy: 2 failed health checks in a row") && err.contains("no answer"),
        "{err}"
    );
    // Never RUNNING: its process was stopped.
    let pid = failed["status"]["pid"].as_u64().unwrap_or(0);
    assert!(pid > 0 && !Path::new(&format!("/proc/{pid}")).exists());
    // The restart policy replaces it in the same slot.
    wait_for("a replacement", Duration::from_secs(30), || {
        live(&s.ctl, "sick")
            .into_iter()
            .find(|t| t["id"] != failed["id"] && t["slot"] == failed["slot"])
    });
    let id = failed["id"].as_str().unwrap();
    let inspect = s.ctl.ok(&["task", "inspect", id]);
    assert!(
        inspect.contains("Health") && inspect.contains("unhealthy"),
        "{inspect}"
    );
    let ls = s.ctl.ok(&["task", "ls", "--service", "sick", "-a"]);
    assert!(ls.contains("FAILED") && ls.contains("unhealthy: "), "{ls}");
}

#[test]
fn a_rolling_update_waits_for_health_and_pauses_on_a_spec_never_healthy() {
    let s = Swarm::start();
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("ready");
    create(
        &s.ctl,
        "api",
        &[
            "--replicas",
            "3",
            "--update-parallelism",
            "1",
            "--update-monitor",
            "1s",
            "--update-failure-action",
            "pause",
        ],
    );
    wait_for("3 running", Duration::from_secs(30), || {
        (live(&s.ctl, "api")
            .iter()
            .filter(|t| state(t) == RUNNING)
            .count()
            == 3)
            .then_some(())
    });

    // A check that passes once the marker exists: the first new task holds the update.
    let check = format!("test -f {}", marker.display());
    let first = [
        "service",
        "update",
        "-d",
        "api",
        "--health-cmd",
        &check,
        "--health-interval",
        "200ms",
        "--health-retries",
        "1000",
    ];
    s.ctl.ok(&first);
    wait_for("a new task STARTING", Duration::from_secs(30), || {
        live(&s.ctl, "api")
            .iter()
            .any(|t| state(t) == STARTING)
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(1_500));
    let now = live(&s.ctl, "api");
    let checked = now
        .iter()
        .filter(|t| !t["spec"]["container"]["healthcheck"].is_null())
        .count();
    assert_eq!(checked, 1, "one batch while it is not healthy: {now:?}");
    std::fs::write(&marker, "").unwrap();
    wait_for("3 healthy", Duration::from_secs(60), || {
        let now = live(&s.ctl, "api");
        (now.len() == 3
            && now
                .iter()
                .all(|t| state(t) == RUNNING && health(t) == HEALTH_HEALTHY))
        .then_some(())
    });

    // A spec whose check never passes: the first new task fails, the update pauses, and the
    // waiting `service update` says so.
    let out = s.ctl.run(&[
        "service",
        "update",
        "api",
        "--health-cmd",
        "exit 1",
        "--health-retries",
        "2",
    ]);
    assert!(!out.status.success(), "a failed update waited to success");
    let svc = wait_for("paused", Duration::from_secs(60), || {
        let svc = s.ctl.json(&["service", "inspect", "api"]);
        (svc["update_status"]["state"].as_i64() == Some(PAUSED)).then_some(svc)
    });
    assert!(
        svc["update_status"]["message"]
            .as_str()
            .unwrap()
            .contains("paused"),
        "{svc}"
    );
    // Two tasks still run the healthy spec: the update went no further.
    let healthy_old = live(&s.ctl, "api")
        .iter()
        .filter(|t| {
            t["spec"]["container"]["healthcheck"]["test"][1].as_str() == Some(check.as_str())
                && state(t) == RUNNING
        })
        .count();
    assert_eq!(healthy_old, 2);
}

#[test]
fn an_update_never_healthy_rolls_back_and_checks_run_in_the_tasks_namespace() {
    let s = Swarm::start();
    s.ctl.ok(&["network", "create", "--name", "app"]);
    // The task records its network namespace; its check passes only from the same one.
    s.ctl.ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "db",
        "--image",
        "busybox",
        "--network",
        "app",
        "--replicas",
        "2",
        "--command",
        "sh",
        "--args",
        "-c",
        "--args",
        "readlink /proc/self/ns/net > netns; exec sleep 3600",
        "--health-cmd",
        "test \"$(readlink /proc/self/ns/net)\" = \"$(cat netns)\"",
        "--health-interval",
        "200ms",
        "--update-parallelism",
        "1",
        "--update-monitor",
        "1s",
        "--update-failure-action",
        "rollback",
    ]);
    // Healthy means the check ran in the task's directory and namespace: from the node's
    // (or any other) the two links differ.
    let first = wait_for("2 healthy", Duration::from_secs(60), || {
        let now = live(&s.ctl, "db");
        (now.len() == 2
            && now
                .iter()
                .all(|t| state(t) == RUNNING && health(t) == HEALTH_HEALTHY))
        .then_some(now)
    });
    let task_ns = std::fs::read_to_string(task_dir(&s, &first[0]).join("netns")).unwrap();
    let node_ns = std::fs::read_link(format!("/proc/{}/ns/net", s.node.pid())).unwrap();
    assert_ne!(task_ns.trim(), node_ns.display().to_string());

    let out = s
        .ctl
        .run(&["service", "update", "db", "--health-cmd", "false"]);
    assert!(!out.status.success(), "a failed update waited to success");
    let svc = wait_for("rollback completed", Duration::from_secs(90), || {
        let svc = s.ctl.json(&["service", "inspect", "db"]);
        (svc["update_status"]["state"].as_i64() == Some(ROLLBACK_COMPLETED)).then_some(svc)
    });
    let test = svc["spec"]["task"]["container"]["healthcheck"]["test"][1]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(test.contains("netns"), "the spec went back: {svc}");
    wait_for("2 healthy on the old spec", Duration::from_secs(60), || {
        let now = live(&s.ctl, "db");
        (now.len() == 2
            && now.iter().all(|t| {
                state(t) == RUNNING
                    && t["spec"]["container"]["healthcheck"]["test"][1].as_str()
                        == Some(test.as_str())
            }))
        .then_some(())
    });
}
