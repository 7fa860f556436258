//! `service ls`: one row a service with its image, replicas (or job progress) and, when any
//! service publishes one, its ports.
//!
//! Owns the Replicas column's rules. Must not change anything on the manager: it only lists.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::Result;
use swarm_api::{
    service_spec::Mode, ListNodesRequest, ListServicesRequest, ListTasksRequest, Node, NodeState,
    Service, Task, TaskState,
};

use crate::client;
use crate::cmd::{out, out_json, Format, FormatArg};
use crate::resolve::service_name;
use crate::table::{self, LIST};

/// `service ls`.
pub(super) async fn run(socket: &Path, quiet: bool, format: FormatArg) -> Result<()> {
    let mut c = client::connect(socket).await?;
    let mut services = c
        .list_services(ListServicesRequest {})
        .await?
        .into_inner()
        .services;
    services.sort_by(|a, b| a.id.cmp(&b.id));
    if format.format == Format::Json {
        return out_json(&services);
    }
    if quiet {
        let ids: String = services.iter().map(|s| format!("{}\n", s.id)).collect();
        return out(&ids);
    }
    let tasks = c
        .list_tasks(ListTasksRequest::default())
        .await?
        .into_inner()
        .tasks;
    let nodes = c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes;
    out(&render_ls(&services, &tasks, &nodes))
}

fn is_running(t: &Task) -> bool {
    t.desired_state() == TaskState::Running
        && t.status.as_ref().map(|s| s.state()) == Some(TaskState::Running)
}

/// The Replicas column: the desired count until tasks exist, then running/desired; for a
/// global service, running/eligible (its tasks meant to run).
pub fn replicas_cell(service: &Service, tasks: &[&Task], down: &HashSet<&str>) -> String {
    let running = tasks
        .iter()
        .filter(|t| is_running(t) && !down.contains(t.node_id.as_str()))
        .count();
    match service.spec.as_ref().and_then(|s| s.mode.as_ref()) {
        Some(Mode::Replicated(r)) if tasks.is_empty() => r.replicas.to_string(),
        Some(Mode::Replicated(r)) => format!("{running}/{}", r.replicas),
        Some(Mode::Global(_)) => {
            let eligible = tasks
                .iter()
                .filter(|t| t.desired_state() == TaskState::Running)
                .count();
            format!("{running}/{eligible}")
        }
        Some(Mode::ReplicatedJob(j)) => {
            job_cell(service, tasks, j.total_completions.max(1) as usize)
        }
        Some(Mode::GlobalJob(_)) => {
            let this_run = tasks
                .iter()
                .filter(|t| t.spec_version == service.spec_version)
                .count();
            job_cell(service, tasks, this_run)
        }
        None => String::new(),
    }
}

/// A job's progress in its current run: `completed/total (N running)`.
fn job_cell(service: &Service, tasks: &[&Task], total: usize) -> String {
    let this_run = tasks
        .iter()
        .filter(|t| t.spec_version == service.spec_version);
    let (mut done, mut running) = (0, 0);
    for t in this_run {
        match t.status.as_ref().map(|s| s.state()) {
            Some(TaskState::Complete) => done += 1,
            Some(TaskState::Running) => running += 1,
            _ => {}
        }
    }
    format!("{done}/{total} ({running} running)")
}

/// `service ls`.
pub fn render_ls(services: &[Service], tasks: &[Task], nodes: &[Node]) -> String {
    let down: HashSet<&str> = nodes
        .iter()
        .filter(|n| n.status.as_ref().map(|s| s.state()) == Some(NodeState::Down))
        .map(|n| n.id.as_str())
        .collect();
    let mut by_service: HashMap<&str, Vec<&Task>> = HashMap::new();
    for t in tasks {
        by_service.entry(t.service_id.as_str()).or_default().push(t);
    }
    // A Ports column only when some service publishes one: the walkthrough's table (the
    // contract) has none.
    let with_ports = services
        .iter()
        .any(|s| !crate::ports::service_ports(s).is_empty());
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|s| {
            let image = image_of(s);
            let own = by_service.get(s.id.as_str()).cloned().unwrap_or_default();
            let mut row = vec![
                s.id.clone(),
                service_name(s).to_string(),
                image,
                replicas_cell(s, &own, &down),
            ];
            if with_ports {
                let ports: Vec<String> = crate::ports::service_ports(s)
                    .iter()
                    .map(crate::ports::port_text)
                    .collect();
                row.push(ports.join(", "));
            }
            row
        })
        .collect();
    // The walkthrough underlines "Replicas" with nine dashes; the tables are the contract.
    if with_ports {
        return table::table_underlined(
            LIST,
            &["ID", "Name", "Image", "Replicas", "Ports"],
            &["--", "----", "-----", "---------", "-----"],
            &rows,
        );
    }
    table::table_underlined(
        LIST,
        &["ID", "Name", "Image", "Replicas"],
        &["--", "----", "-----", "---------"],
        &rows,
    )
}

fn image_of(s: &Service) -> String {
    s.spec
        .as_ref()
        .and_then(|sp| sp.task.as_ref())
        .and_then(|t| t.container.as_ref())
        .map(|c| c.image.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{node, redis, task, NOW};
    use super::*;
    use swarm_api::{NodeStatus, TaskStatus};

    #[test]
    fn ls_matches_walkthrough_right_after_create() {
        let out = render_ls(&[redis(1, "redis:3.0.5")], &[], &[]);
        assert_eq!(
            out,
            "ID                         Name   Image        Replicas\n\
             --                         ----   -----        ---------\n\
             89831rq7oplzp6oqcqoswquf2  redis  redis:3.0.5  1\n"
        );
    }

    #[test]
    fn ls_counts_running_tasks_once_they_exist() {
        let mut tasks: Vec<Task> = (1..=6)
            .map(|i| task(&format!("t{i}"), i, "n1", TaskState::Running, NOW))
            .collect();
        tasks[5].status = Some(TaskStatus {
            state: TaskState::Pending as i32,
            ..Default::default()
        });
        let out = render_ls(&[redis(6, "redis:3.0.5")], &tasks, &[node("n1", "node-1")]);
        assert!(out.ends_with("redis  redis:3.0.5  5/6\n"), "{out}");
        // Tasks on a node that is down do not count as running.
        let mut down = node("n1", "node-1");
        down.status = Some(NodeStatus {
            state: NodeState::Down as i32,
            ..Default::default()
        });
        let out = render_ls(&[redis(6, "redis:3.0.5")], &tasks, &[down]);
        assert!(out.ends_with("redis  redis:3.0.5  0/6\n"), "{out}");
    }

    #[test]
    fn global_services_show_running_over_eligible() {
        let mut svc = redis(0, "redis:3.0.5");
        if let Some(spec) = svc.spec.as_mut() {
            spec.mode = Some(Mode::Global(Default::default()));
        }
        let mut tasks = vec![
            task("a", 0, "n1", TaskState::Running, NOW),
            task("b", 0, "n2", TaskState::Starting, NOW),
            task("c", 0, "n3", TaskState::Shutdown, NOW),
        ];
        tasks[2].desired_state = TaskState::Shutdown as i32;
        let out = render_ls(&[svc], &tasks, &[]);
        assert!(out.ends_with("  1/2\n"), "{out}");
    }
}
