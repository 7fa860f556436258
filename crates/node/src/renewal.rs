//! Certificate renewal while the node runs in one role: sleeps until the certificate's renewal
//! point (a random moment between 50 % and 80 % of its life, DESIGN.md §4), asks the managers
//! for a new one, saves it, and swaps it into the node's credentials holder, so servers present
//! it at the next handshake and clients use it for their next connection. Nothing restarts and
//! no session drops. Failures are logged and retried with backoff. A root CA rotation asks for
//! a renewal at once, through the certificate status on the node's object.
//!
//! Owns: the holder's writing end (`CredentialsSwap`) for the life of the role. Must not touch:
//! role changes, which `lifecycle::watch_role` handles by restarting the node in the new role;
//! a renewal that comes back in another role is left to it and not installed here.

use crate::autolock::LocalKeys;
use std::sync::Arc;
use std::time::Duration;

use swarm_api::{now_ms, CertificateStatus, Node};
use swarm_ca::CredentialsSwap;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::ca_client::{renew, CaPeers};

/// First retry delay after a failed renewal, doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Long enough not to hammer managers that are down, short against a 1 h minimum life.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub struct Renewal {
    /// This node's object as the managers send it: a root rotation asks for a renewal there.
    pub updates: watch::Receiver<Option<Node>>,
    pub swap: CredentialsSwap,
    pub ca: CaPeers,
    /// Where renewed certificates are saved (sealed while autolock is on).
    pub keys: Arc<LocalKeys>,
    /// Test-only (`--cert-renew-after-ms`): make the first renewal this long after start
    /// instead of at the certificate's renewal point.
    pub first_after: Option<Duration>,
}

/// Renews the certificate each time it is due, until `stop`.
pub async fn run(mut r: Renewal, stop: CancellationToken) {
    let live = r.swap.reader();
    let mut first_after = r.first_after;
    loop {
        let creds = live.current();
        let wait = match first_after.take() {
            Some(d) => d,
            None => match creds.renew_at_ms() {
                // A certificate already past its point (a node that was off) renews at once.
                Ok(at) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)),
                Err(e) => {
                    // Can't happen for credentials that loaded; never spin if it does.
                    tracing::error!(error = %e, "reading the certificate's validity; not renewing it");
                    return;
                }
            },
        };
        tracing::info!(
            in_secs = wait.as_secs(),
            "node certificate renewal scheduled"
        );
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = rotation_asked(&mut r.updates) => {
                tracing::info!("root CA rotation: renewing the node certificate now");
            }
        }
        let mut backoff = FIRST_BACKOFF;
        loop {
            match renew_once(&r, &creds, &stop).await {
                Ok(true) => break,
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), retry_in_secs = backoff.as_secs(), "renewing the node certificate")
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Returns when an update from the managers flags this node's certificate for rotation (the
/// first session message counts as an update); never if the session's updates end.
async fn rotation_asked(updates: &mut watch::Receiver<Option<Node>>) {
    loop {
        if updates.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        let flagged = updates
            .borrow_and_update()
            .as_ref()
            .and_then(|n| n.certificate.as_ref())
            .is_some_and(|c| c.status == CertificateStatus::Rotate as i32);
        if flagged {
            return;
        }
    }
}

/// One attempt. Ok(false) when the role is stopping and the result must not be installed.
async fn renew_once(
    r: &Renewal,
    creds: &swarm_ca::NodeCredentials,
    stop: &CancellationToken,
) -> crate::error::Result<bool> {
    // Same role: a certificate in another role is `watch_role`'s business (it restarts the
    // node), and `renew` refuses to return one.
    let new = renew(creds, &r.ca, creds.role as i32).await?;
    // A role change may have saved its own certificate meanwhile; don't overwrite it.
    if stop.is_cancelled() {
        return Ok(false);
    }
    // Saved before it is used: a restart must find the certificate the node presents.
    r.keys.save_credentials(&new)?;
    let expires = new.expires_at_ms()?;
    r.swap.swap(new)?;
    tracing::info!(
        expires_in_secs = (expires - now_ms()) / 1000,
        "node certificate renewed"
    );
    Ok(true)
}
