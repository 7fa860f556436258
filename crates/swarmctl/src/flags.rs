//! Service flags (shared by `service create` and `service update`) and how they change a
//! `ServiceSpec`: each flag only touches the field it names. Every parse error is one line
//! that starts with the flag's name.

use anyhow::{anyhow, bail, Result};
use clap::Args;
use swarm_api::{
    service_spec::Mode, Annotations, ConfigReference, ContainerSpec, GlobalJob, GlobalService,
    Mount, MountType, Placement, ReplicatedJob, ReplicatedService, ResourceRequirements, Resources,
    RestartCondition, RestartPolicy, SecretReference, ServiceSpec, TaskSpec, UpdateConfig,
    UpdateFailureAction, UpdateOrder,
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
    /// [P:]T[/udp] (repeatable; adds to the list, replacing the same target). Only mode=host
    /// is supported: there is no routing mesh
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Stop publishing a target port, TARGET[/PROTOCOL] (repeatable)
    #[arg(long = "publish-rm", value_name = "TARGET[/PROTOCOL]")]
    pub publish_rm: Vec<String>,
}

/// Update parallelism and friends for a service created here: all tasks at once (the seed's
/// default), pause on failure, 5 s monitor, stop-first.
fn created_update_config() -> UpdateConfig {
    UpdateConfig {
        parallelism: 0,
        delay_ms: 0,
        failure_action: UpdateFailureAction::Pause as i32,
        monitor_ms: 5_000,
        max_failure_ratio: 0.0,
        order: UpdateOrder::StopFirst as i32,
        ..Default::default()
    }
}

/// What a service without an update config gets from the managers (DESIGN.md §4).
fn server_default_update_config() -> UpdateConfig {
    UpdateConfig {
        parallelism: 1,
        ..created_update_config()
    }
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
        task: Some(TaskSpec {
            container: Some(ContainerSpec::default()),
            ..Default::default()
        }),
        mode: Some(Mode::Replicated(ReplicatedService { replicas: 1 })),
        update: Some(created_update_config()),
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
            for l in split_lists(&self.labels)? {
                let (k, v) = parse_label("label", &l)?;
                annotations.labels.insert(k, v);
            }
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
        let task = spec.task.get_or_insert_with(Default::default);
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

    fn apply_update(&self, spec: &mut ServiceSpec) -> Result<()> {
        let update = UpdateFlags {
            prefix: "update",
            parallelism: &self.update_parallelism,
            delay: &self.update_delay,
            on_failure: &self.update_on_failure,
            order: &self.update_order,
            monitor: &self.update_monitor,
            max_failure_ratio: &self.update_max_failure_ratio,
        };
        update.apply(&mut spec.update)?;
        let rollback = UpdateFlags {
            prefix: "rollback",
            parallelism: &self.rollback_parallelism,
            delay: &self.rollback_delay,
            on_failure: &self.rollback_on_failure,
            order: &self.rollback_order,
            monitor: &self.rollback_monitor,
            max_failure_ratio: &self.rollback_max_failure_ratio,
        };
        rollback.apply(&mut spec.rollback)
    }
}

/// One set of `--update-*` or `--rollback-*` flags; each only changes the field it names.
struct UpdateFlags<'a> {
    prefix: &'static str,
    parallelism: &'a Option<String>,
    delay: &'a Option<String>,
    on_failure: &'a Option<String>,
    order: &'a Option<String>,
    monitor: &'a Option<String>,
    max_failure_ratio: &'a Option<String>,
}

impl UpdateFlags<'_> {
    fn apply(&self, config: &mut Option<UpdateConfig>) -> Result<()> {
        let any = [
            self.parallelism,
            self.delay,
            self.on_failure,
            self.order,
            self.monitor,
            self.max_failure_ratio,
        ]
        .iter()
        .any(|f| f.is_some());
        if !any {
            return Ok(());
        }
        let p = self.prefix;
        let update = config.get_or_insert_with(server_default_update_config);
        if let Some(v) = self.parallelism {
            update.parallelism = parse_u64(&format!("{p}-parallelism"), v)?;
        }
        if let Some(v) = self.delay {
            update.delay_ms = parse_duration_ms(&format!("{p}-delay"), v)?;
        }
        if let Some(v) = self.monitor {
            update.monitor_ms = parse_duration_ms(&format!("{p}-monitor"), v)?;
        }
        if let Some(v) = self.max_failure_ratio {
            let ratio: f32 = v
                .parse()
                .map_err(|_| anyhow!("{p}-max-failure-ratio: {v:?} is not a number"))?;
            if !(0.0..=1.0).contains(&ratio) {
                bail!("{p}-max-failure-ratio: {v} is not between 0 and 1");
            }
            update.max_failure_ratio = ratio;
        }
        if let Some(a) = self.on_failure {
            update.failure_action = match (a.as_str(), p) {
                ("pause", _) => UpdateFailureAction::Pause,
                ("continue", _) => UpdateFailureAction::Continue,
                ("rollback", "update") => UpdateFailureAction::Rollback,
                (other, "update") => bail!(
                    "update-failure-action: {other:?} is not one of pause, continue, rollback"
                ),
                (other, _) => bail!("{p}-failure-action: {other:?} is not one of pause, continue"),
            } as i32;
        }
        if let Some(o) = self.order {
            update.order = match o.as_str() {
                "stop-first" => UpdateOrder::StopFirst,
                "start-first" => UpdateOrder::StartFirst,
                other => bail!("{p}-order: {other:?} is not one of stop-first, start-first"),
            } as i32;
        }
        Ok(())
    }
}

/// Splits each value on commas, as SwarmKit's list flags do; a field in double quotes may hold
/// commas (`""` inside it is one quote).
pub fn split_lists(values: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for v in values {
        out.extend(split_csv(v)?);
    }
    Ok(out)
}

fn split_csv(value: &str) -> Result<Vec<String>> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut fields = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => bail!("unterminated quote in {value:?}"),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => bail!("unexpected {c:?} after a closing quote in {value:?}"),
            }
        } else {
            loop {
                match chars.next() {
                    Some(',') => break,
                    Some(c) => field.push(c),
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                }
            }
            fields.push(field);
        }
    }
}

/// A whole non-negative number.
pub fn parse_u64(flag: &str, s: &str) -> Result<u64> {
    s.trim().parse::<u64>().map_err(|e| anyhow!("{flag}: {e}"))
}

/// A duration such as "10s", "1m30s" or "500ms", in milliseconds; never negative.
pub fn parse_duration_ms(flag: &str, s: &str) -> Result<i64> {
    let t = s.trim();
    if t.starts_with('-') {
        bail!("{flag}: duration {s:?} must not be negative");
    }
    if t == "0" {
        return Ok(0);
    }
    let d =
        humantime::parse_duration(t).map_err(|e| anyhow!("{flag}: invalid duration {s:?}: {e}"))?;
    i64::try_from(d.as_millis()).map_err(|_| anyhow!("{flag}: duration {s:?} is too long"))
}

/// A byte count: plain bytes or a number with a binary unit, as Docker reads memory sizes:
/// "1024", "64m", "64MiB", "64mb", "1.5g" (k, m, g, t, p are all powers of 1024).
pub fn parse_memory(flag: &str, s: &str) -> Result<i64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "p" | "pb" | "pib" => 50,
        _ => bail!("{flag}: invalid size {s:?} (use bytes or a unit such as 64MiB, 512m, 1g)"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| anyhow!("{flag}: invalid size {s:?}"))?;
    let bytes = (value * (1u64 << shift) as f64).floor();
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        bail!("{flag}: size {s:?} is too large");
    }
    Ok(bytes as i64)
}

/// CPU cores as a decimal ("0.5", "2") in nano-CPUs; at most 9 decimal places.
pub fn parse_cpus(flag: &str, s: &str) -> Result<i64> {
    let t = s.trim();
    let (whole, frac) = match t.split_once('.') {
        Some((w, f)) => (w, f),
        None => (t, ""),
    };
    let digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        bail!("{flag}: invalid number of CPUs {s:?}");
    }
    if frac.len() > 9 {
        bail!("{flag}: {s:?} has more than 9 decimal places");
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| anyhow!("{flag}: {s:?} is too large"))?
    };
    let frac_nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}")
            .parse()
            .map_err(|_| anyhow!("{flag}: invalid number of CPUs {s:?}"))?
    };
    whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or_else(|| anyhow!("{flag}: {s:?} is too large"))
}

/// An environment entry must be KEY=VALUE with a non-empty key.
/// `type=bind,source=/data,target=/data,readonly` (Docker's `--mount` syntax, the keys
/// `type`, `source`/`src`, `target`/`dst`/`destination` and `readonly`/`ro`).
pub fn parse_mount(spec: &str) -> Result<Mount> {
    // Docker's default type.
    let mut m = Mount {
        r#type: MountType::Volume as i32,
        ..Default::default()
    };
    for field in spec.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (field, None),
        };
        match (key, value) {
            ("type", Some(t)) => {
                m.r#type = match t {
                    "bind" => MountType::Bind,
                    "volume" => MountType::Volume,
                    "tmpfs" => MountType::Tmpfs,
                    other => bail!("mount: type {other:?} is not one of bind, volume, tmpfs"),
                } as i32
            }
            ("source" | "src", Some(v)) => m.source = v.to_string(),
            ("target" | "dst" | "destination", Some(v)) => m.target = v.to_string(),
            ("readonly" | "ro", None | Some("true" | "1")) => m.read_only = true,
            ("readonly" | "ro", Some("false" | "0")) => m.read_only = false,
            _ => bail!("mount: {field:?} is not type=, source=, target= or readonly"),
        }
    }
    if !m.target.starts_with('/') {
        bail!("mount: target must be an absolute path in {spec:?}");
    }
    if m.r#type() == MountType::Bind && m.source.is_empty() {
        bail!("mount: a bind mount needs a source in {spec:?}");
    }
    Ok(m)
}

/// `NAME[:TARGET]` of `--secret`/`--config`: the target (file name the task sees) defaults to
/// the name; the manager resolves the name and checks the target.
pub fn parse_file_ref(flag: &str, s: &str) -> Result<(String, String)> {
    let (name, target) = match s.split_once(':') {
        Some((n, t)) => (n, t),
        None => (s, s),
    };
    if name.is_empty() || target.is_empty() {
        bail!("{flag}: {s:?} is not NAME or NAME:TARGET");
    }
    if target.contains('/') {
        bail!("{flag}: target {target:?} must be a file name, not a path");
    }
    Ok((name.to_string(), target.to_string()))
}

pub fn check_env(e: &str) -> Result<()> {
    match e.split_once('=') {
        Some((k, _)) if !k.trim().is_empty() => Ok(()),
        _ => bail!("env: {e:?} is not KEY=VALUE"),
    }
}

/// A label "key=value" (or just "key", with an empty value); the key must not be empty.
pub fn parse_label(flag: &str, l: &str) -> Result<(String, String)> {
    let (k, v) = l.split_once('=').unwrap_or((l, ""));
    let k = k.trim();
    if k.is_empty() {
        bail!("{flag}: {l:?} has an empty key");
    }
    Ok((k.to_string(), v.trim().to_string()))
}

pub fn parse_restart_condition(c: &str) -> Result<RestartCondition> {
    Ok(match c {
        "none" => RestartCondition::None,
        "on-failure" | "failure" => RestartCondition::OnFailure,
        "any" => RestartCondition::Any,
        other => bail!("restart-condition: {other:?} is not one of none, on-failure, any"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Ok(v) => format!("unexpectedly ok: {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn mounts_parse_like_dockers() {
        let m = parse_mount("type=bind,source=/data,target=/srv,readonly").expect("valid");
        assert_eq!(m.r#type(), MountType::Bind);
        assert_eq!((m.source.as_str(), m.target.as_str()), ("/data", "/srv"));
        assert!(m.read_only);
        let v = parse_mount("target=/cache").expect("valid");
        assert_eq!(v.r#type(), MountType::Volume);
        assert!(msg(parse_mount("type=bind,target=/x")).starts_with("mount: "));
        assert!(msg(parse_mount("type=nfs,target=/x")).starts_with("mount: "));
        assert!(msg(parse_mount("type=tmpfs,target=rel")).starts_with("mount: "));
    }

    #[test]
    fn numbers_name_their_flag() {
        assert_eq!(parse_u64("replicas", "6").ok(), Some(6));
        assert_eq!(
            msg(parse_u64("replicas", "x")),
            "replicas: invalid digit found in string"
        );
        assert_eq!(
            msg(parse_u64("replicas", "-1")),
            "replicas: invalid digit found in string"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("d", "10s").ok(), Some(10_000));
        assert_eq!(parse_duration_ms("d", "1m30s").ok(), Some(90_000));
        assert_eq!(parse_duration_ms("d", "500ms").ok(), Some(500));
        assert_eq!(parse_duration_ms("d", "1.5s").ok(), Some(1_500));
        assert_eq!(parse_duration_ms("d", "0").ok(), Some(0));
        assert_eq!(parse_duration_ms("d", "0s").ok(), Some(0));
        assert!(msg(parse_duration_ms("update-delay", "-5s")).starts_with("update-delay: "));
        assert!(msg(parse_duration_ms("restart-delay", "soon")).starts_with("restart-delay: "));
        assert!(msg(parse_duration_ms("restart-delay", "10")).starts_with("restart-delay: "));
        assert!(parse_duration_ms("d", "99999999999999999999y").is_err());
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("m", "64MiB").ok(), Some(64 << 20));
        assert_eq!(parse_memory("m", "64m").ok(), Some(64 << 20));
        assert_eq!(parse_memory("m", "64mb").ok(), Some(64 << 20));
        assert_eq!(parse_memory("m", "1g").ok(), Some(1 << 30));
        assert_eq!(parse_memory("m", "1.5G").ok(), Some(3 << 29));
        assert_eq!(parse_memory("m", "1024").ok(), Some(1024));
        assert_eq!(parse_memory("m", "1024b").ok(), Some(1024));
        assert!(msg(parse_memory("memory-reservation", "lots")).starts_with("memory-reservation: "));
        assert!(parse_memory("m", "-1g").is_err());
        assert!(parse_memory("m", "").is_err());
        assert!(parse_memory("m", "64x").is_err());
        assert!(parse_memory("m", "99999999999p").is_err());
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("c", "0.5").ok(), Some(500_000_000));
        assert_eq!(parse_cpus("c", "2").ok(), Some(2_000_000_000));
        assert_eq!(parse_cpus("c", ".25").ok(), Some(250_000_000));
        assert_eq!(parse_cpus("c", "0.000000001").ok(), Some(1));
        assert!(parse_cpus("c", "0.0000000001").is_err());
        assert!(parse_cpus("c", "-1").is_err());
        assert!(parse_cpus("c", ".").is_err());
        assert!(parse_cpus("c", "1e3").is_err());
        assert!(parse_cpus("c", "99999999999999999999").is_err());
    }

    #[test]
    fn env_and_labels() {
        assert!(check_env("A=1").is_ok());
        assert!(check_env("A=").is_ok());
        assert!(check_env("A=b=c").is_ok());
        assert_eq!(msg(check_env("A")), "env: \"A\" is not KEY=VALUE");
        assert!(check_env("=x").is_err());
        assert_eq!(
            parse_label("label-add", "k=v").ok(),
            Some(("k".to_string(), "v".to_string()))
        );
        assert_eq!(
            parse_label("label-add", "k").ok(),
            Some(("k".to_string(), String::new()))
        );
        assert!(parse_label("label-add", "=v").is_err());
    }

    #[test]
    fn lists_split_on_commas_outside_quotes() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(split_lists(&v(&["sh"])).ok(), Some(v(&["sh"])));
        assert_eq!(
            split_lists(&v(&["-c", "a,b"])).ok(),
            Some(v(&["-c", "a", "b"]))
        );
        assert_eq!(
            split_lists(&v(&["\"echo a, b\",x"])).ok(),
            Some(v(&["echo a, b", "x"]))
        );
        assert_eq!(
            split_lists(&v(&["\"say \"\"hi\"\"\""])).ok(),
            Some(v(&["say \"hi\""]))
        );
        assert_eq!(split_lists(&v(&[""])).ok(), Some(vec![]));
        assert!(split_lists(&v(&["\"open"])).is_err());
    }

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
        let task = spec.task.clone().unwrap_or_default();
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
}
