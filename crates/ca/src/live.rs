//! A node's current credentials while it runs, swappable without a restart: the renewal loop
//! holds the one [`CredentialsSwap`] and installs each renewed certificate; servers (through
//! [`LiveCredentials::server_config`]'s certificate resolver) and clients (through
//! [`LiveCredentials::current`] when they make a new connection) read whatever is current.
//!
//! Owns: the shared holder (a `watch` channel, so there is one writer and no lock of ours) and
//! the rustls server config whose certificate follows it. Must not touch: files on disk
//! (`credentials.rs` saves them) or the decision of when to renew (the caller's).
//!
//! A root CA rotation changes what the node trusts as well: the trust bundle comes with the
//! certificate, so the client verifier servers use follows the holder too.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use tokio::sync::watch;

use crate::credentials::NodeCredentials;
use crate::CaError;

/// Credentials with their rustls form, built once per certificate rather than per handshake.
struct Current {
    creds: NodeCredentials,
    certified: Arc<CertifiedKey>,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl Current {
    fn new(creds: NodeCredentials) -> Result<Current, CaError> {
        Ok(Current {
            certified: Arc::new(crate::tls::certified_key(&creds)?),
            verifier: crate::tls::client_verifier(&creds.root_pem)?,
            creds,
        })
    }
}

/// The writing end: whoever renews the certificate. Not `Clone`, so there is one writer.
pub struct CredentialsSwap {
    tx: watch::Sender<Arc<Current>>,
}

/// The reading end, cheap to clone: every server and client of the node holds one.
#[derive(Clone)]
pub struct LiveCredentials {
    rx: watch::Receiver<Arc<Current>>,
}

impl std::fmt::Debug for LiveCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LiveCredentials")
            .field(&self.rx.borrow().creds)
            .finish()
    }
}

/// A holder starting with `creds`: the writer and a first reader.
pub fn live_credentials(
    creds: NodeCredentials,
) -> Result<(CredentialsSwap, LiveCredentials), CaError> {
    let (tx, rx) = watch::channel(Arc::new(Current::new(creds)?));
    Ok((CredentialsSwap { tx }, LiveCredentials { rx }))
}

impl CredentialsSwap {
    /// Installs renewed credentials (and the trust bundle that came with them): new TLS
    /// handshakes, server and client, use them from now on; connections already made keep the
    /// certificate they were made with. Refuses credentials of another node or cluster, which
    /// would be a bug in the caller.
    pub fn swap(&self, creds: NodeCredentials) -> Result<(), CaError> {
        {
            let cur = &self.tx.borrow().creds;
            if creds.node_id != cur.node_id || creds.cluster_id != cur.cluster_id {
                return Err(CaError::Identity(format!(
                    "renewed certificate is for node {} of cluster {}, not this node",
                    creds.node_id, creds.cluster_id
                )));
            }
        }
        let next = Arc::new(Current::new(creds)?);
        // `send_replace` stores the value even when no reader is left.
        self.tx.send_replace(next);
        Ok(())
    }

    /// Another reader of this holder.
    pub fn reader(&self) -> LiveCredentials {
        LiveCredentials {
            rx: self.tx.subscribe(),
        }
    }
}

impl LiveCredentials {
    /// The credentials in force now: use them for each new connection, not once and for all.
    pub fn current(&self) -> NodeCredentials {
        self.rx.borrow().creds.clone()
    }

    /// Server config for the remote API whose certificate is always the current one (the
    /// client policy is [`NodeCredentials::server_rustls_config`]'s: client certificates
    /// verified against the root, anonymous clients let in for the CA's join calls).
    pub fn server_config(&self) -> Result<ServerConfig, CaError> {
        crate::tls::server_config_with(
            Arc::new(LiveVerifier {
                rx: self.rx.clone(),
            }),
            Arc::new(LiveResolver {
                rx: self.rx.clone(),
            }),
        )
    }
}

/// Verifies client certificates against the trust bundle current at each handshake.
struct LiveVerifier {
    rx: watch::Receiver<Arc<Current>>,
}

impl std::fmt::Debug for LiveVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveVerifier")
    }
}

impl ClientCertVerifier for LiveVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // The CA's join calls come from nodes without a certificate; every other service
        // authorizes the caller itself.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints are optional; every root is named "swarm-ca" anyway.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verifier = self.rx.borrow().verifier.clone();
        verifier.verify_client_cert(end_entity, intermediates, now)
    }

    // Handshake signatures do not depend on the trust bundle: any current verifier checks
    // them the same way.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let verifier = self.rx.borrow().verifier.clone();
        verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let verifier = self.rx.borrow().verifier.clone();
        verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.rx.borrow().verifier.supported_verify_schemes()
    }
}

/// Picks the current certificate at each handshake.
struct LiveResolver {
    rx: watch::Receiver<Arc<Current>>,
}

impl std::fmt::Debug for LiveResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveResolver")
    }
}

impl ResolvesServerCert for LiveResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.rx.borrow().certified.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RootCa;
    use swarm_api::NodeRole;

    const DAY_MS: i64 = 24 * 3600 * 1000;

    fn issue(root: &RootCa, node: &str) -> NodeCredentials {
        let (cert, key) = root
            .issue(node, NodeRole::Worker, "c1", DAY_MS)
            .expect("issue");
        NodeCredentials::from_pems(cert, key, root.cert_pem().to_string()).expect("creds")
    }

    #[test]
    fn readers_see_the_swapped_credentials() {
        let root = RootCa::generate().expect("root");
        let first = issue(&root, "n1");
        let (swap, live) = live_credentials(first.clone()).expect("holder");
        let other_reader = swap.reader();
        assert_eq!(live.current().cert_pem, first.cert_pem);
        let second = issue(&root, "n1");
        swap.swap(second.clone()).expect("swap");
        assert_eq!(live.current().cert_pem, second.cert_pem);
        assert_eq!(other_reader.current().cert_pem, second.cert_pem);
        assert!(live.server_config().is_ok());
    }

    #[test]
    fn another_nodes_certificate_is_refused() {
        let root = RootCa::generate().expect("root");
        let (swap, live) = live_credentials(issue(&root, "n1")).expect("holder");
        let err = swap.swap(issue(&root, "n2")).expect_err("other node");
        assert!(err.to_string().contains("not this node"), "{err}");
        assert_eq!(live.current().node_id, "n1");
        // Another root is fine (a root rotation): the trust bundle comes with the certificate.
        let other_root = RootCa::generate().expect("root");
        swap.swap(issue(&other_root, "n1")).expect("rotated root");
        assert_eq!(live.current().root_pem, other_root.cert_pem());
    }
}
