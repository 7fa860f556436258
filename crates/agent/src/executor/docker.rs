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

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as EngineError;
use bollard::models::{
    ContainerCreateBody, HostConfig, Mount as EngineMount, MountType as EngineMountType,
    PortBinding, PortMap, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StopContainerOptions,
};
use bollard::Docker;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use swarm_api::{
    ContainerSpec, EngineDescription, LogStream, MountType, NodeDescription, PortProtocol,
    PublishMode, Task,
};

use super::task_files::{Modes, TaskFileStore};
use super::{
    Adopted, Controller, Executor, ExecutorError, ExitStatus, LogLine, LogLines, LogOptions,
    Started, TaskFiles,
};

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
/// Per-request timeout for ordinary calls (headers of the response; streams run longer).
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// Extra time a `stop` request gets beyond the task's grace period, for the engine's SIGKILL.
const STOP_SLACK: Duration = Duration::from_secs(30);
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
}

/// A failure to reach the engine at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("engine address {addr:?}: {reason}")]
    Address { addr: String, reason: String },
    #[error("no Docker engine answered at {addr} within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("Docker engine at {addr}: {reason}")]
    Engine { addr: String, reason: String },
}

impl DockerExecutor {
    /// Connects to the engine at `addr` (`unix:///path`, `/path` or `tcp://host:port`), checks
    /// it answers `/_ping` and agrees on an API version (the engine may be older than the
    /// client library), all within `CONNECT_TIMEOUT`. `node_id` labels the containers;
    /// tasks' configs (and secrets, without a tmpfs) are staged under `worker_dir/docker/`.
    pub async fn connect(
        addr: &str,
        node_id: &str,
        worker_dir: &Path,
    ) -> Result<DockerExecutor, ConnectError> {
        let docker = client(addr)?;
        let engine = |e: EngineError| ConnectError::Engine {
            addr: addr.to_string(),
            reason: e.to_string(),
        };
        let ready = async {
            docker.ping().await.map_err(engine)?;
            docker.clone().negotiate_version().await.map_err(engine)
        };
        let docker = tokio::time::timeout(CONNECT_TIMEOUT, ready)
            .await
            .map_err(|_| ConnectError::Timeout {
                addr: addr.to_string(),
                timeout: CONNECT_TIMEOUT,
            })??;
        Ok(DockerExecutor {
            docker,
            node_id: node_id.to_string(),
            files: Arc::new(TaskFileStore::new(
                &worker_dir.join("docker"),
                node_id,
                MODES,
            )),
        })
    }

    /// The ID of every container of this node (by label), with its task ID.
    async fn own_containers(&self) -> Result<Vec<(String, String)>, EngineError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_NODE_ID}={}", self.node_id)],
        )]);
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let task = c.labels.as_ref()?.get(LABEL_TASK_ID)?.clone();
                Some((c.id?, task))
            })
            .collect())
    }
}

/// A client for `addr`; no request is made yet.
fn client(addr: &str) -> Result<Docker, ConnectError> {
    let bad = |reason: String| ConnectError::Address {
        addr: addr.to_string(),
        reason,
    };
    let version = bollard::API_DEFAULT_VERSION;
    let docker = if let Some(path) = addr.strip_prefix("unix://") {
        Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, version)
    } else if addr.starts_with('/') {
        Docker::connect_with_unix(addr, REQUEST_TIMEOUT_SECS, version)
    } else if addr.starts_with("tcp://") || addr.starts_with("http://") {
        Docker::connect_with_http(addr, REQUEST_TIMEOUT_SECS, version)
    } else {
        return Err(bad(
            "expected unix:///path/to/docker.sock or tcp://host:port".into(),
        ));
    };
    docker.map_err(|e| bad(e.to_string()))
}

/// The engine's own words for a failed call (its JSON `message` when it sent one).
fn engine_words(e: &EngineError) -> String {
    match e {
        EngineError::DockerResponseServerError { message, .. } => message.clone(),
        EngineError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

fn status_of(e: &EngineError) -> Option<u16> {
    match e {
        EngineError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// A failed engine call as a task error: what the engine refuses as invalid (HTTP 400: a bad
/// image reference, a missing bind source, a memory limit below its minimum) can never work
/// and rejects the task; anything else fails it.
fn task_error(what: &str, e: &EngineError) -> ExecutorError {
    let text = format!("{what}: {}", engine_words(e));
    if status_of(e) == Some(400) {
        ExecutorError::Rejected(text)
    } else {
        ExecutorError::Failed(text)
    }
}

/// `image` with an explicit tag: pulling a bare repository would fetch every tag.
fn with_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || last.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// The container's name: `<service>.<slot or node>.<task id>`, with characters Docker does not
/// accept in names replaced.
fn container_name(task: &Task) -> String {
    let base = match task.annotations.as_ref().map(|a| a.name.as_str()) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ if task.slot > 0 => format!("{}.{}", task.service_name, task.slot),
        _ => format!("{}.{}", task.service_name, task.node_id),
    };
    let name: String = format!("{base}.{}", task.id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.trim_start_matches(['_', '.', '-']).to_string()
}

/// A staged secret or config file and where the container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileMount {
    source: String,
    target: String,
}

/// Where each of the task's files is staged and mounted.
fn file_mounts(store: &TaskFileStore, task_id: &str, files: &TaskFiles) -> Vec<FileMount> {
    let secrets = store.secrets_dir(task_id);
    let configs = store.configs_dir(task_id);
    let secrets = files.secrets.iter().map(|f| FileMount {
        source: secrets.join(&f.target).display().to_string(),
        target: format!("{SECRETS_MOUNT_DIR}/{}", f.target),
    });
    let configs = files.configs.iter().map(|f| FileMount {
        source: configs.join(&f.target).display().to_string(),
        target: format!("/{}", f.target),
    });
    secrets.chain(configs).collect()
}

/// The task's host-mode published ports as the engine's exposed ports and port bindings
/// (`80/tcp` → host port 8080 on every address).
fn port_bindings(task: &Task) -> (Vec<String>, PortMap) {
    let mut exposed = Vec::new();
    let mut map = PortMap::new();
    let ports = task
        .endpoint
        .as_ref()
        .map_or(&[][..], |e| e.ports.as_slice());
    for p in ports {
        if p.publish_mode() != PublishMode::Host || p.published_port == 0 {
            continue;
        }
        let proto = match p.protocol() {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
        };
        let key = format!("{}/{proto}", p.target_port);
        exposed.push(key.clone());
        map.entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: None,
                host_port: Some(p.published_port.to_string()),
            });
    }
    (exposed, map)
}

/// Engine CPU shares for a reservation of `nano_cpus` (1 CPU = 1024 shares, the engine's
/// minimum is 2).
fn cpu_shares(nano_cpus: i64) -> i64 {
    (nano_cpus.saturating_mul(1024) / 1_000_000_000).max(2)
}

/// The container's configuration for `task`; a spec the engine can never run is refused.
fn create_body(
    task: &Task,
    spec: &ContainerSpec,
    node_id: &str,
    files: &[FileMount],
) -> Result<ContainerCreateBody, ExecutorError> {
    if spec.image.trim().is_empty() {
        return Err(ExecutorError::Rejected("task has no image".into()));
    }
    let mut labels: HashMap<String, String> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Ours last: a spec label must not take a container away from its task.
    labels.insert(LABEL_TASK_ID.into(), task.id.clone());
    labels.insert(LABEL_SERVICE_ID.into(), task.service_id.clone());
    labels.insert(LABEL_NODE_ID.into(), node_id.to_string());
    if let Some(a) = task.annotations.as_ref().filter(|a| !a.name.is_empty()) {
        labels.insert(LABEL_TASK_NAME.into(), a.name.clone());
    }

    let mut mounts = Vec::with_capacity(spec.mounts.len());
    for m in &spec.mounts {
        if !m.target.starts_with('/') {
            return Err(ExecutorError::Rejected(format!(
                "mount target {:?} is not an absolute path",
                m.target
            )));
        }
        let typ = match m.r#type() {
            MountType::Bind => {
                if m.source.is_empty() {
                    return Err(ExecutorError::Rejected(format!(
                        "bind mount at {} has no source",
                        m.target
                    )));
                }
                EngineMountType::BIND
            }
            MountType::Volume => EngineMountType::VOLUME,
            MountType::Tmpfs => EngineMountType::TMPFS,
        };
        mounts.push(EngineMount {
            target: Some(m.target.clone()),
            source: (!m.source.is_empty()).then(|| m.source.clone()),
            typ: Some(typ),
            read_only: Some(m.read_only),
            ..Default::default()
        });
    }
    mounts.extend(files.iter().map(|f| EngineMount {
        target: Some(f.target.clone()),
        source: Some(f.source.clone()),
        typ: Some(EngineMountType::BIND),
        read_only: Some(true),
        ..Default::default()
    }));

    let resources = task.spec.as_ref().and_then(|s| s.resources.as_ref());
    let limits = resources.and_then(|r| r.limits).unwrap_or_default();
    let reservations = resources.and_then(|r| r.reservations).unwrap_or_default();
    let positive = |v: i64| (v > 0).then_some(v);
    let (exposed, bindings) = port_bindings(task);
    let host_config = HostConfig {
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        nano_cpus: positive(limits.nano_cpus),
        memory: positive(limits.memory_bytes),
        memory_reservation: positive(reservations.memory_bytes),
        cpu_shares: positive(reservations.nano_cpus).map(cpu_shares),
        mounts: (!mounts.is_empty()).then_some(mounts),
        // The orchestrator restarts tasks (as new tasks); the engine must never do it.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };

    let grace_ms = if spec.stop_grace_period_ms > 0 {
        spec.stop_grace_period_ms
    } else {
        swarm_api::defaults::STOP_GRACE_PERIOD_MS
    };
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let (entrypoint, cmd) = if spec.command.is_empty() {
        // Only args: they replace the image's CMD and keep its ENTRYPOINT (as `docker run`).
        (None, (!spec.args.is_empty()).then(|| spec.args.clone()))
    } else {
        // A command replaces the image's ENTRYPOINT; the engine then drops the image's CMD.
        (Some(spec.command.clone()), Some(spec.args.clone()))
    };
    let mut body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint,
        cmd,
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        working_dir: some(&spec.dir),
        user: some(&spec.user),
        hostname: some(&spec.hostname),
        labels: Some(labels),
        stop_signal: some(&spec.stop_signal),
        // Rounded up so a `docker stop` from outside honours at least the grace period too.
        stop_timeout: Some(grace_ms.saturating_add(999) / 1000),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(host_config),
        ..Default::default()
    };
    super::docker_options::apply(spec, task.spec.as_ref(), &mut body);
    Ok(body)
}

impl Executor for DockerExecutor {
    fn describe(
        &self,
        mut host: NodeDescription,
    ) -> BoxFuture<'_, Result<NodeDescription, ExecutorError>> {
        async move {
            let info =
                self.docker.info().await.map_err(|e| {
                    ExecutorError::Failed(format!("engine info: {}", engine_words(&e)))
                })?;
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
        Ok(Box::new(DockerController {
            docker: self.docker.clone(),
            name: container_name(task),
            image: spec.image.clone(),
            body: Some(body),
            id: None,
            exit: None,
            task_id: task.id.clone(),
            store: self.files.clone(),
            files,
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
        async move {
            let failed = |e: EngineError| {
                ExecutorError::Failed(format!("looking for the container: {}", engine_words(&e)))
            };
            let Some(id) = self
                .own_containers()
                .await
                .map_err(failed)?
                .into_iter()
                .find_map(|(id, t)| (t == task_id).then_some(id))
            else {
                return Ok(None);
            };
            let info = self
                .docker
                .inspect_container(&id, None)
                .await
                .map_err(failed)?;
            let state = info.state.unwrap_or_default();
            let started = state
                .started_at
                .as_deref()
                .is_some_and(|t| !t.is_empty() && !t.starts_with("0001-"));
            let ctl = DockerController {
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
        async move {
            let own = self.own_containers().await.map_err(|e| {
                ExecutorError::Failed(format!("listing containers: {}", engine_words(&e)))
            })?;
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
                .map_err(|e| ExecutorError::Failed(format!("sweeping task files: {e}")))
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
                .map_err(|e| {
                    ExecutorError::Failed(format!(
                        "looking for the container: {}",
                        engine_words(&e)
                    ))
                })?
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

/// The lines of one frame of the engine's log stream (a frame is normally one line with its
/// line feed; a TTY's console output may hold several, or part of one).
fn frame_lines(frame: bollard::container::LogOutput) -> Vec<LogLine> {
    use bollard::container::LogOutput;
    let (stream, bytes) = match frame {
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            (LogStream::Stdout, message)
        }
        LogOutput::StdErr { message } => (LogStream::Stderr, message),
        LogOutput::StdIn { .. } => return Vec::new(),
    };
    let now = swarm_api::now_ms();
    let text = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    text.split(|b| *b == b'\n')
        .map(|l| LogLine {
            stream,
            timestamp_ms: now,
            data: l.strip_suffix(b"\r").unwrap_or(l).to_vec(),
        })
        .collect()
}

/// Removes a container with its anonymous volumes, killing it if it runs; gone is fine.
async fn remove_container(docker: &Docker, id: &str) -> Result<(), ExecutorError> {
    match docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if status_of(&e) == Some(404) => Ok(()),
        Err(e) => Err(task_error("removing the container", &e)),
    }
}

struct DockerController {
    docker: Docker,
    name: String,
    image: String,
    /// What `prepare` creates the container from; taken once created.
    body: Option<ContainerCreateBody>,
    /// The container, once created (or found, for an adopted task).
    id: Option<String>,
    exit: Option<ExitStatus>,
    task_id: String,
    store: Arc<TaskFileStore>,
    /// Secrets and configs to stage at `prepare`, before the container that mounts them.
    files: TaskFiles,
}

impl DockerController {
    /// Makes sure the image is here: present locally, else pulled.
    async fn ensure_image(&self) -> Result<(), ExecutorError> {
        match self.docker.inspect_image(&self.image).await {
            Ok(_) => return Ok(()),
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => return Err(task_error(&format!("image {}", self.image), &e)),
        }
        let mut pull = self.docker.create_image(
            Some(CreateImageOptions {
                from_image: Some(with_tag(&self.image)),
                ..Default::default()
            }),
            None,
            None,
        );
        while let Some(progress) = pull.next().await {
            if let Err(e) = progress {
                if status_of(&e) == Some(400) {
                    return Err(task_error(&format!("image {}", self.image), &e));
                }
                // Not here and not pullable (no registry, no such repository): this task
                // cannot run here; REJECTED lets the orchestrator decide, as SwarmKit does.
                return Err(ExecutorError::Rejected(format!(
                    "image not found: {} (pull failed: {})",
                    self.image,
                    engine_words(&e)
                )));
            }
        }
        Ok(())
    }

    async fn create(&mut self) -> Result<(), ExecutorError> {
        let Some(body) = self.body.clone() else {
            return Ok(());
        };
        let options = || {
            Some(CreateContainerOptions {
                name: Some(self.name.clone()),
                ..Default::default()
            })
        };
        let created = match self.docker.create_container(options(), body.clone()).await {
            // A container of this very task (the name holds its ID) left by an earlier try
            // that never reported: replace it.
            Err(e) if status_of(&e) == Some(409) => {
                remove_container(&self.docker, &self.name).await?;
                self.docker.create_container(options(), body).await
            }
            r => r,
        }
        .map_err(|e| task_error("creating the container", &e))?;
        for w in created.warnings {
            tracing::warn!(container = %created.id, warning = %w, "engine warning");
        }
        self.id = Some(created.id);
        self.body = None;
        Ok(())
    }

    fn id(&self) -> Result<&str, ExecutorError> {
        self.id
            .as_deref()
            .ok_or_else(|| ExecutorError::Failed("the container was never created".into()))
    }
}

impl Controller for DockerController {
    fn prepare(&mut self) -> BoxFuture<'_, Result<(), ExecutorError>> {
        async move {
            self.ensure_image().await?;
            if !self.files.is_empty() {
                self.store.stage(&self.task_id, &self.files)?;
            }
            self.create().await
        }
        .boxed()
    }

    fn start(&mut self) -> BoxFuture<'_, Result<Started, ExecutorError>> {
        async move {
            let id = self.id()?.to_string();
            self.docker
                .start_container(&id, None)
                .await
                .map_err(|e| task_error("starting the container", &e))?;
            Ok(Started {
                pid: 0,
                container_id: id,
            })
        }
        .boxed()
    }

    fn wait(&mut self) -> BoxFuture<'_, Result<ExitStatus, ExecutorError>> {
        async move {
            if let Some(exit) = self.exit {
                return Ok(exit);
            }
            let id = self.id()?.to_string();
            // One long request that the engine answers when the container stops (an exited
            // container answers at once), so a dropped and repeated wait loses nothing.
            let mut waits = self.docker.wait_container(&id, None);
            let code = match waits.next().await {
                Some(Ok(r)) => r.status_code,
                Some(Err(EngineError::DockerContainerWaitError { code, .. })) => code,
                Some(Err(e)) if status_of(&e) == Some(404) => {
                    return Err(ExecutorError::Failed(format!(
                        "container {id} was removed from outside"
                    )))
                }
                Some(Err(e)) => return Err(task_error("waiting for the container", &e)),
                None => {
                    return Err(ExecutorError::Failed(
                        "the engine ended the wait without an exit code".into(),
                    ))
                }
            };
            let exit = ExitStatus::Code(i32::try_from(code).unwrap_or(-1));
            self.exit = Some(exit);
            // The container never runs again (restart policy "no"): its secrets go now.
            self.store.remove_secrets(&self.task_id);
            Ok(exit)
        }
        .boxed()
    }

    fn stop(&mut self, grace: Duration) -> BoxFuture<'_, Result<(), ExecutorError>> {
        async move {
            let Some(id) = self.id.clone() else {
                return Ok(());
            };
            if self.exit.is_some() {
                return Ok(());
            }
            let secs = grace.as_millis().div_ceil(1000);
            // The engine answers once the container is gone: after the grace period at worst.
            let docker = self.docker.clone().with_timeout(grace + STOP_SLACK);
            match docker
                .stop_container(
                    &id,
                    Some(StopContainerOptions {
                        t: Some(i32::try_from(secs).unwrap_or(i32::MAX)),
                        ..Default::default()
                    }),
                )
                .await
            {
                Ok(()) => Ok(()),
                Err(e) if status_of(&e) == Some(404) => Ok(()),
                Err(e) => Err(task_error("stopping the container", &e)),
            }
        }
        .boxed()
    }

    fn remove(&mut self) -> BoxFuture<'_, Result<(), ExecutorError>> {
        async move {
            let target = self.id.clone().unwrap_or_else(|| self.name.clone());
            let removed = remove_container(&self.docker, &target).await;
            self.store.remove_all(&self.task_id);
            removed
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_api::{Annotations, Mount, ResourceRequirements, Resources, TaskSpec};

    fn task(spec: ContainerSpec) -> Task {
        Task {
            id: "t1".into(),
            service_id: "s1".into(),
            service_name: "web".into(),
            slot: 2,
            node_id: "n1".into(),
            annotations: Some(Annotations {
                name: "web.2".into(),
                ..Default::default()
            }),
            spec: Some(TaskSpec {
                container: Some(spec),
                resources: Some(ResourceRequirements {
                    limits: Some(Resources {
                        nano_cpus: 500_000_000,
                        memory_bytes: 64 << 20,
                    }),
                    reservations: Some(Resources {
                        nano_cpus: 250_000_000,
                        memory_bytes: 32 << 20,
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn name_is_service_slot_and_task_id() {
        let t = task(ContainerSpec::default());
        assert_eq!(container_name(&t), "web.2.t1");
        let mut global = t.clone();
        global.annotations = None;
        global.slot = 0;
        assert_eq!(container_name(&global), "web.n1.t1");
    }

    #[test]
    fn spec_maps_onto_the_container() {
        let spec = ContainerSpec {
            image: "busybox:1".into(),
            command: vec!["sleep".into()],
            args: vec!["60".into()],
            env: vec!["A=1".into()],
            dir: "/tmp".into(),
            user: "nobody".into(),
            hostname: "h".into(),
            labels: HashMap::from([(LABEL_TASK_ID.to_string(), "forged".to_string())]),
            stop_grace_period_ms: 1_500,
            stop_signal: "SIGINT".into(),
            mounts: vec![Mount {
                r#type: MountType::Tmpfs as i32,
                target: "/scratch".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let t = task(spec.clone());
        let b = create_body(&t, &spec, "n1", &[]).expect("valid");
        assert_eq!(b.entrypoint, Some(vec!["sleep".to_string()]));
        assert_eq!(b.cmd, Some(vec!["60".to_string()]));
        assert_eq!(b.stop_timeout, Some(2));
        assert_eq!(b.stop_signal.as_deref(), Some("SIGINT"));
        let labels = b.labels.expect("labels");
        assert_eq!(labels[LABEL_TASK_ID], "t1");
        assert_eq!(labels[LABEL_NODE_ID], "n1");
        assert_eq!(labels[LABEL_SERVICE_ID], "s1");
        let hc = b.host_config.expect("host config");
        assert_eq!(hc.memory, Some(64 << 20));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.memory_reservation, Some(32 << 20));
        assert_eq!(hc.cpu_shares, Some(256));
        assert_eq!(
            hc.restart_policy.and_then(|p| p.name),
            Some(RestartPolicyNameEnum::NO)
        );
        let mounts = hc.mounts.expect("mounts");
        assert_eq!(mounts[0].typ, Some(EngineMountType::TMPFS));
    }

    #[test]
    fn bad_specs_are_rejected_before_the_engine() {
        let relative = ContainerSpec {
            image: "x".into(),
            mounts: vec![Mount {
                target: "data".into(),
                source: "/tmp".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let t = task(relative.clone());
        assert!(matches!(
            create_body(&t, &relative, "n1", &[]),
            Err(ExecutorError::Rejected(_))
        ));
        let no_image = ContainerSpec::default();
        assert!(matches!(
            create_body(&t, &no_image, "n1", &[]),
            Err(ExecutorError::Rejected(_))
        ));
    }

    #[test]
    fn secrets_and_configs_are_read_only_binds_at_docker_places() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TaskFileStore::with_shm(dir.path(), dir.path(), "n1", MODES);
        let files = TaskFiles {
            secrets: vec![super::super::TaskFile {
                target: "db".into(),
                data: b"x".to_vec(),
            }],
            configs: vec![super::super::TaskFile {
                target: "app.conf".into(),
                data: b"y".to_vec(),
            }],
        };
        let mounts = file_mounts(&store, "t1", &files);
        let spec = ContainerSpec {
            image: "x".into(),
            ..Default::default()
        };
        let b = create_body(&task(spec.clone()), &spec, "n1", &mounts).expect("valid");
        let got: Vec<(String, String, bool)> = b
            .host_config
            .and_then(|h| h.mounts)
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                assert_eq!(m.typ, Some(EngineMountType::BIND));
                (
                    m.source.unwrap_or_default(),
                    m.target.unwrap_or_default(),
                    m.read_only == Some(true),
                )
            })
            .collect();
        let secret = store.secrets_dir("t1").join("db").display().to_string();
        let config = store
            .configs_dir("t1")
            .join("app.conf")
            .display()
            .to_string();
        assert_eq!(
            got,
            vec![
                (secret, "/run/secrets/db".to_string(), true),
                (config, "/app.conf".to_string(), true),
            ]
        );
    }

    #[test]
    fn host_ports_are_bound_and_ingress_is_not() {
        let spec = ContainerSpec {
            image: "x".into(),
            ..Default::default()
        };
        let mut t = task(spec.clone());
        t.endpoint = Some(swarm_api::Endpoint {
            spec: None,
            ports: vec![
                swarm_api::PortConfig {
                    target_port: 80,
                    published_port: 8080,
                    publish_mode: PublishMode::Host as i32,
                    ..Default::default()
                },
                swarm_api::PortConfig {
                    target_port: 53,
                    published_port: 5353,
                    protocol: PortProtocol::Udp as i32,
                    publish_mode: PublishMode::Ingress as i32,
                    ..Default::default()
                },
            ],
        });
        let b = create_body(&t, &spec, "n1", &[]).expect("valid");
        assert_eq!(b.exposed_ports, Some(vec!["80/tcp".to_string()]));
        let bindings = b
            .host_config
            .and_then(|h| h.port_bindings)
            .expect("bindings");
        let host: Vec<Option<String>> = bindings["80/tcp"]
            .iter()
            .flatten()
            .map(|b| b.host_port.clone())
            .collect();
        assert_eq!(host, vec![Some("8080".to_string())]);
        assert_eq!(bindings.len(), 1);
    }

    #[test]
    fn pulls_name_a_tag() {
        assert_eq!(with_tag("busybox"), "busybox:latest");
        assert_eq!(
            with_tag("localhost:5000/busybox"),
            "localhost:5000/busybox:latest"
        );
        assert_eq!(with_tag("busybox:1"), "busybox:1");
        assert_eq!(with_tag("busybox@sha256:ab"), "busybox@sha256:ab");
    }
}
