//! Shared test helpers: plaintext loopback transport, service batches, waiting for leadership.
#![allow(dead_code, clippy::unwrap_used, clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use swarm_api::{
    store_object, Annotations, Service, ServiceSpec, StoreAction, StoreActionKind, StoreBatch,
    StoreObject,
};
use swarm_raft::{Leadership, PeerConnectError, PeerConnector, RaftConfig, RaftNode};
use swarm_store::Store;
use tonic::transport::{Channel, Endpoint, Server};

/// Plaintext channels to 127.0.0.1 peers.
pub struct Plaintext;

impl PeerConnector for Plaintext {
    fn channel(&self, addr: &str) -> Result<Channel, PeerConnectError> {
        Ok(Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|source| PeerConnectError::Endpoint {
                addr: addr.into(),
                source,
            })?
            .connect_lazy())
    }
}

pub fn connector() -> Arc<dyn PeerConnector> {
    Arc::new(Plaintext)
}

/// Fast ticks so elections take well under a second.
pub fn config(dir: &Path, id: u64, addr: &str) -> RaftConfig {
    let mut cfg = RaftConfig::new(dir, id, addr);
    cfg.tick_ms = 50;
    cfg.propose_timeout_ms = 10_000;
    cfg
}

pub fn service_id(i: usize) -> String {
    format!("svc{i:022}")
}

/// One batch creating service number `i`.
pub fn create_service(i: usize) -> StoreBatch {
    let svc = Service {
        id: service_id(i),
        spec: Some(ServiceSpec {
            annotations: Some(Annotations {
                name: format!("service-{i}"),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    StoreBatch {
        actions: vec![StoreAction {
            kind: StoreActionKind::Create as i32,
            object: Some(StoreObject {
                object: Some(store_object::Object::Service(Box::new(svc))),
            }),
        }],
        timestamp: 1_700_000_000_000 + i as i64,
    }
}

pub fn service_names(store: &Store) -> Vec<String> {
    let mut names: Vec<String> = store.view(|t| {
        t.services
            .iter()
            .map(|s| {
                s.spec
                    .as_ref()
                    .and_then(|sp| sp.annotations.as_ref())
                    .map(|a| a.name.clone())
                    .unwrap_or_default()
            })
            .collect()
    });
    names.sort();
    names
}

pub fn expected_names(range: std::ops::Range<usize>) -> Vec<String> {
    let mut v: Vec<String> = range.map(|i| format!("service-{i}")).collect();
    v.sort();
    v
}

pub async fn wait_for(node: &RaftNode, what: &str, f: impl Fn(&Leadership) -> bool) -> Leadership {
    let mut rx = node.leadership();
    let res = tokio::time::timeout(Duration::from_secs(15), rx.wait_for(|l| f(l)))
        .await
        .map(|r| r.map(|l| l.clone()));
    match res {
        Ok(Ok(l)) => l,
        _ => panic!(
            "timed out waiting for {what}; last: {:?}",
            *node.leadership().borrow()
        ),
    }
}

/// Bootstraps `first` (Raft id 1) and makes each of `others` (id, address) a voter beside it.
#[allow(dead_code)]
pub async fn form_cluster(first: &RaftNode, others: &[(u64, &str)]) {
    first.bootstrap().await.unwrap();
    wait_leader(first).await;
    for (id, addr) in others {
        first.add_learner(*id, addr).await.unwrap();
    }
    let voters: std::collections::BTreeSet<u64> = std::iter::once(1)
        .chain(others.iter().map(|(id, _)| *id))
        .collect();
    first.change_membership(voters).await.unwrap();
}

pub async fn wait_leader(node: &RaftNode) -> Leadership {
    wait_for(node, "leadership", |l| l.is_leader).await
}

/// Polls until `f` holds, for up to 15 s.
pub async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !f() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Binds a loopback listener first so the member can advertise its real port.
pub async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Serves the member's Raft service on the listener until the task is aborted.
pub fn serve(node: &RaftNode, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
    let svc = node.grpc_service();
    tokio::spawn(async move {
        let _ = Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    })
}
