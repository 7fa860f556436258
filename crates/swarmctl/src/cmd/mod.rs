//! The subcommands, one module per object kind, and what they share: the `--format` flag,
//! writing to stdout, and the cells every task table prints.

pub mod cluster;
mod logs;
pub mod network;
pub mod node;
pub mod secret;
pub mod service;
pub mod task;
mod wait;

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use clap::{Args, ValueEnum};
use swarm_api::{state, HealthState, Node, Task, TaskState};

use crate::ago::ago;
use crate::resolve::node_name;
use crate::table::{self, TASKS};

/// How `ls` and `inspect` print.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people
    #[default]
    Table,
    /// The API objects as JSON
    Json,
}

#[derive(Args, Debug, Clone, Default)]
pub struct FormatArg {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Writes `text` to stdout. A closed pipe (`swarmctl … | head -1`) is not an error.
pub fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let res = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush());
    match res {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Prints API objects as pretty JSON.
pub fn out_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    out(&text)
}

/// Node ID → the name tables show for it.
pub fn node_names(nodes: &[Node]) -> HashMap<String, String> {
    nodes
        .iter()
        .map(|n| (n.id.clone(), node_name(n).to_string()))
        .collect()
}

/// The node column of a task: its node's name, the bare ID when the node is gone, empty when
/// the task is not assigned yet.
pub fn node_cell(task: &Task, names: &HashMap<String, String>) -> String {
    if task.node_id.is_empty() {
        return String::new();
    }
    match names.get(&task.node_id) {
        Some(name) if !name.is_empty() => name.clone(),
        _ => task.node_id.clone(),
    }
}

/// "RUNNING 2 seconds ago": the observed state and how long it has held, and, for a task
/// with a healthcheck, its health as `docker ps` words it ("(health: starting)").
pub fn last_state_cell(task: &Task, now_ms: i64) -> String {
    let status = task.status.clone().unwrap_or_default();
    let name = state::task_state_name(status.state());
    let mut when = if status.timestamp == 0 {
        name.to_string()
    } else {
        format!("{name} {}", ago(now_ms, status.timestamp))
    };
    match (status.state(), status.health()) {
        (TaskState::Starting, HealthState::Starting) => when.push_str(" (health: starting)"),
        (TaskState::Running, HealthState::Healthy) => when.push_str(" (healthy)"),
        _ => {}
    }
    // Why a task failed or was refused belongs next to it (as `docker service ps` shows it).
    let why = if status.err.is_empty() {
        &status.message
    } else {
        &status.err
    };
    match status.state() {
        TaskState::Failed | TaskState::Rejected if !why.is_empty() => format!("{when}: {why}"),
        _ => when,
    }
}

/// Tasks still meant to run (desired state RUNNING or earlier), unless `all`.
pub fn is_shown(task: &Task, all: bool) -> bool {
    all || (task.desired_state() as i32) <= (TaskState::Running as i32)
}

/// Tasks by slot, newest first within a slot; global tasks (slot 0) by node.
pub fn sort_by_slot(tasks: &mut [Task], names: &HashMap<String, String>) {
    tasks.sort_by(|a, b| {
        a.slot
            .cmp(&b.slot)
            .then_with(|| node_cell(a, names).cmp(&node_cell(b, names)))
            .then_with(|| created(b).cmp(&created(a)))
            .then_with(|| a.id.cmp(&b.id))
    });
}

fn created(t: &Task) -> i64 {
    t.meta.as_ref().map(|m| m.created_at).unwrap_or(0)
}

/// The table of tasks under `service inspect`, `node inspect` and `task inspect`.
pub fn task_table(tasks: &[Task], names: &HashMap<String, String>, now_ms: i64) -> String {
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            let image = t
                .spec
                .as_ref()
                .and_then(|s| s.container.as_ref())
                .map(|c| c.image.clone())
                .unwrap_or_default();
            let instance = if t.slot > 0 {
                t.slot.to_string()
            } else {
                "-".to_string()
            };
            vec![
                t.id.clone(),
                t.service_name.clone(),
                instance,
                image,
                state::task_state_name(t.desired_state()).to_string(),
                last_state_cell(t, now_ms),
                node_cell(t, names),
            ]
        })
        .collect();
    table::table(
        TASKS,
        &[
            "Task ID",
            "Service",
            "Instance",
            "Image",
            "Desired State",
            "Last State",
            "Node",
        ],
        &rows,
    )
}

#[cfg(test)]
mod last_state_tests {
    use super::*;
    use swarm_api::TaskStatus;

    #[test]
    fn failures_carry_their_reason_and_running_tasks_do_not() {
        let mut t = Task {
            status: Some(TaskStatus {
                state: TaskState::Rejected as i32,
                timestamp: 1_000,
                err: "invalid reference format".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            last_state_cell(&t, 3_000),
            "REJECTED 2 seconds ago: invalid reference format"
        );
        t.status = Some(TaskStatus {
            state: TaskState::Running as i32,
            timestamp: 1_000,
            message: "started".into(),
            ..Default::default()
        });
        assert_eq!(last_state_cell(&t, 3_000), "RUNNING 2 seconds ago");
    }

    #[test]
    fn health_shows_beside_the_state() {
        let cell = |state: TaskState, health: HealthState, err: &str| {
            let t = Task {
                status: Some(TaskStatus {
                    state: state as i32,
                    timestamp: 1_000,
                    health: health as i32,
                    err: err.into(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            last_state_cell(&t, 3_000)
        };
        assert_eq!(
            cell(TaskState::Starting, HealthState::Starting, ""),
            "STARTING 2 seconds ago (health: starting)"
        );
        assert_eq!(
            cell(TaskState::Running, HealthState::Healthy, ""),
            "RUNNING 2 seconds ago (healthy)"
        );
        assert_eq!(
            cell(
                TaskState::Failed,
                HealthState::Unhealthy,
                "unhealthy: 3 failed"
            ),
            "FAILED 2 seconds ago: unhealthy: 3 failed"
        );
        assert_eq!(
            cell(TaskState::Starting, HealthState::None, ""),
            "STARTING 2 seconds ago"
        );
    }
}
