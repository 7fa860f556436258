//! Overlay networks through the Docker API, driven by the real `docker` CLI as a Swarm user
//! drives a manager: `network create|ls|inspect|rm`, `service create --network`, what
//! `service inspect`, task inspect and `docker info` show of them, and the refusals (another
//! driver, an overlapping subnet, removing a network in use). The raw-HTTP test covers what
//! the CLI cannot send or hides (status codes, IPAM configs it never builds, the deprecated
//! `Networks` field). Skipped, with a message, where no `docker` CLI is installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::docker::*;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Runs `docker ARGS`, requiring failure; returns what it printed.
fn docker_fails(s: &Swarm, args: &[&str]) -> String {
    let out = s.docker(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "docker {args:?} succeeded: {text}");
    text
}

/// `docker ARGS --format json`-style output parsed: the CLI's inspect prints a JSON array.
fn inspect(s: &Swarm, args: &[&str]) -> Value {
    let out = s.docker_ok(args);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v[0].clone()
}

#[test]
fn networks_through_the_docker_cli() {
    if !docker_installed() {
        return;
    }
    let s = Swarm::start();
    let id = s
        .docker_ok(&[
            "network",
            "create",
            "-d",
            "overlay",
            "--subnet",
            "10.20.0.0/24",
            "--label",
            "tier=back",
            "app",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 25, "the CLI prints the new network's ID: {id:?}");

    let ls = s.docker_ok(&[
        "network",
        "ls",
        "--format",
        "{{.ID}} {{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    assert!(
        ls.lines()
            .any(|l| l == format!("{} app overlay swarm", &id[..12])),
        "{ls}"
    );
    assert!(
        ls.lines().any(|l| l.ends_with(" ingress overlay swarm")),
        "{ls}"
    );
    // Docker's name filter is a pattern: `^app$` is the exact name.
    let only = s.docker_ok(&["network", "ls", "-q", "--filter", "name=^app$"]);
    assert_eq!(only.trim(), &id[..12], "{only}");

    // The allocator fills in the gateway shortly after the create.
    let net = wait_for("app's gateway", Duration::from_secs(20), || {
        let n = inspect(&s, &["network", "inspect", "app"]);
        (n["IPAM"]["Config"][0]["Gateway"] == "10.20.0.1").then_some(n)
    });
    assert_eq!(net["Id"], id.as_str());
    assert_eq!(net["Driver"], "overlay");
    assert_eq!(net["Scope"], "swarm");
    assert_eq!(net["IPAM"]["Config"][0]["Subnet"], "10.20.0.0/24");
    assert_eq!(net["Labels"]["tier"], "back");
    let vni = net["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
        .as_str()
        .unwrap_or("");
    assert!(vni.parse::<u32>().is_ok_and(|v| v >= 4096), "{net}");
    // An ID prefix names it too.
    let by_prefix = inspect(&s, &["network", "inspect", &id[..6]]);
    assert_eq!(by_prefix["Name"], "app");

    // What cannot be made here is refused, naming why, and makes nothing.
    let bridge = docker_fails(&s, &["network", "create", "-d", "bridge", "x"]);
    assert!(
        bridge.contains("Driver") && bridge.contains("bridge"),
        "{bridge}"
    );
    let overlap = docker_fails(
        &s,
        &[
            "network",
            "create",
            "-d",
            "overlay",
            "--subnet",
            "10.20.0.128/25",
            "other",
        ],
    );
    assert!(overlap.contains("overlaps network app"), "{overlap}");
    let ls = s.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = ls.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["app", "ingress"], "{ls}");

    // A service on the network: the CLI resolves the name, the service shows the ID.
    let out = s.docker_within(
        Duration::from_secs(90),
        &[
            "service",
            "create",
            "--network",
            "app",
            "--name",
            "web",
            "--replicas",
            "2",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    assert!(
        out.status.success(),
        "service create: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.node.log()
    );
    let svc = inspect(&s, &["service", "inspect", "web"]);
    assert_eq!(
        svc["Spec"]["TaskTemplate"]["Networks"],
        json!([{"Target": id}]),
        "{svc}"
    );
    assert_eq!(svc["Endpoint"]["Spec"]["Mode"], "vip", "{svc}");
    let vips = svc["Endpoint"]["VirtualIPs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(vips.len(), 1, "{svc}");
    assert_eq!(vips[0]["NetworkID"], id.as_str());
    let vip = vips[0]["Addr"].as_str().unwrap_or("");
    assert!(vip.starts_with("10.20.0.") && vip.ends_with("/24"), "{vip}");
    let pretty = s.docker_ok(&["service", "inspect", "--pretty", "web"]);
    assert!(
        pretty.lines().any(|l| l.trim() == "Networks: app"),
        "{pretty}"
    );

    // Each task holds an address of its own on the network, and shows the network.
    let ids = s.docker_ok(&["service", "ps", "-q", "web"]);
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let mut addrs = vec![vip.to_string()];
    for t in ids {
        let task = inspect(&s, &["inspect", "--type", "task", t]);
        let att = &task["NetworksAttachments"];
        assert_eq!(att.as_array().map(Vec::len), Some(1), "{task}");
        assert_eq!(att[0]["Network"]["ID"], id.as_str());
        assert_eq!(att[0]["Network"]["Spec"]["Name"], "app");
        let addr = att[0]["Addresses"][0].as_str().unwrap_or("").to_string();
        assert!(
            addr.starts_with("10.20.0.") && addr.ends_with("/24"),
            "{task}"
        );
        assert!(!addrs.contains(&addr), "{addr} given twice: {addrs:?}");
        addrs.push(addr);
    }

    let info = s.docker_ok(&["info"]);
    for line in [
        "Default Address Pool: 10.0.0.0/8",
        "SubnetSize: 24",
        "Data Path Port: 4789",
    ] {
        assert!(info.lines().any(|l| l.trim() == line), "{line}: {info}");
    }

    // In use: refused, naming the service; free once the service and its tasks are gone.
    let busy = docker_fails(&s, &["network", "rm", "app"]);
    assert!(busy.contains("in use by service web"), "{busy}");
    s.docker_ok(&["service", "rm", "web"]);
    wait_for(
        "the network to be removable",
        Duration::from_secs(60),
        || {
            s.docker(&["network", "rm", "app"])
                .status
                .success()
                .then_some(())
        },
    );
    let gone = docker_fails(&s, &["network", "inspect", "app"]);
    assert!(gone.contains("not found"), "{gone}");
    let ls = s.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls.trim(), "ingress", "{ls}");
}

#[test]
fn network_requests_as_clients_send_them() {
    let s = Swarm::start();
    let sock = &s.docker_sock;
    let create = |body: Value| api(sock, "POST", "/v1.41/networks/create", &body);

    let (code, body) = create(
        json!({"Name": "app", "CheckDuplicate": true, "Driver": "overlay",
        "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.30.0.0/24", "Gateway": "10.30.0.254"}]},
        "Attachable": true, "Labels": {"a": "b"}}),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["Warning"], "");
    let id = body["Id"].as_str().unwrap().to_string();
    let (code, net) = api(
        sock,
        "GET",
        &format!("/v1.41/networks/{id}?verbose=true"),
        &Value::Null,
    );
    assert_eq!(code, 200, "{net}");
    assert_eq!(net["Attachable"], true);
    assert_eq!(net["IPAM"]["Config"][0]["Gateway"], "10.30.0.254");
    assert_eq!(net["EnableIPv6"], false);

    // No driver is an overlay network; its subnet comes from the pool.
    let (code, body) = create(json!({"Name": "pooled"}));
    assert_eq!(code, 201, "{body}");
    let pooled = wait_for("pooled's subnet", Duration::from_secs(20), || {
        let (_, n) = api(sock, "GET", "/networks/pooled", &Value::Null);
        n["IPAM"]["Config"][0]["Subnet"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    });
    assert!(
        pooled.starts_with("10.") && pooled.ends_with("/24"),
        "{pooled}"
    );

    // Refusals: 400 naming the field, 409 for a name taken; nothing is created.
    let cases = [
        (json!({"Name": "x", "Driver": "macvlan"}), 400, "Driver"),
        (
            json!({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.40.0.0/24"}, {"Subnet": "10.41.0.0/24"}]}}),
            400,
            "IPAM.Config",
        ),
        (
            json!({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.40.0.0/16", "IPRange": "10.40.1.0/24"}]}}),
            400,
            "IPAM.Config[0].IPRange",
        ),
        (
            json!({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.30.0.0/16"}]}}),
            400,
            "overlaps network app",
        ),
        (json!({"Name": "x", "EnableIPv6": true}), 400, "EnableIPv6"),
        (json!({"Name": "app"}), 409, "app"),
    ];
    for (body, want, text) in cases {
        let (code, answer) = create(body.clone());
        let msg = answer["message"].as_str().unwrap_or("");
        assert!(
            code == want && msg.contains(text) && !msg.contains('\n'),
            "{body}: {code} {answer}"
        );
    }
    let (_, all) = api(sock, "GET", "/v1.41/networks", &Value::Null);
    assert_eq!(all.as_array().map(Vec::len), Some(3), "{all}");
    let q = "/v1.41/networks?filters=%7B%22driver%22%3A%7B%22overlay%22%3Atrue%7D%2C%22name%22%3A%7B%22app%22%3Atrue%7D%7D";
    let (code, some) = api(sock, "GET", q, &Value::Null);
    assert_eq!(code, 200, "{some}");
    assert_eq!(some.as_array().map(Vec::len), Some(1), "{some}");
    let (code, answer) = api(
        sock,
        "GET",
        "/v1.41/networks?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D",
        &Value::Null,
    );
    assert_eq!(code, 400, "{answer}");
    let (code, _) = api(sock, "GET", "/v1.41/networks/app?scope=local", &Value::Null);
    assert_eq!(code, 404);

    // The deprecated ServiceSpec.Networks moves into the task template; dnsrr round-trips
    // and takes no VIP.
    let (code, body) = api(
        sock,
        "POST",
        "/v1.41/services/create",
        &json!({"Name": "db", "Networks": [{"Target": "app", "Aliases": ["database"]}],
            "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1000"]}},
            "Mode": {"Replicated": {"Replicas": 1}}, "EndpointSpec": {"Mode": "dnsrr"}}),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        body["Warnings"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{body}"
    );
    let (_, svc) = api(sock, "GET", "/v1.41/services/db", &Value::Null);
    assert_eq!(
        svc["Spec"]["TaskTemplate"]["Networks"],
        json!([{"Target": id, "Aliases": ["database"]}]),
        "{svc}"
    );
    assert_eq!(svc["Spec"]["EndpointSpec"]["Mode"], "dnsrr");
    assert_eq!(svc["Endpoint"]["Spec"]["Mode"], "dnsrr");
    assert!(svc["Endpoint"].get("VirtualIPs").is_none(), "{svc}");
    let task = wait_for(
        "db's task to get its address",
        Duration::from_secs(30),
        || {
            let (_, tasks) = api(sock, "GET", "/v1.41/tasks", &Value::Null);
            tasks
                .as_array()?
                .iter()
                .find(|t| t["NetworksAttachments"][0]["Addresses"][0].is_string())
                .cloned()
        },
    );
    let addr = task["NetworksAttachments"][0]["Addresses"][0]
        .as_str()
        .unwrap();
    assert!(addr.starts_with("10.30.0."), "{task}");

    // A network in use: 400, as Docker's server answers for a swarm network; a missing one 404.
    let (code, answer) = api(sock, "DELETE", "/v1.41/networks/app", &Value::Null);
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("in use by service db")),
        "{answer}"
    );
    let (code, _) = api(sock, "DELETE", "/v1.41/networks/nope", &Value::Null);
    assert_eq!(code, 404);
    let (code, _) = raw(sock, "DELETE", "/v1.41/networks/pooled", "");
    assert_eq!(code, 204);
    // A service naming a network that does not exist is refused, naming it.
    let (code, answer) = api(
        sock,
        "POST",
        "/v1.41/services/create",
        &json!({"Name": "lost", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"},
            "Networks": [{"Target": "nowhere"}]}}),
    );
    assert_eq!(code, 404, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("nowhere")),
        "{answer}"
    );
}
