//! Swarm events as Docker's `/events` shows them: the control API's watch events (and, for
//! `since`, what the objects' times say happened) as Docker's `events.Message` (`Type`,
//! `Action`, `Actor.ID`, `Actor.Attributes.name`, `scope: swarm`, `time`, `timeNano`), the
//! `since`/`until` times and Docker's event filters. Pure functions.

use crate::error::ApiError;
use crate::request::Filters;
use serde::Serialize;
use std::collections::BTreeMap;
use swarm_api::names::{node_name, Named};
use swarm_api::store_object::Object;
use swarm_api::{Meta, WatchEvent};

/// The kinds of object Docker reports swarm events for (tasks and the cluster it does not).
pub const KINDS: &[&str] = &["node", "service", "network", "secret", "config"];

/// The filters `/events` takes, as Docker's server does. Those naming what is never here
/// (containers, images, volumes, plugins, the daemon) are read and match nothing.
pub const FILTERS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// Docker's `events.Message`, swarm-scoped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: &'static str,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

/// An object's kind, ID, name and times, when Docker reports events for its kind.
pub fn describe(o: &Object) -> Option<(&'static str, &str, &str, Option<&Meta>)> {
    Some(match o {
        Object::Node(n) => ("node", n.id.as_str(), node_name(n), n.meta.as_ref()),
        Object::Service(s) => ("service", s.id.as_str(), s.name(), s.meta.as_ref()),
        Object::Network(n) => ("network", n.id.as_str(), n.name(), n.meta.as_ref()),
        Object::Secret(s) => ("secret", s.id.as_str(), s.name(), s.meta.as_ref()),
        Object::Config(c) => ("config", c.id.as_str(), c.name(), c.meta.as_ref()),
        Object::Task(_) | Object::Cluster(_) => return None,
    })
}

pub fn event(kind: &'static str, action: &str, id: &str, name: &str, time_ms: i64) -> Event {
    let nanos = time_ms.saturating_mul(1_000_000);
    Event {
        kind,
        action: action.to_string(),
        actor: Actor {
            id: id.to_string(),
            attributes: BTreeMap::from([("name".to_string(), name.to_string())]),
        },
        scope: "swarm",
        time: time_ms.div_euclid(1000),
        time_nano: nanos,
    }
}

/// A watch event as Docker's, stamped with the time the manager saw it applied; an update
/// of an object seen before (`old`) names what changed, as Docker's attributes do.
pub fn from_watch(e: &WatchEvent, old: Option<&Object>, time_ms: i64) -> Option<Event> {
    let o = e.object.as_ref()?.object.as_ref()?;
    let (kind, id, name, _) = describe(o)?;
    let mut ev = event(kind, &e.action, id, name, time_ms);
    if let (Some(old), "update") = (old, e.action.as_str()) {
        ev.actor
            .attributes
            .extend(super::event_changes::update_attributes(old, o));
    }
    Some(ev)
}

/// What the objects' times say happened in `[since, until]` (ms): their creation, and their
/// latest update after it. Removals leave no trace to replay.
pub fn replay(objects: &[Object], since: i64, until: Option<i64>) -> Vec<Event> {
    let within = |t: i64| t >= since && until.is_none_or(|u| t <= u);
    let mut out = Vec::new();
    for o in objects {
        let Some((kind, id, name, Some(meta))) = describe(o) else {
            continue;
        };
        if within(meta.created_at) {
            out.push(event(kind, "create", id, name, meta.created_at));
        }
        if meta.updated_at > meta.created_at && within(meta.updated_at) {
            out.push(event(kind, "update", id, name, meta.updated_at));
        }
    }
    out.sort_by_key(|e| e.time_nano);
    out
}

/// Docker's `since`/`until`: Unix seconds with an optional fraction (the CLI turns `10m`
/// and dates into that form), as ms.
pub fn parse_time(name: &str, v: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::BadRequest(format!("{name}: {v:?} is not a Unix timestamp"));
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let ms: i64 = frac
        .chars()
        .chain("000".chars())
        .take(3)
        .collect::<String>()
        .parse()
        .map_err(|_| bad())?;
    Ok(secs.saturating_mul(1000).saturating_add(ms))
}

/// Whether `e` passes Docker's filters: each key given must match (its values are
/// alternatives); an object filter (`service=web`) matches that kind by ID or name.
pub fn matches(e: &Event, f: &Filters) -> bool {
    let any = |key: &str, test: &dyn Fn(&str) -> bool| {
        f.get(key).is_none_or(|vals| vals.iter().any(|v| test(v)))
    };
    let named = |v: &str| e.actor.id == v || e.actor.attributes.get("name").is_some_and(|n| n == v);
    let label = |v: &str| match v.split_once('=') {
        Some((k, val)) => e.actor.attributes.get(k).is_some_and(|x| x == val),
        None => e.actor.attributes.contains_key(v),
    };
    let never_here = ["container", "daemon", "image", "plugin", "volume"];
    never_here.iter().all(|k| !f.contains_key(*k))
        && any("type", &|v| v == e.kind)
        && any("event", &|v| v == e.action)
        && any("scope", &|v| v == e.scope)
        && KINDS.iter().all(|k| any(k, &|v| *k == e.kind && named(v)))
        && f.get("label").is_none_or(|l| l.iter().all(|v| label(v)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use swarm_api::{Annotations, Secret, SecretSpec, Service, ServiceSpec, StoreObject};

    fn service(id: &str, name: &str, created: i64, updated: i64) -> Object {
        Object::Service(Box::new(Service {
            id: id.into(),
            meta: Some(Meta {
                version: 1,
                created_at: created,
                updated_at: updated,
            }),
            spec: Some(ServiceSpec {
                annotations: Some(Annotations {
                    name: name.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    fn filters(json: &str) -> Filters {
        let q = format!("filters={json}");
        crate::request::Request::new(Some(&q), bytes::Bytes::new())
            .filters(FILTERS)
            .unwrap()
    }

    #[test]
    fn a_watch_event_reads_as_dockers() {
        let w = WatchEvent {
            action: "create".into(),
            object: Some(StoreObject {
                object: Some(service("s1", "web", 5, 5)),
            }),
        };
        let e = from_watch(&w, None, 1_700_000_000_123).unwrap();
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(
            j,
            serde_json::json!({
                "Type": "service", "Action": "create",
                "Actor": {"ID": "s1", "Attributes": {"name": "web"}},
                "scope": "swarm", "time": 1_700_000_000i64, "timeNano": 1_700_000_000_123_000_000i64
            })
        );
        let task = WatchEvent {
            action: "update".into(),
            object: Some(StoreObject {
                object: Some(Object::Task(Default::default())),
            }),
        };
        assert!(
            from_watch(&task, None, 1).is_none(),
            "Docker has no task events"
        );
    }

    #[test]
    fn replay_gives_creations_and_updates_in_the_window() {
        let secret = Object::Secret(Box::new(Secret {
            id: "x1".into(),
            meta: Some(Meta {
                version: 1,
                created_at: 3000,
                updated_at: 3000,
            }),
            spec: Some(SecretSpec {
                annotations: Some(Annotations {
                    name: "db".into(),
                    ..Default::default()
                }),
                data: vec![],
            }),
        }));
        let objs = [service("s1", "web", 1000, 4000), secret];
        let got: Vec<(String, String)> = replay(&objs, 2000, None)
            .into_iter()
            .map(|e| (e.actor.id, e.action))
            .collect();
        assert_eq!(
            got,
            [
                ("x1".into(), "create".into()),
                ("s1".into(), "update".into())
            ]
        );
        assert_eq!(replay(&objs, 0, Some(2000)).len(), 1);
    }

    #[test]
    fn filters_match_as_dockers_do() {
        let e = event("service", "create", "s1", "web", 1);
        assert!(matches(&e, &filters("{}")));
        assert!(matches(
            &e,
            &filters(r#"{"scope":["swarm"],"type":["service","node"]}"#)
        ));
        assert!(!matches(&e, &filters(r#"{"scope":["local"]}"#)));
        assert!(!matches(&e, &filters(r#"{"type":["secret"]}"#)));
        assert!(matches(&e, &filters(r#"{"event":["create"]}"#)));
        assert!(!matches(&e, &filters(r#"{"event":["remove"]}"#)));
        assert!(matches(&e, &filters(r#"{"service":["web"]}"#)));
        assert!(matches(&e, &filters(r#"{"service":["s1"]}"#)));
        assert!(!matches(&e, &filters(r#"{"secret":["web"]}"#)));
        assert!(!matches(&e, &filters(r#"{"container":["web"]}"#)));
        assert!(matches(&e, &filters(r#"{"label":["name=web"]}"#)));
    }

    #[test]
    fn times_parse_as_the_cli_sends_them() {
        assert_eq!(
            parse_time("since", "1700000000").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_time("since", "1700000000.250000000").unwrap(),
            1_700_000_000_250
        );
        let e = parse_time("until", "10m").unwrap_err();
        assert!(e.to_string().starts_with("until:"), "{e}");
    }
}
