//! Cluster-level helpers shared by the multi-manager tests.

use super::Ctl;
use std::collections::BTreeSet;
use std::path::Path;

/// Arguments of a manager on `addr` with 100 ms Raft ticks and the sim executor; joins when
/// `join` gives (manager address, manager token).
pub fn manager_args(
    dir: &Path,
    name: &str,
    socket: &Path,
    addr: &str,
    join: Option<(&str, &str)>,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-d".into(),
        dir.display().to_string(),
        "--hostname".into(),
        name.into(),
        "--listen-control-api".into(),
        socket.display().to_string(),
        "--listen-remote-api".into(),
        addr.into(),
        "--executor".into(),
        "sim".into(),
        "--tick-ms".into(),
        "100".into(),
    ];
    if let Some((join_addr, token)) = join {
        a.extend([
            "--join-addr".into(),
            join_addr.into(),
            "--join-token".into(),
            token.into(),
        ]);
    }
    a
}

/// Arguments of a worker with the sim executor joining the manager at `join_addr`.
pub fn worker_args(dir: &Path, name: &str, join_addr: &str, token: &str) -> Vec<String> {
    worker_args_with(dir, name, join_addr, token, "sim")
}

/// Like [`worker_args`] with another executor (`process`: tasks are real processes).
pub fn worker_args_with(
    dir: &Path,
    name: &str,
    join_addr: &str,
    token: &str,
    executor: &str,
) -> Vec<String> {
    vec![
        "-d".into(),
        dir.display().to_string(),
        "--hostname".into(),
        name.into(),
        "--join-addr".into(),
        join_addr.into(),
        "--join-token".into(),
        token.into(),
        "--executor".into(),
        executor.into(),
    ]
}

pub fn token(ctl: &Ctl, which: &str) -> String {
    let out = ctl.ok(&["cluster", "inspect", "default"]);
    out.lines()
        .find(|l| l.contains(which))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string()
}

/// Name of the manager `node ls` marks with `*`, asked through `ctl`.
pub fn leader_name(ctl: &Ctl) -> Option<String> {
    let out = ctl.run(&["node", "ls"]);
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let leaders: Vec<String> = text
        .lines()
        .filter(|l| l.trim_end().ends_with('*'))
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect();
    (leaders.len() == 1).then(|| leaders[0].clone())
}

pub fn service_names(ctl: &Ctl) -> Option<BTreeSet<String>> {
    let out = ctl.run(&["service", "ls", "--format", "json"]);
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(
        v.as_array()?
            .iter()
            .filter_map(|s| s["spec"]["annotations"]["name"].as_str().map(String::from))
            .collect(),
    )
}

/// Starts `n` managers named `m1…mn` on hosts 1..=n of `mesh` (port 4242), `m1` founding the
/// cluster and each next one joining it; returns them with their control sockets (in `root`)
/// once each answers.
pub fn start_managers(
    mesh: &super::netns::Mesh,
    root: &Path,
    n: usize,
) -> (Vec<super::Node>, Vec<std::path::PathBuf>) {
    let mut nodes = Vec::new();
    let mut sockets: Vec<std::path::PathBuf> = Vec::new();
    for i in 1..=n {
        let name = format!("m{i}");
        let dir = root.join(&name);
        let socket = root.join(format!("{name}.sock"));
        let addr = format!("{}:4242", mesh.ip(i));
        let join = sockets.first().map(|first| {
            let ctl = Ctl {
                socket: first.clone(),
            };
            (format!("{}:4242", mesh.ip(1)), token(&ctl, "Manager:"))
        });
        let args = manager_args(
            &dir,
            &name,
            &socket,
            &addr,
            join.as_ref().map(|(a, t)| (a.as_str(), t.as_str())),
        );
        nodes.push(super::Node::start_in(
            mesh.exec_prefix(i),
            &name,
            &dir,
            &args,
        ));
        let ctl = Ctl {
            socket: socket.clone(),
        };
        super::wait_for(
            &format!("{name} serving"),
            std::time::Duration::from_secs(60),
            || ctl.run(&["node", "ls"]).status.success().then_some(()),
        );
        sockets.push(socket);
    }
    (nodes, sockets)
}

/// Starts `count` workers named `w1…` on the hosts after the first `managers` of `mesh`,
/// joining manager `m1` with `executor`.
pub fn start_workers(
    mesh: &super::netns::Mesh,
    root: &Path,
    managers: usize,
    count: usize,
    ctl: &Ctl,
    executor: &str,
) -> Vec<super::Node> {
    let join = format!("{}:4242", mesh.ip(1));
    let tok = token(ctl, "Worker:");
    (1..=count)
        .map(|k| {
            let name = format!("w{k}");
            let dir = root.join(&name);
            let args = worker_args_with(&dir, &name, &join, &tok, executor);
            super::Node::start_in(mesh.exec_prefix(managers + k), &name, &dir, &args)
        })
        .collect()
}
