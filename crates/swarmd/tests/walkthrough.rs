//! The walkthrough (shared/spec/WALKTHROUGH.md) end to end with the built binaries: one
//! manager and two workers on loopback joined with the worker token, a replicated service
//! created, listed, inspected, scaled to 6 (spread 2-2-2), its image changed, rolled with
//! parallelism and delay, a node drained, a worker killed with SIGKILL (marked DOWN, its tasks
//! rescheduled), and the manager restarted with services, tasks and node identities intact.
//! Tasks are real `sleep` processes run by the process executor, counted from /proc.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const RUNNING: i64 = 512;

fn tasks(ctl: &Ctl) -> Vec<Value> {
    ctl.json(&["task", "ls"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn state(t: &Value) -> i64 {
    t["status"]["state"].as_i64().unwrap_or(0)
}

fn image(t: &Value) -> String {
    t["spec"]["container"]["image"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Live tasks: desired RUNNING.
fn live(ctl: &Ctl) -> Vec<Value> {
    tasks(ctl)
        .into_iter()
        .filter(|t| t["desired_state"].as_i64() == Some(RUNNING))
        .collect()
}

fn running_on(ctl: &Ctl, image_name: &str) -> BTreeMap<String, usize> {
    let mut per_node = BTreeMap::new();
    for t in live(ctl) {
        if state(&t) == RUNNING && image(&t) == image_name {
            *per_node
                .entry(t["node_id"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    per_node
}

fn node_ids(ctl: &Ctl) -> BTreeMap<String, String> {
    ctl.json(&["node", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["spec"]["annotations"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                n["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn node_row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or("")
}

#[test]
fn walkthrough() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let socket = root.join("manager1/swarm.sock");
    let d = |n: &str| root.join(n);
    let manager_args: Vec<String> = vec![
        "-d".into(),
        d("node-1").display().to_string(),
        "--listen-control-api".into(),
        socket.display().to_string(),
        "--hostname".into(),
        "node-1".into(),
        // The process executor, whether or not a Docker engine answers on this machine.
        "--executor".into(),
        "process".into(),
        "--listen-remote-api".into(),
        addr.clone(),
    ];
    let mut n1 = Node::start("node-1", &d("node-1"), &manager_args);
    let ctl = Ctl {
        socket: socket.clone(),
    };
    wait_for(
        "the manager's control socket",
        Duration::from_secs(30),
        || ctl.run(&["node", "ls"]).status.success().then_some(()),
    );

    // The join token, worker first.
    let cluster = ctl.ok(&["cluster", "inspect", "default"]);
    let worker_line = cluster
        .lines()
        .find(|l| l.contains("Worker"))
        .expect("worker token line");
    let manager_line = cluster
        .lines()
        .find(|l| l.contains("Manager:"))
        .expect("manager token line");
    assert!(cluster.find(worker_line).unwrap() < cluster.find(manager_line).unwrap());
    let token = worker_line
        .split_whitespace()
        .find(|w| w.starts_with("SWMTKN-1-"))
        .unwrap()
        .to_string();

    let worker = |name: &str| -> Vec<String> {
        vec![
            "-d".into(),
            d(name).display().to_string(),
            "--hostname".into(),
            name.into(),
            "--executor".into(),
            "process".into(),
            "--join-addr".into(),
            addr.clone(),
            "--join-token".into(),
            token.clone(),
        ]
    };
    let mut n2 = Node::start("node-2", &d("node-2"), &worker("node-2"));
    let mut n3 = Node::start("node-3", &d("node-3"), &worker("node-3"));

    let table = wait_for("three READY nodes", Duration::from_secs(30), || {
        let t = ctl.ok(&["node", "ls"]);
        (t.lines().filter(|l| l.contains(" READY ")).count() == 3).then_some(t)
    });
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("  ")
        .filter(|s| !s.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        [
            "ID",
            "Name",
            "Membership",
            "Status",
            "Availability",
            "Manager Status"
        ]
    );
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        [
            "--",
            "----",
            "----------",
            "------",
            "------------",
            "--------------"
        ]
    );
    assert!(
        node_row(&table, "node-1")
            .trim_end()
            .ends_with("ACCEPTED    READY   ACTIVE        REACHABLE *"),
        "{table}"
    );
    assert!(
        node_row(&table, "node-2")
            .trim_end()
            .ends_with("ACCEPTED    READY   ACTIVE"),
        "{table}"
    );
    let ids_before = node_ids(&ctl);
    assert_eq!(ids_before.len(), 3);

    // Create, list, inspect.
    let id = ctl
        .ok(&[
            "service",
            "create",
            "--name",
            "redis",
            "--image",
            "redis:3.0.5",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 25, "service create prints the ID: {id:?}");
    wait_for("redis 1/1", Duration::from_secs(30), || {
        let ls = ctl.ok(&["service", "ls"]);
        ls.lines()
            .any(|l| {
                l.split_whitespace().collect::<Vec<_>>()
                    == [id.as_str(), "redis", "redis:3.0.5", "1/1"]
            })
            .then_some(())
    });
    let inspect = ctl.ok(&["service", "inspect", "redis"]);
    assert!(
        inspect.contains(&format!("ID                : {id}")),
        "{inspect}"
    );
    assert!(inspect.contains("Replicas          : 1"), "{inspect}");
    assert!(
        inspect.contains("  Image           : redis:3.0.5"),
        "{inspect}"
    );
    let task_row = inspect
        .lines()
        .find(|l| l.contains(" redis ") && l.contains("RUNNING"))
        .expect(&inspect);
    let cols: Vec<&str> = task_row.split_whitespace().collect();
    assert_eq!(
        &cols[1..5],
        ["redis", "1", "redis:3.0.5", "RUNNING"],
        "{task_row}"
    );
    assert!(task_row.contains("ago"), "{task_row}");
    assert_eq!(task_processes_under(root).len(), 1, "one real task process");

    // Scale to 6: spread 2-2-2, six real processes.
    ctl.ok(&["service", "update", "redis", "--replicas", "6"]);
    let spread = wait_for("6 running tasks", Duration::from_secs(30), || {
        let r = running_on(&ctl, "redis:3.0.5");
        (r.values().sum::<usize>() == 6).then_some(r)
    });
    assert_eq!(
        spread.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "spread over the three nodes"
    );
    wait_for("6 task processes", Duration::from_secs(10), || {
        (task_processes_under(root).len() == 6).then_some(())
    });
    let ls = ctl.ok(&["service", "ls"]);
    assert!(ls.contains(" 6/6"), "{ls}");

    // Change the image: every task replaced, slots 1..6 kept, all at once by default.
    ctl.ok(&["service", "update", "redis", "--image", "redis:3.0.6"]);
    wait_for("6 tasks on redis:3.0.6", Duration::from_secs(30), || {
        (running_on(&ctl, "redis:3.0.6").values().sum::<usize>() == 6 && live(&ctl).len() == 6)
            .then_some(())
    });
    let slots: BTreeSet<u64> = live(&ctl)
        .iter()
        .map(|t| t["slot"].as_u64().unwrap())
        .collect();
    assert_eq!(slots, (1..=6).collect());
    wait_for(
        "old task processes stopped",
        Duration::from_secs(20),
        || (task_processes_under(root).len() == 6).then_some(()),
    );

    // Rolling update: 2 at a time, 3 s apart; the counts of new tasks move 2 by 2.
    // Detached: the test watches the batches itself (a waiting update would return after them).
    let started = Instant::now();
    ctl.ok(&[
        "service",
        "update",
        "--detach",
        "redis",
        "--image",
        "redis:3.0.7",
        "--update-parallelism",
        "2",
        "--update-delay",
        "3s",
    ]);
    let mut seen = BTreeSet::new();
    wait_for("rolling update to finish", Duration::from_secs(60), || {
        let live_now = live(&ctl);
        let new_live = live_now
            .iter()
            .filter(|t| image(t) == "redis:3.0.7")
            .count();
        seen.insert(new_live);
        (running_on(&ctl, "redis:3.0.7").values().sum::<usize>() == 6).then_some(())
    });
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(6),
        "three batches with two 3 s delays took only {took:?}"
    );
    assert!(
        seen.iter().all(|n| n % 2 == 0),
        "new tasks appear two at a time, saw {seen:?}"
    );
    assert!(
        seen.contains(&2) || seen.contains(&4),
        "an intermediate step was observed: {seen:?}"
    );
    // Options given once are remembered.
    let svc = ctl.json(&["service", "inspect", "redis"]);
    assert_eq!(
        svc["spec"]["update"]["parallelism"].as_u64(),
        Some(2),
        "{svc}"
    );

    // Drain node-1: its tasks move to node-2 and node-3, balanced.
    let n1_id = ids_before["node-1"].clone();
    ctl.ok(&["node", "drain", "node-1"]);
    let spread = wait_for("tasks off node-1", Duration::from_secs(30), || {
        let r = running_on(&ctl, "redis:3.0.7");
        (r.values().sum::<usize>() == 6 && !r.contains_key(&n1_id)).then_some(r)
    });
    assert_eq!(
        spread.values().copied().collect::<Vec<_>>(),
        [3, 3],
        "balanced over node-2 and node-3"
    );
    let table = ctl.ok(&["node", "ls"]);
    assert!(node_row(&table, "node-1").contains("DRAIN"), "{table}");
    wait_for(
        "no task process left on node-1",
        Duration::from_secs(20),
        || task_processes_under(&d("node-1")).is_empty().then_some(()),
    );
    ctl.ok(&["node", "activate", "node-1"]);

    // Kill a worker: it is marked DOWN and its tasks run elsewhere.
    let n3_id = ids_before["node-3"].clone();
    n3.kill9();
    wait_for("node-3 DOWN", Duration::from_secs(40), || {
        node_row(&ctl.ok(&["node", "ls"]), "node-3")
            .contains(" DOWN ")
            .then_some(())
    });
    let spread = wait_for(
        "node-3's tasks rescheduled",
        Duration::from_secs(30),
        || {
            let r = running_on(&ctl, "redis:3.0.7");
            (r.values().sum::<usize>() == 6 && !r.contains_key(&n3_id)).then_some(r)
        },
    );
    assert_eq!(spread.len(), 2, "tasks on node-1 and node-2: {spread:?}");
    wait_for(
        "6 task processes after the kill",
        Duration::from_secs(20),
        || (task_processes_under(root).len() == 6).then_some(()),
    );

    // Restart the manager: services, tasks and node identities survive.
    let svc_before = ctl.json(&["service", "inspect", "redis"]);
    n1.terminate();
    n1.spawn();
    wait_for("the restarted manager", Duration::from_secs(30), || {
        ctl.run(&["service", "ls"]).status.success().then_some(())
    });
    let svc_after = ctl.json(&["service", "inspect", "redis"]);
    assert_eq!(svc_after["id"], svc_before["id"]);
    assert_eq!(svc_after["spec"], svc_before["spec"]);
    assert_eq!(node_ids(&ctl), ids_before, "node identities kept");
    wait_for(
        "6 running tasks after the manager restart",
        Duration::from_secs(60),
        || (running_on(&ctl, "redis:3.0.7").values().sum::<usize>() == 6).then_some(()),
    );
    wait_for(
        "6 task processes after the manager restart",
        Duration::from_secs(30),
        || (task_processes_under(root).len() == 6).then_some(()),
    );

    // Restart a worker: same node ID, READY again, no duplicate node.
    n2.terminate();
    n2.spawn();
    wait_for("node-2 READY again", Duration::from_secs(30), || {
        let t = ctl.ok(&["node", "ls"]);
        (node_row(&t, "node-2").contains(" READY ") && t.lines().count() == 5).then_some(())
    });
    assert_eq!(node_ids(&ctl), ids_before, "the worker kept its identity");
    wait_for(
        "6 running tasks after the worker restart",
        Duration::from_secs(60),
        || (running_on(&ctl, "redis:3.0.7").values().sum::<usize>() == 6).then_some(()),
    );

    // Removing the service leaves no process behind.
    ctl.ok(&["service", "rm", "redis"]);
    wait_for(
        "no task process after service rm",
        Duration::from_secs(30),
        || task_processes_under(root).is_empty().then_some(()),
    );
    n2.terminate();
    n1.terminate();
}
