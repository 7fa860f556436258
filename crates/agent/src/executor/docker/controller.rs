//! One task's container through its life: make sure the image is here, stage the task's files,
//! create, start, wait, stop and remove the container.
//!
//! Owns the steps of `Controller` for the engine and the task's staged files. Must not build
//! the create body (`spec` does, before the controller exists) nor look for containers of other
//! tasks (`engine` and the executor do).

use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as EngineError;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptions, CreateImageOptions, StopContainerOptions};
use bollard::Docker;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use super::engine::{remove_container, status_of, task_error};
use super::health;
use crate::executor::task_files::TaskFileStore;
use crate::executor::{Controller, ExecutorError, ExitStatus, HealthChecks, Started, TaskFiles};
use crate::network::NetPlane;
use swarm_api::Task;

/// Extra time a `stop` request gets beyond the task's grace period, for the engine's SIGKILL.
const STOP_SLACK: Duration = Duration::from_secs(30);

/// `image` with an explicit tag: pulling a bare repository would fetch every tag.
fn with_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || last.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

pub(super) struct DockerController {
    /// The node's data plane and the task, for a task attached to networks: plugged once the
    /// container runs, unplugged when it is over.
    pub(super) net: Option<(NetPlane, Task)>,
    pub(super) docker: Docker,
    pub(super) name: String,
    pub(super) image: String,
    /// What `prepare` creates the container from; taken once created.
    pub(super) body: Option<ContainerCreateBody>,
    /// The container, once created (or found, for an adopted task).
    pub(super) id: Option<String>,
    pub(super) exit: Option<ExitStatus>,
    pub(super) task_id: String,
    pub(super) store: Arc<TaskFileStore>,
    /// Secrets and configs to stage at `prepare`, before the container that mounts them.
    pub(super) files: TaskFiles,
    /// How often to read the engine's verdict, for a container with a healthcheck (the
    /// spec's or the image's); known once the container exists.
    pub(super) health_poll: Option<Duration>,
}

impl DockerController {
    /// Makes sure the image is here: present locally, else pulled.
    async fn ensure_image(&self) -> Result<(), ExecutorError> {
        match self.docker.inspect_image(&self.image).await {
            Ok(_) => return Ok(()),
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => return Err(task_error(&format!("image {}", self.image), e)),
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
                    return Err(task_error(&format!("image {}", self.image), e));
                }
                // Not here and not pullable (no registry, no such repository): this task
                // cannot run here; REJECTED lets the orchestrator decide, as SwarmKit does.
                return Err(ExecutorError::ImageNotFound {
                    image: self.image.clone(),
                    source: e,
                });
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
        .map_err(|e| task_error("creating the container", e))?;
        for w in created.warnings {
            tracing::warn!(container = %created.id, warning = %w, "engine warning");
        }
        // The engine merged the image's HEALTHCHECK into the container's: ask it whether
        // the container has one at all.
        let info = self
            .docker
            .inspect_container(&created.id, None)
            .await
            .map_err(|e| task_error("inspecting the container", e))?;
        self.health_poll = health::poll_period_of(&info);
        self.id = Some(created.id);
        self.body = None;
        Ok(())
    }

    /// Plugs the running container's namespace into the task's networks. The container
    /// starts before its interfaces exist (an engine offers no hook in between): a program
    /// that connects at once may need its first try again.
    pub(super) async fn plug(&mut self) -> Result<(), ExecutorError> {
        let Some((plane, task)) = self.net.as_ref() else {
            return Ok(());
        };
        let id = self.id()?.to_string();
        let info = self
            .docker
            .inspect_container(&id, None)
            .await
            .map_err(|e| task_error("inspecting the container", e))?;
        let pid = info
            .state
            .and_then(|s| s.pid)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| ExecutorError::Failed("the started container has no process".into()))?;
        plane.attach_pid(task, pid).await?;
        Ok(())
    }

    /// Takes the task off its networks (once: its address may go to another task at once).
    fn unplug(&mut self) {
        if let Some((plane, _)) = self.net.take() {
            plane.detach(&self.task_id);
        }
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
                .map_err(|e| task_error("starting the container", e))?;
            self.plug().await?;
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
                    return Err(ExecutorError::Engine {
                        what: format!("container {id} was removed from outside"),
                        source: e,
                    })
                }
                Some(Err(e)) => return Err(task_error("waiting for the container", e)),
                None => {
                    return Err(ExecutorError::Failed(
                        "the engine ended the wait without an exit code".into(),
                    ))
                }
            };
            let exit = ExitStatus::Code(i32::try_from(code).unwrap_or(-1));
            self.exit = Some(exit);
            self.unplug();
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
                Ok(()) => {
                    self.unplug();
                    Ok(())
                }
                Err(e) if status_of(&e) == Some(404) => {
                    self.unplug();
                    Ok(())
                }
                Err(e) => Err(task_error("stopping the container", e)),
            }
        }
        .boxed()
    }

    fn health(&mut self) -> Option<HealthChecks> {
        let period = self.health_poll?;
        let id = self.id.clone()?;
        Some(health::checks(self.docker.clone(), id, period))
    }

    fn remove(&mut self) -> BoxFuture<'_, Result<(), ExecutorError>> {
        async move {
            self.unplug();
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
