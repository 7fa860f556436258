//! Encryption at rest with the built binaries: a manager runs a service whose name and env value
//! are distinctive, is stopped, and no file anywhere under its state dir contains either (the
//! Raft log and snapshots are sealed); `inspect-state` still shows the service (it opens them
//! with the key in the state dir), and a restarted manager still has it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const NAME: &str = "secret-svc-name-7f3a";
const ENV_VALUE: &str = "value-9c2e";

/// Every regular file under `dir`, recursively, with its raw bytes.
fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn state_dir_reveals_no_service_names_or_env_values() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let socket = tmp.path().join("m.sock");
    let addr = format!("127.0.0.1:{}", free_port());
    let args: Vec<String> = vec![
        "-d".into(),
        dir.display().to_string(),
        "--listen-control-api".into(),
        socket.display().to_string(),
        "--listen-remote-api".into(),
        addr,
        "--hostname".into(),
        "m".into(),
        "--executor".into(),
        "process".into(),
    ];
    let mut node = Node::start("m", &dir, &args);
    let ctl = Ctl {
        socket: socket.clone(),
    };
    wait_for(
        "the manager's control socket",
        Duration::from_secs(30),
        || ctl.run(&["node", "ls"]).status.success().then_some(()),
    );
    ctl.ok(&[
        "service",
        "create",
        "--name",
        NAME,
        "--image",
        "busybox",
        "--command",
        "sleep",
        "--args",
        "300",
        "--env",
        &format!("SECRET_ENV={ENV_VALUE}"),
        "--stop-grace-period",
        "1s",
    ]);
    wait_for("the task running", Duration::from_secs(30), || {
        let ls = ctl.ok(&["task", "ls"]);
        ls.lines()
            .any(|l| l.contains(NAME) && l.contains("RUNNING"))
            .then_some(())
    });
    node.terminate();

    let files = all_files(&dir);
    assert!(
        files.iter().any(|(p, _)| p.ends_with("raft/log.redb")),
        "no raft log in {files:?}",
        files = files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    assert!(files.iter().any(|(p, _)| p.ends_with("raft/data-key")));
    for (path, bytes) in &files {
        for needle in [NAME, ENV_VALUE] {
            assert!(
                !contains(bytes, needle),
                "{} contains {needle:?} in the clear",
                path.display()
            );
        }
    }

    // The offline reader opens the sealed log with the state dir's key.
    let out = Command::new(swarmd_bin())
        .arg("inspect-state")
        .arg("-d")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "inspect-state: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(NAME), "{text}");

    // A restart reads its own sealed log back.
    node.spawn();
    let services = wait_for(
        "the service after a restart",
        Duration::from_secs(30),
        || {
            let out = ctl.run(&["service", "ls"]);
            let s = String::from_utf8_lossy(&out.stdout).to_string();
            (out.status.success() && s.contains(NAME)).then_some(s)
        },
    );
    assert!(services.contains(NAME), "{services}");
    node.terminate();
}
