//! What every role of one node shares for the node's whole life: its configuration, the
//! handed-in remote API listener, where it publishes what it is, its stop signal and its
//! advertised address. Built once by the crate root; read by the roles, never changed.

use crate::config::NodeConfig;
use crate::info::NodeInfo;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What every role of one node shares, for the node's whole life.
pub(crate) struct RoleEnv<'a> {
    pub cfg: &'a NodeConfig,
    /// The remote API socket handed in by the caller, served by every manager role.
    pub remote_listener: Option<&'a std::net::TcpListener>,
    /// Where the node says what it is now.
    pub info: &'a watch::Sender<Option<NodeInfo>>,
    /// Stops the node (and so the role).
    pub shutdown: &'a CancellationToken,
    /// Tests only: cuts or slows this node's Raft calls.
    pub peer_filter: Option<std::sync::Arc<dyn crate::peers::PeerFilter>>,
    /// The address other nodes dial for this node's remote API.
    pub advertise: String,
}
