//! The remote API's TLS listener: accepts TCP connections, runs the TLS handshake with our own
//! `TlsAcceptor` and hands finished streams to tonic (`serve_with_incoming`). Ours rather than
//! tonic's `tls_config` because the acceptor's config resolves the node certificate at each
//! handshake (`LiveCredentials::server_config`), so a renewed certificate is served at once,
//! without restarting the server or dropping its connections. tonic's `Connected` impl for
//! `tokio_rustls::server::TlsStream` still gives handlers `request.peer_certs()`.
//!
//! Owns: the accept loop and per-connection handshakes. Must not touch: which services are
//! served (the caller's) or the certificate (the renewal loop, through the credentials holder).
//! swarmd and swarm-bench both accept through it, so the bench's managers accept agents
//! exactly as swarmd does.

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// A client that opens a connection and never finishes the handshake must not hold a task
/// (and a file descriptor) forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections whose handshake is done, waiting for tonic to pick them up.
const BACKLOG: usize = 64;

pub type TlsIncoming = ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>>;

/// Serves TLS over `listener` until `shutdown`. Returns the stream of established connections
/// for `serve_with_incoming*`, and the accept loop's task: it owns the listener, so awaiting it
/// guarantees the port is free again (a node restarting in a new role binds it next).
pub fn tls_incoming(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: CancellationToken,
) -> (TlsIncoming, JoinHandle<()>) {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (tx, rx) = mpsc::channel(BACKLOG);
    // The caller owns the returned handle; it ends on `shutdown`.
    #[allow(clippy::disallowed_methods)]
    let task = tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Typically out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e, "remote API: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            // Raft heartbeats and dispatcher calls are small; don't let Nagle delay them.
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            // Handshakes run apart, so one slow client does not hold up the others.
            // Bounded by HANDSHAKE_TIMEOUT.
            #[allow(clippy::disallowed_methods)]
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        // The server is gone when this fails: nothing to do.
                        let _ = tx.send(Ok(tls)).await;
                    }
                    // Not ours to act on: port scanners, clients of another cluster, expired
                    // certificates. Logged for whoever debugs a node that can't connect.
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "remote API: TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(%peer, "remote API: TLS handshake timed out"),
                }
            });
        }
    });
    (ReceiverStream::new(rx), task)
}
