//! Service templates filled in on this node: a task's hostname, environment values, mount
//! sources and targets and container label values, with what only the node that runs the task
//! knows (its hostname and platform) and what the task says of itself (IDs, slot, service).
//!
//! Owns nothing: the worker hands each new task through [`expand`] before its controller is
//! made; the template language is `swarm_api::template`'s.

use swarm_api::template::{self, TemplateContext};
use swarm_api::{NodeDescription, Task};

use crate::executor::ExecutorError;

/// `task` with its container spec's templates filled in; a template that cannot be (the
/// managers refuse them, but a spec written before that check could hold one) rejects it.
pub(crate) fn expand(task: &Task, node: &NodeDescription) -> Result<Task, ExecutorError> {
    let platform = node.platform.clone().unwrap_or_default();
    let ctx = TemplateContext::of_task(task, &node.hostname, &platform.os, &platform.architecture);
    let mut task = task.clone();
    let Some(c) = task.spec.as_mut().and_then(|s| s.container.as_mut()) else {
        return Ok(task);
    };
    let fill = |field: &str, value: &mut String| -> Result<(), ExecutorError> {
        *value = template::expand(value, &ctx)
            .map_err(|e| ExecutorError::Rejected(format!("{field}: {value:?}: {e}")))?;
        Ok(())
    };
    fill("hostname", &mut c.hostname)?;
    for env in &mut c.env {
        if let Some((name, value)) = env.split_once('=') {
            let mut value = value.to_string();
            fill("env", &mut value)?;
            *env = format!("{name}={value}");
        }
    }
    for m in &mut c.mounts {
        fill("mount source", &mut m.source)?;
        fill("mount target", &mut m.target)?;
    }
    for v in c.labels.values_mut() {
        fill("container-label", v)?;
    }
    Ok(task)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use swarm_api::{Annotations, ContainerSpec, Mount, Platform, TaskSpec};

    fn task(c: ContainerSpec) -> Task {
        Task {
            id: "t1".into(),
            service_id: "s1".into(),
            service_name: "web".into(),
            node_id: "n1".into(),
            slot: 2,
            service_annotations: Some(Annotations {
                name: "web".into(),
                labels: [("tier".to_string(), "front".to_string())].into(),
            }),
            spec: Some(
                TaskSpec {
                    container: Some(c),
                    ..Default::default()
                }
                .into(),
            ),
            ..Default::default()
        }
    }

    fn node() -> NodeDescription {
        NodeDescription {
            hostname: "h1".into(),
            platform: Some(Platform {
                os: "linux".into(),
                architecture: "x86_64".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_container_spec_is_filled_in_for_this_task_and_node() {
        let t = task(ContainerSpec {
            hostname: "{{.Node.Hostname}}-{{.Task.Slot}}".into(),
            env: vec![
                "WHO={{.Service.Name}}.{{.Task.Slot}} on {{.Node.ID}}".into(),
                "TIER={{index .Service.Labels \"tier\"}}".into(),
                "PLAIN=a=b".into(),
            ],
            mounts: vec![Mount {
                source: "data-{{.Task.Slot}}".into(),
                target: "/srv/{{.Service.Name}}".into(),
                ..Default::default()
            }],
            labels: [("os".to_string(), "{{.Node.Platform.OS}}".to_string())].into(),
            ..Default::default()
        });
        let got = expand(&t, &node()).unwrap();
        let c = got.spec.unwrap().into_inner().container.unwrap();
        assert_eq!(c.hostname, "h1-2");
        assert_eq!(c.env, ["WHO=web.2 on n1", "TIER=front", "PLAIN=a=b"]);
        assert_eq!(c.mounts[0].source, "data-2");
        assert_eq!(c.mounts[0].target, "/srv/web");
        assert_eq!(c.labels["os"], "linux");
    }

    #[test]
    fn a_template_that_cannot_be_filled_in_rejects_the_task() {
        let t = task(ContainerSpec {
            hostname: "{{.Node.Nope}}".into(),
            ..Default::default()
        });
        let err = expand(&t, &node()).unwrap_err();
        assert!(err.is_rejection());
        assert!(err.to_string().starts_with("hostname: "), "{err}");
    }
}
