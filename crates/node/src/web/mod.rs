//! The web view (`--listen-web`, managers only): one self-contained page (`page.html`,
//! embedded in the binary) showing nodes as columns and their tasks as cards, a snapshot at
//! `GET /api/state` and live updates at `GET /api/events` (Server-Sent Events: a fresh
//! snapshot after each burst of store changes). Read-only: it must never write to the store.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use swarm_api::state;
use swarm_store::{Store, Tables};
use swarm_tasks::TaskOwner;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::http;

const PAGE: &str = include_str!("page.html");

/// Changes closer together than this are sent as one snapshot: a service of 1,000 tasks
/// should not push 1,000 snapshots at the browser.
const COALESCE: Duration = Duration::from_millis(200);

/// Binds the page's address (the loopback check is in `config.rs`).
pub async fn bind(addr: &str) -> Result<TcpListener> {
    http::bind("--listen-web", addr).await
}

/// Serves the page on `listener` as a task of `tasks`, until they stop.
pub fn serve(listener: TcpListener, store: Store, tasks: &TaskOwner) {
    if let Ok(a) = listener.local_addr() {
        tracing::info!(addr = %a, "serving the web view");
    }
    let stop = tasks.token().clone();
    let handler: http::Handler = Arc::new(move |req| {
        let store = store.clone();
        let stop = stop.clone();
        Box::pin(async move {
            match req.uri().path() {
                "/" | "/index.html" => http::full(StatusCode::OK, "text/html; charset=utf-8", PAGE),
                "/api/state" => http::full(
                    StatusCode::OK,
                    "application/json",
                    store.view(snapshot).to_string(),
                ),
                "/api/events" => events(store, stop),
                _ => http::not_found(),
            }
        })
    });
    http::serve(listener, handler, tasks);
}

/// What the page draws: nodes, and tasks still meant to run or that just ended.
pub fn snapshot(t: &Tables) -> Value {
    let mut nodes: Vec<Value> = t
        .nodes
        .iter()
        .map(|n| {
            let name = n
                .spec
                .as_ref()
                .and_then(|s| s.annotations.as_ref())
                .map(|a| a.name.clone())
                .filter(|s| !s.is_empty())
                .or_else(|| n.description.as_ref().map(|d| d.hostname.clone()))
                .unwrap_or_default();
            json!({
                "id": n.id,
                "name": name,
                "role": if n.role == swarm_api::NodeRole::Manager as i32 { "manager" } else { "worker" },
                "state": state::node_state_name(n.status.as_ref().map(|s| s.state()).unwrap_or_default()).to_lowercase(),
                "availability": state::availability_name(n.spec.as_ref().map(|s| s.availability()).unwrap_or_default()).to_lowercase(),
            })
        })
        .collect();
    nodes.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut tasks: Vec<Value> = t
        .tasks
        .iter()
        // Old history (shut down long ago) would bury the live tasks.
        .filter(|task| task.desired_state <= swarm_api::TaskState::Running as i32)
        .map(|task| {
            let st = task.status.clone().unwrap_or_default();
            let instance = if task.slot > 0 {
                format!("{}.{}", task.service_name, task.slot)
            } else {
                task.service_name.clone()
            };
            json!({
                "id": task.id,
                "name": instance,
                "service": task.service_name,
                "node_id": task.node_id,
                "state": state::task_state_name(st.state()).to_lowercase(),
                "message": if st.err.is_empty() { st.message } else { st.err },
            })
        })
        .collect();
    tasks.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    json!({ "nodes": nodes, "tasks": tasks })
}

/// The event stream: a snapshot at once, then one after each burst of changes.
fn events(store: Store, stop: CancellationToken) -> Response<http::Body> {
    let (first, rx) = store.view_and_watch(snapshot);
    let first = futures::stream::once(async move { sse(&first) });
    let rest = futures::stream::unfold((store, rx, stop), |(store, mut rx, stop)| async move {
        tokio::select! {
            _ = stop.cancelled() => return None,
            r = rx.recv() => match r {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            },
        }
        tokio::time::sleep(COALESCE).await;
        // Whatever queued meanwhile is covered by the snapshot taken now.
        while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) =
            rx.try_recv()
        {}
        let frame = sse(&store.view(snapshot));
        Some((frame, (store, rx, stop)))
    });
    let body = StreamBody::new(first.chain(rest).map(Ok::<_, Infallible>));
    let mut resp = Response::new(BodyExt::boxed(body));
    let h = resp.headers_mut();
    h.insert(
        ::http::header::CONTENT_TYPE,
        ::http::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        ::http::header::CACHE_CONTROL,
        ::http::HeaderValue::from_static("no-cache"),
    );
    resp
}

fn sse(v: &Value) -> Frame<Bytes> {
    Frame::data(Bytes::from(format!("data: {v}\n\n")))
}
