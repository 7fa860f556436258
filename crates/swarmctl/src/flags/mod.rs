//! Service flags (shared by `service create` and `service update`) and how they change a
//! `ServiceSpec`: each flag only touches the field it names. Every parse error is one line
//! that starts with the flag's name.
//!
//! Split by job: this file holds the flags and how they change a spec; `update` the
//! `--update-*`/`--rollback-*` sets and their defaults; `health` the `--health-*` set; `parse` the value parsers, shared with
//! the other commands. Must not talk to a manager: the commands in `cmd` do.

mod health;
mod parse;
mod update;

use anyhow::{bail, Result};
use clap::Args;
use std::collections::HashMap;
use swarm_api::{
    service_spec::Mode, Annotations, ConfigReference, ContainerSpec, EndpointMode, GlobalJob,
    GlobalService, NetworkAttachmentConfig, Placement, ReplicatedJob, ReplicatedService,
    ResourceRequirements, Resources, RestartCondition, RestartPolicy, SecretReference, ServiceSpec,
    TaskSpec,
};

pub use health::HealthFlags;
pub use parse::{
    check_env, parse_cpus, parse_duration_ms, parse_file_ref, parse_label, parse_labels,
    parse_memory, parse_mount, parse_restart_condition, parse_u64, split_lists,
};

/// Flags that describe a service. Numbers and durations are taken as text and parsed here, so
/// a bad value gets a one-line error naming its flag.
#[derive(Args, Debug, Default, Clone)]
pub struct ServiceFlags {
    /// Service name
    #[arg(long)]
    pub name: Option<String>,
    /// Service label key=value (repeatable; replaces all labels)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Container image
    #[arg(long)]
    pub image: Option<String>,
    /// Command to run, overriding the image's entrypoint (repeatable and comma-separated)
    #[arg(long, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Arguments of the command (repeatable and comma-separated)
    #[arg(long, allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Environment variable KEY=VALUE (repeatable and comma-separated; replaces the list)
    #[arg(long)]
    pub env: Vec<String>,
    /// Number of tasks of a replicated service [create default: 1]
    #[arg(long, allow_hyphen_values = true)]
    pub replicas: Option<String>,
    /// replicated, global, replicated-job or global-job [create default: replicated]
    #[arg(long)]
    pub mode: Option<String>,
    /// Replicated jobs: how many tasks may run at the same time [default: all]
    #[arg(long, allow_hyphen_values = true)]
    pub max_concurrent: Option<String>,
    /// Placement constraint, e.g. node.labels.foo!=bar1 (repeatable; replaces the list)
    #[arg(long = "constraint", value_name = "EXPR")]
    pub constraints: Vec<String>,
    /// At most this many replicas on one node (0 = no limit)
    #[arg(long, allow_hyphen_values = true)]
    pub replicas_max_per_node: Option<String>,
    /// Placement preference, e.g. spread=node.labels.zone (repeatable; replaces the list)
    #[arg(long = "placement-pref", value_name = "PREF")]
    pub placement_prefs: Vec<String>,
    /// Tasks updated at the same time (0 = all at once) [create default: 0]
    #[arg(long, allow_hyphen_values = true)]
    pub update_parallelism: Option<String>,
    /// Delay between task updates, e.g. 10s
    #[arg(long, allow_hyphen_values = true)]
    pub update_delay: Option<String>,
    /// What a failed update does: pause, continue or rollback
    #[arg(long, visible_alias = "update-failure-action")]
    pub update_on_failure: Option<String>,
    /// Order of an update: stop-first or start-first
    #[arg(long)]
    pub update_order: Option<String>,
    /// How long a new task is watched after it starts; failing within it fails the update
    #[arg(long, allow_hyphen_values = true)]
    pub update_monitor: Option<String>,
    /// Fraction of updated tasks that may fail before the failure action applies (0 to 1)
    #[arg(long, allow_hyphen_values = true)]
    pub update_max_failure_ratio: Option<String>,
    /// Tasks rolled back at the same time (0 = all at once)
    #[arg(long, allow_hyphen_values = true)]
    pub rollback_parallelism: Option<String>,
    /// Delay between task rollbacks
    #[arg(long, allow_hyphen_values = true)]
    pub rollback_delay: Option<String>,
    /// What a failed rollback does: pause or continue
    #[arg(long, visible_alias = "rollback-failure-action")]
    pub rollback_on_failure: Option<String>,
    /// Order of a rollback: stop-first or start-first
    #[arg(long)]
    pub rollback_order: Option<String>,
    /// How long a rolled-back task is watched after it starts
    #[arg(long, allow_hyphen_values = true)]
    pub rollback_monitor: Option<String>,
    /// Fraction of rolled-back tasks that may fail before the failure action applies
    #[arg(long, allow_hyphen_values = true)]
    pub rollback_max_failure_ratio: Option<String>,
    /// When tasks restart: none, on-failure or any [default: any]
    #[arg(long)]
    pub restart_condition: Option<String>,
    /// Delay before a restart [default: 5s]
    #[arg(long, allow_hyphen_values = true)]
    pub restart_delay: Option<String>,
    /// Restarts allowed within the window (0 = unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub restart_max_attempts: Option<String>,
    /// Window in which restart attempts are counted (0s = forever)
    #[arg(long, allow_hyphen_values = true)]
    pub restart_window: Option<String>,
    /// CPU cores reserved per task, e.g. 0.5
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_reservation: Option<String>,
    /// Memory reserved per task, e.g. 64MiB
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// CPU cores a task may use, e.g. 1.5
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_limit: Option<String>,
    /// Memory a task may use, e.g. 512m
    #[arg(long, allow_hyphen_values = true)]
    pub memory_limit: Option<String>,
    /// Time a stopping task gets before it is killed, e.g. 10s [default: 10s]
    #[arg(long, allow_hyphen_values = true)]
    pub stop_grace_period: Option<String>,
    /// Signal that asks a task to stop, e.g. SIGINT [default: the image's, else SIGTERM]
    #[arg(long)]
    pub stop_signal: Option<String>,
    #[command(flatten)]
    pub health: HealthFlags,
    /// Mount type=bind|volume|tmpfs,source=PATH|NAME,target=PATH[,readonly] (repeatable;
    /// replaces the list; docker executor)
    #[arg(long = "mount", value_name = "SPEC")]
    pub mounts: Vec<String>,
    /// Secret the tasks receive as a file, NAME[:TARGET] (repeatable; replaces the list)
    #[arg(long = "secret", value_name = "NAME[:TARGET]")]
    pub secrets: Vec<String>,
    /// Config the tasks receive as a file, NAME[:TARGET] (repeatable; replaces the list)
    #[arg(long = "config", value_name = "NAME[:TARGET]")]
    pub configs: Vec<String>,
    /// Publish a port: published=P,target=T[,protocol=tcp|udp][,mode=host|ingress] or
    /// [P:]T[/udp] (repeatable; adds to the list, replacing the same target). Ingress (the
    /// default) opens P on every node through the routing mesh; host, only where a task runs
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Stop publishing a target port, TARGET[/PROTOCOL] (repeatable)
    #[arg(long = "publish-rm", value_name = "TARGET[/PROTOCOL]")]
    pub publish_rm: Vec<String>,
    /// Attach to a network: NAME[,alias=A]... or name=NAME[,alias=A]... (repeatable; adds to
    /// the list, replacing the same network)
    #[arg(long = "network", value_name = "NAME[,alias=A]")]
    pub networks: Vec<String>,
    /// Detach from a network, NAME or ID (repeatable)
    #[arg(long = "network-rm", value_name = "NAME")]
    pub network_rm: Vec<String>,
    /// How the service is reached on its networks: vip (one virtual IP balanced over its
    /// tasks) or dnsrr (its name resolves to the tasks' addresses) [create default: vip]
    #[arg(long = "endpoint-mode", value_name = "vip|dnsrr")]
    pub endpoint_mode: Option<String>,
    /// Network name → ID, filled in by the command before `apply` so that names given here
    /// match the IDs a stored spec holds (names it lacks are sent as given).
    #[arg(skip)]
    pub network_ids: HashMap<String, String>,
}

/// `--network` parsed: the network as named, and its aliases.
fn parse_network(s: &str) -> Result<NetworkAttachmentConfig> {
    let mut out = NetworkAttachmentConfig::default();
    for (i, field) in s.split(',').map(str::trim).enumerate() {
        match field.split_once('=') {
            None if i == 0 => out.target = field.to_string(),
            Some(("name" | "target", v)) => out.target = v.trim().to_string(),
            Some(("alias", v)) if !v.trim().is_empty() => out.aliases.push(v.trim().to_string()),
            _ => bail!("network: {field:?} in {s:?} is not name=NAME or alias=ALIAS"),
        }
    }
    if out.target.is_empty() {
        bail!("network: {s:?} names no network");
    }
    Ok(out)
}

/// The restart policy a task has when its spec names none.
fn default_restart_policy() -> RestartPolicy {
    RestartPolicy {
        condition: RestartCondition::Any as i32,
        delay_ms: swarm_api::defaults::RESTART_DELAY_MS,
        max_attempts: 0,
        window_ms: 0,
        ..Default::default()
    }
}

/// The spec `service create` starts from before applying flags.
pub fn new_service_spec() -> ServiceSpec {
    ServiceSpec {
        annotations: Some(Annotations::default()),
        task: Some(
            TaskSpec {
                container: Some(ContainerSpec::default()),
                ..Default::default()
            }
            .into(),
        ),
        mode: Some(Mode::Replicated(ReplicatedService { replicas: 1 })),
        update: Some(update::created_update_config()),
        rollback: None,
        endpoint: None,
    }
}

impl ServiceFlags {
    /// Applies every flag given to `spec`, leaving the rest as it is.
    pub fn apply(&self, spec: &mut ServiceSpec) -> Result<()> {
        if let Some(name) = &self.name {
            spec.annotations.get_or_insert_with(Default::default).name = name.clone();
        }
        if !self.labels.is_empty() {
            let annotations = spec.annotations.get_or_insert_with(Default::default);
            annotations.labels.clear();
            annotations.labels.extend(parse_labels(&self.labels)?);
        }

        if let Some(mode) = &self.mode {
            match mode.as_str() {
                "replicated" => {
                    if !matches!(spec.mode, Some(Mode::Replicated(_))) {
                        spec.mode = Some(Mode::Replicated(ReplicatedService { replicas: 1 }));
                    }
                }
                "global" => spec.mode = Some(Mode::Global(GlobalService {})),
                "replicated-job" => {
                    if !matches!(spec.mode, Some(Mode::ReplicatedJob(_))) {
                        spec.mode = Some(Mode::ReplicatedJob(ReplicatedJob {
                            max_concurrent: 0,
                            total_completions: 1,
                        }));
                    }
                }
                "global-job" => spec.mode = Some(Mode::GlobalJob(GlobalJob {})),
                other => bail!(
                    "mode: {other:?} is not one of replicated, global, replicated-job, global-job"
                ),
            }
            // Jobs run to completion: no rolling-update settings.
            if matches!(
                spec.mode,
                Some(Mode::ReplicatedJob(_)) | Some(Mode::GlobalJob(_))
            ) {
                spec.update = None;
                spec.rollback = None;
            }
        }
        if let Some(r) = &self.replicas {
            let replicas = parse_u64("replicas", r)?;
            match &mut spec.mode {
                Some(Mode::Replicated(rep)) => rep.replicas = replicas,
                Some(Mode::ReplicatedJob(job)) => job.total_completions = replicas,
                _ => bail!("replicas: only replicated services and jobs have replicas"),
            }
        }
        if let Some(m) = &self.max_concurrent {
            let m = parse_u64("max-concurrent", m)?;
            match &mut spec.mode {
                Some(Mode::ReplicatedJob(job)) => job.max_concurrent = m,
                _ => bail!("max-concurrent: only replicated jobs run tasks concurrently"),
            }
        }

        crate::ports::apply(&mut spec.endpoint, &self.publish, &self.publish_rm)?;
        if let Some(m) = &self.endpoint_mode {
            let mode = match m.as_str() {
                "vip" => EndpointMode::Vip,
                "dnsrr" => EndpointMode::Dnsrr,
                other => bail!("endpoint-mode: {other:?} is not vip or dnsrr"),
            };
            spec.endpoint.get_or_insert_with(Default::default).mode = mode as i32;
        }
        let task = spec.task.get_or_insert_with(Default::default);
        self.apply_networks(task)?;
        self.apply_container(task.container.get_or_insert_with(Default::default))?;
        self.apply_resources(task)?;
        self.apply_restart(task)?;
        if !self.secrets.is_empty() {
            task.secrets = self
                .secrets
                .iter()
                .map(|s| {
                    let (name, target) = parse_file_ref("secret", s)?;
                    Ok(SecretReference {
                        secret_id: String::new(),
                        secret_name: name,
                        target,
                    })
                })
                .collect::<Result<_>>()?;
        }
        if !self.configs.is_empty() {
            task.configs = self
                .configs
                .iter()
                .map(|s| {
                    let (name, target) = parse_file_ref("config", s)?;
                    Ok(ConfigReference {
                        config_id: String::new(),
                        config_name: name,
                        target,
                    })
                })
                .collect::<Result<_>>()?;
        }
        if !self.constraints.is_empty() {
            let constraints: Vec<String> = split_lists(&self.constraints)?
                .into_iter()
                .filter(|c| !c.trim().is_empty())
                .collect();
            task.placement
                .get_or_insert_with(Placement::default)
                .constraints = constraints;
        }
        if !self.placement_prefs.is_empty() {
            for p in &self.placement_prefs {
                let ok = p
                    .strip_prefix("spread=")
                    .is_some_and(|k| !k.trim().is_empty());
                if !ok {
                    bail!("placement-pref: {p:?} is not spread=<attribute>, e.g. spread=node.labels.zone");
                }
            }
            task.placement
                .get_or_insert_with(Placement::default)
                .preferences = self.placement_prefs.clone();
        }
        if let Some(m) = &self.replicas_max_per_node {
            let max = parse_u64("replicas-max-per-node", m)?;
            task.placement
                .get_or_insert_with(Placement::default)
                .max_replicas_per_node = max;
        }
        self.apply_update(spec)
    }

    /// `--network-rm`, then `--network` (each replacing an attachment to the same network).
    fn apply_networks(&self, task: &mut TaskSpec) -> Result<()> {
        let id = |name: &str| {
            self.network_ids
                .get(name)
                .cloned()
                .unwrap_or_else(|| name.to_string())
        };
        // A network the service is not on is no change (and `service update` then says so).
        for r in &self.network_rm {
            let target = id(r.trim());
            task.networks.retain(|n| n.target != target);
        }
        for s in &self.networks {
            let mut n = parse_network(s)?;
            n.target = id(&n.target);
            task.networks.retain(|x| x.target != n.target);
            task.networks.push(n);
        }
        Ok(())
    }

    fn apply_container(&self, c: &mut ContainerSpec) -> Result<()> {
        if let Some(image) = &self.image {
            if image.trim().is_empty() {
                bail!("image: must not be empty");
            }
            c.image = image.clone();
        }
        if !self.command.is_empty() {
            c.command = split_lists(&self.command)?;
        }
        if !self.args.is_empty() {
            c.args = split_lists(&self.args)?;
        }
        if !self.env.is_empty() {
            let env = split_lists(&self.env)?;
            for e in &env {
                check_env(e)?;
            }
            c.env = env;
        }
        if let Some(g) = &self.stop_grace_period {
            c.stop_grace_period_ms = parse_duration_ms("stop-grace-period", g)?;
        }
        if let Some(sig) = &self.stop_signal {
            c.stop_signal = sig.trim().to_string();
        }
        self.health.apply(c)?;
        if !self.mounts.is_empty() {
            c.mounts = self
                .mounts
                .iter()
                .map(|m| parse_mount(m))
                .collect::<Result<_>>()?;
        }
        Ok(())
    }

    fn apply_resources(&self, task: &mut TaskSpec) -> Result<()> {
        let wanted = [
            (&self.cpu_reservation, true, true),
            (&self.memory_reservation, true, false),
            (&self.cpu_limit, false, true),
            (&self.memory_limit, false, false),
        ];
        for (value, reservation, cpu) in wanted {
            let Some(value) = value else { continue };
            let res = task
                .resources
                .get_or_insert_with(ResourceRequirements::default);
            let slot: &mut Resources = if reservation {
                res.reservations.get_or_insert_with(Default::default)
            } else {
                res.limits.get_or_insert_with(Default::default)
            };
            match (reservation, cpu) {
                (true, true) => slot.nano_cpus = parse_cpus("cpu-reservation", value)?,
                (true, false) => slot.memory_bytes = parse_memory("memory-reservation", value)?,
                (false, true) => slot.nano_cpus = parse_cpus("cpu-limit", value)?,
                (false, false) => slot.memory_bytes = parse_memory("memory-limit", value)?,
            }
        }
        Ok(())
    }

    fn apply_restart(&self, task: &mut TaskSpec) -> Result<()> {
        let any = self.restart_condition.is_some()
            || self.restart_delay.is_some()
            || self.restart_max_attempts.is_some()
            || self.restart_window.is_some();
        if !any {
            return Ok(());
        }
        let policy = task.restart.get_or_insert_with(default_restart_policy);
        if let Some(c) = &self.restart_condition {
            policy.condition = parse_restart_condition(c)? as i32;
        }
        if let Some(d) = &self.restart_delay {
            policy.delay_ms = parse_duration_ms("restart-delay", d)?;
        }
        if let Some(n) = &self.restart_max_attempts {
            policy.max_attempts = parse_u64("restart-max-attempts", n)?;
        }
        if let Some(w) = &self.restart_window {
            policy.window_ms = parse_duration_ms("restart-window", w)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse::tests::msg;
    use super::*;

    #[test]
    fn create_defaults_and_flags() {
        let mut spec = new_service_spec();
        let flags = ServiceFlags {
            name: Some("redis".into()),
            image: Some("redis:3.0.5".into()),
            env: vec!["A=1,B=2".into()],
            constraints: vec!["node.labels.foo!=bar1".into()],
            restart_condition: Some("on-failure".into()),
            memory_reservation: Some("64MiB".into()),
            cpu_reservation: Some("0.5".into()),
            ..Default::default()
        };
        assert!(flags.apply(&mut spec).is_ok());
        assert_eq!(
            spec.mode,
            Some(Mode::Replicated(ReplicatedService { replicas: 1 }))
        );
        assert_eq!(spec.update.as_ref().map(|u| u.parallelism), Some(0));
        let task = spec.task.clone().unwrap_or_default().into_inner();
        let c = task.container.unwrap_or_default();
        assert_eq!(c.image, "redis:3.0.5");
        assert_eq!(c.env, vec!["A=1".to_string(), "B=2".to_string()]);
        let restart = task.restart.unwrap_or_default();
        assert_eq!(restart.condition, RestartCondition::OnFailure as i32);
        assert_eq!(restart.delay_ms, 5_000);
        let res = task
            .resources
            .unwrap_or_default()
            .reservations
            .unwrap_or_default();
        assert_eq!(res.memory_bytes, 64 << 20);
        assert_eq!(res.nano_cpus, 500_000_000);
    }

    #[test]
    fn update_changes_only_named_fields() {
        let mut spec = new_service_spec();
        let base = ServiceFlags {
            name: Some("redis".into()),
            image: Some("redis:3.0.5".into()),
            ..Default::default()
        };
        assert!(base.apply(&mut spec).is_ok());
        let before = spec.clone();
        let scale = ServiceFlags {
            replicas: Some("6".into()),
            ..Default::default()
        };
        assert!(scale.apply(&mut spec).is_ok());
        assert_eq!(
            spec.mode,
            Some(Mode::Replicated(ReplicatedService { replicas: 6 }))
        );
        assert_eq!(spec.task, before.task);
        let rolling = ServiceFlags {
            image: Some("redis:3.0.7".into()),
            update_parallelism: Some("2".into()),
            update_delay: Some("10s".into()),
            ..Default::default()
        };
        assert!(rolling.apply(&mut spec).is_ok());
        let u = spec.update.unwrap_or_default();
        assert_eq!((u.parallelism, u.delay_ms), (2, 10_000));
        // A later update that names no update option keeps them.
        let again = ServiceFlags {
            image: Some("redis:3.0.8".into()),
            ..Default::default()
        };
        assert!(again.apply(&mut spec).is_ok());
        assert_eq!(spec.update, Some(u));
    }

    #[test]
    fn replicas_refused_on_global_services() {
        let mut spec = new_service_spec();
        let flags = ServiceFlags {
            mode: Some("global".into()),
            replicas: Some("3".into()),
            ..Default::default()
        };
        assert_eq!(
            msg(flags.apply(&mut spec)),
            "replicas: only replicated services and jobs have replicas"
        );
        let bad_mode = ServiceFlags {
            mode: Some("daemonset".into()),
            ..Default::default()
        };
        assert!(msg(bad_mode.apply(&mut new_service_spec())).starts_with("mode: "));
    }

    #[test]
    fn networks_add_replace_and_remove_by_name_or_id() {
        let mut spec = new_service_spec();
        let flags = ServiceFlags {
            networks: vec!["app,alias=web,alias=www".into(), "name=db".into()],
            endpoint_mode: Some("dnsrr".into()),
            network_ids: [("app".to_string(), "id-app".to_string())].into(),
            ..Default::default()
        };
        flags.apply(&mut spec).unwrap();
        let nets = &spec.task.as_ref().unwrap().networks;
        assert_eq!(nets.len(), 2);
        assert_eq!(nets[0].target, "id-app", "a known name becomes the ID");
        assert_eq!(nets[0].aliases, ["web", "www"]);
        assert_eq!(nets[1].target, "db", "an unknown name is sent as given");
        assert_eq!(
            spec.endpoint.as_ref().unwrap().mode,
            EndpointMode::Dnsrr as i32
        );
        // Update: the stored spec holds IDs; the operator names the network.
        let update = ServiceFlags {
            networks: vec!["app".into()],
            network_rm: vec!["db".into()],
            network_ids: [("app".to_string(), "id-app".to_string())].into(),
            ..Default::default()
        };
        update.apply(&mut spec).unwrap();
        let nets = &spec.task.as_ref().unwrap().networks;
        assert_eq!(nets.len(), 1);
        assert!(
            nets[0].aliases.is_empty(),
            "re-adding replaces the attachment"
        );
        let missing = ServiceFlags {
            network_rm: vec!["other".into()],
            ..Default::default()
        };
        let mut same = spec.clone();
        missing.apply(&mut same).unwrap();
        assert_eq!(
            same, spec,
            "removing a network the service is not on changes nothing"
        );
        for (bad, want) in [
            (
                "app,mtu=9",
                "network: \"mtu=9\" in \"app,mtu=9\" is not name=NAME or alias=ALIAS",
            ),
            ("alias=x", "network: \"alias=x\" names no network"),
        ] {
            let f = ServiceFlags {
                networks: vec![bad.into()],
                ..Default::default()
            };
            assert_eq!(msg(f.apply(&mut new_service_spec())), want);
        }
        let mode = ServiceFlags {
            endpoint_mode: Some("rr".into()),
            ..Default::default()
        };
        assert_eq!(
            msg(mode.apply(&mut new_service_spec())),
            "endpoint-mode: \"rr\" is not vip or dnsrr"
        );
    }
}
