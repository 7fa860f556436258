//! The gRPC channel to a manager's control socket (a unix socket, no TLS: the socket's file
//! permissions are the access control).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Result};
use hyper_util::rt::TokioIo;
use swarm_api::control_client::ControlClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Longest wait for one call's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest response accepted (a list of 100,000 tasks is tens of MiB).
const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// A Control API client over the socket.
pub type Client = ControlClient<Channel>;

/// Connects to the control socket at `path`; fails at once when nothing listens there.
pub async fn connect(path: &Path) -> Result<Client> {
    // Listing every task of a large cluster is far bigger than gRPC's 4 MiB default.
    Ok(ControlClient::new(channel(path).await?).max_decoding_message_size(MAX_RESPONSE_BYTES))
}

/// A channel to the control socket at `path`, for any of the services served there.
pub async fn channel(path: &Path) -> Result<Channel> {
    let socket: PathBuf = path.to_path_buf();
    // The URI is a placeholder: every connection goes to the socket.
    let channel = Endpoint::from_static("http://[::]:50051")
        // A manager that lost its leader should not hang the terminal forever. (For a
        // streaming call this bounds the wait for the response's start, not the stream.)
        .timeout(REQUEST_TIMEOUT)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|e| anyhow!("cannot connect to {}: {}", path.display(), root_cause(&e)))?;
    Ok(channel)
}

/// The innermost cause of a transport error, without Rust's "(os error N)" suffix.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    let text = current.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
