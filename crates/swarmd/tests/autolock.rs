//! Autolock, with the built binaries: turning it on prints an unlock key and seals the
//! manager's TLS key and Raft key seed; a restarted manager stays locked (every control call
//! says so) until `swarmctl cluster unlock` gets the right key (a wrong one is refused);
//! `--unlock-key` at start-up works the same way; a rotated key replaces the old one; turning
//! autolock off unseals the keys and a restart needs nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::swarm::*;
use common::*;
use std::path::Path;
use std::time::Duration;

const SEALED: &[u8] = b"SWARM-SEALED-1\n";

fn sealed(dir: &Path) -> (bool, bool) {
    let read = |f: &str| std::fs::read(dir.join("certificates").join(f)).unwrap();
    (
        read("swarm-node.key").starts_with(SEALED),
        read("swarm-raft.kek").starts_with(SEALED),
    )
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// Waits until the control socket answers `node ls` (unlocked and serving).
fn wait_serving(ctl: &Ctl) {
    wait_for("node ls to answer", Duration::from_secs(30), || {
        ctl.run(&["node", "ls"]).status.success().then_some(())
    });
}

/// Waits until a locked manager answers on its socket, refusing with the locked message.
fn wait_locked(ctl: &Ctl) -> String {
    wait_for(
        "the locked manager's socket",
        Duration::from_secs(30),
        || {
            let out = ctl.run(&["node", "ls"]);
            let err = stderr_of(&out);
            (!out.status.success() && err.contains("locked")).then_some(err)
        },
    )
}

#[test]
fn autolock_keeps_a_restarted_manager_locked_until_the_right_key() {
    let tmp = test_dir();
    let dir = tmp.path().join("m1");
    let sock = tmp.path().join("m1.sock");
    let addr = format!("127.0.0.1:{}", free_port());
    let args = manager_args(&dir, "m1", &sock, &addr, None);
    let mut m1 = Node::start("m1", &dir, &args);
    let ctl = Ctl {
        socket: sock.clone(),
    };
    wait_serving(&ctl);
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "vault",
        "--image",
        "busybox",
        "--replicas",
        "1",
    ]);
    assert_eq!(sealed(&dir), (false, false));
    let none = ctl.run(&["cluster", "unlock-key"]);
    assert!(!none.status.success());
    assert!(
        stderr_of(&none).contains("autolock is off"),
        "{}",
        stderr_of(&none)
    );

    // On: the key is printed once, and the manager seals its keys with it.
    let out = ctl.ok(&["cluster", "update", "default", "--autolock", "true"]);
    let key = out
        .split_whitespace()
        .find(|w| w.starts_with("SWMKEY-1-"))
        .unwrap_or_else(|| panic!("no key in {out:?}"))
        .to_string();
    assert_eq!(ctl.ok(&["cluster", "unlock-key", "-q"]).trim(), key);
    assert!(ctl
        .ok(&["cluster", "inspect", "default"])
        .contains("Autolock: true"));
    assert!(!ctl.ok(&["cluster", "inspect", "default"]).contains(&key));
    wait_for("keys sealed", Duration::from_secs(20), || {
        (sealed(&dir) == (true, true)).then_some(())
    });

    // Restarted: locked. Control calls say so; a wrong key is refused and changes nothing.
    m1.terminate();
    m1.spawn();
    let err = wait_locked(&ctl);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("swarmctl cluster unlock"), "{err}");
    let wrong = format!("SWMKEY-1-{}", "0".repeat(64));
    let out = ctl.run(&["cluster", "unlock", "--unlock-key", &wrong]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("invalid unlock key"),
        "{}",
        stderr_of(&out)
    );
    let out = ctl.run(&["cluster", "unlock", "--unlock-key", "SWMKEY-1-short"]);
    assert!(
        stderr_of(&out).contains("unlock key"),
        "{}",
        stderr_of(&out)
    );
    wait_locked(&ctl);
    // The right key: it serves, with its state.
    ctl.ok(&["cluster", "unlock", "--unlock-key", &key]);
    wait_serving(&ctl);
    assert!(ctl.ok(&["service", "ls"]).contains("vault"));
    assert!(ctl
        .run(&["cluster", "unlock", "--unlock-key", &key])
        .stderr
        .starts_with(b"Error: this manager is not locked"));

    // Rotation: a new key; the old one no longer opens the keys.
    let key_file = || std::fs::read(dir.join("certificates/swarm-node.key")).unwrap();
    let before = key_file();
    let key2 = ctl
        .ok(&["cluster", "unlock-key", "--rotate", "-q"])
        .trim()
        .to_string();
    assert!(key2.starts_with("SWMKEY-1-") && key2 != key, "{key2}");
    wait_for("keys re-sealed", Duration::from_secs(20), || {
        (key_file() != before).then_some(())
    });
    m1.terminate();
    // Offline reading needs the key too.
    let inspect = |key: Option<&str>| {
        let mut c = std::process::Command::new(swarmd_bin());
        c.args(["inspect-state", "-d"]).arg(&dir);
        if let Some(k) = key {
            c.args(["--unlock-key", k]);
        }
        c.output().unwrap()
    };
    let out = inspect(None);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("locked (autolock)"),
        "{}",
        stderr_of(&out)
    );
    let out = inspect(Some(&key2));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("vault"));
    let mut with_old = args.clone();
    with_old.extend(["--unlock-key".into(), key.clone()]);
    let (ok, stderr) = swarmd_exits(&with_old, Duration::from_secs(30));
    assert!(!ok, "started with the rotated-away key: {stderr}");
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("Error: --unlock-key") && last.contains("invalid unlock key"),
        "{stderr}"
    );
    let mut with_new = args.clone();
    with_new.extend(["--unlock-key".into(), key2.clone()]);
    let mut m1 = Node::start("m1", &dir, &with_new);
    wait_serving(&ctl);
    assert!(ctl.ok(&["service", "ls"]).contains("vault"));

    // Off: keys unsealed, and a restart needs no key.
    ctl.ok(&["cluster", "update", "default", "--autolock", "false"]);
    wait_for("keys unsealed", Duration::from_secs(20), || {
        (sealed(&dir) == (false, false)).then_some(())
    });
    m1.terminate();
    let _m1 = Node::start("m1", &dir, &args);
    wait_serving(&ctl);
    assert!(ctl.ok(&["service", "ls"]).contains("vault"));
}
