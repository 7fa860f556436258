//! The server half of the peer transport: the generated `Raft` gRPC service, decoding peers'
//! openraft messages and handing them to the local Raft member. Authentication (manager
//! certificates) is enforced by the server the node crate mounts this service on, not here.

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::{de::DeserializeOwned, Serialize};
use swarm_api::RaftMessage;
use tonic::{Request, Response, Status};

use crate::codec;
use crate::types::{NodeId, OpenRaft, TypeConfig, Vote};

/// The `Raft` gRPC service of one member; get it from [`crate::RaftNode::grpc_service`].
#[derive(Clone)]
pub struct RaftGrpc {
    raft: OpenRaft,
    /// This member's Raft ID: no peer may speak in its name.
    id: NodeId,
}

impl RaftGrpc {
    pub(crate) fn new(raft: OpenRaft, id: NodeId) -> Self {
        RaftGrpc { raft, id }
    }

    /// Refuses a message whose vote names this member as its candidate or leader. Only this
    /// member speaks for itself: openraft takes such a vote as its own and its core panics on
    /// the next step ("vote must be committed"), which stops Raft on this manager. Found by
    /// the `raft_rpc` fuzz target.
    fn not_in_my_name(&self, vote: &Vote) -> Result<(), Status> {
        if vote.leader_id.node_id == self.id {
            return Err(Status::invalid_argument(format!(
                "vote: names raft member {}, which is this member, as its sender",
                self.id
            )));
        }
        Ok(())
    }
}

fn decode<T: DeserializeOwned>(req: Request<RaftMessage>) -> Result<T, Status> {
    codec::decode(&req.into_inner().payload).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// openraft's own errors travel inside the payload, so the client can tell a refusal by the peer
/// (a remote error) from a transport failure (a gRPC status).
fn reply<T: Serialize>(res: &T) -> Result<Response<RaftMessage>, Status> {
    let payload = codec::encode(res).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(RaftMessage { payload }))
}

#[tonic::async_trait]
impl swarm_api::raft_server::Raft for RaftGrpc {
    async fn append_entries(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let req: AppendEntriesRequest<TypeConfig> = decode(request)?;
        self.not_in_my_name(&req.vote)?;
        reply(&self.raft.append_entries(req).await)
    }

    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let req: VoteRequest<NodeId> = decode(request)?;
        self.not_in_my_name(&req.vote)?;
        reply(&self.raft.vote(req).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let req: InstallSnapshotRequest<TypeConfig> = decode(request)?;
        self.not_in_my_name(&req.vote)?;
        reply(&self.raft.install_snapshot(req).await)
    }
}
