//! The `docker` executor (DESIGN §6): runs each task as a container on a Docker engine reached
//! through its API (`bollard`), at `--engine-addr`.
//!
//! Owns the containers it creates, and only those: every one carries the labels below (task,
//! service and node IDs), by which a restarted agent finds its containers again, re-adopts the
//! running ones of tasks still assigned and removes the others of this node. It never touches
//! containers without this node's label, nor images (it pulls a missing one, never removes).
//! Restarts are the orchestrator's business: containers get Docker's restart policy "no".
//! A task's secrets and configs are staged by `task_files` (secrets on the tmpfs) and
//! bind-mounted read-only, secrets at `/run/secrets/<target>` and configs at `/<target>` as
//! Docker places them by default; they are bind mounts of host files, so the engine must run
//! on this host. Host-mode published ports in the task's endpoint are bound on the node by the
//! engine (port bindings); ingress ports are never bound (the managers refuse them).
//!
//! Split by seam: `engine` (the engine client: connecting, finding our containers, the
//! engine's errors and log frames), `spec` (a task's spec as the container create body) and
//! `controller` (one task's container through its life).

mod controller;
mod engine;
mod health;
mod options;
mod spec;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::LogsOptions;
use bollard::Docker;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use swarm_api::{EngineDescription, NodeDescription, Task};

use super::task_files::{Modes, TaskFileStore};
use super::{
    Adopted, Controller, Executor, ExecutorError, LogLines, LogOptions, Started, TaskFiles,
};
use crate::network::NetPlane;
use controller::DockerController;
pub(crate) use engine::engine_words;
use engine::{engine_failed, frame_lines, remove_container};
use spec::{container_name, create_body, file_mounts};

pub use engine::ConnectError;

/// The default engine address (`--engine-addr`).
pub const DEFAULT_ENGINE_ADDR: &str = "unix:///var/run/docker.sock";
/// Label holding the task ID of a container this executor created.
pub const LABEL_TASK_ID: &str = "swarmd.task.id";
/// Label holding the task's service ID.
pub const LABEL_SERVICE_ID: &str = "swarmd.service.id";
/// Label holding the ID of the node whose agent created the container.
pub const LABEL_NODE_ID: &str = "swarmd.node.id";
/// Label holding the task's name (`<service>.<slot>`), for people reading `docker ps`.
pub const LABEL_TASK_NAME: &str = "swarmd.task.name";

/// How long the engine has to answer `/_ping` (and the version check) at start-up: an engine
/// that does not answer in that time is treated as absent.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Where a container sees its secrets (Docker's place for them).
pub const SECRETS_MOUNT_DIR: &str = "/run/secrets";
/// Docker's default secret and config file mode (owner root): the container's user, whoever
/// it is, reads them; the host side is private by its 0700 directory.
const MODES: Modes = Modes {
    secret: 0o444,
    config: 0o444,
};

/// Runs tasks as Docker containers.
pub struct DockerExecutor {
    docker: Docker,
    node_id: String,
    files: Arc<TaskFileStore>,
    /// Plugs containers of tasks attached to networks; set by the agent (`use_network`).
    net: std::sync::OnceLock<NetPlane>,
}

impl DockerExecutor {
    /// The node this executor runs containers for.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Hands the executor the node's data plane, for containers of tasks on networks.
    pub fn use_network(&self, plane: NetPlane) {
        let _ = self.net.set(plane);
    }

    fn task_net(&self, task: &Task) -> Result<Option<(NetPlane, Task)>, ExecutorError> {
        if task.networks.is_empty() {
            return Ok(None);
        }
        let plane = self.net.get().cloned().ok_or_else(|| {
            ExecutorError::Rejected("this node cannot attach tasks to networks".into())
        })?;
        Ok(Some((plane, task.clone())))
    }
}

impl Executor for DockerExecutor {
    fn describe(
        &self,
        mut host: NodeDescription,
    ) -> BoxFuture<'_, Result<NodeDescription, ExecutorError>> {
        async move {
            let info = self
                .docker
                .info()
                .await
                .map_err(engine_failed("engine info"))?;
            let labels = info
                .labels
                .unwrap_or_default()
                .into_iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (kv, String::new()),
                })
                .collect();
            host.engine = Some(EngineDescription {
                engine_version: info.server_version.unwrap_or_default(),
                labels,
            });
            // The engine's figures are what containers can use (it may run in a VM).
            let mut res = host.resources.unwrap_or_default();
            if let Some(n) = info.ncpu.filter(|&n| n > 0) {
                res.nano_cpus = n.saturating_mul(1_000_000_000);
            }
            if let Some(m) = info.mem_total.filter(|&m| m > 0) {
                res.memory_bytes = m;
            }
            host.resources = Some(res);
            Ok(host)
        }
        .boxed()
    }

    fn controller(&self, task: &Task) -> Result<Box<dyn Controller>, ExecutorError> {
        self.controller_with_files(task, TaskFiles::default())
    }

    fn controller_with_files(
        &self,
        task: &Task,
        files: TaskFiles,
    ) -> Result<Box<dyn Controller>, ExecutorError> {
        files.check()?;
        let spec = task
            .spec
            .as_ref()
            .and_then(|s| s.container.as_ref())
            .ok_or_else(|| ExecutorError::Rejected("task has no container spec".into()))?;
        let mounts = file_mounts(&self.files, &task.id, &files);
        let body = create_body(task, spec, &self.node_id, &mounts)?;
        let net = self.task_net(task)?;
        Ok(Box::new(DockerController {
            net,
            docker: self.docker.clone(),
            name: container_name(task),
            image: spec.image.clone(),
            body: Some(body),
            id: None,
            exit: None,
            task_id: task.id.clone(),
            store: self.files.clone(),
            files,
            health_poll: None,
        }))
    }

    fn adopt(&self, task: &Task) -> BoxFuture<'_, Result<Option<Adopted>, ExecutorError>> {
        let task_id = task.id.clone();
        let name = container_name(task);
        let image = task
            .spec
            .as_ref()
            .and_then(|s| s.container.as_ref())
            .map(|c| c.image.clone())
            .unwrap_or_default();
        let net = self.task_net(task);
        async move {
            let failed = engine_failed("looking for the container");
            let Some(id) = self
                .own_containers()
                .await
                .map_err(&failed)?
                .into_iter()
                .find_map(|(id, t)| (t == task_id).then_some(id))
            else {
                return Ok(None);
            };
            let info = self
                .docker
                .inspect_container(&id, None)
                .await
                .map_err(&failed)?;
            let started = info
                .state
                .as_ref()
                .and_then(|s| s.started_at.as_deref())
                .is_some_and(|t| !t.is_empty() && !t.starts_with("0001-"));
            let net = net?;
            let ctl = DockerController {
                net,
                docker: self.docker.clone(),
                name,
                image,
                body: None,
                id: Some(id.clone()),
                exit: None,
                task_id,
                store: self.files.clone(),
                // Staged by the earlier run; the container already has them mounted.
                files: TaskFiles::default(),
                health_poll: health::poll_period_of(&info),
            };
            if !started {
                // Created but never started: the manager's view of it is stale either way;
                // the orchestrator replaces the task, so the container has no use.
                let mut ctl = ctl;
                if let Err(e) = ctl.remove().await {
                    tracing::warn!(container = %id, error = %e, "removing an unstarted container");
                }
                return Ok(None);
            }
            let mut ctl = ctl;
            // Its legs on the networks are plugged again (the agent that made them is gone).
            ctl.plug().await?;
            Ok(Some(Adopted {
                controller: Box::new(ctl),
                started: Started {
                    pid: 0,
                    container_id: id,
                },
            }))
        }
        .boxed()
    }

    fn cleanup(&self, keep: HashSet<String>) -> BoxFuture<'_, Result<(), ExecutorError>> {
        if let Some(net) = self.net.get() {
            // Adopted containers keep their namespaces; the rest are stale.
            net.cleanup(keep.clone());
        }
        async move {
            let own = self
                .own_containers()
                .await
                .map_err(engine_failed("listing containers"))?;
            for (id, task) in own.into_iter().filter(|(_, t)| !keep.contains(t)) {
                tracing::info!(container = %id, task = %task, "removing the container of a task no longer assigned");
                if let Err(e) = remove_container(&self.docker, &id).await {
                    tracing::warn!(container = %id, error = %e, "removing a stale container");
                }
            }
            // After the containers: nothing mounts the files of tasks no longer kept.
            let store = self.files.clone();
            tokio::task::spawn_blocking(move || store.sweep(&keep, true))
                .await
                .map_err(|e| ExecutorError::task("sweeping task files", e))
        }
        .boxed()
    }

    fn outlives_agent(&self) -> bool {
        true
    }

    /// The container's output from the engine (`docker logs`), stdout and stderr, with the
    /// engine doing `tail` and `follow`. The engine's response is read as it is consumed, so
    /// a slow consumer slows the engine's stream (HTTP flow control), never our memory.
    fn logs(
        &self,
        task_id: &str,
        opts: LogOptions,
    ) -> BoxFuture<'_, Result<LogLines, ExecutorError>> {
        let task_id = task_id.to_string();
        async move {
            let id = self
                .own_containers()
                .await
                .map_err(engine_failed("looking for the container"))?
                .into_iter()
                .find_map(|(id, t)| (t == task_id).then_some(id));
            let Some(id) = id else {
                return Ok(Box::pin(futures::stream::empty()) as LogLines);
            };
            let options = LogsOptions {
                follow: opts.follow,
                stdout: true,
                stderr: true,
                tail: opts
                    .tail
                    .map_or_else(|| "all".to_string(), |n| n.to_string()),
                ..Default::default()
            };
            let frames = self
                .docker
                .logs(&id, Some(options))
                .take_while(|r| {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "container log stream ended");
                    }
                    futures::future::ready(r.is_ok())
                })
                .filter_map(|r| futures::future::ready(r.ok()))
                .flat_map(|frame| futures::stream::iter(frame_lines(frame)));
            Ok(Box::pin(frames) as LogLines)
        }
        .boxed()
    }
}
