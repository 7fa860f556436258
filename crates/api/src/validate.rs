//! Spec validation: every refusal names the field and the reason in one line.

use crate::cidr::Subnet;
use crate::v1::{EndpointMode, NetworkSpec, NodeSpec, PublishMode, ServiceSpec};
use std::net::Ipv4Addr;

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

/// The name in a spec's annotations, "" when it has none.
fn spec_name(a: Option<&crate::v1::Annotations>) -> &str {
    a.map(|a| a.name.as_str()).unwrap_or("")
}

pub fn validate_service_spec(spec: &ServiceSpec) -> Result<(), InvalidSpec> {
    validate_name("name", spec_name(spec.annotations.as_ref()))?;
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
    if let Some(h) = &container.healthcheck {
        validate_healthcheck(h)?;
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
    validate_service_networks(spec)?;
    validate_templates(container)
}

/// The fields the agent fills in per task (`{{.Node.Hostname}}`, ...): refused now when the
/// agent could not, rather than when a task starts.
fn validate_templates(c: &crate::v1::ContainerSpec) -> Result<(), InvalidSpec> {
    let check = |field: &'static str, value: &str| {
        crate::template::check(value).map_err(|e| bad(field, format!("{value:?}: {e}")))
    };
    check("hostname", &c.hostname)?;
    for e in &c.env {
        check("env", e.split_once('=').map_or("", |(_, v)| v))?;
    }
    for m in &c.mounts {
        check("mount source", &m.source)?;
        check("mount target", &m.target)?;
    }
    for v in c.labels.values() {
        check("container-label", v)?;
    }
    Ok(())
}

/// Docker's shortest healthcheck interval, timeout and start period (0 is the default).
const MIN_HEALTH_DURATION_NS: i64 = 1_000_000;

/// A healthcheck as Docker's engine accepts one: `test` empty (the image's), `["NONE"]`,
/// `["CMD", program, args...]` or `["CMD-SHELL", command]`; durations 0 (the default) or at
/// least 1 ms; retries not negative.
fn validate_healthcheck(h: &crate::v1::HealthCheck) -> Result<(), InvalidSpec> {
    match h.test.first().map(String::as_str) {
        None => {}
        Some("NONE") if h.test.len() == 1 => {}
        Some("NONE") => return Err(bad("health-cmd", "NONE takes no command")),
        Some("CMD") if h.test.get(1).is_some_and(|p| !p.trim().is_empty()) => {}
        Some("CMD") => return Err(bad("health-cmd", "CMD needs a program to run")),
        Some("CMD-SHELL") if h.test.len() == 2 && !h.test[1].trim().is_empty() => {}
        Some("CMD-SHELL") => {
            return Err(bad(
                "health-cmd",
                "CMD-SHELL takes one non-empty shell command",
            ))
        }
        Some(other) => {
            return Err(bad(
                "health-cmd",
                format!("test must start with NONE, CMD or CMD-SHELL, not {other:?}"),
            ))
        }
    }
    for (field, ns) in [
        ("health-interval", h.interval_ns),
        ("health-timeout", h.timeout_ns),
        ("health-start-period", h.start_period_ns),
    ] {
        if ns < 0 {
            return Err(bad(field, "must not be negative"));
        }
        if ns != 0 && ns < MIN_HEALTH_DURATION_NS {
            return Err(bad(field, "must be at least 1ms (or 0 for the default)"));
        }
    }
    if h.retries < 0 {
        return Err(bad("health-retries", "must not be negative"));
    }
    Ok(())
}

/// The networks and endpoint mode of a service spec, on their own (whether the networks
/// exist is the control API's to check).
fn validate_service_networks(spec: &ServiceSpec) -> Result<(), InvalidSpec> {
    if let Some(e) = &spec.endpoint {
        let mode = EndpointMode::try_from(e.mode)
            .map_err(|_| bad("endpoint-mode", "must be vip or dnsrr"))?;
        let ingress = e
            .ports
            .iter()
            .any(|p| p.publish_mode == PublishMode::Ingress as i32);
        if mode == EndpointMode::Dnsrr && ingress {
            return Err(bad(
                "endpoint-mode",
                "dnsrr cannot be used with ports published in ingress mode (publish them with mode=host)",
            ));
        }
    }
    let networks = spec
        .task
        .as_ref()
        .map_or(&[][..], |t| t.networks.as_slice());
    let mut seen = std::collections::HashSet::new();
    for n in networks {
        if n.target.trim().is_empty() {
            return Err(bad("network", "must name a network"));
        }
        if !seen.insert(n.target.as_str()) {
            return Err(bad(
                "network",
                format!("{} is given more than once", n.target),
            ));
        }
        for a in &n.aliases {
            validate_name("network alias", a)?;
        }
    }
    Ok(())
}

/// A network spec on its own: name, driver, subnet and gateway (overlap with other networks
/// is the control API's to check). Returns the subnet it asks for, if any.
pub fn validate_network_spec(spec: &NetworkSpec) -> Result<Option<Subnet>, InvalidSpec> {
    validate_name("name", spec_name(spec.annotations.as_ref()))?;
    if !spec.driver.is_empty() && spec.driver != crate::defaults::NETWORK_DRIVER {
        return Err(bad(
            "driver",
            format!("{:?} is not supported: only overlay", spec.driver),
        ));
    }
    let ipam = spec.ipam.clone().unwrap_or_default();
    let subnet = if ipam.subnet.trim().is_empty() {
        None
    } else {
        let s = Subnet::parse(&ipam.subnet).map_err(|e| bad("subnet", e.to_string()))?;
        if s.prefix_len() > 29 {
            return Err(bad(
                "subnet",
                format!("{s} is too small: a network needs at least a /29"),
            ));
        }
        Some(s)
    };
    if !ipam.gateway.trim().is_empty() {
        let Some(s) = subnet else {
            return Err(bad("gateway", "needs a subnet (--subnet) to sit in"));
        };
        let gw: Ipv4Addr = ipam.gateway.trim().parse().map_err(|_| {
            bad(
                "gateway",
                format!("{:?} is not an IPv4 address", ipam.gateway),
            )
        })?;
        if !s.is_host(gw) {
            return Err(bad(
                "gateway",
                format!("{gw} is not a host address of subnet {s}"),
            ));
        }
    }
    Ok(subnet)
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
            task: Some(
                TaskSpec {
                    container: Some(ContainerSpec {
                        image: image.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
                .into(),
            ),
            mode: Some(service_spec::Mode::Replicated(ReplicatedService {
                replicas: 1,
            })),
            ..Default::default()
        }
    }

    #[test]
    fn templates_are_checked_where_the_agent_fills_them_in() {
        let with = |f: &dyn Fn(&mut ContainerSpec)| {
            let mut s = spec("web", "busybox");
            if let Some(c) = s.task.as_mut().and_then(|t| t.container.as_mut()) {
                f(c);
            }
            validate_service_spec(&s).map_err(|e| e.field)
        };
        assert_eq!(
            with(&|c| c.hostname = "{{.Node.Hostname}}-x".into()),
            Ok(())
        );
        assert_eq!(
            with(&|c| c.hostname = "{{.Node.Host}}".into()),
            Err("hostname")
        );
        assert_eq!(with(&|c| c.env = vec!["A={{.Task.Slot".into()]), Err("env"));
        assert_eq!(with(&|c| c.env = vec!["A={{.Task.Slot}}".into()]), Ok(()));
        let mount = |source: &str| Mount {
            source: source.into(),
            target: "/data".into(),
            ..Default::default()
        };
        assert_eq!(
            with(&|c| c.mounts = vec![mount("vol-{{.Task.Slot}}")]),
            Ok(())
        );
        assert_eq!(
            with(&|c| c.mounts = vec![mount("vol-{{.Task}}")]),
            Err("mount source")
        );
        assert_eq!(
            with(&|c| c.labels = [("k".into(), "{{}}".into())].into()),
            Err("container-label")
        );
        let err = validate_service_spec(&{
            let mut s = spec("web", "busybox");
            if let Some(c) = s.task.as_mut().and_then(|t| t.container.as_mut()) {
                c.hostname = "{{.Node.Host}}".into();
            }
            s
        })
        .unwrap_err()
        .to_string();
        assert!(!err.contains('\n') && err.contains(".Node.Host"), "{err}");
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

    #[test]
    fn refuses_bad_healthchecks_naming_the_field() {
        let with = |h: HealthCheck| {
            let mut s = spec("ok", "img");
            if let Some(c) = s.task.as_mut().and_then(|t| t.container.as_mut()) {
                c.healthcheck = Some(h);
            }
            validate_service_spec(&s).map_err(|e| e.field)
        };
        let test = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for good in [
            HealthCheck::default(),
            HealthCheck {
                test: test(&["NONE"]),
                ..Default::default()
            },
            HealthCheck {
                test: test(&["CMD-SHELL", "curl -f localhost"]),
                interval_ns: 1_000_000,
                timeout_ns: 0,
                start_period_ns: 5_000_000_000,
                retries: 3,
            },
            HealthCheck {
                test: test(&["CMD", "true"]),
                ..Default::default()
            },
        ] {
            assert_eq!(with(good), Ok(()));
        }
        for (bad, field) in [
            (test(&["CMD-SHELL", " "]), "health-cmd"),
            (test(&["CMD-SHELL"]), "health-cmd"),
            (test(&["CMD"]), "health-cmd"),
            (test(&["NONE", "x"]), "health-cmd"),
            (test(&["true"]), "health-cmd"),
        ] {
            let h = HealthCheck {
                test: bad,
                ..Default::default()
            };
            assert_eq!(with(h), Err(field));
        }
        let h = |f: fn(&mut HealthCheck)| {
            let mut h = HealthCheck {
                test: test(&["CMD", "true"]),
                ..Default::default()
            };
            f(&mut h);
            with(h)
        };
        assert_eq!(h(|h| h.interval_ns = -1), Err("health-interval"));
        assert_eq!(h(|h| h.interval_ns = 999_999), Err("health-interval"));
        assert_eq!(h(|h| h.timeout_ns = 500), Err("health-timeout"));
        assert_eq!(h(|h| h.start_period_ns = -5), Err("health-start-period"));
        assert_eq!(h(|h| h.retries = -1), Err("health-retries"));
    }
}
