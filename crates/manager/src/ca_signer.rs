//! What the cluster object says about signing node certificates right now: which root's key
//! signs, what chain goes with a certificate, which roots nodes must trust, and the record of
//! an issued certificate that the root rotation reconciler compares against.
//!
//! Owns: reading the CA material out of a [`Cluster`]. Must not touch: the store (callers
//! read the cluster and write the records) or the decision of who may get which role.
//!
//! Outside a rotation the root signs and nodes trust the root. During one (`root_rotation`
//! set), the new root signs, each certificate travels with the new root cross-signed by the
//! old one, and nodes trust both roots, so a node that has not renewed yet (trusting only the
//! old root) still accepts peers that have.

use swarm_api::*;
use swarm_ca::RootCa;
use tonic::Status;

pub(crate) struct Signer {
    ca: RootCa,
    /// The cross-signed new root, appended to every certificate during a rotation.
    bridge: Option<String>,
    /// PEM roots nodes must trust.
    pub bundle_pem: String,
    pub signer_digest: String,
    pub trust_digest: String,
    expiry_ms: i64,
}

fn pem_text(bytes: &[u8], what: &str) -> Result<String, Status> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Status::internal(format!("{what}: stored certificate is not PEM text")))
}

fn root(cert: &[u8], key: &[u8], what: &str) -> Result<RootCa, Status> {
    let cert = pem_text(cert, what)?;
    let key = pem_text(key, what)?;
    RootCa::from_pem(&cert, Some(&key)).map_err(|e| Status::internal(format!("{what}: {e}")))
}

/// How long the cluster's node certificates last.
pub(crate) fn cert_expiry(cluster: &Cluster) -> i64 {
    cluster
        .spec
        .as_ref()
        .and_then(|s| s.ca_config.as_ref())
        .map(|c| c.node_cert_expiry_ms)
        .filter(|ms| *ms > 0)
        .unwrap_or(defaults::NODE_CERT_EXPIRY_MS)
}

impl Signer {
    pub fn of(cluster: &Cluster) -> Result<Signer, Status> {
        let rc = cluster
            .root_ca
            .as_ref()
            .ok_or_else(|| Status::unavailable("the cluster has no root CA yet"))?;
        let current = pem_text(&rc.ca_cert, "root CA")?;
        let (ca, bridge, bundle_pem) = match &rc.root_rotation {
            Some(rot) => {
                let next = root(&rot.ca_cert, &rot.ca_key, "new root CA")?;
                let bridge = pem_text(&rot.cross_signed_ca_cert, "cross-signed root CA")?;
                let bundle = format!("{}{}", with_newline(&current), next.cert_pem());
                (next, Some(bridge), bundle)
            }
            None => (root(&rc.ca_cert, &rc.ca_key, "root CA")?, None, current),
        };
        let trust_digest =
            swarm_ca::bundle_digest(&bundle_pem).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Signer {
            signer_digest: ca.digest(),
            ca,
            bridge,
            bundle_pem,
            trust_digest,
            expiry_ms: cert_expiry(cluster),
        })
    }

    /// Signs `csr` for `node_id` in `role`; returns the chain (leaf, then the bridge during a
    /// rotation), PEM.
    pub fn sign(
        &self,
        csr: &str,
        node_id: &str,
        role: NodeRole,
        cluster_id: &str,
    ) -> Result<String, Status> {
        let leaf = self
            .ca
            .sign_csr(csr, node_id, role, cluster_id, self.expiry_ms)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(match &self.bridge {
            Some(b) => format!("{}{}", with_newline(&leaf), b),
            None => leaf,
        })
    }

    /// The record of a certificate this signer just issued.
    pub fn record(&self, role: NodeRole, chain: &str) -> NodeCertificate {
        NodeCertificate {
            role: role as i32,
            certificate: chain.as_bytes().to_vec(),
            expires_at: now_ms() + self.expiry_ms,
            signer_digest: self.signer_digest.clone(),
            trust_digest: self.trust_digest.clone(),
            status: CertificateStatus::Issued as i32,
        }
    }

    /// Whether a node holding `cert` needs a new certificate or trust bundle.
    pub fn is_current(&self, cert: Option<&NodeCertificate>) -> bool {
        cert.is_some_and(|c| {
            c.signer_digest == self.signer_digest && c.trust_digest == self.trust_digest
        })
    }
}

fn with_newline(pem: &str) -> String {
    if pem.ends_with('\n') {
        pem.to_string()
    } else {
        format!("{pem}\n")
    }
}
