//! The tables and their indexes. Mutation is crate-private: only `apply` writes, and it keeps
//! the indexes in step with the rows.

use crate::item::StoreItem;
use crate::node_load::NodeLoads;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use swarm_api::{Cluster, Config, Network, Node, Secret, Service, StoreSnapshot, Task, TaskState};

/// One table: rows by ID, hashed, for the lookups every status report and assignment makes
/// (a B-tree of a million string keys chased a pointer per comparison: ~50 per lookup); the
/// IDs again in order, so listings and snapshots are deterministic; and, for tables with
/// unique names, an index by name. A row is boxed: at a million rows, a hash table's free
/// slots cost a pointer each rather than a whole task.
#[derive(Debug, Clone)]
pub struct Table<T: StoreItem> {
    rows: HashTable<Box<T>>,
    hasher: DefaultHashBuilder,
    order: BTreeSet<String>,
    by_name: HashMap<String, String>,
}

impl<T: StoreItem> Default for Table<T> {
    fn default() -> Self {
        Table {
            rows: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            order: BTreeSet::new(),
            by_name: HashMap::new(),
        }
    }
}

impl<T: StoreItem> Table<T> {
    pub fn get(&self, id: &str) -> Option<&T> {
        let hash = self.hasher.hash_one(id);
        self.rows.find(hash, |row| row.id() == id).map(|row| &**row)
    }

    pub fn by_name(&self, name: &str) -> Option<&T> {
        self.by_name.get(name).and_then(|id| self.get(id))
    }

    /// Rows in ID order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.order.iter().filter_map(|id| self.get(id))
    }

    /// Rows in no particular order: for counts and scans whose result does not depend on it.
    pub fn iter_unordered(&self) -> impl Iterator<Item = &T> {
        self.rows.iter().map(|row| &**row)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// ID of the row holding `name`, if any.
    pub(crate) fn name_owner(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(String::as_str)
    }

    pub(crate) fn put(&mut self, item: T) -> Option<T> {
        let hash = self.hasher.hash_one(item.id());
        // An existing row is replaced where it is: its ID, and so its place in the order,
        // stay; only a changed name moves in the name index.
        if let Some(row) = self.rows.find_mut(hash, |row| row.id() == item.id()) {
            let old = std::mem::replace(&mut **row, item);
            if old.unique_name() != row.unique_name() {
                release_name(&mut self.by_name, &old);
                if let Some(name) = row.unique_name() {
                    self.by_name.insert(name.to_string(), row.id().to_string());
                }
            }
            return Some(old);
        }
        if let Some(name) = item.unique_name() {
            self.by_name.insert(name.to_string(), item.id().to_string());
        }
        self.order.insert(item.id().to_string());
        let hasher = &self.hasher;
        self.rows
            .insert_unique(hash, Box::new(item), |row| hasher.hash_one(row.id()));
        None
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<T> {
        let hash = self.hasher.hash_one(id);
        let entry = self.rows.find_entry(hash, |row| row.id() == id).ok()?;
        let (old, _) = entry.remove();
        self.order.remove(id);
        release_name(&mut self.by_name, &*old);
        Some(*old)
    }
}

/// Drops `old`'s name from the index, unless another row holds it by now.
fn release_name<T: StoreItem>(by_name: &mut HashMap<String, String>, old: &T) {
    if let Some(name) = old.unique_name() {
        if by_name.get(name).is_some_and(|owner| owner == old.id()) {
            by_name.remove(name);
        }
    }
}

/// Every table of the cluster state, plus the task indexes the orchestrators, scheduler and
/// dispatcher query on every pass.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    pub nodes: Table<Node>,
    pub services: Table<Service>,
    pub tasks: Table<Task>,
    pub clusters: Table<Cluster>,
    pub secrets: Table<Secret>,
    pub configs: Table<Config>,
    pub networks: Table<Network>,
    tasks_by_service: HashMap<String, BTreeSet<String>>,
    tasks_by_node: HashMap<String, BTreeSet<String>>,
    /// Tasks holding an address on a network (their allocated attachments), by network ID.
    tasks_by_network: HashMap<String, BTreeSet<String>>,
    /// Tasks observed NEW, and PENDING: the allocator's and the scheduler's work, so their
    /// passes cost the tasks waiting, not every task in the cluster.
    tasks_new: BTreeSet<String>,
    tasks_pending: BTreeSet<String>,
    /// What live tasks hold on each node, so placement reads loads instead of every task.
    loads: NodeLoads,
}

/// The observed state as the indexes see it: a task without a status is NEW.
use swarm_api::state::observed_number as observed;

impl Tables {
    /// Tasks of one service, ordered by ID.
    pub fn tasks_of_service<'a>(&'a self, service_id: &str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks_by_service
            .get(service_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// Tasks assigned to one node, ordered by ID.
    pub fn tasks_of_node<'a>(&'a self, node_id: &str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks_by_node
            .get(node_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// Tasks attached to one network (allocated), ordered by ID.
    pub fn tasks_of_network<'a>(&'a self, network_id: &str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks_by_network
            .get(network_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// Tasks observed NEW (or without a status), ordered by ID.
    pub fn new_tasks(&self) -> impl Iterator<Item = &Task> + '_ {
        self.tasks_new.iter().filter_map(|id| self.tasks.get(id))
    }

    /// How many tasks are observed PENDING (the index's size: no scan).
    pub fn pending_count(&self) -> usize {
        self.tasks_pending.len()
    }

    /// Tasks observed PENDING, ordered by ID.
    pub fn pending_tasks(&self) -> impl Iterator<Item = &Task> + '_ {
        self.tasks_pending
            .iter()
            .filter_map(|id| self.tasks.get(id))
    }

    /// Per-node load aggregates, in step with the task rows.
    pub fn node_loads(&self) -> &NodeLoads {
        &self.loads
    }

    /// Tasks whose desired state is RUNNING or earlier: the ones that count toward a service.
    pub fn live_tasks_of_service<'a>(
        &'a self,
        service_id: &str,
    ) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks_of_service(service_id)
            .filter(|t| t.desired_state <= TaskState::Running as i32)
    }

    /// Looks a service up by exact ID or exact name.
    pub fn service_by_id_or_name(&self, key: &str) -> Option<&Service> {
        self.services
            .get(key)
            .or_else(|| self.services.by_name(key))
    }

    /// The cluster object (there is one, named "default").
    pub fn default_cluster(&self) -> Option<&Cluster> {
        self.clusters
            .by_name(swarm_api::DEFAULT_CLUSTER_NAME)
            .or_else(|| self.clusters.iter().next())
    }

    /// Makes `task` hold the copy of its spec that the store already holds, when an equal one
    /// is at hand: the task's previous row (a status report re-sends the whole task), else its
    /// service's current or previous spec. Tasks arrive decoded from the Raft log, each with
    /// its own copy; without this, 100,000 tasks of one service held 100,000 equal specs.
    pub(crate) fn share_task_spec(&self, task: &mut Task) {
        let Some(spec) = task.spec.as_mut() else {
            return;
        };
        if let Some(old) = self.tasks.get(&task.id).and_then(|t| t.spec.as_ref()) {
            if spec.share_with(old) {
                return;
            }
        }
        if let Some(service) = self.services.get(&task.service_id) {
            for held in [&service.spec, &service.previous_spec] {
                if let Some(held) = held.as_ref().and_then(|s| s.task.as_ref()) {
                    if spec.share_with(held) {
                        return;
                    }
                }
            }
        }
    }

    /// Writes a task row and keeps its indexes in step, touching only the indexes whose key
    /// changed: most writes are status reports and assignments, which change one or two.
    pub(crate) fn put_task(&mut self, task: Task) -> Option<Task> {
        let id = task.id.as_str();
        let old = self.tasks.get(id);
        if old.is_none_or(|o| o.service_id != task.service_id) {
            if let Some(o) = old {
                unindex(&mut self.tasks_by_service, &o.service_id, id);
            }
            index(&mut self.tasks_by_service, &task.service_id, id);
        }
        if old.is_none_or(|o| o.node_id != task.node_id) {
            if let Some(o) = old {
                unindex(&mut self.tasks_by_node, &o.node_id, id);
            }
            index(&mut self.tasks_by_node, &task.node_id, id);
        }
        let same_networks = |o: &Task| {
            let theirs = o.networks.iter().map(|a| &a.network_id);
            theirs.eq(task.networks.iter().map(|a| &a.network_id))
        };
        if old.is_none_or(|o| !same_networks(o)) {
            if let Some(o) = old {
                for a in &o.networks {
                    unindex(&mut self.tasks_by_network, &a.network_id, id);
                }
            }
            for a in &task.networks {
                index(&mut self.tasks_by_network, &a.network_id, id);
            }
        }
        self.loads.update(old, Some(&task));
        let was = old.map(waiting);
        let now = waiting(&task);
        if was != Some(now) {
            match was {
                Some(Waiting::New) => drop(self.tasks_new.remove(id)),
                Some(Waiting::Pending) => drop(self.tasks_pending.remove(id)),
                _ => {}
            }
            match now {
                Waiting::New => drop(self.tasks_new.insert(id.to_string())),
                Waiting::Pending => drop(self.tasks_pending.insert(id.to_string())),
                Waiting::No => {}
            }
        }
        self.tasks.put(task)
    }

    pub(crate) fn remove_task(&mut self, id: &str) -> Option<Task> {
        let old = self.tasks.remove(id)?;
        unindex(&mut self.tasks_by_service, &old.service_id, id);
        unindex(&mut self.tasks_by_node, &old.node_id, id);
        for a in &old.networks {
            unindex(&mut self.tasks_by_network, &a.network_id, id);
        }
        self.tasks_new.remove(id);
        self.tasks_pending.remove(id);
        self.loads.update(Some(&old), None);
        Some(old)
    }

    pub fn to_snapshot(&self) -> StoreSnapshot {
        StoreSnapshot {
            nodes: self.nodes.iter().cloned().collect(),
            services: self.services.iter().cloned().collect(),
            tasks: self.tasks.iter().cloned().collect(),
            clusters: self.clusters.iter().cloned().collect(),
            secrets: self.secrets.iter().cloned().collect(),
            configs: self.configs.iter().cloned().collect(),
            networks: self.networks.iter().cloned().collect(),
        }
    }

    pub fn from_snapshot(snap: StoreSnapshot) -> Tables {
        let mut t = Tables::default();
        for x in snap.nodes {
            t.nodes.put(x);
        }
        for x in snap.services {
            t.services.put(x);
        }
        for mut x in snap.tasks {
            // Services are in already: a restored task shares their spec as an applied one does.
            t.share_task_spec(&mut x);
            t.put_task(x);
        }
        for x in snap.clusters {
            t.clusters.put(x);
        }
        for x in snap.secrets {
            t.secrets.put(x);
        }
        for x in snap.configs {
            t.configs.put(x);
        }
        for x in snap.networks {
            t.networks.put(x);
        }
        t
    }
}

/// Which of the waiting-task indexes a task belongs in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waiting {
    New,
    Pending,
    No,
}

fn waiting(task: &Task) -> Waiting {
    match observed(task) {
        s if s == TaskState::New as i32 => Waiting::New,
        s if s == TaskState::Pending as i32 => Waiting::Pending,
        _ => Waiting::No,
    }
}

/// Adds `id` under `key`; an empty key (no service, no node yet) is not indexed.
fn index(index: &mut HashMap<String, BTreeSet<String>>, key: &str, id: &str) {
    if key.is_empty() {
        return;
    }
    match index.get_mut(key) {
        Some(set) => drop(set.insert(id.to_string())),
        None => drop(index.insert(key.to_string(), BTreeSet::from([id.to_string()]))),
    }
}

fn unindex(index: &mut HashMap<String, BTreeSet<String>>, key: &str, id: &str) {
    if let Some(set) = index.get_mut(key) {
        set.remove(id);
        if set.is_empty() {
            index.remove(key);
        }
    }
}
