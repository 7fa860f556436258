//! The Docker Engine API's handlers (`swarm_engine_api::status_of`): a method, a path, a query
//! string and a body, routed and answered as the socket does once the body is read, over the
//! control API of the `control_request` target's fixture store. Streaming routes (events,
//! logs) answer with a stream that is never read here.

use crate::input::{choose, parts, text};
use crate::runtime::block_on;
use hyper::Method;
use std::sync::Arc;
use swarm_engine_api::{status_of, Backend, LocalNode};

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::DELETE,
    Method::HEAD,
    Method::PUT,
];

/// One request: method byte, then `path NUL query NUL body`.
pub fn request(data: &[u8]) {
    let (m, rest) = choose(data, METHODS.len() as u8);
    let method = &METHODS[usize::from(m)];
    let p = parts(rest, 3);
    let path = text(p.first().copied().unwrap_or_default());
    let query = p.get(1).map(|q| text(q));
    let body = bytes::Bytes::copy_from_slice(p.get(2).copied().unwrap_or_default());
    block_on(async {
        let Some(api) = crate::control::api().await else {
            return;
        };
        let backend = Backend::new(
            Arc::new(api),
            LocalNode {
                node_id: "node1".into(),
                hostname: "fuzz".into(),
                addr: "127.0.0.1:4242".into(),
            },
        );
        let status = status_of(&backend, method, &path, query.as_deref(), body).await;
        // Whatever the input, the answer is a status a client can read; a 500 would be a
        // handler failing on input it should have refused.
        assert!(
            (200..500).contains(&status) || status == 503,
            "{method} {path}: status {status}"
        );
    });
}
