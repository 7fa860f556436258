//! The client half of the peer transport: openraft's network factory, calling other managers'
//! `Raft` gRPC service over channels from the node crate's [`PeerConnector`]. Owns message
//! encoding and error mapping; how channels are secured (mTLS) is the connector's business.

use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{de::DeserializeOwned, Serialize};
use swarm_api::raft_client::RaftClient;
use swarm_api::RaftMessage;
use tonic::transport::Channel;

use crate::codec::{self, CodecError};
use crate::types::{Node, NodeId, TypeConfig};

/// How the raft crate reaches peers: the node crate supplies it (mTLS channels in production,
/// plaintext loopback channels in tests).
pub trait PeerConnector: Send + Sync + 'static {
    /// A channel to the manager whose remote API listens at `addr` (host:port); may be lazy.
    fn channel(&self, addr: &str) -> Result<Channel, PeerConnectError>;

    /// Asked before every Raft call to `addr`, on channels already made too: an error fails
    /// the call as unreachable, a duration delays it. Test clusters cut and slow links here;
    /// production connectors keep this default.
    fn before_call(&self, _addr: &str) -> Result<Option<std::time::Duration>, PeerConnectError> {
        Ok(None)
    }
}

/// Why a [`PeerConnector`] gave no channel to a peer.
#[derive(Debug, thiserror::Error)]
pub enum PeerConnectError {
    /// The endpoint could not be made (a malformed address, TLS settings the transport
    /// refused).
    #[error("{addr}: {source}")]
    Endpoint {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// The connector has no way to this peer (a single member that dials no one, a link a test
    /// has cut); `reason` is the connector's own explanation, there is no lower error.
    #[error("{addr}: {reason}")]
    NoRoute { addr: String, reason: String },
}

/// Hard cap on one gRPC message either way. Entries are batched to stay near
/// [`SOFT_MESSAGE_LIMIT`], but one huge transaction must still get through rather than stall
/// replication forever.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// AppendEntries above this size are split (when they hold more than one entry). Well under
/// the 4 MiB SwarmKit promises, because openraft gives each AppendEntries one heartbeat
/// interval (250 ms with swarmd's tick) to come back: with a few MiB per message, a loaded
/// manager missed that again and again, and the follower fell thousands of entries behind.
const SOFT_MESSAGE_LIMIT: usize = 1024 * 1024;

/// How long an InstallSnapshot call carrying a chunk other than the last may take: 1 MiB of
/// data, but on a loaded machine (the last chunk's call also waits for the install, so it has
/// the whole `install_snapshot_timeout`; see `config`).
const SNAPSHOT_CHUNK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// What went wrong on the way to a peer, its cause kept for openraft's error chain.
#[derive(Debug, thiserror::Error)]
enum TransportError {
    #[error(transparent)]
    Connect(#[from] PeerConnectError),
    /// The peer (or the transport on our side) answered the call with an error status.
    #[error("{addr} ({}): {}", .status.code(), .status.message())]
    Status {
        addr: String,
        #[source]
        status: tonic::Status,
    },
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("message too large")]
    TooLarge,
}

/// Why a call did not produce a decodable answer.
enum CallFailure {
    Unreachable(TransportError),
    /// The message is over the soft limit; about this many of its entries would fit.
    TooLarge {
        fit: usize,
    },
    Network(TransportError),
}

impl CallFailure {
    fn into_rpc<E: std::error::Error>(self, entries: usize) -> RPCError<NodeId, Node, E> {
        match self {
            CallFailure::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
            // Ask openraft to retry with as many entries as fit (it keeps the hint for its
            // next few messages). Halving instead costs a dozen encodings of up to 64 large
            // entries before one message goes out.
            CallFailure::TooLarge { fit } if entries > 1 => RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(fit.clamp(1, entries - 1) as u64),
            ),
            CallFailure::TooLarge { .. } => {
                RPCError::Network(NetworkError::new(&TransportError::TooLarge))
            }
            CallFailure::Network(e) => RPCError::Network(NetworkError::new(&e)),
        }
    }
}

#[derive(Clone, Copy)]
enum Rpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

pub(crate) struct NetworkFactory {
    connector: Arc<dyn PeerConnector>,
}

impl NetworkFactory {
    pub(crate) fn new(connector: Arc<dyn PeerConnector>) -> Self {
        NetworkFactory { connector }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            connector: self.connector.clone(),
            client: None,
        }
    }
}

/// Calls to one peer. The channel is made on first use, so a peer that is down when openraft
/// creates its client costs nothing until it is contacted.
pub(crate) struct PeerClient {
    target: NodeId,
    addr: String,
    connector: Arc<dyn PeerConnector>,
    client: Option<RaftClient<Channel>>,
}

impl PeerClient {
    fn client(&mut self) -> Result<RaftClient<Channel>, CallFailure> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let channel = self
            .connector
            .channel(&self.addr)
            .map_err(|e| CallFailure::Unreachable(e.into()))?;
        let client = RaftClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Sends one request and decodes the peer's `Result<Resp, E>` answer.
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        rpc: Rpc,
        req: &Req,
        option: &RPCOption,
        // Entries in the message, when it may be split (AppendEntries); 0 otherwise.
        entries: usize,
    ) -> Result<Resp, CallFailure> {
        match self.connector.before_call(&self.addr) {
            Err(e) => return Err(CallFailure::Unreachable(e.into())),
            Ok(Some(delay)) => tokio::time::sleep(delay).await,
            Ok(None) => {}
        }
        let payload = codec::encode(req).map_err(|e| CallFailure::Network(e.into()))?;
        // A single entry over the limit goes as it is (up to MAX_MESSAGE): it cannot be split,
        // and refusing it would stall this follower for good.
        if entries > 1 && payload.len() > SOFT_MESSAGE_LIMIT {
            tracing::debug!(bytes = payload.len(), peer = %self.addr, "AppendEntries too large; splitting");
            let fit = entries * SOFT_MESSAGE_LIMIT / payload.len();
            return Err(CallFailure::TooLarge { fit });
        }
        let mut client = self.client()?;
        let mut request = tonic::Request::new(RaftMessage { payload });
        request.set_timeout(option.hard_ttl());
        let res = match rpc {
            Rpc::AppendEntries => client.append_entries(request).await,
            Rpc::Vote => client.vote(request).await,
            Rpc::InstallSnapshot => client.install_snapshot(request).await,
        };
        let msg = match res {
            Ok(r) => r.into_inner(),
            Err(s) => {
                let refused = matches!(
                    s.code(),
                    tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
                );
                let failure = self.status_failure(s);
                if refused || matches!(failure, CallFailure::Unreachable(_)) {
                    // Take a fresh channel from the connector next time rather than reconnect
                    // this one: the connector's channels carry the node's current certificate,
                    // and a peer that refused the one this channel presented may take a
                    // renewed one (a manager promoted again renews its certificate).
                    self.client = None;
                }
                return Err(failure);
            }
        };
        codec::decode(&msg.payload).map_err(|e| CallFailure::Network(e.into()))
    }

    fn status_failure(&self, s: tonic::Status) -> CallFailure {
        let code = s.code();
        let e = TransportError::Status {
            addr: self.addr.clone(),
            status: s,
        };
        match code {
            tonic::Code::Unavailable => CallFailure::Unreachable(e),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted => {
                CallFailure::TooLarge { fit: 1 }
            }
            _ => CallFailure::Network(e),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let entries = rpc.entries.len();
        let res: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> = self
            .call(Rpc::AppendEntries, &rpc, &option, entries)
            .await
            .map_err(|f| f.into_rpc(entries))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let option = chunk_option(rpc.done, option);
        let res: Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> =
            self.call(Rpc::InstallSnapshot, &rpc, &option, 0)
                .await
                .map_err(|f| f.into_rpc(0))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let res: Result<VoteResponse<NodeId>, RaftError<NodeId>> = self
            .call(Rpc::Vote, &rpc, &option, 0)
            .await
            .map_err(|f| f.into_rpc(0))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// The deadline of one InstallSnapshot call. openraft gives every chunk the install timeout,
/// which the last one needs (its answer waits for the install); the others only carry data,
/// so a peer that stopped answering is given up on sooner.
fn chunk_option(last: bool, option: RPCOption) -> RPCOption {
    if last {
        option
    } else {
        RPCOption::new(option.hard_ttl().min(SNAPSHOT_CHUNK_DEADLINE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_the_last_snapshot_chunk_waits_for_the_install() {
        let install = RPCOption::new(Duration::from_secs(120));
        assert_eq!(
            chunk_option(true, install.clone()).hard_ttl(),
            Duration::from_secs(120)
        );
        assert_eq!(
            chunk_option(false, install).hard_ttl(),
            SNAPSHOT_CHUNK_DEADLINE
        );
        // A shorter install timeout is never lengthened.
        let short = RPCOption::new(Duration::from_secs(3));
        assert_eq!(
            chunk_option(false, short).hard_ttl(),
            Duration::from_secs(3)
        );
    }
}
