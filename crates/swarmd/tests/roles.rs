//! Promotion and demotion with the built binaries: workers promoted become Raft members that
//! serve the control API; a demoted follower goes back to being a worker; demoting the leader
//! hands leadership over; a manager promoted again comes back as a new Raft member; refusals
//! for a down node and for the last manager. State is kept throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::swarm::*;
use common::*;
use std::path::PathBuf;
use std::time::Duration;

fn managers_in(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(2)
        .filter(|l| l.contains("REACHABLE"))
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect()
}

/// The Raft ID `node inspect` shows for `name`.
fn raft_member(ctl: &Ctl, name: &str) -> String {
    let out = ctl.ok(&["node", "inspect", name]);
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Raft ID"))
        .map(|v| v.trim_start_matches(['\t', ' ', ':']).trim().to_string())
        .unwrap_or_else(|| panic!("no Raft ID for {name}: {out}"))
}

#[test]
fn promote_and_demote() {
    let tmp = test_dir();
    let sock = |n: &str| -> PathBuf { tmp.path().join(format!("{n}.sock")) };
    let addrs: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let m1 = Node::start(
        "m1",
        &tmp.path().join("m1"),
        &manager_args(&tmp.path().join("m1"), "m1", &sock("m1"), &addrs[0], None),
    );
    let ctl1 = Ctl { socket: sock("m1") };
    wait_for("m1", Duration::from_secs(30), || {
        ctl1.run(&["node", "ls"]).status.success().then_some(())
    });
    let wt = token(&ctl1, "Worker:");
    // Workers get their own listen addresses and sockets, used once promoted.
    let mut workers = Vec::new();
    for (i, name) in ["w1", "w2"].iter().enumerate() {
        let mut args = manager_args(
            &tmp.path().join(name),
            name,
            &sock(name),
            &addrs[i + 1],
            Some((&addrs[0], &wt)),
        );
        args.extend(["--advertise-remote-api".into(), addrs[i + 1].clone()]);
        workers.push(Node::start(name, &tmp.path().join(name), &args));
    }
    wait_for("3 READY nodes", Duration::from_secs(30), || {
        (ctl1.ok(&["node", "ls"]).matches(" READY ").count() == 3).then_some(())
    });
    ctl1.ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--image",
        "nginx",
        "--replicas",
        "3",
    ]);

    // Promote w1, then w2: each joins Raft and serves the control API.
    for (name, count) in [("w1", 2), ("w2", 3)] {
        ctl1.ok(&["node", "promote", name]);
        let t = wait_for(
            &format!("{name} a reachable manager"),
            Duration::from_secs(60),
            || {
                let t = ctl1.ok(&["node", "ls"]);
                (managers_in(&t).len() == count
                    && !t.contains("UNREACHABLE")
                    && managers_in(&t).contains(&name.to_string()))
                .then_some(t)
            },
        );
        assert_eq!(t.matches('*').count(), 1, "{t}");
        let c = Ctl { socket: sock(name) };
        wait_for(
            &format!("{name}'s control socket"),
            Duration::from_secs(30),
            || c.run(&["service", "ls"]).status.success().then_some(()),
        );
    }
    let ctl2 = Ctl { socket: sock("w2") };
    assert!(ctl2.ok(&["service", "ls"]).contains("web"));
    let w1_first_member = raft_member(&ctl2, "w1");

    // Demote a follower: it becomes a worker again, its control socket goes away.
    ctl2.ok(&["node", "demote", "w1"]);
    wait_for("w1 a worker again", Duration::from_secs(60), || {
        let t = ctl2.ok(&["node", "ls"]);
        let w1 = t
            .lines()
            .find(|l| l.contains(" w1 "))
            .unwrap_or("")
            .to_string();
        (managers_in(&t).len() == 2 && w1.contains(" READY ") && !w1.contains("REACHABLE"))
            .then_some(())
    });
    wait_for(
        "w1's control socket closed",
        Duration::from_secs(30),
        || (!sock("w1").exists()).then_some(()),
    );

    // Promoted again, w1 starts its Raft state afresh, so it must come back as a new member:
    // under its old member ID its empty log could vote as if it held what the old one had.
    ctl2.ok(&["node", "promote", "w1"]);
    wait_for("w1 a manager again", Duration::from_secs(60), || {
        let t = ctl2.ok(&["node", "ls"]);
        (managers_in(&t).len() == 3 && !t.contains("UNREACHABLE")).then_some(())
    });
    let w1_ctl = Ctl { socket: sock("w1") };
    wait_for("w1's control socket again", Duration::from_secs(30), || {
        w1_ctl
            .run(&["service", "ls"])
            .status
            .success()
            .then_some(())
    });
    let w1_second_member = raft_member(&ctl2, "w1");
    assert_ne!(
        w1_first_member, w1_second_member,
        "w1 came back under the member ID of its old Raft state"
    );
    w1_ctl.ok(&["service", "create", "--name", "via-w1", "--image", "x"]);
    ctl2.ok(&["node", "demote", "w1"]);
    wait_for("w1 a worker once more", Duration::from_secs(60), || {
        let t = ctl2.ok(&["node", "ls"]);
        (managers_in(&t).len() == 2 && !sock("w1").exists()).then_some(())
    });

    // Demote the leader: leadership moves to the other manager, which finishes the demotion.
    let leader = leader_name(&ctl2).unwrap();
    let other = if leader == "m1" { "w2" } else { "m1" };
    let other_ctl = Ctl {
        socket: sock(other),
    };
    other_ctl.ok(&["node", "demote", &leader]);
    wait_for(
        "the old leader demoted, the other leading",
        Duration::from_secs(60),
        || {
            let out = other_ctl.run(&["node", "ls"]);
            let t = String::from_utf8_lossy(&out.stdout).to_string();
            (managers_in(&t) == [other.to_string()]
                && leader_name(&other_ctl).as_deref() == Some(other))
            .then_some(())
        },
    );
    assert!(
        other_ctl.ok(&["service", "ls"]).contains("web"),
        "state kept"
    );
    other_ctl.ok(&["service", "create", "--name", "after", "--image", "x"]);

    // Refusals: the last manager, and a node that is down.
    let out = other_ctl.run(&["node", "demote", other]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("last manager"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut w1 = workers.remove(0);
    w1.kill9();
    wait_for("w1 DOWN", Duration::from_secs(40), || {
        other_ctl
            .ok(&["node", "ls"])
            .lines()
            .any(|l| l.contains(" w1 ") && l.contains(" DOWN "))
            .then_some(())
    });
    let out = other_ctl.run(&["node", "promote", "w1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not ready"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(m1);
}

#[test]
fn removing_a_dead_manager_takes_it_out_of_raft_and_its_certificate_stops_working() {
    let tmp = test_dir();
    let sock = |n: &str| -> PathBuf { tmp.path().join(format!("{n}.sock")) };
    let addrs: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let mut nodes = Vec::new();
    for (i, name) in ["m1", "m2", "m3"].iter().enumerate() {
        let join = (i > 0).then(|| {
            (
                addrs[0].clone(),
                token(&Ctl { socket: sock("m1") }, "Manager:"),
            )
        });
        let args = manager_args(
            &tmp.path().join(name),
            name,
            &sock(name),
            &addrs[i],
            join.as_ref().map(|(a, t)| (a.as_str(), t.as_str())),
        );
        nodes.push(Node::start(name, &tmp.path().join(name), &args));
        let c = Ctl { socket: sock(name) };
        wait_for(&format!("{name} serving"), Duration::from_secs(60), || {
            c.run(&["node", "ls"]).status.success().then_some(())
        });
    }
    let ctl = Ctl { socket: sock("m1") };
    wait_for("3 reachable managers", Duration::from_secs(30), || {
        let t = ctl.ok(&["node", "ls"]);
        (managers_in(&t).len() == 3 && !t.contains("UNREACHABLE")).then_some(())
    });
    // Make sure m3 does not lead, then lose it.
    let leader = leader_name(&ctl).unwrap();
    let victim = if leader == "m3" { "m2" } else { "m3" };
    let vi: usize = victim.trim_start_matches('m').parse::<usize>().unwrap() - 1;
    let out = ctl.run(&["node", "rm", victim]);
    assert!(
        !out.status.success(),
        "removing a reachable manager needs --force"
    );
    nodes[vi].kill9();
    wait_for("victim unreachable", Duration::from_secs(30), || {
        ctl.ok(&["node", "ls"])
            .contains("UNREACHABLE")
            .then_some(())
    });
    ctl.ok(&["node", "rm", "--force", victim]);
    wait_for("victim gone from node ls", Duration::from_secs(30), || {
        (!ctl
            .ok(&["node", "ls"])
            .lines()
            .any(|l| l.contains(&format!(" {victim} "))))
        .then_some(())
    });
    // Its old certificate no longer makes it a member: restarted, it does not come back.
    nodes[vi].spawn();
    std::thread::sleep(Duration::from_secs(3));
    let t = ctl.ok(&["node", "ls"]);
    assert!(
        !t.lines().any(|l| l.contains(&format!(" {victim} "))),
        "{t}"
    );
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "still-writing",
        "--image",
        "x",
    ]);
    nodes[vi].kill9();
    // Offline: the Raft group has two voters left.
    std::thread::sleep(Duration::from_secs(1));
    let survivor = if vi == 0 { 1 } else { 0 };
    for (i, n) in nodes.iter_mut().enumerate() {
        if i != vi {
            n.terminate();
        }
    }
    let out = std::process::Command::new(swarmd_bin())
        .args(["inspect-state", "-d"])
        .arg(tmp.path().join(format!("m{}", survivor + 1)))
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let voters = report["membership"]["voters"].as_array().unwrap();
    assert_eq!(voters.len(), 2, "{}", report["membership"]);
}
