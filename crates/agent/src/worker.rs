//! The worker: this node's task table and its reconciliation with the manager's assignments.
//!
//! Owns the table (task ID → the runner's directive channel) and the set of runner tasks. Each
//! assignment message is reconciled: new tasks get a runner, changed desired states are passed
//! on, tasks gone from the set are stopped silently, and tasks the manager thinks started here
//! but this agent never heard of (it restarted) are handed to the executor to adopt, or
//! reported lost. After the first complete set, the executor removes what earlier runs left for
//! other tasks. Also keeps, in memory only, the secrets and configs of the current assignment
//! set, and hands each new task's controller the data it uses. Must not talk to the manager itself (the session feeds it, the reporter carries
//! its reports) nor touch executor internals.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use swarm_api::state::is_terminal;
use swarm_api::{
    now_ms, AssignmentsMessage, AssignmentsType, Config, NodeDescription, Secret, Task, TaskState,
    TaskStatus, TaskStatusUpdate,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::executor::{Executor, ExecutorError, TaskFile, TaskFiles};
use crate::reporter::StatusTx;
use crate::runner::{self, Directive};

/// How long the first cleanup of leftovers may hold up the assignments that follow.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What the table knows of a task.
enum Entry {
    /// A runner drives it (or drove it to its end and waits for removal).
    Runner(watch::Sender<Directive>),
    /// Never run here and never will be: already finished elsewhere, reported lost, or told to
    /// stop before it started. Kept so the next assignment does not act on it again.
    Settled,
}

pub(crate) struct Worker {
    executor: Arc<dyn Executor>,
    reports: StatusTx,
    table: HashMap<String, Entry>,
    runners: JoinSet<()>,
    /// Whether the executor has cleaned up after earlier runs of the agent.
    cleaned: bool,
    /// Secrets and configs by ID, as the last assignment set sent them (never written to disk
    /// here, never logged).
    secrets: HashMap<String, Secret>,
    configs: HashMap<String, Config>,
    /// This node as it describes itself, for the tasks' templates (`{{.Node.Hostname}}`).
    node: NodeDescription,
}

impl Worker {
    pub(crate) fn new(
        executor: Arc<dyn Executor>,
        reports: StatusTx,
        node: NodeDescription,
    ) -> Self {
        Worker {
            node,
            executor,
            reports,
            table: HashMap::new(),
            runners: JoinSet::new(),
            cleaned: false,
            secrets: HashMap::new(),
            configs: HashMap::new(),
        }
    }

    /// Reconciles every assignment until `shutdown`, then stops every task (each within its
    /// stop grace period) and returns once all runners are done.
    pub(crate) async fn run(
        mut self,
        mut assignments: mpsc::UnboundedReceiver<AssignmentsMessage>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                m = assignments.recv() => match m {
                    Some(m) => {
                        let complete = m.r#type() == AssignmentsType::Complete;
                        self.apply(m);
                        if complete && !self.cleaned {
                            self.cleaned = true;
                            self.cleanup().await;
                        }
                    }
                    None => break,
                },
                // Reap finished runners so the set stays small; a panic is a bug worth a log.
                Some(r) = self.runners.join_next(), if !self.runners.is_empty() => {
                    if let Err(e) = r {
                        tracing::error!(error = %e, "task runner failed");
                    }
                }
            }
        }
        // Work that outlives the agent is left running for its next run to adopt.
        let last = if self.executor.outlives_agent() {
            Directive::Detach
        } else {
            Directive::AgentShutdown
        };
        for entry in self.table.values() {
            if let Entry::Runner(tx) = entry {
                tx.send_replace(last);
            }
        }
        while let Some(r) = self.runners.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "task runner failed");
            }
        }
    }

    /// Lets the executor remove what earlier runs of the agent left for tasks it does not
    /// drive now. Awaited (bounded) before the next assignment, so a task assigned later
    /// cannot have its fresh work taken for a leftover.
    async fn cleanup(&self) {
        let keep: HashSet<String> = self
            .table
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Runner(_)))
            .map(|(id, _)| id.clone())
            .collect();
        match tokio::time::timeout(CLEANUP_TIMEOUT, self.executor.cleanup(keep)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cleaning up after an earlier run"),
            Err(_) => tracing::warn!("cleaning up after an earlier run took too long"),
        }
    }

    fn apply(&mut self, msg: AssignmentsMessage) {
        let complete = msg.r#type() == AssignmentsType::Complete;
        let listed: HashSet<String> = msg.tasks.iter().map(|t| t.id.clone()).collect();
        if complete {
            // A complete set replaces what the node holds: data no task uses any more goes.
            self.secrets.clear();
            self.configs.clear();
        }
        self.secrets
            .extend(msg.secrets.into_iter().map(|x| (x.id.clone(), x)));
        self.configs
            .extend(msg.configs.into_iter().map(|x| (x.id.clone(), x)));
        for task in msg.tasks {
            self.upsert(task);
        }
        let gone: Vec<String> = if complete {
            self.table
                .keys()
                .filter(|id| !listed.contains(*id))
                .cloned()
                .collect()
        } else {
            msg.removed_task_ids
        };
        for id in gone {
            if let Some(Entry::Runner(tx)) = self.table.remove(&id) {
                tx.send_replace(Directive::Remove);
            }
        }
    }

    fn upsert(&mut self, task: Task) {
        if let Some(entry) = self.table.get(&task.id) {
            if let Entry::Runner(tx) = entry {
                let desired = Directive::Desired(task.desired_state());
                tx.send_if_modified(|d| {
                    // Once removal or shutdown was asked, no assignment takes it back.
                    let changed = matches!(d, Directive::Desired(_)) && *d != desired;
                    if changed {
                        *d = desired;
                    }
                    changed
                });
            }
            return;
        }
        let observed = task.status.as_ref().map(|s| s.state()).unwrap_or_default();
        if is_terminal(observed) {
            // Finished before this agent knew it (e.g. reported by a previous run of it).
            self.table.insert(task.id, Entry::Settled);
            return;
        }
        if (observed as i32) > (TaskState::Assigned as i32) {
            // The manager saw it start on this node, yet this agent has no record of it: the
            // agent restarted. Its work may have outlived it (a container): adopt it, or
            // report it lost.
            let (tx, rx) = watch::channel(Directive::Desired(task.desired_state()));
            self.table.insert(task.id.clone(), Entry::Runner(tx));
            self.runners.spawn(runner::adopt(
                task,
                self.executor.clone(),
                rx,
                self.reports.clone(),
            ));
            return;
        }
        if (task.desired_state() as i32) > (TaskState::Running as i32) {
            self.report(&task.id, TaskState::Shutdown, "shut down before it started");
            self.table.insert(task.id, Entry::Settled);
            return;
        }
        let ctl = self.files(&task).and_then(|files| {
            let expanded = crate::templates::expand(&task, &self.node)?;
            self.executor.controller_with_files(&expanded, files)
        });
        let (tx, rx) = watch::channel(Directive::Desired(task.desired_state()));
        self.table.insert(task.id.clone(), Entry::Runner(tx));
        self.runners
            .spawn(runner::run(task, ctl, rx, self.reports.clone()));
    }

    /// The data of the secrets and configs `task` uses. One the manager did not send makes the
    /// task fail to start rather than start without it.
    fn files(&self, task: &Task) -> Result<TaskFiles, ExecutorError> {
        let mut files = TaskFiles::default();
        let Some(spec) = task.spec.as_ref() else {
            return Ok(files);
        };
        for r in &spec.secrets {
            let data = self
                .secrets
                .get(&r.secret_id)
                .and_then(|s| s.spec.as_ref())
                .map(|s| s.data.clone())
                .ok_or_else(|| {
                    ExecutorError::Rejected(format!("secret {} was not sent", r.secret_name))
                })?;
            files.secrets.push(TaskFile {
                target: r.target.clone(),
                data,
            });
        }
        for r in &spec.configs {
            let data = self
                .configs
                .get(&r.config_id)
                .and_then(|s| s.spec.as_ref())
                .map(|s| s.data.clone())
                .ok_or_else(|| {
                    ExecutorError::Rejected(format!("config {} was not sent", r.config_name))
                })?;
            files.configs.push(TaskFile {
                target: r.target.clone(),
                data,
            });
        }
        Ok(files)
    }

    fn report(&self, task_id: &str, state: TaskState, message: &str) {
        let _ = self.reports.send(TaskStatusUpdate {
            task_id: task_id.to_string(),
            status: Some(TaskStatus {
                timestamp: now_ms(),
                state: state as i32,
                message: message.to_string(),
                err: if state == TaskState::Failed {
                    message.to_string()
                } else {
                    String::new()
                },
                ..Default::default()
            }),
        });
    }
}
