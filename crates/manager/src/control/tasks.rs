//! Control API: tasks (read only: tasks are written by the orchestrators and the dispatcher).

use super::ControlApi;
use swarm_api::*;
use tonic::Status;

pub(super) fn get(api: &ControlApi, r: GetTaskRequest) -> Result<GetTaskResponse, Status> {
    let task = api.store.view(|t| t.tasks.get(&r.task_id).cloned());
    task.map(|t| GetTaskResponse { task: Some(t) })
        .ok_or_else(|| Status::not_found(format!("task {} not found", r.task_id)))
}

pub(super) fn list(api: &ControlApi, r: ListTasksRequest) -> ListTasksResponse {
    let tasks = api.store.view(|t| {
        let by_service: Vec<Task> = if r.service_ids.is_empty() {
            t.tasks.iter().cloned().collect()
        } else {
            r.service_ids
                .iter()
                .flat_map(|s| t.tasks_of_service(s).cloned())
                .collect()
        };
        by_service
            .into_iter()
            .filter(|task| r.node_ids.is_empty() || r.node_ids.contains(&task.node_id))
            .collect()
    });
    ListTasksResponse { tasks }
}
