//! `docker stack deploy` of a compose file written for Docker Swarm, with containers on three
//! test hosts (each its own `dockerd`, see `common::dockerd`, and a swarmd using it; the
//! manager serves the Docker API) and a fourth host as an outside client. The file uses the
//! keys a Swarm user writes (ports long and short, deploy's placement, resources, restart,
//! update and rollback configs, endpoint modes, labels; healthcheck, secrets, configs,
//! environment, command, a tmpfs volume): `web` publishes 8080 through the routing mesh and
//! answers on every host; `api` too on 8081, is on both networks and reaches `db` by its
//! short name; `db` (dnsrr, healthchecked) serves its secret; `web` cannot see `db`. Deployed again with a change, the stack updates in place; `docker stack rm` takes
//! every service, network and secret of it away. Skipped where no engine or CLI is here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../../agent/tests/support/docker_image.rs"]
mod image;

use common::docker::configure_docker;
use common::dockerd::start_engines;
use common::netns::Mesh;
use common::overlay::*;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

/// Serves `name` and the container's eth0 address on port 7000 once the agent plugged it.
fn serve(page: &str) -> String {
    format!(
        "until busybox ip -4 -o addr show eth0 | busybox grep -q inet; do busybox sleep 0.1; \
         done; mkdir -p /www && {page} > /www/index.html && exec busybox httpd -f -p 7000 -h /www"
    )
}

fn compose(api_replicas: u32) -> String {
    let web = serve("echo web");
    let api = serve("echo api");
    let db = serve("cat /run/secrets/dbpw");
    format!(
        r#"
version: "3.8"
services:
  web:
    image: {image}
    command: ["busybox", "sh", "-c", "{web}"]
    ports:
      - target: 7000
        published: 8080
        protocol: tcp
        mode: ingress
    networks: [front]
    configs:
      - source: webconf
        target: /etc/web.conf
    deploy:
      replicas: 1
      labels:
        tier: front
      placement:
        constraints: [node.hostname == h2]
  api:
    image: {image}
    command: ["busybox", "sh", "-c", "{api}"]
    hostname: "{{{{.Node.Hostname}}}}-api-{{{{.Task.Slot}}}}"
    environment:
      ROLE: api
    ports:
      - "8081:7000"
    networks: [front, back]
    deploy:
      mode: replicated
      replicas: {api_replicas}
      endpoint_mode: vip
      placement:
        max_replicas_per_node: 1
        preferences:
          - spread: node.labels.zone
      resources:
        limits:
          cpus: "0.5"
          memory: 64M
        reservations:
          memory: 16M
      restart_policy:
        condition: on-failure
        delay: 1s
        max_attempts: 3
        window: 10s
      update_config:
        parallelism: 1
        delay: 1s
        order: start-first
        failure_action: rollback
        monitor: 2s
        max_failure_ratio: 0.1
      rollback_config:
        parallelism: 1
  db:
    image: {image}
    command: ["busybox", "sh", "-c", "{db}"]
    networks: [back]
    secrets: [dbpw]
    volumes:
      - type: tmpfs
        target: /cache
    healthcheck:
      test: ["CMD", "busybox", "true"]
      interval: 1s
      timeout: 1s
      retries: 3
    deploy:
      endpoint_mode: dnsrr
networks:
  front:
    driver: overlay
  back:
    driver: overlay
secrets:
  dbpw:
    file: ./dbpw.txt
configs:
  webconf:
    file: ./web.conf
"#,
        image = image::IMAGE_1,
    )
}

fn docker(sock: &Path, config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("120").arg("docker");
    configure_docker(&mut cmd, sock, config)
        .args(args)
        .output()
        .unwrap()
}

fn docker_ok(sock: &Path, config: &Path, args: &[&str]) -> String {
    let out = docker(sock, config, args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_compose_file_for_swarm_deploys_across_hosts_updates_and_is_removed() {
    let test = "a_compose_file_for_swarm";
    if !image::engine_or_skip(test) || !docker::docker_installed() {
        return;
    }
    let mesh = match Mesh::new(4) {
        Ok(m) => m,
        Err(e) => panic!("test hosts need root and iproute2: {e}"),
    };
    image::ensure_images();
    let tmp = test_dir();
    let root = tmp.path();
    let Some(engines) = start_engines(&mesh, root, 3, image::IMAGE_1, test) else {
        return;
    };
    let sock = root.join("docker.sock");
    let config = root.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let _leftovers = Leftovers((1..=3).map(|i| root.join(format!("h{i}"))).collect());
    let (_nodes, ctl) = start_with(&mesh, root, "docker", |i| {
        let mut extra = vec!["--engine-addr".into(), engines[i - 1].addr()];
        if i == 1 {
            extra.extend(["--listen-docker-api".into(), sock.display().to_string()]);
        }
        extra
    });
    wait_for("the Docker API", WAIT, || sock.exists().then_some(()));

    let stack_dir = root.join("stack");
    std::fs::create_dir_all(&stack_dir).unwrap();
    std::fs::write(stack_dir.join("dbpw.txt"), "s3cret").unwrap();
    std::fs::write(stack_dir.join("web.conf"), "port=7000").unwrap();
    let file = stack_dir.join("compose.yml");
    std::fs::write(&file, compose(2)).unwrap();
    let file = file.to_str().unwrap();
    docker_ok(&sock, &config, &["stack", "deploy", "-c", file, "app"]);
    wait_running(&ctl, "app_web", 1);
    let api = wait_running(&ctl, "app_api", 2);
    let db = wait_running(&ctl, "app_db", 1);
    // db's healthcheck (the file's `healthcheck:`) ran in its container: RUNNING means healthy.
    let health = ctl.json(&["task", "inspect", &db[0].0])["status"]["health"].clone();
    assert!(
        health == 2 || health == "HEALTH_STATE_HEALTHY",
        "db is RUNNING with health {health}"
    );
    let services = docker_ok(
        &sock,
        &config,
        &["stack", "services", "app", "--format", "{{.Name}}"],
    );
    let mut names: Vec<&str> = services.lines().collect();
    names.sort();
    assert_eq!(names, ["app_api", "app_db", "app_web"]);

    // web through the mesh, on every host (two of them without its task), from outside.
    for host in 1..=3 {
        let page = wait_for(&format!("h{host}:8080"), WAIT, || {
            let (ok, page) = fetch_port(&mesh.ns(4), &mesh.ip(host), 8080);
            (ok && page.contains("web")).then_some(page)
        });
        assert!(page.contains("web"), "{page}");
    }
    // api publishes through the mesh too (the short form), from either api task's host.
    let page = wait_for("h1:8081", WAIT, || {
        let (ok, page) = fetch_port(&mesh.ns(4), &mesh.ip(1), 8081);
        (ok && page.contains("api")).then_some(page)
    });
    assert!(page.contains("api"), "{page}");
    // What the file asked for is what the services hold.
    let spec = ctl.json(&["service", "inspect", "app_api"])["spec"].clone();
    let update = &spec["update"];
    assert_eq!(update["parallelism"], 1, "{update}");
    let db = ctl.json(&["service", "inspect", "app_db"])["spec"].clone();
    assert!(db.to_string().contains("/cache"), "db's tmpfs: {db}");
    assert!(
        db.to_string().contains("healthcheck"),
        "db's healthcheck: {db}"
    );

    // api reaches db by its short name (the CLI's alias; dnsrr: the task's own address), and
    // db serves its secret.
    let api_ns = format!("swarm-{}", api[0].0);
    let db_page = wait_for("db from api", WAIT, || {
        let (ok, page) = fetch(&api_ns, "db");
        (ok && page.contains("s3cret")).then_some(page)
    });
    assert!(db_page.contains("s3cret"));
    // api's hostname template is filled in per task, in its container on its host's engine.
    let listed = ctl.json(&["node", "ls"]);
    for (task, node, _) in &api {
        let host = host_of(&listed, node);
        let i: usize = host.trim_start_matches('h').parse().unwrap();
        let t = ctl.json(&["task", "inspect", task]);
        let container = t["status"]["container_id"].as_str().unwrap().to_string();
        let name = engines[i - 1]
            .docker(&["inspect", "--format", "{{.Config.Hostname}}", &container])
            .unwrap();
        assert_eq!(name.trim(), format!("{host}-api-{}", t["slot"]));
    }
    // web's config is where the file put it, in its container on h2's engine.
    let web = running(&ctl, "app_web");
    let container = ctl.json(&["task", "inspect", &web[0].0])["status"]["container_id"]
        .as_str()
        .unwrap()
        .to_string();
    let conf = engines[1]
        .docker(&["exec", &container, "busybox", "cat", "/etc/web.conf"])
        .unwrap();
    assert_eq!(conf.trim(), "port=7000");
    // web shares no network with db: the name does not resolve there.
    let from_web = resolve(&format!("swarm-{}", web[0].0), "db");
    assert!(from_web.is_empty(), "web resolved db: {from_web:?}");

    // Deployed again with a change: the same services, updated in place.
    let before = docker_ok(
        &sock,
        &config,
        &["service", "inspect", "app_api", "--format", "{{.ID}}"],
    );
    std::fs::write(stack_dir.join("compose.yml"), compose(3)).unwrap();
    docker_ok(&sock, &config, &["stack", "deploy", "-c", file, "app"]);
    wait_running(&ctl, "app_api", 3);
    let after = docker_ok(
        &sock,
        &config,
        &["service", "inspect", "app_api", "--format", "{{.ID}}"],
    );
    assert_eq!(before, after, "the service was replaced, not updated");

    // stack rm: no service, network or secret of the stack is left.
    docker_ok(&sock, &config, &["stack", "rm", "app"]);
    wait_for("the stack removed", WAIT, || {
        let services = docker_ok(&sock, &config, &["service", "ls", "-q"]);
        let networks = docker_ok(&sock, &config, &["network", "ls", "--format", "{{.Name}}"]);
        let secrets = docker_ok(&sock, &config, &["secret", "ls", "-q"]);
        (services.trim().is_empty() && !networks.contains("app_") && secrets.trim().is_empty())
            .then_some(())
    });
}
