//! A manager role: Raft over the state dir, the store it applies to, the remote API (mutual
//! TLS: Raft, dispatcher, CA, membership, forwarded control and log calls), the control
//! socket, the optional Docker API socket and web view, and the leader-only components. All
//! of it runs as tasks of the role's owner; [`RunningManager::stop`] waits for them, then
//! shuts Raft down, so the next role can bind the same addresses.

use crate::auth::{managers_only, raft_peers_only};
use crate::autolock::LocalKeys;
use crate::bootstrap::create_cluster;
use crate::config::ControlSocket;
use crate::error::{bail, Context, Result};
use crate::force_new;
use crate::health::health_service;
use crate::identity::{self, NodeIdentity};
use crate::info::ManagerHandle;
use crate::membership::{join_raft, rejoin_when_removed, Membership};
use crate::metrics_http::{ManagerSource, NodeMetrics};
use crate::peers::TlsPeers;
use crate::role_env::RoleEnv;
use crate::sockets::bind_unix_socket;
use std::sync::Arc;
use std::time::Duration;
use swarm_api::*;
use swarm_ca::LiveCredentials;
use swarm_manager::ca_server::CaService;
use swarm_manager::control::ControlApi;
use swarm_manager::dispatcher::Dispatcher;
use swarm_manager::metrics::TimedProposer;
use swarm_manager::{run_leader_components, LeaderConfig, Proposer};
use swarm_raft::{RaftConfig, RaftNode};
use swarm_store::Store;
use swarm_tasks::TaskOwner;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;

/// A running manager role.
pub(crate) struct RunningManager {
    raft: RaftNode,
    /// What the node lends its callers while the role runs.
    pub handle: ManagerHandle,
    /// Gets the error if Raft stopped by itself (see [`watch_raft_failure`]).
    failure: oneshot::Receiver<swarm_raft::RaftError>,
}

impl RunningManager {
    /// Waits for every task of the role (servers first of all), then shuts Raft down.
    /// Returns the error Raft stopped on by itself, if it did: the role ended because of it.
    pub async fn stop(mut self, tasks: &TaskOwner) -> Option<swarm_raft::RaftError> {
        let stopping = tasks.stop();
        tokio::pin!(stopping);
        // Servers are bounded (`serving`); a task still running past that is one that does
        // not watch its token, and is named here by its absence from the logs that follow.
        let slow = crate::serving::STOP_GRACE * 2;
        if tokio::time::timeout(slow, &mut stopping).await.is_err() {
            tracing::warn!(running = tasks.running(), after = ?slow, "the manager role's tasks are still stopping");
            stopping.await;
        }
        drop(self.handle);
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        self.failure.try_recv().ok()
    }
}

/// Ends the role when Raft stops by itself (a log write failed: disk full, file removed).
///
/// Why end it: a member whose Raft core has quit answers "no leader" forever and never
/// recovers, even once the disk has room again, while looking alive to its supervisor. The
/// node exits non-zero instead, naming the cause, so the operator (or systemd's
/// `Restart=on-failure`) starts it again once the state dir is writable; its acknowledged
/// entries are on disk and the other managers carry on without it meanwhile.
fn watch_raft_failure(
    raft: RaftNode,
    tasks: &TaskOwner,
) -> oneshot::Receiver<swarm_raft::RaftError> {
    let (tx, rx) = oneshot::channel();
    let role = tasks.token().clone();
    tasks.spawn(async move {
        tokio::select! {
            failure = raft.failure() => {
                if let Some(e) = failure {
                    tracing::error!(error = %e, "the Raft log failed: this manager stops");
                    let _ = tx.send(e);
                    role.cancel();
                }
            }
            _ = role.cancelled() => {}
        }
    });
    rx
}

/// The remote API's listener: the one handed in (shared by every manager role of the node),
/// else a new one on `remote_api`.
async fn remote_listener(env: &RoleEnv<'_>) -> Result<TcpListener> {
    let flag = || format!("--listen-remote-api {}", env.cfg.remote_api);
    match env.remote_listener {
        Some(l) => {
            let l = l.try_clone().with_context(flag)?;
            l.set_nonblocking(true).with_context(flag)?;
            TcpListener::from_std(l).with_context(flag)
        }
        None => TcpListener::bind(&env.cfg.remote_api)
            .await
            .with_context(flag),
    }
}

pub(crate) async fn start_manager(
    env: &RoleEnv<'_>,
    node: &NodeIdentity,
    live: &LiveCredentials,
    keys: &Arc<LocalKeys>,
    metrics: &Arc<NodeMetrics>,
    tasks: &TaskOwner,
) -> Result<RunningManager> {
    let cfg = env.cfg;
    let creds = &node.creds;
    let advertise = env.advertise.clone();
    // Bind every listener first: a port or socket in use is an error before anything starts.
    let tcp = remote_listener(env).await?;
    let unix = match &cfg.control_socket {
        ControlSocket::At(path) => Some(bind_unix_socket("--listen-control-api", path).await?),
        ControlSocket::Default(path) => {
            match bind_unix_socket("--listen-control-api", path).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "no control socket: the default path is taken and --listen-control-api was not given");
                    None
                }
            }
        }
    };
    let docker_unix = match &cfg.docker_socket {
        Some(path) => Some(bind_unix_socket("--listen-docker-api", path).await?),
        None => None,
    };
    let web = match &cfg.web_addr {
        Some(addr) => Some(crate::web::bind(addr).await?),
        None => None,
    };

    let recovered = if cfg.force_new_cluster {
        if creds.role != NodeRole::Manager || node.new_cluster.is_some() {
            bail!("--force-new-cluster: this state dir holds no manager state to recover");
        }
        Some(force_new::recover_state(&cfg.state_dir)?)
    } else {
        None
    };
    let store = Store::new();
    let incarnation = crate::incarnation::load_or_create(&cfg.state_dir.join("raft"))?;
    let mut rcfg = RaftConfig::new(
        &cfg.state_dir,
        ids::raft_member_id(&creds.node_id, incarnation),
        advertise.clone(),
    );
    rcfg.tick_ms = cfg.raft.tick_ms;
    rcfg.heartbeat_tick = cfg.raft.heartbeat_tick;
    rcfg.election_tick = cfg.raft.election_tick;
    // The data key through the autolock-aware key files (the seed may be sealed).
    rcfg.data_key = Some(keys.data_key().context("opening the Raft data key")?);
    let peers = TlsPeers {
        creds: live.clone(),
        filter: env.peer_filter.clone(),
    };
    let raft = RaftNode::open(rcfg, store.clone(), Arc::new(peers.clone()))
        .await
        .context("opening the Raft log")?;
    let proposer: Arc<dyn Proposer> = Arc::new(TimedProposer {
        inner: Arc::new(raft.clone()),
        metrics: metrics.manager.clone(),
    });

    let route: Arc<dyn swarm_manager::LeaderRoute> = Arc::new(raft.leader_route());
    let dispatcher = Dispatcher::new(
        store.clone(),
        proposer.clone(),
        creds.cluster_id.clone(),
        advertise.clone(),
        route.clone(),
        tasks,
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
    let managers_only = || managers_only(creds.cluster_id.clone(), store.clone());

    // Our own TLS acceptor, not tonic's `tls_config`: it serves whatever certificate is current,
    // so renewals take effect without a restart (swarm_ca::tls_incoming).
    let (incoming, acceptor) = swarm_ca::tls_incoming(
        tcp,
        live.server_config().context("TLS configuration")?,
        tasks.token().clone(),
    );
    let remote = Server::builder()
        .add_service(InterceptedService::new(
            raft.grpc_service(),
            raft_peers_only(creds.cluster_id.clone(), store.clone(), raft.clone()),
        ))
        .add_service(dispatcher.clone().into_service())
        // Agents' side of the log broker: any node's certificate, checked by the broker.
        .add_service(logs.agent_service())
        .add_service(InterceptedService::new(
            membership.into_service(),
            managers_only(),
        ))
        .add_service(InterceptedService::new(
            control.clone().into_service(),
            managers_only(),
        ))
        .add_service(InterceptedService::new(
            logs.logs_service(),
            managers_only(),
        ))
        .add_service(ca.into_service())
        .add_service(health_service())
        .serve_with_incoming_shutdown(incoming, tasks.token().clone().cancelled_owned());
    // The acceptor ends with the token it was given.
    tasks.spawn(async move {
        let _ = acceptor.await;
    });
    tasks.spawn(crate::serving::until_stopped(
        remote,
        tasks.token().clone(),
        "remote API",
    ));
    if let Some(new) = &node.new_cluster {
        raft.bootstrap().await.context("bootstrapping Raft")?;
        create_cluster(&raft, proposer.as_ref(), node, &new.root, cfg, &advertise).await?;
        identity::save_new(&cfg.state_dir, creds, &advertise)?;
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
        join_raft(&peers, &node.managers, &advertise, incarnation).await?;
    }
    tasks.spawn(rejoin_when_removed(
        raft.clone(),
        peers.clone(),
        node.managers.clone(),
        advertise.clone(),
        incarnation,
        // Four base election timeouts: twice the longest randomised one, so an election
        // in progress is not taken for a lost member.
        Duration::from_millis(
            cfg.raft
                .tick_ms
                .saturating_mul(u64::from(cfg.raft.election_tick))
                .saturating_mul(4),
        ),
        tasks.token().clone(),
    ));
    // Operators get the control socket only once the cluster exists: never a half-made one.
    let control_path = unix
        .as_ref()
        .map(|_| cfg.control_socket.path().to_path_buf());
    if let (Some(unix), Some(socket_path)) = (unix, control_path.clone()) {
        let local = Server::builder()
            .layer(metrics.rpc_layer())
            .add_service(control.clone().into_service())
            .add_service(crate::autolock::already_unlocked())
            .add_service(logs.logs_service())
            .add_service(health_service())
            .serve_with_incoming_shutdown(
                UnixListenerStream::new(unix),
                tasks.token().clone().cancelled_owned(),
            );
        let stop = tasks.token().clone();
        tasks.spawn(async move {
            crate::serving::until_stopped(local, stop, "control API").await;
            let _ = std::fs::remove_file(&socket_path);
        });
    }
    if let (Some(listener), Some(path)) = (docker_unix, cfg.docker_socket.clone()) {
        // A translation layer over the same control API the socket above serves.
        let backend = swarm_engine_api::Backend::new(
            Arc::new(control.clone()),
            swarm_engine_api::LocalNode {
                node_id: creds.node_id.clone(),
                hostname: cfg.hostname(),
                addr: advertise.clone(),
            },
        )
        // This manager runs, so it is unlocked: the service says so to `POST /swarm/unlock`.
        .with_lock(Arc::new(crate::autolock::AlreadyUnlocked))
        .with_logs(Arc::new(logs.clone()));
        let stop = tasks.token().clone();
        tracing::info!(docker = %path.display(), "Docker API subset serving");
        tasks.spawn(async move {
            swarm_engine_api::serve(listener, backend, stop).await;
            let _ = std::fs::remove_file(&path);
        });
    }

    tasks.spawn(crate::autolock::follow(
        store.clone(),
        raft.clone(),
        keys.clone(),
        tasks.token().clone(),
    ));
    metrics.attach_manager(
        ManagerSource {
            store: store.clone(),
            raft: raft.clone(),
            dispatcher: dispatcher.clone(),
            node_id: creds.node_id.clone(),
        },
        tasks,
    );
    if let Some(listener) = web {
        crate::web::serve(listener, store.clone(), tasks);
    }
    tasks.spawn(run_leader_components(
        LeaderConfig {
            store: store.clone(),
            proposer,
            dispatcher,
            node_id: creds.node_id.clone(),
            metrics: metrics.manager.clone(),
            members: Some(Arc::new(raft.clone())),
            dialer: Some(Arc::new(peers)),
        },
        raft.is_leader_watch(),
        tasks.token().clone(),
    ));
    let failure = watch_raft_failure(raft.clone(), tasks);
    tracing::info!(remote = %advertise, control = ?control_path, "manager serving");
    Ok(RunningManager {
        failure,
        handle: ManagerHandle {
            addr: advertise,
            store,
            raft: raft.clone(),
            control,
        },
        raft,
    })
}
