//! A node's `Description.TLSInfo` as Docker shows it (`docker node inspect --pretty` prints a
//! TLS section from it): the cluster's trust root, and the subject and public key of whoever
//! issued the node's certificate, both DER, base64 in JSON as Go encodes bytes.

use crate::types as d;
use x509_parser::pem::Pem;

/// Every certificate in a PEM text, as DER (unreadable blocks skipped).
fn ders(pem: &[u8]) -> Vec<Vec<u8>> {
    Pem::iter_from_buffer(pem)
        .filter_map(Result::ok)
        .map(|p| p.contents)
        .collect()
}

/// The issuer of the first certificate in `chain_pem`: its subject and public key, looked up
/// among the chain's other certificates and the trust roots; `None` when unknown.
fn issuer(chain_pem: &[u8], roots_pem: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let chain = ders(chain_pem);
    let leaf_der = chain.first()?;
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf_der).ok()?;
    let wanted = leaf.issuer().as_raw();
    let candidates = chain.iter().skip(1).cloned().chain(ders(roots_pem));
    for der in candidates {
        if let Ok((_, c)) = x509_parser::parse_x509_certificate(&der) {
            if c.subject().as_raw() == wanted {
                return Some((wanted.to_vec(), c.public_key().raw.to_vec()));
            }
        }
    }
    None
}

/// The cluster's TLS section: its trust root and, as the issuer every node's certificate
/// should name once a root rotation has converged, that root's own subject and public key
/// (`docker swarm ca --rotate` compares the nodes' issuers with these).
pub fn root_tls_info(roots_pem: &[u8]) -> d::TlsInfo {
    let root = ders(roots_pem).into_iter().find_map(|der| {
        let (_, c) = x509_parser::parse_x509_certificate(&der).ok()?;
        Some((c.subject().as_raw().to_vec(), c.public_key().raw.to_vec()))
    });
    let (subject, key) = root.unwrap_or_default();
    d::TlsInfo {
        trust_root: String::from_utf8_lossy(roots_pem).into_owned(),
        cert_issuer_subject: base64(&subject),
        cert_issuer_public_key: base64(&key),
    }
}

/// Standard base64 with padding, as Go's encoding/json writes a `[]byte`.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The TLS section of a node whose certificate is `chain_pem`, in a cluster trusting
/// `roots_pem`. Without a readable certificate only the trust root is known.
pub fn tls_info(chain_pem: &[u8], roots_pem: &[u8]) -> d::TlsInfo {
    let (subject, key) = issuer(chain_pem, roots_pem).unwrap_or_default();
    d::TlsInfo {
        trust_root: String::from_utf8_lossy(roots_pem).into_owned(),
        cert_issuer_subject: base64(&subject),
        cert_issuer_public_key: base64(&key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_go_writes_bytes() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x01]), "//4AAQ==");
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_node_certificate_names_its_root_as_the_cluster_shows_it() {
        let root = swarm_ca::RootCa::generate().unwrap();
        let (leaf, _) = root
            .issue("n1", swarm_api::NodeRole::Worker, "c1", 3_600_000)
            .unwrap();
        let roots = root.cert_pem().as_bytes();
        let cluster = root_tls_info(roots);
        let node = tls_info(leaf.as_bytes(), roots);
        assert!(!cluster.cert_issuer_subject.is_empty());
        assert_eq!(node.cert_issuer_subject, cluster.cert_issuer_subject);
        assert_eq!(node.cert_issuer_public_key, cluster.cert_issuer_public_key);
        assert_eq!(cluster.trust_root, root.cert_pem());
        let other = swarm_ca::RootCa::generate().unwrap();
        let elsewhere = root_tls_info(other.cert_pem().as_bytes());
        assert_ne!(
            elsewhere.cert_issuer_public_key,
            cluster.cert_issuer_public_key
        );
    }

    #[test]
    fn no_certificate_leaves_the_issuer_empty() {
        let t = tls_info(b"", b"not pem");
        assert_eq!(t.trust_root, "not pem");
        assert!(t.cert_issuer_subject.is_empty() && t.cert_issuer_public_key.is_empty());
    }
}
