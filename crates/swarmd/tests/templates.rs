//! Service templates end to end with the built binaries (one manager, `process` executor):
//! placeholders in a service's environment are filled in per task on the node that runs it
//! (service name and labels, task slot and name, node ID and hostname), and a template the
//! agent could not fill in is refused at create and update in one line naming the field,
//! with nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::swarm::manager_args;
use common::*;
use std::time::Duration;

#[test]
fn placeholders_are_filled_in_per_task_and_bad_ones_refused() {
    let tmp = test_dir();
    let root = tmp.path();
    let socket = root.join("m.sock");
    let addr = format!("127.0.0.1:{}", free_port());
    let dir = root.join("n1");
    let mut args = manager_args(&dir, "tmpl-host", &socket, &addr, None);
    let exec = args.iter().position(|a| a == "sim").unwrap();
    args[exec] = "process".into();
    let _node = Node::start("tmpl-host", &dir, &args);
    let ctl = Ctl { socket };
    wait_for("the control socket", Duration::from_secs(30), || {
        ctl.run(&["node", "ls"]).status.success().then_some(())
    });
    let node_id = ctl.json(&["node", "ls"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let who = "WHO={{.Service.Name}}.{{.Task.Slot}}@{{.Node.Hostname}}/{{.Node.ID}}/\
               {{index .Service.Labels \"tier\"}}/{{.Task.Name}}";
    let out = format!("OUT={}/out-{{{{.Task.Slot}}}}", root.display());
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "tmpl",
        "--image",
        "busybox",
        "--replicas",
        "2",
        "--label",
        "tier=front",
        "--env",
        who,
        "--env",
        &out,
        "--command",
        "sh",
        "--args",
        "-c,echo \"$WHO\" > \"$OUT\"; exec sleep 3600",
    ]);
    let tasks = ctl.json(&["task", "ls", "--service", "tmpl"]);
    for slot in [1, 2] {
        let file = root.join(format!("out-{slot}"));
        let line = wait_for(
            &format!("{}", file.display()),
            Duration::from_secs(60),
            || {
                std::fs::read_to_string(&file)
                    .ok()
                    .filter(|s| s.ends_with('\n'))
            },
        );
        let task_id = tasks
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["slot"] == slot)
            .and_then(|t| t["id"].as_str())
            .unwrap()
            .to_string();
        assert_eq!(
            line.trim(),
            format!("tmpl.{slot}@tmpl-host/{node_id}/front/tmpl.{slot}.{task_id}")
        );
    }

    // Refused where the agent could not fill it in, naming the field; nothing changes.
    let err = ctl.error(&[
        "service",
        "create",
        "--name",
        "bad",
        "--image",
        "busybox",
        "--env",
        "X={{.Node.Nope}}",
    ]);
    assert!(
        err.lines().count() == 1 && err.contains("env") && err.contains(".Node.Nope"),
        "{err}"
    );
    let before = ctl.json(&["service", "inspect", "tmpl"]);
    let err = ctl.error(&["service", "update", "tmpl", "--env", "X={{.Task.Slot"]);
    assert!(
        err.lines().count() == 1 && err.contains("env") && err.contains("unclosed"),
        "{err}"
    );
    let after = ctl.json(&["service", "inspect", "tmpl"]);
    assert_eq!(
        before["spec"], after["spec"],
        "a refused update changed the spec"
    );
    let names = ctl.ok(&["service", "ls"]);
    assert!(!names.contains("bad"), "{names}");
}

/// Through the Docker API as the `docker` CLI sends them: the template is stored as given,
/// filled in for the task's process, and a bad one is refused with the field named.
#[test]
fn docker_cli_templates() {
    if !docker::docker_installed() {
        return;
    }
    let s = docker::Swarm::start();
    let err = s.docker(&[
        "service",
        "create",
        "--detach",
        "--name",
        "bad",
        "--hostname",
        "{{.Node.Nope}}",
        "busybox",
    ]);
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(
        !err.status.success() && stderr.contains("hostname") && stderr.contains(".Node.Nope"),
        "{stderr}"
    );
    s.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--hostname",
        "{{.Node.Hostname}}-{{.Task.Slot}}",
        "--env",
        "SLOT={{.Task.Slot}}",
        "busybox",
    ]);
    let hostname = s.docker_ok(&[
        "service",
        "inspect",
        "web",
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Hostname}}",
    ]);
    assert_eq!(hostname.trim(), "{{.Node.Hostname}}-{{.Task.Slot}}");
    s.wait_running(1, "busybox:latest");
    let pid = task_processes_under(&s.state)[0];
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let env: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
    assert!(
        env.contains(&&b"SLOT=1"[..]),
        "{:?}",
        String::from_utf8_lossy(&environ)
    );
}
