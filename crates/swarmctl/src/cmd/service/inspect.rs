//! `service inspect`: the service's settings as aligned `key : value` lines, the newest task
//! error, then its tasks by slot.
//!
//! Owns that layout (the walkthrough's is the contract). Must not change anything on the
//! manager: it only reads.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use swarm_api::{
    service_spec::Mode, ListNodesRequest, ListTasksRequest, Node, RestartCondition, Service, Task,
    TaskState, UpdateFailureAction, UpdateOrder, UpdateState,
};

use crate::ago::ago;
use crate::client;
use crate::cmd::{
    is_shown, node_names, out, out_json, sort_by_slot, task_table, Format, FormatArg,
};
use crate::resolve::{self, service_name};
use crate::table::{self, SUMMARY};
use crate::units;

/// `service inspect`.
pub(super) async fn run(socket: &Path, service: &str, all: bool, format: FormatArg) -> Result<()> {
    let mut c = client::connect(socket).await?;
    let svc = resolve::service(&mut c, service).await?;
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
    let networks = crate::cmd::network::names(&crate::cmd::network::list(&mut c).await?);
    out(&render_inspect(
        &svc,
        &tasks,
        &nodes,
        &networks,
        swarm_api::now_ms(),
        all,
    ))
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
fn summary_lines(service: &Service, networks: &HashMap<String, String>, now_ms: i64) -> String {
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
    network_lines(&mut w, service, networks);

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
    if let Some(h) = &ctr.healthcheck {
        healthcheck_lines(&mut w, h);
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

/// The networks a service is on, each with its VIP (vip mode) and aliases, and the endpoint
/// mode when it is dnsrr.
/// The container's healthcheck: its test and the timings it sets (0 = the default, unshown).
fn healthcheck_lines(w: &mut String, h: &swarm_api::HealthCheck) {
    let test = match h.test.split_first() {
        None => "the image's".to_string(),
        Some((kind, _)) if kind == "NONE" => "none (disabled)".to_string(),
        Some((kind, rest)) => format!("{kind} {}", rest.join(" ")),
    };
    let _ = writeln!(w, "  Healthcheck\t");
    let _ = writeln!(w, "   Test\t: {test}");
    for (label, ns) in [
        ("Interval", h.interval_ns),
        ("Timeout", h.timeout_ns),
        ("Start Period", h.start_period_ns),
    ] {
        if ns != 0 {
            let _ = writeln!(w, "   {label}\t: {}", units::duration_ms(ns / 1_000_000));
        }
    }
    if h.retries != 0 {
        let _ = writeln!(w, "   Retries\t: {}", h.retries);
    }
}

fn network_lines(w: &mut String, service: &Service, names: &HashMap<String, String>) {
    let spec = service.spec.clone().unwrap_or_default();
    let attached = spec
        .task
        .map(|t| t.into_inner().networks)
        .unwrap_or_default();
    let dnsrr = spec
        .endpoint
        .as_ref()
        .is_some_and(|e| e.mode == swarm_api::EndpointMode::Dnsrr as i32);
    if dnsrr {
        let _ = writeln!(w, "Endpoint Mode\t: dnsrr");
    }
    if attached.is_empty() {
        return;
    }
    let _ = writeln!(w, "Networks\t");
    for n in &attached {
        let name = names.get(&n.target).unwrap_or(&n.target);
        let vip = service
            .endpoint
            .iter()
            .flat_map(|e| &e.virtual_ips)
            .find(|v| v.network_id == n.target)
            .map(|v| format!("VIP {}", v.addr));
        let vip = match (vip, dnsrr) {
            (Some(v), _) => v,
            (None, true) => "no VIP (dnsrr)".to_string(),
            (None, false) => "VIP not allocated yet".to_string(),
        };
        let aliases = if n.aliases.is_empty() {
            String::new()
        } else {
            format!(", aliases {}", n.aliases.join(","))
        };
        let _ = writeln!(w, "  {name}\t: {vip}{aliases}");
    }
}

/// `service inspect`: the summary, a blank line and its tasks by slot.
pub fn render_inspect(
    service: &Service,
    tasks: &[Task],
    nodes: &[Node],
    networks: &HashMap<String, String>,
    now_ms: i64,
    all: bool,
) -> String {
    let mut lines = summary_lines(service, networks, now_ms);
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
    use super::super::fixtures::{node, redis, task, NOW};
    use super::*;
    use crate::flags::ServiceFlags;

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
            &Default::default(),
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
        let out = render_inspect(
            &redis(2, "redis:3.0.5"),
            &tasks,
            &nodes,
            &Default::default(),
            NOW,
            false,
        );
        let ids: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.starts_with("----"))
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(ids, vec!["one", "two"]);
        let all = render_inspect(
            &redis(2, "redis:3.0.5"),
            &tasks,
            &nodes,
            &Default::default(),
            NOW,
            true,
        );
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
        let out = render_inspect(
            &redis(1, "x"),
            &tasks,
            &nodes,
            &Default::default(),
            NOW,
            false,
        );
        let line = out
            .lines()
            .find(|l| l.starts_with("Last Task Error"))
            .unwrap_or_else(|| panic!("no error line in\n{out}"));
        assert!(
            line.ends_with(": redis.1 (REJECTED, 5 seconds ago): invalid reference format"),
            "{line}"
        );
        let fine = render_inspect(
            &redis(1, "x"),
            &tasks[2..],
            &nodes,
            &Default::default(),
            NOW,
            false,
        );
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
            health: crate::flags::HealthFlags {
                health_cmd: Some("test -f /ready".into()),
                health_interval: Some("500ms".into()),
                health_retries: Some("5".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(flags.apply(&mut spec).is_ok());
        svc.spec = Some(spec);
        let out = table::render(SUMMARY, &summary_lines(&svc, &Default::default(), NOW));
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
            "  Healthcheck",
            "   Test                : CMD-SHELL test -f /ready",
            "   Interval            : 500ms",
            "   Retries             : 5",
        ] {
            assert!(out.lines().any(|l| l == want), "missing {want:?} in\n{out}");
        }
    }
}
