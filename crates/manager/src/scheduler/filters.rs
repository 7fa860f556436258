//! Per-node eligibility for a group of identical tasks, and the "no suitable node (…)"
//! explanation built from the filters that refused nodes. Owns the filter list, its order and
//! wording; it does not choose among eligible nodes (that is `plan`'s spread) and does no I/O.
//!
//! Filters run in SwarmKit's order and stop at the first refusal, so each refused node is
//! counted once, under the first filter it failed: ready, availability, resources,
//! constraints, max replicas per node, host-mode ports.

use super::constraint::{self, Constraint, ConstraintError};
use std::collections::HashSet;
use swarm_api::{Node, NodeAvailability, NodeState, PortConfig, Task};
use swarm_store::{NodeLoad, Reserved};

pub use swarm_store::HostPort;

/// The host-mode ports a task publishes, compared and hashed by what a node sees (protocol
/// and published port), so tasks asking for the same ports share a group.
#[derive(Debug, Clone, Copy)]
pub struct HostPorts<'a>(pub &'a [PortConfig]);

impl HostPorts<'_> {
    pub fn iter(&self) -> impl Iterator<Item = HostPort> + '_ {
        swarm_store::host_ports(self.0)
    }
}

impl PartialEq for HostPorts<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for HostPorts<'_> {}

impl std::hash::Hash for HostPorts<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for p in self.iter() {
            p.hash(state);
        }
    }
}

/// Everything a filter reads from a task. Tasks with equal keys get the same answer from every
/// filter on every node, so the planner filters nodes once per key instead of once per task.
/// Any new filter that reads another task field must add that field here, or tasks that
/// differ in it would wrongly share one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupKey<'a> {
    pub service_id: &'a str,
    pub nano_cpus: i64,
    pub memory_bytes: i64,
    pub max_replicas: u64,
    pub constraints: &'a [String],
    pub preferences: &'a [String],
    pub host_ports: HostPorts<'a>,
}

impl<'a> GroupKey<'a> {
    pub fn of_task(task: &'a Task) -> GroupKey<'a> {
        let spec = task.spec.as_ref();
        let res = spec
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.reservations.as_ref());
        let placement = spec.and_then(|s| s.placement.as_ref());
        GroupKey {
            service_id: &task.service_id,
            nano_cpus: res.map_or(0, |r| r.nano_cpus),
            memory_bytes: res.map_or(0, |r| r.memory_bytes),
            max_replicas: placement.map_or(0, |p| p.max_replicas_per_node),
            constraints: placement.map_or(&[], |p| p.constraints.as_slice()),
            preferences: placement.map_or(&[], |p| p.preferences.as_slice()),
            host_ports: HostPorts(task.endpoint.as_ref().map_or(&[], |e| e.ports.as_slice())),
        }
    }
}

/// A group's requirements, with its constraints parsed once.
#[derive(Debug, Clone)]
pub struct Requirements {
    pub nano_cpus: i64,
    pub memory_bytes: i64,
    /// 0 = no limit.
    pub max_replicas: u64,
    pub constraints: Vec<Constraint>,
    /// Spread over this attribute's values first (the first placement preference).
    pub spread: Option<constraint::Key>,
    /// Host-mode ports each task binds on its node.
    pub host_ports: Vec<HostPort>,
}

impl Requirements {
    pub fn new(key: &GroupKey<'_>) -> Result<Requirements, ConstraintError> {
        Ok(Requirements {
            nano_cpus: key.nano_cpus,
            memory_bytes: key.memory_bytes,
            max_replicas: key.max_replicas,
            constraints: constraint::parse_all(key.constraints)?,
            spread: key
                .preferences
                .first()
                .map(|p| constraint::parse_spread(p))
                .transpose()?,
            host_ports: key.host_ports.iter().collect(),
        })
    }
}

/// Resources of a node not yet reserved by its live tasks. May go negative when a node's
/// reported capacity shrank below what its tasks already reserve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Free {
    pub nano_cpus: i64,
    pub memory_bytes: i64,
}

impl Free {
    /// The node's reported capacity (nothing when it reported no description yet).
    pub fn capacity(node: &Node) -> Free {
        node.description
            .as_ref()
            .and_then(|d| d.resources.as_ref())
            .map_or(Free::default(), |r| Free {
                nano_cpus: r.nano_cpus,
                memory_bytes: r.memory_bytes,
            })
    }

    /// What is left of `self` (a node's capacity) once its live tasks' reservations are taken.
    pub fn less(self, load: &NodeLoad) -> Free {
        Free {
            nano_cpus: load.free_of(self.nano_cpus, Reserved::NanoCpus),
            memory_bytes: load.free_of(self.memory_bytes, Reserved::MemoryBytes),
        }
    }

    pub fn reserve(&mut self, nano_cpus: i64, memory_bytes: i64) {
        self.nano_cpus = self.nano_cpus.saturating_sub(nano_cpus);
        self.memory_bytes = self.memory_bytes.saturating_sub(memory_bytes);
    }
}

/// The filters, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Ready,
    Availability,
    Resources,
    Constraints,
    MaxReplicas,
    HostPorts,
}

impl Filter {
    pub fn name(self) -> &'static str {
        match self {
            Filter::Ready => "ready",
            Filter::Availability => "availability",
            Filter::Resources => "resources",
            Filter::Constraints => "constraints",
            Filter::MaxReplicas => "max-replicas",
            Filter::HostPorts => "host-ports",
        }
    }
}

/// Why one node was refused; several map to one line of the explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotReady,
    NotActive,
    InsufficientCpu,
    InsufficientMemory,
    /// Both CPU and memory fall short.
    InsufficientResources,
    Constraints,
    MaxReplicas,
    /// A host-mode port the task publishes is bound by a live task on the node.
    HostPortInUse,
}

impl Refusal {
    pub fn filter(self) -> Filter {
        match self {
            Refusal::NotReady => Filter::Ready,
            Refusal::NotActive => Filter::Availability,
            Refusal::InsufficientCpu
            | Refusal::InsufficientMemory
            | Refusal::InsufficientResources => Filter::Resources,
            Refusal::Constraints => Filter::Constraints,
            Refusal::MaxReplicas => Filter::MaxReplicas,
            Refusal::HostPortInUse => Filter::HostPorts,
        }
    }

    /// Index of the explanation line; not-ready and not-active read the same to a user.
    fn line(self) -> usize {
        match self {
            Refusal::NotReady | Refusal::NotActive => 0,
            Refusal::InsufficientResources => 1,
            Refusal::InsufficientMemory => 2,
            Refusal::InsufficientCpu => 3,
            Refusal::Constraints => 4,
            Refusal::MaxReplicas => 5,
            Refusal::HostPortInUse => 6,
        }
    }
}

const LINES: usize = 7;

fn line_text(line: usize, n: usize) -> String {
    let (has, nodes) = if n == 1 {
        ("has", "node")
    } else {
        ("have", "nodes")
    };
    match line {
        0 => format!("{n} {nodes} not available for new tasks"),
        1 => format!("{n} {nodes} {has} insufficient resources"),
        2 => format!("{n} {nodes} {has} insufficient memory"),
        3 => format!("{n} {nodes} {has} insufficient CPU"),
        4 => format!("scheduling constraints not satisfied on {n} {nodes}"),
        5 => format!("max replicas per node reached on {n} {nodes}"),
        _ => format!("host-mode port already in use on {n} {nodes}"),
    }
}

/// Node state and availability: a node must be READY and ACTIVE to take new tasks.
pub fn check_node_state(node: &Node) -> Result<(), Refusal> {
    if node.status.as_ref().map(|s| s.state) != Some(NodeState::Ready as i32) {
        return Err(Refusal::NotReady);
    }
    let availability = node.spec.as_ref().map_or(0, |s| s.availability);
    if availability != NodeAvailability::Active as i32 {
        return Err(Refusal::NotActive);
    }
    Ok(())
}

/// The group's reservations must fit in what the node has not reserved yet.
pub fn check_resources(req: &Requirements, free: Free) -> Result<(), Refusal> {
    // A zero reservation asks for nothing, so even a node that reported no resources fits it
    // (as in SwarmKit, where the resource filter is off for such tasks).
    let cpu_short = req.nano_cpus > 0 && req.nano_cpus > free.nano_cpus;
    let mem_short = req.memory_bytes > 0 && req.memory_bytes > free.memory_bytes;
    match (cpu_short, mem_short) {
        (true, true) => return Err(Refusal::InsufficientResources),
        (true, false) => return Err(Refusal::InsufficientCpu),
        (false, true) => return Err(Refusal::InsufficientMemory),
        (false, false) => {}
    }
    Ok(())
}

/// Constraints, checked after resources as in SwarmKit's pipeline.
pub fn check_constraints(req: &Requirements, node: &Node) -> Result<(), Refusal> {
    if constraint::all_match(&req.constraints, node) {
        Ok(())
    } else {
        Err(Refusal::Constraints)
    }
}

/// The per-node replica limit of the group's service; `service_tasks` counts that service's
/// live tasks on the node.
pub fn check_max_replicas(req: &Requirements, service_tasks: u64) -> Result<(), Refusal> {
    if req.max_replicas > 0 && service_tasks >= req.max_replicas {
        return Err(Refusal::MaxReplicas);
    }
    Ok(())
}

/// The group's host-mode ports must all be free on the node (`used`: those its live tasks
/// bind).
pub fn check_host_ports(req: &Requirements, used: &HashSet<HostPort>) -> Result<(), Refusal> {
    if req.host_ports.iter().any(|p| used.contains(p)) {
        return Err(Refusal::HostPortInUse);
    }
    Ok(())
}

/// Every filter but host ports (which need the node's bound ports) in order, stopping at the
/// first refusal. Only resources, max replicas and host ports can change while a group is
/// placed; the planner re-checks just those after each assignment.
pub fn check(
    req: &Requirements,
    node: &Node,
    free: Free,
    service_tasks: u64,
) -> Result<(), Refusal> {
    check_node_state(node)?;
    check_resources(req, free)?;
    check_constraints(req, node)?;
    check_max_replicas(req, service_tasks)
}

/// Counts of refused nodes per explanation line, for one group.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    counts: [usize; LINES],
}

impl Tally {
    pub fn record(&mut self, r: Refusal) {
        self.counts[r.line()] += 1;
    }

    /// Refused nodes in total.
    pub fn refused(&self) -> usize {
        self.counts.iter().sum()
    }

    /// "no suitable node (…)": the reasons with the most refused nodes first (ties keep
    /// filter order), as SwarmKit words it.
    pub fn explain(&self) -> String {
        let mut lines: Vec<usize> = (0..LINES).filter(|&l| self.counts[l] > 0).collect();
        if lines.is_empty() {
            return "no suitable node (no nodes in the cluster)".to_string();
        }
        // Stable sort: equal counts keep the filters' order.
        lines.sort_by_key(|&l| std::cmp::Reverse(self.counts[l]));
        let parts: Vec<String> = lines
            .into_iter()
            .map(|l| line_text(l, self.counts[l]))
            .collect();
        format!("no suitable node ({})", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_api::{Placement, ResourceRequirements, Resources, TaskSpec};
    use swarm_testkit::fixtures::{self, NodeFixture};

    fn node(id: &str, state: NodeState, avail: NodeAvailability) -> Node {
        fixtures::node(id)
            .with_labels(&[("foo", "bar")])
            .with_state(state)
            .with_availability(avail)
            .with_resources(2_000_000_000, 1 << 30)
    }

    fn req(cpus: i64, mem: i64, constraints: &[&str]) -> Requirements {
        let cs: Vec<String> = constraints.iter().map(|s| s.to_string()).collect();
        Requirements::new(&GroupKey {
            service_id: "svc",
            nano_cpus: cpus,
            memory_bytes: mem,
            max_replicas: 0,
            constraints: &cs,
            preferences: &[],
            host_ports: HostPorts(&[]),
        })
        .unwrap()
    }

    #[test]
    fn down_drained_and_paused_nodes_are_excluded() {
        let r = req(0, 0, &[]);
        let ok = node("a", NodeState::Ready, NodeAvailability::Active);
        assert_eq!(check(&r, &ok, Free::capacity(&ok), 0), Ok(()));
        for (state, avail, why) in [
            (NodeState::Down, NodeAvailability::Active, Refusal::NotReady),
            (
                NodeState::Unknown,
                NodeAvailability::Active,
                Refusal::NotReady,
            ),
            (
                NodeState::Disconnected,
                NodeAvailability::Active,
                Refusal::NotReady,
            ),
            (
                NodeState::Ready,
                NodeAvailability::Drain,
                Refusal::NotActive,
            ),
            (
                NodeState::Ready,
                NodeAvailability::Pause,
                Refusal::NotActive,
            ),
        ] {
            let n = node("b", state, avail);
            assert_eq!(check(&r, &n, Free::capacity(&n), 0), Err(why));
        }
        // A node without status is not ready.
        let mut n = node("c", NodeState::Ready, NodeAvailability::Active);
        n.status = None;
        assert_eq!(check(&r, &n, Free::capacity(&n), 0), Err(Refusal::NotReady));
    }

    #[test]
    fn memory_reservation_excluded_when_full() {
        let n = node("a", NodeState::Ready, NodeAvailability::Active);
        let r = req(0, 512 << 20, &[]);
        let mut free = Free::capacity(&n);
        assert_eq!(check(&r, &n, free, 0), Ok(()));
        free.reserve(0, 512 << 20);
        assert_eq!(check(&r, &n, free, 0), Ok(()), "exactly fits");
        free.reserve(0, 512 << 20);
        assert_eq!(check(&r, &n, free, 0), Err(Refusal::InsufficientMemory));
        // CPU alone, and both.
        let r = req(3_000_000_000, 0, &[]);
        assert_eq!(
            check(&r, &n, Free::capacity(&n), 0),
            Err(Refusal::InsufficientCpu)
        );
        let r = req(3_000_000_000, 2 << 30, &[]);
        assert_eq!(
            check(&r, &n, Free::capacity(&n), 0),
            Err(Refusal::InsufficientResources)
        );
        // No reservation fits even a node that reported nothing.
        let mut bare = n.clone();
        bare.description = None;
        assert_eq!(
            check(&req(0, 0, &[]), &bare, Free::capacity(&bare), 0),
            Ok(())
        );
        assert_eq!(
            check(&req(1, 0, &[]), &bare, Free::capacity(&bare), 0),
            Err(Refusal::InsufficientCpu)
        );
    }

    #[test]
    fn constraints_and_max_replicas() {
        let n = node("a", NodeState::Ready, NodeAvailability::Active);
        let free = Free::capacity(&n);
        assert_eq!(
            check(&req(0, 0, &["node.labels.foo!=bar"]), &n, free, 0),
            Err(Refusal::Constraints)
        );
        assert_eq!(
            check(&req(0, 0, &["node.labels.foo==bar"]), &n, free, 0),
            Ok(())
        );
        let mut r = req(0, 0, &[]);
        r.max_replicas = 2;
        assert_eq!(check(&r, &n, free, 1), Ok(()));
        assert_eq!(check(&r, &n, free, 2), Err(Refusal::MaxReplicas));
    }

    #[test]
    fn first_failing_filter_is_reported() {
        // Down and unconstrained-mismatch: counted as not available, not as constraints.
        let n = node("a", NodeState::Down, NodeAvailability::Active);
        assert_eq!(
            check(
                &req(0, 0, &["node.labels.foo==baz"]),
                &n,
                Free::capacity(&n),
                0
            ),
            Err(Refusal::NotReady)
        );
        assert_eq!(Refusal::NotReady.filter().name(), "ready");
        assert_eq!(Refusal::InsufficientMemory.filter(), Filter::Resources);
    }

    #[test]
    fn explanation_wording_and_order() {
        let mut t = Tally::default();
        t.record(Refusal::InsufficientMemory);
        t.record(Refusal::NotReady);
        t.record(Refusal::NotActive);
        assert_eq!(
            t.explain(),
            "no suitable node (2 nodes not available for new tasks; 1 node has insufficient memory)"
        );
        let mut t = Tally::default();
        for _ in 0..3 {
            t.record(Refusal::Constraints);
        }
        t.record(Refusal::InsufficientCpu);
        t.record(Refusal::InsufficientCpu);
        t.record(Refusal::InsufficientResources);
        assert_eq!(
            t.explain(),
            "no suitable node (scheduling constraints not satisfied on 3 nodes; \
             2 nodes have insufficient CPU; 1 node has insufficient resources)"
        );
        assert_eq!(t.refused(), 6);
        assert_eq!(
            Tally::default().explain(),
            "no suitable node (no nodes in the cluster)"
        );
    }

    #[test]
    fn group_key_reads_every_placement_field() {
        let task = |mem: i64, cons: &[&str], max: u64| Task {
            service_id: "s".into(),
            spec: Some(
                TaskSpec {
                    resources: Some(ResourceRequirements {
                        limits: None,
                        reservations: Some(Resources {
                            nano_cpus: 0,
                            memory_bytes: mem,
                        }),
                    }),
                    placement: Some(Placement {
                        constraints: cons.iter().map(|s| s.to_string()).collect(),
                        max_replicas_per_node: max,
                        ..Default::default()
                    }),
                    ..Default::default()
                }
                .into(),
            ),
            ..Default::default()
        };
        let (a, b, c, d) = (
            task(1, &["node.role==worker"], 0),
            task(2, &["node.role==worker"], 0),
            task(1, &["node.role!=worker"], 0),
            task(1, &["node.role==worker"], 3),
        );
        let mut e = task(1, &["node.role==worker"], 0);
        e.spec_version = 7;
        assert_ne!(GroupKey::of_task(&a), GroupKey::of_task(&b));
        assert_ne!(GroupKey::of_task(&a), GroupKey::of_task(&c));
        assert_ne!(GroupKey::of_task(&a), GroupKey::of_task(&d));
        // The spec version does not change any filter's answer.
        assert_eq!(GroupKey::of_task(&a), GroupKey::of_task(&e));
    }
}
