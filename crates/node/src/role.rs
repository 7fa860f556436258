//! One life of the node in one role: a manager role (manager_role.rs) when its certificate
//! says so, and in every role the agent that runs this node's tasks, with the certificate's
//! renewal and the watch for a role change. Everything a role starts is a task of the role's
//! [`TaskOwner`]; the role returns only once all of them have ended, so nothing of it (its
//! store, its dispatcher) outlives it.

use crate::autolock::LocalKeys;
use crate::ca_client::CaPeers;
use crate::config::{ExecutorChoice, NodeConfig};
use crate::error::{Context, Result};
use crate::identity::NodeIdentity;
use crate::info::NodeInfo;
use crate::manager_role::start_manager;
use crate::metrics_http::NodeMetrics;
use crate::peers::agent_connect;
use crate::renewal::{self, Renewal};
use crate::role_env::RoleEnv;
use crate::role_watch::{watch_role, RoleWatch};
use std::sync::Arc;
use swarm_agent::executor::docker::DockerExecutor;
use swarm_agent::{Agent, AgentConfig, ExecutorKind};
use swarm_api::NodeRole;
use swarm_tasks::TaskOwner;
use tokio::sync::watch;

/// How one life of the node in one role ended.
pub enum Outcome {
    /// Asked to stop.
    Stopped,
    /// The managers recorded a new role; here is the certificate for it.
    RoleChanged(swarm_ca::NodeCredentials),
}

/// Runs the node in the role its certificate names until it stops or its role changes.
pub async fn run_role(
    env: &RoleEnv<'_>,
    node: &NodeIdentity,
    keys: &Arc<LocalKeys>,
    metrics: &Arc<NodeMetrics>,
) -> Result<Outcome> {
    // Everything of this role stops on shutdown, or when the role changes.
    let tasks = TaskOwner::with_token(env.shutdown.child_token());
    let res = run_role_tasks(env, node, keys, metrics, &tasks).await;
    tasks.stop().await;
    res
}

async fn run_role_tasks(
    env: &RoleEnv<'_>,
    node: &NodeIdentity,
    keys: &Arc<LocalKeys>,
    metrics: &Arc<NodeMetrics>,
    tasks: &TaskOwner,
) -> Result<Outcome> {
    let cfg = env.cfg;
    let advertise = env.advertise.clone();
    let mut managers = node.managers.clone();
    // The role's credentials, renewed in place (renewal.rs) and read by every server and client.
    let (swap, live) =
        swarm_ca::live_credentials(node.creds.clone()).context("loading the node certificate")?;
    env.info.send_replace(Some(NodeInfo {
        node_id: node.creds.node_id.clone(),
        cluster_id: node.creds.cluster_id.clone(),
        role: node.creds.role,
        manager: None,
    }));
    let manager = if node.creds.role == NodeRole::Manager {
        let m = start_manager(env, node, &live, keys, metrics, tasks).await?;
        managers.retain(|m| m != &advertise);
        managers.insert(0, advertise.clone());
        let handle = m.handle.clone();
        env.info.send_modify(|i| {
            if let Some(i) = i {
                i.manager = Some(handle)
            }
        });
        Some(m)
    } else {
        None
    };
    let executor = executor(cfg, &node.creds.node_id).await?;
    metrics.set_executor(match &executor {
        ExecutorKind::Process { .. } => "process",
        ExecutorKind::Sim { .. } => "sim",
        ExecutorKind::Docker(_) => "docker",
    });
    let agent = Agent::new(AgentConfig {
        state_dir: cfg.state_dir.clone(),
        hostname: cfg.hostname(),
        managers: managers.clone(),
        connect: agent_connect(live.clone()),
        executor,
        advertise_addr: advertise.clone(),
    })?;
    let ca = CaPeers {
        managers,
        hostname: cfg.hostname(),
        advertise,
    };
    let stop = tasks.token().clone();
    let watcher = tasks.spawn(watch_role(
        RoleWatch {
            updates: agent.node_updates(),
            creds: live,
            ca: ca.clone(),
            keys: keys.clone(),
        },
        stop.clone(),
    ));
    tasks.spawn(renewal::run(
        Renewal {
            updates: agent.node_updates(),
            swap,
            ca,
            keys: keys.clone(),
            first_after: cfg.cert_renew_after,
        },
        stop.clone(),
    ));
    let res = agent.run(stop.clone()).await;
    stop.cancel();
    // The role's store must not outlive it through what the node publishes.
    forget_manager(env.info);
    if let Some(m) = manager {
        if let Some(e) = m.stop(tasks).await {
            let _ = watcher.await;
            return Err(e).context(format!(
                "the manager's Raft log in {} failed (free space or repair it, then start swarmd again)",
                cfg.state_dir.display()
            ));
        }
    }
    match watcher.await {
        Ok(Some(creds)) => Ok(Outcome::RoleChanged(creds)),
        _ => res.map(|_| Outcome::Stopped).context("agent"),
    }
}

/// Drops the published manager handle (its store) once its role is over.
pub(crate) fn forget_manager(info: &watch::Sender<Option<NodeInfo>>) {
    info.send_modify(|i| {
        if let Some(i) = i {
            i.manager = None
        }
    });
}

/// The executor `cfg` asks for; `Auto` falls back to processes when no engine answers.
async fn executor(cfg: &NodeConfig, node_id: &str) -> Result<ExecutorKind> {
    // The agent's own directory (it creates it too); the Docker executor keeps configs there.
    let worker_dir = cfg.state_dir.join("worker");
    let process = ExecutorKind::Process {
        node_id: node_id.to_string(),
    };
    Ok(match cfg.executor {
        ExecutorChoice::Process => process,
        ExecutorChoice::Sim => ExecutorKind::Sim {
            start_delay: cfg.sim_start_delay,
        },
        ExecutorChoice::Docker => ExecutorKind::Docker(Arc::new(
            DockerExecutor::connect(&cfg.engine_addr, node_id, &worker_dir)
                .await
                .context("--executor docker")?,
        )),
        ExecutorChoice::Auto => {
            match DockerExecutor::connect(&cfg.engine_addr, node_id, &worker_dir).await {
                Ok(docker) => ExecutorKind::Docker(Arc::new(docker)),
                Err(e) => {
                    tracing::info!(reason = %e, "no Docker engine: tasks run as local processes (--executor process)");
                    process
                }
            }
        }
    })
}
