//! TLS configurations: tonic server/client configs from a node's credentials, the anonymous
//! client used during a join, and the "trust anything" rustls config used for exactly one call
//! (fetching the root CA whose digest the join token then checks). Uses the ring provider only.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::credentials::NodeCredentials;
use crate::{pem, CaError};

/// Installs rustls' ring provider as the process default, if none is installed yet. Binaries
/// and test harnesses call it first thing, so no code path can pick another provider.
pub fn install_ring_provider() {
    // An error only means a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl NodeCredentials {
    /// Server config for the remote API: presents this node's certificate and verifies client
    /// certificates against the root when sent. Clients without one are let in because the
    /// CA's join calls need none; every other service must call [`crate::authorize`].
    pub fn server_tls(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.root_pem))
            .client_auth_optional(true)
    }

    /// The same policy as [`Self::server_tls`] as a plain rustls config, for servers that run
    /// their own `TlsAcceptor` (e.g. to swap certificates without restarting) and feed tonic
    /// through `serve_with_incoming`; `request.peer_certs()` keeps working there.
    pub fn server_rustls_config(&self) -> Result<ServerConfig, CaError> {
        let certified = certified_key(self)?;
        server_config_with(
            client_verifier(&self.root_pem)?,
            Arc::new(rustls::sign::SingleCertAndKey::from(certified)),
        )
    }

    /// The same policy as [`Self::client_tls`] as a plain rustls config, for callers that run
    /// their own `TlsConnector` (the fuzz targets' mutual-TLS handshake).
    pub fn client_rustls_config(&self) -> Result<ClientConfig, CaError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CaError::Tls(e.to_string()))?
            .with_root_certificates(root_store(&self.root_pem)?)
            .with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
                certified_key(self)?,
            )));
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(cfg)
    }

    /// Client config for talking to managers: trusts only the cluster root, presents this
    /// node's certificate, and checks the server name every manager certificate carries.
    /// Use with an `https://host:port` endpoint (tonic only applies TLS to https URIs).
    pub fn client_tls(&self) -> ClientTlsConfig {
        anonymous_client_tls(&self.root_pem)
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }
}

/// The node's certificate chain (leaf, then any intermediate) with its key, in rustls' form.
pub(crate) fn certified_key(creds: &NodeCredentials) -> Result<CertifiedKey, CaError> {
    let chain = pem::certs_der(&creds.cert_pem)?
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let key = pem::key_der(&creds.key_pem)?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| CaError::Tls(format!("node certificate: {e}")))
}

/// Client certificates are verified against every root of `roots_pem` (one root, or the old
/// and new roots during a rotation) when sent; none is required, since the CA's join calls
/// come from nodes that have no certificate yet.
pub(crate) fn client_verifier(roots_pem: &str) -> Result<Arc<dyn ClientCertVerifier>, CaError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(roots_pem)?), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| CaError::Tls(format!("client verifier: {e}")))
}

/// Every root of `roots_pem`, as rustls trusts them.
fn root_store(roots_pem: &str) -> Result<RootCertStore, CaError> {
    let mut roots = RootCertStore::empty();
    for der in pem::certs_der(roots_pem)? {
        roots
            .add(CertificateDer::from(der))
            .map_err(|e| CaError::Tls(format!("root CA: {e}")))?;
    }
    Ok(roots)
}

/// The remote API's server policy around a certificate resolver and a client verifier:
/// TLS 1.2+, HTTP/2 only.
pub(crate) fn server_config_with(
    verifier: Arc<dyn ClientCertVerifier>,
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<ServerConfig, CaError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CaError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

/// Trusts only `root_pem` and presents no certificate: for IssueNodeCertificate during a join.
pub fn anonymous_client_tls(root_pem: &str) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(root_pem))
        .domain_name(swarm_api::MANAGER_SERVER_NAME)
}

/// A rustls client config that accepts any server certificate (while still checking that the
/// server holds the key for the certificate it shows). Only for fetching the root CA during a
/// join: what it returns is trusted only after its digest matches the join token.
pub(crate) fn trust_any_server_config() -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert { provider }))
        .with_no_client_auth();
    // tonic servers speak HTTP/2 only.
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

#[derive(Debug)]
struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
