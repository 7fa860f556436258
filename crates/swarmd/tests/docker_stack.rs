//! `docker stack deploy|ls|services|ps|rm` with the real `docker` CLI: a compose file with a
//! service, its default network, a secret and a config becomes those objects (labelled with
//! the stack's namespace, as the CLI labels them), the tasks run, and `stack rm` removes
//! everything it made. Skipped, with a message, where no `docker` CLI is installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::docker::*;
use common::*;
use std::time::Duration;

const COMPOSE: &str = r#"
version: "3.8"
services:
  web:
    image: busybox
    command: ["sleep", "1000"]
    deploy:
      replicas: 2
      labels:
        tier: front
    secrets: [db]
    configs: [conf]
secrets:
  db:
    file: ./db.txt
configs:
  conf:
    file: ./app.conf
"#;

#[test]
fn docker_stack_deploys_and_removes() {
    if !docker_installed() {
        return;
    }
    let s = Swarm::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db.txt"), "pw").unwrap();
    std::fs::write(dir.path().join("app.conf"), "port=80").unwrap();
    let compose = dir.path().join("compose.yml");
    std::fs::write(&compose, COMPOSE).unwrap();
    let compose = compose.to_str().unwrap();

    let out = s.docker_within(
        Duration::from_secs(120),
        &["stack", "deploy", "-c", compose, "app"],
    );
    assert!(
        out.status.success(),
        "stack deploy: {}{}\n--- swarmd log ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.node.log()
    );
    s.wait_running(2, "busybox:latest");

    let ls = s.docker_ok(&["stack", "ls", "--format", "{{.Name}} {{.Services}}"]);
    assert_eq!(ls.trim(), "app 1", "{ls}");
    let services = s.docker_ok(&[
        "stack",
        "services",
        "app",
        "--format",
        "{{.Name}} {{.Replicas}}",
    ]);
    assert_eq!(services.trim(), "app_web 2/2", "{services}");
    let ps = s.docker_ok(&[
        "stack",
        "ps",
        "app",
        "--format",
        "{{.Name}} {{.CurrentState}}",
    ]);
    assert_eq!(
        ps.lines().filter(|l| l.contains("Running")).count(),
        2,
        "{ps}"
    );
    let nets = s.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(nets.lines().any(|l| l == "app_default"), "{nets}");
    let secrets = s.docker_ok(&["secret", "ls", "--format", "{{.Name}}"]);
    assert_eq!(secrets.trim(), "app_db");
    let configs = s.docker_ok(&["config", "ls", "--format", "{{.Name}}"]);
    assert_eq!(configs.trim(), "app_conf");

    let out = s.docker_within(Duration::from_secs(120), &["stack", "rm", "app"]);
    assert!(
        out.status.success(),
        "stack rm: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the stack gone", Duration::from_secs(60), || {
        let left = [
            s.docker_ok(&["service", "ls", "-q"]),
            s.docker_ok(&["secret", "ls", "-q"]),
            s.docker_ok(&["config", "ls", "-q"]),
        ];
        let nets = s.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
        (left.iter().all(|l| l.trim().is_empty()) && !nets.contains("app_default")).then_some(())
    });
}
