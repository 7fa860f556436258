//! `/tasks`: list with Docker's filters (service and node by ID, name or prefix; desired
//! state; task name; service label, which `docker stack ps` uses; and `_up-to-date`, which
//! the CLI's progress display uses), inspect. Tasks show their network attachments with the
//! networks they are on, as Docker's do.

use crate::backend::Backend;
use crate::convert::objects::{is_job, networks_by_id, task_to_docker};
use crate::convert::task_state_from_name;
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::Request;
use crate::types as d;
use std::collections::{HashMap, HashSet};

const FILTERS: &[&str] = &[
    "id",
    "name",
    "service",
    "node",
    "desired-state",
    "_up-to-date",
    "runtime",
    "label",
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
    let services = b.services().await?;
    let jobs: HashSet<&str> = services
        .iter()
        .filter(|s| is_job(s))
        .map(|s| s.id.as_str())
        .collect();
    // A task is up to date when it was made from its service's current task template.
    let current: Option<HashMap<&str, u64>> = f.contains_key("_up-to-date").then(|| {
        services
            .iter()
            .map(|s| (s.id.as_str(), s.spec_version))
            .collect()
    });
    let labels = f.get("label");
    let service_labels: HashMap<&str, &HashMap<String, String>> = services
        .iter()
        .filter_map(|s| {
            let a = s.spec.as_ref()?.annotations.as_ref()?;
            Some((s.id.as_str(), &a.labels))
        })
        .collect();
    let ids = f.get("id");
    let names = f.get("name");
    let networks = networks_by_id(b.networks().await?);
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
                .is_none_or(|c| c.get(t.service_id.as_str()) == Some(&t.spec_version))
        })
        .filter(|t| {
            // As in SwarmKit, a task's labels for filtering are its service's (what
            // `docker stack ps` asks for: the stack's namespace label).
            let mine = service_labels.get(t.service_id.as_str());
            labels.is_none_or(|ls| ls.iter().all(|l| mine.is_some_and(|m| label_matches(m, l))))
        })
        .map(|t| task_to_docker(t, jobs.contains(t.service_id.as_str()), &networks))
        .collect();
    Ok(Reply::ok(&tasks))
}

/// `key` or `key=value` against a task's labels, as Docker's label filter reads them.
fn label_matches(labels: &HashMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

pub async fn get(b: &Backend, id: &str) -> Result<Reply, ApiError> {
    let t = b.task(id).await?;
    // A task outlives its removed service for a while: not a job then, as far as we know.
    let job = b.service(&t.service_id).await.is_ok_and(|s| is_job(&s));
    let networks = networks_by_id(b.networks().await?);
    Ok(Reply::ok(&task_to_docker(&t, job, &networks)))
}
