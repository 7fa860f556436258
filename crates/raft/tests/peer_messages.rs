//! Messages no correct peer sends, refused at the member's door (`service.rs`) instead of
//! reaching openraft, whose core panics on some of them. Found by the `raft_rpc` fuzz target.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use swarm_api::raft_server::Raft;
use swarm_api::RaftMessage;
use swarm_raft::RaftNode;
use swarm_store::Store;
use tonic::{Code, Request};

/// A VoteRequest as peers encode it (bincode, varints): candidate `node_id` at `term`, vote
/// not committed, no last log id.
fn vote_request(term: u8, node_id: u8) -> Request<RaftMessage> {
    Request::new(RaftMessage {
        payload: vec![term, node_id, 0, 0],
    })
}

#[tokio::test]
async fn a_vote_in_the_receivers_own_name_is_refused_and_raft_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new();
    let node = RaftNode::open(
        config(dir.path(), 1, "127.0.0.1:1"),
        store.clone(),
        connector(),
    )
    .await
    .unwrap();
    node.bootstrap().await.unwrap();
    wait_leader(&node).await;
    let door = node.grpc_handler();

    // Candidate 1 at term 129, sent to member 1: openraft would take it for its own vote and
    // its core would panic on the next step ("vote must be committed").
    let refused = door.vote(vote_request(129, 1)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused}");
    assert!(refused.message().contains("this member"), "{refused}");

    // The same request from another member is openraft's to answer (it is a real vote).
    door.vote(vote_request(129, 2)).await.unwrap();

    // Raft still runs: a proposal commits once the member leads again.
    wait_leader(&node).await;
    node.propose(create_service(1)).await.unwrap();
    assert_eq!(service_names(&store), expected_names(1..2));
    node.shutdown().await.unwrap();
}
