//! What a running node tells its in-process callers about itself: its identity, its role,
//! and while it is a manager, the role's parts. Published by the roles on a watch; holds no
//! state of its own.

use swarm_api::NodeRole;
use swarm_manager::control::ControlApi;
use swarm_raft::RaftNode;
use swarm_store::Store;

/// What a running node is now: published when it gets its identity and at every role change.
#[derive(Clone)]
pub struct NodeInfo {
    pub node_id: String,
    pub cluster_id: String,
    pub role: NodeRole,
    /// The manager role's parts while it runs (None on a worker, and between roles).
    pub manager: Option<ManagerHandle>,
}

impl NodeInfo {
    /// Whether the node serves in its role: a worker once it has its identity, a manager once
    /// Raft counts it as a voter (a manager that joined is a learner first).
    pub fn serving(&self) -> bool {
        match (&self.role, &self.manager) {
            (NodeRole::Manager, Some(m)) => m.raft.voters().contains(&m.raft.raft_id()),
            (NodeRole::Manager, None) => false,
            _ => true,
        }
    }
}

/// A running manager role's parts, lent to in-process callers (tests, the bench). Holding a
/// clone keeps the role's store alive: let go of it once the role has changed.
#[derive(Clone)]
pub struct ManagerHandle {
    /// The remote API address other nodes dial.
    pub addr: String,
    pub store: Store,
    pub raft: RaftNode,
    /// The control API, in process (the control socket serves the same).
    pub control: ControlApi,
}
