//! A real cluster inside the bench process: managers wired as `swarmd` wires them (Raft log
//! in a state dir with fsync, mutual-TLS remote API, dispatcher, CA, control API, log broker,
//! leader components) and one `swarm_agent::Agent` per simulated node with its own certificate.
//!
//! swarmd is a binary crate, so the few adapters it defines (Raft as the proposer, the
//! leadership watch, mTLS channels, the route to the leader, the managers-only interceptor,
//! the first cluster objects) are copied here in their minimal form. Left out on purpose:
//! the control API's Unix socket (the bench calls the control API in process), membership
//! (managers are added with `add_voter` directly), manager reachability probes, role changes
//! and certificate renewal, none of which is on the path being measured.

use anyhow::{Context, Result};
use futures::future::BoxFuture;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use swarm_agent::{Agent, AgentConfig, ExecutorKind};
use swarm_api::*;
use swarm_ca::{LiveCredentials, NodeCredentials, RootCa};
use swarm_manager::ca_server::CaService;
use swarm_manager::control::ControlApi;
use swarm_manager::dispatcher::Dispatcher;
use swarm_manager::{run_leader_components, LeaderConfig, LeaderRoute, Proposer, WriteError};
use swarm_raft::{Leadership, PeerConnectError, PeerConnector, ProposeError, RaftConfig, RaftNode};
use swarm_store::{Store, Txn};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Server};

/// Certificates issued by the bench live this long: far beyond any run.
const CERT_EXPIRY_MS: i64 = 24 * 3600 * 1000;

/// Node objects are written in batches of this many (one Raft entry each).
const NODE_BATCH: usize = 500;

/// One running manager.
pub struct Manager {
    pub node_id: String,
    pub addr: String,
    pub raft: RaftNode,
    pub store: Store,
    pub control: ControlApi,
    /// The state dir (its `raft/` holds the log and snapshots).
    pub dir: PathBuf,
}

/// Raft as the manager's proposer (swarmd `adapters::RaftProposer`).
struct RaftProposer(RaftNode);

impl Proposer for RaftProposer {
    fn propose(
        &self,
        batch: StoreBatch,
    ) -> BoxFuture<'static, Result<Vec<StoreObject>, WriteError>> {
        let raft = self.0.clone();
        Box::pin(async move {
            raft.propose(batch).await.map_err(|e| match e {
                ProposeError::Apply(a) => WriteError::Refused(a),
                ProposeError::NotLeader { leader_addr, .. } => WriteError::NotLeader {
                    leader: leader_addr,
                },
                ProposeError::Unavailable(s) => WriteError::Unavailable(s),
            })
        })
    }
}

/// Whether this manager leads, from Raft's leadership (swarmd `adapters::is_leader_watch`).
fn is_leader_watch(raft: &RaftNode) -> watch::Receiver<bool> {
    let mut src = raft.leadership();
    let (tx, rx) = watch::channel(src.borrow().is_leader);
    tokio::spawn(async move {
        while src.changed().await.is_ok() {
            let l = src.borrow().is_leader;
            tx.send_if_modified(|cur| std::mem::replace(cur, l) != l);
        }
        let _ = tx.send(false);
    });
    rx
}

/// A mutual-TLS endpoint to a manager (swarmd `adapters::tls_endpoint`).
fn tls_endpoint(creds: &NodeCredentials, addr: &str) -> Result<Endpoint, PeerConnectError> {
    Endpoint::from_shared(format!("https://{addr}"))
        .and_then(|e| e.tls_config(creds.client_tls()))
        .map(|e| {
            e.connect_timeout(Duration::from_secs(5))
                .tcp_keepalive(Some(Duration::from_secs(10)))
        })
        .map_err(|source| PeerConnectError::Endpoint {
            addr: addr.to_string(),
            source,
        })
}

#[derive(Clone)]
struct TlsPeers(LiveCredentials);

impl PeerConnector for TlsPeers {
    fn channel(&self, addr: &str) -> Result<Channel, PeerConnectError> {
        Ok(tls_endpoint(&self.0.current(), addr)?.connect_lazy())
    }
}

/// The agent's way to a manager, over mutual TLS (swarmd `adapters::agent_connect`).
fn agent_connect(creds: LiveCredentials) -> swarm_agent::ConnectFn {
    Arc::new(move |addr: String| {
        let ep = tls_endpoint(&creds.current(), &addr);
        Box::pin(async move {
            ep.map_err(|e| e.to_string())?
                .connect()
                .await
                .map_err(|e| format!("{addr}: {e}"))
        })
    })
}

/// The way to the leader for forwarded calls (swarmd `route::RaftRoute`).
struct RaftRoute {
    leadership: watch::Receiver<Leadership>,
    peers: TlsPeers,
}

impl LeaderRoute for RaftRoute {
    fn leader(&self) -> Option<Result<Channel, tonic::Status>> {
        let l = self.leadership.borrow().clone();
        if l.is_leader {
            return None;
        }
        Some(match l.leader_addr {
            Some(addr) => self
                .peers
                .channel(&addr)
                .map_err(|e| tonic::Status::unavailable(e.to_string())),
            None => Err(tonic::Status::unavailable("no leader")),
        })
    }

    fn leader_addr(&self) -> Option<String> {
        let l = self.leadership.borrow();
        if l.is_leader {
            None
        } else {
            l.leader_addr.clone()
        }
    }
}

/// Manager-only services (swarmd `manager::managers_only`).
fn managers_only(
    cluster_id: String,
    store: Store,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |req| {
        let peer = swarm_ca::authorize(&req, &cluster_id, &[NodeRole::Manager])?;
        let member = store.view(|t| {
            t.nodes.is_empty()
                || t.nodes
                    .get(&peer.node_id)
                    .is_some_and(|n| n.role == NodeRole::Manager as i32)
        });
        if !member {
            return Err(tonic::Status::permission_denied("no longer a manager"));
        }
        Ok(req)
    }
}

/// Credentials for a new node of `role`, issued directly by the root (as the first manager
/// issues its own; the CA service would sign a CSR instead, with the same result).
pub fn issue(
    root: &RootCa,
    node_id: &str,
    role: NodeRole,
    cluster_id: &str,
) -> Result<LiveCredentials> {
    let (cert, key) = root.issue(node_id, role, cluster_id, CERT_EXPIRY_MS)?;
    let creds = NodeCredentials::from_pems(cert, key, root.cert_pem().to_string())?;
    // Nobody renews in the bench: the writing end can go, readers keep the last value.
    let (_swap, live) = swarm_ca::live_credentials(creds)?;
    Ok(live)
}

/// The node object the CA service writes for a joining node (ca_server.rs).
pub fn node_object(
    root: &RootCa,
    node_id: &str,
    hostname: &str,
    role: NodeRole,
    addr: &str,
    cert: &str,
) -> Node {
    Node {
        id: node_id.to_string(),
        spec: Some(NodeSpec {
            annotations: Some(Annotations {
                name: hostname.to_string(),
                labels: Default::default(),
            }),
            desired_role: role as i32,
            membership: NodeMembership::Accepted as i32,
            availability: NodeAvailability::Active as i32,
        }),
        description: Some(NodeDescription {
            hostname: hostname.to_string(),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: NodeState::Unknown as i32,
            message: "joined".into(),
            addr: addr.to_string(),
        }),
        manager_status: (role == NodeRole::Manager).then(|| ManagerStatus {
            raft_id: ids::raft_id_of(node_id),
            addr: addr.to_string(),
            leader: false,
            reachability: Reachability::Unknown as i32,
        }),
        role: role as i32,
        certificate: Some(NodeCertificate {
            role: role as i32,
            certificate: cert.as_bytes().to_vec(),
            expires_at: now_ms() + CERT_EXPIRY_MS,
            // As issued by the current root: the root rotation reconciler leaves it alone.
            signer_digest: root.digest(),
            trust_digest: swarm_ca::bundle_digest(root.cert_pem()).unwrap_or_default(),
            status: CertificateStatus::Issued as i32,
        }),
        ..Default::default()
    }
}

/// Starts one manager: Raft (not yet a member of anything), servers and leader components,
/// all on the current runtime (dropping that runtime is how the failover scenario kills it).
pub async fn start_manager(
    root: &RootCa,
    cluster_id: &str,
    dir: PathBuf,
    tick_ms: u64,
    shutdown: CancellationToken,
) -> Result<Manager> {
    let node_id = ids::new_id();
    let live = issue(root, &node_id, NodeRole::Manager, cluster_id)?;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = tcp.local_addr()?.to_string();
    let store = Store::new();
    let mut rcfg = RaftConfig::new(&dir, ids::raft_id_of(&node_id), addr.clone());
    rcfg.tick_ms = tick_ms;
    let raft = RaftNode::open(rcfg, store.clone(), Arc::new(TlsPeers(live.clone())))
        .await
        .context("opening the Raft log")?;
    let proposer: Arc<dyn Proposer> = Arc::new(RaftProposer(raft.clone()));
    let route: Arc<dyn LeaderRoute> = Arc::new(RaftRoute {
        leadership: raft.leadership(),
        peers: TlsPeers(live.clone()),
    });
    let dispatcher = Dispatcher::new(
        store.clone(),
        proposer.clone(),
        cluster_id.to_string(),
        addr.clone(),
        route.clone(),
    );
    let ca = CaService::new(store.clone(), proposer.clone(), route.clone());
    let control = ControlApi::new(store.clone(), proposer.clone(), route.clone());
    let logs = swarm_manager::logbroker::LogBroker::new(store.clone(), dispatcher.clone(), route);
    let (incoming, _acceptor) = swarm_ca::tls_incoming(
        tcp,
        live.server_config().context("TLS configuration")?,
        shutdown.clone(),
    );
    let remote = Server::builder()
        .add_service(InterceptedService::new(
            raft.grpc_service(),
            managers_only(cluster_id.to_string(), store.clone()),
        ))
        .add_service(dispatcher.clone().into_service())
        .add_service(logs.agent_service())
        .add_service(InterceptedService::new(
            control.clone().into_service(),
            managers_only(cluster_id.to_string(), store.clone()),
        ))
        .add_service(ca.into_service())
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
    tokio::spawn(async move {
        if let Err(e) = remote.await {
            eprintln!("remote API server stopped: {e}");
        }
    });
    tokio::spawn(run_leader_components(
        LeaderConfig {
            store: store.clone(),
            proposer,
            dispatcher,
            node_id: node_id.clone(),
            metrics: Default::default(),
        },
        is_leader_watch(&raft),
        shutdown,
    ));
    Ok(Manager {
        node_id,
        addr,
        raft,
        store,
        control,
        dir,
    })
}

/// The cluster object as swarmd's `create_cluster` writes it, with the dispatcher's heartbeat
/// period set to `heartbeat_ms`.
fn cluster_object(root: &RootCa, cluster_id: &str, heartbeat_ms: i64) -> Result<Cluster> {
    let key = root.key_pem().context("root CA without key")?;
    Ok(Cluster {
        id: cluster_id.to_string(),
        meta: None,
        spec: Some(ClusterSpec {
            annotations: Some(Annotations {
                name: DEFAULT_CLUSTER_NAME.into(),
                labels: Default::default(),
            }),
            orchestration: Some(OrchestrationConfig {
                task_history_retention_limit: defaults::TASK_HISTORY_RETENTION,
            }),
            raft: Some(swarm_api::RaftConfig {
                snapshot_interval: defaults::SNAPSHOT_INTERVAL,
                log_entries_for_slow_followers: defaults::LOG_ENTRIES_FOR_SLOW_FOLLOWERS,
                heartbeat_tick: defaults::HEARTBEAT_TICK,
                election_tick: defaults::ELECTION_TICK,
            }),
            dispatcher: Some(DispatcherConfig {
                heartbeat_period_ms: heartbeat_ms,
            }),
            ca_config: Some(CaConfig {
                node_cert_expiry_ms: defaults::NODE_CERT_EXPIRY_MS,
            }),
            encryption: Some(EncryptionConfig {
                auto_lock_managers: false,
            }),
        }),
        root_ca: Some(swarm_api::RootCa {
            ca_key: key.as_bytes().to_vec(),
            ca_cert: root.cert_pem().as_bytes().to_vec(),
            ca_cert_hash: root.digest(),
            join_tokens: Some(JoinTokens {
                worker: swarm_ca::generate_join_token(root),
                manager: swarm_ca::generate_join_token(root),
            }),
            root_rotation: None,
        }),
        manager_unlock_key: String::new(),
    })
}

/// Bootstraps Raft on the first of the started managers, writes the cluster and manager
/// nodes, and adds the others as voters. The first one leads afterwards.
pub async fn form_cluster(
    root: &RootCa,
    cluster_id: &str,
    ms: &[Manager],
    heartbeat_ms: i64,
) -> Result<()> {
    let leader = ms[0].raft.clone();
    leader.bootstrap().await.context("bootstrapping Raft")?;
    tokio::time::timeout(
        Duration::from_secs(30),
        leader.leadership().wait_for(|l| l.is_leader),
    )
    .await
    .context("waiting to lead")?
    .context("waiting to lead")?;
    let mut txn = Txn::new().create(cluster_object(root, cluster_id, heartbeat_ms)?);
    for (i, m) in ms.iter().enumerate() {
        let mut node = node_object(
            root,
            &m.node_id,
            &format!("manager-{i}"),
            NodeRole::Manager,
            &m.addr,
            "",
        );
        if let Some(s) = node.manager_status.as_mut() {
            s.leader = i == 0;
        }
        txn = txn.create(node);
    }
    leader
        .propose(txn.into_batch())
        .await
        .context("writing the cluster")?;
    for m in &ms[1..] {
        leader
            .add_voter(m.raft.raft_id(), &m.addr)
            .await
            .context("adding a manager")?;
    }
    Ok(())
}

/// A simulated node: its ID and credentials, before its agent starts.
pub struct SimNode {
    pub node_id: String,
    pub hostname: String,
    pub creds: LiveCredentials,
}

/// Issues `count` worker certificates and records their nodes in the store, in batches.
pub async fn register_nodes(
    root: &RootCa,
    cluster_id: &str,
    leader: &RaftNode,
    count: usize,
) -> Result<Vec<SimNode>> {
    let mut nodes = Vec::with_capacity(count);
    for i in 0..count {
        let node_id = ids::new_id();
        let creds = issue(root, &node_id, NodeRole::Worker, cluster_id)?;
        nodes.push(SimNode {
            node_id,
            hostname: format!("sim-{i:05}"),
            creds,
        });
    }
    for chunk in nodes.chunks(NODE_BATCH) {
        let mut txn = Txn::new();
        for n in chunk {
            let cert = n.creds.current().cert_pem;
            txn = txn.create(node_object(
                root,
                &n.node_id,
                &n.hostname,
                NodeRole::Worker,
                "",
                &cert,
            ));
        }
        leader
            .propose(txn.into_batch())
            .await
            .context("writing nodes")?;
    }
    Ok(nodes)
}

/// Starts the node's agent with the sim executor on the current runtime. Its tasks (session,
/// worker, reporter, TLS connections) live on that runtime, so shutting the runtime down is
/// how the bench makes nodes vanish without a goodbye.
pub fn start_agent(
    node: &SimNode,
    managers: Vec<String>,
    state_dir: PathBuf,
    sim_start_delay: Duration,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let agent = Agent::new(AgentConfig {
        state_dir,
        hostname: node.hostname.clone(),
        managers,
        connect: agent_connect(node.creds.clone()),
        executor: ExecutorKind::Sim {
            start_delay: sim_start_delay,
        },
        // Nothing dials an agent in this cluster; the address is only recorded.
        advertise_addr: "127.0.0.1:0".into(),
    })?;
    let id = node.node_id.clone();
    Ok(tokio::spawn(async move {
        if let Err(e) = agent.run(shutdown).await {
            eprintln!("agent {id}: {e}");
        }
    }))
}
