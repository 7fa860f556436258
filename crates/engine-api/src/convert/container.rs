//! Docker's `ContainerSpec` both ways (with the secrets and configs it carries, which our
//! spec keeps in the task spec). Every field either maps to a stored one, so create then
//! inspect gives it back, or is refused or warned about by name (see the README's table).

use super::warnings::Warnings;
use super::{join_ns, split_ns};
use crate::error::ApiError;
use crate::types as d;
use swarm_api::*;

const FIELD: &str = "TaskTemplate.ContainerSpec";

fn bad(msg: String) -> ApiError {
    ApiError::BadRequest(msg)
}

/// Docker's default owner and mode of a secret or config file, which the CLI always sends.
const FILE_MODE: u32 = 0o444;

fn file_target(name: &str) -> d::FileTarget {
    d::FileTarget {
        name: name.to_string(),
        uid: "0".into(),
        gid: "0".into(),
        mode: Some(FILE_MODE),
    }
}

pub fn to_docker(c: &ContainerSpec, t: &TaskSpec) -> d::ContainerSpec {
    let c = c.clone();
    d::ContainerSpec {
        image: c.image,
        labels: (!c.labels.is_empty()).then(|| c.labels.into_iter().collect()),
        command: c.command,
        args: c.args,
        hostname: c.hostname,
        env: c.env,
        dir: c.dir,
        user: c.user,
        groups: c.groups,
        privileges: None,
        tty: c.tty,
        open_stdin: c.open_stdin,
        read_only: c.read_only,
        mounts: c.mounts.iter().map(mount_to_docker).collect(),
        stop_signal: c.stop_signal,
        stop_grace_period: (c.stop_grace_period_ms != 0 || c.stop_grace_period_extra_ns != 0)
            .then(|| join_ns(c.stop_grace_period_ms, c.stop_grace_period_extra_ns)),
        health_check: c.healthcheck.map(|h| d::HealthConfig {
            test: h.test,
            interval: h.interval_ns,
            timeout: h.timeout_ns,
            start_period: h.start_period_ns,
            retries: i64::from(h.retries),
        }),
        hosts: c.hosts,
        dns_config: c.dns_config.map(|x| d::DnsConfig {
            nameservers: x.nameservers,
            search: x.search,
            options: x.options,
        }),
        secrets: t
            .secrets
            .iter()
            .map(|s| d::FileReference {
                file: Some(file_target(&s.target)),
                secret_id: Some(s.secret_id.clone()),
                secret_name: Some(s.secret_name.clone()),
                ..Default::default()
            })
            .collect(),
        configs: t
            .configs
            .iter()
            .map(|s| d::FileReference {
                file: Some(file_target(&s.target)),
                config_id: Some(s.config_id.clone()),
                config_name: Some(s.config_name.clone()),
                ..Default::default()
            })
            .collect(),
        isolation: "default".into(),
        init: c.init,
        sysctls: (!c.sysctls.is_empty()).then(|| c.sysctls.into_iter().collect()),
        capability_add: c.capability_add,
        capability_drop: c.capability_drop,
        ulimits: c
            .ulimits
            .into_iter()
            .map(|u| d::Ulimit {
                name: u.name,
                soft: u.soft,
                hard: u.hard,
            })
            .collect(),
    }
}

fn mount_to_docker(m: &swarm_api::Mount) -> d::Mount {
    d::Mount {
        kind: match MountType::try_from(m.r#type) {
            Ok(MountType::Volume) => "volume",
            Ok(MountType::Tmpfs) => "tmpfs",
            _ => "bind",
        }
        .into(),
        source: m.source.clone(),
        target: m.target.clone(),
        read_only: m.read_only,
        ..Default::default()
    }
}

/// A duration field: not negative; milliseconds plus the nanoseconds below them.
pub fn duration(field: &str, ns: i64) -> Result<(i64, i32), ApiError> {
    if ns < 0 {
        return Err(bad(format!("{field}: must not be negative")));
    }
    Ok(split_ns(ns))
}

/// Warns when a secret's or config's file is not Docker's default owner and mode, which is
/// what tasks get here.
fn warn_file_owner(field: &str, f: &d::FileTarget, w: &mut Warnings) {
    let uid = matches!(f.uid.as_str(), "" | "0");
    let gid = matches!(f.gid.as_str(), "" | "0");
    let mode = f.mode.is_none_or(|m| m == FILE_MODE);
    if !(uid && gid && mode) {
        w.push(
            &format!("{field}.File"),
            "UID, GID and Mode are not supported by this swarm; files are root's, mode 0444",
        );
    }
}

pub struct Parsed {
    pub container: ContainerSpec,
    pub secrets: Vec<SecretReference>,
    pub configs: Vec<ConfigReference>,
}

/// Secrets or configs (`kind` "Secret" or "Config") as (ID, name, file name) each: the name
/// is required, the ID is the manager's to fill in.
fn file_refs(
    kind: &str,
    refs: Vec<d::FileReference>,
    w: &mut Warnings,
) -> Result<Vec<(String, String, String)>, ApiError> {
    let mut out = Vec::new();
    for (i, r) in refs.into_iter().enumerate() {
        let field = format!("{FIELD}.{kind}s[{i}]");
        let (id, name) = match kind {
            "Secret" => (r.secret_id, r.secret_name),
            _ => (r.config_id, r.config_name),
        };
        let name = name.unwrap_or_default();
        if name.is_empty() {
            return Err(bad(format!("{field}.{kind}Name: missing")));
        }
        if let Some(f) = &r.file {
            warn_file_owner(&field, f, w);
        }
        let target = r.file.map(|f| f.name).unwrap_or_default();
        out.push((id.unwrap_or_default(), name, target));
    }
    Ok(out)
}

pub fn from_docker(c: d::ContainerSpec, w: &mut Warnings) -> Result<Parsed, ApiError> {
    let secrets = file_refs("Secret", c.secrets, w)?
        .into_iter()
        .map(|(secret_id, secret_name, target)| SecretReference {
            secret_id,
            secret_name,
            target,
        })
        .collect();
    let configs = file_refs("Config", c.configs, w)?
        .into_iter()
        .map(|(config_id, config_name, target)| ConfigReference {
            config_id,
            config_name,
            target,
        })
        .collect();
    let mut mounts = Vec::new();
    for (i, m) in c.mounts.into_iter().enumerate() {
        let field = format!("{FIELD}.Mounts[{i}]");
        let kind = match m.kind.as_str() {
            "bind" => MountType::Bind,
            "volume" => MountType::Volume,
            "tmpfs" => MountType::Tmpfs,
            other => {
                return Err(bad(format!(
                    "{field}.Type: {other:?} is not one of bind, volume, tmpfs"
                )))
            }
        };
        if !matches!(m.consistency.as_str(), "" | "default" | "consistent") {
            w.push(
                &format!("{field}.Consistency"),
                "not supported by this swarm; accepted and ignored",
            );
        }
        w.unsupported(&format!("{field}.BindOptions"), m.bind_options.as_ref());
        w.unsupported(&format!("{field}.VolumeOptions"), m.volume_options.as_ref());
        w.unsupported(&format!("{field}.TmpfsOptions"), m.tmpfs_options.as_ref());
        mounts.push(swarm_api::Mount {
            r#type: kind as i32,
            source: m.source,
            target: m.target,
            read_only: m.read_only,
        });
    }
    w.unsupported(&format!("{FIELD}.Privileges"), c.privileges.as_ref());
    if !matches!(c.isolation.as_str(), "" | "default") {
        w.push(
            &format!("{FIELD}.Isolation"),
            "only the default isolation exists here; accepted and ignored",
        );
    }
    let (grace_ms, grace_ns) = duration(
        &format!("{FIELD}.StopGracePeriod"),
        c.stop_grace_period.unwrap_or(0),
    )?;
    let healthcheck = match c.health_check {
        None => None,
        Some(h) => {
            let f = |name: &str| format!("{FIELD}.HealthCheck.{name}");
            for (name, v) in [
                ("Interval", h.interval),
                ("Timeout", h.timeout),
                ("StartPeriod", h.start_period),
                ("Retries", h.retries),
            ] {
                if v < 0 {
                    return Err(bad(format!("{}: must not be negative", f(name))));
                }
            }
            Some(HealthCheck {
                test: h.test,
                interval_ns: h.interval,
                timeout_ns: h.timeout,
                start_period_ns: h.start_period,
                retries: i32::try_from(h.retries)
                    .map_err(|_| bad(format!("{}: too large", f("Retries"))))?,
            })
        }
    };
    let container = ContainerSpec {
        image: c.image,
        command: c.command,
        args: c.args,
        env: c.env,
        dir: c.dir,
        user: c.user,
        stop_grace_period_ms: grace_ms,
        stop_grace_period_extra_ns: grace_ns,
        hostname: c.hostname,
        labels: c.labels.unwrap_or_default().into_iter().collect(),
        mounts,
        stop_signal: c.stop_signal,
        tty: c.tty,
        open_stdin: c.open_stdin,
        read_only: c.read_only,
        init: c.init,
        groups: c.groups,
        hosts: c.hosts,
        dns_config: c.dns_config.map(|x| DnsConfig {
            nameservers: x.nameservers,
            search: x.search,
            options: x.options,
        }),
        sysctls: c.sysctls.unwrap_or_default().into_iter().collect(),
        capability_add: c.capability_add,
        capability_drop: c.capability_drop,
        healthcheck,
        ulimits: c
            .ulimits
            .into_iter()
            .map(|u| Ulimit {
                name: u.name,
                soft: u.soft,
                hard: u.hard,
            })
            .collect(),
    };
    Ok(Parsed {
        container,
        secrets,
        configs,
    })
}
