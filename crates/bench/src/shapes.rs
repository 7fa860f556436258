//! Synthetic nodes and tasks in the shapes the scheduler is measured on (see the scheduler
//! bench's doc for what each shape stands for), and the store tasks of SwarmKit's store
//! benchmark. Deterministic: the same arguments give the same objects.

use swarm_api::{
    Annotations, Node, NodeAvailability, NodeDescription, NodeSpec, NodeState, NodeStatus,
    Placement, ResourceRequirements, Resources, StoreSnapshot, Task, TaskSpec, TaskState,
    TaskStatus,
};
use swarm_store::Tables;

/// What the tasks given to the scheduler look like.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// Every task of one service and one spec version (one group).
    OneService,
    /// SwarmKit's own benchmark input: no service, no spec version.
    NoService,
    /// One service, each task its own spec version but the same placement.
    DistinctVersions,
    /// Each task its own memory reservation: no two share a group, each scans every node.
    Ungroupable,
    /// A label constraint that one node in three satisfies.
    Constraints,
}

/// A ready, active node with room for everything; one in three carries `net=special`.
pub fn node(i: usize) -> Node {
    let mut labels = std::collections::HashMap::new();
    if i.is_multiple_of(3) {
        labels.insert("net".to_string(), "special".to_string());
    }
    Node {
        id: format!("node{i:07}"),
        spec: Some(NodeSpec {
            annotations: Some(Annotations {
                name: format!("name{i}"),
                labels,
            }),
            availability: NodeAvailability::Active as i32,
            ..Default::default()
        }),
        description: Some(NodeDescription {
            hostname: format!("host{i}"),
            resources: Some(Resources {
                nano_cpus: 64_000_000_000,
                memory_bytes: 1 << 40,
            }),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: NodeState::Ready as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A PENDING task of `shape`, desired RUNNING.
pub fn pending_task(i: usize, shape: Shape) -> Task {
    let mut spec = TaskSpec::default();
    let (service_id, spec_version) = match shape {
        Shape::OneService => ("svc1", 1),
        Shape::NoService | Shape::Constraints => ("", 0),
        Shape::DistinctVersions | Shape::Ungroupable => ("svc1", i as u64 + 1),
    };
    if let Shape::Ungroupable = shape {
        spec.resources = Some(ResourceRequirements {
            limits: None,
            reservations: Some(Resources {
                nano_cpus: 0,
                memory_bytes: i as i64 + 1,
            }),
        });
    }
    if let Shape::Constraints = shape {
        spec.placement = Some(Placement {
            constraints: vec!["node.labels.net==special".to_string()],
            ..Default::default()
        });
    }
    Task {
        id: format!("task{i:07}"),
        service_id: service_id.to_string(),
        spec_version,
        spec: Some(spec.into()),
        desired_state: TaskState::Running as i32,
        status: Some(TaskStatus {
            state: TaskState::Pending as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Tables holding `nodes` nodes and `tasks` pending tasks of `shape`.
pub fn tables(nodes: usize, tasks: usize, shape: Shape) -> Tables {
    Tables::from_snapshot(StoreSnapshot {
        nodes: (0..nodes).map(node).collect(),
        tasks: (0..tasks).map(|i| pending_task(i, shape)).collect(),
        ..Default::default()
    })
}

/// Tables holding `nodes` nodes, `running` RUNNING tasks of 100 services spread over them
/// round robin, and `pending` PENDING tasks of one more service: a cluster at rest that lost
/// a few tasks, the pass a node failure or a small rolling update asks for.
pub fn trickle(nodes: usize, running: usize, pending: usize) -> Tables {
    let on_node = |i: usize| Task {
        node_id: node(i % nodes.max(1)).id,
        ..running_task(i, 100, nodes)
    };
    Tables::from_snapshot(StoreSnapshot {
        nodes: (0..nodes).map(node).collect(),
        tasks: (0..running)
            .map(on_node)
            .chain((0..pending).map(|i| pending_task(i, Shape::OneService)))
            .collect(),
        ..Default::default()
    })
}

/// A RUNNING task as the store bench fills the store with: `services` services over `nodes`
/// nodes, round robin.
pub fn running_task(i: usize, services: usize, nodes: usize) -> Task {
    Task {
        id: format!("task{i:08}"),
        service_id: format!("svc{:04}", i % services.max(1)),
        node_id: format!("node{:05}", i % nodes.max(1)),
        slot: i as u64,
        desired_state: TaskState::Running as i32,
        status: Some(TaskStatus {
            state: TaskState::Running as i32,
            message: "started".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}
