//! The root CA: generating or loading it, its digest, and issuing node certificates (from a
//! CSR or with a locally generated key). Owns the shape of every certificate in the cluster;
//! must not decide roles (callers pass the role they authorized).

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    PKCS_ECDSA_P256_SHA256,
};
use sha2::{Digest, Sha256};
use swarm_api::NodeRole;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::role_ou;
use crate::pem;
use crate::CaError;

/// Common name of every root CA we generate (as SwarmKit's).
pub const ROOT_CA_CN: &str = "swarm-ca";

/// Root CA lifetime (DESIGN.md §4): 20 years.
const ROOT_VALIDITY: time::Duration = time::Duration::days(20 * 365);

/// Certificates start this long before "now" so that a node whose clock is a little behind the
/// signer's still accepts them (SwarmKit backdates the same way).
pub(crate) const BACKDATE: time::Duration = time::Duration::hours(1);

/// The cluster's root certificate authority: its certificate and, on managers, its key.
#[derive(Clone)]
pub struct RootCa {
    cert_pem: String,
    cert_der: Vec<u8>,
    key_pem: Option<String>,
}

impl std::fmt::Debug for RootCa {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCa")
            .field("digest", &self.digest())
            .field("has_key", &self.key_pem.is_some())
            .finish()
    }
}

impl RootCa {
    /// A new self-signed root: ECDSA P-256, CN "swarm-ca", valid 20 years.
    pub fn generate() -> Result<RootCa, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(CaError::crypto("generating the root CA key"))?;
        let now = time::OffsetDateTime::now_utc();
        let cert = root_params(now - BACKDATE, now + ROOT_VALIDITY)
            .self_signed(&key)
            .map_err(CaError::crypto("self-signing the root CA"))?;
        Ok(RootCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: Some(key.serialize_pem()),
        })
    }

    /// `next`'s certificate signed by this root instead of by itself: same subject, key and
    /// validity. Sent as an intermediate during a root rotation, so nodes that trust only
    /// this (old) root accept certificates the new root signs.
    pub fn cross_sign(&self, next: &RootCa) -> Result<String, CaError> {
        let issuer = self.issuer()?;
        let next_key = KeyPair::from_pem(next.key_pem.as_deref().ok_or(CaError::NoSigningKey)?)
            .map_err(|e| CaError::InvalidKey(format!("new root CA key: {e}")))?;
        let (_, cert) = X509Certificate::from_der(&next.cert_der)
            .map_err(|e| CaError::InvalidCertificate(format!("new root CA: {e}")))?;
        let v = cert.validity();
        let at = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .map_err(|e| CaError::InvalidCertificate(format!("new root CA validity: {e}")))
        };
        let params = root_params(at(v.not_before.timestamp())?, at(v.not_after.timestamp())?);
        let cert = params
            .signed_by(&next_key, &issuer)
            .map_err(CaError::crypto("cross-signing the new root CA"))?;
        Ok(cert.pem())
    }

    /// Whether this root's key signed the first certificate of `chain_pem`.
    pub fn signed(&self, chain_pem: &str) -> bool {
        let Ok(der) = pem::cert_der(chain_pem) else {
            return false;
        };
        signed_by(&der, &self.cert_der)
    }

    /// Loads a root from PEM. With a key, the key must belong to the certificate.
    pub fn from_pem(cert_pem: &str, key_pem: Option<&str>) -> Result<RootCa, CaError> {
        let cert_der = pem::cert_der(cert_pem)?;
        let (_, cert) = X509Certificate::from_der(&cert_der)
            .map_err(|e| CaError::InvalidCertificate(format!("root CA: {e}")))?;
        if !cert.is_ca() {
            return Err(CaError::InvalidCertificate(
                "root CA certificate is not a CA (basicConstraints CA:FALSE or absent)".into(),
            ));
        }
        if let Some(key_pem) = key_pem {
            let key = KeyPair::from_pem(key_pem)
                .map_err(|e| CaError::InvalidKey(format!("root CA key: {e}")))?;
            if key.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
                return Err(CaError::InvalidKey(
                    "root CA key does not belong to the root CA certificate".into(),
                ));
            }
        }
        Ok(RootCa {
            cert_pem: cert_pem.to_string(),
            cert_der,
            key_pem: key_pem.map(str::to_string),
        })
    }

    /// The root certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The root certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The root's private key, PEM, when this node holds it.
    pub fn key_pem(&self) -> Option<&str> {
        self.key_pem.as_deref()
    }

    /// Whether this root can sign (managers) or only verify (workers).
    pub fn can_sign(&self) -> bool {
        self.key_pem.is_some()
    }

    /// SHA-256 of the root certificate's DER, base36, 50 characters: what join tokens carry.
    pub fn digest(&self) -> String {
        digest_of_der(&self.cert_der)
    }

    /// Signs a PEM PKCS#10 CSR after checking its signature. The CSR's subject and extensions
    /// are ignored: only its public key is used, and the identity comes from the arguments.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        node_id: &str,
        role: NodeRole,
        cluster_id: &str,
        expiry_ms: i64,
    ) -> Result<String, CaError> {
        let issuer = self.issuer()?;
        // `from_pem` verifies the request's self-signature, proving the requester holds the key.
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| CaError::InvalidCsr(e.to_string()))?;
        let params = node_params(node_id, role, cluster_id, expiry_ms)?;
        let cert = params
            .signed_by(&csr.public_key, &issuer)
            .map_err(CaError::crypto("signing the node certificate"))?;
        Ok(cert.pem())
    }

    /// A new key and a certificate for it, both generated here (the first manager issues its
    /// own this way). Returns (certificate PEM, key PEM).
    pub fn issue(
        &self,
        node_id: &str,
        role: NodeRole,
        cluster_id: &str,
        expiry_ms: i64,
    ) -> Result<(String, String), CaError> {
        let issuer = self.issuer()?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(CaError::crypto("generating a node key"))?;
        let params = node_params(node_id, role, cluster_id, expiry_ms)?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(CaError::crypto("signing the node certificate"))?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, CaError> {
        let key_pem = self.key_pem.as_deref().ok_or(CaError::NoSigningKey)?;
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| CaError::InvalidKey(format!("root CA key: {e}")))?;
        Issuer::from_ca_cert_der(&self.cert_der.as_slice().into(), key)
            .map_err(|e| CaError::InvalidCertificate(format!("root CA: {e}")))
    }
}

/// A new ECDSA P-256 key and a CSR for it. Returns (key PEM, CSR PEM). The CSR's subject is a
/// placeholder: the CA fills in the real identity.
pub fn new_key_and_csr() -> Result<(String, String), CaError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(CaError::crypto("generating a node key"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "swarm-node");
    params.distinguished_name = dn;
    let csr = params
        .serialize_request(&key)
        .map_err(CaError::crypto("creating the certificate signing request"))?;
    let csr_pem = csr
        .pem()
        .map_err(CaError::crypto("encoding the certificate signing request"))?;
    Ok((key.serialize_pem(), csr_pem))
}

/// Whether the certificate `der` carries a valid signature by the key of `issuer_der`.
pub(crate) fn signed_by(der: &[u8], issuer_der: &[u8]) -> bool {
    let (Ok((_, cert)), Ok((_, issuer))) = (
        X509Certificate::from_der(der),
        X509Certificate::from_der(issuer_der),
    ) else {
        return false;
    };
    cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// Digest of a trust bundle (one or more PEM roots, in order): what a node's recorded
/// certificate says it was told to trust, so a change of bundle shows as a mismatch.
pub fn bundle_digest(bundle_pem: &str) -> Result<String, CaError> {
    let mut all = Vec::new();
    for der in pem::certs_der(bundle_pem)? {
        all.extend_from_slice(&Sha256::digest(&der));
    }
    Ok(digest_of_der(&all))
}

/// The shape of every root we make: CN "swarm-ca", a CA with no path length limit, able to
/// sign certificates and CRLs.
fn root_params(
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, ROOT_CA_CN);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial());
    params
}

/// SHA-256 of `der`, base36, 50 characters.
pub(crate) fn digest_of_der(der: &[u8]) -> String {
    swarm_api::ids::base36(&Sha256::digest(der), 50)
}

/// The certificate every node gets: CN = node ID, OU = role, O = cluster ID, usable as TLS
/// server and client. All nodes carry the DNS name "swarm-manager" so that a worker promoted
/// later needs no new SAN, and clients verify every manager under one name.
fn node_params(
    node_id: &str,
    role: NodeRole,
    cluster_id: &str,
    expiry_ms: i64,
) -> Result<CertificateParams, CaError> {
    if node_id.is_empty() || cluster_id.is_empty() {
        return Err(CaError::Identity(
            "node ID and cluster ID must not be empty".into(),
        ));
    }
    if expiry_ms <= 0 {
        return Err(CaError::InvalidCertificate(format!(
            "certificate expiry must be positive, got {expiry_ms} ms"
        )));
    }
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, node_id);
    dn.push(DnType::OrganizationalUnitName, role_ou(role));
    dn.push(DnType::OrganizationName, cluster_id);
    params.distinguished_name = dn;
    let san = rcgen::string::Ia5String::try_from(swarm_api::MANAGER_SERVER_NAME).map_err(|e| {
        CaError::Crypto {
            what: "encoding the certificate's DNS name",
            source: e,
        }
    })?;
    params.subject_alt_names = vec![SanType::DnsName(san)];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + time::Duration::milliseconds(expiry_ms);
    params.serial_number = Some(random_serial());
    Ok(params)
}

/// 128 random bits, positive and with no leading zero byte, so every certificate differs even
/// when a key is reused.
fn random_serial() -> SerialNumber {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[0] = (b[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&b)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::server::WebPkiClientVerifier;
    use rustls::RootCertStore;

    use super::*;
    use crate::identity_from_cert_der;

    const DAY_MS: i64 = 24 * 3600 * 1000;

    fn is_base36(s: &str) -> bool {
        s.bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    }

    #[test]
    fn generated_root_digest_is_stable_across_pem_round_trip() {
        let root = RootCa::generate().expect("generate");
        let d = root.digest();
        assert_eq!(d.len(), 50);
        assert!(is_base36(&d), "{d}");
        assert_eq!(d, root.digest());

        let key = root.key_pem().expect("has key");
        let back = RootCa::from_pem(root.cert_pem(), Some(key)).expect("from_pem");
        assert_eq!(back.digest(), d);
        let public = RootCa::from_pem(root.cert_pem(), None).expect("cert only");
        assert_eq!(public.digest(), d);
        assert!(!public.can_sign());

        // Different roots, different digests.
        assert_ne!(RootCa::generate().expect("generate").digest(), d);

        // The root itself: CA, CN swarm-ca, about 20 years.
        let (_, cert) = X509Certificate::from_der(root.cert_der()).expect("parse");
        assert!(cert.is_ca());
        let cn: Vec<_> = cert
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().expect("str").to_string())
            .collect();
        assert_eq!(cn, vec![ROOT_CA_CN.to_string()]);
        let years = (cert.validity().not_after.timestamp()
            - cert.validity().not_before.timestamp())
            / (365 * 24 * 3600);
        assert_eq!(years, 20);
    }

    #[test]
    fn from_pem_refuses_a_foreign_key_and_garbage() {
        let a = RootCa::generate().expect("a");
        let b = RootCa::generate().expect("b");
        let err = RootCa::from_pem(a.cert_pem(), b.key_pem()).expect_err("foreign key");
        assert!(err.to_string().contains("does not belong"), "{err}");
        assert!(RootCa::from_pem("not a cert", None).is_err());
    }

    #[test]
    fn root_without_key_cannot_sign() {
        let root = RootCa::generate().expect("root");
        let public = RootCa::from_pem(root.cert_pem(), None).expect("cert only");
        let (_, csr) = new_key_and_csr().expect("csr");
        let err = public
            .sign_csr(&csr, "n", NodeRole::Worker, "c", DAY_MS)
            .expect_err("no key");
        assert!(matches!(err, CaError::NoSigningKey));
    }

    fn verifiers(
        root: &RootCa,
    ) -> (
        Arc<WebPkiServerVerifier>,
        Arc<dyn rustls::server::danger::ClientCertVerifier>,
    ) {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(root.cert_der().to_vec()))
            .expect("add root");
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .expect("server verifier");
        let client = WebPkiClientVerifier::builder_with_provider(roots, provider)
            .build()
            .expect("client verifier");
        (server, client)
    }

    fn chain_ok(root: &RootCa, cert_pem: &str) -> bool {
        let der = CertificateDer::from(pem::cert_der(cert_pem).expect("pem"));
        let (server, client) = verifiers(root);
        let name = ServerName::try_from(swarm_api::MANAGER_SERVER_NAME).expect("name");
        let as_server = server
            .verify_server_cert(&der, &[], &name, &[], UnixTime::now())
            .is_ok();
        let as_client = client
            .verify_client_cert(&der, &[], UnixTime::now())
            .is_ok();
        assert_eq!(
            as_server, as_client,
            "server and client verification disagree"
        );
        as_server
    }

    #[test]
    fn signed_csr_carries_identity_and_chains_to_its_root_only() {
        let root = RootCa::generate().expect("root");
        let other = RootCa::generate().expect("other");
        let (_key, csr) = new_key_and_csr().expect("csr");
        for (role, ou) in [
            (NodeRole::Manager, swarm_api::MANAGER_OU),
            (NodeRole::Worker, swarm_api::WORKER_OU),
        ] {
            let cert = root
                .sign_csr(&csr, "node-abc", role, "cluster-xyz", 90 * DAY_MS)
                .expect("sign");
            let der = pem::cert_der(&cert).expect("der");
            let id = identity_from_cert_der(&der).expect("identity");
            assert_eq!(id.node_id, "node-abc");
            assert_eq!(id.role, role);
            assert_eq!(id.cluster_id, "cluster-xyz");
            let (_, x) = X509Certificate::from_der(&der).expect("parse");
            let ous: Vec<_> = x
                .subject()
                .iter_organizational_unit()
                .map(|a| a.as_str().expect("str").to_string())
                .collect();
            assert_eq!(ous, vec![ou.to_string()]);
            assert!(!x.is_ca());
            // Expiry honours the requested lifetime.
            let life = x.validity().not_after.timestamp() - swarm_api::now_ms() / 1000;
            assert!((life - 90 * 24 * 3600).abs() < 60, "life {life}");

            assert!(chain_ok(&root, &cert), "must verify against its root");
            assert!(
                !chain_ok(&other, &cert),
                "must not verify against another root"
            );
        }
        // And the other way round: another root's certificate is refused by ours.
        let (foreign, _) = other
            .issue("n2", NodeRole::Manager, "cluster-xyz", DAY_MS)
            .expect("issue");
        assert!(chain_ok(&other, &foreign));
        assert!(!chain_ok(&root, &foreign));
    }

    /// Verifies `leaf` with `intermediates` against a trust store of `roots`, as server and
    /// as client.
    fn verifies(roots: &[&RootCa], leaf: &str, intermediates: &[&str]) -> bool {
        let mut store = RootCertStore::empty();
        for r in roots {
            store
                .add(CertificateDer::from(r.cert_der().to_vec()))
                .expect("add root");
        }
        let store = Arc::new(store);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = WebPkiServerVerifier::builder_with_provider(store.clone(), provider.clone())
            .build()
            .expect("server verifier");
        let client = WebPkiClientVerifier::builder_with_provider(store, provider)
            .build()
            .expect("client verifier");
        let der = CertificateDer::from(pem::cert_der(leaf).expect("pem"));
        let inter: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|p| CertificateDer::from(pem::cert_der(p).expect("pem")))
            .collect();
        let name = ServerName::try_from(swarm_api::MANAGER_SERVER_NAME).expect("name");
        let a = server
            .verify_server_cert(&der, &inter, &name, &[], UnixTime::now())
            .is_ok();
        let b = client
            .verify_client_cert(&der, &inter, UnixTime::now())
            .is_ok();
        assert_eq!(a, b, "server and client verification disagree");
        a
    }

    #[test]
    fn cross_signed_root_bridges_old_trust_to_new_certificates() {
        let old = RootCa::generate().expect("old");
        let new = RootCa::generate().expect("new");
        let cross = old.cross_sign(&new).expect("cross-sign");
        let (leaf, _) = new
            .issue("n1", NodeRole::Worker, "c1", DAY_MS)
            .expect("issue");
        // A node trusting only the old root accepts the new certificate through the bridge,
        // and only through it.
        assert!(verifies(&[&old], &leaf, &[&cross]));
        assert!(!verifies(&[&old], &leaf, &[]));
        // Nodes trusting the new root, or both, accept it with or without the bridge.
        assert!(verifies(&[&new], &leaf, &[&cross]));
        assert!(verifies(&[&new], &leaf, &[]));
        assert!(verifies(&[&old, &new], &leaf, &[&cross]));
        // The old root's certificates stay valid for nodes trusting both, not for new-only.
        let (old_leaf, _) = old
            .issue("n2", NodeRole::Worker, "c1", DAY_MS)
            .expect("issue");
        assert!(verifies(&[&old, &new], &old_leaf, &[]));
        assert!(!verifies(&[&new], &old_leaf, &[]));
        // A bridge signed by a stranger bridges nothing.
        let stranger = RootCa::generate().expect("stranger");
        let fake = stranger.cross_sign(&new).expect("cross-sign");
        assert!(!verifies(&[&old], &leaf, &[&fake]));
        assert!(new.signed(&leaf) && !old.signed(&leaf));
        // The bundle digest depends on every root and their order.
        let both = format!("{}{}", old.cert_pem(), new.cert_pem());
        let d = bundle_digest(&both).expect("digest");
        assert_ne!(d, bundle_digest(old.cert_pem()).expect("digest"));
        assert_ne!(
            d,
            bundle_digest(&format!("{}{}", new.cert_pem(), old.cert_pem())).expect("digest")
        );
    }

    #[test]
    fn csr_subject_is_ignored() {
        let root = RootCa::generate().expect("root");
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "i-am-root");
        dn.push(DnType::OrganizationalUnitName, swarm_api::MANAGER_OU);
        dn.push(DnType::OrganizationName, "evil-cluster");
        params.distinguished_name = dn;
        let csr = params
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem");
        let cert = root
            .sign_csr(&csr, "real-id", NodeRole::Worker, "real-cluster", DAY_MS)
            .expect("sign");
        let id = identity_from_cert_der(&pem::cert_der(&cert).expect("der")).expect("id");
        assert_eq!(id.node_id, "real-id");
        assert_eq!(id.role, NodeRole::Worker);
        assert_eq!(id.cluster_id, "real-cluster");
    }

    #[test]
    fn tampered_csr_is_refused() {
        let root = RootCa::generate().expect("root");
        let (_, csr) = new_key_and_csr().expect("csr");
        // Flip one base64 character near the end of the body: that is inside the signature.
        let mut lines: Vec<String> = csr.lines().map(str::to_string).collect();
        let last_body = lines.len() - 2;
        let line = &mut lines[last_body];
        let pos = line.trim_end_matches('=').len() - 3;
        let c = line.as_bytes()[pos];
        let flipped = if c == b'A' { 'B' } else { 'A' };
        line.replace_range(pos..pos + 1, &flipped.to_string());
        let bad = lines.join("\n") + "\n";
        assert_ne!(bad, csr);
        let err = root
            .sign_csr(&bad, "n", NodeRole::Worker, "c", DAY_MS)
            .expect_err("tampered");
        assert!(matches!(err, CaError::InvalidCsr(_)), "{err}");
        assert!(err.to_string().contains("signature"), "{err}");
        assert!(root
            .sign_csr("garbage", "n", NodeRole::Worker, "c", DAY_MS)
            .is_err());
    }

    #[test]
    fn issue_returns_a_key_matching_the_certificate() {
        let root = RootCa::generate().expect("root");
        let (cert, key) = root
            .issue("m1", NodeRole::Manager, "c1", DAY_MS)
            .expect("issue");
        let creds = crate::NodeCredentials::from_pems(cert, key, root.cert_pem().into())
            .expect("key matches");
        assert_eq!(creds.node_id, "m1");
        assert_eq!(creds.role, NodeRole::Manager);
        assert!(root.issue("", NodeRole::Manager, "c1", DAY_MS).is_err());
        assert!(root.issue("m1", NodeRole::Manager, "c1", 0).is_err());
    }
}
