//! Requests shaped as Docker SDKs send them, on the Docker API socket of a one-manager swarm:
//! `null` for every field left out, lowercase keys, nanosecond durations, large bodies on
//! routes we do not serve, stale versions. Each answer is checked against what Docker's own
//! server does, and each change through `swarmctl` (what was stored), not only through the
//! API's own answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::docker::*;
use serde_json::{json, Value};
use std::time::Duration;

fn create(s: &Swarm, spec: &Value) -> String {
    let (code, body) = api(&s.docker_sock, "POST", "/v1.41/services/create", spec);
    assert_eq!(code, 201, "{body}");
    body["ID"].as_str().unwrap().to_string()
}

fn inspect(s: &Swarm, id: &str) -> Value {
    let (code, body) = api(
        &s.docker_sock,
        "GET",
        &format!("/v1.41/services/{id}"),
        &Value::Null,
    );
    assert_eq!(code, 200, "{body}");
    body
}

/// The service as stored, through the control socket.
fn stored(s: &Swarm, name: &str) -> Value {
    s.ctl
        .json(&["service", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["spec"]["annotations"]["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("service {name} not stored"))
}

#[test]
fn sdk_bodies_with_nulls_and_lowercase_keys_mean_what_they_mean_to_docker() {
    let s = Swarm::start();
    // Docker's server takes null as absent and keys in any case: this is a global service
    // with start-first updates and rollbacks.
    let id = create(
        &s,
        &json!({
            "Name": "sdk-global", "Labels": null,
            "TaskTemplate": {
                "ContainerSpec": {"Image": "busybox", "Command": null, "Args": ["sleep", "1000"],
                                  "Env": null, "Mounts": null, "Hosts": null},
                "Networks": null, "Resources": null, "RestartPolicy": null, "Placement": null,
                "LogDriver": null
            },
            "mode": {"global": {}},
            "UpdateConfig": {"parallelism": 2, "order": "start-first"},
            "rollback_config": null,
            "RollbackConfig": {"Order": "start-first"},
            "EndpointSpec": null
        }),
    );
    let spec = &inspect(&s, &id)["Spec"];
    assert!(spec["Mode"]["Global"].is_object(), "{spec}");
    assert_eq!(spec["UpdateConfig"]["Parallelism"], 2, "{spec}");
    assert_eq!(spec["UpdateConfig"]["Order"], "start-first", "{spec}");
    assert_eq!(spec["RollbackConfig"]["Order"], "start-first", "{spec}");
    let ours = stored(&s, "sdk-global");
    assert!(ours["spec"]["mode"]["Global"].is_object(), "{ours}");

    // Replicated, then scaled the way an SDK does it: lowercase keys, nulls, the version read.
    let id = create(
        &s,
        &json!({"name": "sdk-web", "taskTemplate": {"containerSpec": {"image": "busybox",
                "args": ["sleep", "1000"]}}, "mode": {"replicated": {"replicas": 2}}}),
    );
    assert_eq!(
        stored(&s, "sdk-web")["spec"]["mode"]["Replicated"]["replicas"],
        2
    );
    let current = inspect(&s, &id);
    let version = current["Version"]["Index"].as_u64().unwrap();
    let mut spec = current["Spec"].clone();
    spec["Mode"] = json!({"replicated": {"replicas": 4}});
    spec["TaskTemplate"]["ContainerSpec"]["Command"] = Value::Null;
    let (code, body) = api(
        &s.docker_sock,
        "POST",
        &format!("/v1.41/services/{id}/update?version={version}"),
        &spec,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        stored(&s, "sdk-web")["spec"]["mode"]["Replicated"]["replicas"],
        4
    );
}

#[test]
fn durations_keep_every_nanosecond() {
    let s = Swarm::start();
    let id = create(
        &s,
        &json!({
            "Name": "ns",
            "TaskTemplate": {
                "ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1000"],
                                  "StopGracePeriod": 1_500_000_001i64,
                                  "HealthCheck": {"Test": ["CMD", "true"], "Interval": 1_000_999,
                                                  "Timeout": 1_000_001, "StartPeriod": 1_000_007}},
                "RestartPolicy": {"Condition": "on-failure", "Delay": 250_000, "Window": 1}
            },
            "UpdateConfig": {"Delay": 1, "Monitor": 2_000_000_003i64},
            "RollbackConfig": {"Delay": 999_999, "Monitor": 5}
        }),
    );
    let spec = &inspect(&s, &id)["Spec"];
    let c = &spec["TaskTemplate"]["ContainerSpec"];
    assert_eq!(c["StopGracePeriod"], 1_500_000_001i64, "{c}");
    assert_eq!(c["HealthCheck"]["Interval"], 1_000_999, "{c}");
    assert_eq!(c["HealthCheck"]["Timeout"], 1_000_001, "{c}");
    assert_eq!(c["HealthCheck"]["StartPeriod"], 1_000_007, "{c}");
    let r = &spec["TaskTemplate"]["RestartPolicy"];
    assert_eq!(
        (r["Delay"].clone(), r["Window"].clone()),
        (json!(250_000), json!(1))
    );
    assert_eq!(spec["UpdateConfig"]["Delay"], 1);
    assert_eq!(spec["UpdateConfig"]["Monitor"], 2_000_000_003i64);
    assert_eq!(spec["RollbackConfig"]["Delay"], 999_999);
    assert_eq!(spec["RollbackConfig"]["Monitor"], 5);
    // The orchestrator works in milliseconds: the stored grace period is 1,500 ms.
    let ours = stored(&s, "ns");
    assert_eq!(
        ours["spec"]["task"]["container"]["stop_grace_period_ms"],
        1_500
    );
}

#[test]
fn an_unserved_route_reads_the_body_before_answering() {
    let s = Swarm::start();
    // 300 KB is more than the socket buffers hold: answering before reading it closed the
    // connection under a client still writing (`write: broken pipe`), about half the time.
    let body = format!("{{\"Image\":\"{}\"}}", "x".repeat(300 * 1024));
    for path in [
        "/v1.41/containers/create",
        "/v1.41/images/load",
        "/v1.41/services/create/extra",
    ] {
        for i in 0..10 {
            let (code, answer) = try_raw(&s.docker_sock, "POST", path, &body)
                .unwrap_or_else(|e| panic!("{path} try {i}: {e}"));
            assert_eq!(code, 404, "{answer}");
            assert!(answer.contains("page not found"), "{answer}");
        }
    }
    // A served route answers the same way whatever it refuses.
    let (code, answer) = try_raw(&s.docker_sock, "POST", "/v1.12/services/create", &body).unwrap();
    assert_eq!(code, 400, "{answer}");
    // Bodies over the 4 MiB cap: `hostile_clients.rs`.
}

#[test]
fn stale_versions_and_swarm_membership_answer_in_dockers_words() {
    let s = Swarm::start();
    let id = create(
        &s,
        &json!({"Name": "v", "TaskTemplate": {"ContainerSpec": {"Image": "busybox",
                "Args": ["sleep", "1000"]}}}),
    );
    let current = inspect(&s, &id);
    let version = current["Version"]["Index"].as_u64().unwrap();
    let spec = current["Spec"].clone();
    let path = format!("/v1.41/services/{id}/update?version={version}");
    let (code, body) = api(&s.docker_sock, "POST", &path, &spec);
    assert_eq!(code, 200, "{body}");
    // The same version again is stale now: SDK retry helpers look for these words.
    let (code, body) = api(&s.docker_sock, "POST", &path, &spec);
    assert_eq!(code, 409, "{body}");
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains("update out of sequence"), "{msg}");

    for route in ["/v1.41/swarm/join", "/v1.41/swarm/init"] {
        let (code, body) = api(
            &s.docker_sock,
            "POST",
            route,
            &json!({"RemoteAddrs": ["127.0.0.1:2377"], "JoinToken": "SWMTKN-1-x",
                    "ListenAddr": "0.0.0.0:2377"}),
        );
        assert_eq!(code, 503, "{route}: {body}");
        let msg = body["message"].as_str().unwrap();
        assert!(msg.contains("already part of a swarm"), "{msg}");
    }
    assert_eq!(s.ctl.json(&["node", "ls"]).as_array().unwrap().len(), 1);
}

#[test]
fn filters_info_and_defaults_answer_as_docker() {
    let s = Swarm::start();
    create(
        &s,
        &json!({"Name": "stacked", "Labels": {"com.docker.stack.namespace": "st"},
                "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1000"]}},
                "Mode": {"Replicated": {"Replicas": 1}}}),
    );
    create(
        &s,
        &json!({"Name": "other", "TaskTemplate": {"ContainerSpec": {"Image": "busybox",
                "Args": ["sleep", "1000"]}}}),
    );
    // docker stack ps: tasks by their service's label.
    let q = "/v1.41/tasks?filters=%7B%22label%22%3A%7B%22com.docker.stack.namespace%3Dst%22%3Atrue%7D%7D";
    let tasks = common::wait_for("the stack's task", Duration::from_secs(30), || {
        let (code, tasks) = api(&s.docker_sock, "GET", q, &Value::Null);
        assert_eq!(code, 200, "{tasks}");
        (tasks.as_array()?.len() == 1).then_some(tasks)
    });
    assert_eq!(
        tasks[0]["ServiceID"],
        stored(&s, "stacked")["id"],
        "{tasks}"
    );

    // A mode that does not exist is an error, as in Docker; a real one filters.
    let (code, body) = api(
        &s.docker_sock,
        "GET",
        "/v1.41/services?filters=%7B%22mode%22%3A%7B%22bogus%22%3Atrue%7D%7D",
        &Value::Null,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("mode"), "{body}");
    let (code, body) = api(
        &s.docker_sock,
        "GET",
        "/v1.41/services?filters=%7B%22mode%22%3A%7B%22global%22%3Atrue%7D%7D",
        &Value::Null,
    );
    assert_eq!((code, body), (200, json!([])));

    // insertDefaults: what the swarm applies to options left out.
    let (_, plain) = api(&s.docker_sock, "GET", "/v1.41/services/other", &Value::Null);
    assert!(plain["Spec"]["UpdateConfig"].is_null(), "{plain}");
    let (_, full) = api(
        &s.docker_sock,
        "GET",
        "/v1.41/services/other?insertDefaults=true",
        &Value::Null,
    );
    let spec = &full["Spec"];
    assert_eq!(spec["UpdateConfig"]["Parallelism"], 1, "{spec}");
    assert_eq!(spec["UpdateConfig"]["Monitor"], 5_000_000_000i64, "{spec}");
    assert_eq!(spec["RollbackConfig"]["FailureAction"], "pause", "{spec}");
    assert_eq!(spec["TaskTemplate"]["RestartPolicy"]["Condition"], "any");
    assert_eq!(
        spec["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"],
        10_000_000_000i64
    );

    // /info and /version carry what `docker info` and `docker version` print.
    let (_, info) = api(&s.docker_sock, "GET", "/v1.41/info", &Value::Null);
    assert!(info["MemTotal"].as_u64().unwrap() > 0, "{info}");
    assert!(!info["SystemTime"].as_str().unwrap().is_empty(), "{info}");
    assert_eq!(info["Swarm"]["LocalNodeState"], "active");
    assert_eq!(info["Swarm"]["ControlAvailable"], true);
    assert!(info["Swarm"]["Cluster"]["ID"].as_str().unwrap().len() > 5);
    let (_, version) = api(&s.docker_sock, "GET", "/v1.41/version", &Value::Null);
    for field in ["GitCommit", "GoVersion", "BuildTime"] {
        assert!(
            !version[field].as_str().unwrap_or("").is_empty(),
            "{field}: {version}"
        );
    }
    // Docker's Server header: Name/version (os).
    let mut c = std::os::unix::net::UnixStream::connect(&s.docker_sock).unwrap();
    use std::io::{Read, Write};
    c.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut head = String::new();
    c.read_to_string(&mut head).unwrap();
    let server = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("server:"))
        .unwrap_or("");
    assert!(server.ends_with("(linux)"), "{head}");
}
