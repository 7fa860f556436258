//! Docker's network shapes (API 1.41): the body of `POST /networks/create`, a network as
//! `/networks` shows it (`NetworkResource`), the swarm `Network` object a task's attachment
//! carries, and what a service spec and its endpoint say about networks. Wire shapes only:
//! `convert::networks` maps them to our objects and decides what is refused.

use super::{Labels, Version};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

// ---- POST /networks/create ----

/// Docker's `NetworkCreateRequest`. Fields this swarm cannot honour are read anyway, so the
/// conversion can refuse them by name instead of dropping them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateRequest {
    #[serde(default)]
    pub name: String,
    /// Names are always unique here: read, and nothing more.
    #[serde(default)]
    pub check_duplicate: bool,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub scope: String,
    #[serde(rename = "EnableIPv6", default)]
    pub enable_ipv6: Option<bool>,
    /// API 1.48 and later.
    #[serde(rename = "EnableIPv4", default)]
    pub enable_ipv4: Option<bool>,
    #[serde(rename = "IPAM", default)]
    pub ipam: Option<IpamRequest>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub ingress: bool,
    #[serde(default)]
    pub config_only: bool,
    #[serde(default)]
    pub config_from: Option<ConfigReference>,
    #[serde(default)]
    pub options: Option<Labels>,
    #[serde(default)]
    pub labels: Option<Labels>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamRequest {
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub config: Option<Vec<IpamConfigRequest>>,
    #[serde(default)]
    pub options: Option<Labels>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IpamConfigRequest {
    #[serde(rename = "Subnet", default)]
    pub subnet: String,
    #[serde(rename = "IPRange", default)]
    pub ip_range: String,
    #[serde(rename = "Gateway", default)]
    pub gateway: String,
    #[serde(rename = "AuxiliaryAddresses", default)]
    pub aux_addresses: Option<Labels>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigReference {
    #[serde(default)]
    pub network: String,
}

/// The answer to a create.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkCreated {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Warning")]
    pub warning: String,
}

// ---- GET /networks, /networks/{id} ----

/// Docker's `NetworkResource`, keys in Docker's order.
#[derive(Debug, Clone, Serialize)]
pub struct Network {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Created")]
    pub created: String,
    #[serde(rename = "Scope")]
    pub scope: String,
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    #[serde(rename = "Internal")]
    pub internal: bool,
    #[serde(rename = "Attachable")]
    pub attachable: bool,
    #[serde(rename = "Ingress")]
    pub ingress: bool,
    #[serde(rename = "ConfigFrom")]
    pub config_from: ConfigReference,
    #[serde(rename = "ConfigOnly")]
    pub config_only: bool,
    /// Containers attached on this engine: a manager's API has none to show.
    #[serde(rename = "Containers")]
    pub containers: BTreeMap<String, Value>,
    #[serde(rename = "Options")]
    pub options: Labels,
    #[serde(rename = "Labels")]
    pub labels: Labels,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ipam {
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "Options")]
    pub options: Option<Labels>,
    #[serde(rename = "Config")]
    pub config: Vec<IpamConfig>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IpamConfig {
    #[serde(rename = "Subnet", skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(rename = "Gateway", skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}

// ---- the swarm object, as a task's NetworksAttachments carry it ----

/// Docker's `swarm.Network` (not the `NetworkResource` above): what `Task.NetworksAttachments`
/// embeds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmNetwork {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    pub created_at: String,
    pub updated_at: String,
    pub spec: SwarmNetworkSpec,
    pub driver_state: Driver,
    #[serde(rename = "IPAMOptions", skip_serializing_if = "Option::is_none")]
    pub ipam_options: Option<IpamOptions>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmNetworkSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub labels: Labels,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_configuration: Option<Driver>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub attachable: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ingress: bool,
    #[serde(rename = "IPAMOptions", skip_serializing_if = "Option::is_none")]
    pub ipam_options: Option<IpamOptions>,
    pub scope: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Driver {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub options: Labels,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamOptions {
    pub driver: Driver,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<SwarmIpamConfig>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmIpamConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}

/// One of a task's `NetworksAttachments`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachment {
    pub network: SwarmNetwork,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

// ---- services ----

/// A network a service's tasks join: `Target` is a name or ID on the way in, the network's ID
/// on the way out (as Docker's server resolves it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachmentConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Per-attachment driver options: not honoured here, kept raw so a set value is warned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_opts: Option<Value>,
}

/// A service's virtual IP on one network.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EndpointVirtualIp {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "Addr")]
    pub addr: String,
}
