//! The join flow a new node runs: fetch the root CA without trusting the manager yet, check it
//! against the join token's digest, then have the manager sign a fresh key over TLS that trusts
//! only that root. Owns no state: the caller saves the returned credentials.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use swarm_api::ca_client::CaClient;
use swarm_api::{GetRootCaCertificateRequest, IssueNodeCertificateRequest};
use tonic::transport::{Channel, Endpoint};

use crate::error::{error_chain, is_timeout};
use crate::root::{digest_of_der, new_key_and_csr, signed_by};
use crate::tls::{anonymous_client_tls, trust_any_server_config};
use crate::{identity_from_cert_der, parse_join_token, pem, CaError, NodeCredentials};

/// How long each network step of a join may take, so an unreachable `--join-addr` ends with
/// an error rather than a hang.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Joins the cluster whose manager listens at `addr` (host:port) with `token`; returns the
/// credentials the manager issued. `hostname` and `advertise_addr` are recorded by the manager.
pub async fn join(
    addr: &str,
    token: &str,
    hostname: &str,
    advertise_addr: &str,
) -> Result<NodeCredentials, CaError> {
    let token_parts = parse_join_token(token)?;
    // Accept "https://host:port" too: users paste either form.
    let addr = addr
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');

    let root_pem = fetch_root_unverified(addr).await?;
    let root_der = pem::cert_der(&root_pem).map_err(|e| bad(addr, format!("root CA: {e}")))?;
    let actual = digest_of_der(&root_der);
    if actual != token_parts.ca_digest {
        return Err(CaError::DigestMismatch {
            expected: token_parts.ca_digest,
            actual,
        });
    }

    let (key_pem, csr_pem) = new_key_and_csr()?;
    let channel = step(
        addr,
        "TLS connection",
        Endpoint::from_shared(format!("https://{addr}"))
            .map_err(|e| unreachable(addr, &e))?
            .tls_config(anonymous_client_tls(&root_pem))
            .map_err(|e| unreachable(addr, &e))?
            .connect_timeout(JOIN_TIMEOUT)
            .timeout(JOIN_TIMEOUT)
            .connect(),
    )
    .await?
    .map_err(|e| unreachable(addr, &e))?;
    let req = IssueNodeCertificateRequest {
        csr: csr_pem.into_bytes(),
        token: token.trim().to_string(),
        hostname: hostname.to_string(),
        addr: advertise_addr.to_string(),
    };
    let resp = step(
        addr,
        "IssueNodeCertificate",
        CaClient::new(channel).issue_node_certificate(req),
    )
    .await?
    .map_err(|s| status_error(addr, "IssueNodeCertificate", "to issue a certificate", &s))?
    .into_inner();

    let cert_pem = String::from_utf8(resp.certificate)
        .map_err(|_| bad(addr, "certificate is not UTF-8 PEM".into()))?;
    check_issued(addr, &cert_pem, &root_der, &resp.node_id)?;
    // During a root rotation the manager hands out the old and new roots together; trust that
    // bundle only if it contains the root the token vouched for.
    let bundle = String::from_utf8(resp.root_ca).unwrap_or_default();
    let trust = match pem::certs_der(&bundle) {
        Ok(certs) if certs.contains(&root_der) => bundle,
        _ => root_pem,
    };
    NodeCredentials::from_pems(cert_pem, key_pem, trust).map_err(|e| bad(addr, e.to_string()))
}

/// GetRootCACertificate over TLS that accepts any server certificate: we cannot verify the
/// manager before we know the root, and the token's digest is what makes the answer trusted.
async fn fetch_root_unverified(addr: &str) -> Result<String, CaError> {
    let tls = trust_any_server_config().map_err(|e| unreachable(addr, &e))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let target = addr.to_string();
    let connect = tower::service_fn(move |_uri: http::Uri| {
        let connector = connector.clone();
        let target = target.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(&target).await?;
            tcp.set_nodelay(true)?;
            // The name is only sent as SNI; the verifier ignores it.
            let name = rustls::pki_types::ServerName::try_from(swarm_api::MANAGER_SERVER_NAME)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let tls = connector.connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    // "http" because the connector above already does TLS; tonic would add its own for https.
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| unreachable(addr, &e))?
        .connect_timeout(JOIN_TIMEOUT)
        .timeout(JOIN_TIMEOUT);
    let channel: Channel = step(
        addr,
        "TLS connection",
        endpoint.connect_with_connector(connect),
    )
    .await?
    .map_err(|e| unreachable(addr, &e))?;
    let resp = step(
        addr,
        "GetRootCACertificate",
        CaClient::new(channel).get_root_ca_certificate(GetRootCaCertificateRequest {}),
    )
    .await?
    .map_err(|s| status_error(addr, "GetRootCACertificate", "to send its root CA", &s))?
    .into_inner();
    String::from_utf8(resp.certificate).map_err(|_| bad(addr, "root CA is not UTF-8 PEM".into()))
}

/// Checks that the issued certificate is signed by the root we verified and names the node the
/// response names (`NodeCredentials::from_pems` then checks it is for our key), so a confused
/// answer fails here rather than at the first mTLS handshake.
fn check_issued(addr: &str, cert_pem: &str, root_der: &[u8], node_id: &str) -> Result<(), CaError> {
    let chain = pem::certs_der(cert_pem).map_err(|e| bad(addr, e.to_string()))?;
    let der = &chain[0];
    // Signed by the root, or (during a root rotation) by the new root whose cross-signed
    // certificate, signed by the root, comes second in the chain.
    let chained = signed_by(der, root_der)
        || chain
            .get(1)
            .is_some_and(|bridge| signed_by(der, bridge) && signed_by(bridge, root_der));
    if !chained {
        return Err(bad(
            addr,
            "issued certificate is not signed by the root CA".into(),
        ));
    }
    let id = identity_from_cert_der(der).map_err(|e| bad(addr, e.to_string()))?;
    if !node_id.is_empty() && id.node_id != node_id {
        return Err(bad(
            addr,
            format!(
                "certificate is for node {}, response says {node_id}",
                id.node_id
            ),
        ));
    }
    Ok(())
}

/// Runs one network step under [`JOIN_TIMEOUT`].
async fn step<F: Future>(addr: &str, what: &'static str, fut: F) -> Result<F::Output, CaError> {
    tokio::time::timeout(JOIN_TIMEOUT, fut)
        .await
        .map_err(|_| CaError::Timeout {
            addr: addr.to_string(),
            what,
            secs: JOIN_TIMEOUT.as_secs(),
        })
}

fn unreachable(addr: &str, err: &(dyn std::error::Error + 'static)) -> CaError {
    if is_timeout(err) {
        return CaError::Timeout {
            addr: addr.to_string(),
            what: "connection",
            secs: JOIN_TIMEOUT.as_secs(),
        };
    }
    CaError::Unreachable {
        addr: addr.to_string(),
        reason: error_chain(err),
    }
}

fn bad(addr: &str, reason: String) -> CaError {
    CaError::BadResponse {
        addr: addr.to_string(),
        reason,
    }
}

fn status_error(addr: &str, call: &'static str, what: &'static str, s: &tonic::Status) -> CaError {
    match s.code() {
        // tonic reports transport failures on a call as Unavailable.
        tonic::Code::Unavailable => CaError::Unreachable {
            addr: addr.to_string(),
            reason: error_chain(s),
        },
        tonic::Code::DeadlineExceeded => CaError::Timeout {
            addr: addr.to_string(),
            what: call,
            secs: JOIN_TIMEOUT.as_secs(),
        },
        _ => CaError::Rejected {
            addr: addr.to_string(),
            what,
            message: s.message().to_string(),
        },
    }
}
