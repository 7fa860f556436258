//! Glue between crates that must not know each other: Raft as the manager's proposer, Raft's
//! leadership as a plain "am I leader" watch, and mutual-TLS channels for Raft peers and the
//! agent. Channels are made from the credentials current when they are made, so connections
//! made after a certificate renewal present the new certificate.

use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use swarm_api::{StoreBatch, StoreObject};
use swarm_ca::{LiveCredentials, NodeCredentials};
use swarm_manager::{Proposer, WriteError};
use swarm_raft::{PeerConnectError, ProposeError, RaftNode};
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};

pub struct RaftProposer(pub RaftNode);

impl Proposer for RaftProposer {
    fn propose(
        &self,
        batch: StoreBatch,
    ) -> BoxFuture<'static, Result<Vec<StoreObject>, WriteError>> {
        let raft = self.0.clone();
        Box::pin(async move {
            raft.propose(batch).await.map_err(|e| match e {
                ProposeError::Apply(a) => WriteError::Refused(a),
                ProposeError::NotLeader { leader_addr, .. } => WriteError::NotLeader {
                    leader: leader_addr,
                },
                ProposeError::Unavailable(s) => WriteError::Unavailable(s),
            })
        })
    }
}

/// Follows Raft's leadership and publishes whether this manager leads.
pub fn is_leader_watch(raft: &RaftNode) -> watch::Receiver<bool> {
    let mut src = raft.leadership();
    let (tx, rx) = watch::channel(src.borrow().is_leader);
    tokio::spawn(async move {
        while src.changed().await.is_ok() {
            let l = src.borrow().is_leader;
            tx.send_if_modified(|cur| std::mem::replace(cur, l) != l);
        }
        let _ = tx.send(false);
    });
    rx
}

/// A mutual-TLS endpoint to a manager.
pub fn tls_endpoint(creds: &NodeCredentials, addr: &str) -> Result<Endpoint, PeerConnectError> {
    Endpoint::from_shared(format!("https://{addr}"))
        .and_then(|e| e.tls_config(creds.client_tls()))
        .map(|e| {
            e.connect_timeout(Duration::from_secs(5))
                .tcp_keepalive(Some(Duration::from_secs(10)))
        })
        .map_err(|source| PeerConnectError::Endpoint {
            addr: addr.to_string(),
            source,
        })
}

/// Raft peers (and forwarding, probes, membership) over mutual TLS.
#[derive(Clone)]
pub struct TlsPeers(pub LiveCredentials);

impl swarm_raft::PeerConnector for TlsPeers {
    fn channel(&self, addr: &str) -> Result<Channel, PeerConnectError> {
        Ok(tls_endpoint(&self.0.current(), addr)?.connect_lazy())
    }
}

/// The agent's way to a manager, over mutual TLS.
pub fn agent_connect(creds: LiveCredentials) -> swarm_agent::ConnectFn {
    Arc::new(move |addr: String| {
        let ep = tls_endpoint(&creds.current(), &addr);
        Box::pin(async move {
            ep.map_err(|e| e.to_string())?
                .connect()
                .await
                .map_err(|e| format!("{addr}: {e}"))
        })
    })
}
