//! The Docker engine client for the executor: connecting to `--engine-addr`, listing the
//! containers this node owns (by label), removing one, and the engine's errors and log frames
//! in the agent's terms.
//!
//! Owns the `bollard` client set-up and the reading of engine errors (status codes, the
//! engine's own words). Must not decide what a container looks like (`spec`) nor drive a
//! task's container through its life (`controller`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as EngineError;
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use bollard::Docker;
use swarm_api::LogStream;

use super::{DockerExecutor, CONNECT_TIMEOUT, LABEL_NODE_ID, LABEL_TASK_ID, MODES};
use crate::executor::task_files::TaskFileStore;
use crate::executor::{ExecutorError, LogLine};

/// Per-request timeout for ordinary calls (headers of the response; streams run longer).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// A failure to reach the engine at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// An address of no scheme this executor speaks.
    #[error("engine address {addr:?}: expected unix:///path/to/docker.sock or tcp://host:port")]
    Scheme { addr: String },
    /// The client library refused the address.
    #[error("engine address {addr:?}: {source}")]
    Address {
        addr: String,
        #[source]
        source: EngineError,
    },
    #[error("no Docker engine answered at {addr} within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("Docker engine at {addr}: {source}")]
    Engine {
        addr: String,
        #[source]
        source: EngineError,
    },
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
        let engine = |source: EngineError| ConnectError::Engine {
            addr: addr.to_string(),
            source,
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
            net: Default::default(),
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
    pub(super) async fn own_containers(&self) -> Result<Vec<(String, String)>, EngineError> {
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
pub(super) fn client(addr: &str) -> Result<Docker, ConnectError> {
    let version = bollard::API_DEFAULT_VERSION;
    let docker = if let Some(path) = addr.strip_prefix("unix://") {
        Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, version)
    } else if addr.starts_with('/') {
        Docker::connect_with_unix(addr, REQUEST_TIMEOUT_SECS, version)
    } else if addr.starts_with("tcp://") || addr.starts_with("http://") {
        Docker::connect_with_http(addr, REQUEST_TIMEOUT_SECS, version)
    } else {
        return Err(ConnectError::Scheme {
            addr: addr.to_string(),
        });
    };
    docker.map_err(|source| ConnectError::Address {
        addr: addr.to_string(),
        source,
    })
}

/// The engine's own words for a failed call (its JSON `message` when it sent one).
pub(crate) fn engine_words(e: &EngineError) -> String {
    match e {
        EngineError::DockerResponseServerError { message, .. } => message.clone(),
        EngineError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

pub(super) fn status_of(e: &EngineError) -> Option<u16> {
    match e {
        EngineError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// A failed engine call as a task error: what the engine refuses as invalid (HTTP 400: a bad
/// image reference, a missing bind source, a memory limit below its minimum) can never work
/// and rejects the task; anything else fails it.
pub(super) fn task_error(what: &str, e: EngineError) -> ExecutorError {
    let what = what.to_string();
    if status_of(&e) == Some(400) {
        ExecutorError::EngineRejected { what, source: e }
    } else {
        ExecutorError::Engine { what, source: e }
    }
}

/// A failed engine call that fails the task whatever the engine answered.
pub(super) fn engine_failed(what: &str) -> impl Fn(EngineError) -> ExecutorError + '_ {
    move |source| ExecutorError::Engine {
        what: what.to_string(),
        source,
    }
}

/// The lines of one frame of the engine's log stream (a frame is normally one line with its
/// line feed; a TTY's console output may hold several, or part of one).
pub(super) fn frame_lines(frame: bollard::container::LogOutput) -> Vec<LogLine> {
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
pub(super) async fn remove_container(docker: &Docker, id: &str) -> Result<(), ExecutorError> {
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
        Err(e) => Err(task_error("removing the container", e)),
    }
}
