//! Authorization on the mutual-TLS remote API, with certificates issued by a real cluster:
//! Raft is for managers only, the dispatcher needs a certificate, and the CA's root is open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::time::Duration;
use swarm_api::raft_client::RaftClient;
use swarm_api::{GetRootCaCertificateRequest, HeartbeatRequest, NodeRole, RaftMessage};
use swarm_ca::NodeCredentials;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::Code;

async fn channel(addr: &str, tls: ClientTlsConfig) -> Channel {
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn raft_refuses_worker_certificates_and_dispatcher_needs_one() {
    swarm_ca::install_ring_provider();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let addr = format!("127.0.0.1:{}", free_port());
    let socket = root.join("m.sock");
    let m_args: Vec<String> = vec![
        "-d".into(),
        root.join("m").display().to_string(),
        "--listen-control-api".into(),
        socket.display().to_string(),
        "--listen-remote-api".into(),
        addr.clone(),
        "--hostname".into(),
        "m".into(),
        // The process executor, whether or not a Docker engine answers on this machine.
        "--executor".into(),
        "process".into(),
    ];
    let _m = Node::start("m", &root.join("m"), &m_args);
    let ctl = Ctl { socket };
    let out = wait_for("manager", Duration::from_secs(30), || {
        let o = ctl.run(&["cluster", "inspect", "default"]);
        o.status
            .success()
            .then(|| String::from_utf8(o.stdout).unwrap())
    });
    let token = out
        .lines()
        .find(|l| l.contains("Worker:"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    let w_args: Vec<String> = vec![
        "-d".into(),
        root.join("w").display().to_string(),
        "--hostname".into(),
        "w".into(),
        "--executor".into(),
        "process".into(),
        "--join-addr".into(),
        addr.clone(),
        "--join-token".into(),
        token,
    ];
    let mut w = Node::start("w", &root.join("w"), &w_args);
    wait_for("worker certificate", Duration::from_secs(30), || {
        root.join("w/certificates/swarm-node.crt")
            .exists()
            .then_some(())
    });
    w.terminate();

    let worker = NodeCredentials::load(&root.join("w")).unwrap().unwrap();
    let manager = NodeCredentials::load(&root.join("m")).unwrap().unwrap();
    assert_eq!(worker.role, NodeRole::Worker);

    let msg = RaftMessage {
        payload: vec![1, 2, 3],
    };
    let err = RaftClient::new(channel(&addr, worker.client_tls()).await)
        .vote(msg.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err =
        RaftClient::new(channel(&addr, swarm_ca::anonymous_client_tls(&worker.root_pem)).await)
            .append_entries(msg.clone())
            .await
            .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // A manager's certificate gets past authorization (the garbage payload is then refused).
    let res = RaftClient::new(channel(&addr, manager.client_tls()).await)
        .vote(msg)
        .await;
    assert!(
        !matches!(res, Err(ref e) if e.code() == Code::PermissionDenied || e.code() == Code::Unauthenticated),
        "{res:?}"
    );

    // The dispatcher needs a certificate.
    let anon = channel(&addr, swarm_ca::anonymous_client_tls(&worker.root_pem)).await;
    let err = swarm_api::dispatcher_client::DispatcherClient::new(anon.clone())
        .heartbeat(HeartbeatRequest {
            session_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // The root CA is open to anyone.
    let root_ca = swarm_api::ca_client::CaClient::new(anon)
        .get_root_ca_certificate(GetRootCaCertificateRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        String::from_utf8(root_ca.certificate).unwrap(),
        manager.root_pem
    );
}
