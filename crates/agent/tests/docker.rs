//! The Docker executor against the real engine (DESIGN §7 tier 5): a container's life through
//! the `Controller` steps, the spec's mapping, the engine's refusals as REJECTED reasons, a
//! restarted agent's adoption and cleanup, and healthchecks (the spec's or the image's, read
//! from the engine). Skipped, with a visible `SKIPPED:` line, when no
//! engine answers. Every container is labelled with a node ID unique to its test and removed
//! at the end, also when the test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/docker_image.rs"]
mod image;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use swarm_agent::executor::docker::{
    DockerExecutor, DEFAULT_ENGINE_ADDR, LABEL_NODE_ID, LABEL_SERVICE_ID, LABEL_TASK_ID,
};
use swarm_agent::executor::{Executor, ExitStatus, Health};
use swarm_api::{
    Annotations, ContainerSpec, DnsConfig, HealthCheck, LogDriver, Mount, MountType,
    ResourceRequirements, Resources, Task, TaskSpec, Ulimit,
};

/// A node ID of this test alone, and the guard that removes its containers.
fn test_node(name: &str) -> (String, image::Cleanup) {
    let node = format!("agent-test-{name}-{}", swarm_api::ids::new_id());
    let guard = image::Cleanup(format!("{LABEL_NODE_ID}={node}"));
    (node, guard)
}

async fn executor(node: &str) -> DockerExecutor {
    // Files are staged only for tasks with secrets or configs, which these tests have not.
    let worker_dir = std::env::temp_dir().join(format!("swarmd-{node}"));
    DockerExecutor::connect(DEFAULT_ENGINE_ADDR, node, &worker_dir)
        .await
        .expect("the engine answered docker version, so it answers the executor")
}

fn task(node: &str, image: &str, command: &[&str]) -> Task {
    Task {
        id: swarm_api::ids::new_id(),
        service_id: "svc-agent-test".into(),
        service_name: "agenttest".into(),
        slot: 1,
        node_id: node.into(),
        annotations: Some(Annotations {
            name: "agenttest.1".into(),
            ..Default::default()
        }),
        spec: Some(
            TaskSpec {
                container: Some(ContainerSpec {
                    image: image.into(),
                    command: command.iter().map(|s| s.to_string()).collect(),
                    stop_grace_period_ms: 1_000,
                    ..Default::default()
                }),
                ..Default::default()
            }
            .into(),
        ),
        ..Default::default()
    }
}

fn container_of(t: &mut Task) -> &mut ContainerSpec {
    t.spec.as_mut().unwrap().container.as_mut().unwrap()
}

fn inspect(id: &str, format: &str) -> String {
    image::docker(&["inspect", "--format", format, id]).expect("docker inspect")
}

/// Prepares a task and returns the engine's refusal, which must be a REJECTED one.
async fn rejected(ex: &DockerExecutor, t: &Task) -> String {
    let mut ctl = ex.controller(t).expect("controller");
    match ctl.prepare().await {
        Err(e) if e.is_rejection() => e.to_string(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn container_runs_to_its_exit_code_and_is_removed() {
    if !image::engine_or_skip("container_runs_to_its_exit_code_and_is_removed") {
        return;
    }
    image::ensure_images();
    let (node, _cleanup) = test_node("exit");
    let ex = executor(&node).await;
    let t = task(&node, image::IMAGE_1, &["sh", "-c", "exit 3"]);
    let mut ctl = ex.controller(&t).expect("controller");
    ctl.prepare().await.expect("prepare");
    // READY: created, named and labelled, not started.
    let name = format!("agenttest.1.{}", t.id);
    assert_eq!(inspect(&name, "{{.State.Status}}"), "created");
    assert_eq!(
        inspect(
            &name,
            &format!("{{{{index .Config.Labels \"{LABEL_TASK_ID}\"}}}}")
        ),
        t.id
    );
    assert_eq!(
        inspect(
            &name,
            &format!("{{{{index .Config.Labels \"{LABEL_SERVICE_ID}\"}}}}")
        ),
        "svc-agent-test"
    );
    assert_eq!(inspect(&name, "{{.HostConfig.RestartPolicy.Name}}"), "no");
    let started = ctl.start().await.expect("start");
    assert_eq!(
        inspect(&name, "{{.Id}}"),
        started.container_id,
        "RUNNING names the container"
    );
    assert_eq!(ctl.wait().await.expect("wait"), ExitStatus::Code(3));
    // A second wait (the runner's after a stop) answers the same.
    assert_eq!(ctl.wait().await.expect("wait"), ExitStatus::Code(3));
    ctl.remove().await.expect("remove");
    assert!(
        image::docker(&["inspect", &name]).is_err(),
        "container gone"
    );
}

#[tokio::test]
async fn stop_kills_after_the_grace_period() {
    if !image::engine_or_skip("stop_kills_after_the_grace_period") {
        return;
    }
    image::ensure_images();
    let (node, _cleanup) = test_node("stop");
    let ex = executor(&node).await;
    // `sleep` as PID 1 has no SIGTERM handler, so the kernel ignores TERM: only the kill after
    // the grace period ends it.
    let t = task(&node, image::IMAGE_1, &["sleep", "300"]);
    let mut ctl = ex.controller(&t).expect("controller");
    ctl.prepare().await.expect("prepare");
    let started = ctl.start().await.expect("start");
    assert_eq!(inspect(&started.container_id, "{{.State.Running}}"), "true");
    let began = Instant::now();
    ctl.stop(Duration::from_secs(1)).await.expect("stop");
    assert!(
        began.elapsed() >= Duration::from_millis(900),
        "waited the grace"
    );
    assert!(began.elapsed() < Duration::from_secs(20), "then killed");
    assert_eq!(ctl.wait().await.expect("wait"), ExitStatus::Code(137));
    ctl.stop(Duration::from_secs(1))
        .await
        .expect("stop is idempotent");
    ctl.remove().await.expect("remove");
}

#[tokio::test]
async fn spec_reaches_the_container() {
    if !image::engine_or_skip("spec_reaches_the_container") {
        return;
    }
    image::ensure_images();
    let (node, _cleanup) = test_node("spec");
    let ex = executor(&node).await;
    let data = tempfile::tempdir().unwrap();
    let script =
        "test \"$GREETING\" = hi && test \"$(pwd)\" = /tmp && test \"$(cat /etc/hostname)\" = h1 \
                  && test \"$(cat /version)\" = 2 && echo ok > /data/out && echo x > /scratch/y";
    let mut t = task(&node, image::IMAGE_2, &["sh"]);
    {
        let c = container_of(&mut t);
        c.args = vec!["-c".into(), script.into()];
        c.env = vec!["GREETING=hi".into()];
        c.dir = "/tmp".into();
        c.hostname = "h1".into();
        c.labels = HashMap::from([("team".to_string(), "blue".to_string())]);
        c.stop_signal = "SIGINT".into();
        c.mounts = vec![
            Mount {
                r#type: MountType::Bind as i32,
                source: data.path().display().to_string(),
                target: "/data".into(),
                read_only: false,
            },
            Mount {
                r#type: MountType::Tmpfs as i32,
                target: "/scratch".into(),
                ..Default::default()
            },
        ];
    }
    t.spec.as_mut().unwrap().resources = Some(ResourceRequirements {
        limits: Some(Resources {
            nano_cpus: 500_000_000,
            memory_bytes: 64 << 20,
        }),
        reservations: Some(Resources {
            nano_cpus: 0,
            memory_bytes: 32 << 20,
        }),
    });
    let mut ctl = ex.controller(&t).expect("controller");
    ctl.prepare().await.expect("prepare");
    let started = ctl.start().await.expect("start");
    let id = &started.container_id;
    assert_eq!(ctl.wait().await.expect("wait"), ExitStatus::Code(0));
    assert_eq!(
        std::fs::read_to_string(data.path().join("out")).unwrap(),
        "ok\n"
    );
    assert_eq!(
        inspect(id, "{{.HostConfig.Memory}}"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        inspect(id, "{{.HostConfig.MemoryReservation}}"),
        (32u64 << 20).to_string()
    );
    assert_eq!(inspect(id, "{{.HostConfig.NanoCpus}}"), "500000000");
    assert_eq!(inspect(id, "{{.Config.StopSignal}}"), "SIGINT");
    assert_eq!(inspect(id, "{{index .Config.Labels \"team\"}}"), "blue");
    ctl.remove().await.expect("remove");
}

#[tokio::test]
async fn container_options_reach_the_engine() {
    if !image::engine_or_skip("container_options_reach_the_engine") {
        return;
    }
    image::ensure_images();
    let (node, _cleanup) = test_node("options");
    let ex = executor(&node).await;
    // Each option checked from inside, where the engine applied it.
    let script = "! touch /probe 2>/dev/null && grep -q 'db.local' /etc/hosts \
                  && grep -q 1.1.1.1 /etc/resolv.conf \
                  && test \"$(cat /proc/sys/net/core/somaxconn)\" = 1024 \
                  && test \"$(ulimit -n)\" = 1024";
    let mut t = task(&node, image::IMAGE_2, &["sh"]);
    {
        let c = container_of(&mut t);
        c.args = vec!["-c".into(), script.into()];
        c.read_only = true;
        c.init = Some(true);
        c.hosts = vec!["10.0.0.9 db db.local".into()];
        c.dns_config = Some(DnsConfig {
            nameservers: vec!["1.1.1.1".into()],
            ..Default::default()
        });
        c.sysctls = HashMap::from([("net.core.somaxconn".to_string(), "1024".to_string())]);
        c.capability_add = vec!["NET_ADMIN".into()];
        c.ulimits = vec![Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048,
        }];
        c.healthcheck = Some(HealthCheck {
            test: vec!["CMD".into(), "true".into()],
            interval_ns: 30_000_000_000,
            ..Default::default()
        });
    }
    t.spec.as_mut().unwrap().log_driver = Some(LogDriver {
        name: "json-file".into(),
        options: HashMap::from([("max-size".to_string(), "1m".to_string())]),
    });
    let mut ctl = ex.controller(&t).expect("controller");
    ctl.prepare().await.expect("prepare");
    let started = ctl.start().await.expect("start");
    let id = &started.container_id;
    assert_eq!(ctl.wait().await.expect("wait"), ExitStatus::Code(0));
    assert_eq!(inspect(id, "{{.HostConfig.ReadonlyRootfs}}"), "true");
    assert_eq!(inspect(id, "{{.HostConfig.Init}}"), "true");
    assert_eq!(inspect(id, "{{.HostConfig.CapAdd}}"), "[NET_ADMIN]");
    assert_eq!(inspect(id, "{{.HostConfig.LogConfig.Type}}"), "json-file");
    assert_eq!(inspect(id, "{{.Config.Healthcheck.Interval}}"), "30s");
    ctl.remove().await.expect("remove");
}

#[tokio::test]
async fn describe_reports_the_engine() {
    if !image::engine_or_skip("describe_reports_the_engine") {
        return;
    }
    let (node, _cleanup) = test_node("describe");
    let ex = executor(&node).await;
    let d = ex
        .describe(swarm_api::NodeDescription::default())
        .await
        .expect("describe");
    let engine = d.engine.expect("engine part");
    assert_eq!(
        engine.engine_version,
        image::docker(&["version", "--format", "{{.Server.Version}}"]).unwrap()
    );
    let cpus: i64 = image::docker(&["info", "--format", "{{.NCPU}}"])
        .unwrap()
        .parse()
        .unwrap();
    let r = d.resources.expect("resources");
    assert_eq!(r.nano_cpus, cpus * 1_000_000_000);
    assert!(r.memory_bytes > 0);
}

#[tokio::test]
async fn missing_image_is_rejected_quickly_not_hung() {
    if !image::engine_or_skip("missing_image_is_rejected_quickly_not_hung") {
        return;
    }
    let (node, _cleanup) = test_node("missing");
    let ex = executor(&node).await;
    let t = task(&node, "swarmd-test/absent:1", &["true"]);
    let began = Instant::now();
    let why = tokio::time::timeout(Duration::from_secs(60), rejected(&ex, &t))
        .await
        .expect("no hang");
    assert!(why.contains("image not found"), "{why}");
    assert!(why.contains("swarmd-test/absent:1"), "{why}");
    assert!(began.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn bad_input_is_rejected_with_the_engines_reason() {
    if !image::engine_or_skip("bad_input_is_rejected_with_the_engines_reason") {
        return;
    }
    image::ensure_images();
    let (node, _cleanup) = test_node("bad");
    let ex = executor(&node).await;

    let bad_ref = task(&node, "NOT/a:valid:ref", &["true"]);
    let why = rejected(&ex, &bad_ref).await;
    assert!(why.contains("invalid reference format"), "{why}");

    let mut no_source = task(&node, image::IMAGE_1, &["true"]);
    container_of(&mut no_source).mounts = vec![Mount {
        r#type: MountType::Bind as i32,
        source: "/nonexistent/swarmd-test-source".into(),
        target: "/data".into(),
        read_only: false,
    }];
    let why = rejected(&ex, &no_source).await;
    assert!(why.contains("bind source path does not exist"), "{why}");

    let mut tiny = task(&node, image::IMAGE_1, &["true"]);
    tiny.spec.as_mut().unwrap().resources = Some(ResourceRequirements {
        limits: Some(Resources {
            nano_cpus: 0,
            memory_bytes: 1 << 20,
        }),
        reservations: None,
    });
    let why = rejected(&ex, &tiny).await;
    assert!(why.contains("Minimum memory limit"), "{why}");
    assert!(
        image::containers_with(&format!("{LABEL_NODE_ID}={node}")).is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn restarted_agent_adopts_running_containers_and_removes_the_rest() {
    if !image::engine_or_skip("restarted_agent_adopts_running_containers_and_removes_the_rest") {
        return;
    }
    image::ensure_images();
    let (node, _cleanup) = test_node("adopt");
    let label = format!("{LABEL_NODE_ID}={node}");
    let first = executor(&node).await;
    let kept = task(&node, image::IMAGE_1, &["sleep", "300"]);
    let gone = task(&node, image::IMAGE_1, &["sleep", "300"]);
    let mut ids = HashMap::new();
    for t in [&kept, &gone] {
        let mut ctl = first.controller(t).expect("controller");
        ctl.prepare().await.expect("prepare");
        ids.insert(t.id.clone(), ctl.start().await.expect("start").container_id);
        // The controller is dropped as a stopping agent's would be: the container runs on.
    }
    assert!(first.outlives_agent());
    drop(first);

    let second = executor(&node).await;
    let adopted = second
        .adopt(&kept)
        .await
        .expect("adopt")
        .expect("the running container is found");
    assert_eq!(adopted.started.container_id, ids[&kept.id]);
    let stranger = task(&node, image::IMAGE_1, &["true"]);
    assert!(second.adopt(&stranger).await.expect("adopt").is_none());

    second
        .cleanup(HashSet::from([kept.id.clone()]))
        .await
        .expect("cleanup");
    assert_eq!(image::containers_with(&label), vec![ids[&kept.id].clone()]);
    assert_eq!(inspect(&ids[&kept.id], "{{.State.Running}}"), "true");

    // The adopted task is watched like any other: a kill from outside ends it.
    let mut ctl = adopted.controller;
    image::docker(&["kill", &ids[&kept.id]]).expect("docker kill");
    let exit = tokio::time::timeout(Duration::from_secs(20), ctl.wait())
        .await
        .expect("wait returns after the kill")
        .expect("wait");
    assert_eq!(exit, ExitStatus::Code(137));
    ctl.remove().await.expect("remove");
    assert!(image::containers_with(&label).is_empty());
}

fn with_check(t: &mut Task, test: &[&str], retries: i32) {
    container_of(t).healthcheck = Some(HealthCheck {
        test: test.iter().map(|s| s.to_string()).collect(),
        interval_ns: 200_000_000,
        timeout_ns: 5_000_000_000,
        start_period_ns: 0,
        retries,
    });
}

/// Creates the marker the check waits for, then expects Healthy; stops and removes the
/// container.
async fn healthy_once_marked(
    mut ctl: Box<dyn swarm_agent::executor::Controller>,
    mut checks: swarm_agent::executor::HealthChecks,
    container: &str,
) {
    image::docker(&["exec", container, "sh", "-c", "echo > /tmp/ready"]).expect("docker exec");
    let verdict = tokio::time::timeout(Duration::from_secs(30), checks.next())
        .await
        .expect("a verdict once the marker exists");
    assert_eq!(verdict, Some(Health::Healthy));
    drop(checks);
    ctl.stop(Duration::from_secs(1)).await.expect("stop");
    ctl.remove().await.expect("remove");
}

#[tokio::test]
async fn healthcheck_passes_once_its_marker_file_appears() {
    if !image::engine_or_skip("healthcheck_passes_once_its_marker_file_appears") {
        return;
    }
    image::ensure_images();
    let (node, _cleanup) = test_node("healthy");
    let ex = executor(&node).await;
    let mut t = task(&node, image::IMAGE_1, &["sleep", "300"]);
    with_check(&mut t, &["CMD-SHELL", "test -f /tmp/ready"], 1_000);
    let mut ctl = ex.controller(&t).expect("controller");
    ctl.prepare().await.expect("prepare");
    let mut checks = ctl.health().expect("the container has a healthcheck");
    let started = ctl.start().await.expect("start");
    // Checks fail every 200 ms meanwhile: no verdict (many retries allowed).
    let early = tokio::time::timeout(Duration::from_millis(1_500), checks.next()).await;
    assert!(early.is_err(), "a verdict before the marker: {early:?}");
    assert_eq!(
        inspect(&started.container_id, "{{.State.Health.Status}}"),
        "starting"
    );
    healthy_once_marked(ctl, checks, &started.container_id).await;
}

#[tokio::test]
async fn healthcheck_that_never_passes_is_unhealthy_and_none_has_no_checks() {
    if !image::engine_or_skip("healthcheck_that_never_passes_is_unhealthy_and_none_has_no_checks") {
        return;
    }
    image::ensure_images();
    let (node, _cleanup) = test_node("unhealthy");
    let ex = executor(&node).await;
    let mut t = task(&node, image::IMAGE_1, &["sleep", "300"]);
    with_check(&mut t, &["CMD", "sh", "-c", "echo still down; exit 1"], 2);
    let mut ctl = ex.controller(&t).expect("controller");
    ctl.prepare().await.expect("prepare");
    let mut checks = ctl.health().expect("the container has a healthcheck");
    ctl.start().await.expect("start");
    let verdict = tokio::time::timeout(Duration::from_secs(30), checks.next())
        .await
        .expect("a verdict");
    let Some(Health::Unhealthy(why)) = verdict else {
        panic!("unhealthy expected, got {verdict:?}");
    };
    assert!(
        why.contains("failed health checks in a row") && why.contains("still down"),
        "{why}"
    );
    ctl.stop(Duration::from_secs(1)).await.expect("stop");
    ctl.remove().await.expect("remove");

    // A disabled check, or none in spec and image: no checks, RUNNING at once.
    for test in [Some(&["NONE"][..]), None] {
        let mut t = task(&node, image::IMAGE_1, &["true"]);
        if let Some(test) = test {
            with_check(&mut t, test, 0);
        }
        let mut ctl = ex.controller(&t).expect("controller");
        ctl.prepare().await.expect("prepare");
        assert!(ctl.health().is_none(), "{test:?}");
        ctl.remove().await.expect("remove");
    }
}

/// IMAGE_1 with a `HEALTHCHECK` of its own (passing once `/tmp/ready` exists), made once.
fn image_with_healthcheck() -> &'static str {
    const TAG: &str = "swarmd-test/busybox:healthcheck";
    if image::docker(&["image", "inspect", TAG]).is_err() {
        let name = format!("swarmd-healthcheck-{}", swarm_api::ids::new_id());
        image::docker(&["create", "--name", &name, image::IMAGE_1]).expect("docker create");
        let made = image::docker(&[
            "commit",
            "--change",
            "HEALTHCHECK --interval=200ms --retries=1000 CMD test -f /tmp/ready",
            &name,
            TAG,
        ]);
        let _ = image::docker(&["rm", &name]);
        made.expect("docker commit");
    }
    TAG
}

#[tokio::test]
async fn the_images_healthcheck_counts_when_the_spec_has_none() {
    if !image::engine_or_skip("the_images_healthcheck_counts_when_the_spec_has_none") {
        return;
    }
    image::ensure_images();
    let tag = image_with_healthcheck();
    let (node, _cleanup) = test_node("imagecheck");
    let ex = executor(&node).await;
    let t = task(&node, tag, &["sleep", "300"]);
    let mut ctl = ex.controller(&t).expect("controller");
    ctl.prepare().await.expect("prepare");
    let mut checks = ctl.health().expect("the image's healthcheck");
    let started = ctl.start().await.expect("start");
    let early = tokio::time::timeout(Duration::from_millis(1_000), checks.next()).await;
    assert!(early.is_err(), "a verdict before the marker: {early:?}");
    healthy_once_marked(ctl, checks, &started.container_id).await;

    // The spec's ["NONE"] turns the image's check off.
    let mut off = task(&node, tag, &["true"]);
    with_check(&mut off, &["NONE"], 0);
    let mut ctl = ex.controller(&off).expect("controller");
    ctl.prepare().await.expect("prepare");
    assert!(ctl.health().is_none());
    ctl.remove().await.expect("remove");
}
