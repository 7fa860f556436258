//! One small HTTP/1 server (hyper 1) shared by the metrics endpoint and the web view: binds,
//! accepts until shutdown and hands every request to a handler. Owns only the accept loop,
//! connection driving and response helpers; what is served belongs to the handlers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::{Context, Result};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use swarm_tasks::TaskOwner;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a client may take to send a request's headers: a browser or a scraper needs
/// milliseconds, a slow-loris client holds its connection for as long as we wait.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Largest request line and headers (nothing served here reads a body).
const MAX_HEADER_BYTES: usize = 16 << 10;
/// Connections served at once; past it, clients wait in the listen backlog.
const MAX_CONNECTIONS: usize = 256;

pub type Body = BoxBody<Bytes, Infallible>;
pub type Reply = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
pub type Handler = Arc<dyn Fn(Request<Incoming>) -> Reply + Send + Sync>;

/// Binds `addr` for the endpoint named by `flag` (errors name the flag).
pub async fn bind(flag: &str, addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{flag} {addr}"))
}

/// Serves `handler` on `listener` as a task of `tasks`, until they stop; open connections
/// (event streams too) are dropped then.
pub fn serve(listener: TcpListener, handler: Handler, tasks: &TaskOwner) {
    let owner = tasks.clone();
    tasks.spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let slot = tokio::select! {
                _ = owner.stopping() => return,
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => return,
                },
            };
            let stream = tokio::select! {
                _ = owner.stopping() => return,
                r = listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, keep serving.
                        tracing::warn!(error = %e, "http accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let handler = handler.clone();
            owner.spawn_until_stopped(async move {
                let _slot = slot;
                let svc = hyper::service::service_fn(move |req| {
                    let reply = handler(req);
                    async move { Ok::<_, Infallible>(reply.await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .max_header_size(MAX_HEADER_BYTES)
                    .serve_connection(TokioIo::new(stream), svc);
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "http connection ended");
                }
            });
        }
    });
}

/// A complete response with `content_type`.
pub fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

pub fn not_found() -> Response<Body> {
    full(StatusCode::NOT_FOUND, "text/plain", "not found\n")
}
