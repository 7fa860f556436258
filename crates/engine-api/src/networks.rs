//! `/networks`: list (with Docker's filters), inspect (ID, name or unique ID prefix), create
//! and remove. Every network here is a swarm-scoped overlay network; the control API
//! validates and owns them, this module only translates and filters.

use crate::backend::Backend;
use crate::convert::networks::{self as conv, SCOPE};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::{Filters, Request};
use crate::types as d;
use hyper::StatusCode;
use std::collections::HashSet;
use swarm_api::Network;

const FILTERS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];

/// Largest compiled pattern a `name` or `id` filter may make: they come from the network.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// The values of a `name` or `id` filter, matched as Docker's are: the value itself, or an
/// unanchored regular expression over it (so `name=app` matches `myapp`, and `name=^app$`
/// only `app`). A value that is no valid pattern matches only itself, as in Docker.
struct Patterns(Option<Vec<(String, Option<regex::Regex>)>>);

impl Patterns {
    fn new(values: Option<&Vec<String>>) -> Patterns {
        Patterns(values.map(|vals| {
            vals.iter()
                .map(|v| {
                    let re = regex::RegexBuilder::new(v)
                        .size_limit(PATTERN_SIZE_LIMIT)
                        .build()
                        .ok();
                    (v.clone(), re)
                })
                .collect()
        }))
    }

    /// True without the filter; else when any value matches.
    fn pass(&self, source: &str) -> bool {
        self.0.as_ref().is_none_or(|vals| {
            vals.iter()
                .any(|(v, re)| v == source || re.as_ref().is_some_and(|re| re.is_match(source)))
        })
    }
}

/// Docker's `label` filter: every `key` or `key=value` given must hold.
fn labels_match(labels: &d::Labels, wants: &[String]) -> bool {
    wants.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(w.as_str()),
    })
}

/// The `dangling` and `type` values, checked as Docker checks them.
fn check_values(f: &Filters) -> Result<(), ApiError> {
    if let Some(vals) = f.get("dangling") {
        if vals.len() > 1 {
            return Err(ApiError::BadRequest(
                "filters: dangling: give one value".into(),
            ));
        }
        if let Some(v) = vals.first() {
            if !matches!(v.as_str(), "0" | "1" | "true" | "false") {
                return Err(ApiError::BadRequest(format!(
                    "filters: dangling: {v:?} is not one of true, 1, false, 0"
                )));
            }
        }
    }
    for t in f.get("type").into_iter().flatten() {
        if !matches!(t.as_str(), "builtin" | "custom") {
            return Err(ApiError::BadRequest(format!(
                "filters: type: {t:?} is not one of builtin, custom"
            )));
        }
    }
    Ok(())
}

/// The filters of one list request, with their patterns compiled once.
struct Matcher<'a> {
    f: &'a Filters,
    names: Patterns,
    ids: Patterns,
    /// The networks a service names (for `dangling`).
    used: HashSet<String>,
}

impl<'a> Matcher<'a> {
    fn new(f: &'a Filters, used: HashSet<String>) -> Matcher<'a> {
        Matcher {
            f,
            names: Patterns::new(f.get("name")),
            ids: Patterns::new(f.get("id")),
            used,
        }
    }
}

/// Whether `n` passes the filters.
fn matches(n: &Network, m: &Matcher<'_>) -> bool {
    let (f, used) = (m.f, &m.used);
    let any = |key: &str, test: &dyn Fn(&str) -> bool| {
        f.get(key).is_none_or(|vals| vals.iter().any(|v| test(v)))
    };
    let dangling_ok = match f.get("dangling").and_then(|v| v.first()) {
        // The ingress network is never dangling: the routing mesh owns it.
        Some(v) => {
            let dangling = !used.contains(&n.id) && !n.spec.as_ref().is_some_and(|s| s.ingress);
            dangling == matches!(v.as_str(), "1" | "true")
        }
        None => true,
    };
    any("driver", &|v| v == conv::driver(n))
        && m.names.pass(conv::name(n))
        && m.ids.pass(&n.id)
        && any("scope", &|v| v == SCOPE)
        // Docker's "builtin" networks are its predefined local ones (bridge, host, none):
        // there are none here; the ingress network counts as custom there too.
        && any("type", &|v| v == "custom")
        && f.get("label").is_none_or(|l| labels_match(&conv::labels(n), l))
        && dangling_ok
}

pub async fn list(b: &Backend, r: &Request) -> Result<Reply, ApiError> {
    let f = r.filters(FILTERS)?;
    check_values(&f)?;
    let used: HashSet<String> = if f.contains_key("dangling") {
        b.services()
            .await?
            .iter()
            .filter_map(|s| s.spec.as_ref()?.task.as_ref())
            .flat_map(|t| t.networks.iter().map(|n| n.target.clone()))
            .collect()
    } else {
        HashSet::new()
    };
    let m = Matcher::new(&f, used);
    let out: Vec<d::Network> = b
        .networks()
        .await?
        .iter()
        .filter(|n| matches(n, &m))
        .map(conv::to_docker)
        .collect();
    Ok(Reply::ok(&out))
}

pub async fn get(b: &Backend, id: &str, r: &Request) -> Result<Reply, ApiError> {
    // Accepted as Docker accepts it. Its extra (each service's tasks on the network, as
    // this engine's data plane sees them) is node-local; a manager's API has none here.
    r.go_bool("verbose")?;
    // Every network here is swarm-scoped: asking for another scope finds none.
    if let Some(scope) = r.param("scope").filter(|s| !s.is_empty() && *s != SCOPE) {
        return Err(ApiError::NotFound(format!(
            "network {id} not found (in scope {scope})"
        )));
    }
    let n = b.network(id).await?;
    Ok(Reply::ok(&conv::to_docker(&n)))
}

pub async fn create(b: &Backend, r: &Request) -> Result<Reply, ApiError> {
    let spec = conv::spec_from_docker(r.json()?)?;
    let created = b.create_network(spec).await?;
    tracing::info!(network = %created.id, name = conv::name(&created), "docker API: network created");
    Ok(Reply::json(
        StatusCode::CREATED,
        &d::NetworkCreated {
            id: created.id,
            warning: String::new(),
        },
    ))
}

pub async fn remove(b: &Backend, id: &str) -> Result<Reply, ApiError> {
    let n = b.network(id).await?;
    b.remove_network(&n.id).await?;
    tracing::info!(network = %n.id, name = conv::name(&n), "docker API: network removed");
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use swarm_api::{Annotations, NetworkSpec};

    fn net(id: &str, name: &str, labels: &[(&str, &str)], ingress: bool) -> Network {
        Network {
            id: id.into(),
            spec: Some(NetworkSpec {
                annotations: Some(Annotations {
                    name: name.into(),
                    labels: labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                }),
                driver: "overlay".into(),
                ingress,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn filters(json: &str) -> Filters {
        let q = format!("filters={json}");
        Request::new(Some(&q), bytes::Bytes::new())
            .filters(FILTERS)
            .unwrap()
    }

    fn names(f: &str, used: &[&str]) -> Vec<String> {
        let all = [
            net("aaa111", "app", &[("tier", "back"), ("env", "prod")], false),
            net("bbb222", "myapp", &[("tier", "front")], false),
            net("ccc333", "ingress", &[], true),
        ];
        let f = filters(f);
        check_values(&f).unwrap();
        let m = Matcher::new(&f, used.iter().map(|s| s.to_string()).collect());
        all.iter()
            .filter(|n| matches(n, &m))
            .map(|n| conv::name(n).to_string())
            .collect()
    }

    #[test]
    fn filters_match_as_dockers_do() {
        assert_eq!(names("{}", &[]), ["app", "myapp", "ingress"]);
        // name and id: the value anywhere, or a pattern.
        assert_eq!(names(r#"{"name":{"app":true}}"#, &[]), ["app", "myapp"]);
        assert_eq!(names(r#"{"name":{"^app$":true}}"#, &[]), ["app"]);
        assert_eq!(
            names(r#"{"name":["(unclosed"]}"#, &[]),
            Vec::<String>::new()
        );
        assert_eq!(names(r#"{"id":["bbb"]}"#, &[]), ["myapp"]);
        assert_eq!(names(r#"{"id":["bbb","ccc"]}"#, &[]), ["myapp", "ingress"]);
        // driver and scope: exact.
        assert_eq!(names(r#"{"driver":["overlay"]}"#, &[]).len(), 3);
        assert!(names(r#"{"driver":["over"]}"#, &[]).is_empty());
        assert!(names(r#"{"scope":["local"]}"#, &[]).is_empty());
        assert_eq!(names(r#"{"scope":["swarm"]}"#, &[]).len(), 3);
        // label: every one given must hold.
        assert_eq!(names(r#"{"label":["tier"]}"#, &[]), ["app", "myapp"]);
        assert_eq!(names(r#"{"label":["tier=back","env=prod"]}"#, &[]), ["app"]);
        assert!(names(r#"{"label":["tier=back","env=dev"]}"#, &[]).is_empty());
        // type: nothing here is predefined.
        assert_eq!(names(r#"{"type":["custom"]}"#, &[]).len(), 3);
        assert!(names(r#"{"type":["builtin"]}"#, &[]).is_empty());
        // dangling: no service names it (the ingress network never is).
        assert_eq!(names(r#"{"dangling":["true"]}"#, &["aaa111"]), ["myapp"]);
        assert_eq!(
            names(r#"{"dangling":["false"]}"#, &["aaa111"]),
            ["app", "ingress"]
        );
    }

    #[test]
    fn bad_filter_values_are_named() {
        for (f, field) in [
            (r#"{"type":["system"]}"#, "filters: type:"),
            (r#"{"dangling":["maybe"]}"#, "filters: dangling:"),
            (r#"{"dangling":["true","false"]}"#, "filters: dangling:"),
        ] {
            let e = check_values(&filters(f)).unwrap_err();
            assert!(e.to_string().starts_with(field), "{f}: {e}");
        }
        let q = r#"filters={"colour":["red"]}"#;
        let e = Request::new(Some(q), bytes::Bytes::new())
            .filters(FILTERS)
            .unwrap_err();
        assert!(e.to_string().contains("'colour'"), "{e}");
        let q = |v: &str| Request::new(Some(&format!("verbose={v}")), bytes::Bytes::new());
        assert!(q("yes").go_bool("verbose").is_err());
        assert!(q("True").go_bool("verbose").unwrap());
    }
}
