//! The failover phase's probes: the first write a survivor accepts after the leader's loss,
//! and what the tasks not yet running are doing.

use super::cluster;
use super::phase::is_running;
use super::scale::service_spec;
use anyhow::{bail, Result};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use swarm_api::control_server::Control;
use swarm_api::*;

/// Creates small services (no replicas) through the survivors in turn until one is accepted
/// (a follower forwards it to the new leader); returns the time since `since`.
/// How long one write attempt may take during failover before the next survivor is tried.
const ATTEMPT: Duration = Duration::from_secs(15);

pub async fn next_accepted_write(
    survivors: &[cluster::Manager],
    since: Instant,
    timeout: Duration,
) -> Result<Duration> {
    for n in 0usize.. {
        let m = &survivors[n % survivors.len()];
        let req = tonic::Request::new(CreateServiceRequest {
            spec: Some(service_spec(&format!("probe-{n}"), 0)),
        });
        // One attempt may hang on the dead leader's connection: bound it, but generously: a
        // write queued behind a busy new leader's backlog is still a write accepted.
        let t = Instant::now();
        let attempt = tokio::time::timeout(ATTEMPT, m.control.create_service(req)).await;
        match attempt {
            Ok(Ok(_)) => return Ok(since.elapsed()),
            Ok(Err(s)) => eprintln!(
                "[failover] write attempt {n} refused after {:.1} s: {:?} {}",
                t.elapsed().as_secs_f64(),
                s.code(),
                s.message()
            ),
            Err(_) => eprintln!("[failover] write attempt {n} got no answer within {ATTEMPT:?}"),
        }
        if since.elapsed() > timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("no write accepted within {timeout:?} of the leader's loss")
}

/// Count of the not-RUNNING tasks of `services` that should run, by observed state.
pub fn state_histogram(
    t: &swarm_store::Tables,
    services: &HashSet<String>,
) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for x in t.tasks.iter().filter(|x| services.contains(&x.service_id)) {
        if x.desired_state != TaskState::Running as i32 || is_running(x) {
            continue;
        }
        let s = x.status.as_ref().map(|s| s.state).unwrap_or(0);
        let name = TaskState::try_from(s)
            .map(|s| s.as_str_name().to_string())
            .unwrap_or_default();
        *out.entry(name).or_insert(0) += 1;
    }
    out
}
