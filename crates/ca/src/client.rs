//! The client side of mutual TLS: an endpoint to a manager that presents this node's
//! certificate and trusts the cluster's roots. Every node-to-manager and manager-to-manager
//! connection (agents, Raft peers, forwarded calls, probes, renewals) is made here, from the
//! credentials current when it is made, so connections made after a renewal present the new
//! certificate. Owns no connection: callers keep and drop channels.

use std::time::Duration;
use tonic::transport::Endpoint;

use crate::credentials::NodeCredentials;
use crate::live::LiveCredentials;
use crate::CaError;

/// How long a TCP connect to a manager may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Keepalive probes on idle connections, so a vanished peer is noticed.
const TCP_KEEPALIVE: Duration = Duration::from_secs(10);

impl NodeCredentials {
    /// A mutual-TLS endpoint to the manager at `addr` (host:port).
    pub fn endpoint(&self, addr: &str) -> Result<Endpoint, CaError> {
        Endpoint::from_shared(format!("https://{addr}"))
            .and_then(|e| e.tls_config(self.client_tls()))
            .map(|e| {
                e.connect_timeout(CONNECT_TIMEOUT)
                    .tcp_keepalive(Some(TCP_KEEPALIVE))
            })
            .map_err(|source| CaError::Endpoint {
                addr: addr.to_string(),
                source,
            })
    }
}

impl LiveCredentials {
    /// [`NodeCredentials::endpoint`] with the certificate in force now.
    pub fn endpoint(&self, addr: &str) -> Result<Endpoint, CaError> {
        self.current().endpoint(addr)
    }
}
