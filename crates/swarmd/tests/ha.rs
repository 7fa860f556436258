//! High availability with the built binaries: three managers (joined with the manager token)
//! and a worker (joined through a follower). A client creates services in a loop through every
//! manager's socket while the leader is killed with SIGKILL; afterwards every service whose
//! create was acknowledged exists, a new leader was elected, and the old leader rejoins as a
//! member. Then all managers are killed at once and restarted: the state comes back whole.
//! Raft ticks are 100 ms here (elections in about a second) to keep the test short.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::swarm::*;
use common::*;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Manager {
    node: Node,
    socket: PathBuf,
    addr: String,
}

#[test]
fn managers_fail_over_without_losing_acknowledged_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut managers: Vec<Manager> = Vec::new();
    for i in 1..=3 {
        let name = format!("m{i}");
        let addr = format!("127.0.0.1:{}", free_port());
        let socket = root.join(format!("{name}.sock"));
        let join = if i == 1 {
            None
        } else {
            Some((
                managers[0].addr.clone(),
                token(
                    &Ctl {
                        socket: managers[0].socket.clone(),
                    },
                    "Manager:",
                ),
            ))
        };
        let args = manager_args(
            &root.join(&name),
            &name,
            &socket,
            &addr,
            join.as_ref().map(|(a, t)| (a.as_str(), t.as_str())),
        );
        let node = Node::start(&name, &root.join(&name), &args);
        let ctl = Ctl {
            socket: socket.clone(),
        };
        wait_for(&format!("{name} serving"), Duration::from_secs(60), || {
            ctl.run(&["node", "ls"]).status.success().then_some(())
        });
        managers.push(Manager { node, socket, addr });
    }
    let sockets: Vec<PathBuf> = managers.iter().map(|m| m.socket.clone()).collect();
    let ctl = |i: usize| Ctl {
        socket: sockets[i].clone(),
    };

    // Every manager answers (followers forward), shows three reachable managers and one leader.
    for i in 0..3 {
        let table = wait_for("three reachable managers", Duration::from_secs(30), || {
            let t = ctl(i).ok(&["node", "ls"]);
            (t.matches("REACHABLE").count() == 3
                && !t.contains("UNREACHABLE")
                && t.matches('*').count() == 1)
                .then_some(t)
        });
        assert!(table.contains("m1") && table.contains("m3"), "{table}");
    }

    // A worker joins through a follower (the CA call is forwarded to the leader).
    let leader = leader_name(&ctl(1)).unwrap();
    let follower = (0..3).find(|i| format!("m{}", i + 1) != leader).unwrap();
    let worker_token = token(&ctl(0), "Worker:");
    let w_args: Vec<String> = vec![
        "-d".into(),
        root.join("w1").display().to_string(),
        "--hostname".into(),
        "w1".into(),
        "--join-addr".into(),
        managers[follower].addr.clone(),
        "--join-token".into(),
        worker_token,
        "--executor".into(),
        "sim".into(),
    ];
    let _w1 = Node::start("w1", &root.join("w1"), &w_args);
    wait_for("worker READY", Duration::from_secs(30), || {
        ctl(follower)
            .ok(&["node", "ls"])
            .lines()
            .any(|l| l.contains(" w1 ") && l.contains(" READY "))
            .then_some(())
    });
    ctl(follower).ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--image",
        "nginx",
        "--replicas",
        "4",
    ]);
    wait_for("web 4/4", Duration::from_secs(30), || {
        ctl(0).ok(&["service", "ls"]).contains(" 4/4").then_some(())
    });

    // Writes in a loop through every live manager; kill the leader in the middle.
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut dead: Option<usize> = None;
    let mut killed_at = None;
    let mut failover = None;
    let mut n = 0;
    let started = Instant::now();
    while acked.len() < 40 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "writes stalled: {} acknowledged",
            acked.len()
        );
        let i = n % 3;
        n += 1;
        if Some(i) == dead {
            continue;
        }
        let name = format!("svc-{n}");
        let out = ctl(i).run(&[
            "service",
            "create",
            "--detach",
            "--name",
            &name,
            "--image",
            "busybox",
            "--replicas",
            "1",
        ]);
        if out.status.success() {
            acked.insert(name);
            if let (Some(k), None) = (killed_at, failover) {
                failover = Some(Instant::now().duration_since(k));
            }
        }
        if acked.len() == 15 && dead.is_none() {
            let leader = leader_name(&ctl(i)).unwrap();
            let li: usize = leader.trim_start_matches('m').parse::<usize>().unwrap() - 1;
            managers[li].node.kill9();
            dead = Some(li);
            killed_at = Some(Instant::now());
        }
    }
    let failover = failover.unwrap();
    eprintln!("failover: first write accepted {failover:?} after the leader was killed");
    let old = dead.unwrap();
    let survivor = (old + 1) % 3;
    let new_leader = wait_for("a new leader", Duration::from_secs(30), || {
        leader_name(&ctl(survivor))
    });
    assert_ne!(new_leader, format!("m{}", old + 1));
    // The new leader probes managers every 2 s.
    wait_for(
        "the dead manager shown UNREACHABLE",
        Duration::from_secs(15),
        || {
            ctl(survivor)
                .ok(&["node", "ls"])
                .contains("UNREACHABLE")
                .then_some(())
        },
    );

    // Every acknowledged write is there.
    let names = service_names(&ctl(survivor)).unwrap();
    let missing: Vec<&String> = acked.iter().filter(|a| !names.contains(*a)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");

    // The old leader rejoins as a member and catches up.
    managers[old].node.spawn();
    wait_for(
        "old leader back and reachable",
        Duration::from_secs(60),
        || {
            let t = ctl(old).run(&["node", "ls"]);
            let t = String::from_utf8_lossy(&t.stdout).to_string();
            (t.matches("REACHABLE").count() == 3
                && !t.contains("UNREACHABLE")
                && t.matches('*').count() == 1)
                .then_some(())
        },
    );

    // All managers killed at once, then restarted: everything comes back.
    for m in managers.iter_mut() {
        m.node.kill9();
    }
    for m in managers.iter_mut() {
        m.node.spawn();
    }
    let names = wait_for(
        "state after a full restart",
        Duration::from_secs(60),
        || service_names(&ctl(0)).filter(|s| s.len() == acked.len() + 1),
    );
    assert!(acked.iter().all(|a| names.contains(a)));
    wait_for(
        "web 4/4 after the full restart",
        Duration::from_secs(60),
        || {
            let out = ctl(2).run(&["service", "ls"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.lines()
                .any(|l| l.contains(" web ") && l.contains("4/4"))
                .then_some(())
        },
    );
}
