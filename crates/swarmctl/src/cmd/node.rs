//! `swarmctl node …`: ls, inspect, availability changes (activate, pause, drain), role changes
//! (promote, demote), label updates and rm, and the layouts of `node ls` and `node inspect`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Result};
use clap::Subcommand;
use swarm_api::{
    state, ListNodesRequest, ListServicesRequest, ListTasksRequest, Node, NodeAvailability,
    NodeMembership, NodeRole, Reachability, RemoveNodeRequest, Task, UpdateNodeRequest,
};

use super::{is_shown, node_names, out, out_json, sort_by_slot, task_table, Format, FormatArg};
use crate::client::{self, Client};
use crate::flags::parse_label;
use crate::resolve::{self, node_name, service_name};
use crate::table::{self, LIST, SUMMARY};
use crate::units;

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// List nodes
    #[command(visible_alias = "list")]
    Ls {
        /// Only print IDs
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show a node and the tasks on it
    Inspect {
        /// Node name, ID or ID prefix
        node: String,
        /// Also show tasks that are no longer meant to run
        #[arg(short, long)]
        all: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Let the node take new tasks again
    Activate {
        /// Node name, ID or ID prefix
        node: String,
    },
    /// Keep the node's tasks but give it no new ones
    Pause {
        /// Node name, ID or ID prefix
        node: String,
    },
    /// Move every task off the node
    Drain {
        /// Node name, ID or ID prefix
        node: String,
    },
    /// Make the node a manager
    Promote {
        /// Node name, ID or ID prefix
        node: String,
    },
    /// Make the node a worker
    Demote {
        /// Node name, ID or ID prefix
        node: String,
    },
    /// Change a node's labels
    Update {
        /// Node name, ID or ID prefix
        node: String,
        /// Add or change a label key=value (repeatable)
        #[arg(long = "label-add", value_name = "KEY=VALUE")]
        label_add: Vec<String>,
        /// Remove a label by key (repeatable)
        #[arg(long = "label-rm", value_name = "KEY")]
        label_rm: Vec<String>,
    },
    /// Remove a node from the cluster
    #[command(visible_alias = "remove")]
    Rm {
        /// Node name, ID or ID prefix
        node: String,
        /// Remove it even if it is not down
        #[arg(short, long)]
        force: bool,
    },
}

impl NodeCmd {
    pub async fn run(self, socket: &Path) -> Result<()> {
        match self {
            NodeCmd::Ls { quiet, format } => {
                let mut c = client::connect(socket).await?;
                let mut nodes = c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes;
                nodes.sort_by(|a, b| a.id.cmp(&b.id));
                match (format.format, quiet) {
                    (Format::Json, _) => out_json(&nodes),
                    (Format::Table, true) => out(&nodes
                        .iter()
                        .map(|n| format!("{}\n", n.id))
                        .collect::<String>()),
                    (Format::Table, false) => out(&render_ls(&nodes)),
                }
            }
            NodeCmd::Inspect { node, all, format } => {
                let mut c = client::connect(socket).await?;
                let n = resolve::node(&mut c, &node).await?;
                if format.format == Format::Json {
                    return out_json(&n);
                }
                let mut tasks = c
                    .list_tasks(ListTasksRequest {
                        service_ids: vec![],
                        node_ids: vec![n.id.clone()],
                    })
                    .await?
                    .into_inner()
                    .tasks;
                fill_service_names(&mut c, &mut tasks).await?;
                let nodes = c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes;
                out(&render_inspect(
                    &n,
                    &tasks,
                    &nodes,
                    swarm_api::now_ms(),
                    all,
                ))
            }
            NodeCmd::Activate { node } => {
                set_availability(socket, &node, NodeAvailability::Active).await
            }
            NodeCmd::Pause { node } => {
                set_availability(socket, &node, NodeAvailability::Pause).await
            }
            NodeCmd::Drain { node } => {
                set_availability(socket, &node, NodeAvailability::Drain).await
            }
            NodeCmd::Promote { node } => set_role(socket, &node, NodeRole::Manager).await,
            NodeCmd::Demote { node } => set_role(socket, &node, NodeRole::Worker).await,
            NodeCmd::Update {
                node,
                label_add,
                label_rm,
            } => {
                let mut adds = Vec::new();
                for l in &label_add {
                    adds.push(parse_label("label-add", l)?);
                }
                let mut c = client::connect(socket).await?;
                let n = resolve::node(&mut c, &node).await?;
                let mut spec = n.spec.clone().unwrap_or_default();
                let labels = &mut spec.annotations.get_or_insert_with(Default::default).labels;
                for key in &label_rm {
                    if labels.remove(key).is_none() {
                        bail!("label-rm: node {node} has no label {key:?}");
                    }
                }
                for (k, v) in adds {
                    labels.insert(k, v);
                }
                if Some(&spec) == n.spec.as_ref() {
                    bail!("no changes for node {node}");
                }
                update_spec(&mut c, &n, spec).await
            }
            NodeCmd::Rm { node, force } => {
                let mut c = client::connect(socket).await?;
                let n = resolve::node(&mut c, &node).await?;
                c.remove_node(RemoveNodeRequest {
                    node_id: n.id.clone(),
                    force,
                })
                .await?;
                Ok(())
            }
        }
    }
}

async fn update_spec(c: &mut Client, n: &Node, spec: swarm_api::NodeSpec) -> Result<()> {
    c.update_node(UpdateNodeRequest {
        node_id: n.id.clone(),
        node_version: n.meta.as_ref().map(|m| m.version).unwrap_or(0),
        spec: Some(spec),
    })
    .await?;
    Ok(())
}

/// How often a one-field change is re-read and re-applied when the node changed underneath
/// it: the node's own status writes (registration, heartbeats' state) bump the version too,
/// and an operator asking for a drain means this field, whatever else moved.
const STALE_RETRIES: usize = 5;

/// Re-reads `node` and applies `change` to its spec until the write is not stale; `change`
/// refuses (with the message) when there is nothing to do.
async fn change_spec(
    socket: &Path,
    node: &str,
    change: impl Fn(&mut swarm_api::NodeSpec) -> Result<()>,
) -> Result<()> {
    let mut c = client::connect(socket).await?;
    let mut attempt = 0;
    loop {
        let n = resolve::node(&mut c, node).await?;
        let mut spec = n.spec.clone().unwrap_or_default();
        change(&mut spec)?;
        match update_spec(&mut c, &n, spec).await {
            Err(e) if attempt < STALE_RETRIES && is_stale(&e) => attempt += 1,
            other => return other,
        }
    }
}

fn is_stale(e: &anyhow::Error) -> bool {
    e.downcast_ref::<tonic::Status>()
        .is_some_and(|s| s.code() == tonic::Code::Aborted)
}

async fn set_availability(socket: &Path, node: &str, to: NodeAvailability) -> Result<()> {
    change_spec(socket, node, |spec| {
        if spec.availability() == to {
            bail!(
                "node {node} availability is already {}",
                state::availability_name(to)
            );
        }
        spec.set_availability(to);
        Ok(())
    })
    .await
}

async fn set_role(socket: &Path, node: &str, to: NodeRole) -> Result<()> {
    change_spec(socket, node, |spec| {
        if spec.desired_role() == to {
            bail!("node {node} is already a {}", role_name(to).to_lowercase());
        }
        spec.set_desired_role(to);
        Ok(())
    })
    .await
}

/// Fills in service names the server left empty, from the service list.
async fn fill_service_names(c: &mut Client, tasks: &mut [Task]) -> Result<()> {
    if tasks.iter().all(|t| !t.service_name.is_empty()) {
        return Ok(());
    }
    let services = c
        .list_services(ListServicesRequest {})
        .await?
        .into_inner()
        .services;
    let names: HashMap<&str, &str> = services
        .iter()
        .map(|s| (s.id.as_str(), service_name(s)))
        .collect();
    for t in tasks.iter_mut().filter(|t| t.service_name.is_empty()) {
        if let Some(name) = names.get(t.service_id.as_str()) {
            t.service_name = name.to_string();
        }
    }
    Ok(())
}

pub fn membership_name(m: NodeMembership) -> &'static str {
    match m {
        NodeMembership::Pending => "PENDING",
        NodeMembership::Accepted => "ACCEPTED",
    }
}

pub fn role_name(r: NodeRole) -> &'static str {
    match r {
        NodeRole::Worker => "WORKER",
        NodeRole::Manager => "MANAGER",
    }
}

pub fn reachability_name(r: Reachability) -> &'static str {
    match r {
        Reachability::Unknown => "UNKNOWN",
        Reachability::Unreachable => "UNREACHABLE",
        Reachability::Reachable => "REACHABLE",
    }
}

/// The Manager Status column: reachability with " *" on the leader; empty for workers.
pub fn manager_status_cell(n: &Node) -> String {
    match &n.manager_status {
        Some(ms) => {
            let mut cell = reachability_name(ms.reachability()).to_string();
            if ms.leader {
                cell.push_str(" *");
            }
            cell
        }
        None if n.spec.as_ref().map(|s| s.desired_role()) == Some(NodeRole::Manager) => {
            "UNKNOWN".to_string()
        }
        None => String::new(),
    }
}

/// `node ls`.
pub fn render_ls(nodes: &[Node]) -> String {
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            let spec = n.spec.clone().unwrap_or_default();
            let status = n.status.clone().unwrap_or_default();
            vec![
                n.id.clone(),
                node_name(n).to_string(),
                membership_name(spec.membership()).to_string(),
                state::node_state_name(status.state()).to_string(),
                state::availability_name(spec.availability()).to_string(),
                manager_status_cell(n),
            ]
        })
        .collect();
    table::table(
        LIST,
        &[
            "ID",
            "Name",
            "Membership",
            "Status",
            "Availability",
            "Manager Status",
        ],
        &rows,
    )
}

fn sorted_pairs(labels: &std::collections::HashMap<String, String>) -> String {
    let sorted: BTreeMap<_, _> = labels.iter().collect();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `key : value` block of `node inspect`.
pub fn render_summary(n: &Node) -> String {
    let spec = n.spec.clone().unwrap_or_default();
    let status = n.status.clone().unwrap_or_default();
    let desc = n.description.clone().unwrap_or_default();
    let mut w = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(w, "ID\t: {}", n.id);
    let name = spec
        .annotations
        .as_ref()
        .map(|a| a.name.clone())
        .unwrap_or_default();
    if !name.is_empty() {
        let _ = writeln!(w, "Name\t: {name}");
    }
    if !desc.hostname.is_empty() {
        let _ = writeln!(w, "Hostname\t: {}", desc.hostname);
    }
    if let Some(a) = &spec.annotations {
        if !a.labels.is_empty() {
            let _ = writeln!(w, "Labels\t: {}", sorted_pairs(&a.labels));
        }
    }
    let _ = writeln!(w, "Role\t: {}", role_name(n.role()));
    let _ = writeln!(w, "Membership\t: {}", membership_name(spec.membership()));
    let _ = writeln!(w, "Status\t");
    let _ = writeln!(w, "  State\t: {}", state::node_state_name(status.state()));
    if !status.message.is_empty() {
        let _ = writeln!(w, "  Message\t: {}", status.message);
    }
    let _ = writeln!(
        w,
        "  Availability\t: {}",
        state::availability_name(spec.availability())
    );
    if !status.addr.is_empty() {
        let _ = writeln!(w, "  Address\t: {}", status.addr);
    }
    if let Some(ms) = &n.manager_status {
        let _ = writeln!(w, "Manager Status\t");
        if !ms.addr.is_empty() {
            let _ = writeln!(w, "  Address\t: {}", ms.addr);
        }
        let _ = writeln!(w, "  Raft ID\t: {:x}", ms.raft_id);
        let _ = writeln!(
            w,
            "  Reachability\t: {}",
            reachability_name(ms.reachability())
        );
        let _ = writeln!(w, "  Leader\t: {}", if ms.leader { "yes" } else { "no" });
    }
    if let Some(p) = &desc.platform {
        let _ = writeln!(w, "Platform\t");
        if !p.os.is_empty() {
            let _ = writeln!(w, "  Operating System\t: {}", p.os);
        }
        if !p.architecture.is_empty() {
            let _ = writeln!(w, "  Architecture\t: {}", p.architecture);
        }
    }
    if let Some(r) = &desc.resources {
        let _ = writeln!(w, "Resources\t");
        let _ = writeln!(w, "  CPUs\t: {}", units::cpus(r.nano_cpus));
        let _ = writeln!(w, "  Memory\t: {}", units::ibytes(r.memory_bytes));
    }
    if let Some(e) = &desc.engine {
        if !e.engine_version.is_empty() || !e.labels.is_empty() {
            let _ = writeln!(w, "Engine\t");
            if !e.engine_version.is_empty() {
                let _ = writeln!(w, "  Version\t: {}", e.engine_version);
            }
            if !e.labels.is_empty() {
                let _ = writeln!(w, "  Labels\t: {}", sorted_pairs(&e.labels));
            }
        }
    }
    table::render(SUMMARY, &w)
}

/// `node inspect`: the summary, a blank line and the tasks on the node.
pub fn render_inspect(n: &Node, tasks: &[Task], nodes: &[Node], now_ms: i64, all: bool) -> String {
    let mut text = render_summary(n);
    let names = node_names(nodes);
    let mut shown: Vec<Task> = tasks
        .iter()
        .filter(|t| t.node_id == n.id && is_shown(t, all))
        .cloned()
        .collect();
    if !shown.is_empty() {
        // Grouped by service, by slot within each (sort_by is stable).
        sort_by_slot(&mut shown, &names);
        shown.sort_by(|a, b| a.service_name.cmp(&b.service_name));
        text.push('\n');
        text.push_str(&task_table(&shown, &names, now_ms));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_api::{
        Annotations, ManagerStatus, NodeDescription, NodeSpec, NodeState, NodeStatus, Platform,
        Resources,
    };

    fn node(id: &str, host: &str, manager: Option<(bool, Reachability)>) -> Node {
        Node {
            id: id.into(),
            spec: Some(NodeSpec {
                membership: NodeMembership::Accepted as i32,
                availability: NodeAvailability::Active as i32,
                desired_role: if manager.is_some() {
                    NodeRole::Manager as i32
                } else {
                    NodeRole::Worker as i32
                },
                ..Default::default()
            }),
            description: Some(NodeDescription {
                hostname: host.into(),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                state: NodeState::Ready as i32,
                ..Default::default()
            }),
            manager_status: manager.map(|(leader, r)| ManagerStatus {
                leader,
                reachability: r as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn ls_matches_walkthrough_two_hosts() {
        let nodes = [
            node(
                "9aqyyb00e252y2rr39kldhh06",
                "manager-1",
                Some((true, Reachability::Reachable)),
            ),
            node("brm3eaxfd2iz9aeqk02ecvihf", "worker-1", None),
        ];
        let want = "\
ID                         Name       Membership  Status  Availability  Manager Status
--                         ----       ----------  ------  ------------  --------------
9aqyyb00e252y2rr39kldhh06  manager-1  ACCEPTED    READY   ACTIVE        REACHABLE *
brm3eaxfd2iz9aeqk02ecvihf  worker-1   ACCEPTED    READY   ACTIVE
";
        assert_eq!(render_ls(&nodes), want);
    }

    #[test]
    fn ls_matches_walkthrough_three_nodes() {
        let nodes = [
            node(
                "15jkw04qb4yze",
                "node-1",
                Some((true, Reachability::Reachable)),
            ),
            node("1zbwraf2v8hpx", "node-3", None),
            node("3vj01av6782qn", "node-2", None),
        ];
        let want = "\
ID             Name    Membership  Status  Availability  Manager Status
--             ----    ----------  ------  ------------  --------------
15jkw04qb4yze  node-1  ACCEPTED    READY   ACTIVE        REACHABLE *
1zbwraf2v8hpx  node-3  ACCEPTED    READY   ACTIVE
3vj01av6782qn  node-2  ACCEPTED    READY   ACTIVE
";
        assert_eq!(render_ls(&nodes), want);
    }

    #[test]
    fn spec_name_beats_hostname_and_drain_shows() {
        let mut n = node("a", "host-a", Some((false, Reachability::Unreachable)));
        if let Some(spec) = n.spec.as_mut() {
            spec.annotations = Some(Annotations {
                name: "named".into(),
                labels: Default::default(),
            });
            spec.availability = NodeAvailability::Drain as i32;
        }
        let out = render_ls(&[n]);
        assert!(
            out.ends_with("a   named  ACCEPTED    READY   DRAIN         UNREACHABLE\n"),
            "{out}"
        );
    }

    #[test]
    fn inspect_summary_aligns() {
        let mut n = node("abc", "node-1", Some((true, Reachability::Reachable)));
        n.role = NodeRole::Manager as i32;
        if let Some(d) = n.description.as_mut() {
            d.platform = Some(Platform {
                os: "linux".into(),
                architecture: "x86_64".into(),
            });
            d.resources = Some(Resources {
                nano_cpus: 2_000_000_000,
                memory_bytes: 8 << 30,
            });
        }
        let out = render_summary(&n);
        for want in [
            "ID                        : abc",
            "Hostname                  : node-1",
            "Role                      : MANAGER",
            "  Availability            : ACTIVE",
            "  Leader                  : yes",
            "  Operating System        : linux",
            "  CPUs                    : 2",
            "  Memory                  : 8.0 GiB",
        ] {
            assert!(out.lines().any(|l| l == want), "missing {want:?} in\n{out}");
        }
    }
}
