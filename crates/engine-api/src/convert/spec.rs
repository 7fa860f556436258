//! Service specs both ways. `to_docker` then `from_docker` gives back the same spec for
//! everything we store, so a Docker CLI that reads a service, changes one field and writes it
//! back (scale, update) changes only that field: a spurious difference in the task template
//! would start a rolling update. Input errors name the Docker field; fields accepted without
//! effect come back as warnings naming them. The container part is `container`'s. Networks
//! are named by what the client gave (a name or an ID): the control API resolves them, and
//! they come back as IDs, as Docker's server shows them.

use super::container::{self, duration};
use super::join_ns;
use super::warnings::Warnings;
use crate::error::ApiError;
use crate::types as d;
use swarm_api::service_spec::Mode;
use swarm_api::*;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

// ---- ours -> Docker ----

pub fn to_docker(s: &ServiceSpec) -> d::ServiceSpec {
    let ann = s.annotations.clone().unwrap_or_default();
    d::ServiceSpec {
        name: ann.name,
        labels: Some(ann.labels.into_iter().collect()),
        task_template: task_to_docker(&s.task.clone().unwrap_or_default()),
        mode: mode_to_docker(s.mode.as_ref()),
        update_config: s.update.as_ref().map(update_to_docker),
        rollback_config: s.rollback.as_ref().map(update_to_docker),
        networks: None,
        endpoint_spec: Some(d::EndpointSpec {
            mode: endpoint_mode_name(s.endpoint.as_ref()).into(),
            ports: super::ports::to_docker(s.endpoint.as_ref()),
        }),
    }
}

/// Docker's name of an endpoint's mode; no endpoint spec is vip.
pub fn endpoint_mode_name(e: Option<&EndpointSpec>) -> &'static str {
    match e.map(|e| EndpointMode::try_from(e.mode)) {
        Some(Ok(EndpointMode::Dnsrr)) => "dnsrr",
        _ => "vip",
    }
}

fn endpoint_mode_from_docker(mode: &str) -> Result<EndpointMode, ApiError> {
    // Docker's server reads the mode in any case.
    match mode.to_ascii_lowercase().as_str() {
        "" | "vip" => Ok(EndpointMode::Vip),
        "dnsrr" => Ok(EndpointMode::Dnsrr),
        _ => Err(bad(format!(
            "EndpointSpec.Mode: {mode:?} is not one of vip, dnsrr"
        ))),
    }
}

fn networks_to_docker(n: &[NetworkAttachmentConfig]) -> Option<Vec<d::NetworkAttachmentConfig>> {
    (!n.is_empty()).then(|| {
        n.iter()
            .map(|n| d::NetworkAttachmentConfig {
                target: n.target.clone(),
                aliases: n.aliases.clone(),
                driver_opts: None,
            })
            .collect()
    })
}

/// The networks a spec names under `field`; each needs a target (a name or an ID).
fn networks_from_docker(
    field: &str,
    n: Vec<d::NetworkAttachmentConfig>,
    w: &mut Warnings,
) -> Result<Vec<NetworkAttachmentConfig>, ApiError> {
    n.into_iter()
        .enumerate()
        .map(|(i, n)| {
            if n.target.trim().is_empty() {
                return Err(bad(format!(
                    "{field}[{i}].Target: missing (a network name or ID)"
                )));
            }
            w.unsupported(&format!("{field}[{i}].DriverOpts"), n.driver_opts.as_ref());
            Ok(NetworkAttachmentConfig {
                target: n.target,
                aliases: n.aliases,
            })
        })
        .collect()
}

fn mode_to_docker(m: Option<&Mode>) -> d::ServiceMode {
    let mut out = d::ServiceMode::default();
    match m {
        Some(Mode::Replicated(r)) => {
            out.replicated = Some(d::Replicated {
                replicas: Some(r.replicas),
            })
        }
        Some(Mode::Global(_)) => out.global = Some(d::Empty {}),
        Some(Mode::ReplicatedJob(j)) => {
            out.replicated_job = Some(d::ReplicatedJob {
                max_concurrent: Some(j.max_concurrent),
                total_completions: Some(j.total_completions),
            })
        }
        Some(Mode::GlobalJob(_)) => out.global_job = Some(d::Empty {}),
        None => {}
    }
    out
}

pub(super) fn update_to_docker(u: &UpdateConfig) -> d::UpdateConfig {
    d::UpdateConfig {
        parallelism: u.parallelism,
        delay: join_ns(u.delay_ms, u.delay_extra_ns),
        failure_action: match UpdateFailureAction::try_from(u.failure_action) {
            Ok(UpdateFailureAction::Continue) => "continue",
            Ok(UpdateFailureAction::Rollback) => "rollback",
            _ => "pause",
        }
        .into(),
        monitor: join_ns(u.monitor_ms, u.monitor_extra_ns),
        max_failure_ratio: u.max_failure_ratio,
        order: match UpdateOrder::try_from(u.order) {
            Ok(UpdateOrder::StartFirst) => "start-first",
            _ => "stop-first",
        }
        .into(),
    }
}

pub fn task_to_docker(t: &TaskSpec) -> d::TaskSpec {
    let c = t.container.clone().unwrap_or_default();
    d::TaskSpec {
        container_spec: Some(container::to_docker(&c, t)),
        plugin_spec: None,
        network_attachment_spec: None,
        resources: t.resources.as_ref().map(|r| d::ResourceRequirements {
            limits: r.limits.as_ref().map(resources_to_docker),
            reservations: r.reservations.as_ref().map(resources_to_docker),
        }),
        restart_policy: t.restart.as_ref().map(|r| d::RestartPolicy {
            condition: match RestartCondition::try_from(r.condition) {
                Ok(RestartCondition::None) => "none",
                Ok(RestartCondition::OnFailure) => "on-failure",
                _ => "any",
            }
            .into(),
            delay: Some(join_ns(r.delay_ms, r.delay_extra_ns)),
            max_attempts: Some(r.max_attempts),
            window: Some(join_ns(r.window_ms, r.window_extra_ns)),
        }),
        placement: t.placement.as_ref().map(|p| d::Placement {
            constraints: p.constraints.clone(),
            preferences: p
                .preferences
                .iter()
                .map(|p| d::PlacementPreference {
                    spread: Some(d::SpreadOver {
                        spread_descriptor: p.strip_prefix("spread=").unwrap_or(p).to_string(),
                    }),
                })
                .collect(),
            max_replicas: p.max_replicas_per_node,
            platforms: None,
        }),
        networks: networks_to_docker(&t.networks),
        log_driver: t.log_driver.as_ref().map(|l| d::LogDriver {
            name: l.name.clone(),
            options: (!l.options.is_empty()).then(|| l.options.clone().into_iter().collect()),
        }),
        force_update: t.force_update,
        runtime: "container".into(),
    }
}

pub fn resources_to_docker(r: &Resources) -> d::Resources {
    d::Resources {
        nano_cpus: r.nano_cpus,
        memory_bytes: r.memory_bytes,
        ..Default::default()
    }
}

// ---- Docker -> ours ----

/// Our spec for a Docker one, and the warnings naming what it sets to no effect here.
pub fn from_docker(s: d::ServiceSpec) -> Result<(ServiceSpec, Vec<String>), ApiError> {
    let mut w = Warnings::default();
    let endpoint = match &s.endpoint_spec {
        Some(e) => {
            let mode = endpoint_mode_from_docker(&e.mode)?;
            let mut spec = super::ports::from_docker(&e.ports)?;
            // No endpoint spec means vip: only another mode needs one of its own.
            if mode != EndpointMode::Vip {
                spec.get_or_insert_with(Default::default).mode = mode as i32;
            }
            spec
        }
        None => None,
    };
    let mut task = task_from_docker(s.task_template, &mut w)?;
    // The deprecated place of the task's networks, used only when the new one is empty, as
    // Docker's server does; otherwise said to be ignored.
    let legacy = s.networks.unwrap_or_default();
    if !legacy.is_empty() {
        if task.networks.is_empty() {
            task.networks = networks_from_docker("Networks", legacy, &mut w)?;
        } else {
            w.push(
                "Networks",
                "deprecated, and TaskTemplate.Networks is given too: ignored",
            );
        }
    }
    let spec = ServiceSpec {
        endpoint,
        annotations: Some(Annotations {
            name: s.name,
            labels: s.labels.unwrap_or_default().into_iter().collect(),
        }),
        task: Some(task.into()),
        mode: Some(mode_from_docker(s.mode)?),
        update: s
            .update_config
            .map(|u| update_from_docker("UpdateConfig", u))
            .transpose()?,
        rollback: s
            .rollback_config
            .map(|u| update_from_docker("RollbackConfig", u))
            .transpose()?,
    };
    Ok((spec, w.into_vec()))
}

fn mode_from_docker(m: d::ServiceMode) -> Result<Mode, ApiError> {
    let set = [
        m.replicated.is_some(),
        m.global.is_some(),
        m.replicated_job.is_some(),
        m.global_job.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if set > 1 {
        return Err(bad(
            "Mode: give only one of Replicated, Global, ReplicatedJob, GlobalJob",
        ));
    }
    Ok(if let Some(r) = m.replicated {
        // Docker's default for a replicated service without a count.
        Mode::Replicated(ReplicatedService {
            replicas: r.replicas.unwrap_or(1),
        })
    } else if m.global.is_some() {
        Mode::Global(GlobalService {})
    } else if let Some(j) = m.replicated_job {
        let total = j.total_completions.unwrap_or(1);
        Mode::ReplicatedJob(swarm_api::ReplicatedJob {
            max_concurrent: j.max_concurrent.unwrap_or(total),
            total_completions: total,
        })
    } else if m.global_job.is_some() {
        Mode::GlobalJob(GlobalJob {})
    } else {
        Mode::Replicated(ReplicatedService { replicas: 1 })
    })
}

fn update_from_docker(field: &str, u: d::UpdateConfig) -> Result<UpdateConfig, ApiError> {
    let failure_action = match u.failure_action.as_str() {
        "" | "pause" => UpdateFailureAction::Pause,
        "continue" => UpdateFailureAction::Continue,
        "rollback" => UpdateFailureAction::Rollback,
        other => {
            return Err(bad(format!(
                "{field}.FailureAction: {other:?} is not one of pause, continue, rollback"
            )))
        }
    };
    // Said here in Docker's words: the control API names its own (swarmctl's) flag.
    if field == "RollbackConfig" && failure_action == UpdateFailureAction::Rollback {
        return Err(bad(
            "RollbackConfig.FailureAction: a rollback cannot itself roll back: pause or continue",
        ));
    }
    let order = match u.order.as_str() {
        "" | "stop-first" => UpdateOrder::StopFirst,
        "start-first" => UpdateOrder::StartFirst,
        other => {
            return Err(bad(format!(
                "{field}.Order: {other:?} is not one of stop-first, start-first"
            )))
        }
    };
    if !(0.0..=1.0).contains(&u.max_failure_ratio) {
        return Err(bad(format!(
            "{field}.MaxFailureRatio: must be between 0 and 1"
        )));
    }
    let (delay_ms, delay_extra_ns) = duration(&format!("{field}.Delay"), u.delay)?;
    let (monitor_ms, monitor_extra_ns) = duration(&format!("{field}.Monitor"), u.monitor)?;
    Ok(UpdateConfig {
        parallelism: u.parallelism,
        delay_ms,
        delay_extra_ns,
        failure_action: failure_action as i32,
        monitor_ms,
        monitor_extra_ns,
        max_failure_ratio: u.max_failure_ratio,
        order: order as i32,
    })
}

pub fn task_from_docker(t: d::TaskSpec, w: &mut Warnings) -> Result<TaskSpec, ApiError> {
    // We run containers only: plugin and network-attachment tasks are refused.
    for (field, v) in [
        ("PluginSpec", &t.plugin_spec),
        ("NetworkAttachmentSpec", &t.network_attachment_spec),
    ] {
        if v.as_ref().is_some_and(super::warnings::is_set) {
            return Err(bad(format!(
                "TaskTemplate.{field}: only container tasks are supported"
            )));
        }
    }
    if !matches!(t.runtime.as_str(), "" | "container") {
        return Err(bad(
            "TaskTemplate.Runtime: only container tasks are supported",
        ));
    }
    let networks =
        networks_from_docker("TaskTemplate.Networks", t.networks.unwrap_or_default(), w)?;
    let c = t
        .container_spec
        .ok_or_else(|| bad("TaskTemplate.ContainerSpec: missing"))?;
    let parsed = container::from_docker(c, w)?;
    let restart = match t.restart_policy {
        None => None,
        Some(r) => {
            let (delay_ms, delay_extra_ns) = match r.delay {
                Some(ns) => duration("TaskTemplate.RestartPolicy.Delay", ns)?,
                None => (defaults::RESTART_DELAY_MS, 0),
            };
            let (window_ms, window_extra_ns) =
                duration("TaskTemplate.RestartPolicy.Window", r.window.unwrap_or(0))?;
            Some(RestartPolicy {
                condition: match r.condition.as_str() {
                    "" | "any" => RestartCondition::Any,
                    "none" => RestartCondition::None,
                    "on-failure" => RestartCondition::OnFailure,
                    other => {
                        return Err(bad(format!(
                            "TaskTemplate.RestartPolicy.Condition: {other:?} is not one of none, on-failure, any"
                        )))
                    }
                } as i32,
                delay_ms,
                delay_extra_ns,
                max_attempts: r.max_attempts.unwrap_or(0),
                window_ms,
                window_extra_ns,
            })
        }
    };
    let placement = t.placement.map(|p| {
        w.unsupported("TaskTemplate.Placement.Platforms", p.platforms.as_ref());
        swarm_api::Placement {
            constraints: p.constraints,
            max_replicas_per_node: p.max_replicas,
            preferences: p
                .preferences
                .into_iter()
                .filter_map(|p| p.spread)
                .map(|s| format!("spread={}", s.spread_descriptor))
                .collect(),
        }
    });
    let resources = t.resources.map(|r| ResourceRequirements {
        limits: r
            .limits
            .map(|l| resources_from_docker("TaskTemplate.Resources.Limits", l, w)),
        reservations: r
            .reservations
            .map(|l| resources_from_docker("TaskTemplate.Resources.Reservations", l, w)),
    });
    let log_driver = t.log_driver.map(|l| LogDriver {
        name: l.name,
        options: l.options.unwrap_or_default().into_iter().collect(),
    });
    Ok(TaskSpec {
        container: Some(parsed.container),
        resources,
        restart,
        placement,
        force_update: t.force_update,
        secrets: parsed.secrets,
        configs: parsed.configs,
        log_driver,
        networks,
    })
}

fn resources_from_docker(field: &str, r: d::Resources, w: &mut Warnings) -> Resources {
    if r.pids != 0 {
        w.push(
            &format!("{field}.Pids"),
            "not supported by this swarm; accepted and ignored",
        );
    }
    w.unsupported(
        &format!("{field}.GenericResources"),
        r.generic_resources.as_ref(),
    );
    Resources {
        nano_cpus: r.nano_cpus,
        memory_bytes: r.memory_bytes,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn full_spec() -> ServiceSpec {
        ServiceSpec {
            endpoint: Some(EndpointSpec {
                ports: vec![PortConfig {
                    name: String::new(),
                    protocol: PortProtocol::Tcp as i32,
                    target_port: 80,
                    published_port: 8080,
                    publish_mode: PublishMode::Host as i32,
                    keep_source: false,
                }],
                mode: 0,
            }),
            annotations: Some(Annotations {
                name: "web".into(),
                labels: [("tier".to_string(), "front".to_string())].into(),
            }),
            task: Some(
                TaskSpec {
                    container: Some(ContainerSpec {
                        image: "nginx:1".into(),
                        command: vec!["sh".into()],
                        args: vec!["-c".into(), "sleep 9".into()],
                        env: vec!["A=1".into()],
                        stop_grace_period_ms: 3_000,
                        mounts: vec![swarm_api::Mount {
                            r#type: MountType::Tmpfs as i32,
                            source: String::new(),
                            target: "/tmp".into(),
                            read_only: false,
                        }],
                        ..Default::default()
                    }),
                    resources: Some(ResourceRequirements {
                        limits: Some(Resources {
                            nano_cpus: 500_000_000,
                            memory_bytes: 1 << 20,
                        }),
                        reservations: None,
                    }),
                    restart: Some(RestartPolicy {
                        condition: RestartCondition::OnFailure as i32,
                        delay_ms: 1_000,
                        max_attempts: 3,
                        window_ms: 0,
                        ..Default::default()
                    }),
                    placement: Some(swarm_api::Placement {
                        constraints: vec!["node.role==worker".into()],
                        max_replicas_per_node: 2,
                        preferences: vec!["spread=node.labels.zone".into()],
                    }),
                    force_update: 4,
                    secrets: vec![SecretReference {
                        secret_id: "s1".into(),
                        secret_name: "db".into(),
                        target: "db.pw".into(),
                    }],
                    configs: vec![],
                    log_driver: None,
                    networks: Vec::new(),
                }
                .into(),
            ),
            mode: Some(Mode::Replicated(ReplicatedService { replicas: 3 })),
            update: Some(UpdateConfig {
                parallelism: 2,
                delay_ms: 3_000,
                failure_action: UpdateFailureAction::Rollback as i32,
                monitor_ms: 5_000,
                max_failure_ratio: 0.5,
                order: UpdateOrder::StartFirst as i32,
                ..Default::default()
            }),
            rollback: None,
        }
    }

    #[test]
    fn a_stored_spec_survives_the_round_trip_through_json() {
        for spec in [
            full_spec(),
            ServiceSpec {
                task: Some(
                    TaskSpec {
                        container: Some(ContainerSpec {
                            image: "x".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }
                    .into(),
                ),
                mode: Some(Mode::Global(GlobalService {})),
                annotations: Some(Annotations::default()),
                ..Default::default()
            },
            networked_spec(),
        ] {
            let json = serde_json::to_string(&to_docker(&spec)).unwrap();
            let (back, warnings) = from_docker(serde_json::from_str(&json).unwrap()).unwrap();
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(back, spec, "{json}");
        }
    }

    /// A service on two networks (as stored: targets resolved to IDs) in dnsrr mode.
    fn networked_spec() -> ServiceSpec {
        let mut spec = full_spec();
        spec.endpoint = Some(EndpointSpec {
            ports: Vec::new(),
            mode: EndpointMode::Dnsrr as i32,
        });
        if let Some(t) = spec.task.as_mut() {
            t.networks = vec![
                NetworkAttachmentConfig {
                    target: "netid1".into(),
                    aliases: vec!["api".into(), "api.local".into()],
                },
                NetworkAttachmentConfig {
                    target: "netid2".into(),
                    aliases: Vec::new(),
                },
            ];
        }
        spec
    }

    fn parse(body: &str) -> Result<(ServiceSpec, Vec<String>), ApiError> {
        from_docker(crate::gojson::from_slice(body.as_bytes()).unwrap())
    }

    #[test]
    fn networks_and_the_endpoint_mode_show_as_docker_does() {
        let j = serde_json::to_value(to_docker(&networked_spec())).unwrap();
        assert_eq!(
            j["TaskTemplate"]["Networks"],
            serde_json::json!([{"Target": "netid1", "Aliases": ["api", "api.local"]},
                               {"Target": "netid2"}])
        );
        assert_eq!(j["EndpointSpec"]["Mode"], "dnsrr");
        assert!(j.get("Networks").is_none(), "{j}");
        let j = serde_json::to_value(to_docker(&full_spec())).unwrap();
        assert_eq!(j["EndpointSpec"]["Mode"], "vip");
        assert!(j["TaskTemplate"].get("Networks").is_none(), "{j}");
    }

    #[test]
    fn task_networks_are_kept_by_name_for_the_control_api_to_resolve() {
        // What `docker service create --network app --endpoint-mode dnsrr` sends.
        let (spec, warnings) = parse(
            r#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},
            "Networks":[{"Target":"app","Aliases":["www"]}]},"EndpointSpec":{"Mode":"dnsrr"}}"#,
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let t = spec.task.unwrap();
        assert_eq!(
            t.networks,
            [NetworkAttachmentConfig {
                target: "app".into(),
                aliases: vec!["www".into()]
            }]
        );
        assert_eq!(spec.endpoint.unwrap().mode, EndpointMode::Dnsrr as i32);
        // vip, in any case, needs no endpoint spec of its own.
        let (spec, _) = parse(
            r#"{"TaskTemplate":{"ContainerSpec":{"Image":"x"}},"EndpointSpec":{"Mode":"VIP"}}"#,
        )
        .unwrap();
        assert_eq!(spec.endpoint, None);
    }

    #[test]
    fn the_deprecated_networks_field_moves_into_the_task_template() {
        let (spec, warnings) = parse(
            r#"{"TaskTemplate":{"ContainerSpec":{"Image":"x"}},"Networks":[{"Target":"app"}]}"#,
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(spec.task.unwrap().networks[0].target, "app");
        // Both given: the task template's win, and the other is said to be ignored.
        let (spec, warnings) = parse(
            r#"{"TaskTemplate":{"ContainerSpec":{"Image":"x"},"Networks":[{"Target":"db"}]},
            "Networks":[{"Target":"app"}]}"#,
        )
        .unwrap();
        let nets = spec.task.unwrap().into_inner().networks;
        assert_eq!((nets.len(), nets[0].target.as_str()), (1, "db"));
        assert!(
            warnings.len() == 1 && warnings[0].starts_with("Networks:"),
            "{warnings:?}"
        );
        // Driver options per attachment are not honoured: warned, by index.
        let (_, warnings) = parse(
            r#"{"TaskTemplate":{"ContainerSpec":{"Image":"x"},
            "Networks":[{"Target":"db","DriverOpts":{"com.docker.network.driver.mtu":"1400"}}]}}"#,
        )
        .unwrap();
        assert!(
            warnings.len() == 1 && warnings[0].starts_with("TaskTemplate.Networks[0].DriverOpts:"),
            "{warnings:?}"
        );
    }

    #[test]
    fn the_docker_cli_create_body_maps_to_our_spec() {
        let body = r#"{"Name":"web","Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"busybox",
            "Args":["sleep","1000"],"Init":false,"DNSConfig":{},"Isolation":"default"},
            "Resources":{"Limits":{},"Reservations":{}},"Placement":{},"ForceUpdate":0,
            "Runtime":"container"},"Mode":{"Replicated":{"Replicas":3}},
            "EndpointSpec":{"Mode":"vip"}}"#;
        let (spec, warnings) = from_docker(serde_json::from_str(body).unwrap()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let c = spec.task.as_ref().unwrap().container.as_ref().unwrap();
        assert_eq!(c.image, "busybox");
        assert_eq!(c.args, ["sleep", "1000"]);
        assert_eq!(
            spec.mode,
            Some(Mode::Replicated(ReplicatedService { replicas: 3 }))
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                r#"{"TaskTemplate":{"ContainerSpec":{"Image":"x"},"RestartPolicy":{"Condition":"sometimes"}}}"#,
                "TaskTemplate.RestartPolicy.Condition",
            ),
            (r#"{"TaskTemplate":{}}"#, "TaskTemplate.ContainerSpec"),
            (
                r#"{"TaskTemplate":{"ContainerSpec":{"Image":"x"}},"UpdateConfig":{"Order":"random"}}"#,
                "UpdateConfig.Order",
            ),
            (
                r#"{"TaskTemplate":{"ContainerSpec":{"Image":"x"}},"EndpointSpec":{"Ports":[{"TargetPort":80,"Protocol":"sctp"}]}}"#,
                "EndpointSpec.Ports",
            ),
            (
                r#"{"TaskTemplate":{"ContainerSpec":{"Image":"x"}},"Mode":{"Replicated":{},"Global":{}}}"#,
                "Mode",
            ),
            (
                r#"{"TaskTemplate":{"ContainerSpec":{"Image":"x"}},"EndpointSpec":{"Mode":"round-robin"}}"#,
                "EndpointSpec.Mode: \"round-robin\"",
            ),
            (
                r#"{"TaskTemplate":{"ContainerSpec":{"Image":"x"},"Networks":[{"Aliases":["a"]}]}}"#,
                "TaskTemplate.Networks[0].Target",
            ),
            (
                r#"{"TaskTemplate":{"ContainerSpec":{"Image":"x"}},"Networks":[{"Target":"a"},{"Target":" "}]}"#,
                "Networks[1].Target",
            ),
        ];
        for (body, field) in cases {
            let err = from_docker(serde_json::from_str(body).unwrap()).unwrap_err();
            assert!(err.to_string().starts_with(field), "{body}: {err}");
            assert_eq!(err.status().as_u16(), 400);
        }
    }
}
