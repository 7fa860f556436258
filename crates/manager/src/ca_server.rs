//! The CA service: hands out the root certificate, and signs a joining node's CSR when it
//! presents a valid join token. The token decides the role; the node's ID is chosen here and
//! the node is recorded in the store before its certificate is returned, so a certificate
//! never names a node the cluster doesn't know.

use crate::errors::status;
use crate::proposer::Proposer;
use crate::route::{forward_to, forwarded, unreachable_leader, LeaderRoute};
use std::sync::Arc;
use swarm_api::ca_client::CaClient;
use swarm_api::ca_server::{Ca, CaServer};
use swarm_api::*;
use swarm_ca::RootCa;
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

/// How long the cluster's node certificates last.
fn cert_expiry(cluster: &Cluster) -> i64 {
    cluster
        .spec
        .as_ref()
        .and_then(|s| s.ca_config.as_ref())
        .map(|c| c.node_cert_expiry_ms)
        .filter(|ms| *ms > 0)
        .unwrap_or(defaults::NODE_CERT_EXPIRY_MS)
}

/// Signs a CSR with the cluster's root CA for `node_id` in `role`.
fn sign(cluster: &Cluster, csr: &str, node_id: &str, role: NodeRole) -> Result<String, Status> {
    let root = cluster.root_ca.clone().unwrap_or_default();
    let ca = RootCa::from_pem(
        &String::from_utf8_lossy(&root.ca_cert),
        Some(&String::from_utf8_lossy(&root.ca_key)),
    )
    .map_err(|e| Status::internal(e.to_string()))?;
    ca.sign_csr(csr, node_id, role, &cluster.id, cert_expiry(cluster))
        .map_err(|e| Status::invalid_argument(e.to_string()))
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
    /// (so promotion and demotion take effect here), refused once the node is removed. Only
    /// the replicated CA is needed, so any manager signs, leader or not.
    fn renew(
        &self,
        peer: swarm_ca::PeerIdentity,
        req: IssueNodeCertificateRequest,
    ) -> Result<IssueNodeCertificateResponse, Status> {
        let cluster = self.cluster()?;
        let root = cluster.root_ca.clone().unwrap_or_default();
        let node = self
            .store
            .view(|t| t.nodes.get(&peer.node_id).cloned())
            .ok_or_else(|| {
                Status::permission_denied(format!(
                    "node {} is not a member of this cluster",
                    peer.node_id
                ))
            })?;
        let role = NodeRole::try_from(node.role).unwrap_or(NodeRole::Worker);
        let csr = String::from_utf8(req.csr)
            .map_err(|_| Status::invalid_argument("csr: not PEM text"))?;
        let cert = sign(&cluster, &csr, &node.id, role)?;
        tracing::info!(node = %node.id, ?role, "renewed a node certificate");
        Ok(IssueNodeCertificateResponse {
            node_id: node.id,
            role: role as i32,
            certificate: cert.into_bytes(),
            root_ca: root.ca_cert,
            cluster_id: cluster.id,
        })
    }
}

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
            // Signing needs only the replicated CA: served here, never forwarded (a forwarded
            // call would carry this manager's certificate, not the caller's).
            return self.renew(peer, req.into_inner()).map(Response::new);
        }
        // Recording the new node needs the leader.
        if let Some(leader) = forward_to(self.route.as_ref(), &req)? {
            return CaClient::new(leader)
                .issue_node_certificate(forwarded(req))
                .await
                .map_err(|s| unreachable_leader(self.route.as_ref(), s));
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
        let cert = sign(&cluster, &csr, &node_id, role)?;
        let expiry = cert_expiry(&cluster);
        let hostname = if req.hostname.is_empty() {
            node_id.clone()
        } else {
            req.hostname.clone()
        };
        let node = Node {
            id: node_id.clone(),
            spec: Some(NodeSpec {
                annotations: Some(Annotations {
                    name: hostname.clone(),
                    labels: Default::default(),
                }),
                desired_role: role as i32,
                membership: NodeMembership::Accepted as i32,
                availability: NodeAvailability::Active as i32,
            }),
            description: Some(NodeDescription {
                hostname,
                ..Default::default()
            }),
            status: Some(NodeStatus {
                state: NodeState::Unknown as i32,
                message: "joined".into(),
                addr: req.addr.clone(),
            }),
            manager_status: (role == NodeRole::Manager).then(|| ManagerStatus {
                raft_id: ids::raft_id_of(&node_id),
                addr: req.addr.clone(),
                leader: false,
                reachability: Reachability::Unknown as i32,
            }),
            role: role as i32,
            certificate: Some(NodeCertificate {
                role: role as i32,
                certificate: cert.clone().into_bytes(),
                expires_at: now_ms() + expiry,
            }),
            ..Default::default()
        };
        self.proposer
            .propose(Txn::new().create(node).into_batch())
            .await
            .map_err(status)?;
        tracing::info!(node = %node_id, ?role, "issued certificate to a joining node");
        Ok(Response::new(IssueNodeCertificateResponse {
            node_id,
            role: role as i32,
            certificate: cert.into_bytes(),
            root_ca: root.ca_cert,
            cluster_id: cluster.id,
        }))
    }
}
