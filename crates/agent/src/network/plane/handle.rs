//! The plane's handle and its commands: what executors ask of the plane (a task's namespace,
//! taking it away, cleaning up after earlier runs), and the errors they get back. Owns no
//! kernel object; the plane (`mod.rs`) serves every command in order.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use swarm_api::Task;
use tokio::sync::{mpsc, oneshot};

use super::super::kernel::KernelError;

/// How long a task waits for its networks to appear in the manager's view.
pub(super) const VIEW_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("network {0} is not in this node's view after {VIEW_WAIT:?}")]
    NotInView(String),
    #[error("attachment to network {0} has no address")]
    NoAddress(String),
    #[error("recording {path}: {source}")]
    Record {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the node's network plane has stopped")]
    Stopped,
}

/// Where an attach's answer goes: the task namespace's path.
pub(super) type Reply = oneshot::Sender<Result<PathBuf, NetError>>;

pub(super) enum Cmd {
    Attach {
        task: Box<Task>,
        /// A container's process: its namespace is the task's (else the plane makes one).
        pid: Option<u32>,
        reply: Reply,
    },
    Detach {
        task_id: String,
    },
    Cleanup {
        keep: HashSet<String>,
    },
}

/// A handle on the plane; cheap to clone.
#[derive(Clone)]
pub struct NetPlane {
    pub(super) tx: mpsc::UnboundedSender<Cmd>,
}

/// The namespace a task with networks runs in.
pub fn task_netns(task_id: &str) -> String {
    format!("swarm-{task_id}")
}

impl NetPlane {
    /// Gives `task` its namespace with one interface per network; returns the namespace's
    /// path for the task's process to enter.
    pub async fn attach(&self, task: &Task) -> Result<PathBuf, NetError> {
        self.attach_to(task, None).await
    }

    /// Plugs `task`'s networks into the namespace process `pid` already lives in (a started
    /// container's), named `swarm-<task id>` like the others.
    pub async fn attach_pid(&self, task: &Task, pid: u32) -> Result<PathBuf, NetError> {
        self.attach_to(task, Some(pid)).await
    }

    async fn attach_to(&self, task: &Task, pid: Option<u32>) -> Result<PathBuf, NetError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Attach {
                task: Box::new(task.clone()),
                pid,
                reply,
            })
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Takes the task's namespace away (and its networks' switches once no task uses them).
    /// Fire and forget: callable from `Drop`.
    pub fn detach(&self, task_id: &str) {
        let _ = self.tx.send(Cmd::Detach {
            task_id: task_id.to_string(),
        });
    }

    /// Removes what earlier runs left for tasks other than `keep`.
    pub fn cleanup(&self, keep: HashSet<String>) {
        let _ = self.tx.send(Cmd::Cleanup { keep });
    }
}
