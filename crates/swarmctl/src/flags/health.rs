//! The `--health-*` flags and `--no-healthcheck`, as `docker service create|update` takes
//! them: each changes only the part of the container's healthcheck it names.
//!
//! Owns `ContainerSpec.healthcheck` only. Must not touch the rest of the spec (the parent's
//! `ServiceFlags::apply` does); what the managers refuse (a duration under 1 ms) is theirs to
//! say, so a spec is checked in one place.

use anyhow::{anyhow, bail, Result};
use clap::Args;
use swarm_api::{ContainerSpec, HealthCheck};

/// The healthcheck flags of `service create` and `service update`.
#[derive(Args, Debug, Default, Clone)]
pub struct HealthFlags {
    /// Command run to check the task's health, with `sh -c` (CMD-SHELL); a task with a check
    /// is RUNNING only once it passes, and FAILS when it keeps failing
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub health_cmd: Option<String>,
    /// Time between checks, e.g. 5s, 500ms [default: 30s]
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Time a check may take before it counts as failed [default: 30s]
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Failed checks in a row that make the task unhealthy [default: 3]
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub health_retries: Option<String>,
    /// Time after the start during which failed checks do not count [default: 0s]
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// No healthcheck at all, not even the image's
    #[arg(long)]
    pub no_healthcheck: bool,
}

/// A duration in nanoseconds ("0", "500ms", "5s", "1m30s"), as the spec keeps it.
fn parse_duration_ns(flag: &str, s: &str) -> Result<i64> {
    let d = super::parse::parse_duration(flag, s)?;
    i64::try_from(d.as_nanos()).map_err(|_| anyhow!("{flag}: duration {s:?} is too long"))
}

impl HealthFlags {
    fn any_check_setting(&self) -> bool {
        self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some()
    }

    /// Applies the flags given to the container's healthcheck, leaving the rest as it is.
    pub fn apply(&self, c: &mut ContainerSpec) -> Result<()> {
        if self.no_healthcheck {
            if self.any_check_setting() {
                bail!("no-healthcheck: cannot be given with --health-* options");
            }
            c.healthcheck = Some(HealthCheck {
                test: vec!["NONE".into()],
                ..Default::default()
            });
            return Ok(());
        }
        if !self.any_check_setting() {
            return Ok(());
        }
        let h = c.healthcheck.get_or_insert_with(HealthCheck::default);
        if let Some(cmd) = &self.health_cmd {
            if cmd.trim().is_empty() {
                bail!("health-cmd: must not be empty");
            }
            h.test = vec!["CMD-SHELL".into(), cmd.clone()];
        } else if h.test.first().is_some_and(|t| t == "NONE") {
            // Timing alone for a disabled check: the image's command (containers) runs again.
            h.test.clear();
        }
        if let Some(d) = &self.health_interval {
            h.interval_ns = parse_duration_ns("health-interval", d)?;
        }
        if let Some(d) = &self.health_timeout {
            h.timeout_ns = parse_duration_ns("health-timeout", d)?;
        }
        if let Some(d) = &self.health_start_period {
            h.start_period_ns = parse_duration_ns("health-start-period", d)?;
        }
        if let Some(r) = &self.health_retries {
            h.retries = r
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|r| *r >= 0)
                .ok_or_else(|| {
                    anyhow!("health-retries: {r:?} is not a whole number of 0 or more")
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::parse::tests::msg;

    #[test]
    fn create_then_update_changes_only_what_is_given() {
        let mut c = ContainerSpec::default();
        let create = HealthFlags {
            health_cmd: Some("test -f /ready".into()),
            health_interval: Some("500ms".into()),
            health_retries: Some("5".into()),
            ..Default::default()
        };
        create.apply(&mut c).unwrap();
        let want = HealthCheck {
            test: vec!["CMD-SHELL".into(), "test -f /ready".into()],
            interval_ns: 500_000_000,
            timeout_ns: 0,
            start_period_ns: 0,
            retries: 5,
        };
        assert_eq!(c.healthcheck, Some(want.clone()));
        let update = HealthFlags {
            health_timeout: Some("2s".into()),
            health_start_period: Some("1m".into()),
            ..Default::default()
        };
        update.apply(&mut c).unwrap();
        assert_eq!(
            c.healthcheck,
            Some(HealthCheck {
                timeout_ns: 2_000_000_000,
                start_period_ns: 60_000_000_000,
                ..want
            })
        );
        HealthFlags::default().apply(&mut c).unwrap();
        assert!(c.healthcheck.is_some(), "no flag, no change");
        let none = HealthFlags {
            no_healthcheck: true,
            ..Default::default()
        };
        none.apply(&mut c).unwrap();
        assert_eq!(
            c.healthcheck.map(|h| h.test),
            Some(vec!["NONE".to_string()])
        );
    }

    #[test]
    fn bad_values_name_their_flag() {
        let bad = |f: HealthFlags| msg(f.apply(&mut ContainerSpec::default()));
        assert_eq!(
            bad(HealthFlags {
                health_interval: Some("-1s".into()),
                ..Default::default()
            }),
            "health-interval: duration \"-1s\" must not be negative"
        );
        assert!(bad(HealthFlags {
            health_timeout: Some("soon".into()),
            ..Default::default()
        })
        .starts_with("health-timeout: invalid duration \"soon\""));
        assert_eq!(
            bad(HealthFlags {
                health_retries: Some("-2".into()),
                ..Default::default()
            }),
            "health-retries: \"-2\" is not a whole number of 0 or more"
        );
        assert_eq!(
            bad(HealthFlags {
                health_cmd: Some(" ".into()),
                ..Default::default()
            }),
            "health-cmd: must not be empty"
        );
        assert_eq!(
            bad(HealthFlags {
                no_healthcheck: true,
                health_retries: Some("1".into()),
                ..Default::default()
            }),
            "no-healthcheck: cannot be given with --health-* options"
        );
    }
}
