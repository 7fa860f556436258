//! The node's one error type, [`NodeError`]: what went wrong, in words that name the setting or
//! the step, with the underlying error kept as its source (so `swarmd` can print the whole
//! chain on one line). [`Context`] adds the step to any error or missing value.

use std::error::Error as StdError;
use std::fmt::Display;

type Source = Box<dyn StdError + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A setting is unusable: the message names it and says why. Nothing was started.
    #[error("{0}")]
    Invalid(String),
    /// A step failed; `source` says how.
    #[error("{what}")]
    Step {
        what: String,
        #[source]
        source: Source,
    },
    /// A step failed for a reason of its own (no underlying error).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Ca(#[from] swarm_ca::CaError),
    #[error(transparent)]
    Raft(#[from] swarm_raft::RaftError),
    #[error(transparent)]
    Write(#[from] swarm_store::WriteError),
    #[error(transparent)]
    Agent(#[from] swarm_agent::AgentError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl NodeError {
    pub(crate) fn failed(what: impl Display) -> NodeError {
        NodeError::Failed(what.to_string())
    }
}

pub type Result<T, E = NodeError> = std::result::Result<T, E>;

/// `.context("step")` on results and options, as the rest of the workspace reads it.
pub(crate) trait Context<T> {
    fn context<C: Display>(self, what: C) -> Result<T>;
    fn with_context<C: Display, F: FnOnce() -> C>(self, what: F) -> Result<T>;
}

impl<T, E: StdError + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn context<C: Display>(self, what: C) -> Result<T> {
        self.map_err(|e| NodeError::Step {
            what: what.to_string(),
            source: Box::new(e),
        })
    }

    fn with_context<C: Display, F: FnOnce() -> C>(self, what: F) -> Result<T> {
        self.map_err(|e| NodeError::Step {
            what: what().to_string(),
            source: Box::new(e),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context<C: Display>(self, what: C) -> Result<T> {
        self.ok_or_else(|| NodeError::failed(what))
    }

    fn with_context<C: Display, F: FnOnce() -> C>(self, what: F) -> Result<T> {
        self.ok_or_else(|| NodeError::failed(what()))
    }
}

/// Returns early with a [`NodeError::Failed`] made of the format arguments.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::NodeError::Failed(format!($($arg)*)))
    };
}
pub(crate) use bail;

/// The error and its causes on one line, each cause once.
pub fn one_line(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ").replace('\n', " ")
}
