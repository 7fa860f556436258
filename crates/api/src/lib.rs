//! The wire and object model shared by every crate: generated protobuf types and gRPC stubs,
//! object IDs, task-state ordering and spec validation. No I/O lives here, and nothing that
//! decides: it must not depend on any other crate of the workspace.

#[allow(clippy::all, clippy::unwrap_used, missing_docs)]
pub mod v1 {
    tonic::include_proto!("swarm.v1");
}

pub mod cidr;
pub mod codec;
pub mod ids;
pub mod names;
pub mod route;
pub mod shared_spec;
pub mod state;
pub mod template;
pub mod validate;

pub use shared_spec::SharedTaskSpec;
pub use v1::*;

/// Organizational unit of a manager's certificate.
pub const MANAGER_OU: &str = "swarm-manager";
/// Organizational unit of a worker's certificate.
pub const WORKER_OU: &str = "swarm-worker";
/// TLS server name every manager certificate carries, so clients need no per-host names.
pub const MANAGER_SERVER_NAME: &str = "swarm-manager";
/// Response metadata a follower sets when it refuses a call that needs the leader: the
/// leader's remote API address, so the caller can go there next.
pub const LEADER_METADATA: &str = "x-swarm-leader";
/// The one cluster object's name.
pub const DEFAULT_CLUSTER_NAME: &str = "default";

/// Defaults of SwarmKit (DESIGN.md §4).
pub mod defaults {
    pub const HEARTBEAT_PERIOD_MS: i64 = 5_000;
    /// A node is DOWN after this many missed heartbeat periods.
    pub const HEARTBEAT_GRACE_MULTIPLIER: i64 = 3;
    pub const RESTART_DELAY_MS: i64 = 5_000;
    pub const STOP_GRACE_PERIOD_MS: i64 = 10_000;
    pub const TASK_HISTORY_RETENTION: i64 = 5;
    pub const SNAPSHOT_INTERVAL: u64 = 10_000;
    pub const LOG_ENTRIES_FOR_SLOW_FOLLOWERS: u64 = 500;
    pub const HEARTBEAT_TICK: u32 = 1;
    pub const ELECTION_TICK: u32 = 10;
    pub const NODE_CERT_EXPIRY_MS: i64 = 90 * 24 * 3600 * 1000;
    /// The shortest node certificate life a cluster may ask for (SwarmKit's minimum): shorter
    /// lives would have nodes renewing faster than a slow manager can answer.
    pub const MIN_NODE_CERT_EXPIRY_MS: i64 = 3600 * 1000;
    pub const REMOTE_API_ADDR: &str = "0.0.0.0:4242";
    pub const CONTROL_SOCKET: &str = "/var/run/swarmd.sock";
    pub const STATE_DIR: &str = "/var/lib/swarmd";
    /// Where networks without a subnet draw theirs from (Docker's), carved in /24s.
    pub const ADDRESS_POOL: &str = "10.0.0.0/8";
    pub const SUBNET_SIZE: u32 = 24;
    /// VXLAN's IANA port.
    pub const DATA_PATH_PORT: u32 = 4789;
    /// The routing mesh's network, created at bootstrap.
    pub const INGRESS_NETWORK: &str = "ingress";
    pub const NETWORK_DRIVER: &str = "overlay";
    /// VXLAN network identifiers the allocator hands out (Docker's overlay range starts here).
    pub const FIRST_VNI: u32 = 4096;

    /// What a service without an update (or rollback) config gets from the managers
    /// (DESIGN.md §4): one task at a time, no delay, pause on failure, 5 s monitor, stop-first.
    pub fn update_config() -> crate::UpdateConfig {
        crate::UpdateConfig {
            parallelism: 1,
            delay_ms: 0,
            failure_action: crate::UpdateFailureAction::Pause as i32,
            monitor_ms: 5_000,
            max_failure_ratio: 0.0,
            order: crate::UpdateOrder::StopFirst as i32,
            ..Default::default()
        }
    }
}

/// Milliseconds since the unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
