//! The service spec as Docker's API 1.41 spells it: every field of `ServiceSpec` and
//! `TaskSpec`. Fields this swarm stores are typed; fields it cannot honour are kept as raw
//! JSON (`Option<Value>`) only so `convert::spec` can see that they were set and warn or
//! refuse, naming them. Decoded with `gojson` (Go's null and key-case rules).

use super::{Labels, NetworkAttachmentConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

pub(crate) fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: Option<Labels>,
    #[serde(default)]
    pub task_template: TaskSpec,
    #[serde(default)]
    pub mode: ServiceMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    /// Deprecated in Docker for `TaskTemplate.Networks`, and moved there when that is empty
    /// (as Docker's server does); never sent back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<NetworkAttachmentConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_spec: Option<EndpointSpec>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PortConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub target_port: u64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub published_port: u64,
    #[serde(default)]
    pub publish_mode: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceMode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated: Option<Replicated>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<Empty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated_job: Option<ReplicatedJob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_job: Option<Empty>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Empty {}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Replicated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicatedJob {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_completions: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateConfig {
    #[serde(default)]
    pub parallelism: u64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub delay: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failure_action: String,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub monitor: i64,
    #[serde(default)]
    pub max_failure_ratio: f32,
    #[serde(default)]
    pub order: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TaskSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_spec: Option<ContainerSpec>,
    /// Any other runtime (plugins, network attachments) is refused: we run containers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_spec: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_attachment_spec: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<NetworkAttachmentConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<LogDriver>,
    #[serde(default)]
    pub force_update: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runtime: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LogDriver {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Labels>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSpec {
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dir: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileges: Option<Value>,
    #[serde(rename = "TTY", default, skip_serializing_if = "is_false")]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub open_stdin: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(rename = "DNSConfig", default, skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<DnsConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileReference>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub isolation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<Labels>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_drop: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub retries: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DnsConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub soft: i64,
    #[serde(default)]
    pub hard: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    #[serde(default, rename = "Type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default)]
    pub target: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<Value>,
}

/// A secret or config handed to the task as a file (Docker's SecretReference/ConfigReference).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileReference {
    #[serde(rename = "File", default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileTarget>,
    #[serde(rename = "SecretID", default, skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<String>,
    #[serde(
        rename = "SecretName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub secret_name: Option<String>,
    #[serde(rename = "ConfigID", default, skip_serializing_if = "Option::is_none")]
    pub config_id: Option<String>,
    #[serde(
        rename = "ConfigName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub config_name: Option<String>,
}

/// Where a secret or config lands. Only the name is ours: owner and mode are Docker's to
/// choose (0444, root), and a body that sets them gets a warning.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileTarget {
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "UID", default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(rename = "GID", default, skip_serializing_if = "String::is_empty")]
    pub gid: String,
    #[serde(rename = "Mode", default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<Resources>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Resources {
    #[serde(rename = "NanoCPUs", default, skip_serializing_if = "is_zero_i64")]
    pub nano_cpus: i64,
    #[serde(rename = "MemoryBytes", default, skip_serializing_if = "is_zero_i64")]
    pub memory_bytes: i64,
    /// Limits only.
    #[serde(rename = "Pids", default, skip_serializing_if = "is_zero_i64")]
    pub pids: i64,
    /// Reservations only.
    #[serde(
        rename = "GenericResources",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub generic_resources: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<PlacementPreference>,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub max_replicas: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PlacementPreference {
    #[serde(default)]
    pub spread: Option<SpreadOver>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SpreadOver {
    #[serde(default)]
    pub spread_descriptor: String,
}
