//! The real `docker` CLI against `swarmd --listen-docker-api`: a one-manager swarm (process
//! executor, so tasks are real `sleep` processes) driven with `docker -H unix://PATH` through
//! node ls, service create/ls/ps/scale/update, node update --availability drain and service
//! rm, each checked through `swarmctl` and /proc, not only by the CLI's own output. Skipped,
//! with a message, where no `docker` CLI is installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::docker::*;
use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn docker_cli_drives_the_swarm() {
    if !docker_installed() {
        return;
    }
    let s = Swarm::start();
    let mode = std::fs::metadata(&s.docker_sock)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the Docker API socket is owner-only");

    // node ls: this manager, ready, the leader, marked as the node we talk to.
    // (The node turns Ready once its agent's session registers, just after start-up.)
    let me = wait_for(
        "m1 Ready in docker node ls",
        Duration::from_secs(30),
        || {
            let nodes = s.docker_ok(&["node", "ls"]);
            nodes
                .lines()
                .find(|l| l.contains(" m1 ") && l.contains("Ready"))
                .map(str::to_string)
        },
    );
    assert!(me.contains('*') && me.contains("Active"), "{me}");
    assert!(me.contains("Leader"), "{me}");

    // service create waits for convergence (the CLI polls /services, /tasks and /nodes).
    let id = s.docker_ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--replicas",
        "3",
        "busybox",
        "sleep",
        "1000",
    ]);
    s.wait_running(3, "busybox:latest");
    let services = s.ctl.json(&["service", "ls"]);
    assert_eq!(services.as_array().unwrap().len(), 1);
    assert!(id.trim().starts_with(services[0]["id"].as_str().unwrap()));
    let args = &services[0]["spec"]["task"]["container"]["args"];
    assert_eq!(args, &serde_json::json!(["sleep", "1000"]));

    // service ls: 3/3.
    wait_for("web 3/3 in service ls", Duration::from_secs(30), || {
        let ls = s.docker_ok(&["service", "ls"]);
        row(&ls, "web")
            .filter(|r| r.contains("replicated") && r.contains("3/3"))
            .map(|_| ())
    });

    // service ps web: three slots, running on m1.
    let ps = s.docker_ok(&["service", "ps", "web"]);
    for slot in ["web.1", "web.2", "web.3"] {
        let r = row(&ps, slot).unwrap_or_else(|| panic!("{slot} missing:\n{ps}"));
        assert!(r.contains("m1") && r.contains("Running"), "{r}");
    }

    // service scale: five running, and the three first tasks kept (no spurious update).
    let before: Vec<String> = s
        .live_tasks()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    s.docker_ok(&["service", "scale", "web=5"]);
    s.wait_running(5, "busybox:latest");
    let after: Vec<String> = s
        .live_tasks()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        before.iter().all(|t| after.contains(t)),
        "scaling replaced tasks"
    );

    // service update --image: every task replaced by one of the new image.
    s.docker_ok(&["service", "update", "--image", "busybox:1.36", "web"]);
    s.wait_running(5, "busybox:1.36");
    let inspect = s.docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}} {{.Spec.Mode.Replicated.Replicas}}",
        "web",
    ]);
    assert_eq!(inspect.trim(), "busybox:1.36 5");

    // node update --availability drain: recorded, and the tasks leave the node.
    s.docker_ok(&["node", "update", "--availability", "drain", "m1"]);
    let node = &s.ctl.json(&["node", "ls"])[0];
    assert_eq!(node["spec"]["availability"].as_i64(), Some(2), "{node}");
    let shown = s.docker_ok(&[
        "node",
        "inspect",
        "--format",
        "{{.Spec.Availability}}",
        "m1",
    ]);
    assert_eq!(shown.trim(), "drain");
    wait_for(
        "the drained node to stop its tasks",
        Duration::from_secs(60),
        || task_processes_under(&s.state).is_empty().then_some(()),
    );
    s.docker_ok(&["node", "update", "--availability", "active", "m1"]);

    // service rm: gone from both views.
    s.docker_ok(&["service", "rm", "web"]);
    let left = s.ctl.json(&["service", "ls"]);
    assert_eq!(left.as_array().unwrap().len(), 0, "{left}");
    let ls = s.docker_ok(&["service", "ls"]);
    assert!(row(&ls, "web").is_none(), "{ls}");
}

#[test]
fn bad_input_is_refused_with_the_reason_and_changes_nothing() {
    if !docker_installed() {
        return;
    }
    let s = Swarm::start();

    let out = s.docker(&["service", "scale", "nope=2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("service nope not found"), "{err}");

    let out = s.docker(&["service", "rm", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("service nope not found"));

    let out = s.docker(&["node", "update", "--availability", "sleepy", "m1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Availability: \"sleepy\""), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let node = &s.ctl.json(&["node", "ls"])[0];
    assert_eq!(node["spec"]["availability"].as_i64(), Some(0), "{node}");

    // The wire: Docker's error body, status codes, and nothing created by a refused spec.
    let (code, body) = raw(&s.docker_sock, "GET", "/v1.41/services/nope", "");
    assert_eq!(code, 404, "{body}");
    let msg: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(msg["message"], "service nope not found");
    let (code, body) = raw(&s.docker_sock, "GET", "/v1.12/nodes", "");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("too old"), "{body}");
    let (code, _) = raw(&s.docker_sock, "GET", "/v1.41/containers/json", "");
    assert_eq!(code, 404);
    let spec = r#"{"Name":"x","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},
        "RestartPolicy":{"Condition":"sometimes"}}}"#;
    let (code, body) = raw(&s.docker_sock, "POST", "/v1.41/services/create", spec);
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("TaskTemplate.RestartPolicy.Condition"),
        "{body}"
    );
    let (code, body) = raw(
        &s.docker_sock,
        "POST",
        "/v1.41/services/create",
        "{not json",
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = raw(
        &s.docker_sock,
        "POST",
        "/v1.41/services/create",
        r#"{"Name":"y","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}"#,
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = raw(
        &s.docker_sock,
        "POST",
        "/v1.41/services/y/update?version=1",
        r#"{"Name":"y","TaskTemplate":{"ContainerSpec":{"Image":"busybox:2"}}}"#,
    );
    assert_eq!(code, 409, "a stale version is a conflict: {body}");
    let (code, body) = raw(&s.docker_sock, "POST", "/v1.41/services/y/update", "{}");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("version"), "{body}");
    let names: Vec<String> = s
        .ctl
        .json(&["service", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v["spec"]["annotations"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["y"]);
}

#[test]
fn a_bad_docker_api_socket_stops_swarmd_with_one_line() {
    let dir = test_dir();
    let run = |docker_sock: &Path| {
        Command::new(swarmd_bin())
            .args(["-d", &dir.path().join("m").display().to_string()])
            .args([
                "--listen-control-api",
                &dir.path().join("ctl.sock").display().to_string(),
            ])
            .args(["--listen-docker-api", &docker_sock.display().to_string()])
            .args(["--listen-remote-api", &format!("127.0.0.1:{}", free_port())])
            .args(["--executor", "sim"])
            .output()
            .unwrap()
    };
    let out = run(&dir.path().join("ctl.sock"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--listen-docker-api must differ"), "{err}");

    // A socket another process listens on is not taken over.
    let busy = dir.path().join("busy.sock");
    let _holder = std::os::unix::net::UnixListener::bind(&busy).unwrap();
    let out = run(&busy);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.contains("--listen-docker-api") && last.contains("in use"),
        "{err}"
    );
}
