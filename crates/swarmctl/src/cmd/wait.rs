//! Waiting for a service to converge after `service create|update` (unless `--detach`): polls
//! the manager, hands each look to `converge::assess` and the display, and ends with success,
//! a failure, or a stall error after `STALL` without any change. Owns only the loop and its
//! timing; it changes nothing on the manager.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use swarm_api::{GetServiceRequest, ListNodesRequest, ListTasksRequest, Service, Task};

use crate::client::Client;
use crate::converge::{assess, Baseline, Outcome};
use crate::progress;

/// Time between looks: quick enough to feel live, light on the manager.
const POLL: Duration = Duration::from_millis(250);

/// Time the orchestrator gets to create a global service's tasks before "no task" means "no
/// node matches" rather than "not started yet".
const GLOBAL_GRACE: Duration = Duration::from_secs(3);

/// How long nothing may change (no task created, no state moved) before the wait gives up:
/// a task stuck in PENDING ("no suitable node") or a manager that stopped answering for
/// tasks should not hang a script forever.
const STALL: Duration = Duration::from_secs(60);

/// What was there before the change, so that older failures are not counted.
pub async fn baseline(c: &mut Client, service: &Service, rollback: bool) -> Result<Baseline> {
    let tasks = tasks_of(c, &service.id).await?;
    Ok(Baseline {
        task_ids: tasks.into_iter().map(|t| t.id).collect(),
        update_status: service.update_status.clone(),
        rollback,
    })
}

async fn tasks_of(c: &mut Client, service_id: &str) -> Result<Vec<Task>> {
    Ok(c.list_tasks(ListTasksRequest {
        service_ids: vec![service_id.to_string()],
        node_ids: vec![],
    })
    .await?
    .into_inner()
    .tasks)
}

/// Waits until the service converges; an error names why it did not.
pub async fn converge(c: &mut Client, service_id: &str, base: Baseline, quiet: bool) -> Result<()> {
    let mut display = progress::for_stderr(quiet);
    let start = Instant::now();
    let mut last_change = Instant::now();
    let mut last_signature = Vec::new();
    loop {
        let service = c
            .get_service(GetServiceRequest {
                service_id: service_id.to_string(),
            })
            .await?
            .into_inner()
            .service
            .ok_or_else(|| anyhow!("service {service_id} disappeared while waiting"))?;
        let tasks = tasks_of(c, service_id).await?;
        let nodes = c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes;
        let a = assess(
            &service,
            &tasks,
            &nodes,
            &base,
            start.elapsed() > GLOBAL_GRACE,
        );
        display.show(&a);
        match &a.outcome {
            Outcome::Converged => {
                display.finish(true);
                return Ok(());
            }
            Outcome::Failed(why) => {
                display.finish(false);
                bail!("{why}");
            }
            Outcome::Waiting => {}
        }
        let mut signature: Vec<(String, i32)> = tasks
            .iter()
            .map(|t| (t.id.clone(), t.status.as_ref().map_or(0, |s| s.state)))
            .collect();
        signature.sort();
        if signature != last_signature {
            last_signature = signature;
            last_change = Instant::now();
        } else if last_change.elapsed() > STALL {
            display.finish(false);
            let stuck = a
                .lines
                .iter()
                .find(|l| !l.done)
                .map(|l| format!(" ({}: {})", l.label, l.text))
                .unwrap_or_default();
            bail!(
                "service {service_id} did not converge: nothing changed for {}s{stuck}; \
                 it goes on in the background (swarmctl service inspect shows it)",
                STALL.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}
