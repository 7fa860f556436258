//! Mutual-TLS channels to other managers for the pieces that dial them: Raft peers (and
//! forwarded calls, reachability probes, membership), and the agent's way to a manager. The
//! endpoints come from `swarm_ca`, made from the credentials in force when a channel is made.

use std::sync::Arc;
use swarm_ca::{CaError, LiveCredentials};
use swarm_raft::{PeerConnectError, PeerConnector};
use tonic::transport::Channel;

/// Raft peers (and forwarding, probes, membership) over mutual TLS.
#[derive(Clone)]
pub struct TlsPeers(pub LiveCredentials);

impl PeerConnector for TlsPeers {
    fn channel(&self, addr: &str) -> Result<Channel, PeerConnectError> {
        match self.0.endpoint(addr) {
            Ok(e) => Ok(e.connect_lazy()),
            Err(CaError::Endpoint { addr, source }) => {
                Err(PeerConnectError::Endpoint { addr, source })
            }
            Err(e) => Err(PeerConnectError::NoRoute {
                addr: addr.to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

/// The leader's reachability probes dial the other managers the same way.
impl swarm_manager::ManagerDialer for TlsPeers {
    fn dial(&self, addr: &str) -> Option<Channel> {
        self.channel(addr).ok()
    }
}

/// The agent's way to a manager, over mutual TLS.
pub fn agent_connect(creds: LiveCredentials) -> swarm_agent::ConnectFn {
    Arc::new(move |addr: String| {
        let ep = creds.endpoint(&addr);
        Box::pin(async move {
            ep.map_err(|e| e.to_string())?
                .connect()
                .await
                .map_err(|e| format!("{addr}: {e}"))
        })
    })
}
