//! Mutual-TLS channels to other managers for the pieces that dial them: Raft peers (and
//! forwarded calls, reachability probes, membership), and the agent's way to a manager. The
//! endpoints come from `swarm_ca`, made from the credentials in force when a channel is made.

use std::sync::Arc;
use std::time::Duration;
use swarm_ca::{CaError, LiveCredentials};
use swarm_raft::{PeerConnectError, PeerConnector};
use tonic::transport::Channel;

/// What a test does to this node's Raft calls to one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerVerdict {
    Pass,
    /// The call fails as if the peer were unreachable (a partition).
    Cut,
    /// The call waits this long first (a slow link).
    Delay(Duration),
}

/// A test's hand on this node's Raft links (handed in with [`crate::Listeners`]).
pub trait PeerFilter: Send + Sync + 'static {
    /// The verdict for a Raft call from this node to the manager at `addr`.
    fn verdict(&self, addr: &str) -> PeerVerdict;
}

/// Raft peers (and forwarding, probes, membership) over mutual TLS.
#[derive(Clone)]
pub struct TlsPeers {
    pub creds: LiveCredentials,
    /// Tests only: cuts or slows Raft calls.
    pub filter: Option<Arc<dyn PeerFilter>>,
}

impl PeerConnector for TlsPeers {
    fn before_call(&self, addr: &str) -> Result<Option<Duration>, PeerConnectError> {
        match self.filter.as_ref().map(|f| f.verdict(addr)) {
            Some(PeerVerdict::Cut) => Err(PeerConnectError::NoRoute {
                addr: addr.to_string(),
                reason: "link cut by the test's peer filter".into(),
            }),
            Some(PeerVerdict::Delay(d)) => Ok(Some(d)),
            Some(PeerVerdict::Pass) | None => Ok(None),
        }
    }

    fn channel(&self, addr: &str) -> Result<Channel, PeerConnectError> {
        match self.creds.endpoint(addr) {
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
