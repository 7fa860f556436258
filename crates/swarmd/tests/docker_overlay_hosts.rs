//! Containers on a swarm network across hosts: three test hosts (network namespaces, see
//! `common::netns`), each with a Docker engine of its own (`common::dockerd`) and a swarmd
//! using it (`--executor docker`, one manager). Two api replicas run as containers on two
//! different hosts' engines; a client container on the third host reaches both through the
//! VIP, over VXLAN between the hosts, and `tasks.api` resolves to both; once the services are
//! gone nothing of ours is left (no namespace, no owned record on any node), and once the
//! engines stop no mount or process of theirs is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../../agent/tests/support/docker_image.rs"]
mod image;

use common::dockerd::start_engines;
use common::netns::Mesh;
use common::overlay::*;
use common::*;
use std::collections::BTreeSet;

#[test]
fn containers_on_three_hosts_reach_each_other_through_the_vip_over_vxlan() {
    let test = "containers_on_three_hosts";
    if !image::engine_or_skip(test) {
        return;
    }
    let mesh = match Mesh::new(3) {
        Ok(m) => m,
        Err(e) => panic!("test hosts need root and iproute2: {e}"),
    };
    image::ensure_images();
    let tmp = test_dir();
    let root = tmp.path();
    // Dropped after the nodes (declared before them): the engines outlive the swarmds that
    // drive them, and the namespaces the nodes named go before the engines' mounts do.
    let Some(engines) = start_engines(&mesh, root, 3, image::IMAGE_1, test) else {
        return;
    };
    let leftovers = Leftovers((1..=3).map(|i| root.join(format!("h{i}"))).collect());
    let (nodes, ctl) = start_with(&mesh, root, "docker", |i| {
        vec!["--engine-addr".into(), engines[i - 1].addr()]
    });

    ctl.ok(&["network", "create", "--name", "app"]);
    let service = |name: &str, extra: &[&str], script: &str| {
        create_service(&ctl, name, image::IMAGE_1, "app", extra, Some(script));
    };
    service(
        "api",
        &["--replicas", "2", "--replicas-max-per-node", "1"],
        SERVE_WHEN_PLUGGED,
    );
    let api = wait_running(&ctl, "api", 2);
    let listed = ctl.json(&["node", "ls"]);
    let api_hosts: BTreeSet<String> = api.iter().map(|t| host_of(&listed, &t.1)).collect();
    assert_eq!(api_hosts.len(), 2, "api replicas share a host: {api:?}");

    // Each replica is a container of its own host's engine, not of the machine's.
    for (task, node, _) in &api {
        let host = host_of(&listed, node);
        let i: usize = host.trim_start_matches('h').parse().unwrap();
        let container = ctl.json(&["task", "inspect", task])["status"]["container_id"]
            .as_str()
            .unwrap()
            .to_string();
        let state = engines[i - 1]
            .docker(&["inspect", "--format", "{{.State.Running}}", &container])
            .unwrap();
        assert_eq!(state, "true", "{task} on {host}: container {container}");
        assert!(
            image::docker(&["inspect", &container]).is_err(),
            "{container} runs on the machine's engine"
        );
    }

    // The client goes where no replica is, so everything it reaches crosses hosts.
    let free = (1..=3)
        .map(|i| format!("h{i}"))
        .find(|h| !api_hosts.contains(h));
    let constraint = free.as_ref().map(|h| format!("node.hostname=={h}"));
    let mut extra = vec!["--replicas", "1"];
    if let Some(c) = &constraint {
        extra.extend(["--constraint", c.as_str()]);
    }
    service("client", &extra, "exec busybox sleep 3600");
    let client = wait_running(&ctl, "client", 1);
    let client_host = host_of(&listed, &client[0].1);
    if let Some(h) = &free {
        assert_eq!(&client_host, h);
    }
    let client_ns = format!("swarm-{}", client[0].0);
    assert!(netns_names().contains(&client_ns), "{:?}", netns_names());

    let vip = vip(&ctl, "api");
    let addrs: BTreeSet<String> = api.iter().map(|t| t.2.clone()).collect();
    let reached = wait_for("both api containers through the VIP", WAIT, || {
        let mut got = BTreeSet::new();
        for _ in 0..10 {
            let (ok, page) = fetch(&client_ns, &vip);
            if ok {
                got.extend(addrs.iter().filter(|a| page.contains(a.as_str())).cloned());
            }
        }
        (got == addrs).then_some(got)
    });
    assert_eq!(reached, addrs);

    let resolved = wait_for("tasks.api resolved to both replicas", WAIT, || {
        let got: BTreeSet<String> = resolve(&client_ns, "tasks.api").into_iter().collect();
        (got == addrs).then_some(got)
    });
    assert_eq!(resolved, addrs);

    // Gone with the services: no namespace of ours (nor its resolver file), nothing recorded as
    // owned on any node.
    ctl.ok(&["service", "rm", "api"]);
    ctl.ok(&["service", "rm", "client"]);
    let ours: Vec<String> = api
        .iter()
        .chain(&client)
        .map(|t| format!("swarm-{}", t.0))
        .collect();
    wait_for("nothing of ours left", WAIT, || {
        let left: Vec<String> = netns_names()
            .into_iter()
            .filter(|n| ours.contains(n))
            .chain(
                ours.iter()
                    .filter(|n| std::path::Path::new("/etc/netns").join(n).exists())
                    .cloned(),
            )
            .collect();
        let records: usize = (1..=3)
            .map(|i| {
                std::fs::read_dir(root.join(format!("h{i}/worker/network/owned")))
                    .into_iter()
                    .flatten()
                    .count()
            })
            .sum();
        (left.is_empty() && records == 0).then_some(())
    });

    // And the engines leave nothing on the machine: no mount, no process under our directory.
    drop(nodes);
    drop(leftovers);
    drop(engines);
    assert_eq!(
        common::dockerd::mounts_under(root),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(common::dockerd::processes_naming(root), Vec::<u32>::new());
}
