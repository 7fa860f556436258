//! `/nodes`: list (with filters), inspect, update (availability, role, labels), remove.

use crate::backend::{node_names, Backend};
use crate::convert::objects::{node_spec_from_docker, node_to_docker};
use crate::convert::{availability_name, role_name};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::{Filters, Request};
use crate::types as d;
use hyper::StatusCode;
use swarm_api::{Node, NodeMembership, UpdateNodeRequest};

const FILTERS: &[&str] = &["id", "name", "role", "membership", "node.label", "label"];

fn any_or_empty(f: &Filters, key: &str, test: impl Fn(&str) -> bool) -> bool {
    f.get(key).is_none_or(|vals| vals.iter().any(|v| test(v)))
}

fn labels_match(labels: &std::collections::HashMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

fn matches(n: &Node, f: &Filters) -> bool {
    let spec = n.spec.clone().unwrap_or_default();
    let labels = spec.annotations.clone().unwrap_or_default().labels;
    let membership = if spec.membership == NodeMembership::Accepted as i32 {
        "accepted"
    } else {
        "pending"
    };
    any_or_empty(f, "id", |v| n.id.starts_with(v))
        && any_or_empty(f, "name", |v| {
            node_names(n).iter().any(|name| name.starts_with(v))
        })
        && any_or_empty(f, "role", |v| role_name(n.role) == v)
        && any_or_empty(f, "membership", |v| membership == v)
        && any_or_empty(f, "node.label", |v| labels_match(&labels, v))
        && any_or_empty(f, "label", |v| {
            let engine = n
                .description
                .as_ref()
                .and_then(|d| d.engine.as_ref())
                .map(|e| e.labels.clone())
                .unwrap_or_default();
            labels_match(&engine, v)
        })
}

pub async fn list(b: &Backend, r: &Request) -> Result<Reply, ApiError> {
    let f = r.filters(FILTERS)?;
    let roots = trust_root(b).await?;
    let nodes: Vec<d::Node> = b
        .nodes()
        .await?
        .iter()
        .filter(|n| matches(n, &f))
        .map(|n| node_to_docker(n, &roots))
        .collect();
    Ok(Reply::ok(&nodes))
}

/// The cluster's trust root (PEM), which every node's TLS section shows.
async fn trust_root(b: &Backend) -> Result<Vec<u8>, ApiError> {
    Ok(b.cluster()
        .await?
        .root_ca
        .map(|r| r.ca_cert)
        .unwrap_or_default())
}

pub async fn get(b: &Backend, id: &str) -> Result<Reply, ApiError> {
    let node = b.node(id).await?;
    Ok(Reply::ok(&node_to_docker(&node, &trust_root(b).await?)))
}

pub async fn update(b: &Backend, id: &str, r: &Request) -> Result<Reply, ApiError> {
    let version = r.version()?;
    let body: d::NodeSpec = r.json()?;
    let node = b.node(id).await?;
    let spec = node_spec_from_docker(&node.spec.clone().unwrap_or_default(), body)?;
    tracing::info!(node = %node.id, availability = availability_name(spec.availability), "docker API: node update");
    b.update_node(UpdateNodeRequest {
        node_id: node.id,
        node_version: version,
        spec: Some(spec),
    })
    .await?;
    Ok(Reply::empty(StatusCode::OK))
}

pub async fn remove(b: &Backend, id: &str, r: &Request) -> Result<Reply, ApiError> {
    let node = b.node(id).await?;
    b.remove_node(&node.id, r.flag("force")).await?;
    Ok(Reply::empty(StatusCode::OK))
}
