//! Building new tasks from a service's current spec.

use swarm_api::*;

/// A new task for `slot` (replicated) or `node_id` (global), desired RUNNING.
pub fn new_task(service: &Service, slot: u64, node_id: &str) -> Task {
    let spec = service.spec.clone().unwrap_or_default();
    let name = spec
        .annotations
        .as_ref()
        .map(|a| a.name.clone())
        .unwrap_or_default();
    let suffix = if slot > 0 {
        slot.to_string()
    } else {
        node_id.to_string()
    };
    Task {
        id: ids::new_id(),
        meta: None,
        spec: spec.task,
        spec_version: service.spec_version,
        service_id: service.id.clone(),
        slot,
        node_id: node_id.to_string(),
        desired_state: TaskState::Running as i32,
        status: Some(TaskStatus {
            timestamp: now_ms(),
            state: TaskState::New as i32,
            message: "created".into(),
            ..Default::default()
        }),
        annotations: Some(Annotations {
            name: format!("{name}.{suffix}"),
            labels: Default::default(),
        }),
        service_annotations: spec.annotations.clone(),
        service_name: name,
        // The allocator copies the service's allocated ports in, and gives the task its
        // network addresses, when the task leaves NEW.
        endpoint: None,
        networks: Vec::new(),
    }
}
