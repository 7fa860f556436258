//! The `--update-*` and `--rollback-*` flag sets: each changes only the field of the update
//! (or rollback) config it names, starting from the managers' default when the spec has none.
//!
//! Owns those two sets and the update configs a new service starts from. Must not touch any
//! other part of the spec: `ServiceFlags::apply` in the parent does.

use anyhow::{anyhow, bail, Result};
use swarm_api::{ServiceSpec, UpdateConfig, UpdateFailureAction, UpdateOrder};

use super::parse::{parse_duration_ms, parse_u64};
use super::ServiceFlags;

/// Update parallelism and friends for a service created here: all tasks at once (the seed's
/// default), pause on failure, 5 s monitor, stop-first.
pub(super) fn created_update_config() -> UpdateConfig {
    UpdateConfig {
        parallelism: 0,
        ..swarm_api::defaults::update_config()
    }
}

/// What a service without an update config gets from the managers (DESIGN.md §4).
fn server_default_update_config() -> UpdateConfig {
    swarm_api::defaults::update_config()
}

impl ServiceFlags {
    pub(super) fn apply_update(&self, spec: &mut ServiceSpec) -> Result<()> {
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
