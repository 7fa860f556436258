//! The install scripts as an operator runs them, each on its own test host (a network
//! namespace, see `common::netns`), without systemd: `install/manager-node.sh` installs the
//! binaries and starts a manager, printing the worker join command; `install/worker-node.sh`
//! joins with it; both are idempotent, refuse bad input with one line, and uninstall.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::netns::Mesh;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../install")
        .join(name)
}

/// Runs an install script on test host `host` with the given options.
fn run(mesh: &Mesh, host: usize, name: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &mesh.ns(host), "bash"])
        .arg(script(name))
        .args(args);
    cmd.env("SWARM_INIT", "none")
        .env("SWARM_BIN_DIR", swarmd_bin().parent().unwrap());
    cmd.stdin(std::process::Stdio::null()).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn pid(state: &Path) -> Option<u32> {
    std::fs::read_to_string(state.join("swarmd.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Kills whatever the scripts started, should the test fail half way.
struct Reap(Vec<PathBuf>);

impl Drop for Reap {
    fn drop(&mut self) {
        for s in &self.0 {
            if let Some(p) = pid(s) {
                let _ = Command::new("kill").arg("-9").arg(p.to_string()).status();
            }
        }
    }
}

#[test]
fn install_scripts_set_up_a_manager_and_join_a_worker() {
    let mesh = Mesh::new(2).expect("network namespaces for the test hosts (run as root)");
    let tmp = test_dir();
    let (m_state, w_state) = (tmp.path().join("m-state"), tmp.path().join("w-state"));
    let _reap = Reap(vec![m_state.clone(), w_state.clone()]);
    let socket = tmp.path().join("m.sock");
    let m_prefix = tmp.path().join("m-prefix");
    let addr = format!("{}:4242", mesh.ip(1));
    let m_args = |name: &str| -> Vec<String> {
        vec![
            "--name".into(),
            name.into(),
            "--addr".into(),
            addr.clone(),
            "--prefix".into(),
            m_prefix.display().to_string(),
            "--state-dir".into(),
            m_state.display().to_string(),
            "--socket".into(),
            socket.display().to_string(),
        ]
    };

    // Bad input: one line naming the option, nothing started.
    let out = run(&mesh, 1, "manager-node.sh", &as_refs(&m_args("bad name")));
    assert!(!out.status.success());
    assert!(
        text(&out).trim().starts_with("Error: name:"),
        "{}",
        text(&out)
    );
    assert!(pid(&m_state).is_none());

    // The manager.
    let out = run(&mesh, 1, "manager-node.sh", &as_refs(&m_args("mgr-1")));
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    let join_line = said
        .lines()
        .find(|l| l.contains("worker-node.sh"))
        .expect(&said)
        .to_string();
    let token = join_line
        .split_whitespace()
        .find(|w| w.starts_with("SWMTKN-1-"))
        .unwrap()
        .to_string();
    assert!(join_line.contains(&addr), "{join_line}");
    let manager_pid = pid(&m_state).unwrap();
    assert!(alive(manager_pid));
    assert!(m_prefix.join("bin/swarmd").exists() && m_prefix.join("bin/swarmctl").exists());

    // Idempotent: a second run starts nothing new.
    let out = run(&mesh, 1, "manager-node.sh", &as_refs(&m_args("mgr-1")));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already running"), "{}", text(&out));
    assert_eq!(pid(&m_state), Some(manager_pid));

    // The worker, on the other host.
    let w_prefix = tmp.path().join("w-prefix");
    let w_args = |name: &str, tok: &str| -> Vec<String> {
        vec![
            "--name".into(),
            name.into(),
            "--manager".into(),
            addr.clone(),
            "--token".into(),
            tok.into(),
            "--executor".into(),
            "sim".into(),
            "--prefix".into(),
            w_prefix.display().to_string(),
            "--state-dir".into(),
            w_state.display().to_string(),
        ]
    };
    let out = run(
        &mesh,
        2,
        "worker-node.sh",
        &as_refs(&w_args("wkr-1", "SWMTKN-1-nope")),
    );
    assert!(!out.status.success());
    assert!(
        text(&out).trim().starts_with("Error: token:"),
        "{}",
        text(&out)
    );
    let out = run(
        &mesh,
        2,
        "worker-node.sh",
        &as_refs(&w_args("wkr-1", &token)),
    );
    assert!(out.status.success(), "{}", text(&out));
    let ctl = Ctl {
        socket: socket.clone(),
    };
    wait_for("two READY nodes", Duration::from_secs(30), || {
        (ctl.ok(&["node", "ls"]).matches(" READY ").count() == 2).then_some(())
    });
    let out = run(
        &mesh,
        2,
        "worker-node.sh",
        &as_refs(&w_args("wkr-1", &token)),
    );
    assert!(text(&out).contains("already running"), "{}", text(&out));

    // Uninstall: processes stopped, binaries gone, state kept.
    let worker_pid = pid(&w_state).unwrap();
    for (host, name, prefix, state) in [
        (2, "worker-node.sh", &w_prefix, &w_state),
        (1, "manager-node.sh", &m_prefix, &m_state),
    ] {
        let out = run(
            &mesh,
            host,
            name,
            &[
                "--uninstall",
                "--prefix",
                &prefix.display().to_string(),
                "--state-dir",
                &state.display().to_string(),
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        assert!(!prefix.join("bin/swarmd").exists());
        assert!(state.join("certificates").exists(), "state kept");
    }
    wait_for("both stopped", Duration::from_secs(20), || {
        (!alive(worker_pid) && !alive(manager_pid)).then_some(())
    });
}
