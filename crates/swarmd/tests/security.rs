//! Secure by default, with the built binaries: join token rotation (old token refused at once,
//! new one accepted, joined nodes unaffected), the certificate expiry setting and its minimum,
//! and certificate renewal without a restart (new certificate on disk and on the wire, the
//! agent's session and tasks untouched).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::swarm::*;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const RUNNING: i64 = 512;

fn ready_count(ctl: &Ctl) -> usize {
    ctl.ok(&["node", "ls"]).matches(" READY ").count()
}

/// One manager on 127.0.0.1 with the sim executor; `extra` flags appended.
fn start_manager(dir: &Path, addr: &str, extra: &[&str]) -> (Node, Ctl) {
    let sock = dir.join("m1.sock");
    let mut args = manager_args(&dir.join("m1"), "m1", &sock, addr, None);
    args.extend(extra.iter().map(|s| s.to_string()));
    let node = Node::start("m1", &dir.join("m1"), &args);
    let ctl = Ctl { socket: sock };
    wait_for("m1", Duration::from_secs(30), || {
        ctl.run(&["cluster", "inspect", "default"])
            .status
            .success()
            .then_some(())
    });
    (node, ctl)
}

fn worker_args(dir: &Path, name: &str, manager: &str, token: &str) -> Vec<String> {
    vec![
        "-d".into(),
        dir.join(name).display().to_string(),
        "--hostname".into(),
        name.into(),
        "--join-addr".into(),
        manager.into(),
        "--join-token".into(),
        token.into(),
        "--executor".into(),
        "sim".into(),
    ]
}

#[test]
fn rotated_join_tokens_refuse_the_old_and_accept_the_new() {
    let tmp = test_dir();
    let addr = format!("127.0.0.1:{}", free_port());
    let (_m1, ctl) = start_manager(tmp.path(), &addr, &[]);
    let old_worker = token(&ctl, "Worker:");
    let old_manager = token(&ctl, "Manager:");
    let _w1 = Node::start(
        "w1",
        &tmp.path().join("w1"),
        &worker_args(tmp.path(), "w1", &addr, &old_worker),
    );
    wait_for("w1 READY", Duration::from_secs(30), || {
        (ready_count(&ctl) == 2).then_some(())
    });

    let out = ctl.ok(&[
        "cluster",
        "update",
        "default",
        "--rotate-join-token",
        "worker",
    ]);
    assert_eq!(out.trim().len(), 25, "prints the cluster ID: {out:?}");
    let new_worker = token(&ctl, "Worker:");
    assert_ne!(new_worker, old_worker);
    assert!(new_worker.starts_with("SWMTKN-1-"), "{new_worker}");
    // Same root CA, so the same digest; only the secret changes.
    assert_eq!(new_worker[..59], old_worker[..59]);
    assert_eq!(
        token(&ctl, "Manager:"),
        old_manager,
        "manager token untouched"
    );

    // The old token is refused at once, with one line naming the token.
    let (ok, stderr) = swarmd_exits(
        &worker_args(tmp.path(), "w2", &addr, &old_worker),
        Duration::from_secs(30),
    );
    assert!(!ok, "joined with a rotated token: {stderr}");
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("Error: "), "{stderr}");
    assert!(last.contains("join token"), "{last}");
    assert!(!tmp.path().join("w2/certificates/swarm-node.crt").exists());

    // The new one works, and the node joined with the old one is still READY.
    let _w3 = Node::start(
        "w3",
        &tmp.path().join("w3"),
        &worker_args(tmp.path(), "w3", &addr, &new_worker),
    );
    wait_for("w1 and w3 READY", Duration::from_secs(30), || {
        (ready_count(&ctl) == 3).then_some(())
    });
    let ls = ctl.ok(&["node", "ls"]);
    assert!(
        ls.lines()
            .any(|l| l.contains(" w1 ") && l.contains(" READY ")),
        "{ls}"
    );
    // By the name column: a random node ID may hold "w2" too.
    assert!(
        !ls.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("w2")),
        "{ls}"
    );

    // Rotating the manager token leaves the worker's alone.
    ctl.ok(&[
        "cluster",
        "update",
        "default",
        "--rotate-join-token",
        "manager",
    ]);
    assert_ne!(token(&ctl, "Manager:"), old_manager);
    assert_eq!(token(&ctl, "Worker:"), new_worker);
    let (ok, stderr) = swarmd_exits(
        &worker_args(tmp.path(), "m2", &addr, &old_manager),
        Duration::from_secs(30),
    );
    assert!(!ok, "joined with a rotated manager token: {stderr}");
}

/// Serial and not-after (unix seconds) of the node certificate in `dir`'s state.
fn cert_of(dir: &Path) -> (Vec<u8>, Vec<u8>, i64) {
    let pem = std::fs::read(dir.join("certificates/swarm-node.crt")).unwrap();
    let (_, p) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = p.parse_x509().unwrap();
    (
        p.contents.clone(),
        cert.raw_serial().to_vec(),
        cert.validity().not_after.timestamp(),
    )
}

/// The certificate the server at `addr` presents to a new TLS connection (DER).
fn presented_cert(addr: &str, root_pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(root_pem).unwrap())
        .unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from(swarm_api::MANAGER_SERVER_NAME).unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    })
}

/// Task ID → observed state of the live (desired RUNNING) tasks.
fn live_tasks(ctl: &Ctl) -> BTreeMap<String, i64> {
    ctl.json(&["task", "ls"])
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|t| t["desired_state"].as_i64() == Some(RUNNING))
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["status"]["state"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

fn node_ids(ctl: &Ctl) -> BTreeMap<String, String> {
    ctl.json(&["node", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .map(|n: &Value| {
            (
                n["spec"]["annotations"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                n["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn certificates_renew_without_restart_or_disruption() {
    let tmp = test_dir();
    let addr = format!("127.0.0.1:{}", free_port());
    // The manager renews 20 s after start, the worker 10 s after its start: both after the
    // expiry setting below and after the tasks run.
    let (mut m1, ctl) = start_manager(tmp.path(), &addr, &["--cert-renew-after-ms", "20000"]);
    let m1_dir = tmp.path().join("m1");

    // Below the minimum: refused with one line naming the flag, nothing changed.
    let out = ctl.run(&["cluster", "update", "default", "--cert-expiry", "30m"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("Error: ") && err.contains("cert-expiry"),
        "{err}"
    );
    assert!(ctl
        .ok(&["cluster", "inspect", "default"])
        .contains("Node certificate expiry: 2160h0m0s"));
    ctl.ok(&["cluster", "update", "default", "--cert-expiry", "1h"]);
    assert!(ctl
        .ok(&["cluster", "inspect", "default"])
        .contains("Node certificate expiry: 1h0m0s"));

    let (m1_der, m1_serial, m1_expiry) = cert_of(&m1_dir);
    let root_pem = std::fs::read(m1_dir.join("certificates/swarm-root-ca.crt")).unwrap();
    assert_eq!(presented_cert(&addr, &root_pem), m1_der);

    let mut args = worker_args(tmp.path(), "w1", &addr, &token(&ctl, "Worker:"));
    args.extend(["--cert-renew-after-ms".into(), "10000".into()]);
    let w1_dir = tmp.path().join("w1");
    let mut w1 = Node::start("w1", &w1_dir, &args);
    wait_for("w1 READY", Duration::from_secs(30), || {
        (ready_count(&ctl) == 2).then_some(())
    });
    let (_, w1_serial, w1_expiry) = cert_of(&w1_dir);
    // Joined after the change: its first certificate already lasts an hour.
    let now = swarm_api::now_ms() / 1000;
    assert!((w1_expiry - now - 3600).abs() < 120, "{w1_expiry} vs {now}");

    ctl.ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--image",
        "nginx",
        "--replicas",
        "4",
    ]);
    let ids = node_ids(&ctl);
    let before = wait_for("4 RUNNING tasks", Duration::from_secs(30), || {
        let t = live_tasks(&ctl);
        (t.len() == 4 && t.values().all(|s| *s == RUNNING)).then_some(t)
    });
    let on_w1 = ctl
        .json(&["task", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["node_id"].as_str() == Some(&ids["w1"]))
        .count();
    assert!(on_w1 > 0, "the scheduler spreads tasks onto w1 too");
    let sessions = |n: &Node| n.log().matches("dispatcher session open").count();
    let w1_sessions = sessions(&w1);
    let m1_sessions = sessions(&m1);

    // Both renew: new certificates on disk, of the cluster's 1 h life, same node IDs.
    for (name, dir, old_serial, node) in [
        ("w1", &w1_dir, &w1_serial, &w1),
        ("m1", &m1_dir, &m1_serial, &m1),
    ] {
        wait_for(
            &format!("{name} to renew its certificate"),
            Duration::from_secs(60),
            || (cert_of(dir).1 != *old_serial).then_some(()),
        );
        assert!(
            node.log().contains("node certificate renewed"),
            "{name}: {}",
            node.log()
        );
    }
    let (m1_new_der, _, m1_new_expiry) = cert_of(&m1_dir);
    let now = swarm_api::now_ms() / 1000;
    assert!((m1_new_expiry - now - 3600).abs() < 120, "{m1_new_expiry}");
    assert!(
        m1_new_expiry < m1_expiry,
        "the 90-day certificate was replaced"
    );
    assert_eq!(node_ids(&ctl), ids, "same node IDs");

    // New connections get the new certificate, from the same process.
    assert!(m1.child.as_mut().unwrap().try_wait().unwrap().is_none());
    assert!(w1.child.as_mut().unwrap().try_wait().unwrap().is_none());
    assert_eq!(presented_cert(&addr, &root_pem), m1_new_der);

    // Nothing was disturbed: both READY, same sessions, the same tasks still RUNNING (a few
    // heartbeats later, so a dropped session would have shown).
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(ready_count(&ctl), 2);
    assert_eq!(live_tasks(&ctl), before);
    assert_eq!(sessions(&w1), w1_sessions, "{}", w1.log());
    assert_eq!(sessions(&m1), m1_sessions, "{}", m1.log());
    assert!(!w1.log().contains("restarting"), "{}", w1.log());
}

/// A JSON array of byte values (how bytes fields print) as text.
fn bytes_text(v: &Value) -> String {
    let bytes: Vec<u8> = v
        .as_array()
        .map(|a| a.iter().map(|b| b.as_u64().unwrap() as u8).collect())
        .unwrap_or_default();
    String::from_utf8(bytes).unwrap()
}

/// Whether the first certificate of `chain_pem` is signed by the key of `root_pem`.
fn signed_by(chain_pem: &[u8], root_pem: &[u8]) -> bool {
    let (_, leaf) = x509_parser::pem::parse_x509_pem(chain_pem).unwrap();
    let (_, root) = x509_parser::pem::parse_x509_pem(root_pem).unwrap();
    let leaf = leaf.parse_x509().unwrap();
    let root = root.parse_x509().unwrap();
    leaf.verify_signature(Some(root.public_key())).is_ok()
}

#[test]
fn root_ca_rotation_moves_every_node_to_the_new_root_without_disruption() {
    let tmp = test_dir();
    let addr = format!("127.0.0.1:{}", free_port());
    let (_m1, ctl) = start_manager(tmp.path(), &addr, &[]);
    let old_token = token(&ctl, "Worker:");
    let mut workers = Vec::new();
    for name in ["w1", "w2"] {
        workers.push(Node::start(
            name,
            &tmp.path().join(name),
            &worker_args(tmp.path(), name, &addr, &old_token),
        ));
    }
    wait_for("3 nodes READY", Duration::from_secs(30), || {
        (ready_count(&ctl) == 3).then_some(())
    });
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--image",
        "nginx",
        "--replicas",
        "3",
    ]);
    let before = wait_for("3 RUNNING tasks", Duration::from_secs(30), || {
        let t = live_tasks(&ctl);
        (t.len() == 3 && t.values().all(|s| *s == RUNNING)).then_some(t)
    });
    let dirs: Vec<_> = ["m1", "w1", "w2"]
        .iter()
        .map(|n| tmp.path().join(n))
        .collect();
    let old_root = std::fs::read(dirs[0].join("certificates/swarm-root-ca.crt")).unwrap();
    let old_digest = ctl.json(&["cluster", "inspect", "default"])["root_ca"]["ca_cert_hash"]
        .as_str()
        .unwrap()
        .to_string();
    for d in &dirs {
        assert!(signed_by(
            &std::fs::read(d.join("certificates/swarm-node.crt")).unwrap(),
            &old_root
        ));
    }

    ctl.ok(&["cluster", "update", "default", "--rotate-root-ca"]);
    let out = ctl.run(&["cluster", "update", "default", "--rotate-root-ca"]);
    let err = String::from_utf8_lossy(&out.stderr);
    // A second rotation is refused while the first runs (unless it already finished).
    if !out.status.success() {
        assert!(err.contains("already in progress"), "{err}");
    }

    // The rotation finishes; every node stays READY throughout.
    let new_root = wait_for("the rotation to finish", Duration::from_secs(90), || {
        assert_eq!(
            ready_count(&ctl),
            3,
            "a node left READY during the rotation"
        );
        let c = ctl.json(&["cluster", "inspect", "default"]);
        let done = c["root_ca"]["root_rotation"].is_null()
            && c["root_ca"]["ca_cert_hash"].as_str() != Some(old_digest.as_str());
        done.then(|| bytes_text(&c["root_ca"]["ca_cert"]))
    });
    // Then every node drops the old root: its trust file is the new root alone, and its
    // certificate is signed by the new root.
    for d in &dirs {
        wait_for(
            &format!("{} to trust only the new root", d.display()),
            Duration::from_secs(60),
            || {
                assert_eq!(
                    ready_count(&ctl),
                    3,
                    "a node left READY during the rotation"
                );
                let trust = std::fs::read(d.join("certificates/swarm-root-ca.crt")).unwrap();
                (trust == new_root.as_bytes()).then_some(())
            },
        );
        let cert = std::fs::read(d.join("certificates/swarm-node.crt")).unwrap();
        assert!(signed_by(&cert, new_root.as_bytes()), "{}", d.display());
        assert!(!signed_by(&cert, &old_root), "{}", d.display());
    }
    // The store records each node's current certificate (what `node inspect` shows).
    for name in ["m1", "w1", "w2"] {
        let n = ctl.json(&["node", "inspect", name]);
        let recorded = bytes_text(&n["certificate"]["certificate"]);
        let on_disk =
            std::fs::read_to_string(tmp.path().join(name).join("certificates/swarm-node.crt"))
                .unwrap();
        assert_eq!(recorded, on_disk, "{name}");
    }

    // Tasks were not disturbed.
    assert_eq!(live_tasks(&ctl), before);
    for w in &workers {
        assert!(!w.log().contains("restarting"), "{}", w.log());
    }

    // Join tokens now name the new root: the old token is refused (its digest names the old
    // root), the new one, with the same secret, works.
    let new_token = token(&ctl, "Worker:");
    assert_ne!(new_token, old_token);
    assert_eq!(new_token[59..], old_token[59..], "same secret");
    let (ok, stderr) = swarmd_exits(
        &worker_args(tmp.path(), "w3", &addr, &old_token),
        Duration::from_secs(30),
    );
    assert!(!ok, "joined with a token naming the old root: {stderr}");
    assert!(stderr.contains("digest"), "{stderr}");
    let _w4 = Node::start(
        "w4",
        &tmp.path().join("w4"),
        &worker_args(tmp.path(), "w4", &addr, &new_token),
    );
    wait_for("w4 READY", Duration::from_secs(30), || {
        (ready_count(&ctl) == 4).then_some(())
    });
}

#[test]
fn root_ca_rotation_across_three_managers_keeps_raft_and_failover_working() {
    let tmp = test_dir();
    let sock = |n: &str| tmp.path().join(format!("{n}.sock"));
    let addrs: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let names = ["m1", "m2", "m3"];
    let mut nodes = vec![Node::start(
        "m1",
        &tmp.path().join("m1"),
        &manager_args(&tmp.path().join("m1"), "m1", &sock("m1"), &addrs[0], None),
    )];
    let ctl1 = Ctl { socket: sock("m1") };
    wait_for("m1", Duration::from_secs(30), || {
        ctl1.run(&["node", "ls"]).status.success().then_some(())
    });
    let mt = token(&ctl1, "Manager:");
    for i in 1..3 {
        let name = names[i];
        nodes.push(Node::start(
            name,
            &tmp.path().join(name),
            &manager_args(
                &tmp.path().join(name),
                name,
                &sock(name),
                &addrs[i],
                Some((&addrs[0], &mt)),
            ),
        ));
    }
    let reachable = |ctl: &Ctl| {
        ctl.run(&["node", "ls"])
            .status
            .success()
            .then(|| ctl.ok(&["node", "ls"]))
            .map(|t| t.matches(" REACHABLE").count())
            .unwrap_or(0)
    };
    wait_for("3 reachable managers", Duration::from_secs(60), || {
        (reachable(&ctl1) == 3).then_some(())
    });
    let old_digest = ctl1.json(&["cluster", "inspect", "default"])["root_ca"]["ca_cert_hash"]
        .as_str()
        .unwrap()
        .to_string();

    // Renewals reach the leader through followers: every manager ends on the new root alone.
    ctl1.ok(&["cluster", "update", "default", "--rotate-root-ca"]);
    let new_root = wait_for("the rotation to finish", Duration::from_secs(90), || {
        let c = ctl1.json(&["cluster", "inspect", "default"]);
        (c["root_ca"]["root_rotation"].is_null()
            && c["root_ca"]["ca_cert_hash"].as_str() != Some(old_digest.as_str()))
        .then(|| bytes_text(&c["root_ca"]["ca_cert"]))
    });
    for name in names {
        let d = tmp.path().join(name);
        wait_for(
            &format!("{name} to trust only the new root"),
            Duration::from_secs(60),
            || {
                (std::fs::read(d.join("certificates/swarm-root-ca.crt")).unwrap()
                    == new_root.as_bytes())
                .then_some(())
            },
        );
        let cert = std::fs::read(d.join("certificates/swarm-node.crt")).unwrap();
        assert!(signed_by(&cert, new_root.as_bytes()), "{name}");
    }

    // New connections between managers use the new certificates: kill the leader, the others
    // elect a new one and accept writes; the old leader comes back and rejoins.
    let leader = leader_name(&ctl1).unwrap();
    let li = names.iter().position(|n| *n == leader).unwrap();
    nodes[li].kill9();
    let other = Ctl {
        socket: sock(names[(li + 1) % 3]),
    };
    wait_for("a write after failover", Duration::from_secs(90), || {
        other
            .run(&[
                "service",
                "create",
                "--name",
                "after",
                "--image",
                "x",
                "--replicas",
                "1",
            ])
            .status
            .success()
            .then_some(())
    });
    nodes[li].spawn();
    wait_for(
        "3 reachable managers again",
        Duration::from_secs(90),
        || (reachable(&other) == 3).then_some(()),
    );
    let back = Ctl {
        socket: sock(leader.as_str()),
    };
    wait_for(
        "the old leader to see the write",
        Duration::from_secs(60),
        || {
            back.run(&["service", "ls"])
                .status
                .success()
                .then(|| back.ok(&["service", "ls"]))
                .filter(|t| t.contains("after"))
        },
    );
}
