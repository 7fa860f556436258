//! `/services`: list (with filters and the running/desired counts `docker service ls`
//! shows), create, inspect, update (scale, image, rollback), remove.

use crate::backend::{service_name, Backend};
use crate::convert::defaults;
use crate::convert::objects::{is_job, service_to_docker};
use crate::convert::spec::from_docker;
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::{Filters, Request};
use crate::types as d;
use hyper::StatusCode;
use serde_json::json;
use std::collections::HashSet;
use swarm_api::service_spec::Mode;
use swarm_api::{NodeState, Service, Task, TaskState, UpdateServiceRequest};

const FILTERS: &[&str] = &["id", "name", "label", "mode", "runtime"];

fn mode_name(s: &Service) -> &'static str {
    match s.spec.as_ref().and_then(|s| s.mode.as_ref()) {
        Some(Mode::Global(_)) => "global",
        Some(Mode::ReplicatedJob(_)) => "replicated-job",
        Some(Mode::GlobalJob(_)) => "global-job",
        _ => "replicated",
    }
}

fn matches(s: &Service, f: &Filters) -> bool {
    let pass = |key: &str, test: &dyn Fn(&str) -> bool| {
        f.get(key).is_none_or(|vals| vals.iter().any(|v| test(v)))
    };
    let labels = s
        .spec
        .as_ref()
        .and_then(|s| s.annotations.as_ref())
        .map(|a| a.labels.clone())
        .unwrap_or_default();
    pass("id", &|v| s.id.starts_with(v))
        && pass("name", &|v| service_name(s).starts_with(v))
        && pass("mode", &|v| mode_name(s) == v)
        // Every service here runs containers: another runtime (plugin, attachment) is none.
        && pass("runtime", &|v| v == "container")
        && pass("label", &|v| match v.split_once('=') {
            Some((k, val)) => labels.get(k).is_some_and(|x| x == val),
            None => labels.contains_key(v),
        })
}

/// Running, desired and completed task counts, as Docker computes them for `service ls`:
/// only tasks meant to run (or, for jobs, to complete) on nodes that are not down.
fn status_of(s: &Service, tasks: &[Task], down: &HashSet<String>) -> d::ServiceStatus {
    // A job counts its current run only: after `update --force` the earlier run's
    // completions are history, not progress.
    let job = is_job(s);
    let mine: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.service_id == s.id && !down.contains(&t.node_id))
        .filter(|t| !job || t.spec_version == s.spec_version)
        .collect();
    let state = |t: &Task| t.status.as_ref().map(|st| st.state).unwrap_or_default();
    let running = mine
        .iter()
        .filter(|t| t.desired_state == TaskState::Running as i32)
        .filter(|t| state(t) == TaskState::Running as i32)
        .count() as u64;
    let completed = mine
        .iter()
        .filter(|t| state(t) == TaskState::Complete as i32)
        .count() as u64;
    let desired = match s.spec.as_ref().and_then(|s| s.mode.as_ref()) {
        Some(Mode::Replicated(r)) => r.replicas,
        // What may still run: never more than the completions left.
        Some(Mode::ReplicatedJob(j)) => j
            .max_concurrent
            .min(j.total_completions.saturating_sub(completed)),
        // Global services and jobs: the tasks still meant to run. A global job's finished
        // tasks (desired COMPLETE, or just completed and not yet marked so) count as
        // completed instead: the CLI shows "running/desired (completed/desired+completed)".
        _ => mine
            .iter()
            .filter(|t| t.desired_state == TaskState::Running as i32)
            .filter(|t| !job || state(t) != TaskState::Complete as i32)
            .count() as u64,
    };
    d::ServiceStatus {
        running_tasks: running,
        desired_tasks: desired,
        completed_tasks: completed,
    }
}

const MODES: &[&str] = &["replicated", "global", "replicated-job", "global-job"];

pub async fn list(b: &Backend, r: &Request) -> Result<Reply, ApiError> {
    let f = r.filters(FILTERS)?;
    // As Docker: a mode that does not exist is an error, not a filter matching nothing.
    if let Some(bad) = f
        .get("mode")
        .into_iter()
        .flatten()
        .find(|m| !MODES.contains(&m.as_str()))
    {
        return Err(ApiError::BadRequest(format!(
            "filters: mode: {bad:?} is not one of {}",
            MODES.join(", ")
        )));
    }
    let services: Vec<Service> = b
        .services()
        .await?
        .into_iter()
        .filter(|s| matches(s, &f))
        .collect();
    let out: Vec<d::Service> = if r.flag("status") {
        let tasks = b.tasks(Vec::new()).await?;
        let down: HashSet<String> = b
            .nodes()
            .await?
            .into_iter()
            .filter(|n| {
                n.status
                    .as_ref()
                    .is_some_and(|s| s.state == NodeState::Down as i32)
            })
            .map(|n| n.id)
            .collect();
        services
            .iter()
            .map(|s| service_to_docker(s, Some(status_of(s, &tasks, &down))))
            .collect()
    } else {
        services
            .iter()
            .map(|s| service_to_docker(s, None))
            .collect()
    };
    Ok(Reply::ok(&out))
}

pub async fn get(b: &Backend, id: &str, r: &Request) -> Result<Reply, ApiError> {
    let s = b.service(id).await?;
    let mut out = service_to_docker(&s, None);
    if r.flag("insertDefaults") {
        if let Some(spec) = s.spec.as_ref() {
            defaults::insert(spec, &mut out.spec);
        }
    }
    Ok(Reply::ok(&out))
}

pub async fn create(b: &Backend, r: &Request) -> Result<Reply, ApiError> {
    let (spec, warnings) = from_docker(r.json()?)?;
    let created = b.create_service(spec).await?;
    tracing::info!(service = %created.id, "docker API: service created");
    Ok(Reply::json(
        StatusCode::CREATED,
        &json!({ "ID": created.id, "Warnings": warnings }),
    ))
}

pub async fn update(b: &Backend, id: &str, r: &Request) -> Result<Reply, ApiError> {
    let version = r.version()?;
    let rollback = match r.param("rollback") {
        None | Some("") => false,
        Some("previous") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "rollback: {other:?} is not \"previous\""
            )))
        }
    };
    let service = b.service(id).await?;
    // A rollback goes back to the stored previous spec; the body is not needed then.
    let (spec, warnings) = if rollback {
        (None, Vec::new())
    } else {
        let (spec, warnings) = from_docker(r.json()?)?;
        (Some(spec), warnings)
    };
    b.update_service(UpdateServiceRequest {
        service_id: service.id.clone(),
        service_version: version,
        spec,
        rollback,
        rebalance: false,
    })
    .await?;
    tracing::info!(service = %service.id, "docker API: service updated");
    Ok(Reply::ok(&json!({ "Warnings": warnings })))
}

pub async fn remove(b: &Backend, id: &str) -> Result<Reply, ApiError> {
    let service = b.service(id).await?;
    b.remove_service(&service.id).await?;
    Ok(Reply::empty(StatusCode::OK))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use swarm_api::{ReplicatedService, ServiceSpec, TaskStatus};

    fn task(service: &str, node: &str, desired: TaskState, state: TaskState) -> Task {
        Task {
            service_id: service.into(),
            node_id: node.into(),
            desired_state: desired as i32,
            status: Some(TaskStatus {
                state: state as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn filters(json: &str) -> Filters {
        let q = format!("filters={json}");
        Request::new(Some(&q), bytes::Bytes::new())
            .filters(FILTERS)
            .unwrap()
    }

    #[test]
    fn filters_match_as_dockers_do() {
        let s = Service {
            id: "abc123".into(),
            spec: Some(ServiceSpec {
                annotations: Some(swarm_api::Annotations {
                    name: "web".into(),
                    labels: [("com.docker.stack.namespace".to_string(), "app".to_string())].into(),
                }),
                mode: Some(Mode::Replicated(ReplicatedService { replicas: 1 })),
                ..Default::default()
            }),
            ..Default::default()
        };
        for (f, want) in [
            (r#"{"runtime":["container"]}"#, true),
            (r#"{"runtime":["plugin"]}"#, false),
            (r#"{"label":["com.docker.stack.namespace=app"]}"#, true),
            (r#"{"label":["com.docker.stack.namespace=other"]}"#, false),
            (
                r#"{"mode":["replicated"],"name":["we"],"id":["abc"]}"#,
                true,
            ),
            (r#"{"mode":["global"]}"#, false),
        ] {
            assert_eq!(matches(&s, &filters(f)), want, "{f}");
        }
    }

    #[test]
    fn status_counts_running_tasks_on_live_nodes() {
        let s = Service {
            id: "s".into(),
            spec: Some(ServiceSpec {
                mode: Some(Mode::Replicated(ReplicatedService { replicas: 3 })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let tasks = [
            task("s", "a", TaskState::Running, TaskState::Running),
            task("s", "b", TaskState::Running, TaskState::Starting),
            task("s", "c", TaskState::Running, TaskState::Running),
            task("s", "a", TaskState::Shutdown, TaskState::Running),
            task("other", "a", TaskState::Running, TaskState::Running),
        ];
        let down: HashSet<String> = ["c".to_string()].into();
        let st = status_of(&s, &tasks, &down);
        assert_eq!((st.running_tasks, st.desired_tasks), (1, 3));
    }

    #[test]
    fn a_job_counts_its_current_run_only() {
        let s = Service {
            id: "j".into(),
            spec_version: 2,
            spec: Some(ServiceSpec {
                mode: Some(Mode::ReplicatedJob(swarm_api::ReplicatedJob {
                    max_concurrent: 1,
                    total_completions: 1,
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let run = |version, desired, state| Task {
            spec_version: version,
            ..task("j", "a", desired, state)
        };
        // Run 1 completed twice over (a retry), run 2 is running.
        let tasks = [
            run(1, TaskState::Complete, TaskState::Complete),
            run(1, TaskState::Complete, TaskState::Complete),
            run(2, TaskState::Running, TaskState::Running),
        ];
        let st = status_of(&s, &tasks, &HashSet::new());
        assert_eq!(
            (st.running_tasks, st.desired_tasks, st.completed_tasks),
            (1, 1, 0)
        );
        let done = [
            tasks[0].clone(),
            run(2, TaskState::Complete, TaskState::Complete),
        ];
        let st = status_of(&s, &done, &HashSet::new());
        assert_eq!(
            (st.running_tasks, st.desired_tasks, st.completed_tasks),
            (0, 0, 1)
        );
    }
}
