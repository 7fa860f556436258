//! Building responses: JSON bodies, Docker's error body, streamed bodies (logs, events), and
//! the headers every answer carries (the API version the client negotiates with).

use crate::error::ApiError;
use crate::API_VERSION;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, SERVER};
use hyper::{Response, StatusCode};
use serde::Serialize;
use std::convert::Infallible;

/// A response body: whole, or streamed as it comes (never failing: a stream that breaks
/// says so in its own data and ends).
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    pub json: bool,
    /// A streamed body and its content type, sent instead of `body`.
    pub stream: Option<(Body, &'static str)>,
}

impl Reply {
    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(v) => Reply {
                status,
                body: Bytes::from(v),
                json: true,
                stream: None,
            },
            Err(e) => Reply::error(&ApiError::Internal(format!("encoding the answer: {e}"))),
        }
    }

    pub fn ok<T: Serialize>(value: &T) -> Reply {
        Reply::json(StatusCode::OK, value)
    }

    pub fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            body: Bytes::new(),
            json: false,
            stream: None,
        }
    }

    /// A 200 whose body is `body`, sent as it comes.
    pub fn stream(content_type: &'static str, body: Body) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: Bytes::new(),
            json: false,
            stream: Some((body, content_type)),
        }
    }

    pub fn text(text: &'static str) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: Bytes::from_static(text.as_bytes()),
            json: false,
            stream: None,
        }
    }

    pub fn error(e: &ApiError) -> Reply {
        let body = serde_json::json!({ "message": e.to_string() });
        Reply {
            status: e.status(),
            body: Bytes::from(body.to_string()),
            json: true,
            stream: None,
        }
    }

    /// The HTTP response; HEAD gets the headers only.
    pub fn into_response(self, head: bool) -> Response<Body> {
        let (body, streamed) = match self.stream {
            Some((b, t)) if !head => (b, Some(t)),
            Some((_, t)) => (Full::new(Bytes::new()).boxed_unsync(), Some(t)),
            None if head => (Full::new(Bytes::new()).boxed_unsync(), None),
            None => (Full::new(self.body).boxed_unsync(), None),
        };
        let mut r = Response::new(body);
        *r.status_mut() = self.status;
        let h = r.headers_mut();
        h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
        h.insert("Docker-Experimental", HeaderValue::from_static("false"));
        h.insert("Ostype", HeaderValue::from_static("linux"));
        // Tells a pinging client this endpoint is a manager of an active swarm.
        h.insert("Swarm", HeaderValue::from_static("active/manager"));
        h.insert(
            SERVER,
            // Docker's form, "Name/version (os)".
            HeaderValue::from_static(concat!("swarmd/", env!("CARGO_PKG_VERSION"), " (linux)")),
        );
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store"),
        );
        if let Some(t) = streamed {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(t));
        } else if self.json {
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        } else {
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
        r
    }
}
