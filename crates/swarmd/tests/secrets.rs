//! Secrets end to end with the built binaries: one manager and one worker, process executor.
//! A secret made from a file reaches the one task that uses it (on the worker) as a file named
//! in `SWARM_SECRETS_DIR`, on the tmpfs (`/dev/shm/swarmd-<node id>/`) and nowhere in the
//! state dir while the task runs, is never printed by `secret inspect`/`ls`, cannot be removed
//! while used, is gone from the worker once the service is, and never appears in a node's log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::PathBuf;
use std::time::Duration;

const VALUE: &str = "hunter2-Sup3rSecretValue-9f8e7d";

/// Every file under `root`, recursively.
/// True when `path` is on a tmpfs (as `stat -f` sees it).
fn on_tmpfs(path: &str) -> bool {
    std::process::Command::new("stat")
        .args(["-f", "-c", "%T", path])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "tmpfs")
}

/// The ID of the node with this hostname.
fn node_id(ctl: &Ctl, hostname: &str) -> String {
    let nodes = ctl.json(&["node", "ls"]);
    nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["description"]["hostname"].as_str() == Some(hostname))
        .and_then(|n| n["id"].as_str())
        .unwrap_or_else(|| panic!("no node {hostname}: {nodes}"))
        .to_string()
}

#[test]
fn secret_reaches_only_its_task_and_never_a_log() {
    let tmp = test_dir();
    let root = tmp.path();
    let addr = format!("127.0.0.1:{}", free_port());
    let socket = root.join("m/swarm.sock");
    let d = |n: &str| root.join(n);
    let s = |v: &str| v.to_string();
    let manager = Node::start(
        "node-1",
        &d("node-1"),
        &[
            s("-d"),
            d("node-1").display().to_string(),
            s("--listen-control-api"),
            socket.display().to_string(),
            s("--hostname"),
            s("node-1"),
            s("--executor"),
            s("process"),
            s("--listen-remote-api"),
            addr.clone(),
        ],
    );
    let ctl = Ctl { socket };
    wait_for("the control socket", Duration::from_secs(30), || {
        ctl.run(&["node", "ls"]).status.success().then_some(())
    });
    let token = common::swarm::token(&ctl, "Worker");
    let worker = Node::start(
        "node-2",
        &d("node-2"),
        &[
            s("-d"),
            d("node-2").display().to_string(),
            s("--hostname"),
            s("node-2"),
            s("--executor"),
            s("process"),
            s("--join-addr"),
            addr.clone(),
            s("--join-token"),
            token,
        ],
    );
    wait_for("two READY nodes", Duration::from_secs(30), || {
        let out = ctl.ok(&["node", "ls"]);
        (out.matches("READY").count() == 2).then_some(())
    });

    // Created from a file; neither inspect nor ls shows the data, in any format.
    let file = root.join("db.txt");
    std::fs::write(&file, VALUE).unwrap();
    let id = ctl.ok(&["secret", "create", "db", "-f", file.to_str().unwrap()]);
    let id = id.trim();
    assert!(!id.is_empty());
    for args in [
        vec!["secret", "inspect", "db"],
        vec!["secret", "inspect", "db", "--format", "json"],
        vec!["secret", "ls"],
        vec!["secret", "ls", "--format", "json"],
    ] {
        let out = ctl.ok(&args);
        assert!(out.contains(id), "{args:?} names the secret: {out}");
        assert!(!out.contains(VALUE), "{args:?} printed the secret: {out}");
        // JSON shows bytes as numbers, which the check above would miss.
        if args.contains(&"json") {
            assert!(
                out.contains("\"data\": []"),
                "{args:?} printed data bytes: {out}"
            );
        }
    }
    let dup = ctl.run(&["secret", "create", "db", "--data", "other"]);
    assert!(!dup.status.success(), "a second secret named db");

    // A service on the worker copies its secret file, upper-cased (so a grep for the value
    // does not find the copy), where the test can read it, and names the file's directory.
    let unknown = ctl.run(&[
        "service", "create", "--name", "bad", "--image", "busybox", "--secret", "nope",
    ]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("secret nope not found"));
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "app",
        "--image",
        "busybox",
        "--constraint",
        "node.hostname==node-2",
        "--secret",
        "db",
        "--command",
        "sh",
        "--args",
        "-c",
        "--args",
        "tr a-z A-Z < \"$SWARM_SECRETS_DIR/db\" > out.txt; echo \"$SWARM_SECRETS_DIR\" > dir.txt; stat -c %a \"$SWARM_SECRETS_DIR/db\" > mode.txt; sleep 3600",
    ]);
    let tasks_dir = d("node-2").join("worker/tasks");
    let out_file = wait_for(
        "the task's copy of the secret",
        Duration::from_secs(30),
        || {
            files_under(&tasks_dir).into_iter().find(|p| {
                p.file_name().is_some_and(|n| n == "mode.txt")
                    && std::fs::read_to_string(p).is_ok_and(|s| !s.is_empty())
            })
        },
    );
    let task_dir = out_file.parent().unwrap().to_path_buf();
    assert_eq!(
        std::fs::read_to_string(task_dir.join("out.txt")).unwrap(),
        VALUE.to_uppercase()
    );
    let secrets_dir = PathBuf::from(
        std::fs::read_to_string(task_dir.join("dir.txt"))
            .unwrap()
            .trim(),
    );
    assert_eq!(
        std::fs::read_to_string(secrets_dir.join("db")).unwrap(),
        VALUE
    );
    let worker_id = node_id(&ctl, "node-2");
    if on_tmpfs("/dev/shm") {
        assert!(
            secrets_dir.starts_with(format!("/dev/shm/swarmd-{worker_id}/")),
            "secret files not on the tmpfs: {}",
            secrets_dir.display()
        );
    } else {
        eprintln!("/dev/shm is not a tmpfs here: secret files are in the state dir");
    }
    // While the task runs, no file of any node's state dir holds the value.
    if on_tmpfs("/dev/shm") {
        for node in ["node-1", "node-2"] {
            for p in files_under(&d(node)) {
                let bytes = std::fs::read(&p).unwrap_or_default();
                assert!(
                    !bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()),
                    "{} holds the secret",
                    p.display()
                );
            }
        }
    }
    assert_eq!(
        std::fs::read_to_string(task_dir.join("mode.txt"))
            .unwrap()
            .trim(),
        "400"
    );
    // Only the node running the task received it.
    let manager_id = node_id(&ctl, "node-1");
    for dir in [
        d("node-1").join("worker"),
        PathBuf::from(format!("/dev/shm/swarmd-{manager_id}")),
    ] {
        assert!(
            !files_under(&dir).iter().any(|p| p.ends_with("secrets/db")),
            "the manager's own agent got the secret file"
        );
    }

    // In use: refused, naming the service.
    let rm = ctl.run(&["secret", "rm", "db"]);
    assert!(!rm.status.success(), "removed a secret in use");
    let err = String::from_utf8_lossy(&rm.stderr);
    assert!(err.contains("secret db is in use by service app"), "{err}");

    // Once the service is gone, so is the file, and the secret can go.
    ctl.ok(&["service", "rm", "app"]);
    wait_for(
        "the secret file gone from the worker",
        Duration::from_secs(30),
        || {
            (!secrets_dir.exists()
                && !files_under(&d("node-2"))
                    .iter()
                    .any(|p| p.ends_with("secrets/db")))
            .then_some(())
        },
    );
    wait_for("secret rm to succeed", Duration::from_secs(30), || {
        ctl.run(&["secret", "rm", "db"])
            .status
            .success()
            .then_some(())
    });
    assert!(!ctl.ok(&["secret", "ls"]).contains(id));

    // Configs: the same commands, with the size shown.
    ctl.ok(&["config", "create", "app.conf", "--data", "port=80"]);
    let inspect = ctl.ok(&["config", "inspect", "app.conf"]);
    assert!(inspect.contains("7 bytes"), "{inspect}");

    // Nothing either node logged holds the value.
    for (name, node) in [("manager", &manager), ("worker", &worker)] {
        let log = node.log();
        assert!(!log.is_empty(), "{name} log is empty: wrong path?");
        assert!(!log.contains(VALUE), "{name} logged the secret");
    }
}
