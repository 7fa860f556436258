//! PEM <-> DER helpers shared by the other modules. Owns only encoding; no policy.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::CaError;

/// The first certificate in a PEM string, as DER.
pub(crate) fn cert_der(pem: &str) -> Result<Vec<u8>, CaError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.to_vec())
        .map_err(|e| CaError::InvalidCertificate(format!("not a PEM certificate ({e})")))
}

/// The private key in a PEM string (PKCS#8, SEC1 or PKCS#1).
pub(crate) fn key_der(pem: &str) -> Result<PrivateKeyDer<'static>, CaError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| CaError::InvalidKey(format!("not a PEM private key ({e})")))
}
