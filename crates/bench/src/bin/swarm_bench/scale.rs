//! The scale phase: the services the bench creates, and waiting until their tasks run.

use super::phase::{self, is_running, wait_phase, Progress};
use super::tally::Tally;
use anyhow::Result;
use std::collections::HashSet;
use std::time::Duration;
use swarm_api::service_spec::Mode;
use swarm_api::*;

pub fn service_spec(name: &str, replicas: u64) -> ServiceSpec {
    ServiceSpec {
        annotations: Some(Annotations {
            name: name.to_string(),
            ..Default::default()
        }),
        task: Some(
            TaskSpec {
                container: Some(ContainerSpec {
                    image: "nginx:1.27-alpine".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .into(),
        ),
        mode: Some(Mode::Replicated(ReplicatedService { replicas })),
        update: Some(UpdateConfig {
            parallelism: 0,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A task of `services` that should run counts as placed once it has a node, and as running.
pub fn scale_share(x: &Task, services: &HashSet<String>) -> Tally {
    if x.desired_state != TaskState::Running as i32 || !services.contains(&x.service_id) {
        return Tally::default();
    }
    Tally {
        placed: usize::from(!x.node_id.is_empty()),
        running: usize::from(is_running(x)),
        old_running: 0,
    }
}

/// Waits until `until` of the `want` tasks of `services` run.
pub async fn wait_scale(
    store: &swarm_store::Store,
    label: &str,
    start: phase::Snap,
    timeout: Duration,
    services: &HashSet<String>,
    want: usize,
    until: usize,
) -> Result<phase::Waited> {
    let ids = services.clone();
    wait_phase(
        store,
        label,
        start,
        timeout,
        move |x| scale_share(x, &ids),
        |c| Progress {
            want,
            placed: c.placed,
            running: c.running,
            extra: None,
            done: c.running >= until,
        },
    )
    .await
}
