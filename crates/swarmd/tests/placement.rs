//! Placement and restart behaviour through the built binaries (sim executor): replicas per
//! node capped with the rest PENDING and explained, a global service following a drain and a
//! new node, spread over a label's values, and restarts capped by max attempts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::swarm::*;
use common::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

const RUNNING: i64 = 512;
const PENDING: i64 = 64;

struct Swarm {
    _tmp: tempfile::TempDir,
    ctl: Ctl,
    _nodes: Vec<Node>,
    root: PathBuf,
    addr: String,
    token: String,
}

fn swarm(workers: &[&str]) -> Swarm {
    let tmp = test_dir();
    let root = tmp.path().to_path_buf();
    let addr = format!("127.0.0.1:{}", free_port());
    let socket = root.join("m.sock");
    let m = Node::start(
        "m",
        &root.join("m"),
        &manager_args(&root.join("m"), "m", &socket, &addr, None),
    );
    let ctl = Ctl { socket };
    wait_for("manager", Duration::from_secs(30), || {
        ctl.run(&["node", "ls"]).status.success().then_some(())
    });
    let token = token(&ctl, "Worker:");
    let mut s = Swarm {
        _tmp: tmp,
        ctl,
        _nodes: vec![m],
        root,
        addr,
        token,
    };
    for w in workers {
        s.add_worker(w);
    }
    let n = workers.len() + 1;
    wait_for("all nodes READY", Duration::from_secs(30), || {
        (s.ctl.ok(&["node", "ls"]).matches(" READY ").count() == n).then_some(())
    });
    s
}

impl Swarm {
    fn add_worker(&mut self, name: &str) {
        let args: Vec<String> = vec![
            "-d".into(),
            self.root.join(name).display().to_string(),
            "--hostname".into(),
            name.into(),
            "--join-addr".into(),
            self.addr.clone(),
            "--join-token".into(),
            self.token.clone(),
            "--executor".into(),
            "sim".into(),
        ];
        self._nodes
            .push(Node::start(name, &self.root.join(name), &args));
    }

    /// Live tasks of a service: node name → count, plus the pending ones' messages.
    fn placement(&self, service: &str) -> (BTreeMap<String, usize>, Vec<String>) {
        let nodes: BTreeMap<String, String> = self
            .ctl
            .json(&["node", "ls"])
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["id"].as_str().unwrap().to_string(),
                    n["description"]["hostname"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect();
        let mut running = BTreeMap::new();
        let mut pending = Vec::new();
        for t in self
            .ctl
            .json(&["task", "ls", "--service", service])
            .as_array()
            .unwrap()
        {
            if t["desired_state"].as_i64() != Some(RUNNING) {
                continue;
            }
            match t["status"]["state"].as_i64() {
                Some(RUNNING) => {
                    *running
                        .entry(nodes[t["node_id"].as_str().unwrap()].clone())
                        .or_insert(0) += 1
                }
                Some(PENDING) => {
                    pending.push(t["status"]["message"].as_str().unwrap_or("").to_string())
                }
                _ => {}
            }
        }
        (running, pending)
    }
}

#[test]
fn max_replicas_per_node_leaves_the_rest_pending_with_the_reason() {
    let s = swarm(&["w1", "w2"]);
    s.ctl.ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "capped",
        "--image",
        "x",
        "--replicas",
        "5",
        "--replicas-max-per-node",
        "1",
    ]);
    let (running, pending) = wait_for("3 running, 2 pending", Duration::from_secs(30), || {
        let (r, p) = s.placement("capped");
        (r.values().sum::<usize>() == 3
            && p.len() == 2
            && p.iter().all(|m| m.contains("no suitable node")))
        .then_some((r, p))
    });
    assert!(running.values().all(|c| *c == 1), "{running:?}");
    assert!(pending[0].contains("max replicas per node"), "{pending:?}");
}

#[test]
fn a_global_service_follows_drains_and_new_nodes() {
    let mut s = swarm(&["w1"]);
    s.ctl.ok(&[
        "service", "create", "--name", "agent", "--image", "x", "--mode", "global",
    ]);
    wait_for("one task per node", Duration::from_secs(30), || {
        (s.placement("agent").0 == BTreeMap::from([("m".to_string(), 1), ("w1".to_string(), 1)]))
            .then_some(())
    });
    s.ctl.ok(&["node", "drain", "w1"]);
    wait_for("none on the drained node", Duration::from_secs(30), || {
        (s.placement("agent").0 == BTreeMap::from([("m".to_string(), 1)])).then_some(())
    });
    s.add_worker("w2");
    s.ctl.ok(&["node", "activate", "w1"]);
    wait_for("w1 back and w2 added", Duration::from_secs(30), || {
        let (r, _) = s.placement("agent");
        (r.len() == 3 && r.values().all(|c| *c == 1)).then_some(())
    });
}

#[test]
fn spread_over_a_label_and_restarts_capped_by_max_attempts() {
    let s = swarm(&["w1", "w2", "w3"]);
    for (n, zone) in [("m", "a"), ("w1", "a"), ("w2", "a"), ("w3", "b")] {
        s.ctl
            .ok(&["node", "update", n, "--label-add", &format!("zone={zone}")]);
    }
    s.ctl.ok(&[
        "service",
        "create",
        "--name",
        "zoned",
        "--image",
        "x",
        "--replicas",
        "4",
        "--placement-pref",
        "spread=node.labels.zone",
    ]);
    let r = wait_for("4 running", Duration::from_secs(30), || {
        Some(s.placement("zoned").0).filter(|r| r.values().sum::<usize>() == 4)
    });
    assert_eq!(
        r.get("w3"),
        Some(&2),
        "zone b (one node) gets half the tasks: {r:?}"
    );

    // A task that fails at once (sim: SIM_FAIL_AFTER_MS=0), restarted at most twice.
    s.ctl.ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "flappy",
        "--image",
        "x",
        "--env",
        "SIM_FAIL_AFTER_MS=50",
        "--restart-condition",
        "on-failure",
        "--restart-delay",
        "100ms",
        "--restart-max-attempts",
        "2",
    ]);
    let count = || {
        s.ctl
            .json(&["task", "ls", "-a", "--service", "flappy"])
            .as_array()
            .unwrap()
            .len()
    };
    wait_for("three attempts", Duration::from_secs(30), || {
        (count() >= 3).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count(), 3, "no fourth attempt");
}

#[test]
fn rebalance_moves_tasks_onto_nodes_that_joined() {
    let mut s = swarm(&["w1"]);
    s.ctl.ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--image",
        "x",
        "--replicas",
        "4",
        "--update-parallelism",
        "1",
    ]);
    wait_for("2 and 2", Duration::from_secs(30), || {
        (s.placement("web").0.values().copied().collect::<Vec<_>>() == [2, 2]).then_some(())
    });
    s.add_worker("w2");
    s.add_worker("w3");
    wait_for("4 READY nodes", Duration::from_secs(30), || {
        (s.ctl.ok(&["node", "ls"]).matches(" READY ").count() == 4).then_some(())
    });
    s.ctl.ok(&["service", "update", "web", "--rebalance"]);
    wait_for("one task per node", Duration::from_secs(60), || {
        let r = s.placement("web").0;
        (r.len() == 4 && r.values().all(|c| *c == 1)).then_some(())
    });
}
