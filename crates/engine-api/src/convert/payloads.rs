//! Secrets and configs between our objects and Docker's shapes: one `Item` for both kinds
//! (they differ in name and in whether their data is shown), the create/update body read
//! with what cannot be honoured refused by field, and Docker's list filters. Pure functions:
//! nothing here calls the control API.

use super::rfc3339;
use crate::error::ApiError;
use crate::request::Filters;
use crate::types as d;
use base64::Engine as _;
use std::collections::HashMap;
use swarm_api::{Config, Secret};

/// The filters `/secrets` and `/configs` take, as Docker's server does.
pub const FILTERS: &[&str] = &["id", "label", "name", "names"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Secret,
    Config,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }
}

/// A secret or a config as this crate handles both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Item {
    pub id: String,
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub name: String,
    pub labels: HashMap<String, String>,
    /// Always empty for a secret: the control API never returns it.
    pub data: Vec<u8>,
}

fn item(
    id: String,
    meta: Option<swarm_api::Meta>,
    annotations: Option<swarm_api::Annotations>,
    data: Vec<u8>,
) -> Item {
    let meta = meta.unwrap_or_default();
    let a = annotations.unwrap_or_default();
    Item {
        id,
        version: meta.version,
        created_at: meta.created_at,
        updated_at: meta.updated_at,
        name: a.name,
        labels: a.labels,
        data,
    }
}

impl From<Secret> for Item {
    fn from(s: Secret) -> Item {
        let spec = s.spec.unwrap_or_default();
        item(s.id, s.meta, spec.annotations, spec.data)
    }
}

impl From<Config> for Item {
    fn from(c: Config) -> Item {
        let spec = c.spec.unwrap_or_default();
        item(c.id, c.meta, spec.annotations, spec.data)
    }
}

/// The object as Docker shows it: a config with its data (base64), a secret never.
pub fn to_docker(kind: Kind, i: &Item) -> d::Payload {
    d::Payload {
        id: i.id.clone(),
        version: d::Version { index: i.version },
        created_at: rfc3339(i.created_at),
        updated_at: rfc3339(i.updated_at),
        spec: d::PayloadSpecOut {
            name: i.name.clone(),
            labels: i
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            data: (kind == Kind::Config)
                .then(|| base64::engine::general_purpose::STANDARD.encode(&i.data)),
        },
    }
}

/// A create or update body, checked and decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewSpec {
    pub name: String,
    pub labels: HashMap<String, String>,
    pub data: Vec<u8>,
}

/// The name of a `Driver`-shaped value (`{"Name": ..., "Options": ...}`), if one is set;
/// the CLI sends none, or `null`, when no driver is asked for.
fn driver_name(v: Option<&serde_json::Value>) -> Option<String> {
    let obj = v?.as_object()?;
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("name"))
        .and_then(|(_, n)| n.as_str())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// Reads a create or update body. Secret drivers and templating are refused (the data is
/// kept in the swarm's store, as given); the data must be base64.
pub fn spec_from_docker(kind: Kind, s: d::PayloadSpec) -> Result<NewSpec, ApiError> {
    if let Some(name) = driver_name(s.driver.as_ref()) {
        let why = match kind {
            Kind::Secret => "secret drivers are not supported: the data is kept in the swarm",
            Kind::Config => "configs have no driver",
        };
        return Err(ApiError::BadRequest(format!("Driver: {name:?}: {why}")));
    }
    if let Some(name) = driver_name(s.templating.as_ref()) {
        return Err(ApiError::BadRequest(format!(
            "Templating: {name:?}: templated {}s are not supported",
            kind.word()
        )));
    }
    let data = match s.data.as_deref() {
        None | Some("") => Vec::new(),
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| ApiError::BadRequest(format!("Data: not valid base64: {e}")))?,
    };
    Ok(NewSpec {
        name: s.name,
        labels: s.labels.unwrap_or_default().into_iter().collect(),
        data,
    })
}

/// Docker's filters: `id` and `name` are prefixes, `names` exact names, `label` `key` or
/// `key=value` (every one given must hold); values of one key are alternatives.
pub fn matches(i: &Item, f: &Filters) -> bool {
    let any = |key: &str, test: &dyn Fn(&str) -> bool| {
        f.get(key).is_none_or(|vals| vals.iter().any(|v| test(v)))
    };
    let label = |w: &str| match w.split_once('=') {
        Some((k, v)) => i.labels.get(k).is_some_and(|x| x == v),
        None => i.labels.contains_key(w),
    };
    any("id", &|v| i.id.starts_with(v))
        && any("name", &|v| i.name.starts_with(v))
        && any("names", &|v| i.name == v)
        && f.get("label").is_none_or(|l| l.iter().all(|w| label(w)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: serde_json::Value) -> d::PayloadSpec {
        crate::gojson::from_slice(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_cli_create_body_decodes() {
        let s = spec_from_docker(
            Kind::Secret,
            body(json!({"Name": "db", "Labels": {"env": "prod"}, "Data": "cGFzcw==", "Driver": null})),
        )
        .unwrap();
        assert_eq!(s.name, "db");
        assert_eq!(s.data, b"pass");
        assert_eq!(s.labels["env"], "prod");
        // Go's key-case rule: an SDK's lowercase keys count.
        let s = spec_from_docker(Kind::Config, body(json!({"name": "c", "data": "eA=="}))).unwrap();
        assert_eq!((s.name.as_str(), s.data.as_slice()), ("c", b"x".as_slice()));
    }

    #[test]
    fn drivers_templating_and_bad_data_are_refused_by_field() {
        let cases = [
            (json!({"Name": "a", "Driver": {"Name": "vault"}}), "Driver:"),
            (
                json!({"Name": "a", "Templating": {"Name": "golang"}}),
                "Templating:",
            ),
            (json!({"Name": "a", "Data": "%%%"}), "Data:"),
        ];
        for (b, field) in cases {
            let e = spec_from_docker(Kind::Secret, body(b.clone())).unwrap_err();
            assert_eq!(e.status().as_u16(), 400);
            assert!(e.to_string().starts_with(field), "{b}: {e}");
        }
        // An empty driver is no driver.
        assert!(spec_from_docker(
            Kind::Secret,
            body(json!({"Name": "a", "Driver": {"Name": ""}}))
        )
        .is_ok());
    }

    #[test]
    fn only_configs_show_their_data() {
        let i = Item {
            id: "abc".into(),
            version: 7,
            name: "x".into(),
            data: b"port=80".to_vec(),
            ..Default::default()
        };
        let c = serde_json::to_value(to_docker(Kind::Config, &i)).unwrap();
        assert_eq!(c["Spec"]["Data"], "cG9ydD04MA==");
        assert_eq!(c["Version"]["Index"], 7);
        assert_eq!(c["ID"], "abc");
        let s = serde_json::to_value(to_docker(Kind::Secret, &i)).unwrap();
        assert!(s["Spec"].get("Data").is_none(), "{s}");
    }

    #[test]
    fn filters_match_as_dockers_do() {
        let items = [
            Item {
                id: "aaa1".into(),
                name: "db".into(),
                labels: [("env".to_string(), "prod".to_string())].into(),
                ..Default::default()
            },
            Item {
                id: "bbb2".into(),
                name: "db-old".into(),
                ..Default::default()
            },
        ];
        let run = |f: serde_json::Value| -> Vec<String> {
            let q = format!("filters={f}");
            let f = crate::request::Request::new(Some(&q), bytes::Bytes::new())
                .filters(FILTERS)
                .unwrap();
            items
                .iter()
                .filter(|i| matches(i, &f))
                .map(|i| i.name.clone())
                .collect()
        };
        assert_eq!(run(json!({})), ["db", "db-old"]);
        assert_eq!(run(json!({"name": ["db"]})), ["db", "db-old"]);
        assert_eq!(run(json!({"names": ["db"]})), ["db"]);
        assert_eq!(run(json!({"id": ["bb"]})), ["db-old"]);
        assert_eq!(run(json!({"label": ["env"]})), ["db"]);
        assert_eq!(run(json!({"label": ["env=dev"]})), Vec::<String>::new());
        assert_eq!(run(json!({"id": ["aa", "bb"]})), ["db", "db-old"]);
    }
}
