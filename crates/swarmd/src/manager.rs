//! Running a node by role: a manager's Raft, store, servers and leader components, and every
//! node's agent.

use crate::adapters::{agent_connect, is_leader_watch, RaftProposer, TlsPeers};
use crate::args::{Args, ExecutorArg};
use crate::autolock::LocalKeys;
use crate::force_new;
use crate::identity::{self, NodeIdentity};
use crate::lifecycle::{watch_role, CaPeers, RoleWatch};
use crate::membership::{join_raft, Membership};
use crate::metrics_http::{ManagerSource, NodeMetrics};
use crate::reachability;
use crate::renewal::{self, Renewal};
use crate::route::RaftRoute;
use anyhow::{bail, Context, Result};
use std::sync::Arc;
use std::time::Duration;
use swarm_agent::executor::docker::DockerExecutor;
use swarm_agent::{Agent, AgentConfig, ExecutorKind};
use swarm_api::*;
use swarm_ca::LiveCredentials;
use swarm_manager::ca_server::CaService;
use swarm_manager::control::ControlApi;
use swarm_manager::dispatcher::Dispatcher;
use swarm_manager::metrics::TimedProposer;
use swarm_manager::{run_leader_components, LeaderConfig, Proposer};
use swarm_raft::{RaftConfig, RaftNode};
use swarm_store::{Store, Txn};
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;

/// How one life of the node in one role ended.
pub enum Outcome {
    /// Asked to stop.
    Stopped,
    /// The managers recorded a new role; here is the certificate for it.
    RoleChanged(swarm_ca::NodeCredentials),
}

/// Runs the node in the role its certificate names until it stops or its role changes.
pub async fn run_role(
    args: &Args,
    node: &NodeIdentity,
    keys: &Arc<LocalKeys>,
    metrics: &Arc<NodeMetrics>,
    shutdown: CancellationToken,
) -> Result<Outcome> {
    // Everything of this role stops on shutdown, or when the role changes.
    let stop = shutdown.child_token();
    let advertise = args.advertise_addr();
    let mut managers = node.managers.clone();
    // The role's credentials, renewed in place (renewal.rs) and read by every server and client.
    let (swap, live) =
        swarm_ca::live_credentials(node.creds.clone()).context("loading the node certificate")?;
    let manager = if node.creds.role == NodeRole::Manager {
        let m = start_manager(args, node, &live, keys, metrics, stop.clone()).await?;
        managers.retain(|m| m != &advertise);
        managers.insert(0, advertise.clone());
        Some(m)
    } else {
        None
    };
    // The agent's own directory (it creates it too); the Docker executor keeps configs there.
    let worker_dir = args.state_dir.join("worker");
    let executor = match args.executor {
        ExecutorArg::Process => ExecutorKind::Process {
            node_id: node.creds.node_id.clone(),
        },
        ExecutorArg::Sim => ExecutorKind::Sim {
            start_delay: Duration::from_millis(args.sim_start_delay_ms),
        },
        ExecutorArg::Docker => ExecutorKind::Custom(Arc::new(
            DockerExecutor::connect(&args.engine_addr, &node.creds.node_id, &worker_dir)
                .await
                .context("--executor docker")?,
        )),
        ExecutorArg::Auto => {
            match DockerExecutor::connect(&args.engine_addr, &node.creds.node_id, &worker_dir).await
            {
                Ok(docker) => ExecutorKind::Custom(Arc::new(docker)),
                Err(e) => {
                    tracing::info!(reason = %e, "no Docker engine: tasks run as local processes (--executor process)");
                    ExecutorKind::Process {
                        node_id: node.creds.node_id.clone(),
                    }
                }
            }
        }
    };
    metrics.set_executor(match &executor {
        ExecutorKind::Process { .. } => "process",
        ExecutorKind::Sim { .. } => "sim",
        ExecutorKind::Custom(_) => "docker",
    });
    let agent = Agent::new(AgentConfig {
        state_dir: args.state_dir.clone(),
        hostname: args.hostname(),
        managers: managers.clone(),
        connect: agent_connect(live.clone()),
        executor,
        advertise_addr: advertise.clone(),
    })?;
    let ca = CaPeers {
        managers,
        hostname: args.hostname(),
        advertise,
    };
    let watcher = tokio::spawn(watch_role(
        RoleWatch {
            updates: agent.node_updates(),
            creds: live,
            ca: ca.clone(),
            keys: keys.clone(),
        },
        stop.clone(),
    ));
    tokio::spawn(renewal::run(
        Renewal {
            updates: agent.node_updates(),
            swap,
            ca,
            keys: keys.clone(),
            first_after: args.cert_renew_after_ms.map(Duration::from_millis),
        },
        stop.clone(),
    ));
    let res = agent.run(stop.clone()).await;
    stop.cancel();
    if let Some(m) = manager {
        m.stop().await;
    }
    match watcher.await {
        Ok(Some(creds)) => Ok(Outcome::RoleChanged(creds)),
        _ => res.map(|_| Outcome::Stopped).context("agent"),
    }
}

/// A running manager role: Raft and the servers, awaited on the way down so the next role
/// can bind the same address.
struct RunningManager {
    raft: RaftNode,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningManager {
    async fn stop(self) {
        for s in self.servers {
            let _ = s.await;
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

async fn start_manager(
    args: &Args,
    node: &NodeIdentity,
    live: &LiveCredentials,
    keys: &Arc<LocalKeys>,
    metrics: &Arc<NodeMetrics>,
    shutdown: CancellationToken,
) -> Result<RunningManager> {
    let creds = &node.creds;
    let advertise = args.advertise_addr();
    // Bind both listeners first: a port or socket in use is an error before anything starts.
    let tcp = TcpListener::bind(&args.listen_remote_api)
        .await
        .with_context(|| format!("--listen-remote-api {}", args.listen_remote_api))?;
    let unix = bind_unix_socket("--listen-control-api", &args.listen_control_api).await?;
    let docker_unix = match &args.listen_docker_api {
        Some(path) => Some(bind_unix_socket("--listen-docker-api", path).await?),
        None => None,
    };
    let web = match &args.listen_web {
        Some(addr) => Some(crate::web::bind(addr).await?),
        None => None,
    };

    let recovered = if args.force_new_cluster {
        if creds.role != NodeRole::Manager || node.new_cluster.is_some() {
            bail!("--force-new-cluster: this state dir holds no manager state to recover");
        }
        Some(force_new::recover_state(&args.state_dir)?)
    } else {
        None
    };
    let store = Store::new();
    let mut rcfg = RaftConfig::new(
        &args.state_dir,
        ids::raft_id_of(&creds.node_id),
        advertise.clone(),
    );
    rcfg.tick_ms = args.tick_ms;
    rcfg.heartbeat_tick = args.heartbeat_tick;
    rcfg.election_tick = args.election_tick;
    // The data key through the autolock-aware key files (the seed may be sealed).
    rcfg.data_key = Some(keys.data_key().context("opening the Raft data key")?);
    let raft = RaftNode::open(rcfg, store.clone(), Arc::new(TlsPeers(live.clone())))
        .await
        .context("opening the Raft log")?;
    let proposer: Arc<dyn Proposer> = Arc::new(TimedProposer {
        inner: Arc::new(RaftProposer(raft.clone())),
        metrics: metrics.manager.clone(),
    });

    let peers = TlsPeers(live.clone());
    let route: Arc<dyn swarm_manager::LeaderRoute> = Arc::new(RaftRoute {
        leadership: raft.leadership(),
        peers: peers.clone(),
    });
    let dispatcher = Dispatcher::new(
        store.clone(),
        proposer.clone(),
        creds.cluster_id.clone(),
        advertise.clone(),
        route.clone(),
    );
    let ca = CaService::new(store.clone(), proposer.clone(), route.clone());
    let control = ControlApi::new(store.clone(), proposer.clone(), route.clone());
    let logs = swarm_manager::logbroker::LogBroker::new(store.clone(), dispatcher.clone(), route);
    let membership = Membership {
        raft: raft.clone(),
        store: store.clone(),
        proposer: proposer.clone(),
        cluster_id: creds.cluster_id.clone(),
    };

    // Our own TLS acceptor, not tonic's `tls_config`: it serves whatever certificate is current,
    // so renewals take effect without a restart (swarm_ca::tls_incoming).
    let (incoming, acceptor) = swarm_ca::tls_incoming(
        tcp,
        live.server_config().context("TLS configuration")?,
        shutdown.clone(),
    );
    let remote = Server::builder()
        .add_service(InterceptedService::new(
            raft.grpc_service(),
            managers_only(creds.cluster_id.clone(), store.clone()),
        ))
        .add_service(dispatcher.clone().into_service())
        // Agents' side of the log broker: any node's certificate, checked by the broker.
        .add_service(logs.agent_service())
        .add_service(InterceptedService::new(
            membership.into_service(),
            managers_only(creds.cluster_id.clone(), store.clone()),
        ))
        .add_service(InterceptedService::new(
            control.clone().into_service(),
            managers_only(creds.cluster_id.clone(), store.clone()),
        ))
        .add_service(InterceptedService::new(
            logs.logs_service(),
            managers_only(creds.cluster_id.clone(), store.clone()),
        ))
        .add_service(ca.into_service())
        .add_service(health_service())
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
    let remote_server = tokio::spawn(async move {
        if let Err(e) = remote.await {
            tracing::error!(error = %e, "remote API server stopped");
        }
    });
    if let Some(new) = &node.new_cluster {
        raft.bootstrap().await.context("bootstrapping Raft")?;
        create_cluster(&raft, proposer.as_ref(), node, &new.root, args).await?;
        identity::save_new(&args.state_dir, creds, &advertise)?;
        tracing::info!(cluster = %creds.cluster_id, "created a new cluster");
    } else if let Some(state) = recovered {
        raft.bootstrap()
            .await
            .context("--force-new-cluster: bootstrapping Raft")?;
        let mut leadership = raft.leadership();
        tokio::time::timeout(
            Duration::from_secs(30),
            leadership.wait_for(|l| l.is_leader),
        )
        .await
        .context("--force-new-cluster: waiting to lead")?
        .context("--force-new-cluster: waiting to lead")?;
        force_new::reseed(
            proposer.as_ref(),
            state,
            &creds.node_id,
            raft.raft_id(),
            &advertise,
        )
        .await?;
        tracing::warn!("this manager now leads a new one-manager cluster with the recovered state");
    } else if !raft.has_state() {
        // A manager that joined with the manager token: become a Raft member before serving.
        join_raft(&peers, &node.managers, &advertise).await?;
    }
    // Operators get the control socket only once the cluster exists: never a half-made one.
    let local = Server::builder()
        .layer(metrics.rpc_layer())
        .add_service(control.clone().into_service())
        .add_service(crate::autolock::already_unlocked())
        .add_service(logs.logs_service())
        .add_service(health_service())
        .serve_with_incoming_shutdown(
            UnixListenerStream::new(unix),
            shutdown.clone().cancelled_owned(),
        );
    let socket_path = args.listen_control_api.clone();
    let local_server = tokio::spawn(async move {
        if let Err(e) = local.await {
            tracing::error!(error = %e, "control API server stopped");
        }
        let _ = std::fs::remove_file(&socket_path);
    });
    let mut servers = vec![acceptor, remote_server, local_server];
    if let (Some(listener), Some(path)) = (docker_unix, args.listen_docker_api.clone()) {
        // A translation layer over the same control API the socket above serves.
        let backend = swarm_engine_api::Backend::new(
            Arc::new(control.clone()),
            swarm_engine_api::LocalNode {
                node_id: creds.node_id.clone(),
                hostname: args.hostname(),
                addr: advertise.clone(),
            },
        );
        let stop = shutdown.clone();
        servers.push(tokio::spawn(async move {
            swarm_engine_api::serve(listener, backend, stop).await;
            let _ = std::fs::remove_file(&path);
        }));
        tracing::info!(docker = %args.listen_docker_api.as_ref().map(|p| p.display().to_string()).unwrap_or_default(), "Docker API subset serving");
    }

    tokio::spawn(crate::autolock::follow(
        store.clone(),
        raft.clone(),
        keys.clone(),
        shutdown.clone(),
    ));
    metrics.attach_manager(
        ManagerSource {
            store: store.clone(),
            raft: raft.clone(),
            dispatcher: dispatcher.clone(),
            node_id: creds.node_id.clone(),
        },
        shutdown.clone(),
    );
    if let Some(listener) = web {
        crate::web::serve(listener, store.clone(), shutdown.clone());
    }
    tokio::spawn(reachability::run(
        store.clone(),
        proposer.clone(),
        peers,
        creds.node_id.clone(),
        is_leader_watch(&raft),
        shutdown.clone(),
    ));
    tokio::spawn(crate::roles::run(
        store.clone(),
        proposer.clone(),
        raft.clone(),
        is_leader_watch(&raft),
        shutdown.clone(),
    ));
    tokio::spawn(run_leader_components(
        LeaderConfig {
            store,
            proposer,
            dispatcher,
            node_id: creds.node_id.clone(),
            metrics: metrics.manager.clone(),
        },
        is_leader_watch(&raft),
        shutdown,
    ));
    tracing::info!(remote = %args.listen_remote_api, control = %args.listen_control_api.display(), "manager serving");
    Ok(RunningManager { raft, servers })
}

/// Binds an owner-only unix socket at `path`; `flag` names the option in errors.
pub(crate) async fn bind_unix_socket(flag: &str, path: &std::path::Path) -> Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("{flag} {}", path.display()))?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            bail!(
                "{flag} {}: socket is in use by another process",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let l = UnixListener::bind(path).with_context(|| format!("{flag} {}", path.display()))?;
    set_owner_only(path)?;
    Ok(l)
}

fn set_owner_only(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("securing {}", path.display()))
}

/// Writes the first objects of a new cluster: the cluster (root CA, join tokens, defaults)
/// and this manager's node.
async fn create_cluster(
    raft: &RaftNode,
    proposer: &dyn Proposer,
    node: &NodeIdentity,
    root: &swarm_ca::RootCa,
    args: &Args,
) -> Result<()> {
    let mut leadership = raft.leadership();
    tokio::time::timeout(
        Duration::from_secs(30),
        leadership.wait_for(|l| l.is_leader),
    )
    .await
    .context("waiting to lead the new cluster")?
    .context("waiting to lead the new cluster")?;
    let creds = &node.creds;
    let key = root.key_pem().context("root CA without key")?;
    let cluster = Cluster {
        id: creds.cluster_id.clone(),
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
                heartbeat_tick: args.heartbeat_tick,
                election_tick: args.election_tick,
            }),
            dispatcher: Some(DispatcherConfig {
                heartbeat_period_ms: defaults::HEARTBEAT_PERIOD_MS,
            }),
            ca_config: Some(CaConfig {
                node_cert_expiry_ms: defaults::NODE_CERT_EXPIRY_MS,
            }),
            encryption: Some(EncryptionConfig {
                auto_lock_managers: false,
            }),
        }),
        root_ca: Some(RootCa {
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
    };
    let hostname = args.hostname();
    let me = Node {
        id: creds.node_id.clone(),
        meta: None,
        spec: Some(NodeSpec {
            annotations: Some(Annotations {
                name: hostname.clone(),
                labels: Default::default(),
            }),
            desired_role: NodeRole::Manager as i32,
            membership: NodeMembership::Accepted as i32,
            availability: NodeAvailability::Active as i32,
        }),
        description: Some(NodeDescription {
            hostname,
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: NodeState::Unknown as i32,
            message: String::new(),
            addr: args.advertise_addr(),
        }),
        manager_status: Some(ManagerStatus {
            raft_id: raft.raft_id(),
            addr: args.advertise_addr(),
            leader: true,
            reachability: Reachability::Reachable as i32,
        }),
        role: NodeRole::Manager as i32,
        certificate: Some(NodeCertificate {
            role: NodeRole::Manager as i32,
            certificate: creds.cert_pem.clone().into_bytes(),
            expires_at: now_ms() + defaults::NODE_CERT_EXPIRY_MS,
            signer_digest: root.digest(),
            trust_digest: swarm_ca::bundle_digest(root.cert_pem())?,
            status: CertificateStatus::Issued as i32,
        }),
    };
    proposer
        .propose(Txn::new().create(cluster).create(me).into_batch())
        .await
        .context("writing the new cluster")?;
    Ok(())
}

/// Manager-to-manager calls (Raft, membership, forwarded control calls): the caller must
/// present a `swarm-manager` certificate of this cluster AND still be recorded as a manager,
/// so a demoted or removed manager's old certificate is refused before anything is read.
fn managers_only(
    cluster_id: String,
    store: Store,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |req| {
        let peer = swarm_ca::authorize(&req, &cluster_id, &[NodeRole::Manager])?;
        // A manager still catching up (nothing replicated yet) can only go by the certificate.
        let member = store.view(|t| {
            t.nodes.is_empty()
                || t.nodes
                    .get(&peer.node_id)
                    .is_some_and(|n| n.role == NodeRole::Manager as i32)
        });
        if !member {
            return Err(tonic::Status::permission_denied(format!(
                "node {} is no longer a manager of this cluster",
                peer.node_id
            )));
        }
        Ok(req)
    }
}

/// Health: SERVING while the process runs (readiness probes, `swarmctl` checks).
fn health_service() -> health_server::HealthServer<Health> {
    health_server::HealthServer::new(Health)
}

pub struct Health;

#[tonic::async_trait]
impl health_server::Health for Health {
    async fn check(
        &self,
        _req: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }
}
