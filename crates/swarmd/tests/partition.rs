//! Network partitions between managers on real test hosts (a network namespace each, see
//! `common::netns`): the isolated leader steps down and refuses writes, the majority elects a
//! leader and goes on, and after healing every manager agrees and no acknowledged write is
//! lost. The soak test repeats kill/partition cycles with a checker of acknowledged writes:
//! `cargo test -p swarmd --test partition -- --ignored` (SWARM_SOAK_CYCLES, default 50).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::netns::Mesh;
use common::swarm::*;
use common::*;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Cluster {
    mesh: Mesh,
    nodes: Vec<Node>,
    sockets: Vec<PathBuf>,
    acked: BTreeSet<String>,
    next: usize,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let mesh = Mesh::new(3).expect("network namespaces for the test hosts (run as root)");
        let tmp = tempfile::tempdir().unwrap();
        let (nodes, sockets) = start_managers(&mesh, tmp.path(), 3);
        let c = Cluster {
            mesh,
            nodes,
            sockets,
            acked: BTreeSet::new(),
            next: 0,
            _tmp: tmp,
        };
        c.wait_agreement("three managers", &[0, 1, 2]);
        c
    }

    fn ctl(&self, i: usize) -> Ctl {
        Ctl {
            socket: self.sockets[i].clone(),
        }
    }

    /// Index of the leader as manager `via` sees it.
    fn leader(&self, via: usize) -> Option<usize> {
        leader_name(&self.ctl(via)).map(|n| n.trim_start_matches('m').parse::<usize>().unwrap() - 1)
    }

    /// Waits until every manager in `who` sees the same single leader and all three reachable.
    fn wait_agreement(&self, what: &str, who: &[usize]) -> usize {
        wait_for(what, Duration::from_secs(60), || {
            let leaders: BTreeSet<Option<usize>> = who.iter().map(|i| self.leader(*i)).collect();
            let reachable = who.iter().all(|i| {
                let out = self.ctl(*i).run(&["node", "ls"]);
                let t = String::from_utf8_lossy(&out.stdout).to_string();
                t.matches("REACHABLE").count() == 3 && !t.contains("UNREACHABLE")
            });
            match leaders.into_iter().collect::<Vec<_>>().as_slice() {
                [Some(l)] if reachable => Some(*l),
                _ => None,
            }
        })
    }

    /// Creates services through `via` until `count` more are acknowledged.
    fn write(&mut self, via: &[usize], count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let target = self.acked.len() + count;
        while self.acked.len() < target {
            assert!(Instant::now() < deadline, "writes through {via:?} stalled");
            self.next += 1;
            let i = via[self.next % via.len()];
            let name = format!("svc-{}", self.next);
            let out = self.ctl(i).run(&[
                "service",
                "create",
                "--detach",
                "--name",
                &name,
                "--image",
                "busybox",
                "--replicas",
                "0",
            ]);
            if out.status.success() {
                self.acked.insert(name);
            }
        }
    }

    /// Every acknowledged write is visible through manager `via`.
    fn check(&self, via: usize) {
        let names = wait_for("a service listing", Duration::from_secs(30), || {
            service_names(&self.ctl(via))
        });
        let missing: Vec<&String> = self.acked.iter().filter(|a| !names.contains(*a)).collect();
        assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    }

    /// Isolates the leader; checks it refuses writes and the others elect a leader and go on.
    fn partition_cycle(&mut self) {
        let old = self.wait_agreement("agreement before the partition", &[0, 1, 2]);
        let majority: Vec<usize> = (0..3).filter(|i| *i != old).collect();
        self.mesh.isolate(old + 1);
        let new = wait_for(
            "a leader on the majority side",
            Duration::from_secs(30),
            || {
                self.leader(majority[0])
                    .filter(|l| *l != old && majority.contains(l))
            },
        );
        self.write(&majority, 5);
        let started = Instant::now();
        let out = self.ctl(old).run(&[
            "service",
            "create",
            "--name",
            "from-the-minority",
            "--image",
            "x",
        ]);
        assert!(
            !out.status.success(),
            "the isolated old leader accepted a write"
        );
        eprintln!(
            "isolated old leader refused a write after {:?}: {}",
            started.elapsed(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "refusal took {:?}",
            started.elapsed()
        );
        self.mesh.heal(old + 1);
        let agreed = self.wait_agreement("agreement after healing", &[0, 1, 2]);
        assert!(agreed == new || majority.contains(&agreed) || agreed == old);
        for i in 0..3 {
            self.check(i);
        }
    }

    /// Kills the leader with SIGKILL, writes through the others, restarts it.
    fn kill_cycle(&mut self) {
        let old = self.wait_agreement("agreement before the kill", &[0, 1, 2]);
        let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
        self.nodes[old].kill9();
        self.write(&others, 5);
        self.nodes[old].spawn();
        self.wait_agreement("agreement after the restart", &[0, 1, 2]);
        for i in 0..3 {
            self.check(i);
        }
    }
}

#[test]
fn isolated_leader_steps_down_and_the_majority_goes_on() {
    let mut c = Cluster::start();
    c.write(&[0, 1, 2], 10);
    c.partition_cycle();
    let names = service_names(&c.ctl(0)).unwrap();
    assert!(
        !names.contains("from-the-minority"),
        "a write refused by the minority must not appear later"
    );
}

/// Lines in which `node` logged a change of its Raft role, term or leader.
fn role_changes(node: &Node) -> usize {
    node.log().matches("raft role changed").count()
}

/// What pre-vote would give: a follower cut off for a while campaigns in vain, raising its
/// term each time; when it comes back, the healthy leader should carry on. openraft 0.9 has no
/// pre-vote, so the returning follower's higher term makes the leader step down and a new
/// election follows (a blip of about an election, no lost writes: the soak test covers that).
#[test]
#[ignore = "known limitation: openraft 0.9 has no pre-vote, so a returning isolated follower unseats the leader"]
fn a_returning_isolated_follower_leaves_the_leader_alone() {
    let mut c = Cluster::start();
    c.write(&[0, 1, 2], 3);
    let leader = c.wait_agreement("agreement before the isolation", &[0, 1, 2]);
    let follower = (leader + 1) % 3;
    let before = role_changes(&c.nodes[leader]);
    c.mesh.isolate(follower + 1);
    // Several of its election timeouts (1 s at 100 ms ticks): it campaigns more than once.
    std::thread::sleep(Duration::from_secs(5));
    c.mesh.heal(follower + 1);
    c.wait_agreement("agreement after healing", &[0, 1, 2]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(c.leader(leader), Some(leader), "the leader changed");
    assert_eq!(
        role_changes(&c.nodes[leader]),
        before,
        "the leader's role or term changed: {:?}",
        c.nodes[leader]
            .log()
            .lines()
            .filter(|l| l.contains("raft role changed"))
            .collect::<Vec<_>>()
    );
}

#[test]
#[ignore = "soak: run with --ignored (SWARM_SOAK_CYCLES, default 50)"]
fn soak_kill_and_partition_cycles() {
    let cycles: usize = std::env::var("SWARM_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut c = Cluster::start();
    c.write(&[0, 1, 2], 5);
    for cycle in 0..cycles {
        if cycle % 2 == 0 {
            c.partition_cycle();
        } else {
            c.kill_cycle();
        }
        eprintln!(
            "cycle {}/{cycles}: {} acknowledged writes, all present",
            cycle + 1,
            c.acked.len()
        );
    }
}
