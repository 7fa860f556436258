//! A node's life across role changes. The node runs in the role its certificate names; when
//! the managers record another role for it (promotion, demotion), it renews its certificate,
//! stops everything of the old role and starts again in the new one, in the same process.

use crate::adapters::tls_endpoint;
use crate::args::Args;
use crate::autolock::LocalKeys;
use crate::identity::{self, NodeIdentity};
use crate::manager::{run_role, Outcome};
use crate::metrics_http::NodeMetrics;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;
use swarm_api::ca_client::CaClient;
use swarm_api::*;
use swarm_ca::{LiveCredentials, NodeCredentials};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub async fn run_node(
    args: Args,
    mut node: NodeIdentity,
    keys: Arc<LocalKeys>,
    metrics: Arc<NodeMetrics>,
    shutdown: CancellationToken,
) -> Result<()> {
    loop {
        match run_role(&args, &node, &keys, &metrics, shutdown.clone()).await? {
            Outcome::Stopped => return Ok(()),
            Outcome::RoleChanged(creds) => {
                if creds.role == NodeRole::Worker {
                    set_raft_aside(&args)?;
                    // Autolock covers managers only: a worker must restart without a key.
                    keys.set_key(None)?;
                }
                tracing::info!(role = ?creds.role, "certificate renewed for a new role; restarting in it");
                node = NodeIdentity {
                    managers: identity::known_managers(&args.state_dir),
                    creds,
                    new_cluster: None,
                };
            }
        }
    }
}

/// A demoted manager's Raft state is of no further use, and would stop it from joining afresh
/// if promoted again: kept aside, not deleted.
fn set_raft_aside(args: &Args) -> Result<()> {
    let raft = args.state_dir.join("raft");
    if raft.exists() {
        let aside = args.state_dir.join(format!("raft.demoted-{}", now_ms()));
        std::fs::rename(&raft, &aside)
            .with_context(|| format!("moving {} aside", raft.display()))?;
    }
    Ok(())
}

pub struct RoleWatch {
    pub updates: watch::Receiver<Option<Node>>,
    /// The certificate in force (renewals swap it while the role runs).
    pub creds: LiveCredentials,
    pub ca: CaPeers,
    /// Where certificates are saved (sealed while autolock is on).
    pub keys: Arc<LocalKeys>,
}

/// Where and as whom a node asks the CA to renew its certificate.
#[derive(Clone)]
pub struct CaPeers {
    pub managers: Vec<String>,
    pub hostname: String,
    pub advertise: String,
}

/// Waits until the managers record a role for this node other than its certificate's, then
/// renews the certificate, saves it, and stops the current role (`stop`). Returns the new
/// credentials, or None if the node stopped for another reason.
pub async fn watch_role(mut w: RoleWatch, stop: CancellationToken) -> Option<NodeCredentials> {
    loop {
        let recorded = w.updates.borrow_and_update().as_ref().map(|n| n.role);
        if let Some(role) = recorded.filter(|r| *r != w.creds.current().role as i32) {
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
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            r = w.updates.changed() => if r.is_err() { return None },
        }
    }
}

/// Asks the managers for a new certificate (new key) in `role`, presenting `creds`. Errors
/// when none signs one for that role, e.g. when they have not recorded a role change yet.
pub async fn renew(creds: &NodeCredentials, w: &CaPeers, role: i32) -> Result<NodeCredentials> {
    let (key, csr) = swarm_ca::new_key_and_csr()?;
    let mut last = None;
    // Other managers first: a manager being demoted is no longer in the Raft group, so its
    // own copy of the state is stale and still calls it a manager.
    let mut targets: Vec<&String> = w.managers.iter().filter(|a| **a != w.advertise).collect();
    targets.extend(w.managers.iter().filter(|a| **a == w.advertise));
    for addr in targets {
        let res = async {
            let ch = tls_endpoint(creds, addr)
                .map_err(anyhow::Error::msg)?
                .connect()
                .await?;
            let resp = CaClient::new(ch)
                .issue_node_certificate(IssueNodeCertificateRequest {
                    csr: csr.clone().into_bytes(),
                    token: String::new(),
                    hostname: w.hostname.clone(),
                    addr: w.advertise.clone(),
                })
                .await?
                .into_inner();
            Ok::<_, anyhow::Error>(resp)
        }
        .await;
        match res {
            Ok(resp) => {
                let cert = String::from_utf8(resp.certificate).context("certificate is not PEM")?;
                // The roots to trust come with the certificate (they change during a root
                // rotation); the answer came over mTLS verified against our current roots.
                let roots = String::from_utf8(resp.root_ca)
                    .ok()
                    .filter(|r| !r.trim().is_empty())
                    .unwrap_or_else(|| creds.root_pem.clone());
                let new = NodeCredentials::from_pems(cert, key.clone(), roots)?;
                if new.role as i32 == role {
                    return Ok(new);
                }
                last = Some(anyhow::anyhow!(
                    "{addr} signed a certificate for role {:?}, not the one asked for",
                    new.role
                ));
            }
            Err(e) => last = Some(e.context(format!("renewing at {addr}"))),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no manager address known")))
}
