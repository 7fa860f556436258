//! The `sim` executor (DESIGN §6): no work at all. A task reaches RUNNING after a configured
//! delay and stays there until stopped, so `swarm-bench` can simulate thousands of nodes in
//! one process.
//!
//! Owns nothing outside memory. Two variables in the task's env change its fate:
//! `SIM_FAIL_AFTER_MS=n` makes it exit with code 1 after n ms of running, and
//! `SIM_EXIT_AFTER_MS=n` makes it exit with code 0 (a finished job).

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use swarm_api::{EngineDescription, NodeDescription, Task};
use tokio::time::Instant;

use super::{Controller, Executor, ExecutorError, ExitStatus, Started};

/// What `wait` reports once a simulated task was stopped: as if SIGTERM ended it.
const STOPPED: ExitStatus = ExitStatus::Signal(15);

/// Simulates tasks.
pub struct SimExecutor {
    start_delay: Duration,
}

impl SimExecutor {
    pub fn new(start_delay: Duration) -> Self {
        SimExecutor { start_delay }
    }
}

impl Executor for SimExecutor {
    fn describe(
        &self,
        mut host: NodeDescription,
    ) -> BoxFuture<'_, Result<NodeDescription, ExecutorError>> {
        host.engine = Some(EngineDescription {
            engine_version: format!("sim/{}", env!("CARGO_PKG_VERSION")),
            labels: Default::default(),
        });
        async move { Ok(host) }.boxed()
    }

    fn controller(&self, task: &Task) -> Result<Box<dyn Controller>, ExecutorError> {
        let env: &[String] = task
            .spec
            .as_ref()
            .and_then(|s| s.container.as_ref())
            .map(|c| c.env.as_slice())
            .unwrap_or_default();
        let ms = |name: &str| -> Result<Option<Duration>, ExecutorError> {
            let prefix = format!("{name}=");
            match env.iter().find_map(|kv| kv.strip_prefix(&prefix)) {
                None => Ok(None),
                Some(v) => v
                    .parse::<u64>()
                    .map(|n| Some(Duration::from_millis(n)))
                    .map_err(|_| {
                        ExecutorError::Rejected(format!("{name}: {v:?} is not a number of ms"))
                    }),
            }
        };
        let end = match (ms("SIM_FAIL_AFTER_MS")?, ms("SIM_EXIT_AFTER_MS")?) {
            (Some(d), _) => Some((d, ExitStatus::Code(1))),
            (None, Some(d)) => Some((d, ExitStatus::Code(0))),
            (None, None) => None,
        };
        Ok(Box::new(SimController {
            start_delay: self.start_delay,
            end,
            ends_at: None,
            exit: None,
        }))
    }
}

struct SimController {
    start_delay: Duration,
    /// After how long running the task ends by itself, and how.
    end: Option<(Duration, ExitStatus)>,
    ends_at: Option<(Instant, ExitStatus)>,
    exit: Option<ExitStatus>,
}

impl Controller for SimController {
    fn prepare(&mut self) -> BoxFuture<'_, Result<(), ExecutorError>> {
        async { Ok(()) }.boxed()
    }

    fn start(&mut self) -> BoxFuture<'_, Result<Started, ExecutorError>> {
        async move {
            tokio::time::sleep(self.start_delay).await;
            self.ends_at = self.end.map(|(d, exit)| (Instant::now() + d, exit));
            Ok(Started::default())
        }
        .boxed()
    }

    fn wait(&mut self) -> BoxFuture<'_, Result<ExitStatus, ExecutorError>> {
        async move {
            if let Some(exit) = self.exit {
                return Ok(exit);
            }
            match self.ends_at {
                Some((at, exit)) => {
                    tokio::time::sleep_until(at).await;
                    self.exit = Some(exit);
                    Ok(exit)
                }
                None => futures::future::pending().await,
            }
        }
        .boxed()
    }

    fn stop(&mut self, _grace: Duration) -> BoxFuture<'_, Result<(), ExecutorError>> {
        if self.exit.is_none() {
            self.exit = Some(STOPPED);
        }
        async { Ok(()) }.boxed()
    }

    fn remove(&mut self) -> BoxFuture<'_, Result<(), ExecutorError>> {
        async { Ok(()) }.boxed()
    }
}
