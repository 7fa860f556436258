//! Helpers of the overlay tests (test hosts from [`super::netns`] running swarmd, with the
//! `process` executor or with a Docker engine per host from [`super::dockerd`]): a swarm on
//! the hosts, services that serve their own address, and looking from inside a task's
//! namespace (fetch, resolve). Test code only; it starts and inspects, and removes only the
//! namespaces the nodes recorded as theirs.

use super::netns::Mesh;
use super::{wait_for, Ctl, Node};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(60);

/// Serves its own interface addresses on port 7000 (busybox httpd), from the task's
/// directory. No commas: `--args` splits on them.
pub const SERVE_ADDRESS: &str = "mkdir -p www && busybox ip -4 -o addr show eth0 > www/index.html \
                             && exec busybox httpd -f -p 7000 -h www";

/// Like [`SERVE_ADDRESS`] for a container: the agent plugs its interface only once the
/// container runs, so it waits for an address on eth0 first; serves from `/www` (a container
/// has no task directory of ours).
pub const SERVE_WHEN_PLUGGED: &str =
    "until busybox ip -4 -o addr show eth0 | busybox grep -q inet; do busybox sleep 0.1; done; \
     mkdir -p /www && busybox ip -4 -o addr show eth0 > /www/index.html \
     && exec busybox httpd -f -p 7000 -h /www";

/// Removes, whatever the test's outcome, every namespace the nodes recorded as theirs.
pub struct Leftovers(pub Vec<PathBuf>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for dir in &self.0 {
            let owned = dir.join("worker/network/owned");
            for e in std::fs::read_dir(owned).into_iter().flatten().flatten() {
                let _ = Command::new("ip")
                    .args(["netns", "del"])
                    .arg(e.file_name())
                    .output();
            }
        }
    }
}

pub fn sh(args: &[&str]) -> (bool, String) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Fetches http://ADDR:7000/ from inside task namespace `ns` (with nc: this machine's
/// busybox wget crashes).
pub fn fetch(ns: &str, addr: &str) -> (bool, String) {
    fetch_port(ns, addr, 7000)
}

pub fn fetch_port(ns: &str, addr: &str, port: u16) -> (bool, String) {
    let (ok, text) = sh(&[
        "ip",
        "netns",
        "exec",
        ns,
        "sh",
        "-c",
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {addr} {port}"),
    ]);
    (ok && text.starts_with("HTTP/1.1 200"), text)
}

/// The addresses `name` resolves to from inside task namespace `ns` (busybox nslookup, through
/// the namespace's resolver file as `ip netns exec` shows it).
pub fn resolve(ns: &str, name: &str) -> Vec<String> {
    let (_, text) = sh(&["ip", "netns", "exec", ns, "busybox", "nslookup", name]);
    // The answers follow the "Name:" line; the server's own address comes before it.
    text.split_once("Name:")
        .map(|(_, answers)| answers)
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Address:"))
        .map(|a| a.trim().to_string())
        .collect()
}

/// (task ID, node ID, bare address) of the running tasks of `service`.
pub fn running(ctl: &Ctl, service: &str) -> Vec<(String, String, String)> {
    let tasks: Value = ctl.json(&["task", "ls", "--service", service]);
    tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"]["state"] == 512 || t["status"]["state"] == "TASK_STATE_RUNNING")
        .filter_map(|t| {
            let addr = t["networks"][0]["addresses"][0].as_str()?;
            Some((
                t["id"].as_str()?.to_string(),
                t["node_id"].as_str()?.to_string(),
                addr.split('/').next()?.to_string(),
            ))
        })
        .collect()
}

pub fn netns_names() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

pub fn node_ids(ctl: &Ctl) -> Vec<String> {
    let nodes = ctl.json(&["node", "ls"]);
    nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

pub fn host_of(nodes: &Value, node_id: &str) -> String {
    nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == node_id)
        .and_then(|n| n["description"]["hostname"].as_str())
        .unwrap()
        .to_string()
}

/// A manager on host 1 and workers on hosts 2-3, `process` executor; returns once all three
/// nodes are ready.
pub fn start(mesh: &Mesh, root: &Path) -> (Vec<Node>, Ctl) {
    start_with(mesh, root, "process", |_| Vec::new())
}

/// Like [`start`], with `executor` and host `i`'s swarmd given `extra(i)` besides (e.g. its
/// own engine's `--engine-addr`).
pub fn start_with(
    mesh: &Mesh,
    root: &Path,
    executor: &str,
    extra: impl Fn(usize) -> Vec<String>,
) -> (Vec<Node>, Ctl) {
    // Without busybox every task's server fails to start and the test would only time out.
    assert!(
        Command::new("busybox")
            .arg("true")
            .status()
            .is_ok_and(|s| s.success()),
        "the overlay tests serve from busybox: install busybox-static (scripts/test.sh does)"
    );
    let socket = root.join("m.sock");
    let manager_addr = format!("{}:4242", mesh.ip(1));
    let dir = |i: usize| root.join(format!("h{i}"));
    let mut args = super::swarm::manager_args(&dir(1), "h1", &socket, &manager_addr, None);
    // The executor asked for, whatever the machine has.
    let exec = args.iter().position(|a| a == "sim").unwrap();
    args[exec] = executor.into();
    args.extend(extra(1));
    let mut nodes = vec![Node::start_in(mesh.enter_prefix(1), "h1", &dir(1), &args)];
    let ctl = Ctl { socket };
    wait_for("the manager", WAIT, || {
        ctl.run(&["node", "ls"]).status.success().then_some(())
    });
    let token = super::swarm::token(&ctl, "Worker");
    for i in 2..=3 {
        let name = format!("h{i}");
        let d = dir(i).display().to_string();
        let mut args: Vec<String> = [
            "-d",
            &d,
            "--hostname",
            &name,
            "--executor",
            executor,
            "--join-addr",
            &manager_addr,
            "--join-token",
            &token,
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra(i));
        nodes.push(Node::start_in(mesh.enter_prefix(i), &name, &dir(i), &args));
    }
    wait_for("three nodes ready", WAIT, || {
        let nodes = ctl.json(&["node", "ls"]);
        let ready = nodes
            .as_array()?
            .iter()
            .filter(|n| n["status"]["state"] == 2 || n["status"]["state"] == "NODE_STATE_READY")
            .count();
        (ready == 3).then_some(())
    });
    (nodes, ctl)
}

/// The VIP of `service` on its first network, without prefix length.
pub fn vip(ctl: &Ctl, service: &str) -> String {
    let svc = ctl.json(&["service", "inspect", service]);
    svc["endpoint"]["virtual_ips"][0]["addr"]
        .as_str()
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("{service} has no VIP: {svc}"))
        .to_string()
}

/// Waits until `service` has exactly `n` running tasks with addresses; returns them.
pub fn wait_running(ctl: &Ctl, service: &str, n: usize) -> Vec<(String, String, String)> {
    wait_for(&format!("{n} {service} tasks running"), WAIT, || {
        let r = running(ctl, service);
        (r.len() == n).then_some(r)
    })
}

/// Which of `addrs` answered `tries` connections to `vip` (port 7000) from namespace `ns`.
pub fn answered(
    ns: &str,
    vip: &str,
    addrs: &[String],
    tries: usize,
) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for _ in 0..tries {
        let (ok, page) = fetch(ns, vip);
        if ok {
            out.extend(addrs.iter().filter(|a| page.contains(a.as_str())).cloned());
        }
    }
    out
}

/// `swarmctl service create --detach --name NAME --image IMAGE --network NETWORK EXTRA…`,
/// its tasks running `busybox sh -c SCRIPT` when a script is given (no commas in it:
/// `--args` splits on them).
pub fn create_service(
    ctl: &Ctl,
    name: &str,
    image: &str,
    network: &str,
    extra: &[&str],
    script: Option<&str>,
) {
    let mut args = vec![
        "service",
        "create",
        "--detach",
        "--name",
        name,
        "--image",
        image,
        "--network",
        network,
    ];
    args.extend(extra);
    if let Some(script) = script {
        args.extend([
            "--command",
            "busybox",
            "--args",
            "sh",
            "--args",
            "-c",
            "--args",
            script,
        ]);
    }
    ctl.ok(&args);
}
