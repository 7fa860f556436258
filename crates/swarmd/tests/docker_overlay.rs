//! Containers on swarm networks (one node, the machine's Docker engine, images built locally):
//! a container of a task attached to a network runs with no engine network, and the agent
//! plugs its namespace (named `swarm-<task id>`) into the network once it runs. The client
//! container resolves the service to its VIP through its own `/etc/resolv.conf`, the VIP
//! reaches both replicas, the container reaches a server outside through NAT although the
//! machine's Docker drops forwarded traffic by default, and once the services are gone
//! nothing of ours is left.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../../agent/tests/support/docker_image.rs"]
mod image;

use common::overlay::*;
use common::*;

/// A namespace of the test's own behind a veth from the machine's namespace, serving a page
/// at `addr`:7002; removed (namespace, link, server) on drop.
struct Outside {
    ns: String,
    link: String,
    addr: String,
    server: std::process::Child,
    _www: tempfile::TempDir,
}

impl Outside {
    fn start() -> Outside {
        let k = std::process::id() % 200 + 20;
        let ns = format!("swout{}", std::process::id() % 10_000);
        let link = format!("swo{}", std::process::id() % 10_000);
        let (near, addr) = (format!("10.251.{k}.1"), format!("10.251.{k}.2"));
        let www = tempfile::tempdir().unwrap();
        std::fs::write(www.path().join("index.html"), "outside\n").unwrap();
        let sh = |args: &[&str]| {
            let out = std::process::Command::new(args[0])
                .args(&args[1..])
                .output()
                .unwrap();
            assert!(out.status.success(), "{args:?}: {:?}", out);
        };
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &ns])
            .output();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &link])
            .output();
        sh(&["ip", "netns", "add", &ns]);
        sh(&[
            "ip", "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        sh(&["ip", "addr", "add", &format!("{near}/30"), "dev", &link]);
        sh(&["ip", "link", "set", &link, "up"]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/30"),
            "dev",
            "eth0",
        ]);
        sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        let server = std::process::Command::new("nsenter")
            .arg(format!("--net=/run/netns/{ns}"))
            .args(["busybox", "httpd", "-f", "-p"])
            .arg(format!("{addr}:7002"))
            .arg("-h")
            .arg(www.path())
            .spawn()
            .unwrap();
        Outside {
            ns,
            link,
            addr,
            server,
            _www: www,
        }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.link])
            .output();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .output();
    }
}

#[test]
fn containers_join_networks_resolve_services_and_reach_them_through_the_vip() {
    if !image::engine_or_skip("containers_join_networks") {
        return;
    }
    image::ensure_images();
    let tmp = test_dir();
    let root = tmp.path();
    let _leftovers = Leftovers(vec![root.join("n")]);
    let (_node, ctl, node_id) = start_docker_node(root, "dn");
    let _containers = image::Cleanup(format!("swarmd.node.id={node_id}"));
    ctl.ok(&["network", "create", "--name", "app"]);
    let service = |name: &str, replicas: &str, script: &str| {
        let extra = ["--replicas", replicas];
        create_service(&ctl, name, image::IMAGE_1, "app", &extra, Some(script));
    };
    service("api", "2", SERVE_WHEN_PLUGGED);
    service("client", "1", "exec busybox sleep 3600");
    let api = wait_running(&ctl, "api", 2);
    let client = wait_running(&ctl, "client", 1);
    let client_ns = format!("swarm-{}", client[0].0);
    assert!(netns_names().contains(&client_ns), "{:?}", netns_names());
    let vip = vip(&ctl, "api");

    // From the client container itself: its resolver file names ours, which knows the VIP.
    let container = ctl.json(&["task", "inspect", &client[0].0])["status"]["container_id"]
        .as_str()
        .unwrap()
        .to_string();
    let looked_up = wait_for("api resolved inside the container", WAIT, || {
        image::docker(&["exec", &container, "busybox", "nslookup", "api"])
            .ok()
            .filter(|out| out.contains(&vip))
    });
    assert!(looked_up.contains(&vip), "{looked_up}");
    let conf = image::docker(&["exec", &container, "cat", "/etc/resolv.conf"]).unwrap();
    assert!(conf.contains("nameserver 127.0.0.11"), "{conf}");

    // Through the VIP: both replicas answer.
    let addrs: Vec<String> = api.iter().map(|t| t.2.clone()).collect();
    let reached = wait_for("both api containers through the VIP", WAIT, || {
        let mut got = std::collections::BTreeSet::new();
        for _ in 0..10 {
            let (ok, page) = fetch(&client_ns, &vip);
            if ok {
                got.extend(addrs.iter().filter(|a| page.contains(a.as_str())).cloned());
            }
        }
        (got.len() == 2).then_some(got)
    });
    assert_eq!(reached.len(), 2);

    // The outside, on a machine whose Docker drops forwarded traffic by default: a server in
    // a namespace of this test, routed through the machine's own namespace. The client
    // container reaches it through NAT on the node.
    let outside = Outside::start();
    let (ok, page) = wait_for("the outside from a container", WAIT, || {
        let r = fetch_port(&client_ns, &outside.addr, 7002);
        r.0.then_some(r)
    });
    assert!(ok && page.contains("outside"), "{page}");
    drop(outside);

    // Gone with the services: no namespace of ours, nothing recorded as owned.
    ctl.ok(&["service", "rm", "api"]);
    ctl.ok(&["service", "rm", "client"]);
    let owned = root.join("n/worker/network/owned");
    wait_for("nothing of ours left", WAIT, || {
        let left: Vec<String> = netns_names()
            .into_iter()
            .filter(|n| {
                api.iter()
                    .chain(&client)
                    .any(|t| n == &format!("swarm-{}", t.0))
                    || n.ends_with(node_id.as_str())
            })
            .collect();
        let records = std::fs::read_dir(&owned).into_iter().flatten().count();
        (left.is_empty() && records == 0).then_some(())
    });
}
