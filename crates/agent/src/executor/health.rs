//! Healthchecks in the executor contract: what a check says about a task's work (`Health`),
//! the stream of those verdicts a controller hands the runner (`HealthChecks`), a spec's
//! check settings with Docker's defaults (`HealthSettings`), and the probing loop for
//! executors that run the check themselves (`probe_loop`), with Docker's rules: a check every
//! interval, failures inside the start period not counted, `retries` failures in a row make
//! the work unhealthy.
//!
//! Owns no process and no engine call: how one check runs is the executor's (`probe` for the
//! process executor; the engine itself for containers). Must not report task states: the
//! runner turns verdicts into STARTING → RUNNING, or FAILED.

use std::future::Future;
use std::time::Duration;

use futures::stream::BoxStream;
use swarm_api::HealthCheck;
use tokio::time::Instant;

/// A healthcheck's verdict on the work, sent when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// A check passed (the first one, or the first after failures).
    Healthy,
    /// Failed checks in a row reached the retries: why, in words for the task's status.
    Unhealthy(String),
}

/// The verdicts of a task's healthcheck as they change. Does nothing until polled, and stops
/// checking when dropped: the task's runner owns it for as long as the task runs.
pub type HealthChecks = BoxStream<'static, Health>;

/// Docker's defaults for a value left at 0.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;

/// A check's timing, with Docker's defaults for what the spec leaves at 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSettings {
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
}

fn ns(v: i64) -> Duration {
    Duration::from_nanos(u64::try_from(v).unwrap_or(0))
}

impl HealthSettings {
    pub fn of(h: &HealthCheck) -> HealthSettings {
        let or = |v: i64, default: Duration| if v > 0 { ns(v) } else { default };
        HealthSettings {
            interval: or(h.interval_ns, DEFAULT_INTERVAL),
            timeout: or(h.timeout_ns, DEFAULT_TIMEOUT),
            start_period: ns(h.start_period_ns),
            retries: u32::try_from(h.retries)
                .ok()
                .filter(|r| *r > 0)
                .unwrap_or(DEFAULT_RETRIES),
        }
    }
}

/// The command a spec's check runs, as argv: `["CMD-SHELL", c]` is `sh -c c`, `["CMD", p,
/// args...]` is `p args...`. None for no check of its own (`["NONE"]`, or empty: the image's,
/// which only containers have).
pub fn check_command(h: &HealthCheck) -> Option<Vec<String>> {
    match h.test.split_first() {
        Some((kind, rest)) if kind == "CMD-SHELL" => {
            let cmd = rest.first().filter(|c| !c.trim().is_empty())?;
            Some(vec!["sh".into(), "-c".into(), cmd.clone()])
        }
        Some((kind, rest)) if kind == "CMD" => {
            rest.first().filter(|p| !p.is_empty())?;
            Some(rest.to_vec())
        }
        _ => None,
    }
}

/// Where the probing loop stands.
struct Loop<P> {
    probe: P,
    settings: HealthSettings,
    /// When the first poll came (the work had started): the start period counts from there.
    began: Option<Instant>,
    healthy: bool,
    failures: u32,
    done: bool,
}

/// Runs `probe` (one check: Ok when it passed, Err with what it said) every interval once the
/// stream is first polled, and yields each change of verdict. Ends after an unhealthy one.
pub fn probe_loop<P, F>(settings: HealthSettings, probe: P) -> HealthChecks
where
    P: FnMut(Duration) -> F + Send + 'static,
    F: Future<Output = Result<(), String>> + Send,
{
    let state = Loop {
        probe,
        settings,
        began: None,
        healthy: false,
        failures: 0,
        done: false,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let began = *s.began.get_or_insert_with(Instant::now);
        loop {
            // As Docker: the first check comes one interval after the start.
            tokio::time::sleep(s.settings.interval).await;
            match (s.probe)(s.settings.timeout).await {
                Ok(()) => {
                    s.failures = 0;
                    if !s.healthy {
                        s.healthy = true;
                        return Some((Health::Healthy, s));
                    }
                }
                Err(said) => {
                    // A slow starter's failures do not count until it has passed once or its
                    // start period is over.
                    if !s.healthy && began.elapsed() < s.settings.start_period {
                        continue;
                    }
                    s.failures += 1;
                    if s.failures >= s.settings.retries {
                        s.done = true;
                        let why = format!(
                            "{} failed health checks in a row, the last: {said}",
                            s.failures
                        );
                        return Some((Health::Unhealthy(why), s));
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn settings(retries: u32, start_period_ms: u64) -> HealthSettings {
        HealthSettings {
            interval: Duration::from_millis(10),
            timeout: Duration::from_millis(10),
            start_period: Duration::from_millis(start_period_ms),
            retries,
        }
    }

    #[test]
    fn defaults_fill_zero_values() {
        let s = HealthSettings::of(&HealthCheck::default());
        assert_eq!(s.interval, Duration::from_secs(30));
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.start_period, Duration::ZERO);
        assert_eq!(s.retries, 3);
    }

    #[test]
    fn commands_of_each_test_form() {
        let t = |v: &[&str]| HealthCheck {
            test: v.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(
            check_command(&t(&["CMD-SHELL", "test -f x"])),
            Some(vec!["sh".into(), "-c".into(), "test -f x".into()])
        );
        assert_eq!(
            check_command(&t(&["CMD", "true", "a"])),
            Some(vec!["true".into(), "a".into()])
        );
        assert_eq!(check_command(&t(&["NONE"])), None);
        assert_eq!(check_command(&t(&[])), None);
        assert_eq!(check_command(&t(&["CMD"])), None);
    }

    #[tokio::test]
    async fn healthy_once_then_unhealthy_after_the_retries() {
        // Pass on the 2nd check, then fail for good.
        let n = Arc::new(AtomicU32::new(0));
        let calls = n.clone();
        let mut s = probe_loop(settings(3, 0), move |_| {
            let i = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if i == 1 {
                    Ok(())
                } else {
                    Err(format!("exit code {i}"))
                }
            }
        });
        assert_eq!(s.next().await, Some(Health::Healthy));
        let Some(Health::Unhealthy(why)) = s.next().await else {
            panic!("unhealthy expected");
        };
        assert_eq!(
            why,
            "3 failed health checks in a row, the last: exit code 4"
        );
        assert_eq!(s.next().await, None, "ends after unhealthy");
        assert_eq!(n.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn failures_in_the_start_period_do_not_count() {
        let n = Arc::new(AtomicU32::new(0));
        let calls = n.clone();
        let mut s = probe_loop(settings(1, 200), move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err("no".to_string()) }
        });
        let began = std::time::Instant::now();
        assert!(matches!(s.next().await, Some(Health::Unhealthy(_))));
        assert!(began.elapsed() >= Duration::from_millis(200));
        assert!(n.load(Ordering::SeqCst) > 1, "checked during the period");
    }
}
