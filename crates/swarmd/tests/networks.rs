//! Networks end to end through the built binaries (one manager and one worker, sim executor):
//! the address pool set at bootstrap, the ingress network, networks created from the pool or
//! with their own subnet, services and tasks given VIPs and addresses from them, every bad
//! input refused in one line with nothing changed, `network rm` refused while in use and
//! clean once not, and the addresses kept across a manager restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn network<'a>(networks: &'a Value, name: &str) -> Option<&'a Value> {
    networks
        .as_array()?
        .iter()
        .find(|n| n["spec"]["annotations"]["name"] == name)
}

/// The allocated subnet of network `name`, once there is one.
fn allocated_subnet(ctl: &Ctl, name: &str) -> String {
    wait_for(&format!("network {name} allocated"), WAIT, || {
        let all = ctl.json(&["network", "ls"]);
        let subnet = network(&all, name)?["ipam"]["subnet"].as_str()?.to_string();
        (!subnet.is_empty()).then_some(subnet)
    })
}

/// Task ID → its addresses ("net id" → "a.b.c.d/n"), for the running tasks of `service`.
fn running_addresses(ctl: &Ctl, service: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let tasks = ctl.json(&["task", "ls", "--service", service]);
    let mut out = BTreeMap::new();
    for t in tasks.as_array().unwrap() {
        if t["status"]["state"] != "TASK_STATE_RUNNING" && t["status"]["state"] != 512 {
            continue;
        }
        let mut addrs = BTreeMap::new();
        for a in t["networks"].as_array().into_iter().flatten() {
            addrs.insert(
                a["network_id"].as_str().unwrap().to_string(),
                a["addresses"][0].as_str().unwrap().to_string(),
            );
        }
        out.insert(t["id"].as_str().unwrap().to_string(), addrs);
    }
    out
}

fn in_subnet(addr: &str, subnet: &str) -> bool {
    let (ip, _) = swarm_api::cidr::parse_address(addr).unwrap();
    swarm_api::cidr::Subnet::parse(subnet).unwrap().contains(ip)
}

#[test]
fn networks_give_services_and_tasks_addresses_refuse_bad_input_and_survive_a_restart() {
    let tmp = test_dir();
    let root = tmp.path();
    let addr = format!("127.0.0.1:{}", free_port());
    let socket = root.join("m.sock");
    let mut args = common::swarm::manager_args(&root.join("m"), "m", &socket, &addr, None);
    args.extend(
        [
            "--default-addr-pool",
            "10.88.0.0/16",
            "--default-addr-pool-mask-length",
            "26",
        ]
        .map(String::from),
    );
    let mut manager = Node::start("m", &root.join("m"), &args);
    let ctl = Ctl {
        socket: socket.clone(),
    };
    wait_for("the control socket", WAIT, || {
        ctl.run(&["node", "ls"]).status.success().then_some(())
    });
    let token = common::swarm::token(&ctl, "Worker");
    let worker_args: Vec<String> = [
        "-d",
        &root.join("w").display().to_string(),
        "--hostname",
        "w",
        "--executor",
        "sim",
        "--join-addr",
        &addr,
        "--join-token",
        &token,
    ]
    .map(String::from)
    .to_vec();
    let _worker = Node::start("w", &root.join("w"), &worker_args);
    // Tasks run on the worker only, so they outlive the manager's restart below.
    wait_for("the worker", WAIT, || {
        let nodes = ctl.json(&["node", "ls"]);
        (nodes.as_array()?.len() == 2).then_some(())
    });
    ctl.ok(&["node", "drain", "m"]);

    // The ingress network holds the pool's first subnet; a new network gets the next one.
    assert_eq!(allocated_subnet(&ctl, "ingress"), "10.88.0.0/26");
    ctl.ok(&["network", "create", "--name", "app", "--label", "tier=back"]);
    let app = allocated_subnet(&ctl, "app");
    assert_eq!(app, "10.88.0.64/26");
    ctl.ok(&[
        "network",
        "create",
        "--name",
        "db",
        "--subnet",
        "192.168.50.0/28",
    ]);
    assert_eq!(allocated_subnet(&ctl, "db"), "192.168.50.0/28");
    let before = ctl.json(&["network", "ls"]).as_array().unwrap().len();
    assert_eq!(before, 3);

    // Bad networks: one line naming the field, nothing created.
    for (args, want) in [
        (
            vec!["--name", "x", "--subnet", "10.88.0.96/27"],
            "Error: subnet: 10.88.0.96/27 overlaps network app (10.88.0.64/26)",
        ),
        (
            vec!["--name", "x", "--subnet", "10.1/24"],
            "Error: subnet: \"10.1\" is not an IPv4 address",
        ),
        (
            vec![
                "--name",
                "x",
                "--subnet",
                "10.9.0.0/24",
                "--gateway",
                "10.10.0.1",
            ],
            "Error: gateway: 10.10.0.1 is not a host address of subnet 10.9.0.0/24",
        ),
        (
            vec!["--name", "x", "--driver", "bridge"],
            "Error: driver: \"bridge\" is not supported: only overlay",
        ),
        (
            vec!["--name", "app"],
            "Error: name: network app already exists",
        ),
    ] {
        let mut a = vec!["network", "create"];
        a.extend(args);
        let err = ctl.error(&a);
        assert!(err.starts_with(want), "{a:?}: {err}");
    }
    assert_eq!(
        ctl.json(&["network", "ls"]).as_array().unwrap().len(),
        before
    );

    // A service on both networks: a VIP on each, and each task an address on each.
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "api",
        "--image",
        "img",
        "--replicas",
        "3",
        "--network",
        "app,alias=backend",
        "--network",
        "db",
    ]);
    let svc = ctl.json(&["service", "inspect", "api"]);
    let vips = svc["endpoint"]["virtual_ips"].as_array().unwrap().clone();
    assert_eq!(vips.len(), 2, "{svc}");
    let nets = ctl.json(&["network", "ls"]);
    let app_id = network(&nets, "app").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let app_vip = vips
        .iter()
        .find(|v| v["network_id"] == app_id.as_str())
        .unwrap()["addr"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(in_subnet(&app_vip, &app), "{app_vip}");
    let addrs = wait_for("3 api tasks running", WAIT, || {
        let a = running_addresses(&ctl, "api");
        (a.len() == 3).then_some(a)
    });
    let mut seen = HashSet::from([app_vip.clone()]);
    for (task, on) in &addrs {
        assert_eq!(on.len(), 2, "task {task}: {on:?}");
        assert!(in_subnet(&on[&app_id], &app), "{on:?}");
        assert!(seen.insert(on[&app_id].clone()), "duplicate address {on:?}");
    }
    let text = ctl.ok(&["service", "inspect", "api"]);
    assert!(
        text.contains(&format!("VIP {app_vip}, aliases backend")),
        "{text}"
    );
    let task_id = addrs.keys().next().unwrap();
    let text = ctl.ok(&["task", "inspect", task_id]);
    assert!(text.contains(&addrs[task_id][&app_id]), "{text}");
    let text = ctl.ok(&["network", "inspect", "app"]);
    assert!(
        text.contains(&app_vip) && text.contains("VXLAN ID"),
        "{text}"
    );

    // Bad services: one line naming the field, nothing created.
    for (args, want) in [
        (vec!["--network", "nope"], "Error: network: nope not found"),
        (
            vec!["--network", "ingress"],
            "Error: network: ingress is the ingress network",
        ),
        (
            vec![
                "--endpoint-mode",
                "dnsrr",
                "-p",
                "published=8080,target=80,mode=ingress",
            ],
            "Error: endpoint-mode: dnsrr cannot be used with ports published in ingress mode",
        ),
        (
            vec!["--network", "db", "--replicas", "20"],
            // A /28: 14 hosts, less the gateway, api's 3 tasks and VIP.
            "Error: replicas: network db (192.168.50.0/28) has 9 free addresses, 21 needed",
        ),
    ] {
        let mut a = vec!["service", "create", "--name", "bad", "--image", "img"];
        a.extend(args);
        let err = ctl.error(&a);
        assert!(err.starts_with(want), "{a:?}: {err}");
    }
    assert_eq!(
        ctl.json(&["service", "ls"]).as_array().unwrap().len(),
        1,
        "no bad service was created"
    );
    let err = ctl.error(&["network", "rm", "app"]);
    assert_eq!(err, "Error: network app is in use by service api");

    // A restarted manager keeps every address, and hands out no new ones.
    manager.terminate();
    manager.spawn();
    wait_for("the manager back", WAIT, || {
        ctl.run(&["service", "ls"]).status.success().then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let svc = ctl.json(&["service", "inspect", "api"]);
    assert_eq!(svc["endpoint"]["virtual_ips"].as_array().unwrap(), &vips);
    assert_eq!(running_addresses(&ctl, "api"), addrs);

    // Off db: the VIP there goes, new tasks have only app.
    ctl.ok(&["service", "update", "api", "--network-rm", "db"]);
    wait_for("api off db", WAIT, || {
        let svc = ctl.json(&["service", "inspect", "api"]);
        let vips = svc["endpoint"]["virtual_ips"].as_array()?.len();
        let a = running_addresses(&ctl, "api");
        (vips == 1 && a.len() == 3 && a.values().all(|on| on.len() == 1)).then_some(())
    });
    wait_for("network db removable", WAIT, || {
        ctl.run(&["network", "rm", "db"])
            .status
            .success()
            .then_some(())
    });

    // Once the service and its tasks are gone, the network goes too.
    ctl.ok(&["service", "rm", "api"]);
    wait_for("network app removable", WAIT, || {
        ctl.run(&["network", "rm", "app"])
            .status
            .success()
            .then_some(())
    });
    let left = ctl.json(&["network", "ls"]);
    let names: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["spec"]["annotations"]["name"].as_str())
        .collect();
    assert_eq!(names, ["ingress"]);
}
