//! What a client of the Docker API socket may send, and how slowly: the header and body caps,
//! the read timeouts and the number of connections served at once. Owns reading a request's
//! body within them; what a body means belongs to the handlers.
//!
//! | limit | value | past it |
//! |---|---|---|
//! | request line + headers | 64 KiB, 100 headers | 431, connection closed (hyper) |
//! | headers complete | 10 s after the request began | connection closed |
//! | body | 4 MiB | 413 |
//! | declared body (`Content-Length`) | 64 MiB | 413 at once, connection closed |
//! | pause inside a body | 10 s | 408, connection closed |
//! | connections at once | 1,024 | the next waits to be accepted |

use crate::error::ApiError;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::HeaderMap;
use std::time::Duration;

/// Largest request body read (a service spec is a few KiB).
pub(crate) const MAX_BODY_BYTES: usize = 4 << 20;
/// How much of a larger body is read and dropped so that its sender still gets the refusal
/// (answering under a client still writing shows it a broken pipe, not our answer). A body
/// declared larger than this is refused before any of it is read; one sent in chunks is cut
/// off here.
pub(crate) const MAX_DRAINED_BYTES: usize = 64 << 20;
/// Largest request line and headers.
pub(crate) const MAX_HEADER_BYTES: usize = 64 << 10;
/// Most headers in one request (hyper's default, stated).
pub(crate) const MAX_HEADERS: usize = 100;
/// How long a client may take to send its request's headers, and how long it may pause while
/// sending a body: a client on the same host never needs more, a slow-loris always does.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; each holds a task and its buffers, so this bounds the memory
/// that idle or hostile clients can hold.
pub(crate) const MAX_CONNECTIONS: usize = 1024;

/// The refusal of a request whose declared `Content-Length` is over what we would even drain:
/// answered without reading the body (`None` for every other request).
pub(crate) fn refuse_declared_length(headers: &HeaderMap) -> Option<ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    (declared > MAX_DRAINED_BYTES as u64).then(|| too_large(declared))
}

fn too_large(bytes: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "body: {bytes} bytes is larger than the {} MiB a request may have",
        MAX_BODY_BYTES >> 20
    ))
}

/// The body, read whole; one over `MAX_BODY_BYTES` is drained (up to `MAX_DRAINED_BYTES`)
/// and refused with 413; a pause over `READ_TIMEOUT` is refused with 408.
pub(crate) async fn read_body(mut body: Incoming) -> Result<Bytes, ApiError> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    loop {
        let frame = match tokio::time::timeout(READ_TIMEOUT, body.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => {
                return Err(ApiError::RequestTimeout(format!(
                    "body: nothing received for {} s",
                    READ_TIMEOUT.as_secs()
                )))
            }
        };
        let frame = frame.map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > MAX_DRAINED_BYTES {
            break;
        }
        if seen <= MAX_BODY_BYTES {
            kept.extend_from_slice(&data);
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(too_large(seen as u64));
    }
    Ok(Bytes::from(kept))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn declaring(len: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_LENGTH, len.parse().unwrap());
        h
    }

    #[test]
    fn only_a_declared_length_past_the_drain_limit_is_refused_unread() {
        assert!(refuse_declared_length(&HeaderMap::new()).is_none());
        assert!(refuse_declared_length(&declaring("5242880")).is_none());
        assert!(refuse_declared_length(&declaring(&MAX_DRAINED_BYTES.to_string())).is_none());
        let e = refuse_declared_length(&declaring("99000000000")).unwrap();
        assert_eq!(e.status().as_u16(), 413);
        assert!(e.to_string().starts_with("body: 99000000000 bytes"), "{e}");
        // Not a number: hyper itself refuses such a request before it reaches us.
        assert!(refuse_declared_length(&declaring("lots")).is_none());
    }
}
