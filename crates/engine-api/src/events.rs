//! `GET /events`: the swarm's events (nodes, services, networks, secrets, configs: create,
//! update, remove) as Docker streams them, one JSON object per line, so `docker events
//! --filter scope=swarm` follows the cluster. Live events come from the control API's
//! `Watch`; `since` first replays what the objects' times say happened since then (creations
//! and latest updates: removals leave no trace), `until` ends the stream. Updates of nodes
//! and services name what changed (`replicas.old`, ...) against what the stream saw last.
//! The body polls the watch stream itself (no task of its own) and drops it when the client
//! goes away. Reads only through the control API, never the store.

use crate::backend::{Backend, WatchStream};
use crate::convert::events::{self as conv, Event};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::{Filters, Request};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use swarm_api::store_object::Object;
use swarm_api::*;
use tonic::Request as Rpc;

struct EventBody {
    /// Events ready to send: the replay, then each watch message's.
    ready: VecDeque<Event>,
    live: Option<WatchStream>,
    filters: Filters,
    until_ms: Option<i64>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Nodes and services as last seen, so an update can name what changed.
    seen: HashMap<String, Object>,
}

impl EventBody {
    fn take(&mut self, m: &WatchMessage) {
        if m.missed > 0 {
            tracing::warn!(
                missed = m.missed,
                "docker API: events reader too slow; events lost"
            );
        }
        for w in &m.events {
            let Some(obj) = w.object.as_ref().and_then(|o| o.object.as_ref()) else {
                continue;
            };
            let id = conv::describe(obj).map(|(_, id, _, _)| id.to_string());
            let old = id.as_ref().and_then(|id| self.seen.get(id));
            let Some(e) = conv::from_watch(w, old, m.timestamp_ms) else {
                continue;
            };
            if let Some(id) = id.filter(|_| matches!(obj, Object::Node(_) | Object::Service(_))) {
                if w.action == "remove" {
                    self.seen.remove(&id);
                } else {
                    self.seen.insert(id, obj.clone());
                }
            }
            let in_time = self.until_ms.is_none_or(|u| e.time_nano / 1_000_000 <= u);
            if in_time && conv::matches(&e, &self.filters) {
                self.ready.push_back(e);
            }
        }
    }
}

fn line(e: &Event) -> Bytes {
    let mut v = serde_json::to_vec(e).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

impl Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            if let Some(e) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(line(&e)))));
            }
            if let Some(d) = this.deadline.as_mut() {
                if d.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
            }
            let Some(live) = this.live.as_mut() else {
                return Poll::Ready(None);
            };
            match live.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(s))) => {
                    // As Docker's stream ends when its source does.
                    tracing::debug!(error = %s, "docker API: events stream ended");
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Ok(m))) => this.take(&m),
            }
        }
    }
}

/// Every object Docker reports events for, for a replay.
async fn objects(b: &Backend) -> Result<Vec<Object>, ApiError> {
    let mut out: Vec<Object> = Vec::new();
    out.extend(
        b.nodes()
            .await?
            .into_iter()
            .map(|x| Object::Node(Box::new(x))),
    );
    out.extend(
        b.services()
            .await?
            .into_iter()
            .map(|x| Object::Service(Box::new(x))),
    );
    out.extend(
        b.networks()
            .await?
            .into_iter()
            .map(|x| Object::Network(Box::new(x))),
    );
    let c = b.control();
    let secrets = c.list_secrets(Rpc::new(ListSecretsRequest {})).await?;
    out.extend(
        secrets
            .into_inner()
            .secrets
            .into_iter()
            .map(|x| Object::Secret(Box::new(x))),
    );
    let configs = c.list_configs(Rpc::new(ListConfigsRequest {})).await?;
    out.extend(
        configs
            .into_inner()
            .configs
            .into_iter()
            .map(|x| Object::Config(Box::new(x))),
    );
    Ok(out)
}

fn time_param(r: &Request, name: &str) -> Result<Option<i64>, ApiError> {
    r.param(name)
        .filter(|v| !v.is_empty())
        .map(|v| conv::parse_time(name, v))
        .transpose()
}

pub async fn stream(b: &Backend, r: &Request) -> Result<Reply, ApiError> {
    let filters = r.filters(conv::FILTERS)?;
    let since = time_param(r, "since")?;
    let until = time_param(r, "until")?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(ApiError::BadRequest(
                "since: must not be after until".into(),
            ));
        }
    }
    let now = now_ms();
    // Watching starts before the replay is read, so nothing falls between the two.
    let live = if until.is_some_and(|u| u <= now) {
        None
    } else {
        let kinds = conv::KINDS.iter().map(|k| k.to_string()).collect();
        let w = b.control().watch(Rpc::new(WatchRequest { kinds })).await?;
        Some(w.into_inner())
    };
    let objects = objects(b).await?;
    let ready: VecDeque<Event> = match since {
        Some(s) => conv::replay(&objects, s, until)
            .into_iter()
            .filter(|e| conv::matches(e, &filters))
            .collect(),
        None => VecDeque::new(),
    };
    let seen = objects
        .into_iter()
        .filter_map(|o| match &o {
            Object::Node(n) => Some((n.id.clone(), o)),
            Object::Service(s) => Some((s.id.clone(), o)),
            _ => None,
        })
        .collect();
    let deadline = until.map(|u| {
        let wait = u64::try_from(u.saturating_sub(now)).unwrap_or(0);
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    });
    let body = EventBody {
        ready,
        live,
        filters,
        until_ms: until,
        deadline,
        seen,
    };
    Ok(Reply::stream("application/json", body.boxed_unsync()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn watch_event(action: &str, id: &str, name: &str) -> WatchEvent {
        WatchEvent {
            action: action.into(),
            object: Some(StoreObject {
                object: Some(Object::Secret(Box::new(Secret {
                    id: id.into(),
                    spec: Some(SecretSpec {
                        annotations: Some(Annotations {
                            name: name.into(),
                            ..Default::default()
                        }),
                        data: vec![],
                    }),
                    ..Default::default()
                }))),
            }),
        }
    }

    fn service(replicas: u64) -> Object {
        Object::Service(Box::new(Service {
            id: "s1".into(),
            spec: Some(ServiceSpec {
                annotations: Some(Annotations {
                    name: "web".into(),
                    ..Default::default()
                }),
                mode: Some(service_spec::Mode::Replicated(ReplicatedService {
                    replicas,
                })),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    #[test]
    fn updates_name_what_changed_since_last_seen() {
        let mut body = EventBody {
            ready: VecDeque::new(),
            live: None,
            filters: Filters::new(),
            until_ms: None,
            deadline: None,
            seen: HashMap::from([("s1".to_string(), service(1))]),
        };
        let update = |replicas| WatchMessage {
            index: 7,
            timestamp_ms: 1000,
            events: vec![WatchEvent {
                action: "update".into(),
                object: Some(StoreObject {
                    object: Some(service(replicas)),
                }),
            }],
            missed: 0,
        };
        body.take(&update(3));
        body.take(&update(5));
        let got: Vec<_> = body
            .ready
            .iter()
            .map(|e| e.actor.attributes.get("replicas.old").cloned())
            .collect();
        assert_eq!(got, [Some("1".to_string()), Some("3".to_string())]);
    }

    #[tokio::test]
    async fn watch_messages_become_filtered_json_lines() {
        let msgs = vec![
            Ok(WatchMessage {
                index: 5,
                timestamp_ms: 2000,
                events: vec![
                    watch_event("create", "x1", "db"),
                    watch_event("remove", "x2", "old"),
                ],
                missed: 0,
            }),
            Ok(WatchMessage {
                index: 6,
                timestamp_ms: 9000,
                events: vec![watch_event("create", "x3", "late")],
                missed: 0,
            }),
        ];
        let q = r#"filters={"event":["create"]}"#;
        let filters = Request::new(Some(q), Bytes::new())
            .filters(conv::FILTERS)
            .unwrap();
        let body = EventBody {
            ready: VecDeque::new(),
            live: Some(Box::pin(tokio_stream::iter(msgs))),
            filters,
            until_ms: Some(5000),
            deadline: None,
            seen: HashMap::new(),
        };
        let out = body.collect().await.unwrap().to_bytes();
        let lines: Vec<serde_json::Value> = String::from_utf8(out.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // The removal is filtered out, the event after `until` too.
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["Type"], "secret");
        assert_eq!(lines[0]["Actor"]["Attributes"]["name"], "db");
        assert_eq!(lines[0]["time"], 2);
    }
}
