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

/// Every certificate in a PEM string (a chain or a trust bundle), as DER, in order; at least one.
pub(crate) fn certs_der(pem: &str) -> Result<Vec<Vec<u8>>, CaError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaError::InvalidCertificate(format!("not a PEM certificate ({e})")))?;
    if certs.is_empty() {
        return Err(CaError::InvalidCertificate(
            "no PEM certificate found".into(),
        ));
    }
    Ok(certs)
}

/// The private key in a PEM string (PKCS#8, SEC1 or PKCS#1).
pub(crate) fn key_der(pem: &str) -> Result<PrivateKeyDer<'static>, CaError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| CaError::InvalidKey(format!("not a PEM private key ({e})")))
}
