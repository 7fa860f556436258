//! Spec validation: every refusal names the field and the reason in one line.

use crate::v1::{NodeSpec, ServiceSpec};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct InvalidSpec {
    pub field: &'static str,
    pub reason: String,
}

fn bad(field: &'static str, reason: impl Into<String>) -> InvalidSpec {
    InvalidSpec {
        field,
        reason: reason.into(),
    }
}

/// Names as Docker accepts them: 1-63 of [a-zA-Z0-9-_.], starting with an alphanumeric.
pub fn validate_name(field: &'static str, name: &str) -> Result<(), InvalidSpec> {
    if name.is_empty() {
        return Err(bad(field, "must not be empty"));
    }
    if name.len() > 63 {
        return Err(bad(field, "longer than 63 characters"));
    }
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return Err(bad(
            field,
            format!("{name:?} must start with a letter or digit"),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(bad(
            field,
            format!("{name:?} may hold only letters, digits, '-', '_' and '.'"),
        ));
    }
    Ok(())
}

pub fn validate_service_spec(spec: &ServiceSpec) -> Result<(), InvalidSpec> {
    let name = spec
        .annotations
        .as_ref()
        .map(|a| a.name.as_str())
        .unwrap_or("");
    validate_name("name", name)?;
    let task = spec
        .task
        .as_ref()
        .ok_or_else(|| bad("task", "missing task template"))?;
    let container = task
        .container
        .as_ref()
        .ok_or_else(|| bad("image", "missing container spec"))?;
    if container.image.trim().is_empty() {
        return Err(bad("image", "must not be empty"));
    }
    if container.stop_grace_period_ms < 0 {
        return Err(bad("stop-grace-period", "must not be negative"));
    }
    if let Some(r) = &task.restart {
        if r.delay_ms < 0 {
            return Err(bad("restart-delay", "must not be negative"));
        }
        if r.window_ms < 0 {
            return Err(bad("restart-window", "must not be negative"));
        }
    }
    if let Some(res) = &task.resources {
        for r in [&res.limits, &res.reservations].into_iter().flatten() {
            if r.nano_cpus < 0 {
                return Err(bad("cpu", "must not be negative"));
            }
            if r.memory_bytes < 0 {
                return Err(bad("memory", "must not be negative"));
            }
        }
    }
    if let Some(u) = &spec.update {
        if u.delay_ms < 0 {
            return Err(bad("update-delay", "must not be negative"));
        }
        if u.monitor_ms < 0 {
            return Err(bad("update-monitor", "must not be negative"));
        }
        if !(0.0..=1.0).contains(&u.max_failure_ratio) {
            return Err(bad("update-max-failure-ratio", "must be between 0 and 1"));
        }
        if crate::v1::UpdateFailureAction::try_from(u.failure_action).is_err() {
            return Err(bad(
                "update-failure-action",
                "must be pause, continue or rollback",
            ));
        }
        if crate::v1::UpdateOrder::try_from(u.order).is_err() {
            return Err(bad("update-order", "must be stop-first or start-first"));
        }
    }
    if let Some(u) = &spec.rollback {
        if u.delay_ms < 0 || u.monitor_ms < 0 {
            return Err(bad("rollback-delay", "durations must not be negative"));
        }
        if !(0.0..=1.0).contains(&u.max_failure_ratio) {
            return Err(bad("rollback-max-failure-ratio", "must be between 0 and 1"));
        }
        if crate::v1::UpdateFailureAction::try_from(u.failure_action)
            == Ok(crate::v1::UpdateFailureAction::Rollback)
        {
            return Err(bad(
                "rollback-failure-action",
                "a rollback cannot itself roll back: pause or continue",
            ));
        }
    }
    let job = matches!(
        spec.mode,
        Some(crate::v1::service_spec::Mode::ReplicatedJob(_))
            | Some(crate::v1::service_spec::Mode::GlobalJob(_))
    );
    if job && (spec.update.is_some() || spec.rollback.is_some()) {
        return Err(bad("update", "jobs run to completion and have no rolling updates: drop the --update-*/--rollback-* options"));
    }
    if spec.mode.is_none() {
        return Err(bad(
            "mode",
            "must be replicated, global, replicated-job or global-job",
        ));
    }
    Ok(())
}

pub fn validate_node_spec(spec: &NodeSpec) -> Result<(), InvalidSpec> {
    if let Some(a) = &spec.annotations {
        for k in a.labels.keys() {
            if k.is_empty() {
                return Err(bad("label", "key must not be empty"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::*;

    fn spec(name: &str, image: &str) -> ServiceSpec {
        ServiceSpec {
            annotations: Some(Annotations {
                name: name.into(),
                labels: Default::default(),
            }),
            task: Some(TaskSpec {
                container: Some(ContainerSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            mode: Some(service_spec::Mode::Replicated(ReplicatedService {
                replicas: 1,
            })),
            ..Default::default()
        }
    }

    #[test]
    fn accepts_walkthrough_service() {
        assert_eq!(validate_service_spec(&spec("redis", "redis:3.0.5")), Ok(()));
    }

    #[test]
    fn refuses_bad_names_and_images() {
        assert_eq!(
            validate_service_spec(&spec("", "x")).map_err(|e| e.field),
            Err("name")
        );
        assert_eq!(
            validate_service_spec(&spec("-x", "x")).map_err(|e| e.field),
            Err("name")
        );
        assert_eq!(
            validate_service_spec(&spec("a b", "x")).map_err(|e| e.field),
            Err("name")
        );
        assert_eq!(
            validate_service_spec(&spec("ok", " ")).map_err(|e| e.field),
            Err("image")
        );
    }

    #[test]
    fn refuses_negative_delays() {
        let mut s = spec("ok", "img");
        s.update = Some(UpdateConfig {
            delay_ms: -1,
            ..Default::default()
        });
        assert_eq!(
            validate_service_spec(&s).map_err(|e| e.field),
            Err("update-delay")
        );
    }
}
