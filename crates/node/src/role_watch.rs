//! Role changes as the managers record them: when this node's object names a role other than
//! its certificate's, renew the certificate for that role, save it, and stop the current role
//! so the node restarts in the new one (lifecycle.rs).

use crate::autolock::LocalKeys;
use crate::ca_client::{renew, CaPeers};
use std::sync::Arc;
use std::time::Duration;
use swarm_api::Node;
use swarm_ca::{LiveCredentials, NodeCredentials};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub struct RoleWatch {
    pub updates: watch::Receiver<Option<Node>>,
    /// The certificate in force (renewals swap it while the role runs).
    pub creds: LiveCredentials,
    pub ca: CaPeers,
    /// Where certificates are saved (sealed while autolock is on).
    pub keys: Arc<LocalKeys>,
}

/// Waits until the managers record a role for this node other than its certificate's, then
/// renews the certificate, saves it, and stops the current role (`stop`). Returns the new
/// credentials, or None if the node stopped for another reason.
pub async fn watch_role(mut w: RoleWatch, stop: CancellationToken) -> Option<NodeCredentials> {
    loop {
        let recorded = w.updates.borrow_and_update().as_ref().map(|n| n.role);
        if let Some(mut role) = recorded.filter(|r| *r != w.creds.current().role as i32) {
            loop {
                match renew(&w.creds.current(), &w.ca, role).await {
                    Ok(new) => {
                        if let Err(e) = w.keys.save_credentials(&new) {
                            tracing::error!(error = %e, "saving the renewed certificate");
                        } else {
                            stop.cancel();
                            return Some(new);
                        }
                    }
                    Err(e) => {
                        tracing::info!(error = %e, "renewing the certificate for a new role; retrying")
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                // The managers may have changed their mind meanwhile (a demotion undone by a
                // promotion): asking for the role recorded before would fail forever.
                match w.updates.borrow_and_update().as_ref().map(|n| n.role) {
                    Some(now) if now == w.creds.current().role as i32 => break,
                    Some(now) => role = now,
                    None => {}
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            r = w.updates.changed() => if r.is_err() { return None },
        }
    }
}
