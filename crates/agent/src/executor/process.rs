//! The `process` executor (DESIGN §6): runs a task's command as a child process group, like
//! Nomad's raw_exec, for machines without Docker. The image is recorded, not run.
//!
//! Owns the child processes it spawns and the per-task directories
//! `<state_dir>/worker/tasks/<task id>/` (working directory unless the spec names one, plus
//! `stdout.log`/`stderr.log`). The task's secrets and configs are staged by `task_files`
//! (secrets on a tmpfs, outside the state dir) in the directories named in
//! `SWARM_SECRETS_DIR`/`SWARM_CONFIGS_DIR`; secret files are deleted as soon as the task's
//! process ends. Published ports are passed in `SWARM_PORT_<target>[_UDP]=<published>` for
//! the process to bind. Must not touch anything else under the state dir.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use swarm_api::{EngineDescription, LogStream, NodeDescription, PortProtocol, Task};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::child_setup::{enter_netns, set_parent_death_signal};
use super::health::{check_command, probe_loop, HealthChecks, HealthSettings};
use super::probe::Probe;
use super::task_files::{Modes, TaskFileStore};
use super::{
    logfile, Controller, Executor, ExecutorError, ExitStatus, LogLines, LogOptions, Started,
    TaskFiles,
};
use crate::network::NetPlane;

/// The task's process runs as the agent's user: only that user needs to read a secret.
const MODES: Modes = Modes {
    secret: 0o400,
    config: 0o444,
};

/// How often `stop` looks whether the whole process group is gone.
const GROUP_POLL: Duration = Duration::from_millis(50);

/// Runs tasks as local process groups.
pub struct ProcessExecutor {
    tasks_dir: PathBuf,
    files: Arc<TaskFileStore>,
    /// Gives tasks attached to networks their namespace (none: such tasks are refused).
    net: Option<NetPlane>,
}

impl ProcessExecutor {
    /// `worker_dir` is `<state_dir>/worker`; task directories go under its `tasks/`.
    /// `node_id` names this node's directory for secrets on the tmpfs.
    /// `net` gives tasks attached to networks their namespace.
    pub fn new(worker_dir: &Path, node_id: &str, net: Option<NetPlane>) -> Self {
        let tasks_dir = worker_dir.join("tasks");
        ProcessExecutor {
            files: Arc::new(TaskFileStore::new(&tasks_dir, node_id, MODES)),
            tasks_dir,
            net,
        }
    }
}

impl Executor for ProcessExecutor {
    fn describe(
        &self,
        mut host: NodeDescription,
    ) -> BoxFuture<'_, Result<NodeDescription, ExecutorError>> {
        host.engine = Some(EngineDescription {
            engine_version: format!("process/{}", env!("CARGO_PKG_VERSION")),
            labels: Default::default(),
        });
        async move { Ok(host) }.boxed()
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
        let container = task
            .spec
            .as_ref()
            .and_then(|s| s.container.as_ref())
            .ok_or_else(|| ExecutorError::Rejected("task has no container spec".into()))?;
        let mut words: Vec<String> = container
            .command
            .iter()
            .chain(container.args.iter())
            .cloned()
            .collect();
        if words.is_empty() {
            // A service made with only `--image` has nothing to run here; a placeholder that
            // runs until stopped lets it reach RUNNING like a long-lived container would.
            words = vec!["sleep".into(), "infinity".into()];
        }
        let program = words.remove(0);
        if program.is_empty() {
            return Err(ExecutorError::Rejected("empty program name".into()));
        }
        let mut env: Vec<(String, String)> = container
            .env
            .iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let task_dir = self.tasks_dir.join(&task.id);
        // No container network: a process binds the published port itself, named here by
        // its target (`SWARM_PORT_80=8080`, `SWARM_PORT_53_UDP=5353`).
        for p in task.endpoint.iter().flat_map(|e| e.ports.iter()) {
            if p.published_port == 0 {
                continue;
            }
            let name = match p.protocol() {
                PortProtocol::Tcp => format!("SWARM_PORT_{}", p.target_port),
                PortProtocol::Udp => format!("SWARM_PORT_{}_UDP", p.target_port),
            };
            env.push((name, p.published_port.to_string()));
        }
        // After the spec's variables, so a task cannot point them elsewhere by mistake.
        if !files.secrets.is_empty() {
            let dir = self.files.secrets_dir(&task.id).display().to_string();
            env.push(("SWARM_SECRETS_DIR".into(), dir));
        }
        if !files.configs.is_empty() {
            let dir = self.files.configs_dir(&task.id).display().to_string();
            env.push(("SWARM_CONFIGS_DIR".into(), dir));
        }
        let net = if task.networks.is_empty() {
            None
        } else {
            let plane = self.net.clone().ok_or_else(|| {
                ExecutorError::Rejected("this node cannot attach tasks to networks".into())
            })?;
            Some(TaskNet {
                plane,
                task: task.clone(),
                netns: None,
            })
        };
        // The spec's own check only: an image's HEALTHCHECK is not run here, as its image is not.
        let health = container
            .healthcheck
            .as_ref()
            .and_then(|h| Some((check_command(h)?, HealthSettings::of(h))));
        Ok(Box::new(ProcessController {
            health,
            net,
            task_id: task.id.clone(),
            store: self.files.clone(),
            files,
            program,
            args: words,
            env,
            dir: (!container.dir.is_empty()).then(|| PathBuf::from(&container.dir)),
            task_dir,
            child: None,
            pgid: None,
            exit: None,
        }))
    }

    /// Deletes the secret files an earlier run of the agent (killed before it could) left for
    /// tasks it no longer drives. Their logs and configs stay, as for any finished task.
    fn cleanup(&self, keep: HashSet<String>) -> BoxFuture<'_, Result<(), ExecutorError>> {
        let store = self.files.clone();
        if let Some(net) = &self.net {
            // A process task never outlives the agent that started it (parent-death signal),
            // so every namespace an earlier run made is stale, whatever is still assigned.
            net.cleanup(HashSet::new());
        }
        async move {
            tokio::task::spawn_blocking(move || store.sweep(&keep, false))
                .await
                .map_err(|e| ExecutorError::task("sweeping secret files", e))
        }
        .boxed()
    }

    /// Reads the task's `stdout.log` and `stderr.log`. The files hold no times, so the two
    /// are not interleaved in writing order, and `tail` applies to each of them.
    fn logs(
        &self,
        task_id: &str,
        opts: LogOptions,
    ) -> BoxFuture<'_, Result<LogLines, ExecutorError>> {
        // The ID names a directory: anything but an ID's characters could climb out of it.
        let valid = !task_id.is_empty() && task_id.chars().all(|c| c.is_ascii_alphanumeric());
        let dir = self.tasks_dir.join(task_id);
        let task_id = task_id.to_string();
        async move {
            if !valid {
                return Err(ExecutorError::Rejected(format!(
                    "invalid task ID {task_id:?}"
                )));
            }
            let streams = [
                logfile::lines(dir.join("stdout.log"), LogStream::Stdout, opts),
                logfile::lines(dir.join("stderr.log"), LogStream::Stderr, opts),
            ];
            Ok(Box::pin(futures::stream::select_all(streams)) as LogLines)
        }
        .boxed()
    }
}

/// A task's place on the node's networks: its namespace once attached.
struct TaskNet {
    plane: NetPlane,
    task: Task,
    netns: Option<PathBuf>,
}

struct ProcessController {
    /// The task's healthcheck: its command and timing.
    health: Option<(Vec<String>, HealthSettings)>,
    /// Set for a task attached to networks: its process runs in the task's namespace.
    net: Option<TaskNet>,
    task_id: String,
    store: Arc<TaskFileStore>,
    /// Secrets and configs to write at `prepare`; dropped with the controller.
    files: TaskFiles,
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
    task_dir: PathBuf,
    child: Option<Child>,
    /// The group we made the child lead; kept after the leader exits to clean up stragglers.
    pgid: Option<Pid>,
    exit: Option<ExitStatus>,
}

impl ProcessController {
    fn spawn(&mut self) -> Result<Started, ExecutorError> {
        let log = |name: &str| {
            File::create(self.task_dir.join(name)).map_err(|e| {
                ExecutorError::io(
                    format_args!("creating {}", self.task_dir.join(name).display()),
                    e,
                )
            })
        };
        let stdout = log("stdout.log")?;
        let stderr = log("stderr.log")?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            // The agent's environment is inherited (PATH finds the program, as raw_exec does);
            // the task's own variables override it.
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.dir.as_deref().unwrap_or(&self.task_dir))
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            // Its own group, so stop reaches everything the task forked.
            .process_group(0);
        set_parent_death_signal(&mut cmd);
        if let Some(path) = self.net.as_ref().and_then(|n| n.netns.as_ref()) {
            enter_netns(&mut cmd, path)?;
        }
        // Spawned on the calling runtime thread, never from spawn_blocking: the parent-death
        // signal follows the spawning *thread*, and the runtime's worker threads outlive the
        // child while blocking-pool threads may exit when idle.
        let child = cmd
            .spawn()
            .map_err(|e| ExecutorError::io(format_args!("starting {:?}", self.program), e))?;
        let pid = child.id().unwrap_or(0);
        self.pgid = i32::try_from(pid).ok().map(Pid::from_raw);
        self.child = Some(child);
        Ok(Started {
            pid,
            container_id: String::new(),
        })
    }

    /// Records how the group's leader ended.
    fn record_exit(&mut self, status: std::process::ExitStatus) -> ExitStatus {
        let exit = match (status.code(), status.signal()) {
            (Some(c), _) => ExitStatus::Code(c),
            (None, Some(s)) => ExitStatus::Signal(s),
            (None, None) => ExitStatus::Code(-1),
        };
        self.exit = Some(exit);
        self.child = None;
        exit
    }

    fn kill_group(&self, sig: Signal) {
        if let Some(pgid) = self.pgid {
            // ESRCH (group already empty) is the normal case after a clean exit.
            let _ = killpg(pgid, sig);
        }
    }

    /// Deletes the task's secret files: the task's process is over, and nothing else may read
    /// them. Synchronous: a few small files.
    fn delete_secrets(&self) {
        if !self.files.secrets.is_empty() {
            self.store.remove_secrets(&self.task_id);
        }
    }

    /// Takes the task off its networks once its process is over: its address may be handed
    /// to another task at once, and an interface left up would still answer for it.
    fn release_net(&mut self) {
        if let Some(net) = self.net.take() {
            net.plane.detach(&self.task_id);
        }
    }

    fn group_gone(&self) -> bool {
        match self.pgid {
            Some(pgid) => killpg(pgid, None) == Err(Errno::ESRCH),
            None => true,
        }
    }
}

impl Controller for ProcessController {
    fn prepare(&mut self) -> BoxFuture<'_, Result<(), ExecutorError>> {
        async move {
            tokio::fs::create_dir_all(&self.task_dir)
                .await
                .map_err(|e| {
                    ExecutorError::io(format_args!("creating {}", self.task_dir.display()), e)
                })?;
            if let Some(net) = self.net.as_mut() {
                net.netns = Some(net.plane.attach(&net.task).await?);
            }
            self.store.stage(&self.task_id, &self.files)
        }
        .boxed()
    }

    fn start(&mut self) -> BoxFuture<'_, Result<Started, ExecutorError>> {
        // Spawn synchronously, on this thread (see `spawn`).
        let r = self.spawn();
        async move { r }.boxed()
    }

    fn wait(&mut self) -> BoxFuture<'_, Result<ExitStatus, ExecutorError>> {
        async move {
            if let Some(exit) = self.exit {
                return Ok(exit);
            }
            let child = self
                .child
                .as_mut()
                .ok_or_else(|| ExecutorError::Failed("process was never started".into()))?;
            let status = child
                .wait()
                .await
                .map_err(|e| ExecutorError::io("waiting for the process", e))?;
            let exit = self.record_exit(status);
            // The task is over when its leader is: what it left in its group goes too.
            self.kill_group(Signal::SIGKILL);
            self.delete_secrets();
            self.release_net();
            Ok(exit)
        }
        .boxed()
    }

    fn stop(&mut self, grace: Duration) -> BoxFuture<'_, Result<(), ExecutorError>> {
        async move {
            if self.pgid.is_none() || (self.exit.is_some() && self.group_gone()) {
                return Ok(());
            }
            let deadline = Instant::now() + grace;
            self.kill_group(Signal::SIGTERM);
            // Give the whole group the grace period, not just the leader.
            while Instant::now() < deadline {
                let tick = (Instant::now() + GROUP_POLL).min(deadline);
                match self.child.as_mut() {
                    Some(child) => {
                        if let Ok(r) = tokio::time::timeout_at(tick, child.wait()).await {
                            let status =
                                r.map_err(|e| ExecutorError::io("waiting for the process", e))?;
                            self.record_exit(status);
                        }
                    }
                    None => {
                        if self.group_gone() {
                            return Ok(());
                        }
                        tokio::time::sleep_until(tick).await;
                    }
                }
            }
            self.kill_group(Signal::SIGKILL);
            if let Some(child) = self.child.as_mut() {
                let status = child
                    .wait()
                    .await
                    .map_err(|e| ExecutorError::io("waiting for the process", e))?;
                self.record_exit(status);
            }
            self.delete_secrets();
            self.release_net();
            Ok(())
        }
        .boxed()
    }

    /// The check runs as the task does: its environment and directory, in its namespace.
    fn health(&mut self) -> Option<HealthChecks> {
        let (argv, settings) = self.health.clone()?;
        let probe = Arc::new(Probe {
            argv,
            env: self.env.clone(),
            dir: self.dir.clone().unwrap_or_else(|| self.task_dir.clone()),
            netns: self.net.as_ref().and_then(|n| n.netns.clone()),
        });
        Some(probe_loop(settings, move |timeout| {
            probe.clone().run(timeout)
        }))
    }

    fn remove(&mut self) -> BoxFuture<'_, Result<(), ExecutorError>> {
        async move {
            self.delete_secrets();
            self.release_net();
            match tokio::fs::remove_dir_all(&self.task_dir).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(ExecutorError::io(
                    format_args!("removing {}", self.task_dir.display()),
                    e,
                )),
            }
        }
        .boxed()
    }
}

impl Drop for ProcessController {
    /// A controller dropped while its process still runs (its runner was aborted) must not
    /// leave the group behind until the agent itself exits.
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill_group(Signal::SIGKILL);
        }
        // Whatever way the task left, its secrets and namespace do not stay behind.
        self.delete_secrets();
        self.release_net();
    }
}
