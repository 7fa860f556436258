//! Control API: `Watch`, the store's change events streamed to an operator (the Docker API's
//! `/events` follows the cluster with it). A stream adaptor over the store's broadcast, with
//! no task of its own: it lives while the caller reads, and holds no store handle. Objects are
//! redacted as Get redacts them (a secret's data, the cluster's keys never leave). Must not
//! write the store.

use super::{cluster, secrets};
use std::collections::HashSet;
use swarm_api::store_object::Object;
use swarm_api::*;
use swarm_store::{Change, EventKind, Store};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;
use tonic::Status;

pub type WatchStream = tonic::codegen::BoxStream<WatchMessage>;

const KINDS: &[&str] = &[
    "node", "service", "task", "network", "secret", "config", "cluster",
];

fn kind_of(o: &Object) -> &'static str {
    match o {
        Object::Node(_) => "node",
        Object::Service(_) => "service",
        Object::Task(_) => "task",
        Object::Cluster(_) => "cluster",
        Object::Secret(_) => "secret",
        Object::Config(_) => "config",
        Object::Network(_) => "network",
    }
}

fn action(k: EventKind) -> &'static str {
    match k {
        EventKind::Create => "create",
        EventKind::Update => "update",
        EventKind::Remove => "remove",
    }
}

fn redact(o: Object) -> Object {
    match o {
        Object::Secret(s) => Object::Secret(Box::new(secrets::redact(*s))),
        Object::Cluster(c) => Object::Cluster(Box::new(cluster::redact_keys(*c))),
        other => other,
    }
}

/// One transaction's events of the wanted kinds; None when it has none.
fn message(change: &Change, wanted: &HashSet<String>) -> Option<WatchMessage> {
    let Change::Batch { index, events } = change else {
        // A snapshot replaced every table: no per-object events to give.
        return None;
    };
    let events: Vec<WatchEvent> = events
        .iter()
        .filter_map(|e| {
            let o = e.object.object.clone()?;
            let k = kind_of(&o);
            (wanted.is_empty() || wanted.contains(k)).then(|| WatchEvent {
                action: action(e.kind).to_string(),
                object: Some(StoreObject {
                    object: Some(redact(o)),
                }),
            })
        })
        .collect();
    (!events.is_empty()).then(|| WatchMessage {
        index: *index,
        timestamp_ms: now_ms(),
        events,
        missed: 0,
    })
}

pub(super) fn watch(store: &Store, r: WatchRequest) -> Result<WatchStream, Status> {
    if let Some(k) = r.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
        return Err(Status::invalid_argument(format!(
            "kinds: unknown kind {k:?} (one of {})",
            KINDS.join(", ")
        )));
    }
    let wanted: HashSet<String> = r.kinds.into_iter().collect();
    let stream = BroadcastStream::new(store.watch()).filter_map(move |item| match item {
        Ok(change) => message(&change, &wanted).map(Ok),
        // Too slow a reader: say how much was lost rather than pretend nothing was.
        Err(BroadcastStreamRecvError::Lagged(n)) => Some(Ok(WatchMessage {
            missed: n,
            ..Default::default()
        })),
    });
    Ok(Box::pin(stream))
}
