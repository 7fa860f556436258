//! The crate's one error type. Every message is a single line that names what was wrong, so
//! `swarmd` can print it as is.

use std::path::PathBuf;

/// Anything that can go wrong in the CA, the credentials on disk or the join flow.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// Key or certificate generation / signing failed inside rcgen.
    #[error("{what}: {source}")]
    Crypto {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    /// A certificate could not be parsed or does not have the shape we need.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// A private key could not be parsed or does not belong to its certificate.
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    /// A certificate signing request could not be parsed or its signature is wrong.
    #[error("invalid certificate signing request: {0}")]
    InvalidCsr(String),
    /// Signing was asked of a root CA loaded without its key (e.g. on a worker).
    #[error("this root CA has no signing key")]
    NoSigningKey,
    /// A join token that does not follow `SWMTKN-1-<digest>-<secret>`.
    #[error("join token: {0}")]
    Token(String),
    /// The manager's root CA is not the one the join token names.
    #[error("root CA digest does not match the join token (token expects {expected}, manager sent {actual})")]
    DigestMismatch { expected: String, actual: String },
    /// An unlock key that does not parse or does not open the sealed keys.
    #[error("unlock key: {0}")]
    UnlockKey(String),
    /// A certificate does not say who its holder is (missing CN/OU/O, unknown role).
    #[error("certificate identity: {0}")]
    Identity(String),
    /// A rustls configuration could not be built from the credentials.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// A file under the state directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No client endpoint could be made for the address (unparsable, or TLS set-up failed).
    #[error("{addr}: {source}")]
    Endpoint {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// The manager could not be reached (TCP or TLS failure).
    #[error("cannot reach manager at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    /// A network call to the manager took too long.
    #[error("timed out after {secs} s waiting for manager at {addr} ({what})")]
    Timeout {
        addr: String,
        what: &'static str,
        secs: u64,
    },
    /// The manager answered with an error.
    #[error("manager at {addr} refused {what}: {message}")]
    Rejected {
        addr: String,
        what: &'static str,
        message: String,
    },
    /// The manager's answer is not what the protocol promises.
    #[error("manager at {addr} sent a bad answer: {reason}")]
    BadResponse { addr: String, reason: String },
}

impl CaError {
    pub(crate) fn crypto(what: &'static str) -> impl FnOnce(rcgen::Error) -> CaError {
        move |source| CaError::Crypto { what, source }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CaError {
        let path = path.into();
        move |source| CaError::Io { path, source }
    }
}

/// Joins an error and its sources into one line ("transport error: tcp connect error:
/// Connection refused"), dropping repeats, because tonic's top-level messages alone say little.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        // tonic's outermost "transport error" says nothing the causes below do not.
        if !s.is_empty() && s != "transport error" && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ").replace('\n', " ")
}

/// Whether `err` or one of its causes is a timeout (tokio's elapsed deadline or an I/O
/// timeout), so callers can report "timed out" rather than a generic transport error.
pub(crate) fn is_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<tokio::time::error::Elapsed>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        cur = e.source();
    }
    false
}
