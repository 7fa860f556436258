//! The node's client of the managers' CA for renewals: a new key and CSR, sent over mutual TLS
//! with the certificate in force, to the managers it knows (others first), checked for the
//! role asked for. Used by the renewal loop (same role) and by role changes (new role).

use crate::error::{Context, NodeError, Result};
use swarm_api::ca_client::CaClient;
use swarm_api::IssueNodeCertificateRequest;
use swarm_ca::NodeCredentials;

/// Where and as whom a node asks the CA to renew its certificate.
#[derive(Clone)]
pub struct CaPeers {
    pub managers: Vec<String>,
    pub hostname: String,
    pub advertise: String,
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
            let ch = creds
                .endpoint(addr)?
                .connect()
                .await
                .context("connecting")?;
            let resp = CaClient::new(ch)
                .issue_node_certificate(IssueNodeCertificateRequest {
                    csr: csr.clone().into_bytes(),
                    token: String::new(),
                    hostname: w.hostname.clone(),
                    addr: w.advertise.clone(),
                })
                .await
                .context("asking for a certificate")?
                .into_inner();
            Ok::<_, NodeError>(resp)
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
                last = Some(NodeError::failed(format!(
                    "{addr} signed a certificate for role {:?}, not the one asked for",
                    new.role
                )));
            }
            Err(e) => {
                last = Some(NodeError::Step {
                    what: format!("renewing at {addr}"),
                    source: Box::new(e),
                })
            }
        }
    }
    Err(last.unwrap_or_else(|| NodeError::failed("no manager address known")))
}
