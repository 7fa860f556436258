//! Every field of Docker's ServiceSpec and TaskSpec (API 1.41), one at a time: a service is
//! created through the Docker API with the field set, then inspected. Each field has one of
//! three outcomes, the same the README's table gives it: it comes back as sent
//! (`RoundTrip`; the deprecated `Networks` comes back where Docker moves it, `MovedTo`),
//! the create is refused with 400 naming it (`Refused`), or it is accepted with a
//! `Warnings` entry naming it (`Warned`). Nothing is silently dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::docker::*;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    RoundTrip,
    /// Comes back as sent, at the pointer given.
    MovedTo(&'static str),
    /// Refused with 400; the message contains the text given.
    Refused(&'static str),
    /// Accepted; a warning contains the text given.
    Warned(&'static str),
}

use Outcome::*;

const C: &str = "/TaskTemplate/ContainerSpec";

/// (JSON pointer into the spec, value set there, outcome); `net` is a network's ID (which
/// is how a service's networks read back, whatever name the create gave).
fn fields(port: u16, net: &str) -> Vec<(String, Value, Outcome)> {
    let c = |p: &str| format!("{C}/{p}");
    let t = |p: &str| format!("/TaskTemplate/{p}");
    let update = json!({"Parallelism": 2, "Delay": 1_000_001, "FailureAction": "rollback",
                        "Monitor": 7, "MaxFailureRatio": 0.5, "Order": "start-first"});
    let mut rollback = update.clone();
    rollback["FailureAction"] = json!("continue");
    vec![
        // ServiceSpec
        ("/Labels".into(), json!({"tier": "front"}), RoundTrip),
        (
            "/Mode".into(),
            json!({"Replicated": {"Replicas": 0}}),
            RoundTrip,
        ),
        ("/Mode".into(), json!({"Global": {}}), RoundTrip),
        (
            "/Mode".into(),
            json!({"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 2}}),
            RoundTrip,
        ),
        ("/Mode".into(), json!({"GlobalJob": {}}), RoundTrip),
        ("/UpdateConfig".into(), update.clone(), RoundTrip),
        ("/RollbackConfig".into(), rollback, RoundTrip),
        (
            "/RollbackConfig/FailureAction".into(),
            json!("rollback"),
            Refused("RollbackConfig.FailureAction"),
        ),
        (
            "/Networks".into(),
            json!([{"Target": net, "Aliases": ["n"]}]),
            MovedTo("/TaskTemplate/Networks"),
        ),
        ("/EndpointSpec/Mode".into(), json!("dnsrr"), RoundTrip),
        ("/EndpointSpec/Mode".into(), json!("vip"), RoundTrip),
        (
            "/EndpointSpec/Mode".into(),
            json!("anycast"),
            Refused("EndpointSpec.Mode"),
        ),
        (
            "/EndpointSpec/Ports".into(),
            json!([{"Protocol": "udp", "TargetPort": 53, "PublishedPort": port,
                    "PublishMode": "host", "Name": "dns"}]),
            RoundTrip,
        ),
        (
            "/EndpointSpec/Ports".into(),
            json!([{"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress"}]),
            RoundTrip,
        ),
        // TaskSpec
        (
            t("PluginSpec"),
            json!({"Name": "p"}),
            Refused("TaskTemplate.PluginSpec"),
        ),
        (
            t("NetworkAttachmentSpec"),
            json!({"ContainerID": "x"}),
            Refused("TaskTemplate.NetworkAttachmentSpec"),
        ),
        (
            t("Runtime"),
            json!("plugin"),
            Refused("TaskTemplate.Runtime"),
        ),
        (
            t("Resources"),
            json!({"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 67_108_864},
                   "Reservations": {"NanoCPUs": 1_000, "MemoryBytes": 1_024}}),
            RoundTrip,
        ),
        (
            t("Resources/Limits/Pids"),
            json!(64),
            Warned("TaskTemplate.Resources.Limits.Pids"),
        ),
        (
            t("Resources/Reservations/GenericResources"),
            json!([{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 1}}]),
            Warned("TaskTemplate.Resources.Reservations.GenericResources"),
        ),
        (
            t("RestartPolicy"),
            json!({"Condition": "on-failure", "Delay": 1, "MaxAttempts": 3, "Window": 2}),
            RoundTrip,
        ),
        (
            t("Placement/Constraints"),
            json!(["node.role==manager"]),
            RoundTrip,
        ),
        (
            t("Placement/Preferences"),
            json!([{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]),
            RoundTrip,
        ),
        (t("Placement/MaxReplicas"), json!(2), RoundTrip),
        (
            t("Placement/Platforms"),
            json!([{"Architecture": "amd64", "OS": "linux"}]),
            Warned("TaskTemplate.Placement.Platforms"),
        ),
        (
            t("Networks"),
            json!([{"Target": net, "Aliases": ["api", "api.local"]}]),
            RoundTrip,
        ),
        (
            t("Networks"),
            json!([{"Target": net, "DriverOpts": {"com.docker.network.driver.mtu": "1400"}}]),
            Warned("TaskTemplate.Networks[0].DriverOpts"),
        ),
        (
            t("Networks"),
            json!([{"Aliases": ["api"]}]),
            Refused("TaskTemplate.Networks[0].Target"),
        ),
        (
            t("LogDriver"),
            json!({"Name": "json-file", "Options": {"max-size": "1m"}}),
            RoundTrip,
        ),
        (t("ForceUpdate"), json!(3), RoundTrip),
        // ContainerSpec
        (c("Labels"), json!({"a": "b"}), RoundTrip),
        (c("Command"), json!(["sh", "-c"]), RoundTrip),
        (c("Args"), json!(["sleep 1000"]), RoundTrip),
        (c("Hostname"), json!("box"), RoundTrip),
        (c("Env"), json!(["A=1", "B=2"]), RoundTrip),
        (c("Dir"), json!("/tmp"), RoundTrip),
        (c("User"), json!("nobody"), RoundTrip),
        (c("Groups"), json!(["wheel", "audio"]), RoundTrip),
        (
            c("Privileges"),
            json!({"SELinuxContext": {"Disable": true}}),
            Warned("ContainerSpec.Privileges"),
        ),
        (
            c("Privileges"),
            json!({"CredentialSpec": {"File": "spec.json"}}),
            Warned("ContainerSpec.Privileges"),
        ),
        (c("TTY"), json!(true), RoundTrip),
        (c("OpenStdin"), json!(true), RoundTrip),
        (c("ReadOnly"), json!(true), RoundTrip),
        (
            c("Mounts"),
            json!([{"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": true},
                   {"Type": "tmpfs", "Target": "/scratch"}]),
            RoundTrip,
        ),
        (
            c("Mounts"),
            json!([{"Type": "bind", "Source": "/tmp", "Target": "/t",
                    "BindOptions": {"Propagation": "rshared"}}]),
            Warned("Mounts[0].BindOptions"),
        ),
        (
            c("Mounts"),
            json!([{"Type": "volume", "Target": "/v", "VolumeOptions": {"NoCopy": true}}]),
            Warned("Mounts[0].VolumeOptions"),
        ),
        (
            c("Mounts"),
            json!([{"Type": "tmpfs", "Target": "/s", "TmpfsOptions": {"SizeBytes": 1024}}]),
            Warned("Mounts[0].TmpfsOptions"),
        ),
        (
            c("Mounts"),
            json!([{"Type": "bind", "Source": "/tmp", "Target": "/t", "Consistency": "cached"}]),
            Warned("Mounts[0].Consistency"),
        ),
        (c("StopSignal"), json!("SIGINT"), RoundTrip),
        (c("StopGracePeriod"), json!(1_500_000_001i64), RoundTrip),
        (
            c("HealthCheck"),
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_001i64, "Timeout": 1_000_002,
                   "Retries": 3, "StartPeriod": 1_000_004}),
            RoundTrip,
        ),
        (c("Hosts"), json!(["10.0.0.1 db db.local"]), RoundTrip),
        (
            c("DNSConfig"),
            json!({"Nameservers": ["1.1.1.1"], "Search": ["example.com"],
                   "Options": ["ndots:2"]}),
            RoundTrip,
        ),
        (
            c("Secrets"),
            json!([{"File": {"Name": "db.pw", "UID": "0", "GID": "0", "Mode": 292},
                    "SecretName": "db"}]),
            RoundTrip,
        ),
        (
            c("Secrets"),
            json!([{"File": {"Name": "db.pw", "UID": "1000", "GID": "0", "Mode": 256},
                    "SecretName": "db"}]),
            Warned("Secrets[0].File"),
        ),
        (
            c("Configs"),
            json!([{"File": {"Name": "app.conf", "UID": "0", "GID": "0", "Mode": 292},
                    "ConfigName": "conf"}]),
            RoundTrip,
        ),
        (c("Isolation"), json!("default"), RoundTrip),
        (
            c("Isolation"),
            json!("hyperv"),
            Warned("ContainerSpec.Isolation"),
        ),
        (c("Init"), json!(true), RoundTrip),
        (c("Init"), json!(false), RoundTrip),
        (
            c("Sysctls"),
            json!({"net.core.somaxconn": "1024"}),
            RoundTrip,
        ),
        (c("CapabilityAdd"), json!(["NET_ADMIN"]), RoundTrip),
        (c("CapabilityDrop"), json!(["MKNOD"]), RoundTrip),
        (
            c("Ulimits"),
            json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}]),
            RoundTrip,
        ),
    ]
}

/// Sets `value` at `pointer` in `doc`, creating the objects on the way.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let mut at = doc;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, key) in parts.iter().enumerate() {
        let obj = at.as_object_mut().unwrap();
        if i == parts.len() - 1 {
            obj.insert(key.to_string(), value);
            return;
        }
        at = obj.entry(key.to_string()).or_insert_with(|| json!({}));
    }
}

/// Whether everything `sent` says is in `got` (the answer may add what the swarm fills in,
/// such as a secret's ID).
fn contains(got: &Value, sent: &Value) -> bool {
    match (got, sent) {
        (Value::Object(g), Value::Object(s)) => s
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|gv| contains(gv, v))),
        (Value::Array(g), Value::Array(s)) => {
            g.len() == s.len() && g.iter().zip(s).all(|(a, b)| contains(a, b))
        }
        (Value::Number(g), Value::Number(s)) => g.as_f64() == s.as_f64(),
        _ => got == sent,
    }
}

#[test]
fn every_spec_field_round_trips_or_is_refused_or_warned_by_name() {
    let s = Swarm::start();
    s.ctl.ok(&["secret", "create", "db", "--data", "pw"]);
    s.ctl.ok(&["config", "create", "conf", "--data", "x=1"]);
    let (code, net) = api(
        &s.docker_sock,
        "POST",
        "/v1.41/networks/create",
        &json!({"Name": "net", "Driver": "overlay"}),
    );
    assert_eq!(code, 201, "{net}");
    let net = net["Id"].as_str().unwrap().to_string();
    let port = common::free_port();
    let mut failures = Vec::new();
    for (i, (pointer, value, outcome)) in fields(port, &net).into_iter().enumerate() {
        let name = format!("f{i}");
        // No replicas, so the table starts no tasks (Mode rows set their own).
        let mut spec = json!({
            "Name": name,
            "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1000"]}},
            "Mode": {"Replicated": {"Replicas": 0}}
        });
        set(&mut spec, &pointer, value.clone());
        let (code, body) = api(&s.docker_sock, "POST", "/v1.41/services/create", &spec);
        let warnings: Vec<String> = body["Warnings"]
            .as_array()
            .map(|w| {
                w.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        let problem = match outcome {
            Refused(text) => {
                let msg = body["message"].as_str().unwrap_or("");
                (code != 400 || !msg.contains(text))
                    .then(|| format!("expected 400 naming {text:?}, got {code} {body}"))
            }
            Warned(text) => (code != 201 || !warnings.iter().any(|w| w.contains(text)))
                .then(|| format!("expected 201 with a warning naming {text:?}, got {code} {body}")),
            RoundTrip | MovedTo(_) => {
                let back_at = match outcome {
                    MovedTo(p) => p,
                    _ => pointer.as_str(),
                };
                if code != 201 {
                    Some(format!("expected 201, got {code} {body}"))
                } else if !warnings.is_empty() {
                    Some(format!("unexpected warnings {warnings:?}"))
                } else {
                    let (_, got) = api(
                        &s.docker_sock,
                        "GET",
                        &format!("/v1.41/services/{name}"),
                        &Value::Null,
                    );
                    let back = got["Spec"].pointer(back_at).cloned().unwrap_or(Value::Null);
                    (!contains(&back, &value)).then(|| format!("sent {value}, read back {back}"))
                }
            }
        };
        if let Some(p) = problem {
            failures.push(format!("{pointer} = {value}: {p}"));
        }
        if code == 201 {
            let (code, body) = api(
                &s.docker_sock,
                "DELETE",
                &format!("/v1.41/services/{name}"),
                &Value::Null,
            );
            assert_eq!(code, 200, "{body}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Refused specs created nothing, and every other one was removed.
    let left = s.ctl.json(&["service", "ls"]);
    assert_eq!(left.as_array().unwrap().len(), 0, "{left}");
}
