//! Docker's `swarm.Spec` as `POST /swarm/update` sends it (the CLI sends back what `GET
//! /swarm` showed, with its flags applied). Every field is read, so the ones this swarm
//! cannot change are refused by name rather than dropped. Durations are nanoseconds.

use super::Labels;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: Option<Labels>,
    #[serde(default)]
    pub orchestration: Option<SwarmOrchestration>,
    #[serde(default)]
    pub raft: Option<SwarmRaft>,
    #[serde(default)]
    pub dispatcher: Option<SwarmDispatcher>,
    #[serde(rename = "CAConfig", default)]
    pub ca_config: Option<SwarmCaConfig>,
    #[serde(default)]
    pub encryption_config: Option<SwarmEncryption>,
    #[serde(default)]
    pub task_defaults: Option<SwarmTaskDefaults>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmOrchestration {
    #[serde(default)]
    pub task_history_retention_limit: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmRaft {
    #[serde(default)]
    pub snapshot_interval: u64,
    #[serde(default)]
    pub keep_old_snapshots: Option<u64>,
    #[serde(default)]
    pub log_entries_for_slow_followers: u64,
    #[serde(default)]
    pub election_tick: i64,
    #[serde(default)]
    pub heartbeat_tick: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmDispatcher {
    #[serde(default)]
    pub heartbeat_period: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SwarmCaConfig {
    #[serde(rename = "NodeCertExpiry", default)]
    pub node_cert_expiry: i64,
    #[serde(rename = "ExternalCAs", default)]
    pub external_cas: Option<Vec<Value>>,
    #[serde(rename = "SigningCACert", default)]
    pub signing_ca_cert: String,
    #[serde(rename = "SigningCAKey", default)]
    pub signing_ca_key: String,
    #[serde(rename = "ForceRotate", default)]
    pub force_rotate: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmEncryption {
    #[serde(default)]
    pub auto_lock_managers: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmTaskDefaults {
    #[serde(default)]
    pub log_driver: Option<Value>,
}

/// `POST /swarm/unlock`'s body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnlockRequest {
    #[serde(default)]
    pub unlock_key: String,
}
