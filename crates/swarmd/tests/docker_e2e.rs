//! The Docker executor end to end (DESIGN §7 tier 5, issue 5): the built `swarmd` and
//! `swarmctl` on a one-node swarm with `--executor docker`, against the real engine, with
//! images built locally (nothing can be pulled here). A replicated service of 3 containers is
//! scaled to 5, moved to a second image, has a container killed from outside (its task FAILED
//! and replaced), survives a restart of swarmd (SIGTERM, then SIGKILL) with its containers
//! re-adopted, and is removed leaving no container behind; a missing image and a bad image
//! reference are REJECTED with the reason. Skipped with a visible `SKIPPED:` line when no
//! engine answers. Every container of the test's node is removed at the end, also on failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../agent/tests/support/docker_image.rs"]
mod image;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const RUNNING: i64 = 512;
const FAILED: i64 = 704;
const REJECTED: i64 = 768;
const NODE_LABEL: &str = "swarmd.node.id";
const TASK_LABEL: &str = "swarmd.task.id";
const WAIT: Duration = Duration::from_secs(60);

fn node_args(dir: &Path, socket: &Path, addr: &str) -> Vec<String> {
    vec![
        "-d".into(),
        dir.display().to_string(),
        "--listen-control-api".into(),
        socket.display().to_string(),
        "--listen-remote-api".into(),
        addr.into(),
        "--hostname".into(),
        "docker-node".into(),
        "--executor".into(),
        "docker".into(),
        // A one-node Raft elects itself after an election timeout: keep restarts quick.
        "--tick-ms".into(),
        "100".into(),
    ]
}

fn tasks_of(ctl: &Ctl, service: &str) -> Vec<Value> {
    ctl.json(&["task", "ls", "--service", service, "--all"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn state(t: &Value) -> i64 {
    t["status"]["state"].as_i64().unwrap_or(0)
}

fn text(t: &Value, path: &[&str]) -> String {
    let mut v = t;
    for p in path {
        v = &v[*p];
    }
    v.as_str().unwrap_or("").to_string()
}

/// Task ID → container ID of the service's tasks running with `image` (desired RUNNING).
fn running(ctl: &Ctl, service: &str, image: &str) -> BTreeMap<String, String> {
    tasks_of(ctl, service)
        .into_iter()
        .filter(|t| {
            t["desired_state"].as_i64() == Some(RUNNING)
                && state(t) == RUNNING
                && text(t, &["spec", "container", "image"]) == image
        })
        .map(|t| (text(&t, &["id"]), text(&t, &["status", "container_id"])))
        .collect()
}

/// Waits for exactly `n` running tasks of `image` whose containers run on the engine, and
/// returns them.
fn wait_running(ctl: &Ctl, service: &str, image: &str, n: usize) -> BTreeMap<String, String> {
    wait_for(&format!("{n} running {image} containers"), WAIT, || {
        let tasks = running(ctl, service, image);
        let all_run = tasks.values().all(|c| {
            !c.is_empty()
                && image::docker(&[
                    "inspect",
                    "--format",
                    "{{.State.Running}} {{.Config.Image}}",
                    c,
                ])
                .is_ok_and(|s| s == format!("true {image}"))
        });
        (tasks.len() == n && all_run).then_some(tasks)
    })
}

/// Containers of the node, running or not.
fn containers(node_label: &str) -> Vec<String> {
    image::containers_with(node_label)
}

fn started_at(container: &str) -> String {
    image::docker(&["inspect", "--format", "{{.State.StartedAt}}", container]).unwrap()
}

#[test]
fn docker_executor_end_to_end() {
    if !image::engine_or_skip("docker_executor_end_to_end") {
        return;
    }
    image::ensure_images();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let socket = root.join("ctl.sock");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut node = Node::start(
        "docker-node",
        &root.join("n"),
        &node_args(&root.join("n"), &socket, &addr),
    );
    let ctl = Ctl { socket };
    let node_id = wait_for("the node to register", WAIT, || {
        let out = ctl.run(&["node", "ls", "--format", "json"]);
        if !out.status.success() {
            return None;
        }
        let nodes: Value = serde_json::from_slice(&out.stdout).ok()?;
        let n = nodes.as_array()?.first()?.clone();
        // The description arrives with the agent's first session.
        (!text(&n, &["description", "engine", "engine_version"]).is_empty()).then_some(n)
    });
    let id = text(&node_id, &["id"]);
    let label = format!("{NODE_LABEL}={id}");
    let _cleanup = image::Cleanup(label.clone());

    // Item 1: the node describes the engine.
    let engine = image::docker(&["version", "--format", "{{.Server.Version}}"]).unwrap();
    assert_eq!(
        text(&node_id, &["description", "engine", "engine_version"]),
        engine
    );
    let ncpu: i64 = image::docker(&["info", "--format", "{{.NCPU}}"])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        node_id["description"]["resources"]["nano_cpus"].as_i64(),
        Some(ncpu * 1_000_000_000)
    );

    // Three replicas, as containers named <service>.<slot>.<task id> and labelled.
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--image",
        image::IMAGE_1,
        "--replicas",
        "3",
        "--command",
        "sleep",
        "--args",
        "3600",
        "--stop-grace-period",
        "1s",
    ]);
    let three = wait_running(&ctl, "web", image::IMAGE_1, 3);
    for t in tasks_of(&ctl, "web").iter().filter(|t| state(t) == RUNNING) {
        let task_id = text(t, &["id"]);
        let c = &three[&task_id];
        let name = image::docker(&["inspect", "--format", "{{.Name}}", c]).unwrap();
        assert_eq!(
            name,
            format!("/web.{}.{task_id}", t["slot"].as_u64().unwrap())
        );
        let labels = image::docker(&[
            "inspect",
            "--format",
            &format!("{{{{index .Config.Labels \"{TASK_LABEL}\"}}}} {{{{index .Config.Labels \"{NODE_LABEL}\"}}}} {{{{index .Config.Labels \"swarmd.service.id\"}}}}"),
            c,
        ])
        .unwrap();
        assert_eq!(
            labels,
            format!("{task_id} {id} {}", text(t, &["service_id"]))
        );
        assert_eq!(
            image::docker(&[
                "inspect",
                "--format",
                "{{.HostConfig.RestartPolicy.Name}}",
                c
            ])
            .unwrap(),
            "no"
        );
    }

    // Scale to 5.
    ctl.ok(&["service", "update", "web", "--replicas", "5"]);
    wait_running(&ctl, "web", image::IMAGE_1, 5);

    // Update the image: every replica moves to :2, no :1 container runs any more.
    ctl.ok(&["service", "update", "web", "--image", image::IMAGE_2]);
    let five = wait_running(&ctl, "web", image::IMAGE_2, 5);
    wait_for("no :1 container running", WAIT, || {
        image::docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label={label}"),
            "--filter",
            &format!("ancestor={}", image::IMAGE_1),
        ])
        .is_ok_and(|s| s.is_empty())
        .then_some(())
    });

    // Kill one container from outside: its task FAILED with the exit code, and replaced.
    let (victim, victim_container) = five
        .iter()
        .next()
        .map(|(t, c)| (t.clone(), c.clone()))
        .unwrap();
    image::docker(&["kill", &victim_container]).unwrap();
    let failed = wait_for("the killed task FAILED", WAIT, || {
        tasks_of(&ctl, "web")
            .into_iter()
            .find(|t| text(t, &["id"]) == victim && state(t) == FAILED)
    });
    assert_eq!(
        failed["status"]["exit_code"].as_i64(),
        Some(137),
        "{failed}"
    );
    let inspect = ctl.ok(&["task", "inspect", &victim]);
    assert!(inspect.contains(&victim_container), "{inspect}");
    assert!(
        inspect
            .lines()
            .any(|l| l.contains("Exit Code") && l.trim_end().ends_with("137")),
        "{inspect}"
    );
    let replaced = wait_running(&ctl, "web", image::IMAGE_2, 5);
    assert!(!replaced.contains_key(&victim));

    // Restart swarmd, gracefully then abruptly: the containers keep running and are adopted
    // (same tasks, same containers, not restarted); leftovers of finished tasks are removed.
    let before: BTreeMap<String, (String, String)> = replaced
        .iter()
        .map(|(t, c)| (t.clone(), (c.clone(), started_at(c))))
        .collect();
    for (how, stop) in [
        ("SIGTERM", Node::terminate as fn(&mut Node)),
        ("SIGKILL", Node::kill9),
    ] {
        let adopted_before = node.log().matches("adopted a running task").count();
        stop(&mut node);
        for (c, _) in before.values() {
            assert_eq!(
                image::docker(&["inspect", "--format", "{{.State.Running}}", c]).unwrap(),
                "true",
                "container {c} survives the {how} of swarmd"
            );
        }
        node.spawn();
        wait_for(&format!("5 adoptions after {how}"), WAIT, || {
            (node.log().matches("adopted a running task").count() >= adopted_before + 5)
                .then_some(())
        });
        let after = wait_running(&ctl, "web", image::IMAGE_2, 5);
        let after: BTreeMap<String, (String, String)> = after
            .iter()
            .map(|(t, c)| (t.clone(), (c.clone(), started_at(c))))
            .collect();
        assert_eq!(
            after, before,
            "same tasks, same containers, not restarted ({how})"
        );
        let mut left = containers(&label);
        left.sort();
        let mut want: Vec<String> = before.values().map(|(c, _)| c.clone()).collect();
        want.sort();
        wait_for(
            &format!("only the running containers left after {how}"),
            WAIT,
            || {
                let mut left = containers(&label);
                left.sort();
                (left == want).then_some(())
            },
        );
        drop(left);
    }

    // A missing image and a bad reference: REJECTED with the reason, quickly.
    ctl.ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "ghost",
        "--image",
        "swarmd-test/absent:1",
    ]);
    ctl.ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "badref",
        "--image",
        "NOT/a:valid:ref",
    ]);
    for (service, reason) in [
        ("ghost", "image not found"),
        ("badref", "invalid reference format"),
    ] {
        let t = wait_for(&format!("{service} REJECTED"), WAIT, || {
            tasks_of(&ctl, service)
                .into_iter()
                .find(|t| state(t) == REJECTED)
        });
        assert!(text(&t, &["status", "err"]).contains(reason), "{t}");
        let inspect = ctl.ok(&["task", "inspect", &text(&t, &["id"])]);
        assert!(inspect.contains(reason), "{inspect}");
        // The service's own inspect names the newest task error too.
        let inspect = ctl.ok(&["service", "inspect", service]);
        assert!(
            inspect
                .lines()
                .any(|l| l.starts_with("Last Task Error") && l.contains(reason)),
            "{inspect}"
        );
        ctl.ok(&["service", "rm", service]);
    }

    // `service rm` leaves no container behind.
    ctl.ok(&["service", "rm", "web"]);
    wait_for("no container of the node left", WAIT, || {
        containers(&label).is_empty().then_some(())
    });
    node.terminate();
}
