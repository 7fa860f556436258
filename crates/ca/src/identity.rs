//! What a certificate says about its holder (CN = node ID, OU = role, O = cluster ID) and the
//! authorization helpers gRPC servers call. Does not verify chains: tonic's TLS layer has
//! already checked the peer's certificate against the root before a request gets here.

use swarm_api::{NodeRole, MANAGER_OU, WORKER_OU};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::CaError;

/// The identity a node certificate carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub node_id: String,
    pub role: NodeRole,
    pub cluster_id: String,
}

/// The organizational unit that encodes `role` in a certificate.
pub fn role_ou(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Manager => MANAGER_OU,
        NodeRole::Worker => WORKER_OU,
    }
}

fn role_from_ou(ou: &str) -> Option<NodeRole> {
    match ou {
        MANAGER_OU => Some(NodeRole::Manager),
        WORKER_OU => Some(NodeRole::Worker),
        _ => None,
    }
}

/// Reads node ID, role and cluster ID from a DER certificate.
pub fn identity_from_cert_der(der: &[u8]) -> Result<PeerIdentity, CaError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| CaError::InvalidCertificate(e.to_string()))?;
    let subject = cert.subject();
    let node_id = single(subject, "CN (node ID)", |n| n.iter_common_name())?;
    let ou = single(subject, "OU (role)", |n| n.iter_organizational_unit())?;
    let cluster_id = single(subject, "O (cluster ID)", |n| n.iter_organization())?;
    let role = role_from_ou(&ou).ok_or_else(|| {
        CaError::Identity(format!(
            "unknown role OU {ou:?}, expected {MANAGER_OU} or {WORKER_OU}"
        ))
    })?;
    Ok(PeerIdentity {
        node_id,
        role,
        cluster_id,
    })
}

/// When the client certificate of `req` stops being valid, ms since the unix epoch (X.509 has
/// whole seconds); `None` without one. Certificates of one cluster share a validity length, so
/// a later expiry means issued later: the manager gate tells a new certificate from an old one
/// by it.
pub fn peer_cert_not_after_ms<T>(req: &tonic::Request<T>) -> Option<i64> {
    let certs = req.peer_certs()?;
    let leaf = certs.first()?;
    let (_, cert) = X509Certificate::from_der(leaf).ok()?;
    Some(cert.validity().not_after.timestamp().saturating_mul(1000))
}

/// The one value of a subject attribute; zero or several is an error, since a certificate
/// with two OUs would be ambiguous about its role.
fn single<'a, I>(
    name: &'a X509Name<'a>,
    what: &str,
    attrs: impl Fn(&'a X509Name<'a>) -> I,
) -> Result<String, CaError>
where
    I: Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
{
    let mut values = attrs(name);
    let first = values
        .next()
        .ok_or_else(|| CaError::Identity(format!("subject has no {what}")))?;
    if values.next().is_some() {
        return Err(CaError::Identity(format!(
            "subject has more than one {what}"
        )));
    }
    let s = first
        .as_str()
        .map_err(|e| CaError::Identity(format!("{what} is not a string: {e}")))?;
    if s.is_empty() {
        return Err(CaError::Identity(format!("{what} is empty")));
    }
    Ok(s.to_string())
}

/// The identity in the client certificate of a TLS request, None when the client sent none
/// (or the connection is not TLS, e.g. the local control socket).
pub fn peer_identity<T>(req: &tonic::Request<T>) -> Option<PeerIdentity> {
    let certs = req.peer_certs()?;
    // The first certificate is the client's own; the rest would be intermediates.
    let leaf = certs.first()?;
    identity_from_cert_der(leaf).ok()
}

/// Lets a request through only if its client certificate belongs to `cluster_id` and holds one
/// of the `allowed` roles.
pub fn authorize<T>(
    req: &tonic::Request<T>,
    cluster_id: &str,
    allowed: &[NodeRole],
) -> Result<PeerIdentity, tonic::Status> {
    let certs = req.peer_certs().ok_or_else(|| {
        tonic::Status::unauthenticated(
            "a client certificate signed by the cluster's root CA is required",
        )
    })?;
    let leaf = certs.first().ok_or_else(|| {
        tonic::Status::unauthenticated(
            "a client certificate signed by the cluster's root CA is required",
        )
    })?;
    let id = identity_from_cert_der(leaf)
        .map_err(|e| tonic::Status::unauthenticated(format!("client certificate: {e}")))?;
    if id.cluster_id != cluster_id {
        return Err(tonic::Status::permission_denied(format!(
            "client certificate belongs to cluster {}, not this cluster ({cluster_id})",
            id.cluster_id
        )));
    }
    if !allowed.contains(&id.role) {
        let wanted: Vec<&str> = allowed.iter().map(|r| role_ou(*r)).collect();
        return Err(tonic::Status::permission_denied(format!(
            "node {} has role {}, this call needs {}",
            id.node_id,
            role_ou(id.role),
            wanted.join(" or ")
        )));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RootCa;

    #[test]
    fn role_ou_round_trips() {
        for r in [NodeRole::Manager, NodeRole::Worker] {
            assert_eq!(role_from_ou(role_ou(r)), Some(r));
        }
        assert_eq!(role_from_ou("swarm-admin"), None);
    }

    #[test]
    fn identity_of_a_root_is_refused() {
        // The root has a CN but no OU/O: not a node identity.
        let root = RootCa::generate().expect("root");
        let err = identity_from_cert_der(root.cert_der()).expect_err("root is no node");
        assert!(err.to_string().contains("OU"), "{err}");
    }

    #[test]
    fn request_without_tls_has_no_identity() {
        let req = tonic::Request::new(());
        assert_eq!(peer_identity(&req), None);
        let st = authorize(&req, "c", &[NodeRole::Manager]).expect_err("refused");
        assert_eq!(st.code(), tonic::Code::Unauthenticated);
    }
}
