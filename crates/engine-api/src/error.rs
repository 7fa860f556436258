//! The errors of this crate: an HTTP status and a one-line message, sent to clients as
//! Docker's `{"message": "..."}`. Owns the mapping from control API statuses to HTTP codes.

use hyper::StatusCode;
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input: a malformed body, query or spec (400).
    #[error("{0}")]
    BadRequest(String),
    /// No such object or route (404).
    #[error("{0}")]
    NotFound(String),
    /// A stale version or a state that refuses the change (409).
    #[error("{0}")]
    Conflict(String),
    /// A body over the size a request may have (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A client that stopped sending in the middle of its request (408).
    #[error("{0}")]
    RequestTimeout(String),
    /// No leader or quorum right now (503).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (500).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the connection ends with this answer: the client broke a limit, and what it
    /// still sends is not read.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            ApiError::PayloadTooLarge(_) | ApiError::RequestTimeout(_)
        )
    }
}

impl From<tonic::Status> for ApiError {
    fn from(s: tonic::Status) -> ApiError {
        // Messages from the control API are already one line naming the field or object.
        let msg = s.message().replace('\n', " ");
        match s.code() {
            Code::InvalidArgument | Code::OutOfRange => ApiError::BadRequest(msg),
            Code::NotFound => ApiError::NotFound(msg),
            // Aborted is a stale object version. Docker's server says "update out of
            // sequence" then, and SDKs' retry helpers look for those words.
            Code::Aborted => ApiError::Conflict(format!("update out of sequence: {msg}")),
            Code::AlreadyExists | Code::FailedPrecondition => ApiError::Conflict(msg),
            Code::Unavailable | Code::DeadlineExceeded => ApiError::Unavailable(msg),
            _ => ApiError::Internal(msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_statuses_map_to_docker_codes() {
        let cases = [
            (tonic::Status::not_found("service x not found"), 404),
            (tonic::Status::invalid_argument("name: empty"), 400),
            (tonic::Status::aborted("version 3 is stale"), 409),
            (tonic::Status::unavailable("no leader"), 503),
            (tonic::Status::internal("boom"), 500),
        ];
        for (status, code) in cases {
            assert_eq!(ApiError::from(status).status().as_u16(), code);
        }
        let stale = ApiError::from(tonic::Status::aborted("version 3 is stale"));
        assert!(
            stale.to_string().starts_with("update out of sequence"),
            "{stale}"
        );
    }
}
