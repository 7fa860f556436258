//! The container options of a spec beyond command, resources and mounts, as `docker run`
//! applies them: terminal and stdin, read-only root, init, groups, /etc/hosts lines, resolver
//! settings, sysctls, capabilities, ulimits, healthcheck and logging driver. Pure: fills a
//! create body that `docker::create_body` built.

use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, HostConfigLogConfig, ResourcesUlimits,
};
use swarm_api::{ContainerSpec, TaskSpec};

fn some_vec(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// A spec's hosts line ("IP name [alias...]", the /etc/hosts form Docker's API stores) as the
/// engine's "name:IP" entries, one per name.
pub fn extra_hosts(lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for line in lines {
        let mut words = line.split_whitespace();
        let Some(ip) = words.next() else { continue };
        for name in words {
            out.push(format!("{name}:{ip}"));
        }
    }
    out
}

pub fn apply(spec: &ContainerSpec, task: Option<&TaskSpec>, body: &mut ContainerCreateBody) {
    if spec.tty {
        body.tty = Some(true);
    }
    if spec.open_stdin {
        body.open_stdin = Some(true);
    }
    if let Some(h) = &spec.healthcheck {
        let positive = |v: i64| (v > 0).then_some(v);
        body.healthcheck = Some(HealthConfig {
            test: some_vec(&h.test),
            interval: positive(h.interval_ns),
            timeout: positive(h.timeout_ns),
            retries: (h.retries > 0).then_some(i64::from(h.retries)),
            start_period: positive(h.start_period_ns),
            start_interval: None,
        });
    }
    let hc = body.host_config.get_or_insert_with(HostConfig::default);
    if spec.read_only {
        hc.readonly_rootfs = Some(true);
    }
    hc.init = spec.init;
    hc.group_add = some_vec(&spec.groups);
    let hosts = extra_hosts(&spec.hosts);
    hc.extra_hosts = some_vec(&hosts);
    if let Some(d) = &spec.dns_config {
        hc.dns = some_vec(&d.nameservers);
        hc.dns_search = some_vec(&d.search);
        hc.dns_options = some_vec(&d.options);
    }
    hc.sysctls = (!spec.sysctls.is_empty()).then(|| spec.sysctls.clone());
    hc.cap_add = some_vec(&spec.capability_add);
    hc.cap_drop = some_vec(&spec.capability_drop);
    hc.ulimits = (!spec.ulimits.is_empty()).then(|| {
        spec.ulimits
            .iter()
            .map(|u| ResourcesUlimits {
                name: Some(u.name.clone()),
                soft: Some(u.soft),
                hard: Some(u.hard),
            })
            .collect()
    });
    if let Some(l) = task.and_then(|t| t.log_driver.as_ref()) {
        hc.log_config = Some(HostConfigLogConfig {
            typ: (!l.name.is_empty()).then(|| l.name.clone()),
            config: (!l.options.is_empty()).then(|| l.options.clone()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_api::{DnsConfig, HealthCheck, LogDriver};

    #[test]
    fn spec_options_reach_the_engine() {
        let spec = ContainerSpec {
            tty: true,
            read_only: true,
            init: Some(false),
            hosts: vec!["10.0.0.1 db db.local".into()],
            dns_config: Some(DnsConfig {
                nameservers: vec!["1.1.1.1".into()],
                ..Default::default()
            }),
            sysctls: [("net.core.somaxconn".to_string(), "1024".to_string())].into(),
            capability_add: vec!["NET_ADMIN".into()],
            healthcheck: Some(HealthCheck {
                test: vec!["CMD".into(), "true".into()],
                interval_ns: 1_500,
                ..Default::default()
            }),
            ..Default::default()
        };
        let task = TaskSpec {
            log_driver: Some(LogDriver {
                name: "json-file".into(),
                options: [("max-size".to_string(), "1m".to_string())].into(),
            }),
            ..Default::default()
        };
        let mut body = ContainerCreateBody::default();
        apply(&spec, Some(&task), &mut body);
        assert_eq!(body.tty, Some(true));
        let h = body.healthcheck.as_ref().map(|h| h.interval);
        assert_eq!(h, Some(Some(1_500)));
        let hc = body.host_config.unwrap_or_default();
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.init, Some(false));
        assert_eq!(
            hc.extra_hosts,
            Some(vec![
                "db:10.0.0.1".to_string(),
                "db.local:10.0.0.1".to_string()
            ])
        );
        assert_eq!(hc.dns, Some(vec!["1.1.1.1".to_string()]));
        assert_eq!(hc.cap_add, Some(vec!["NET_ADMIN".to_string()]));
        assert_eq!(
            hc.log_config.and_then(|l| l.typ),
            Some("json-file".to_string())
        );
    }
}
