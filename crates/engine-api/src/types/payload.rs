//! Docker's secret and config shapes (API 1.41): the spec a create or update sends and the
//! object `/secrets` and `/configs` answer with. Wire shapes only: `convert::payloads` maps
//! them to our objects and decides what is refused.

use super::{Labels, Version};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Docker's `SecretSpec` and `ConfigSpec` in one (a config has no `Driver`). `Data` is
/// base64, as Go encodes a `[]byte`. `Driver` and `Templating` are read so they can be
/// refused by name rather than dropped.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PayloadSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: Option<Labels>,
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub driver: Option<Value>,
    #[serde(default)]
    pub templating: Option<Value>,
}

/// The spec as an answer shows it: a secret's without its data.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PayloadSpecOut {
    pub name: String,
    pub labels: Labels,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// A secret or a config as Docker shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Payload {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    pub created_at: String,
    pub updated_at: String,
    pub spec: PayloadSpecOut,
}

/// The answer to a create: `201 {"ID": ...}`.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    #[serde(rename = "ID")]
    pub id: String,
}
