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
        "sim".into(),
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
