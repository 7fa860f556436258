//! Peers' Raft messages (`swarm_raft::RaftGrpc`): the first byte picks AppendEntries, Vote or
//! InstallSnapshot, the rest is the payload as a peer manager sends it, decoded and checked by
//! the real service of a real member.
//!
//! The member is shut down before the first input, so what passes our door reaches openraft
//! only to be refused as stopped. Raft trusts its members (they hold manager certificates):
//! openraft 0.9 asserts on messages no correct member sends — a vote in the receiver's own
//! name (now refused at our door), a log conflict below the commit index — and its core stops.
//! Fuzzing its state machine with such messages finds those assertions, not our bugs; see
//! docs/reliability.md.

use crate::input::choose;
use crate::runtime::block_on;
use std::sync::{Arc, OnceLock};
use swarm_api::raft_server::Raft;
use swarm_api::RaftMessage;
use swarm_raft::{DataKey, PeerConnectError, PeerConnector, RaftConfig, RaftGrpc, RaftNode};
use swarm_store::Store;
use tonic::transport::Channel;
use tonic::Request;

/// The member never dials out: its peers are the fuzzer.
struct NoPeers;

impl PeerConnector for NoPeers {
    fn channel(&self, addr: &str) -> Result<Channel, PeerConnectError> {
        Err(PeerConnectError::NoRoute {
            addr: addr.into(),
            reason: "the fuzz target has no peers".into(),
        })
    }
}

struct Member {
    _dir: tempfile::TempDir,
    _node: RaftNode,
    handler: RaftGrpc,
}

async fn open() -> Option<Member> {
    let dir = tempfile::tempdir().ok()?;
    let mut cfg = RaftConfig::new(dir.path(), 1, "127.0.0.1:1".to_string());
    cfg.data_key = Some(DataKey::generate().ok()?);
    let node = RaftNode::open(cfg, Store::new(), Arc::new(NoPeers))
        .await
        .ok()?;
    node.bootstrap().await.ok()?;
    let handler = node.grpc_handler();
    node.shutdown().await.ok()?;
    Some(Member {
        _dir: dir,
        _node: node,
        handler,
    })
}

fn member() -> Option<&'static Member> {
    static MEMBER: OnceLock<Option<Member>> = OnceLock::new();
    MEMBER.get_or_init(|| block_on(open())).as_ref()
}

/// One message from a peer.
pub fn rpc(data: &[u8]) {
    let Some(m) = member() else {
        return;
    };
    let (which, payload) = choose(data, 3);
    let msg = || {
        Request::new(RaftMessage {
            payload: payload.to_vec(),
        })
    };
    block_on(async {
        let _ = match which {
            0 => m.handler.append_entries(msg()).await,
            1 => m.handler.vote(msg()).await,
            _ => m.handler.install_snapshot(msg()).await,
        };
    });
}
