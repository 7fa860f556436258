//! `swarmctl task …`: ls (optionally of one service or node) and inspect, and their layouts.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use clap::Subcommand;
use swarm_api::names::task_name;
use swarm_api::{state, ListNodesRequest, ListServicesRequest, ListTasksRequest, Node, Task};

use super::{
    is_shown, last_state_cell, node_cell, node_names, out, out_json, sort_by_slot, task_table,
    Format, FormatArg,
};
use crate::ago::ago;
use crate::client;
use crate::resolve::{self, service_name};
use crate::table::{self, LIST, SUMMARY};

#[derive(Subcommand, Debug)]
pub enum TaskCmd {
    /// List tasks
    #[command(visible_alias = "list")]
    Ls {
        /// Only tasks of this service (name, ID or ID prefix)
        #[arg(long)]
        service: Option<String>,
        /// Only tasks on this node (name, ID or ID prefix)
        #[arg(long)]
        node: Option<String>,
        /// Also show tasks that are no longer meant to run
        #[arg(short, long)]
        all: bool,
        /// Only print IDs
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show a task and the history of its slot
    Inspect {
        /// Task ID or ID prefix
        task: String,
        #[command(flatten)]
        format: FormatArg,
    },
}

impl TaskCmd {
    pub async fn run(self, socket: &Path) -> Result<()> {
        match self {
            TaskCmd::Ls {
                service,
                node,
                all,
                quiet,
                format,
            } => {
                let mut c = client::connect(socket).await?;
                let mut req = ListTasksRequest::default();
                if let Some(s) = &service {
                    req.service_ids.push(resolve::service(&mut c, s).await?.id);
                }
                if let Some(n) = &node {
                    req.node_ids.push(resolve::node(&mut c, n).await?.id);
                }
                let mut tasks = c.list_tasks(req).await?.into_inner().tasks;
                tasks.retain(|t| is_shown(t, all));
                if format.format == Format::Json {
                    return out_json(&tasks);
                }
                if quiet {
                    return out(&tasks
                        .iter()
                        .map(|t| format!("{}\n", t.id))
                        .collect::<String>());
                }
                let services = c
                    .list_services(ListServicesRequest {})
                    .await?
                    .into_inner()
                    .services;
                let svc_names: HashMap<String, String> = services
                    .iter()
                    .map(|s| (s.id.clone(), service_name(s).to_string()))
                    .collect();
                fill_names(&mut tasks, &svc_names);
                let nodes = c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes;
                out(&render_ls(tasks, &nodes, swarm_api::now_ms()))
            }
            TaskCmd::Inspect { task, format } => {
                let mut c = client::connect(socket).await?;
                let mut t = resolve::task(&mut c, &task).await?;
                if format.format == Format::Json {
                    return out_json(&t);
                }
                let mut siblings = c
                    .list_tasks(ListTasksRequest {
                        service_ids: vec![t.service_id.clone()],
                        node_ids: vec![],
                    })
                    .await?
                    .into_inner()
                    .tasks;
                let services = c
                    .list_services(ListServicesRequest {})
                    .await?
                    .into_inner()
                    .services;
                let svc_names: HashMap<String, String> = services
                    .iter()
                    .map(|s| (s.id.clone(), service_name(s).to_string()))
                    .collect();
                fill_names(std::slice::from_mut(&mut t), &svc_names);
                fill_names(&mut siblings, &svc_names);
                let nodes = c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes;
                let networks =
                    crate::cmd::network::names(&crate::cmd::network::list(&mut c).await?);
                out(&render_inspect(
                    &t,
                    &siblings,
                    &nodes,
                    &networks,
                    swarm_api::now_ms(),
                ))
            }
        }
    }
}

fn fill_names(tasks: &mut [Task], services: &HashMap<String, String>) {
    for t in tasks.iter_mut().filter(|t| t.service_name.is_empty()) {
        if let Some(name) = services.get(&t.service_id) {
            t.service_name = name.clone();
        }
    }
}

/// `task ls`.
pub fn render_ls(mut tasks: Vec<Task>, nodes: &[Node], now_ms: i64) -> String {
    let names = node_names(nodes);
    sort_by_slot(&mut tasks, &names);
    tasks.sort_by(|a, b| a.service_name.cmp(&b.service_name));
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                task_name(t),
                state::task_state_name(t.desired_state()).to_string(),
                last_state_cell(t, now_ms),
                node_cell(t, &names),
            ]
        })
        .collect();
    table::table(
        LIST,
        &["ID", "Service", "Desired State", "Last State", "Node"],
        &rows,
    )
}

fn rfc3339(ms: i64) -> String {
    match u64::try_from(ms) {
        Ok(ms) => {
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        }
        Err(_) => ms.to_string(),
    }
}

/// The `key : value` block of `task inspect`.
pub fn render_summary(
    t: &Task,
    nodes: &[Node],
    networks: &HashMap<String, String>,
    now_ms: i64,
) -> String {
    let names = node_names(nodes);
    let status = t.status.clone().unwrap_or_default();
    let ctr = t
        .spec
        .as_ref()
        .and_then(|s| s.container.clone())
        .unwrap_or_default();
    let mut w = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(w, "ID\t: {}", t.id);
    let _ = writeln!(w, "Name\t: {}", task_name(t));
    let _ = writeln!(w, "Service\t: {}", t.service_name);
    if t.slot > 0 {
        let _ = writeln!(w, "Instance\t: {}", t.slot);
    }
    let _ = writeln!(w, "Node\t: {}", node_cell(t, &names));
    let _ = writeln!(w, "Status\t");
    let _ = writeln!(
        w,
        "  Desired State\t: {}",
        state::task_state_name(t.desired_state())
    );
    let _ = writeln!(
        w,
        "  Last State\t: {}",
        state::task_state_name(status.state())
    );
    if status.timestamp != 0 {
        let _ = writeln!(
            w,
            "  Timestamp\t: {} ({})",
            rfc3339(status.timestamp),
            ago(now_ms, status.timestamp)
        );
    }
    if !status.message.is_empty() {
        let _ = writeln!(w, "  Message\t: {}", status.message);
    }
    if !status.err.is_empty() {
        let _ = writeln!(w, "  Error\t: {}", status.err);
    }
    let health = match status.health() {
        swarm_api::HealthState::None => None,
        swarm_api::HealthState::Starting => Some("starting"),
        swarm_api::HealthState::Healthy => Some("healthy"),
        swarm_api::HealthState::Unhealthy => Some("unhealthy"),
    };
    if let Some(h) = health {
        let _ = writeln!(w, "  Health\t: {h}");
    }
    if !status.container_id.is_empty() {
        let _ = writeln!(w, "  Container ID\t: {}", status.container_id);
    }
    if status.pid != 0 {
        let _ = writeln!(w, "  PID\t: {}", status.pid);
    }
    if state::is_terminal(status.state()) {
        let _ = writeln!(w, "  Exit Code\t: {}", status.exit_code);
    }
    let _ = writeln!(w, "Spec\t");
    if !ctr.image.is_empty() {
        let _ = writeln!(w, "  Image\t: {}", ctr.image);
    }
    if !ctr.command.is_empty() {
        let _ = writeln!(w, "  Command\t: {:?}", ctr.command.join(" "));
    }
    if !ctr.args.is_empty() {
        let _ = writeln!(w, "  Args\t: [{}]", ctr.args.join(", "));
    }
    if !ctr.env.is_empty() {
        let _ = writeln!(w, "  Env\t: [{}]", ctr.env.join(", "));
    }
    if !t.networks.is_empty() {
        let _ = writeln!(w, "Networks\t");
        for a in &t.networks {
            let name = networks.get(&a.network_id).unwrap_or(&a.network_id);
            let _ = writeln!(w, "  {name}\t: {}", a.addresses.join(", "));
        }
    }
    table::render(SUMMARY, &w)
}

/// `task inspect`: the summary, then every task of the same slot (or, for a global service,
/// of the same node), newest first.
pub fn render_inspect(
    t: &Task,
    siblings: &[Task],
    nodes: &[Node],
    networks: &HashMap<String, String>,
    now_ms: i64,
) -> String {
    let mut text = render_summary(t, nodes, networks, now_ms);
    let names = node_names(nodes);
    let mut history: Vec<Task> = siblings
        .iter()
        .filter(|s| {
            s.service_id == t.service_id
                && s.slot == t.slot
                && (t.slot > 0 || s.node_id == t.node_id)
        })
        .cloned()
        .collect();
    if !history.is_empty() {
        sort_by_slot(&mut history, &names);
        text.push('\n');
        text.push_str(&task_table(&history, &names, now_ms));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_api::{ContainerSpec, Meta, NodeDescription, TaskSpec, TaskState, TaskStatus};

    const NOW: i64 = 1_700_000_000_000;

    fn task(id: &str, slot: u64, desired: TaskState, observed: TaskState, at: i64) -> Task {
        Task {
            id: id.into(),
            meta: Some(Meta {
                version: 1,
                created_at: at,
                updated_at: at,
            }),
            spec: Some(
                TaskSpec {
                    container: Some(ContainerSpec {
                        image: "redis:3.0.5".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
                .into(),
            ),
            service_id: "svc".into(),
            slot,
            node_id: "n1".into(),
            desired_state: desired as i32,
            status: Some(TaskStatus {
                timestamp: at,
                state: observed as i32,
                ..Default::default()
            }),
            service_name: "redis".into(),
            ..Default::default()
        }
    }

    fn nodes() -> Vec<Node> {
        vec![Node {
            id: "n1".into(),
            description: Some(NodeDescription {
                hostname: "node-1".into(),
                ..Default::default()
            }),
            ..Default::default()
        }]
    }

    #[test]
    fn ls_layout() {
        let tasks = vec![
            task("t2", 2, TaskState::Running, TaskState::Pending, NOW - 500),
            task("t1", 1, TaskState::Running, TaskState::Running, NOW - 3_000),
        ];
        let want = "\
ID  Service  Desired State  Last State                      Node
--  -------  -------------  ----------                      ----
t1  redis.1  RUNNING        RUNNING 3 seconds ago           node-1
t2  redis.2  RUNNING        PENDING Less than a second ago  node-1
";
        assert_eq!(render_ls(tasks, &nodes(), NOW), want);
    }

    #[test]
    fn inspect_shows_status_and_slot_history() {
        let current = task(
            "new",
            1,
            TaskState::Running,
            TaskState::Running,
            NOW - 2_000,
        );
        let mut old = task(
            "old",
            1,
            TaskState::Shutdown,
            TaskState::Failed,
            NOW - 120_000,
        );
        if let Some(s) = old.status.as_mut() {
            s.err = "exit status 1".into();
            s.exit_code = 1;
        }
        let other = task("x", 2, TaskState::Running, TaskState::Running, NOW);
        let out = render_inspect(
            &current,
            &[old, current.clone(), other],
            &nodes(),
            &Default::default(),
            NOW,
        );
        assert!(out.contains("Name                   : redis.1\n"), "{out}");
        assert!(out.contains("  Last State           : RUNNING\n"), "{out}");
        let ids: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.starts_with("-------"))
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(ids, vec!["new", "old"]);
    }
}
