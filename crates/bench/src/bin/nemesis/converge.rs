//! Whether the cluster has come back: every manager answers, all agree on one leader and see
//! every manager reachable, every node is READY, every manager lists the same services at the
//! same versions, and every replicated service has its desired replicas RUNNING on READY
//! nodes. Owns that predicate only (the driver times it); it must not change the cluster.

use crate::cluster::Cluster;
use crate::control::{self, bounded};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use swarm_api::*;

/// What has not converged yet; empty when everything has.
pub async fn pending(sockets: &[PathBuf], nodes_expected: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut leaders = BTreeSet::new();
    let mut listings: BTreeMap<Vec<(String, u64)>, Vec<String>> = BTreeMap::new();
    let mut view: Option<(Vec<Node>, Vec<Service>, Vec<Task>)> = None;
    for (i, socket) in sockets.iter().enumerate() {
        let name = Cluster::manager_name(i);
        let Some(mut c) = control::connect(socket).await else {
            out.push(format!("{name}: control socket not answering"));
            continue;
        };
        let nodes = match bounded(c.list_nodes(ListNodesRequest {})).await {
            Ok(r) => r.nodes,
            Err(e) => {
                out.push(format!("{name}: node list: {}", e.message()));
                continue;
            }
        };
        let services = match bounded(c.list_services(ListServicesRequest {})).await {
            Ok(r) => r.services,
            Err(e) => {
                out.push(format!("{name}: service list: {}", e.message()));
                continue;
            }
        };
        let leader: Vec<String> = nodes
            .iter()
            .filter(|n| n.manager_status.as_ref().is_some_and(|m| m.leader))
            .map(hostname)
            .collect();
        leaders.insert(leader.join(","));
        let mut listing: Vec<(String, u64)> = services
            .iter()
            .map(|s| {
                (
                    s.id.clone(),
                    s.meta.as_ref().map(|m| m.version).unwrap_or(0),
                )
            })
            .collect();
        listing.sort();
        listings.entry(listing).or_default().push(name);
        if view.is_none() {
            let tasks = match bounded(c.list_tasks(ListTasksRequest::default())).await {
                Ok(r) => r.tasks,
                Err(e) => {
                    out.push(format!(
                        "{}: task list: {}",
                        Cluster::manager_name(i),
                        e.message()
                    ));
                    continue;
                }
            };
            view = Some((nodes, services, tasks));
        }
    }
    if leaders.len() != 1 || leaders.iter().any(|l| l.is_empty() || l.contains(',')) {
        out.push(format!("leaders as the managers see them: {leaders:?}"));
    }
    if listings.len() > 1 {
        out.push(format!(
            "managers list different services: {:?}",
            listings.values().collect::<Vec<_>>()
        ));
    }
    let Some((nodes, services, tasks)) = view else {
        return out;
    };
    if nodes.len() != nodes_expected {
        out.push(format!("{} nodes, expected {nodes_expected}", nodes.len()));
    }
    let mut ready = BTreeSet::new();
    for n in &nodes {
        let state = n.status.as_ref().map(|s| s.state()).unwrap_or_default();
        if state == NodeState::Ready {
            ready.insert(n.id.clone());
        } else {
            out.push(format!("node {} is {state:?}", hostname(n)));
        }
        if let Some(m) = &n.manager_status {
            if m.reachability() != Reachability::Reachable {
                out.push(format!("manager {} is {:?}", hostname(n), m.reachability()));
            }
        }
    }
    for s in &services {
        let want = control::replicas(s);
        let running = tasks
            .iter()
            .filter(|t| t.service_id == s.id)
            .filter(|t| t.desired_state() == TaskState::Running)
            .filter(|t| {
                t.status
                    .as_ref()
                    .is_some_and(|st| st.state() == TaskState::Running)
            })
            .filter(|t| ready.contains(&t.node_id))
            .count() as u64;
        if running != want {
            let name = s
                .spec
                .as_ref()
                .and_then(|sp| sp.annotations.as_ref())
                .map(|a| a.name.clone())
                .unwrap_or_default();
            let states: Vec<String> = tasks
                .iter()
                .filter(|t| t.service_id == s.id && t.desired_state() == TaskState::Running)
                .map(|t| {
                    format!(
                        "{:?}",
                        t.status.as_ref().map(|st| st.state()).unwrap_or_default()
                    )
                })
                .collect();
            out.push(format!(
                "service {name}: {running}/{want} running (tasks meant to run: {states:?})"
            ));
        }
    }
    out
}

fn hostname(n: &Node) -> String {
    n.description
        .as_ref()
        .map(|d| d.hostname.clone())
        .unwrap_or_else(|| n.id.clone())
}

/// The leader's index as manager `socket` reports it.
pub async fn leader(sockets: &[PathBuf]) -> Option<usize> {
    for socket in sockets {
        let Some(mut c) = control::connect(socket).await else {
            continue;
        };
        let Ok(r) = bounded(c.list_nodes(ListNodesRequest {})).await else {
            continue;
        };
        if let Some(l) = r
            .nodes
            .iter()
            .find(|n| n.manager_status.as_ref().is_some_and(|m| m.leader))
        {
            return Cluster::manager_index(&hostname(l));
        }
    }
    None
}
