//! A worker started without `--listen-control-api` and promoted later does not take the
//! default control socket when another process serves it: it becomes a manager without one,
//! and the socket stays the other process's. (Before, the new manager role failed to bind it
//! and the node stopped.) Real nodes in one process (`swarm_testkit::cluster`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use swarm_api::NodeRole;
use swarm_node::ControlSocket;
use swarm_testkit::cluster::Cluster;
use tokio::net::{UnixListener, UnixStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_worker_leaves_another_swarmds_default_socket_alone() {
    let mut c = Cluster::start(1, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let taken = dir.path().join("swarmd.sock");
    // Another swarmd's control socket on this host, at the path this node would default to.
    let other = UnixListener::bind(&taken).unwrap();
    c.join_worker("worker-0", ControlSocket::Default(taken.clone()))
        .await;
    let i = c.index("worker-0");
    c.set_role(i, NodeRole::Manager).await;
    c.wait_for(
        "the worker promoted and a voter",
        Duration::from_secs(90),
        |c| {
            let m = c.nodes[i].manager()?;
            m.raft.voters().contains(&m.raft.raft_id()).then_some(())
        },
    )
    .await;
    assert_eq!(c.nodes[i].info().role, NodeRole::Manager);
    // The path is still served by the other process, not replaced by the promoted node's.
    let _client = UnixStream::connect(&taken).await.unwrap();
    let accepted = tokio::time::timeout(Duration::from_secs(5), other.accept()).await;
    assert!(
        matches!(accepted, Ok(Ok(_))),
        "the other process's socket no longer answers"
    );
    c.stop().await;
}
