//! `/_ping`, `/version`, `/info` and `/swarm`: what the Docker CLI asks before anything else
//! (API version negotiation, which node it talks to, the join tokens).

use crate::backend::Backend;
use crate::convert::{host_of, ms_to_ns, rfc3339};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::{API_VERSION, MIN_API_VERSION};
use serde_json::{json, Value};
use swarm_api::{defaults, Cluster, NodeRole};

const ENGINE_VERSION: &str = concat!("swarmd-", env!("CARGO_PKG_VERSION"));

/// Go's name for this machine's architecture, as Docker reports it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// What `swarm init` and `swarm join` get: Docker answers 503 with this meaning, and
/// clients (the CLI, SDKs) look for "already part of a swarm" in it.
pub fn already_in_swarm() -> ApiError {
    ApiError::Unavailable(
        "this node is already part of a swarm; it cannot init or join another one".into(),
    )
}

pub fn ping() -> Reply {
    Reply::text("OK")
}

/// Total memory in bytes, from /proc/meminfo (0 where it cannot be read).
fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib.saturating_mul(1024))
        })
        .unwrap_or(0)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

const GIT_COMMIT: &str = env!("SWARMD_GIT_COMMIT");
/// The commit's date, not the build's: one commit gives one answer.
const BUILD_TIME: &str = env!("SWARMD_COMMIT_DATE");
/// Docker reports its Go compiler there; ours is rustc.
const COMPILER: &str = env!("SWARMD_RUSTC");

pub fn version() -> Reply {
    Reply::ok(&json!({
        "Platform": { "Name": "swarmd" },
        "Components": [{
            "Name": "Engine",
            "Version": ENGINE_VERSION,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": go_arch(),
                "KernelVersion": kernel_version(),
                "GitCommit": GIT_COMMIT,
                "GoVersion": COMPILER,
                "BuildTime": BUILD_TIME,
                "Experimental": "false",
            }
        }],
        "Version": ENGINE_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel_version(),
        "GitCommit": GIT_COMMIT,
        "GoVersion": COMPILER,
        "BuildTime": BUILD_TIME,
        "Experimental": false,
    }))
}

/// The cluster's address pool, subnet size and VXLAN port, with this swarm's defaults for
/// what a cluster made before networks existed leaves empty.
fn address_settings(c: &Cluster) -> (Vec<String>, u32, u32) {
    let pool = if c.default_address_pool.is_empty() {
        vec![defaults::ADDRESS_POOL.to_string()]
    } else {
        c.default_address_pool.clone()
    };
    let or = |v: u32, d: u32| if v == 0 { d } else { v };
    (
        pool,
        or(c.subnet_size, defaults::SUBNET_SIZE),
        or(c.data_path_port, defaults::DATA_PATH_PORT),
    )
}

/// The cluster as Docker's `ClusterInfo`: settings and the root certificate, no secrets.
fn cluster_info(c: &Cluster) -> Value {
    let spec = c.spec.clone().unwrap_or_default();
    let raft = spec.raft.unwrap_or_default();
    let (pool, subnet_size, data_path_port) = address_settings(c);
    json!({
        "ID": c.id,
        "Version": { "Index": c.meta.as_ref().map(|m| m.version).unwrap_or(0) },
        "CreatedAt": rfc3339(c.meta.as_ref().map(|m| m.created_at).unwrap_or(0)),
        "UpdatedAt": rfc3339(c.meta.as_ref().map(|m| m.updated_at).unwrap_or(0)),
        "Spec": {
            "Name": spec.annotations.as_ref().map(|a| a.name.as_str()).unwrap_or(""),
            "Labels": spec.annotations.as_ref().map(|a| a.labels.clone()).unwrap_or_default(),
            "Orchestration": {
                "TaskHistoryRetentionLimit":
                    spec.orchestration.map(|o| o.task_history_retention_limit).unwrap_or(0),
            },
            "Raft": {
                "SnapshotInterval": raft.snapshot_interval,
                "LogEntriesForSlowFollowers": raft.log_entries_for_slow_followers,
                "HeartbeatTick": raft.heartbeat_tick,
                "ElectionTick": raft.election_tick,
            },
            "Dispatcher": {
                "HeartbeatPeriod": ms_to_ns(spec.dispatcher.map(|d| d.heartbeat_period_ms).unwrap_or(0)),
            },
            "CAConfig": {
                "NodeCertExpiry": ms_to_ns(spec.ca_config.map(|c| c.node_cert_expiry_ms).unwrap_or(0)),
            },
            "TaskDefaults": {},
            "EncryptionConfig": {
                "AutoLockManagers": spec.encryption.map(|e| e.auto_lock_managers).unwrap_or(false),
            },
        },
        "TLSInfo": crate::convert::tls::root_tls_info(
            c.root_ca.as_ref().map(|r| r.ca_cert.as_slice()).unwrap_or_default(),
        ),
        "RootRotationInProgress": c.root_ca.as_ref().is_some_and(|r| r.root_rotation.is_some()),
        "DefaultAddrPool": pool,
        "SubnetSize": subnet_size,
        "DataPathPort": data_path_port,
    })
}

pub async fn swarm(b: &Backend) -> Result<Reply, ApiError> {
    let c = b.cluster().await?;
    let mut info = cluster_info(&c);
    let tokens = c
        .root_ca
        .as_ref()
        .and_then(|r| r.join_tokens.clone())
        .unwrap_or_default();
    info["JoinTokens"] = json!({ "Worker": tokens.worker, "Manager": tokens.manager });
    Ok(Reply::ok(&info))
}

pub async fn info(b: &Backend) -> Result<Reply, ApiError> {
    let nodes = b.nodes().await?;
    let cluster = b.cluster().await?;
    let managers: Vec<Value> = nodes
        .iter()
        .filter(|n| n.role == NodeRole::Manager as i32)
        .map(|n| {
            json!({
                "NodeID": n.id,
                "Addr": n.manager_status.as_ref().map(|m| m.addr.as_str()).unwrap_or(""),
            })
        })
        .collect();
    let me = &b.local;
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    Ok(Reply::ok(&json!({
        "ID": me.node_id,
        "Name": me.hostname,
        "ServerVersion": ENGINE_VERSION,
        "OperatingSystem": "linux",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "KernelVersion": kernel_version(),
        "NCPU": ncpu,
        "MemTotal": mem_total(),
        "SystemTime": now_rfc3339(),
        "Labels": [],
        "Debug": false,
        "ExperimentalBuild": false,
        // Containers are the workers' business here, not this endpoint's.
        "Containers": 0,
        "ContainersRunning": 0,
        "ContainersPaused": 0,
        "ContainersStopped": 0,
        "Images": 0,
        "Driver": "",
        "LoggingDriver": "",
        "CgroupDriver": "",
        "DockerRootDir": "",
        "Plugins": { "Volume": [], "Network": [], "Authorization": null, "Log": [] },
        "SecurityOptions": [],
        "Runtimes": {},
        "LiveRestoreEnabled": false,
        "Warnings": null,
        "Swarm": {
            "NodeID": me.node_id,
            "NodeAddr": host_of(&me.addr),
            "LocalNodeState": "active",
            "ControlAvailable": true,
            "Error": "",
            "RemoteManagers": managers,
            "Nodes": nodes.len(),
            "Managers": managers.len(),
            "Cluster": cluster_info(&cluster),
        },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_info_shows_the_address_settings_with_defaults_for_unset_ones() {
        let set = Cluster {
            default_address_pool: vec!["10.10.0.0/16".into(), "10.20.0.0/16".into()],
            subnet_size: 26,
            data_path_port: 4800,
            ..Default::default()
        };
        let j = cluster_info(&set);
        assert_eq!(
            j["DefaultAddrPool"],
            json!(["10.10.0.0/16", "10.20.0.0/16"])
        );
        assert_eq!(
            (j["SubnetSize"].as_u64(), j["DataPathPort"].as_u64()),
            (Some(26), Some(4800))
        );
        let j = cluster_info(&Cluster::default());
        assert_eq!(j["DefaultAddrPool"], json!(["10.0.0.0/8"]));
        assert_eq!(
            (j["SubnetSize"].as_u64(), j["DataPathPort"].as_u64()),
            (Some(24), Some(4789))
        );
    }
}
