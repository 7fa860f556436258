//! Test fixtures shared by the `service ls` and `service inspect` tests: the walkthrough's
//! redis service, its tasks and nodes.

use swarm_api::{
    service_spec::Mode, Annotations, ContainerSpec, Meta, Node, NodeDescription, NodeSpec,
    NodeState, NodeStatus, ReplicatedService, Service, ServiceSpec, Task, TaskSpec, TaskState,
    TaskStatus,
};

pub(super) const NOW: i64 = 1_700_000_000_000;

pub(super) fn redis(replicas: u64, image: &str) -> Service {
    Service {
        id: "89831rq7oplzp6oqcqoswquf2".into(),
        meta: Some(Meta {
            version: 5,
            created_at: NOW - 10_000,
            updated_at: NOW - 10_000,
        }),
        spec: Some(ServiceSpec {
            annotations: Some(Annotations {
                name: "redis".into(),
                labels: Default::default(),
            }),
            task: Some(
                TaskSpec {
                    container: Some(ContainerSpec {
                        image: image.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
                .into(),
            ),
            mode: Some(Mode::Replicated(ReplicatedService { replicas })),
            update: Some(crate::flags::new_service_spec().update.unwrap_or_default()),
            rollback: None,
            endpoint: None,
        }),
        ..Default::default()
    }
}

pub(super) fn task(id: &str, slot: u64, node: &str, state: TaskState, at: i64) -> Task {
    Task {
        id: id.into(),
        meta: Some(Meta {
            version: 1,
            created_at: at,
            updated_at: at,
        }),
        spec: Some(
            TaskSpec {
                container: Some(ContainerSpec {
                    image: "redis:3.0.5".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .into(),
        ),
        service_id: "89831rq7oplzp6oqcqoswquf2".into(),
        slot,
        node_id: node.into(),
        desired_state: TaskState::Running as i32,
        status: Some(TaskStatus {
            timestamp: at,
            state: state as i32,
            ..Default::default()
        }),
        service_name: "redis".into(),
        ..Default::default()
    }
}

pub(super) fn node(id: &str, hostname: &str) -> Node {
    Node {
        id: id.into(),
        spec: Some(NodeSpec::default()),
        description: Some(NodeDescription {
            hostname: hostname.into(),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: NodeState::Ready as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}
