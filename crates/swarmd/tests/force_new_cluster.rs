//! Losing quorum for good and recovering: with two of three managers killed, writes through
//! the survivor fail within seconds while reads of the last known state still work; restarted
//! with `--force-new-cluster`, the survivor leads a one-manager cluster with every service and
//! node identity kept, accepts writes, and shows the lost managers as unreachable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::swarm::*;
use common::*;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn node_ids(ctl: &Ctl) -> BTreeSet<String> {
    ctl.json(&["node", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_survivor_forces_a_new_cluster_with_the_state_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    let mut sockets: Vec<PathBuf> = Vec::new();
    let mut addrs: Vec<String> = Vec::new();
    for i in 1..=3 {
        let name = format!("m{i}");
        let addr = format!("127.0.0.1:{}", free_port());
        let socket = tmp.path().join(format!("{name}.sock"));
        let join = (i > 1).then(|| {
            (
                addrs[0].clone(),
                token(
                    &Ctl {
                        socket: sockets[0].clone(),
                    },
                    "Manager:",
                ),
            )
        });
        let args = manager_args(
            &tmp.path().join(&name),
            &name,
            &socket,
            &addr,
            join.as_ref().map(|(a, t)| (a.as_str(), t.as_str())),
        );
        nodes.push(Node::start(&name, &tmp.path().join(&name), &args));
        let ctl = Ctl {
            socket: socket.clone(),
        };
        wait_for(&format!("{name} serving"), Duration::from_secs(60), || {
            ctl.run(&["node", "ls"]).status.success().then_some(())
        });
        sockets.push(socket);
        addrs.push(addr);
    }
    let ctl = Ctl {
        socket: sockets[2].clone(),
    };
    wait_for("three reachable managers", Duration::from_secs(30), || {
        let t = ctl.ok(&["node", "ls"]);
        (t.matches("REACHABLE").count() == 3 && !t.contains("UNREACHABLE")).then_some(())
    });
    for i in 0..5 {
        ctl.ok(&[
            "service",
            "create",
            "--name",
            &format!("keep-{i}"),
            "--image",
            "busybox",
            "--replicas",
            "2",
        ]);
    }
    let ids = node_ids(&ctl);
    let before = service_names(&ctl).unwrap();

    // Two managers gone for good: quorum is lost, writes fail fast with a clear error.
    nodes[0].kill9();
    nodes[1].kill9();
    let started = Instant::now();
    let err = wait_for("writes to fail", Duration::from_secs(30), || {
        let out = ctl.run(&["service", "create", "--name", "lost", "--image", "x"]);
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).to_string())
    });
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "writes took {:?} to fail",
        started.elapsed()
    );
    assert!(err.contains("quorum") || err.contains("leader"), "{err}");

    // Restart the survivor alone with --force-new-cluster.
    nodes[2].terminate();
    nodes[2].args.push("--force-new-cluster".into());
    nodes[2].spawn();
    wait_for(
        "the forced cluster serving",
        Duration::from_secs(60),
        || ctl.run(&["service", "ls"]).status.success().then_some(()),
    );
    assert_eq!(service_names(&ctl).unwrap(), before, "every service kept");
    assert_eq!(node_ids(&ctl), ids, "node identities kept");
    ctl.ok(&["service", "create", "--name", "after", "--image", "busybox"]);
    let table = ctl.ok(&["node", "ls"]);
    assert_eq!(table.matches("UNREACHABLE").count(), 2, "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains(" m3 ") && l.trim_end().ends_with("REACHABLE *")),
        "{table}"
    );
    assert!(std::fs::read_dir(tmp.path().join("m3"))
        .unwrap()
        .flatten()
        .any(|e| e
            .file_name()
            .to_string_lossy()
            .starts_with("raft.before-force-new-cluster")));

    // And it restarts normally afterwards (without the flag).
    nodes[2].terminate();
    nodes[2].args.retain(|a| a != "--force-new-cluster");
    nodes[2].spawn();
    wait_for("normal restart", Duration::from_secs(60), || {
        service_names(&ctl).filter(|s| s.contains("after") && s.len() == before.len() + 1)
    });
}
