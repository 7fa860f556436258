//! The HTTP/1.1 server on the unix socket: accepts connections until shutdown, reads each
//! request within the `limits`, routes it and turns the outcome into a response. Owns no
//! translation: handlers do that.

use crate::backend::Backend;
use crate::error::ApiError;
use crate::limits;
use crate::reply::{Body, Reply};
use crate::request::Request;
use crate::router::{route, Route};
use crate::{events, logs, networks, nodes, payloads, services, swarm, system, tasks};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How long a connection may take to finish its answer once the server stops.
const STREAM_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
/// Serves the API on `listener` until `shutdown`; connections in flight finish their request.
pub async fn serve(listener: UnixListener, backend: Backend, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(limits::MAX_CONNECTIONS));
    loop {
        // A connection is accepted only with a free slot: past the cap, clients wait in the
        // listen backlog instead of each holding a task and buffers here.
        let slot = tokio::select! {
            _ = shutdown.cancelled() => return,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "docker API: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let backend = backend.clone();
        let shutdown = shutdown.clone();
        // Each connection ends with the connection or on `shutdown`.
        #[allow(clippy::disallowed_methods)]
        tokio::spawn(async move {
            let _slot = slot;
            let svc = service_fn(move |req| {
                let backend = backend.clone();
                async move { Ok::<_, Infallible>(handle(&backend, req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits::READ_TIMEOUT)
                .max_header_size(limits::MAX_HEADER_BYTES)
                .max_headers(limits::MAX_HEADERS)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, "docker API: connection ended");
                    }
                }
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    // A streamed answer (`logs -f`, `events`) never finishes on its own:
                    // it gets a moment, then the connection is dropped with it.
                    let _ = tokio::time::timeout(STREAM_GRACE, conn).await;
                }
            }
        });
    }
}

async fn handle(backend: &Backend, req: hyper::Request<Incoming>) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    match answer(backend, req).await {
        Ok(r) => r.into_response(head),
        Err(e) if e.closes_connection() => {
            tracing::info!(%method, %path, error = %e, "docker API: a request over its limits refused");
            let mut r = Reply::error(&e).into_response(head);
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            r
        }
        Err(e) => {
            tracing::debug!(%method, %path, error = %e, "docker API: refused");
            Reply::error(&e).into_response(head)
        }
    }
}

async fn answer(b: &Backend, req: hyper::Request<Incoming>) -> Result<Reply, ApiError> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    // Waiting for 99 GB that will be refused anyway would hold the connection for hours.
    if let Some(e) = limits::refuse_declared_length(req.headers()) {
        return Err(e);
    }
    // The body is read before anything can refuse the request, on every route: answering
    // first would close the connection on a client still writing, which then sees a broken
    // pipe instead of our answer.
    let body = limits::read_body(req.into_body()).await;
    let r = route(&method, &path)?;
    answer_route(b, r, query.as_deref(), body?).await
}

/// The status the socket would answer a request with, once its body is read (within the
/// limits). Public for the fuzz targets, which drive every handler without a socket; the
/// server itself goes through the same routing and handlers.
pub async fn status_of(
    b: &Backend,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: bytes::Bytes,
) -> u16 {
    let outcome = match route(method, path) {
        Ok(r) => answer_route(b, r, query, body).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(r) => r.into_response(*method == Method::HEAD).status().as_u16(),
        Err(e) => Reply::error(&e).into_response(false).status().as_u16(),
    }
}

async fn answer_route(
    b: &Backend,
    r: Route,
    query: Option<&str>,
    body: bytes::Bytes,
) -> Result<Reply, ApiError> {
    let q = Request::new(query, body);
    match r {
        Route::Ping => Ok(system::ping()),
        Route::Version => Ok(system::version()),
        Route::Info => system::info(b).await,
        Route::Events => events::stream(b, &q).await,
        Route::Swarm => system::swarm(b).await,
        Route::SwarmMembership => Err(system::already_in_swarm()),
        Route::SwarmLeave => Err(swarm::leave()),
        Route::UpdateSwarm => swarm::update(b, &q).await,
        Route::UnlockKey => swarm::unlock_key(b).await,
        Route::Unlock => swarm::unlock(b, &q).await,
        Route::ListNodes => nodes::list(b, &q).await,
        Route::GetNode(id) => nodes::get(b, &id).await,
        Route::UpdateNode(id) => nodes::update(b, &id, &q).await,
        Route::RemoveNode(id) => nodes::remove(b, &id, &q).await,
        Route::ListServices => services::list(b, &q).await,
        Route::CreateService => services::create(b, &q).await,
        Route::GetService(id) => services::get(b, &id, &q).await,
        Route::UpdateService(id) => services::update(b, &id, &q).await,
        Route::RemoveService(id) => services::remove(b, &id).await,
        Route::ServiceLogs(id) => logs::service(b, &id, &q).await,
        Route::TaskLogs(id) => logs::task(b, &id, &q).await,
        Route::ListTasks => tasks::list(b, &q).await,
        Route::GetTask(id) => tasks::get(b, &id).await,
        Route::ListNetworks => networks::list(b, &q).await,
        Route::CreateNetwork => networks::create(b, &q).await,
        Route::GetNetwork(id) => networks::get(b, &id, &q).await,
        Route::RemoveNetwork(id) => networks::remove(b, &id).await,
        Route::ListPayloads(k) => payloads::list(b, k, &q).await,
        Route::CreatePayload(k) => payloads::create(b, k, &q).await,
        Route::GetPayload(k, id) => payloads::get(b, k, &id).await,
        Route::UpdatePayload(k, id) => payloads::update(b, k, &id, &q).await,
        Route::RemovePayload(k, id) => payloads::remove(b, k, &id).await,
    }
}
