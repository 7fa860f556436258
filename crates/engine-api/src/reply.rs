//! Building responses: JSON bodies, Docker's error body, and the headers every answer
//! carries (the API version the client negotiates with).

use crate::error::ApiError;
use crate::API_VERSION;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, SERVER};
use hyper::{Response, StatusCode};
use serde::Serialize;

pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    pub json: bool,
}

impl Reply {
    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(v) => Reply {
                status,
                body: Bytes::from(v),
                json: true,
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
        }
    }

    pub fn text(text: &'static str) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: Bytes::from_static(text.as_bytes()),
            json: false,
        }
    }

    pub fn error(e: &ApiError) -> Reply {
        let body = serde_json::json!({ "message": e.to_string() });
        Reply {
            status: e.status(),
            body: Bytes::from(body.to_string()),
            json: true,
        }
    }

    /// The HTTP response; HEAD gets the headers only.
    pub fn into_response(self, head: bool) -> Response<Full<Bytes>> {
        let body = if head { Bytes::new() } else { self.body };
        let mut r = Response::new(Full::new(body));
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
        if self.json {
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
