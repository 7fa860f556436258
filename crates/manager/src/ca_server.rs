//! The CA service: hands out the root certificate, and signs a joining node's CSR when it
//! presents a valid join token. The token decides the role; the node's ID is chosen here and
//! the node is recorded in the store before its certificate is returned, so a certificate
//! never names a node the cluster doesn't know.

use crate::ca_signer::Signer;
use crate::errors::status;
use crate::proposer::Proposer;
use crate::route::{forward_to, forwarded, on_leader, LeaderRoute, FORWARDED};
use std::sync::Arc;
use swarm_api::ca_client::CaClient;
use swarm_api::ca_server::{Ca, CaServer};
use swarm_api::*;
use swarm_store::{Store, Txn};
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct CaService {
    store: Store,
    proposer: Arc<dyn Proposer>,
    route: Arc<dyn LeaderRoute>,
}

impl CaService {
    pub fn new(
        store: Store,
        proposer: Arc<dyn Proposer>,
        route: Arc<dyn LeaderRoute>,
    ) -> CaService {
        CaService {
            store,
            proposer,
            route,
        }
    }

    pub fn into_service(self) -> CaServer<CaService> {
        CaServer::new(self)
    }

    fn cluster(&self) -> Result<Cluster, Status> {
        self.store
            .view(|t| t.default_cluster().cloned())
            .ok_or_else(|| Status::unavailable("the cluster is not initialised yet"))
    }
}

/// Constant-time comparison, so a token can't be guessed byte by byte from response times.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl CaService {
    /// A member renews its certificate: same node ID, the role the cluster now records for it
    /// (so promotion and demotion take effect here), refused once the node is removed. The
    /// leader signs and records the certificate in the node object in one go, which is how a
    /// root rotation knows who still has to renew. Without a reachable leader, any manager
    /// signs on its own (the replicated CA suffices) and the record catches up later.
    async fn renew(
        &self,
        node_id: String,
        req: Request<IssueNodeCertificateRequest>,
    ) -> Result<IssueNodeCertificateResponse, Status> {
        match self.route.leader() {
            None => self.renew_and_record(&node_id, req.into_inner()).await,
            Some(Ok(leader)) if !req.metadata().contains_key(FORWARDED) => {
                let mut fwd = forwarded(Request::new(req.get_ref().clone()));
                let id = node_id.parse().map_err(|_| {
                    Status::invalid_argument("node ID: not valid in request metadata")
                })?;
                fwd.metadata_mut().insert(RENEW_FOR, id);
                let mut client = CaClient::new(leader);
                let call = client.issue_node_certificate(fwd);
                match on_leader(self.route.as_ref(), call).await {
                    Ok(r) => Ok(r.into_inner()),
                    Err(s) if s.code() == tonic::Code::Unavailable => {
                        tracing::warn!(node = %node_id, reason = %s.message(), "leader unreachable: renewing without recording the certificate");
                        self.sign_only(&node_id, req.into_inner())
                    }
                    Err(s) => Err(s),
                }
            }
            _ => self.sign_only(&node_id, req.into_inner()),
        }
    }

    fn member(&self, node_id: &str) -> Result<Node, Status> {
        self.store
            .view(|t| t.nodes.get(node_id).cloned())
            .ok_or_else(|| {
                Status::permission_denied(format!("node {node_id} is not a member of this cluster"))
            })
    }

    fn sign_only(
        &self,
        node_id: &str,
        req: IssueNodeCertificateRequest,
    ) -> Result<IssueNodeCertificateResponse, Status> {
        let cluster = self.cluster()?;
        let node = self.member(node_id)?;
        let role = NodeRole::try_from(node.role).unwrap_or(NodeRole::Worker);
        let csr = String::from_utf8(req.csr)
            .map_err(|_| Status::invalid_argument("csr: not PEM text"))?;
        let signer = Signer::of(&cluster)?;
        let cert = signer.sign(&csr, &node.id, role, &cluster.id)?;
        Ok(IssueNodeCertificateResponse {
            node_id: node.id,
            role: role as i32,
            certificate: cert.into_bytes(),
            root_ca: signer.bundle_pem.into_bytes(),
            cluster_id: cluster.id,
        })
    }

    async fn renew_and_record(
        &self,
        node_id: &str,
        req: IssueNodeCertificateRequest,
    ) -> Result<IssueNodeCertificateResponse, Status> {
        // A node update racing ours (status, role) makes the write stale: re-read and retry.
        let mut last = None;
        for _ in 0..5 {
            let cluster = self.cluster()?;
            let mut node = self.member(node_id)?;
            let role = NodeRole::try_from(node.role).unwrap_or(NodeRole::Worker);
            let csr = String::from_utf8(req.csr.clone())
                .map_err(|_| Status::invalid_argument("csr: not PEM text"))?;
            let signer = Signer::of(&cluster)?;
            let cert = signer.sign(&csr, &node.id, role, &cluster.id)?;
            node.certificate = Some(signer.record(role, &cert));
            let written = self
                .proposer
                .propose(Txn::new().update(node.clone()).into_batch())
                .await;
            match written {
                Ok(_) => tracing::info!(node = %node.id, ?role, "renewed a node certificate"),
                Err(crate::WriteError::Refused(e)) => {
                    last = Some(e.to_string());
                    continue;
                }
                // Signed but not recorded: the node still gets its certificate; a rotation in
                // progress will ask it again once the record can be written.
                Err(e) => {
                    tracing::warn!(node = %node.id, error = %e, "renewed a node certificate without recording it")
                }
            }
            return Ok(IssueNodeCertificateResponse {
                node_id: node.id,
                role: role as i32,
                certificate: cert.into_bytes(),
                root_ca: signer.bundle_pem.into_bytes(),
                cluster_id: cluster.id,
            });
        }
        Err(Status::aborted(format!(
            "recording the renewed certificate: {}",
            last.unwrap_or_default()
        )))
    }
}

/// Metadata on a renewal a follower forwards to the leader: the node it is for. Trusted only
/// from a manager (the forwarding follower), never from a worker.
const RENEW_FOR: &str = "x-swarm-renew-for";

#[tonic::async_trait]
impl Ca for CaService {
    async fn get_root_ca_certificate(
        &self,
        _req: Request<GetRootCaCertificateRequest>,
    ) -> Result<Response<GetRootCaCertificateResponse>, Status> {
        let cluster = self.cluster()?;
        let cert = cluster.root_ca.map(|r| r.ca_cert).unwrap_or_default();
        Ok(Response::new(GetRootCaCertificateResponse {
            certificate: cert,
        }))
    }

    async fn issue_node_certificate(
        &self,
        req: Request<IssueNodeCertificateRequest>,
    ) -> Result<Response<IssueNodeCertificateResponse>, Status> {
        let renewing = req.get_ref().token.is_empty();
        let caller = renewing
            .then(|| {
                self.cluster().map(|c| {
                    swarm_ca::authorize(&req, &c.id, &[NodeRole::Worker, NodeRole::Manager])
                })
            })
            .transpose()?
            .transpose()?;
        if let Some(peer) = caller {
            let forwarded_for = req
                .metadata()
                .get(RENEW_FOR)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let node_id = match forwarded_for {
                Some(id)
                    if peer.role == NodeRole::Manager && req.metadata().contains_key(FORWARDED) =>
                {
                    // A follower passing on a member's renewal.
                    self.member(&peer.node_id)
                        .ok()
                        .filter(|n| n.role == NodeRole::Manager as i32)
                        .ok_or_else(|| {
                            Status::permission_denied(format!(
                                "node {} is no longer a manager of this cluster",
                                peer.node_id
                            ))
                        })?;
                    id
                }
                _ => peer.node_id,
            };
            return self.renew(node_id, req).await.map(Response::new);
        }
        // Recording the new node needs the leader.
        if let Some(leader) = forward_to(self.route.as_ref(), &req)? {
            let mut client = CaClient::new(leader);
            let call = client.issue_node_certificate(forwarded(req));
            return on_leader(self.route.as_ref(), call).await;
        }
        let req = req.into_inner();
        let cluster = self.cluster()?;
        let root = cluster.root_ca.clone().unwrap_or_default();
        swarm_ca::parse_join_token(&req.token)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let tokens = root.join_tokens.clone().unwrap_or_default();
        let role = if same(&req.token, &tokens.worker) {
            NodeRole::Worker
        } else if same(&req.token, &tokens.manager) {
            NodeRole::Manager
        } else {
            return Err(Status::permission_denied(
                "join token: not valid for this cluster",
            ));
        };
        let csr = String::from_utf8(req.csr)
            .map_err(|_| Status::invalid_argument("csr: not PEM text"))?;
        let node_id = ids::new_id();
        let signer = Signer::of(&cluster)?;
        let cert = signer.sign(&csr, &node_id, role, &cluster.id)?;
        let hostname = if req.hostname.is_empty() {
            node_id.clone()
        } else {
            req.hostname.clone()
        };
        let node = crate::objects::joined_node(
            &node_id,
            &hostname,
            role,
            &req.addr,
            signer.record(role, &cert),
        );
        self.proposer
            .propose(Txn::new().create(node).into_batch())
            .await
            .map_err(status)?;
        tracing::info!(node = %node_id, ?role, "issued certificate to a joining node");
        Ok(Response::new(IssueNodeCertificateResponse {
            node_id,
            role: role as i32,
            certificate: cert.into_bytes(),
            root_ca: signer.bundle_pem.into_bytes(),
            cluster_id: cluster.id,
        }))
    }
}
