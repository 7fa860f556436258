//! A container's health as its engine sees it: whether the container has a healthcheck at all
//! (its spec's or its image's `HEALTHCHECK`, as the engine merged them at create), and its
//! `State.Health.Status`, read by polling `inspect`, as a stream of verdicts.
//!
//! Owns the polling only: the engine runs the checks and counts the failures. Must not stop
//! the container nor report task states (the runner does both).

use std::time::Duration;

use bollard::models::{ContainerInspectResponse, HealthConfig, HealthStatusEnum};
use bollard::Docker;

use super::engine::status_of;
use crate::executor::health::{Health, HealthChecks};

/// Polls no more often than this (a check's interval may be 1 ms)...
const MIN_POLL: Duration = Duration::from_millis(100);
/// ...nor less often than this, so a verdict is seen soon after the engine reaches it.
const MAX_POLL: Duration = Duration::from_secs(1);

/// How often to look at the health of a container with this healthcheck; None when it has
/// none (no test, or `["NONE"]`).
pub(super) fn poll_period(config: Option<&HealthConfig>) -> Option<Duration> {
    let h = config?;
    let test = h.test.as_deref().unwrap_or_default();
    if test.is_empty() || test[0] == "NONE" {
        return None;
    }
    let interval = h
        .interval
        .filter(|i| *i > 0)
        .and_then(|i| u64::try_from(i).ok())
        .map_or(MAX_POLL, Duration::from_nanos);
    Some(interval.clamp(MIN_POLL, MAX_POLL))
}

/// The poll period of an inspected container's healthcheck.
pub(super) fn poll_period_of(info: &ContainerInspectResponse) -> Option<Duration> {
    poll_period(info.config.as_ref().and_then(|c| c.healthcheck.as_ref()))
}

/// Why the engine found the container unhealthy: its failing streak and the last check.
fn unhealthy_why(info: &ContainerInspectResponse) -> String {
    let health = info.state.as_ref().and_then(|s| s.health.as_ref());
    let streak = health.and_then(|h| h.failing_streak).unwrap_or(0);
    let last = health
        .and_then(|h| h.log.as_ref())
        .and_then(|log| log.last())
        .map(|r| {
            let output = r
                .output
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let code = format!("exit code {}", r.exit_code.unwrap_or(-1));
            if output.is_empty() {
                code
            } else {
                format!("{code}: {}", output.chars().take(200).collect::<String>())
            }
        })
        .unwrap_or_else(|| "no check recorded".into());
    format!("{streak} failed health checks in a row, the last: {last}")
}

struct Poll {
    docker: Docker,
    id: String,
    period: Duration,
    healthy: bool,
    done: bool,
}

/// The container's verdicts as they change, from `inspect` every `period`. Ends after an
/// unhealthy one, or when the container is gone (its `wait` tells the rest).
pub(super) fn checks(docker: Docker, id: String, period: Duration) -> HealthChecks {
    let state = Poll {
        docker,
        id,
        period,
        healthy: false,
        done: false,
    };
    Box::pin(futures::stream::unfold(state, |mut p| async move {
        while !p.done {
            tokio::time::sleep(p.period).await;
            let info = match p.docker.inspect_container(&p.id, None).await {
                Ok(info) => info,
                Err(e) if status_of(&e) == Some(404) => return None,
                Err(e) => {
                    // A busy engine: look again at the next period.
                    tracing::debug!(container = %p.id, error = %e, "inspecting health");
                    continue;
                }
            };
            let status = info
                .state
                .as_ref()
                .and_then(|s| s.health.as_ref())
                .and_then(|h| h.status);
            match status {
                Some(HealthStatusEnum::HEALTHY) if !p.healthy => {
                    p.healthy = true;
                    return Some((Health::Healthy, p));
                }
                Some(HealthStatusEnum::UNHEALTHY) => {
                    p.done = true;
                    return Some((Health::Unhealthy(unhealthy_why(&info)), p));
                }
                _ => {}
            }
        }
        None
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(test: &[&str], interval: i64) -> HealthConfig {
        HealthConfig {
            test: Some(test.iter().map(|s| s.to_string()).collect()),
            interval: Some(interval),
            ..Default::default()
        }
    }

    #[test]
    fn polls_only_containers_with_a_check_at_a_bounded_pace() {
        assert_eq!(poll_period(None), None);
        assert_eq!(poll_period(Some(&config(&["NONE"], 0))), None);
        assert_eq!(poll_period(Some(&config(&[], 0))), None);
        let shell = |ns| poll_period(Some(&config(&["CMD-SHELL", "true"], ns)));
        assert_eq!(shell(0), Some(MAX_POLL));
        assert_eq!(shell(1_000_000), Some(MIN_POLL));
        assert_eq!(shell(300_000_000), Some(Duration::from_millis(300)));
        assert_eq!(shell(30_000_000_000), Some(MAX_POLL));
    }
}
