//! A peer that refuses the identity one connection presented (PERMISSION_DENIED) is dialled
//! afresh on the next call, so a renewed certificate gets its chance: swarmd's managers judge
//! a caller by the certificate its connection presented at the handshake, and a manager
//! promoted again renews its certificate for the members that refused the old one. Here the
//! "identity" is the connection's source port: the follower refuses the first connection the
//! leader made and takes any later one.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]
// (common's `serve` spawns bare; this file's own server has an owner.)

mod common;

use common::*;
use std::sync::{Arc, Mutex};
use swarm_raft::RaftNode;
use swarm_store::Store;
use tonic::transport::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_refused_a_connection_is_dialled_again() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let (l1, a1) = listener().await;
    let (l2, a2) = listener().await;
    let m1 = RaftNode::open(
        config(d1.path(), 1, &a1.to_string()),
        Store::new(),
        connector(),
    )
    .await
    .unwrap();
    let m2_store = Store::new();
    let m2 = RaftNode::open(
        config(d2.path(), 2, &a2.to_string()),
        m2_store.clone(),
        connector(),
    )
    .await
    .unwrap();
    let _s1 = serve(&m1, l1);
    // The first connection to reach m2 is refused for as long as it lasts.
    let refused_port: Arc<Mutex<Option<u16>>> = Arc::new(Mutex::new(None));
    let gate = {
        let refused_port = refused_port.clone();
        move |req: tonic::Request<()>| {
            let port = req.remote_addr().map(|a| a.port());
            let mut first = refused_port.lock().unwrap();
            if first.is_none() {
                *first = port;
            }
            if port.is_some() && port == *first {
                Err(tonic::Status::permission_denied(
                    "not with that certificate",
                ))
            } else {
                Ok(req)
            }
        }
    };
    let svc = tonic::service::interceptor::InterceptedService::new(m2.grpc_service(), gate);
    let tasks = swarm_tasks::TaskOwner::new();
    tasks.spawn_until_stopped(async move {
        let _ = Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l2))
            .await;
    });

    m1.bootstrap().await.unwrap();
    wait_leader(&m1).await;
    for i in 0..3 {
        m1.propose(create_service(i)).await.unwrap();
    }
    m1.add_learner(2, &a2.to_string()).await.unwrap();
    eventually("m2 caught up through a new connection", || {
        service_names(&m2_store) == expected_names(0..3)
    })
    .await;
    assert!(
        refused_port.lock().unwrap().is_some(),
        "the gate saw no call"
    );
    tasks.stop().await;
}
