//! Spec translation: a task's container spec, resources, published ports and staged files as
//! the engine's container create body, and the container's name.
//!
//! Owns that mapping and the refusals of specs the engine can never run (REJECTED before any
//! engine call). Must not call the engine: it is pure, so it is tested without one.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, Mount as EngineMount, MountType as EngineMountType,
    PortBinding, PortMap, RestartPolicy, RestartPolicyNameEnum,
};
use swarm_api::{ContainerSpec, MountType, PortProtocol, PublishMode, Task};

use super::{LABEL_NODE_ID, LABEL_SERVICE_ID, LABEL_TASK_ID, LABEL_TASK_NAME, SECRETS_MOUNT_DIR};
use crate::executor::task_files::TaskFileStore;
use crate::executor::{ExecutorError, TaskFiles};

/// The container's name: `<service>.<slot or node>.<task id>`, with characters Docker does not
/// accept in names replaced.
pub(super) fn container_name(task: &Task) -> String {
    let base = swarm_api::names::task_name(task);
    let name: String = format!("{base}.{}", task.id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.trim_start_matches(['_', '.', '-']).to_string()
}

/// A staged secret or config file and where the container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileMount {
    pub(super) source: String,
    pub(super) target: String,
}

/// Where each of the task's files is staged and mounted.
pub(super) fn file_mounts(
    store: &TaskFileStore,
    task_id: &str,
    files: &TaskFiles,
) -> Vec<FileMount> {
    let secrets = store.secrets_dir(task_id);
    let configs = store.configs_dir(task_id);
    let secrets = files.secrets.iter().map(|f| FileMount {
        source: secrets.join(f.staged_name()).display().to_string(),
        target: format!("{SECRETS_MOUNT_DIR}/{}", f.target),
    });
    let configs = files.configs.iter().map(|f| FileMount {
        source: configs.join(f.staged_name()).display().to_string(),
        target: f.config_path(),
    });
    secrets.chain(configs).collect()
}

/// The task's host-mode published ports as the engine's exposed ports and port bindings
/// (`80/tcp` → host port 8080 on every address).
fn port_bindings(task: &Task) -> (Vec<String>, PortMap) {
    let mut exposed = Vec::new();
    let mut map = PortMap::new();
    let ports = task
        .endpoint
        .as_ref()
        .map_or(&[][..], |e| e.ports.as_slice());
    for p in ports {
        if p.publish_mode() != PublishMode::Host || p.published_port == 0 {
            continue;
        }
        let proto = match p.protocol() {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
        };
        let key = format!("{}/{proto}", p.target_port);
        exposed.push(key.clone());
        map.entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: None,
                host_port: Some(p.published_port.to_string()),
            });
    }
    (exposed, map)
}

/// Engine CPU shares for a reservation of `nano_cpus` (1 CPU = 1024 shares, the engine's
/// minimum is 2).
fn cpu_shares(nano_cpus: i64) -> i64 {
    (nano_cpus.saturating_mul(1024) / 1_000_000_000).max(2)
}

/// The container's configuration for `task`; a spec the engine can never run is refused.
pub(super) fn create_body(
    task: &Task,
    spec: &ContainerSpec,
    node_id: &str,
    files: &[FileMount],
) -> Result<ContainerCreateBody, ExecutorError> {
    if spec.image.trim().is_empty() {
        return Err(ExecutorError::Rejected("task has no image".into()));
    }
    let mut labels: HashMap<String, String> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Ours last: a spec label must not take a container away from its task.
    labels.insert(LABEL_TASK_ID.into(), task.id.clone());
    labels.insert(LABEL_SERVICE_ID.into(), task.service_id.clone());
    labels.insert(LABEL_NODE_ID.into(), node_id.to_string());
    if let Some(a) = task.annotations.as_ref().filter(|a| !a.name.is_empty()) {
        labels.insert(LABEL_TASK_NAME.into(), a.name.clone());
    }

    let mut mounts = Vec::with_capacity(spec.mounts.len());
    for m in &spec.mounts {
        if !m.target.starts_with('/') {
            return Err(ExecutorError::Rejected(format!(
                "mount target {:?} is not an absolute path",
                m.target
            )));
        }
        let typ = match m.r#type() {
            MountType::Bind => {
                if m.source.is_empty() {
                    return Err(ExecutorError::Rejected(format!(
                        "bind mount at {} has no source",
                        m.target
                    )));
                }
                EngineMountType::BIND
            }
            MountType::Volume => EngineMountType::VOLUME,
            MountType::Tmpfs => EngineMountType::TMPFS,
        };
        mounts.push(EngineMount {
            target: Some(m.target.clone()),
            source: (!m.source.is_empty()).then(|| m.source.clone()),
            typ: Some(typ),
            read_only: Some(m.read_only),
            ..Default::default()
        });
    }
    mounts.extend(files.iter().map(|f| EngineMount {
        target: Some(f.target.clone()),
        source: Some(f.source.clone()),
        typ: Some(EngineMountType::BIND),
        read_only: Some(true),
        ..Default::default()
    }));

    let resources = task.spec.as_ref().and_then(|s| s.resources.as_ref());
    let limits = resources.and_then(|r| r.limits).unwrap_or_default();
    let reservations = resources.and_then(|r| r.reservations).unwrap_or_default();
    let positive = |v: i64| (v > 0).then_some(v);
    let (exposed, bindings) = port_bindings(task);
    let host_config = HostConfig {
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        nano_cpus: positive(limits.nano_cpus),
        memory: positive(limits.memory_bytes),
        memory_reservation: positive(reservations.memory_bytes),
        cpu_shares: positive(reservations.nano_cpus).map(cpu_shares),
        mounts: (!mounts.is_empty()).then_some(mounts),
        // The orchestrator restarts tasks (as new tasks); the engine must never do it.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };
    // On swarm networks the container gets no engine network: the agent's data plane plugs
    // one interface per network into it, and its resolver answers at 127.0.0.11.
    let mut host_config = host_config;
    if !task.networks.is_empty() {
        host_config.network_mode = Some("none".into());
        host_config.port_bindings = None;
        host_config.dns = Some(vec!["127.0.0.11".into()]);
        host_config.dns_options = Some(vec!["ndots:0".into()]);
    }

    let grace_ms = if spec.stop_grace_period_ms > 0 {
        spec.stop_grace_period_ms
    } else {
        swarm_api::defaults::STOP_GRACE_PERIOD_MS
    };
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let (entrypoint, cmd) = if spec.command.is_empty() {
        // Only args: they replace the image's CMD and keep its ENTRYPOINT (as `docker run`).
        (None, (!spec.args.is_empty()).then(|| spec.args.clone()))
    } else {
        // A command replaces the image's ENTRYPOINT; the engine then drops the image's CMD.
        (Some(spec.command.clone()), Some(spec.args.clone()))
    };
    let mut body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint,
        cmd,
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        working_dir: some(&spec.dir),
        user: some(&spec.user),
        hostname: some(&spec.hostname),
        labels: Some(labels),
        stop_signal: some(&spec.stop_signal),
        // Rounded up so a `docker stop` from outside honours at least the grace period too.
        stop_timeout: Some(grace_ms.saturating_add(999) / 1000),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(host_config),
        ..Default::default()
    };
    super::options::apply(spec, task.spec.as_deref(), &mut body);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::super::MODES;
    use super::*;
    use swarm_api::{Annotations, Mount, ResourceRequirements, Resources, TaskSpec};

    fn task(spec: ContainerSpec) -> Task {
        Task {
            id: "t1".into(),
            service_id: "s1".into(),
            service_name: "web".into(),
            slot: 2,
            node_id: "n1".into(),
            annotations: Some(Annotations {
                name: "web.2".into(),
                ..Default::default()
            }),
            spec: Some(
                TaskSpec {
                    container: Some(spec),
                    resources: Some(ResourceRequirements {
                        limits: Some(Resources {
                            nano_cpus: 500_000_000,
                            memory_bytes: 64 << 20,
                        }),
                        reservations: Some(Resources {
                            nano_cpus: 250_000_000,
                            memory_bytes: 32 << 20,
                        }),
                    }),
                    ..Default::default()
                }
                .into(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn name_is_service_slot_and_task_id() {
        let t = task(ContainerSpec::default());
        assert_eq!(container_name(&t), "web.2.t1");
        let mut global = t.clone();
        global.annotations = None;
        global.slot = 0;
        assert_eq!(container_name(&global), "web.n1.t1");
    }

    #[test]
    fn spec_maps_onto_the_container() {
        let spec = ContainerSpec {
            image: "busybox:1".into(),
            command: vec!["sleep".into()],
            args: vec!["60".into()],
            env: vec!["A=1".into()],
            dir: "/tmp".into(),
            user: "nobody".into(),
            hostname: "h".into(),
            labels: HashMap::from([(LABEL_TASK_ID.to_string(), "forged".to_string())]),
            stop_grace_period_ms: 1_500,
            stop_signal: "SIGINT".into(),
            mounts: vec![Mount {
                r#type: MountType::Tmpfs as i32,
                target: "/scratch".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let t = task(spec.clone());
        let b = create_body(&t, &spec, "n1", &[]).expect("valid");
        assert_eq!(b.entrypoint, Some(vec!["sleep".to_string()]));
        assert_eq!(b.cmd, Some(vec!["60".to_string()]));
        assert_eq!(b.stop_timeout, Some(2));
        assert_eq!(b.stop_signal.as_deref(), Some("SIGINT"));
        let labels = b.labels.expect("labels");
        assert_eq!(labels[LABEL_TASK_ID], "t1");
        assert_eq!(labels[LABEL_NODE_ID], "n1");
        assert_eq!(labels[LABEL_SERVICE_ID], "s1");
        let hc = b.host_config.expect("host config");
        assert_eq!(hc.memory, Some(64 << 20));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.memory_reservation, Some(32 << 20));
        assert_eq!(hc.cpu_shares, Some(256));
        assert_eq!(
            hc.restart_policy.and_then(|p| p.name),
            Some(RestartPolicyNameEnum::NO)
        );
        let mounts = hc.mounts.expect("mounts");
        assert_eq!(mounts[0].typ, Some(EngineMountType::TMPFS));
    }

    #[test]
    fn bad_specs_are_rejected_before_the_engine() {
        let relative = ContainerSpec {
            image: "x".into(),
            mounts: vec![Mount {
                target: "data".into(),
                source: "/tmp".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let t = task(relative.clone());
        assert!(matches!(
            create_body(&t, &relative, "n1", &[]),
            Err(ExecutorError::Rejected(_))
        ));
        let no_image = ContainerSpec::default();
        assert!(matches!(
            create_body(&t, &no_image, "n1", &[]),
            Err(ExecutorError::Rejected(_))
        ));
    }

    #[test]
    fn secrets_and_configs_are_read_only_binds_at_docker_places() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TaskFileStore::with_shm(dir.path(), dir.path(), "n1", MODES);
        let files = TaskFiles {
            secrets: vec![crate::executor::TaskFile {
                target: "db".into(),
                data: b"x".to_vec(),
            }],
            configs: vec![crate::executor::TaskFile {
                target: "app.conf".into(),
                data: b"y".to_vec(),
            }],
        };
        let mounts = file_mounts(&store, "t1", &files);
        let spec = ContainerSpec {
            image: "x".into(),
            ..Default::default()
        };
        let b = create_body(&task(spec.clone()), &spec, "n1", &mounts).expect("valid");
        let got: Vec<(String, String, bool)> = b
            .host_config
            .and_then(|h| h.mounts)
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                assert_eq!(m.typ, Some(EngineMountType::BIND));
                (
                    m.source.unwrap_or_default(),
                    m.target.unwrap_or_default(),
                    m.read_only == Some(true),
                )
            })
            .collect();
        let secret = store.secrets_dir("t1").join("db").display().to_string();
        let config = store
            .configs_dir("t1")
            .join("app.conf")
            .display()
            .to_string();
        assert_eq!(
            got,
            vec![
                (secret, "/run/secrets/db".to_string(), true),
                (config, "/app.conf".to_string(), true),
            ]
        );
    }

    #[test]
    fn host_ports_are_bound_and_ingress_is_not() {
        let spec = ContainerSpec {
            image: "x".into(),
            ..Default::default()
        };
        let mut t = task(spec.clone());
        t.endpoint = Some(swarm_api::Endpoint {
            spec: None,
            ports: vec![
                swarm_api::PortConfig {
                    target_port: 80,
                    published_port: 8080,
                    publish_mode: PublishMode::Host as i32,
                    ..Default::default()
                },
                swarm_api::PortConfig {
                    target_port: 53,
                    published_port: 5353,
                    protocol: PortProtocol::Udp as i32,
                    publish_mode: PublishMode::Ingress as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        let b = create_body(&t, &spec, "n1", &[]).expect("valid");
        assert_eq!(b.exposed_ports, Some(vec!["80/tcp".to_string()]));
        let bindings = b
            .host_config
            .and_then(|h| h.port_bindings)
            .expect("bindings");
        let host: Vec<Option<String>> = bindings["80/tcp"]
            .iter()
            .flatten()
            .map(|b| b.host_port.clone())
            .collect();
        assert_eq!(host, vec![Some("8080".to_string())]);
        assert_eq!(bindings.len(), 1);
    }
}
