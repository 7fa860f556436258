//! `swarmctl service …`: create, update, ls, inspect, rm and logs (in `logs.rs`), and the layouts of `service ls`
//! and `service inspect`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use swarm_api::{
    service_spec::Mode, CreateServiceRequest, ListNodesRequest, ListServicesRequest,
    ListTasksRequest, Node, NodeState, RemoveServiceRequest, RestartCondition, Service, Task,
    TaskState, UpdateFailureAction, UpdateOrder, UpdateServiceRequest, UpdateState,
};

use super::wait;
use super::{is_shown, node_names, out, out_json, sort_by_slot, task_table, Format, FormatArg};
use crate::ago::ago;
use crate::client;
use crate::flags::{new_service_spec, ServiceFlags};
use crate::resolve::{self, service_name};
use crate::table::{self, LIST, SUMMARY};
use crate::units;

#[derive(Subcommand, Debug)]
pub enum ServiceCmd {
    /// Create a service, print its ID and wait for its tasks to run
    Create {
        #[command(flatten)]
        wait: WaitArgs,
        #[command(flatten)]
        flags: ServiceFlags,
    },
    /// Change a service: only the named flags change
    Update {
        /// Service name, ID or ID prefix
        service: String,
        /// Restart every task even if nothing else changed
        #[arg(long)]
        force: bool,
        /// Go back to the previous spec (with the rollback config)
        #[arg(long, conflicts_with = "force")]
        rollback: bool,
        /// Move tasks so they are spread evenly over the nodes again (new nodes included),
        /// within the update parallelism and delay
        #[arg(long, conflicts_with = "rollback")]
        rebalance: bool,
        #[command(flatten)]
        wait: WaitArgs,
        #[command(flatten)]
        flags: ServiceFlags,
    },
    /// List services
    #[command(visible_alias = "list")]
    Ls {
        /// Only print IDs
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show a service and its tasks
    Inspect {
        /// Service name, ID or ID prefix
        service: String,
        /// Also show tasks that are no longer meant to run
        #[arg(short, long)]
        all: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Remove a service
    #[command(visible_alias = "remove")]
    Rm {
        /// Service name, ID or ID prefix
        service: String,
    },
    /// Print the output of a service's tasks, each line prefixed with its task and node
    Logs {
        /// Service name, ID or ID prefix
        service: String,
        /// Keep printing output as it is written
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines of each task
        #[arg(long, value_name = "N")]
        tail: Option<u64>,
    },
}

/// How `create` and `update` end: at once, or once the service has converged.
#[derive(Args, Debug, Clone, Copy)]
pub struct WaitArgs {
    /// Return once the manager accepted the change instead of waiting for the tasks
    #[arg(short, long)]
    detach: bool,
    /// Wait without showing progress
    #[arg(short, long)]
    quiet: bool,
}

impl ServiceCmd {
    pub async fn run(self, socket: &Path) -> Result<()> {
        match self {
            ServiceCmd::Create { wait: w, flags } => {
                if flags.name.is_none() {
                    bail!("name: --name is required");
                }
                if flags.image.is_none() {
                    bail!("image: --image is required");
                }
                let mut spec = new_service_spec();
                flags.apply(&mut spec)?;
                let mut c = client::connect(socket).await?;
                let created = c
                    .create_service(CreateServiceRequest { spec: Some(spec) })
                    .await?
                    .into_inner();
                let service = created.service.unwrap_or_default();
                // The ID first, as `docker service create` does, then the wait.
                out(&format!("{}\n", service.id))?;
                if w.detach {
                    return Ok(());
                }
                let base = wait::baseline(&mut c, &service, false).await?;
                wait::converge(&mut c, &service.id, base, w.quiet).await
            }
            ServiceCmd::Update {
                service,
                force,
                rollback,
                rebalance,
                wait: w,
                flags,
            } => {
                // Parse every flag before talking to the manager.
                flags.apply(&mut new_service_spec())?;
                let mut c = client::connect(socket).await?;
                let current = resolve::service(&mut c, &service).await?;
                let old_spec = current.spec.clone().unwrap_or_default();
                let mut spec = old_spec.clone();
                flags.apply(&mut spec)?;
                if force {
                    let task = spec.task.get_or_insert_with(Default::default);
                    task.force_update = task.force_update.wrapping_add(1);
                }
                if rollback && spec != old_spec {
                    bail!("rollback: cannot be combined with other changes");
                }
                if spec == old_spec && !rollback && !rebalance {
                    bail!("no changes for service {service}");
                }
                let version = current.meta.as_ref().map(|m| m.version).unwrap_or(0);
                let base = if w.detach {
                    Default::default()
                } else {
                    wait::baseline(&mut c, &current, rollback).await?
                };
                let updated = c
                    .update_service(UpdateServiceRequest {
                        service_id: current.id.clone(),
                        service_version: version,
                        spec: Some(spec),
                        rollback,
                        rebalance,
                    })
                    .await?
                    .into_inner();
                let id = updated.service.map(|s| s.id).unwrap_or(current.id);
                out(&format!("{id}\n"))?;
                if w.detach {
                    return Ok(());
                }
                wait::converge(&mut c, &id, base, w.quiet).await
            }
            ServiceCmd::Ls { quiet, format } => {
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
            ServiceCmd::Inspect {
                service,
                all,
                format,
            } => {
                let mut c = client::connect(socket).await?;
                let svc = resolve::service(&mut c, &service).await?;
                if format.format == Format::Json {
                    return out_json(&svc);
                }
                let tasks = c
                    .list_tasks(ListTasksRequest {
                        service_ids: vec![svc.id.clone()],
                        node_ids: vec![],
                    })
                    .await?
                    .into_inner()
                    .tasks;
                let nodes = c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes;
                out(&render_inspect(
                    &svc,
                    &tasks,
                    &nodes,
                    swarm_api::now_ms(),
                    all,
                ))
            }
            ServiceCmd::Rm { service } => {
                let mut c = client::connect(socket).await?;
                let svc = resolve::service(&mut c, &service).await?;
                c.remove_service(RemoveServiceRequest {
                    service_id: svc.id.clone(),
                })
                .await?;
                out(&format!("{service}\n"))
            }
            ServiceCmd::Logs {
                service,
                follow,
                tail,
            } => super::logs::run(socket, &service, follow, tail).await,
        }
    }
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

fn update_state_name(s: UpdateState) -> &'static str {
    match s {
        UpdateState::Unknown => "UNKNOWN",
        UpdateState::Updating => "UPDATING",
        UpdateState::Paused => "PAUSED",
        UpdateState::Completed => "COMPLETED",
        UpdateState::RollbackStarted => "ROLLBACK_STARTED",
        UpdateState::RollbackPaused => "ROLLBACK_PAUSED",
        UpdateState::RollbackCompleted => "ROLLBACK_COMPLETED",
    }
}

fn restart_condition_name(c: RestartCondition) -> &'static str {
    match c {
        RestartCondition::Any => "any",
        RestartCondition::None => "none",
        RestartCondition::OnFailure => "on-failure",
    }
}

/// The newest error among the service's tasks (REJECTED or FAILED, history included), as
/// `<task name> (<state>, <when>): <error>`: why tasks do not run, without a `task inspect`.
fn last_task_error(service: &Service, tasks: &[Task], now_ms: i64) -> Option<String> {
    let status = tasks
        .iter()
        .filter(|t| t.service_id == service.id)
        .filter_map(|t| Some((t, t.status.as_ref()?)))
        .filter(|(_, s)| matches!(s.state(), TaskState::Rejected | TaskState::Failed))
        .filter(|(_, s)| !s.err.is_empty() || !s.message.is_empty())
        .max_by_key(|(_, s)| s.timestamp);
    let (t, status) = status?;
    let why = if status.err.is_empty() {
        &status.message
    } else {
        &status.err
    };
    let name = if t.slot > 0 {
        format!("{}.{}", service_name(service), t.slot)
    } else {
        format!("{}.{}", service_name(service), t.node_id)
    };
    // One line: an engine's message may hold line feeds.
    let err = why.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(format!(
        "{name} ({}, {}): {err}",
        swarm_api::state::task_state_name(status.state()),
        ago(now_ms, status.timestamp)
    ))
}

/// The `key : value` lines of `service inspect`, before alignment.
fn summary_lines(service: &Service, now_ms: i64) -> String {
    let spec = service.spec.clone().unwrap_or_default();
    let task = spec.task.clone().unwrap_or_default();
    let ctr = task.container.clone().unwrap_or_default();
    let mut w = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(w, "ID\t: {}", service.id);
    let _ = writeln!(w, "Name\t: {}", service_name(service));
    let labels: BTreeMap<_, _> = spec
        .annotations
        .as_ref()
        .map(|a| a.labels.iter().collect())
        .unwrap_or_default();
    if !labels.is_empty() {
        let _ = writeln!(w, "Labels\t");
        for (k, v) in labels {
            let _ = writeln!(w, "  {k}\t: {v}");
        }
    }
    let replicas = match &spec.mode {
        Some(Mode::Replicated(r)) => r.replicas.to_string(),
        Some(Mode::Global(_)) => "global".to_string(),
        Some(Mode::ReplicatedJob(j)) => {
            format!(
                "{} completions, at most {} at a time (job)",
                j.total_completions, j.max_concurrent
            )
        }
        Some(Mode::GlobalJob(_)) => "global job".to_string(),
        None => String::new(),
    };
    let _ = writeln!(w, "Replicas\t: {replicas}");

    if let Some(us) = &service.update_status {
        if us.state() != UpdateState::Unknown {
            let _ = writeln!(w, "Update Status\t");
            let _ = writeln!(w, " State\t: {}", update_state_name(us.state()));
            if us.started_at != 0 {
                let _ = writeln!(w, " Started\t: {}", ago(now_ms, us.started_at));
            }
            if us.completed_at != 0 {
                let _ = writeln!(w, " Completed\t: {}", ago(now_ms, us.completed_at));
            }
            if !us.message.is_empty() {
                let _ = writeln!(w, " Message\t: {}", us.message);
            }
        }
    }

    if let Some(u) = &spec.update {
        let custom = u.parallelism != 0
            || u.delay_ms != 0
            || u.failure_action() != UpdateFailureAction::Pause
            || u.order() != UpdateOrder::StopFirst;
        if custom {
            let _ = writeln!(w, "Update Config\t");
            let _ = writeln!(w, " Parallelism\t: {}", u.parallelism);
            if u.delay_ms != 0 {
                let _ = writeln!(w, " Delay\t: {}", units::duration_ms(u.delay_ms));
            }
            if u.failure_action() != UpdateFailureAction::Pause {
                let action = match u.failure_action() {
                    UpdateFailureAction::Pause => "pause",
                    UpdateFailureAction::Continue => "continue",
                    UpdateFailureAction::Rollback => "rollback",
                };
                let _ = writeln!(w, " On Failure\t: {action}");
            }
            if u.order() == UpdateOrder::StartFirst {
                let _ = writeln!(w, " Order\t: start-first");
            }
        }
    }

    let ports = crate::ports::service_ports(service);
    if !ports.is_empty() {
        let _ = writeln!(w, "Ports\t");
        for p in &ports {
            let mode = match p.publish_mode() {
                swarm_api::PublishMode::Host => "host",
                swarm_api::PublishMode::Ingress => "ingress",
            };
            let _ = writeln!(w, "  {}\t: {mode}", crate::ports::port_text(p));
        }
    }
    let _ = writeln!(w, "Template\t");
    let _ = writeln!(w, " Container\t");
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
    if let Some(res) = &task.resources {
        let parts = [("Reservations", &res.reservations), ("Limits", &res.limits)];
        let shown: Vec<_> = parts
            .iter()
            .filter_map(|(label, r)| r.as_ref().map(|r| (label, r)))
            .filter(|(_, r)| r.nano_cpus != 0 || r.memory_bytes != 0)
            .collect();
        if !shown.is_empty() {
            let _ = writeln!(w, "  Resources\t");
            for (label, r) in shown {
                let _ = writeln!(w, "   {label}\t");
                if r.nano_cpus != 0 {
                    let _ = writeln!(w, "    CPU\t: {}", units::cpus(r.nano_cpus));
                }
                if r.memory_bytes != 0 {
                    let _ = writeln!(w, "    Memory\t: {}", units::ibytes(r.memory_bytes));
                }
            }
        }
    }
    if let Some(p) = &task.placement {
        if !p.constraints.is_empty() || p.max_replicas_per_node != 0 {
            let _ = writeln!(w, " Placement\t");
            if !p.constraints.is_empty() {
                let _ = writeln!(w, "  Constraints\t: {}", p.constraints.join(", "));
            }
            if p.max_replicas_per_node != 0 {
                let _ = writeln!(w, "  Max Replicas Per Node\t: {}", p.max_replicas_per_node);
            }
        }
    }
    if let Some(r) = &task.restart {
        let _ = writeln!(w, " Restart Policy\t");
        let _ = writeln!(
            w,
            "  Condition\t: {}",
            restart_condition_name(r.condition())
        );
        let _ = writeln!(w, "  Delay\t: {}", units::duration_ms(r.delay_ms));
        if r.max_attempts != 0 {
            let _ = writeln!(w, "  Max Attempts\t: {}", r.max_attempts);
        }
        if r.window_ms != 0 {
            let _ = writeln!(w, "  Window\t: {}", units::duration_ms(r.window_ms));
        }
    }
    w
}

/// `service inspect`: the summary, a blank line and its tasks by slot.
pub fn render_inspect(
    service: &Service,
    tasks: &[Task],
    nodes: &[Node],
    now_ms: i64,
    all: bool,
) -> String {
    let mut lines = summary_lines(service, now_ms);
    if let Some(err) = last_task_error(service, tasks, now_ms) {
        let _ = writeln!(lines, "Last Task Error\t: {err}");
    }
    let mut text = table::render(SUMMARY, &lines);
    let names = node_names(nodes);
    let mut shown: Vec<Task> = tasks
        .iter()
        .filter(|t| t.service_id == service.id && is_shown(t, all))
        .cloned()
        .map(|mut t| {
            if t.service_name.is_empty() {
                t.service_name = service_name(service).to_string();
            }
            t
        })
        .collect();
    if !shown.is_empty() {
        sort_by_slot(&mut shown, &names);
        text.push('\n');
        text.push_str(&task_table(&shown, &names, now_ms));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_api::{
        Annotations, ContainerSpec, Meta, NodeDescription, NodeSpec, NodeStatus, ReplicatedService,
        ServiceSpec, TaskSpec, TaskStatus,
    };

    const NOW: i64 = 1_700_000_000_000;

    fn redis(replicas: u64, image: &str) -> Service {
        Service {
            id: "89831rq7oplzp6oqcqoswquf2".into(),
            meta: Some(Meta {
                version: 5,
                created_at: NOW - 10_000,
                updated_at: NOW - 10_000,
            }),
            spec: Some(ServiceSpec {
                annotations: Some(Annotations {
                    name: "redis".into(),
                    labels: Default::default(),
                }),
                task: Some(TaskSpec {
                    container: Some(ContainerSpec {
                        image: image.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                mode: Some(Mode::Replicated(ReplicatedService { replicas })),
                update: Some(crate::flags::new_service_spec().update.unwrap_or_default()),
                rollback: None,
                endpoint: None,
            }),
            ..Default::default()
        }
    }

    fn task(id: &str, slot: u64, node: &str, state: TaskState, at: i64) -> Task {
        Task {
            id: id.into(),
            meta: Some(Meta {
                version: 1,
                created_at: at,
                updated_at: at,
            }),
            spec: Some(TaskSpec {
                container: Some(ContainerSpec {
                    image: "redis:3.0.5".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            service_id: "89831rq7oplzp6oqcqoswquf2".into(),
            slot,
            node_id: node.into(),
            desired_state: TaskState::Running as i32,
            status: Some(TaskStatus {
                timestamp: at,
                state: state as i32,
                ..Default::default()
            }),
            service_name: "redis".into(),
            ..Default::default()
        }
    }

    fn node(id: &str, hostname: &str) -> Node {
        Node {
            id: id.into(),
            spec: Some(NodeSpec::default()),
            description: Some(NodeDescription {
                hostname: hostname.into(),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                state: NodeState::Ready as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

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

    #[test]
    fn inspect_matches_walkthrough() {
        let t = task(
            "0dsiq9za9at3cqk4qx07n6v8j",
            1,
            "15jkw04qb4yze",
            TaskState::Running,
            NOW - 2_000,
        );
        let out = render_inspect(
            &redis(1, "redis:3.0.5"),
            &[t],
            &[node("15jkw04qb4yze", "node-1")],
            NOW,
            false,
        );
        let want = "\
ID                : 89831rq7oplzp6oqcqoswquf2
Name              : redis
Replicas          : 1
Template
 Container
  Image           : redis:3.0.5

Task ID                      Service    Instance    Image          Desired State    Last State               Node
-------                      -------    --------    -----          -------------    ----------               ----
0dsiq9za9at3cqk4qx07n6v8j    redis      1           redis:3.0.5    RUNNING          RUNNING 2 seconds ago    node-1
";
        assert_eq!(out, want);
    }

    #[test]
    fn inspect_orders_by_slot_and_hides_finished_tasks() {
        let mut old = task("old", 1, "n1", TaskState::Shutdown, NOW - 60_000);
        old.desired_state = TaskState::Shutdown as i32;
        let tasks = vec![
            task("two", 2, "n1", TaskState::Running, NOW - 5_000),
            old,
            task("one", 1, "n1", TaskState::Running, NOW - 5_000),
        ];
        let nodes = [node("n1", "node-1")];
        let out = render_inspect(&redis(2, "redis:3.0.5"), &tasks, &nodes, NOW, false);
        let ids: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.starts_with("----"))
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(ids, vec!["one", "two"]);
        let all = render_inspect(&redis(2, "redis:3.0.5"), &tasks, &nodes, NOW, true);
        assert!(all.contains("old "), "{all}");
        assert!(
            all.contains("SHUTDOWN 1 minute ago") || all.contains("SHUTDOWN About a minute ago")
        );
    }

    #[test]
    fn inspect_names_the_newest_task_error() {
        let with_err = |id: &str, state: TaskState, at: i64, err: &str| {
            let mut t = task(id, 1, "n1", state, at);
            t.desired_state = TaskState::Shutdown as i32;
            if let Some(s) = t.status.as_mut() {
                s.err = err.into();
            }
            t
        };
        let tasks = vec![
            with_err("a", TaskState::Rejected, NOW - 60_000, "older reason"),
            with_err(
                "b",
                TaskState::Rejected,
                NOW - 5_000,
                "invalid\nreference format",
            ),
            task("c", 1, "n1", TaskState::Pending, NOW - 1_000),
        ];
        let nodes = [node("n1", "node-1")];
        let out = render_inspect(&redis(1, "x"), &tasks, &nodes, NOW, false);
        let line = out
            .lines()
            .find(|l| l.starts_with("Last Task Error"))
            .unwrap_or_else(|| panic!("no error line in\n{out}"));
        assert!(
            line.ends_with(": redis.1 (REJECTED, 5 seconds ago): invalid reference format"),
            "{line}"
        );
        let fine = render_inspect(&redis(1, "x"), &tasks[2..], &nodes, NOW, false);
        assert!(!fine.contains("Last Task Error"), "{fine}");
    }

    #[test]
    fn inspect_prints_other_fields_when_set() {
        let mut svc = redis(3, "redis:3.0.7");
        let mut spec = svc.spec.clone().unwrap_or_default();
        let flags = ServiceFlags {
            command: vec!["redis-server".into()],
            args: vec!["--appendonly,yes".into()],
            env: vec!["A=1".into(), "B=2".into()],
            constraints: vec!["node.labels.foo!=bar1".into()],
            update_parallelism: Some("2".into()),
            update_delay: Some("10s".into()),
            restart_condition: Some("on-failure".into()),
            restart_max_attempts: Some("3".into()),
            memory_reservation: Some("64MiB".into()),
            cpu_reservation: Some("0.5".into()),
            ..Default::default()
        };
        assert!(flags.apply(&mut spec).is_ok());
        svc.spec = Some(spec);
        let out = table::render(SUMMARY, &summary_lines(&svc, NOW));
        for want in [
            "Update Config",
            " Parallelism           : 2",
            " Delay                 : 10s",
            "  Command              : \"redis-server\"",
            "  Args                 : [--appendonly, yes]",
            "  Env                  : [A=1, B=2]",
            "    CPU                : 0.5",
            "    Memory             : 64 MiB",
            "  Constraints          : node.labels.foo!=bar1",
            "  Condition            : on-failure",
            "  Delay                : 5s",
            "  Max Attempts         : 3",
        ] {
            assert!(out.lines().any(|l| l == want), "missing {want:?} in\n{out}");
        }
    }
}
