//! Per-node load aggregates: what the live tasks on each node hold (a count, reserved CPU and
//! memory, host-mode ports), live tasks per service per node, and failures per service per
//! node. The store keeps them in step with every task write, so the scheduler reads a node's
//! load instead of counting every task in the cluster on each pass (issue 18).
//!
//! Owns the definitions of "live on a node" and "failed on a node" that the scheduler's
//! filters rely on; it must not decide placement, and nothing but `Tables::put_task` and
//! `Tables::remove_task` may write it.

use std::collections::HashMap;
use swarm_api::{state::observed_number, PortConfig, PublishMode, Task, TaskState};

/// A published host-mode port on a node: (protocol, port).
pub type HostPort = (i32, u32);

/// The host-mode ports among `ports`: the ones a node binds for the task.
pub fn host_ports(ports: &[PortConfig]) -> impl Iterator<Item = HostPort> + '_ {
    ports
        .iter()
        .filter(|p| p.publish_mode == PublishMode::Host as i32 && p.published_port != 0)
        .map(|p| (p.protocol, p.published_port))
}

/// A node's place in the aggregates: a small number, reused once nothing refers to the node,
/// so per-service counts cost a few bytes per (service, node) instead of a copy of the ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeSlot(u32);

impl NodeSlot {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What the live tasks on one node hold.
#[derive(Debug, Clone, Default)]
pub struct NodeLoad {
    node_id: String,
    tasks: u32,
    /// Sums of the tasks' reservations, wide enough that adding and taking away a task
    /// always cancel (saturating sums would not).
    nano_cpus: i128,
    memory_bytes: i128,
    /// How many live tasks bind each host port (two can, while the scheduler's view lags).
    ports: HashMap<HostPort, u32>,
    /// Live tasks plus recorded failures on the node: the slot is freed at zero.
    refs: u32,
}

impl NodeLoad {
    /// Live tasks on the node.
    pub fn tasks(&self) -> u32 {
        self.tasks
    }

    /// `capacity` less the live tasks' reservations; negative when the node reported less
    /// than its tasks reserve, and kept within `i64` as saturating arithmetic would.
    pub fn free_of(&self, capacity: i64, reserved: Reserved) -> i64 {
        let sum = match reserved {
            Reserved::NanoCpus => self.nano_cpus,
            Reserved::MemoryBytes => self.memory_bytes,
        };
        let left = i128::from(capacity) - sum;
        let clamped = left.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
        i64::try_from(clamped).unwrap_or(i64::MAX)
    }

    /// The host-mode ports live tasks bind on the node.
    pub fn host_ports(&self) -> impl Iterator<Item = HostPort> + '_ {
        self.ports.keys().copied()
    }
}

/// Which reservation [`NodeLoad::free_of`] subtracts.
#[derive(Debug, Clone, Copy)]
pub enum Reserved {
    NanoCpus,
    MemoryBytes,
}

/// The aggregates of every node that live tasks or recent failures refer to.
#[derive(Debug, Clone, Default)]
pub struct NodeLoads {
    slots: HashMap<String, NodeSlot>,
    nodes: Vec<NodeLoad>,
    free_slots: Vec<NodeSlot>,
    /// Live tasks per service per node.
    services: HashMap<String, HashMap<NodeSlot, u32>>,
    /// Status timestamps (unix ms) of tasks that failed or were rejected, per service per node.
    failures: HashMap<String, HashMap<NodeSlot, Vec<i64>>>,
}

/// What a live task holds on its node.
struct Holding<'a> {
    node: &'a str,
    service: &'a str,
    nano_cpus: i64,
    memory_bytes: i64,
    ports: &'a [PortConfig],
}

impl PartialEq for Holding<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.node == o.node
            && self.service == o.service
            && self.nano_cpus == o.nano_cpus
            && self.memory_bytes == o.memory_bytes
            && host_ports(self.ports).eq(host_ports(o.ports))
    }
}

/// A task on a node that neither ended nor is meant to end holds its reservations there.
fn holding(task: &Task) -> Option<Holding<'_>> {
    let live = task.desired_state <= TaskState::Running as i32
        && observed_number(task) <= TaskState::Running as i32;
    if task.node_id.is_empty() || !live {
        return None;
    }
    let res = task
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.reservations.as_ref());
    Some(Holding {
        node: &task.node_id,
        service: &task.service_id,
        nano_cpus: res.map_or(0, |r| r.nano_cpus),
        memory_bytes: res.map_or(0, |r| r.memory_bytes),
        ports: task.endpoint.as_ref().map_or(&[], |e| e.ports.as_slice()),
    })
}

/// (node, service, when) of a task that failed or was rejected on a node.
fn failure(task: &Task) -> Option<(&str, &str, i64)> {
    let state = observed_number(task);
    let failed = state == TaskState::Failed as i32 || state == TaskState::Rejected as i32;
    let status = task.status.as_ref()?;
    (failed && !task.node_id.is_empty()).then_some((
        task.node_id.as_str(),
        task.service_id.as_str(),
        status.timestamp,
    ))
}

impl NodeLoads {
    /// One more than the largest slot in use: the length of an array indexed by slot.
    pub fn slot_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node's slot and load, if a live task or a failure refers to it.
    pub fn of_node(&self, node_id: &str) -> Option<(NodeSlot, &NodeLoad)> {
        let slot = *self.slots.get(node_id)?;
        self.nodes.get(slot.index()).map(|l| (slot, l))
    }

    /// Live tasks of the service, per node that runs any.
    pub fn of_service(&self, service_id: &str) -> impl Iterator<Item = (NodeSlot, u32)> + '_ {
        self.services
            .get(service_id)
            .into_iter()
            .flatten()
            .map(|(&s, &c)| (s, c))
    }

    /// Failures of the service at `since` (unix ms) or later, per node with any.
    pub fn failures_since(
        &self,
        service_id: &str,
        since: i64,
    ) -> impl Iterator<Item = (NodeSlot, u32)> + '_ {
        self.failures
            .get(service_id)
            .into_iter()
            .flatten()
            .filter_map(move |(&s, times)| {
                let n = times.iter().filter(|&&t| t >= since).count();
                (n > 0).then(|| (s, u32::try_from(n).unwrap_or(u32::MAX)))
            })
    }

    /// Moves the aggregates from `old` (the row replaced or removed) to `new` (the row
    /// written). A status report that changes nothing here costs two comparisons.
    pub(crate) fn update(&mut self, old: Option<&Task>, new: Option<&Task>) {
        let (was, now) = (old.and_then(holding), new.and_then(holding));
        if was != now {
            if let Some(h) = was {
                self.release(&h);
            }
            if let Some(h) = now {
                self.hold(&h);
            }
        }
        let (was, now) = (old.and_then(failure), new.and_then(failure));
        if was != now {
            if let Some((node, service, at)) = was {
                self.forget_failure(node, service, at);
            }
            if let Some((node, service, at)) = now {
                self.record_failure(node, service, at);
            }
        }
    }

    fn hold(&mut self, h: &Holding<'_>) {
        let slot = self.take_slot(h.node);
        if let Some(load) = self.nodes.get_mut(slot.index()) {
            load.tasks += 1;
            load.nano_cpus += i128::from(h.nano_cpus);
            load.memory_bytes += i128::from(h.memory_bytes);
            for p in host_ports(h.ports) {
                *load.ports.entry(p).or_default() += 1;
            }
        }
        if !h.service.is_empty() {
            *self
                .services
                .entry(h.service.to_string())
                .or_default()
                .entry(slot)
                .or_default() += 1;
        }
    }

    fn release(&mut self, h: &Holding<'_>) {
        let Some(&slot) = self.slots.get(h.node) else {
            return;
        };
        if let Some(load) = self.nodes.get_mut(slot.index()) {
            load.tasks = load.tasks.saturating_sub(1);
            load.nano_cpus -= i128::from(h.nano_cpus);
            load.memory_bytes -= i128::from(h.memory_bytes);
            for p in host_ports(h.ports) {
                if let Some(n) = load.ports.get_mut(&p) {
                    *n -= 1;
                    if *n == 0 {
                        load.ports.remove(&p);
                    }
                }
            }
        }
        if let Some(per_node) = self.services.get_mut(h.service) {
            if let Some(n) = per_node.get_mut(&slot) {
                *n -= 1;
                if *n == 0 {
                    per_node.remove(&slot);
                }
            }
            if per_node.is_empty() {
                self.services.remove(h.service);
            }
        }
        self.drop_ref(slot);
    }

    fn record_failure(&mut self, node: &str, service: &str, at: i64) {
        let slot = self.take_slot(node);
        self.failures
            .entry(service.to_string())
            .or_default()
            .entry(slot)
            .or_default()
            .push(at);
    }

    fn forget_failure(&mut self, node: &str, service: &str, at: i64) {
        let Some(&slot) = self.slots.get(node) else {
            return;
        };
        let Some(per_node) = self.failures.get_mut(service) else {
            return;
        };
        let Some(times) = per_node.get_mut(&slot) else {
            return;
        };
        let Some(i) = times.iter().position(|&t| t == at) else {
            return;
        };
        times.swap_remove(i);
        if times.is_empty() {
            per_node.remove(&slot);
            if per_node.is_empty() {
                self.failures.remove(service);
            }
        }
        self.drop_ref(slot);
    }

    /// The node's slot, made if new, with one more reference.
    fn take_slot(&mut self, node: &str) -> NodeSlot {
        let slot = match self.slots.get(node) {
            Some(&s) => s,
            None => {
                let s = self.free_slots.pop().unwrap_or_else(|| {
                    self.nodes.push(NodeLoad::default());
                    NodeSlot(u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX))
                });
                self.slots.insert(node.to_string(), s);
                if let Some(load) = self.nodes.get_mut(s.index()) {
                    load.node_id = node.to_string();
                }
                s
            }
        };
        if let Some(load) = self.nodes.get_mut(slot.index()) {
            load.refs += 1;
        }
        slot
    }

    /// One reference fewer; at none, the slot is freed for another node.
    fn drop_ref(&mut self, slot: NodeSlot) {
        let Some(load) = self.nodes.get_mut(slot.index()) else {
            return;
        };
        load.refs = load.refs.saturating_sub(1);
        if load.refs == 0 {
            let gone = std::mem::take(load);
            self.slots.remove(&gone.node_id);
            self.free_slots.push(slot);
        }
    }
}
