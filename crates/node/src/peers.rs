//! Mutual-TLS channels to other managers for the pieces that dial them: Raft peers (and
//! forwarded calls, reachability probes, membership), and the agent's way to a manager. The
//! endpoints come from `swarm_ca`, made from the credentials in force when a channel is made.

use std::sync::Arc;
use swarm_ca::LiveCredentials;
use tonic::transport::Channel;

/// Raft peers (and forwarding, probes, membership) over mutual TLS.
#[derive(Clone)]
pub struct TlsPeers(pub LiveCredentials);

impl swarm_raft::PeerConnector for TlsPeers {
    fn channel(&self, addr: &str) -> Result<Channel, String> {
        Ok(self.0.endpoint(addr).map_err(|e| e.to_string())?.connect_lazy())
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
