//! A manager whose disk fills up, with the built binaries on test hosts: three managers, the
//! third with its state dir on a small tmpfs. Its disk is filled while services are created
//! through the first: every create is still acknowledged (the other two are a quorum), and the
//! full manager exits non-zero with one line naming its state dir and the cause — it does not
//! linger with a dead Raft member answering "no leader" forever. Once the space is freed and
//! it is started again, it catches up: its own store on disk holds every acknowledged service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::netns::Mesh;
use common::small_disk::SmallDisk;
use common::swarm::*;
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// The service names in the store a stopped manager's state dir holds.
fn services_on_disk(dir: &Path) -> Vec<String> {
    let v = inspect_state_json(dir).unwrap();
    v["current"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["spec"]["annotations"]["name"].as_str().map(String::from))
        .collect()
}

#[test]
fn a_manager_out_of_disk_exits_and_catches_up_once_restarted() {
    let mesh = Mesh::new(3).expect("network namespaces for the test hosts (run as root)");
    let tmp = tempfile::tempdir().unwrap();
    // Dropped before `tmp`: unmounted before the directory goes.
    let disk = SmallDisk::mount(&tmp.path().join("m3"), 64).expect("a tmpfs (run as root)");
    let (mut nodes, sockets) = start_managers(&mesh, tmp.path(), 3);
    let m1 = Ctl {
        socket: sockets[0].clone(),
    };
    let create = |name: &str| {
        m1.ok(&[
            "service",
            "create",
            "--name",
            name,
            "--image",
            "busybox",
            "--replicas",
            "0",
        ]);
    };
    let mut acked = vec!["before".to_string()];
    create("before");

    disk.fill().unwrap();
    // Writes go on through the other two until m3 needs a block it cannot get; redb's file
    // may hold free pages for a while first.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = nodes[2].child.as_mut().unwrap().try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "m3 still runs with a full disk after {} acknowledged creates",
            acked.len()
        );
        let name = format!("full-{}", acked.len());
        create(&name);
        acked.push(name);
    };
    assert!(!status.success(), "m3 exited with {status}");
    let log = nodes[2].log();
    let error = log
        .lines()
        .find(|l| l.starts_with("Error: "))
        .unwrap_or_else(|| panic!("no one-line error in m3's log:\n{log}"));
    assert!(
        error.contains("No space left on device") && error.contains(&disk_dir(&tmp)),
        "{error}"
    );
    assert!(!log.contains("panicked"), "{log}");
    // The other two still take writes.
    create("while-down");
    acked.push("while-down".into());

    disk.free();
    nodes[2].child = None;
    nodes[2].spawn();
    create("after");
    acked.push("after".into());
    acked.sort();
    // m3's own store, read from its disk while it is stopped, until it has caught up.
    let m3_dir = tmp.path().join("m3");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_secs(2));
        nodes[2].terminate();
        let mut held = services_on_disk(&m3_dir);
        held.sort();
        if held == acked {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "m3 never caught up: it holds {held:?}, acknowledged {acked:?}"
        );
        nodes[2].spawn();
    }
    for n in &mut nodes {
        n.terminate();
    }
    drop(disk);
}

fn disk_dir(tmp: &tempfile::TempDir) -> String {
    tmp.path().join("m3").display().to_string()
}
