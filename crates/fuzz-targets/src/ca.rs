//! What nodes present to the CA and to each other: a CSR sent with a join token (signed by the
//! real root CA after its self-signature is checked), a peer's certificate (the identity read
//! from it on every mTLS call), and PEM bundles (a rotation's cross-signed chain, a root).

use crate::input::{choose, text};
use std::sync::OnceLock;
use swarm_api::NodeRole;
use swarm_ca::{bundle_digest, identity_from_cert_der, RootCa};

fn root() -> Option<&'static RootCa> {
    static ROOT: OnceLock<Option<RootCa>> = OnceLock::new();
    ROOT.get_or_init(|| RootCa::generate().ok()).as_ref()
}

/// One CSR, certificate or bundle, by the first byte.
pub fn csr(data: &[u8]) {
    let Some(root) = root() else {
        return;
    };
    let (which, body) = choose(data, 4);
    match which {
        0 => {
            let _ = root.sign_csr(
                &text(body),
                "fuzz-node",
                NodeRole::Worker,
                "fuzz",
                3_600_000,
            );
        }
        1 => {
            let _ = identity_from_cert_der(body);
        }
        2 => {
            let _ = root.signed(&text(body));
            let _ = bundle_digest(&text(body));
        }
        _ => {
            let _ = RootCa::from_pem(&text(body), None);
        }
    }
}
