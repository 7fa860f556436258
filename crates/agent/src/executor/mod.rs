//! The executor boundary: how the agent turns one task into running work, whatever runs it
//! (a child process, a simulation, a Docker container).
//!
//! Owns the `Executor`/`Controller` traits and their error and exit types. Must not know about
//! sessions, the task table or reporting: the per-task runner in `worker.rs` drives a
//! `Controller` through its steps and turns the results into task states.

mod child_setup;
pub mod docker;
pub mod health;
mod logfile;
mod probe;
pub mod process;
pub mod sim;
pub mod task_files;

use std::collections::HashSet;
use std::time::Duration;

use bollard::errors::Error as EngineError;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use swarm_api::{LogStream, NodeDescription, Task};

pub use health::{Health, HealthChecks};

/// Why an executor step failed. The message ends up in the task's status, so it says what
/// was attempted and the OS's (or the engine's) words for why it did not work; the failing
/// call's own error is kept as the source. [`ExecutorError::is_rejection`] tells REJECTED
/// (the task can never run here) from FAILED (this try did not work).
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The task cannot be run by this executor at all (bad spec); reported as REJECTED. The
    /// message says what is wrong with the spec: there is no lower error.
    #[error("{0}")]
    Rejected(String),
    /// The engine refused the task as invalid (HTTP 400: a bad image reference, a missing
    /// bind source, a memory limit below its minimum): it can never work; REJECTED.
    #[error("{what}: {}", docker::engine_words(.source))]
    EngineRejected {
        what: String,
        #[source]
        source: EngineError,
    },
    /// The image is not here and cannot be pulled (no registry, no such repository); REJECTED,
    /// which lets the orchestrator decide, as SwarmKit does.
    #[error("image not found: {image} (pull failed: {})", docker::engine_words(.source))]
    ImageNotFound {
        image: String,
        #[source]
        source: EngineError,
    },
    /// A step failed with no lower error (the work was never started, the engine ended a wait
    /// without a code); reported as FAILED.
    #[error("{0}")]
    Failed(String),
    /// An OS call failed (e.g. the program does not exist); FAILED.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// An engine call failed; FAILED.
    #[error("{what}: {}", docker::engine_words(.source))]
    Engine {
        what: String,
        #[source]
        source: EngineError,
    },
    /// A blocking task of the executor panicked or was cancelled; FAILED.
    #[error("{what}: {source}")]
    Task {
        what: String,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The task's network namespace could not be made; FAILED.
    #[error("network: {0}")]
    Network(#[from] crate::network::NetError),
}

impl ExecutorError {
    /// True when the task can never run here (REJECTED); false when this try failed (FAILED).
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            ExecutorError::Rejected(_)
                | ExecutorError::EngineRejected { .. }
                | ExecutorError::ImageNotFound { .. }
        )
    }

    pub(crate) fn io(what: impl std::fmt::Display, source: std::io::Error) -> ExecutorError {
        ExecutorError::Io {
            what: what.to_string(),
            source,
        }
    }

    pub(crate) fn task(what: &str, source: tokio::task::JoinError) -> ExecutorError {
        ExecutorError::Task {
            what: what.to_string(),
            source,
        }
    }
}

/// How the task's work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited on its own with this code.
    Code(i32),
    /// Killed by this signal (which may be our own SIGTERM/SIGKILL from `stop`).
    Signal(i32),
}

impl ExitStatus {
    /// True when the work finished successfully (exit code 0).
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// The code to put in `TaskStatus.exit_code`: the exit code, or 128 + signal as shells do.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

/// What `Controller::start` tells about the started work, for the RUNNING status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Started {
    /// OS process ID, for executors that run processes (0 otherwise).
    pub pid: u32,
    /// Container ID, for executors that run containers (empty otherwise).
    pub container_id: String,
}

/// A way of running tasks. One per agent, shared by all task runners.
///
/// Object safe (futures are boxed) so the agent picks the executor at run time.
pub trait Executor: Send + Sync + 'static {
    /// Fills in what this executor knows about the node (engine version and labels, maybe
    /// better resource figures) on top of the host description the agent gathered.
    fn describe(
        &self,
        host: NodeDescription,
    ) -> BoxFuture<'_, Result<NodeDescription, ExecutorError>>;

    /// Makes the controller for one task. Cheap and synchronous: no work is done yet, but a
    /// spec this executor can never run is refused here.
    fn controller(&self, task: &Task) -> Result<Box<dyn Controller>, ExecutorError>;

    /// Makes the controller for a task that uses secrets or configs: `files` holds their data,
    /// which the controller delivers to the task and deletes when it ends. The default refuses
    /// any file, so an executor that cannot deliver them never starts a task without them.
    fn controller_with_files(
        &self,
        task: &Task,
        files: TaskFiles,
    ) -> Result<Box<dyn Controller>, ExecutorError> {
        if !files.is_empty() {
            return Err(ExecutorError::Rejected(
                "this executor cannot deliver secrets or configs".into(),
            ));
        }
        self.controller(task)
    }

    /// Finds work a previous run of this agent started for `task` and still going or ended
    /// unreported, and takes it over. `None` when there is nothing to take over (the default:
    /// work that dies with the agent), and the task is then reported lost.
    fn adopt(&self, _task: &Task) -> BoxFuture<'_, Result<Option<Adopted>, ExecutorError>> {
        Box::pin(async { Ok(None) })
    }

    /// Removes what earlier runs of this agent left for tasks other than `keep` (every task
    /// this agent now drives). Called once the first complete assignment set is known.
    fn cleanup(&self, _keep: HashSet<String>) -> BoxFuture<'_, Result<(), ExecutorError>> {
        Box::pin(async { Ok(()) })
    }

    /// True when the work runs on without the agent (containers): then a stopping agent leaves
    /// running tasks alone for its next run to adopt, instead of stopping them.
    fn outlives_agent(&self) -> bool {
        false
    }

    /// The output of the task `task_id` run here (stdout and stderr). Empty when this
    /// executor keeps none (the default) or knows nothing of the task.
    fn logs(
        &self,
        _task_id: &str,
        _opts: LogOptions,
    ) -> BoxFuture<'_, Result<LogLines, ExecutorError>> {
        Box::pin(async { Ok(Box::pin(futures::stream::empty()) as LogLines) })
    }
}

/// One secret or config as a task receives it: a file name and its content.
#[derive(Clone, PartialEq, Eq)]
pub struct TaskFile {
    /// A plain file name, or for a config an absolute path in the container (checked by the
    /// manager, and again by `TaskFiles::check`).
    pub target: String,
    pub data: Vec<u8>,
}

impl TaskFile {
    /// The file's name where the agent stages it: the target itself when it is a plain name,
    /// else the path with `%` and `/` escaped, so it stays one file of the staging directory.
    pub fn staged_name(&self) -> String {
        if !self.target.contains('/') {
            return self.target.clone();
        }
        self.target.replace('%', "%25").replace('/', "%2F")
    }

    /// Where a config is mounted in a container: its absolute path, or `/<name>`.
    pub fn config_path(&self) -> String {
        if self.target.starts_with('/') {
            self.target.clone()
        } else {
            format!("/{}", self.target)
        }
    }
}

impl std::fmt::Debug for TaskFile {
    /// Never the data: a secret must not reach a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFile")
            .field("target", &self.target)
            .field("len", &self.data.len())
            .finish()
    }
}

/// The secrets and configs one task uses, with their data (kept in memory only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFiles {
    pub secrets: Vec<TaskFile>,
    pub configs: Vec<TaskFile>,
}

impl TaskFiles {
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.configs.is_empty()
    }

    /// Refuses a target that is not a plain file name (or, for a config, an absolute path of
    /// plain names): the agent does not trust the manager to have checked, since the name is
    /// joined to a directory it writes in and the path is mounted in a container.
    pub fn check(&self) -> Result<(), ExecutorError> {
        let plain = |t: &str| !(t.is_empty() || t == "." || t == ".." || t.contains(['/', '\0']));
        let secrets = self.secrets.iter().map(|f| (f, plain(&f.target)));
        let configs = self.configs.iter().map(|f| {
            let ok = match f.target.strip_prefix('/') {
                Some(path) => path.split('/').all(plain),
                None => plain(&f.target),
            };
            (f, ok)
        });
        for (f, ok) in secrets.chain(configs) {
            if !ok {
                return Err(ExecutorError::Rejected(format!(
                    "invalid secret or config target {:?}",
                    f.target
                )));
            }
        }
        Ok(())
    }
}

/// What part of a task's output `Executor::logs` gives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep the stream open and send lines as they are written.
    pub follow: bool,
    /// Start with only the last this many lines (None: from the beginning).
    pub tail: Option<u64>,
}

/// One line of a task's output, without its line feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    /// When the line was read (ms since the epoch).
    pub timestamp_ms: i64,
    pub data: Vec<u8>,
}

/// A task's output as it is read. Pulled by the consumer: an executor reads ahead at most a
/// small bounded buffer, so a slow consumer slows the reading rather than growing memory.
pub type LogLines = BoxStream<'static, LogLine>;

/// Work taken over by `Executor::adopt`: its controller, already started.
pub struct Adopted {
    pub controller: Box<dyn Controller>,
    pub started: Started,
}

/// Drives one task's work through its life: `prepare` → `health` → `start` → `wait`, with
/// `stop` possible once started and `remove` at the end.
pub trait Controller: Send {
    /// Gets everything ready to start (directories, images). May be slow.
    fn prepare(&mut self) -> BoxFuture<'_, Result<(), ExecutorError>>;

    /// Starts the work. Returns once it runs.
    fn start(&mut self) -> BoxFuture<'_, Result<Started, ExecutorError>>;

    /// Resolves when the started work ends. Must be cancel safe: the runner drops this future
    /// to call `stop` and then calls `wait` again for the exit status.
    fn wait(&mut self) -> BoxFuture<'_, Result<ExitStatus, ExecutorError>>;

    /// Asks the work to end (SIGTERM or the like), forces it after `grace`, and returns once it
    /// has ended. Idempotent; a no-op when nothing runs.
    fn stop(&mut self, grace: Duration) -> BoxFuture<'_, Result<(), ExecutorError>>;

    /// Frees what `prepare` made (the task has left this node). Best effort.
    fn remove(&mut self) -> BoxFuture<'_, Result<(), ExecutorError>>;

    /// The work's healthcheck, asked once it is prepared (or adopted): its verdicts as they
    /// change, or None when the work has none (the default), which then counts as RUNNING as
    /// soon as it started. The stream checks nothing until polled (the runner polls it once
    /// `start` returned) and stops checking when dropped (when the work ends).
    fn health(&mut self) -> Option<HealthChecks> {
        None
    }
}
