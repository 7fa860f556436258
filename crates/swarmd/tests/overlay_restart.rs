//! The overlay while swarmds restart (three test hosts, `process` executor, the manager's host
//! drained): with the manager down, tasks on the workers keep reaching each other and the VIP
//! (the data plane needs no manager); once it is back, every task keeps its address. A
//! restarted worker's task is replaced with a new address that the VIP then reaches, and the
//! old task's namespace is gone. At the end nothing of ours is left.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::netns::Mesh;
use common::overlay::*;
use common::*;
use std::time::Duration;

#[test]
fn the_overlay_outlives_a_manager_restart_and_heals_after_a_worker_restart() {
    let mesh = Mesh::new(3).expect("test hosts need root and iproute2");
    let tmp = test_dir();
    let root = tmp.path();
    let _leftovers = Leftovers((1..=3).map(|i| root.join(format!("h{i}"))).collect());
    let (mut nodes, ctl) = start(&mesh, root);
    ctl.ok(&["node", "drain", "h1"]);
    ctl.ok(&["network", "create", "--name", "app"]);
    let extra = ["--replicas", "2", "--replicas-max-per-node", "1"];
    create_service(&ctl, "api", "busybox", "app", &extra, Some(SERVE_ADDRESS));
    let on_h2 = ["--constraint", "node.hostname==h2"];
    create_service(&ctl, "client", "busybox", "app", &on_h2, None);
    let api = wait_running(&ctl, "api", 2);
    let client = wait_running(&ctl, "client", 1);
    let client_ns = format!("swarm-{}", client[0].0);
    let vip = vip(&ctl, "api");
    let addrs: Vec<String> = api.iter().map(|t| t.2.clone()).collect();
    let got = wait_for("both api tasks through the VIP", WAIT, || {
        let a = answered(&client_ns, &vip, &addrs, 10);
        (a.len() == 2).then_some(a)
    });
    assert_eq!(got.len(), 2);

    // The manager goes down: the workers' data plane goes on without it.
    nodes[0].terminate();
    let during = answered(&client_ns, &vip, &addrs, 20);
    assert_eq!(
        during.len(),
        2,
        "with the manager down the VIP reached {during:?}"
    );
    nodes[0].spawn();
    wait_for("the manager back", WAIT, || {
        ctl.run(&["node", "ls"]).status.success().then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let mut after = running(&ctl, "api");
    after.sort();
    let mut before = api.clone();
    before.sort();
    assert_eq!(
        after, before,
        "a manager restart changed the api tasks or their addresses"
    );
    assert_eq!(answered(&client_ns, &vip, &addrs, 20).len(), 2);

    // A worker restarts: its api task dies with it and is replaced; the VIP follows, and the
    // dead task's namespace goes once the worker is back.
    let node_list = ctl.json(&["node", "ls"]);
    let victim = api
        .iter()
        .find(|t| host_of(&node_list, &t.1) == "h3")
        .or_else(|| api.iter().find(|t| host_of(&node_list, &t.1) != "h2"))
        .unwrap()
        .clone();
    let index: usize = host_of(&node_list, &victim.1)
        .trim_start_matches('h')
        .parse()
        .unwrap();
    nodes[index - 1].terminate();
    nodes[index - 1].spawn();
    let now = wait_for("the replacement running", WAIT, || {
        let r = running(&ctl, "api");
        (r.len() == 2 && r.iter().all(|t| t.0 != victim.0)).then_some(r)
    });
    let now_addrs: Vec<String> = now.iter().map(|t| t.2.clone()).collect();
    wait_for("both current tasks through the VIP", WAIT, || {
        let a = answered(&client_ns, &vip, &now_addrs, 10);
        (a.len() == 2).then_some(())
    });
    let dead_ns = format!("swarm-{}", victim.0);
    wait_for("the dead task's namespace removed", WAIT, || {
        (!netns_names().contains(&dead_ns)).then_some(())
    });

    ctl.ok(&["service", "rm", "api"]);
    ctl.ok(&["service", "rm", "client"]);
    let ids = node_ids(&ctl);
    wait_for("nothing of ours left", WAIT, || {
        let left: Vec<String> = netns_names()
            .into_iter()
            .filter(|n| {
                api.iter()
                    .chain(&now)
                    .chain(&client)
                    .any(|t| n == &format!("swarm-{}", t.0))
                    || (n.starts_with("swnet-") && ids.iter().any(|id| n.ends_with(id.as_str())))
            })
            .collect();
        left.is_empty().then_some(())
    });
}
