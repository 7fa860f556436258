//! `inspect-state`'s text format: membership, log positions, the objects as tables, and with
//! `--log` one line per log entry.

use std::collections::{BTreeMap, HashMap};

use super::redact::mask_token;
use swarm_api::names::{self, Named};
use swarm_api::service_spec::Mode;
use swarm_api::{
    state, store_object::Object, Node, NodeAvailability, NodeRole, NodeState, Service,
    StoreActionKind, StoreBatch, Task, TaskState,
};
use swarm_raft::{EntryKind, MembershipReport, StateReport};

pub(super) fn render_text(r: &StateReport, with_log: bool) -> String {
    let mut out = String::new();
    out.push_str(&format!("Raft state in {}\n", r.raft_dir.display()));
    let mut head: Vec<(String, String)> = Vec::new();
    match &r.vote {
        Some(v) => {
            head.push(("Term".into(), v.term.to_string()));
            let voted = match v.voted_for {
                Some(id) if v.committed => format!("{id} (leader of the term)"),
                Some(id) => id.to_string(),
                None => "nobody".into(),
            };
            head.push(("Voted for".into(), voted));
        }
        None => head.push(("Term".into(), "none (never voted)".into())),
    }
    head.push(("Membership".into(), membership_line(&r.membership)));
    // A member is named by the node whose record names its ID, or whose ID it derives from
    // (Raft state made before incarnations: `raft_id_of`).
    let member_node: HashMap<u64, String> = r
        .current
        .nodes
        .iter()
        .flat_map(|n| {
            let name = format!("node {} ({})", node_name(n), n.id);
            let recorded = n.manager_status.as_ref().map_or(0, |m| m.raft_id);
            [
                (swarm_api::ids::raft_id_of(&n.id), name.clone()),
                (recorded, name),
            ]
        })
        .filter(|(id, _)| *id != 0)
        .collect();
    for (what, members) in [
        ("voter", &r.membership.voters),
        ("learner", &r.membership.learners),
    ] {
        for m in members {
            let node = member_node.get(&m.raft_id).cloned().unwrap_or_default();
            head.push((
                String::new(),
                format!("{what:<7} {:<20} {:<21} {node}", m.raft_id, m.addr)
                    .trim_end()
                    .to_string(),
            ));
        }
    }
    head.push(("First index".into(), opt(r.first_log_index)));
    head.push(("Last index".into(), opt(r.last_log_index)));
    head.push((
        "Committed".into(),
        r.committed
            .map(|c| format!("{} (term {})", c.index, c.term))
            .unwrap_or_else(|| "-".into()),
    ));
    head.push(("Purged up to".into(), opt(r.last_purged.map(|p| p.index))));
    head.push((
        "Snapshot".into(),
        match &r.snapshot {
            Some(s) => format!(
                "index {} (term {}), {}",
                opt(s.last.map(|l| l.index)),
                opt(s.last.map(|l| l.term)),
                s.file.display()
            ),
            None => "none".into(),
        },
    ));
    head.push(("Applied".into(), opt(r.applied.map(|a| a.index))));
    if r.log_repaired {
        head.push((
            "Note".into(),
            "the log was not closed cleanly; read from a repaired copy (original untouched)".into(),
        ));
    }
    for (k, v) in &head {
        if k.is_empty() {
            out.push_str(&format!("  {:<14}  {v}\n", ""));
        } else {
            out.push_str(&format!("  {:<14}: {v}\n", k));
        }
    }
    for w in &r.warnings {
        out.push_str(&format!("Warning: {w}\n"));
    }

    let s = &r.current;
    let node_names: HashMap<&str, String> = s
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), node_name(n)))
        .collect();
    let service_names: HashMap<&str, String> = s
        .services
        .iter()
        .map(|sv| (sv.id.as_str(), service_name(sv)))
        .collect();

    out.push_str(&format!("\nNodes ({})\n", s.nodes.len()));
    out.push_str(&table(
        &["ID", "NAME", "ROLE", "STATE", "AVAILABILITY"],
        s.nodes.iter().map(|n| {
            let spec = n.spec.clone().unwrap_or_default();
            vec![
                n.id.clone(),
                node_name(n),
                role_name(n.role()).into(),
                state::node_state_name(
                    n.status
                        .as_ref()
                        .map(|st| st.state())
                        .unwrap_or(NodeState::Unknown),
                )
                .into(),
                state::availability_name(
                    n.spec
                        .as_ref()
                        .map(|_| spec.availability())
                        .unwrap_or(NodeAvailability::Active),
                )
                .into(),
            ]
        }),
    ));

    out.push_str(&format!("\nServices ({})\n", s.services.len()));
    out.push_str(&table(
        &["ID", "NAME", "IMAGE", "MODE", "SPEC VERSION"],
        s.services.iter().map(|sv| {
            let spec = sv.spec.clone().unwrap_or_default();
            let image = spec
                .task
                .as_ref()
                .and_then(|t| t.container.as_ref())
                .map(|c| c.image.clone())
                .unwrap_or_default();
            let mode = match &spec.mode {
                Some(Mode::Replicated(r)) => format!("replicated {}", r.replicas),
                Some(Mode::Global(_)) => "global".into(),
                Some(Mode::ReplicatedJob(j)) => format!("replicated-job {}", j.total_completions),
                Some(Mode::GlobalJob(_)) => "global-job".into(),
                None => "-".into(),
            };
            vec![
                sv.id.clone(),
                service_name(sv),
                image,
                mode,
                sv.spec_version.to_string(),
            ]
        }),
    ));

    out.push_str(&format!("\nTasks ({})\n", s.tasks.len()));
    let mut tasks: Vec<&Task> = s.tasks.iter().collect();
    tasks.sort_by(|a, b| {
        (task_service(a, &service_names), a.slot, &a.node_id, &a.id).cmp(&(
            task_service(b, &service_names),
            b.slot,
            &b.node_id,
            &b.id,
        ))
    });
    out.push_str(&table(
        &["ID", "SERVICE", "SLOT", "NODE", "DESIRED", "STATE"],
        tasks.iter().map(|t| {
            vec![
                t.id.clone(),
                task_service(t, &service_names),
                t.slot.to_string(),
                node_names
                    .get(t.node_id.as_str())
                    .cloned()
                    .unwrap_or_else(|| t.node_id.clone()),
                state::task_state_name(t.desired_state()).into(),
                state::task_state_name(
                    t.status
                        .as_ref()
                        .map(|st| st.state())
                        .unwrap_or(TaskState::New),
                )
                .into(),
            ]
        }),
    ));

    out.push_str(&format!("\nCluster ({})\n", s.clusters.len()));
    out.push_str(&table(
        &["ID", "NAME", "WORKER TOKEN", "MANAGER TOKEN", "CA KEY"],
        s.clusters.iter().map(|c| {
            let tokens = c
                .root_ca
                .as_ref()
                .and_then(|ca| ca.join_tokens.clone())
                .unwrap_or_default();
            vec![
                c.id.clone(),
                c.spec
                    .as_ref()
                    .and_then(|sp| sp.annotations.as_ref())
                    .map(|a| a.name.clone())
                    .unwrap_or_default(),
                // Already masked by redaction; masking again keeps this safe on its own.
                mask_token(&tokens.worker),
                mask_token(&tokens.manager),
                "(not shown)".into(),
            ]
        }),
    ));
    if !s.secrets.is_empty() || !s.configs.is_empty() {
        out.push_str(&format!(
            "\nSecrets: {} (data not shown); configs: {}\n",
            s.secrets.len(),
            s.configs.len()
        ));
    }

    if with_log {
        out.push_str(&format!(
            "\nLog after the snapshot ({} entries)\n",
            r.entries.len()
        ));
        out.push_str(&table(
            &["INDEX", "TERM", "KIND", "SUMMARY"],
            r.entries.iter().map(|e| {
                let (kind, mut summary) = match &e.kind {
                    EntryKind::Blank => ("blank", String::new()),
                    EntryKind::Normal { batches } => match batches.as_slice() {
                        [one] => ("normal", batch_summary(one)),
                        many => (
                            "group",
                            many.iter()
                                .map(batch_summary)
                                .collect::<Vec<_>>()
                                .join(" | "),
                        ),
                    },
                    EntryKind::Membership { membership } => {
                        ("membership", membership_line(membership))
                    }
                    EntryKind::Unreadable { error } => ("unreadable", error.clone()),
                };
                if !e.committed {
                    summary.push_str(" [uncommitted]");
                }
                if let Some(why) = &e.refused {
                    summary.push_str(&format!(" [refused: {why}]"));
                }
                vec![
                    e.index.to_string(),
                    e.term.to_string(),
                    kind.into(),
                    summary.trim().to_string(),
                ]
            }),
        ));
    }
    out
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn membership_line(m: &MembershipReport) -> String {
    let ids = |ms: &[swarm_raft::Member]| {
        if ms.is_empty() {
            "none".to_string()
        } else {
            ms.iter()
                .map(|m| m.raft_id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut s = format!("voters {}; learners {}", ids(&m.voters), ids(&m.learners));
    if let Some(i) = m.log_index {
        s.push_str(&format!(" (set at index {i})"));
    }
    if m.joint {
        s.push_str(" [joint: change in progress]");
    }
    s
}

/// Columns two spaces apart, each as wide as its widest cell; "(none)" for no rows.
fn table(columns: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.collect();
    if rows.is_empty() {
        return "  (none)\n".into();
    }
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, cell) in cells.enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            l.push_str(cell);
            l.push_str(&" ".repeat(w.saturating_sub(cell.chars().count()) + 2));
        }
        format!("{}\n", l.trim_end())
    };
    let mut out = line(&mut columns.iter().copied());
    for r in &rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out
}

fn role_name(r: NodeRole) -> &'static str {
    match r {
        NodeRole::Worker => "WORKER",
        NodeRole::Manager => "MANAGER",
    }
}

fn node_name(n: &Node) -> String {
    names::node_name(n).to_string()
}

fn service_name(s: &Service) -> String {
    s.name().to_string()
}

fn task_service(t: &Task, services: &HashMap<&str, String>) -> String {
    if !t.service_name.is_empty() {
        return t.service_name.clone();
    }
    services
        .get(t.service_id.as_str())
        .cloned()
        .unwrap_or_else(|| t.service_id.clone())
}

/// `create service redis, update task web.1`; large batches (the scheduler writes hundreds of
/// tasks at once) are counted per kind instead.
pub(super) fn batch_summary(b: &StoreBatch) -> String {
    const LIST_UP_TO: usize = 5;
    let items: Vec<(&'static str, &'static str, String)> = b
        .actions
        .iter()
        .map(|a| {
            let kind = match a.kind() {
                StoreActionKind::Create => "create",
                StoreActionKind::Update => "update",
                StoreActionKind::Remove => "remove",
            };
            let (table, name) = match a.object.as_ref().and_then(|o| o.object.as_ref()) {
                Some(Object::Node(n)) => ("node", or_id(node_name(n), &n.id)),
                Some(Object::Service(s)) => ("service", or_id(service_name(s), &s.id)),
                Some(Object::Task(t)) => ("task", or_id(t.name().to_string(), &t.id)),
                Some(Object::Cluster(c)) => ("cluster", or_id(c.name().to_string(), &c.id)),
                Some(Object::Secret(s)) => ("secret", or_id(s.name().to_string(), &s.id)),
                Some(Object::Config(c)) => ("config", or_id(c.name().to_string(), &c.id)),
                Some(Object::Network(n)) => ("network", or_id(n.name().to_string(), &n.id)),
                None => ("(empty)", String::new()),
            };
            (kind, table, name)
        })
        .collect();
    if items.is_empty() {
        return "(no actions)".into();
    }
    if items.len() <= LIST_UP_TO {
        return items
            .iter()
            .map(|(k, t, n)| format!("{k} {t} {n}").trim_end().to_string())
            .collect::<Vec<_>>()
            .join(", ");
    }
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (k, t, _) in &items {
        *counts.entry((k, t)).or_default() += 1;
    }
    counts
        .iter()
        .map(|((k, t), n)| format!("{k} {t} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn or_id(name: String, id: &str) -> String {
    if name.is_empty() {
        id.to_string()
    } else {
        name
    }
}
