//! `/tasks`: list with Docker's filters (service and node by ID, name or prefix; desired
//! state; task name; and `_up-to-date`, which the CLI's progress display uses), inspect.

use crate::backend::Backend;
use crate::convert::objects::task_to_docker;
use crate::convert::task_state_from_name;
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::Request;
use crate::types as d;
use std::collections::HashMap;

const FILTERS: &[&str] = &[
    "id",
    "name",
    "service",
    "node",
    "desired-state",
    "_up-to-date",
    "runtime",
];

pub async fn list(b: &Backend, r: &Request) -> Result<Reply, ApiError> {
    let f = r.filters(FILTERS)?;
    let mut service_ids = Vec::new();
    for s in f.get("service").into_iter().flatten() {
        service_ids.push(b.service(s).await?.id);
    }
    let mut node_ids = Vec::new();
    for n in f.get("node").into_iter().flatten() {
        node_ids.push(b.node(n).await?.id);
    }
    let mut desired = Vec::new();
    for s in f.get("desired-state").into_iter().flatten() {
        let st = task_state_from_name(s).ok_or_else(|| {
            ApiError::BadRequest(format!("filters: desired-state: {s:?} is not a task state"))
        })?;
        desired.push(st as i32);
    }
    for rt in f.get("runtime").into_iter().flatten() {
        if !matches!(rt.as_str(), "" | "container") {
            // Only container tasks exist here: a filter on another runtime matches nothing.
            return Ok(Reply::ok(&Vec::<d::Task>::new()));
        }
    }
    // A task is up to date when it was made from its service's current task template.
    let current: Option<HashMap<String, u64>> = match f.contains_key("_up-to-date") {
        true => Some(
            b.services()
                .await?
                .into_iter()
                .map(|s| (s.id, s.spec_version))
                .collect(),
        ),
        false => None,
    };
    let ids = f.get("id");
    let names = f.get("name");
    let tasks: Vec<d::Task> = b
        .tasks(service_ids)
        .await?
        .iter()
        .filter(|t| node_ids.is_empty() || node_ids.contains(&t.node_id))
        .filter(|t| desired.is_empty() || desired.contains(&t.desired_state))
        .filter(|t| ids.is_none_or(|ids| ids.iter().any(|p| t.id.starts_with(p.as_str()))))
        .filter(|t| {
            let name = t
                .annotations
                .as_ref()
                .map(|a| a.name.as_str())
                .unwrap_or("");
            names.is_none_or(|ns| ns.iter().any(|p| name.starts_with(p.as_str())))
        })
        .filter(|t| {
            current
                .as_ref()
                .is_none_or(|c| c.get(&t.service_id) == Some(&t.spec_version))
        })
        .map(task_to_docker)
        .collect();
    Ok(Reply::ok(&tasks))
}

pub async fn get(b: &Backend, id: &str) -> Result<Reply, ApiError> {
    Ok(Reply::ok(&task_to_docker(&b.task(id).await?)))
}
