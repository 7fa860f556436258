//! Turning what the operator typed (a full ID, a name or an ID prefix) into one object:
//! exact ID first, then exact name, then a unique ID prefix.

use anyhow::{anyhow, bail, Result};
use swarm_api::names::Named;
use swarm_api::{
    Cluster, GetNodeRequest, GetServiceRequest, GetTaskRequest, ListClustersRequest,
    ListNodesRequest, ListServicesRequest, ListTasksRequest, Node, Service, Task,
};
use tonic::Code;

use crate::client::Client;

/// Picks the one item `arg` names among `items`. `kind` ("service", "node") words errors.
pub fn pick<'a, T>(
    kind: &str,
    arg: &str,
    items: &'a [T],
    id: impl Fn(&T) -> &str,
    names: impl Fn(&T) -> Vec<&str>,
) -> Result<&'a T> {
    if arg.is_empty() {
        bail!("{kind} name or ID missing");
    }
    if let Some(item) = items.iter().find(|i| id(i) == arg) {
        return Ok(item);
    }
    let by_name: Vec<&T> = items
        .iter()
        .filter(|i| names(i).iter().any(|n| !n.is_empty() && *n == arg))
        .collect();
    match by_name.len() {
        1 => return Ok(by_name[0]),
        0 => {}
        n => bail!("{kind} {arg} is ambiguous ({n} matches found)"),
    }
    let by_prefix: Vec<&T> = items.iter().filter(|i| id(i).starts_with(arg)).collect();
    match by_prefix.len() {
        1 => Ok(by_prefix[0]),
        0 => Err(anyhow!("{kind} {arg} not found")),
        n => bail!("{kind} {arg} is ambiguous ({n} matches found)"),
    }
}

/// The name a node is shown by: its spec name, else its hostname.
pub use swarm_api::names::node_name;

/// A service's name.
pub fn service_name(service: &Service) -> &str {
    service.name()
}

/// Whether a failed Get means "no such ID" (so a name or prefix lookup should follow).
fn is_absent(status: &tonic::Status) -> bool {
    matches!(status.code(), Code::NotFound | Code::InvalidArgument)
}

pub async fn service(client: &mut Client, arg: &str) -> Result<Service> {
    if !arg.is_empty() {
        match client
            .get_service(GetServiceRequest {
                service_id: arg.to_string(),
            })
            .await
        {
            Ok(r) => {
                if let Some(s) = r.into_inner().service {
                    return Ok(s);
                }
            }
            Err(e) if is_absent(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let services = client
        .list_services(ListServicesRequest {})
        .await?
        .into_inner()
        .services;
    let found = pick(
        "service",
        arg,
        &services,
        |s| s.id.as_str(),
        |s| vec![service_name(s)],
    )?;
    Ok(found.clone())
}

pub async fn node(client: &mut Client, arg: &str) -> Result<Node> {
    if !arg.is_empty() {
        match client
            .get_node(GetNodeRequest {
                node_id: arg.to_string(),
            })
            .await
        {
            Ok(r) => {
                if let Some(n) = r.into_inner().node {
                    return Ok(n);
                }
            }
            Err(e) if is_absent(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let nodes = client
        .list_nodes(ListNodesRequest {})
        .await?
        .into_inner()
        .nodes;
    let found = pick(
        "node",
        arg,
        &nodes,
        |n| n.id.as_str(),
        |n| {
            let spec_name = n
                .spec
                .as_ref()
                .and_then(|s| s.annotations.as_ref())
                .map(|a| a.name.as_str())
                .unwrap_or("");
            let hostname = n
                .description
                .as_ref()
                .map(|d| d.hostname.as_str())
                .unwrap_or("");
            vec![spec_name, hostname]
        },
    )?;
    Ok(found.clone())
}

pub async fn task(client: &mut Client, arg: &str) -> Result<Task> {
    if !arg.is_empty() {
        match client
            .get_task(GetTaskRequest {
                task_id: arg.to_string(),
            })
            .await
        {
            Ok(r) => {
                if let Some(t) = r.into_inner().task {
                    return Ok(t);
                }
            }
            Err(e) if is_absent(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let tasks = client
        .list_tasks(ListTasksRequest::default())
        .await?
        .into_inner()
        .tasks;
    let found = pick(
        "task",
        arg,
        &tasks,
        |t| t.id.as_str(),
        |t| {
            vec![t
                .annotations
                .as_ref()
                .map(|a| a.name.as_str())
                .unwrap_or("")]
        },
    )?;
    Ok(found.clone())
}

pub async fn cluster(client: &mut Client, arg: &str) -> Result<Cluster> {
    let clusters = client
        .list_clusters(ListClustersRequest {})
        .await?
        .into_inner()
        .clusters;
    let found = pick(
        "cluster",
        arg,
        &clusters,
        |c| c.id.as_str(),
        |c| {
            vec![c
                .spec
                .as_ref()
                .and_then(|s| s.annotations.as_ref())
                .map(|a| a.name.as_str())
                .unwrap_or("")]
        },
    )?;
    Ok(found.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Obj {
        id: &'static str,
        name: &'static str,
    }

    fn objs() -> Vec<Obj> {
        vec![
            Obj {
                id: "abc111",
                name: "redis",
            },
            Obj {
                id: "abc222",
                name: "web",
            },
            Obj {
                id: "xyz333",
                name: "abc111x",
            },
            Obj {
                id: "redis",
                name: "tricky",
            },
        ]
    }

    fn find(arg: &str) -> Result<&'static str> {
        let items = objs();
        pick("service", arg, &items, |o| o.id, |o| vec![o.name]).map(|o| o.id)
    }

    #[test]
    fn exact_id_wins_over_name() {
        // "redis" is both an ID and another object's name: the ID wins.
        assert_eq!(find("redis").ok(), Some("redis"));
        assert_eq!(find("abc111").ok(), Some("abc111"));
    }

    #[test]
    fn exact_name_wins_over_prefix() {
        assert_eq!(find("web").ok(), Some("abc222"));
        assert_eq!(find("abc111x").ok(), Some("xyz333"));
    }

    #[test]
    fn unique_prefix_resolves() {
        assert_eq!(find("xy").ok(), Some("xyz333"));
        assert_eq!(find("abc2").ok(), Some("abc222"));
    }

    #[test]
    fn ambiguous_prefix_reports_count() {
        let err = find("abc").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("service abc is ambiguous (2 matches found)")
        );
    }

    #[test]
    fn unknown_is_not_found() {
        let err = find("redis2").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("service redis2 not found"));
        assert!(find("").is_err());
    }

    #[test]
    fn duplicate_names_are_ambiguous() {
        let items = [
            Obj {
                id: "a1",
                name: "n",
            },
            Obj {
                id: "b2",
                name: "n",
            },
        ];
        let err = pick("node", "n", &items, |o| o.id, |o| vec![o.name])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("node n is ambiguous (2 matches found)")
        );
    }
}
