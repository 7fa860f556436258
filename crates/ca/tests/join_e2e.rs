//! End to end over real TLS on 127.0.0.1: a test CA server (signing with a `RootCa`, checking
//! the join token) behind a manager's `server_tls()`, nodes joining it with `join()`, and
//! clients with and without certificates seen through `peer_identity`/`authorize`.
// Tests own the tasks they spawn: each ends with the test's runtime.
#![allow(clippy::disallowed_methods, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use swarm_api::ca_client::CaClient;
use swarm_api::ca_server::{Ca, CaServer};
use swarm_api::{
    GetRootCaCertificateRequest, GetRootCaCertificateResponse, IssueNodeCertificateRequest,
    IssueNodeCertificateResponse, NodeRole,
};
use swarm_ca::{
    anonymous_client_tls, authorize, generate_join_token, join, peer_identity, CaError,
    NodeCredentials, PeerIdentity, RootCa,
};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint, Server};
use tonic::{Request, Response, Status};

const CLUSTER: &str = "cluster-e2e";
const DAY_MS: i64 = 24 * 3600 * 1000;

struct TestCa {
    root: RootCa,
    worker_token: String,
    /// What `peer_identity` said for each GetRootCACertificate call, in order.
    seen: Arc<Mutex<Vec<Option<PeerIdentity>>>>,
}

#[tonic::async_trait]
impl Ca for TestCa {
    async fn get_root_ca_certificate(
        &self,
        req: Request<GetRootCaCertificateRequest>,
    ) -> Result<Response<GetRootCaCertificateResponse>, Status> {
        self.seen
            .lock()
            .map_err(|_| Status::internal("poisoned"))?
            .push(peer_identity(&req));
        Ok(Response::new(GetRootCaCertificateResponse {
            certificate: self.root.cert_pem().as_bytes().to_vec(),
        }))
    }

    async fn issue_node_certificate(
        &self,
        req: Request<IssueNodeCertificateRequest>,
    ) -> Result<Response<IssueNodeCertificateResponse>, Status> {
        // A caller with a certificate is renewing; in this test only managers may.
        let node_id = if peer_identity(&req).is_some() {
            authorize(&req, CLUSTER, &[NodeRole::Manager])?.node_id
        } else if req.get_ref().token == self.worker_token {
            swarm_api::ids::new_id()
        } else {
            return Err(Status::permission_denied("invalid join token"));
        };
        let csr = String::from_utf8(req.get_ref().csr.clone())
            .map_err(|_| Status::invalid_argument("csr is not PEM"))?;
        let cert = self
            .root
            .sign_csr(&csr, &node_id, NodeRole::Worker, CLUSTER, 90 * DAY_MS)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Response::new(IssueNodeCertificateResponse {
            node_id,
            role: NodeRole::Worker as i32,
            certificate: cert.into_bytes(),
            root_ca: self.root.cert_pem().as_bytes().to_vec(),
            cluster_id: CLUSTER.to_string(),
        }))
    }
}

struct Harness {
    addr: String,
    root: RootCa,
    token: String,
    seen: Arc<Mutex<Vec<Option<PeerIdentity>>>>,
}

async fn start_manager() -> Harness {
    swarm_ca::install_ring_provider();
    let root = RootCa::generate().expect("root");
    let (cert, key) = root
        .issue("manager-1", NodeRole::Manager, CLUSTER, 90 * DAY_MS)
        .expect("manager cert");
    let mgr = NodeCredentials::from_pems(cert, key, root.cert_pem().to_string()).expect("creds");
    let token = generate_join_token(&root);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let svc = TestCa {
        root: root.clone(),
        worker_token: token.clone(),
        seen: seen.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = Server::builder()
        .tls_config(mgr.server_tls())
        .expect("server tls")
        .add_service(CaServer::new(svc))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    Harness {
        addr,
        root,
        token,
        seen,
    }
}

async fn channel(addr: &str, tls: ClientTlsConfig) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect()
        .await
}

fn last_seen(h: &Harness) -> Option<PeerIdentity> {
    h.seen.lock().expect("lock").last().cloned().flatten()
}

#[tokio::test]
async fn join_then_mtls_identity() {
    let h = start_manager().await;

    let creds = join(&h.addr, &h.token, "host-1", "10.0.0.7:4242")
        .await
        .expect("join");
    assert_eq!(creds.role, NodeRole::Worker);
    assert_eq!(creds.cluster_id, CLUSTER);
    assert_eq!(creds.node_id.len(), 25);
    assert_eq!(creds.root_pem, h.root.cert_pem());
    // join fetched the root anonymously.
    assert_eq!(h.seen.lock().expect("lock").len(), 1);
    assert_eq!(last_seen(&h), None);

    // The joined node, with its certificate: the server sees who it is.
    let ch = channel(&h.addr, creds.client_tls()).await.expect("mtls");
    let mut client = CaClient::new(ch);
    client
        .get_root_ca_certificate(GetRootCaCertificateRequest {})
        .await
        .expect("call with cert");
    assert_eq!(
        last_seen(&h),
        Some(PeerIdentity {
            node_id: creds.node_id.clone(),
            role: NodeRole::Worker,
            cluster_id: CLUSTER.to_string(),
        })
    );

    // `authorize` refuses the worker a manager-only call, naming the reason.
    let (_, csr) = swarm_ca::new_key_and_csr().expect("csr");
    let st = client
        .issue_node_certificate(IssueNodeCertificateRequest {
            csr: csr.into_bytes(),
            ..Default::default()
        })
        .await
        .expect_err("worker may not renew here");
    assert_eq!(st.code(), tonic::Code::PermissionDenied);
    assert!(st.message().contains("swarm-worker"), "{}", st.message());

    // Without a certificate: the call works, the server sees no identity.
    let ch = channel(&h.addr, anonymous_client_tls(h.root.cert_pem()))
        .await
        .expect("tls");
    CaClient::new(ch)
        .get_root_ca_certificate(GetRootCaCertificateRequest {})
        .await
        .expect("anonymous call");
    assert_eq!(h.seen.lock().expect("lock").len(), 3);
    assert_eq!(last_seen(&h), None);

    // Saved and loaded, the credentials still work.
    let dir = tempfile::tempdir().expect("tempdir");
    creds.save(dir.path()).expect("save");
    let loaded = NodeCredentials::load(dir.path())
        .expect("load")
        .expect("present");
    let ch = channel(&h.addr, loaded.client_tls()).await.expect("mtls");
    CaClient::new(ch)
        .get_root_ca_certificate(GetRootCaCertificateRequest {})
        .await
        .expect("call with loaded cert");
    assert_eq!(
        last_seen(&h).map(|p| p.node_id),
        Some(creds.node_id.clone())
    );
}

#[tokio::test]
async fn join_refuses_a_manager_whose_root_is_not_the_tokens() {
    let h = start_manager().await;
    let other = RootCa::generate().expect("other root");
    let token = generate_join_token(&other);
    let err = join(&h.addr, &token, "host-2", "10.0.0.8:4242")
        .await
        .expect_err("digest mismatch");
    eprintln!("{err}");
    assert!(matches!(err, CaError::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("root CA digest does not match the join token"),
        "{err}"
    );
}

#[tokio::test]
async fn join_with_a_wrong_secret_is_rejected_by_the_manager() {
    let h = start_manager().await;
    // Right digest, someone else's secret.
    let token = generate_join_token(&h.root);
    assert_ne!(token, h.token);
    let err = join(&h.addr, &token, "host-3", "10.0.0.9:4242")
        .await
        .expect_err("wrong secret");
    eprintln!("{err}");
    let msg = err.to_string();
    assert!(matches!(err, CaError::Rejected { .. }), "{msg}");
    assert!(msg.contains("invalid join token"), "{msg}");
    assert!(!msg.contains('\n'));
}

#[tokio::test]
async fn join_to_nothing_fails_fast_with_a_readable_error() {
    swarm_ca::install_ring_provider();
    // Bind then drop, so the port is (almost certainly) closed.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let root = RootCa::generate().expect("root");
    let started = std::time::Instant::now();
    let err = join(&addr, &generate_join_token(&root), "h", "a")
        .await
        .expect_err("nobody listens");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, CaError::Unreachable { .. }), "{msg}");
    assert!(
        msg.starts_with(&format!("cannot reach manager at {addr}")),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
    assert!(started.elapsed() < swarm_ca::JOIN_TIMEOUT);
}

#[tokio::test]
async fn a_client_certificate_from_another_root_is_refused() {
    let h = start_manager().await;
    let other = RootCa::generate().expect("other root");
    let (cert, key) = other
        .issue("intruder", NodeRole::Manager, CLUSTER, DAY_MS)
        .expect("issue");
    // Trusts the real root (so the server is accepted) but presents a foreign certificate.
    let tls = anonymous_client_tls(h.root.cert_pem())
        .identity(tonic::transport::Identity::from_pem(cert, key));
    let outcome = match channel(&h.addr, tls).await {
        Err(_) => Err(()),
        Ok(ch) => CaClient::new(ch)
            .get_root_ca_certificate(GetRootCaCertificateRequest {})
            .await
            .map(|_| ())
            .map_err(|_| ()),
    };
    assert!(outcome.is_err(), "a foreign client certificate got through");
    assert!(h.seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn join_to_a_server_that_never_answers_times_out() {
    swarm_ca::install_ring_provider();
    // Accepts TCP connections and then says nothing, so the TLS handshake never completes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let root = RootCa::generate().expect("root");
    let started = std::time::Instant::now();
    let err = join(&addr, &generate_join_token(&root), "h", "a")
        .await
        .expect_err("silent server");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, CaError::Timeout { .. }), "{msg}");
    assert!(msg.starts_with("timed out"), "{msg}");
    assert!(msg.contains(&addr), "{msg}");
    assert!(
        started.elapsed() < swarm_ca::JOIN_TIMEOUT * 2,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn own_tls_acceptor_with_server_rustls_config_keeps_peer_identity() {
    swarm_ca::install_ring_provider();
    let root = RootCa::generate().expect("root");
    let (cert, key) = root
        .issue("manager-9", NodeRole::Manager, CLUSTER, DAY_MS)
        .expect("manager cert");
    let mgr = NodeCredentials::from_pems(cert, key, root.cert_pem().to_string()).expect("creds");
    let (cert, key) = root
        .issue("worker-9", NodeRole::Worker, CLUSTER, DAY_MS)
        .expect("worker cert");
    let worker = NodeCredentials::from_pems(cert, key, root.cert_pem().to_string()).expect("creds");

    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(
        mgr.server_rustls_config().expect("rustls config"),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = tx.send(Ok::<_, std::io::Error>(tls)).await;
                }
            });
        }
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let svc = TestCa {
        root: root.clone(),
        worker_token: String::new(),
        seen: seen.clone(),
    };
    tokio::spawn(
        Server::builder()
            .add_service(CaServer::new(svc))
            .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(rx)),
    );

    let ch = channel(&addr, worker.client_tls()).await.expect("mtls");
    CaClient::new(ch)
        .get_root_ca_certificate(GetRootCaCertificateRequest {})
        .await
        .expect("call");
    let ch = channel(&addr, anonymous_client_tls(root.cert_pem()))
        .await
        .expect("tls");
    CaClient::new(ch)
        .get_root_ca_certificate(GetRootCaCertificateRequest {})
        .await
        .expect("anonymous call");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].as_ref().map(|p| p.node_id.as_str()),
        Some("worker-9")
    );
    assert_eq!(seen[1], None);
}

/// The certificate a server presents to a fresh TLS connection, as DER.
async fn presented(addr: &str, root_pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(root_pem.as_bytes()).expect("root pem"))
        .expect("root");
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(swarm_api::MANAGER_SERVER_NAME).expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("handshake");
    tls.get_ref().1.peer_certificates().expect("certs")[0].to_vec()
}

#[tokio::test]
async fn live_credentials_swap_the_served_certificate_without_dropping_connections() {
    use rustls::pki_types::pem::PemObject;
    swarm_ca::install_ring_provider();
    let root = RootCa::generate().expect("root");
    let issue = |node: &str, role| {
        let (cert, key) = root.issue(node, role, CLUSTER, DAY_MS).expect("cert");
        NodeCredentials::from_pems(cert, key, root.cert_pem().to_string()).expect("creds")
    };
    let der = |c: &NodeCredentials| {
        rustls::pki_types::CertificateDer::from_pem_slice(c.cert_pem.as_bytes())
            .expect("pem")
            .to_vec()
    };
    let first = issue("manager-7", NodeRole::Manager);
    let worker = issue("worker-7", NodeRole::Worker);
    let (swap, live) = swarm_ca::live_credentials(first.clone()).expect("holder");

    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(live.server_config().expect("config")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = tx.send(Ok::<_, std::io::Error>(tls)).await;
                }
            });
        }
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let svc = TestCa {
        root: root.clone(),
        worker_token: String::new(),
        seen: seen.clone(),
    };
    tokio::spawn(
        Server::builder()
            .add_service(CaServer::new(svc))
            .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(rx)),
    );

    assert_eq!(presented(&addr, root.cert_pem()).await, der(&first));
    let mut before = CaClient::new(channel(&addr, worker.client_tls()).await.expect("mtls"));
    before
        .get_root_ca_certificate(GetRootCaCertificateRequest {})
        .await
        .expect("call");

    let renewed = issue("manager-7", NodeRole::Manager);
    swap.swap(renewed.clone()).expect("swap");
    assert_eq!(presented(&addr, root.cert_pem()).await, der(&renewed));
    // The connection made before the swap carries on, still seen as its client.
    before
        .get_root_ca_certificate(GetRootCaCertificateRequest {})
        .await
        .expect("call on the old connection");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|p| p.as_ref().map(|p| p.node_id.as_str()) == Some("worker-7")));
}
