//! Objects as the store holds them, built in one line and adjusted with `with_*` calls:
//! `node("n1").with_labels(&[("zone", "a")])`, `task("t1", "s1").on("n1").in_state(Running)`,
//! `service("s1", "web").with_replicas(3)`. Defaults are the common case of the tests: a node
//! that can take tasks, a task that should run, a replicated service of one replica.

use swarm_api::service_spec::Mode;
use swarm_api::*;

/// A node that can take tasks: accepted, active, READY, a worker with 4 CPUs and 8 GiB, its
/// name and hostname its ID.
pub fn node(id: &str) -> Node {
    Node {
        id: id.into(),
        spec: Some(NodeSpec {
            annotations: Some(Annotations {
                name: id.into(),
                labels: Default::default(),
            }),
            desired_role: NodeRole::Worker as i32,
            membership: NodeMembership::Accepted as i32,
            availability: NodeAvailability::Active as i32,
        }),
        description: Some(NodeDescription {
            hostname: id.into(),
            resources: Some(Resources {
                nano_cpus: 4_000_000_000,
                memory_bytes: 8 << 30,
            }),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: NodeState::Ready as i32,
            ..Default::default()
        }),
        role: NodeRole::Worker as i32,
        ..Default::default()
    }
}

pub trait NodeFixture: Sized {
    fn with_labels(self, labels: &[(&str, &str)]) -> Self;
    fn with_state(self, state: NodeState) -> Self;
    fn with_availability(self, availability: NodeAvailability) -> Self;
    fn with_resources(self, nano_cpus: i64, memory_bytes: i64) -> Self;
    /// A manager reachable at `addr` (its remote API, as session messages list it).
    fn with_manager_role(self, addr: &str) -> Self;
}

impl NodeFixture for Node {
    fn with_labels(mut self, labels: &[(&str, &str)]) -> Node {
        if let Some(a) = self.spec.as_mut().and_then(|s| s.annotations.as_mut()) {
            a.labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        }
        self
    }

    fn with_state(mut self, state: NodeState) -> Node {
        self.status.get_or_insert_with(Default::default).state = state as i32;
        self
    }

    fn with_availability(mut self, availability: NodeAvailability) -> Node {
        self.spec.get_or_insert_with(Default::default).availability = availability as i32;
        self
    }

    fn with_resources(mut self, nano_cpus: i64, memory_bytes: i64) -> Node {
        self.description
            .get_or_insert_with(Default::default)
            .resources = Some(Resources {
            nano_cpus,
            memory_bytes,
        });
        self
    }

    fn with_manager_role(mut self, addr: &str) -> Node {
        self.role = NodeRole::Manager as i32;
        if let Some(s) = self.spec.as_mut() {
            s.desired_role = NodeRole::Manager as i32;
        }
        self.manager_status = Some(ManagerStatus {
            raft_id: ids::raft_id_of(&self.id),
            addr: addr.into(),
            leader: false,
            reachability: Reachability::Reachable as i32,
        });
        self
    }
}

/// A task of `service_id` that should run and has just been created: desired RUNNING,
/// observed NEW, no slot, on no node.
pub fn task(id: &str, service_id: &str) -> Task {
    Task {
        id: id.into(),
        service_id: service_id.into(),
        desired_state: TaskState::Running as i32,
        status: Some(TaskStatus {
            state: TaskState::New as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub trait TaskFixture: Sized {
    /// Assigned to `node_id`.
    fn on(self, node_id: &str) -> Self;
    fn in_slot(self, slot: u64) -> Self;
    /// Observed in `state`, reported at `timestamp` (ms).
    fn in_state_at(self, state: TaskState, timestamp: i64) -> Self;
    fn in_state(self, state: TaskState) -> Self {
        self.in_state_at(state, 0)
    }
    fn desired(self, state: TaskState) -> Self;
    /// Runs `image` (a container spec with nothing else set).
    fn with_image(self, image: &str) -> Self;
}

impl TaskFixture for Task {
    fn on(mut self, node_id: &str) -> Task {
        self.node_id = node_id.into();
        self
    }

    fn in_slot(mut self, slot: u64) -> Task {
        self.slot = slot;
        self
    }

    fn in_state_at(mut self, state: TaskState, timestamp: i64) -> Task {
        let s = self.status.get_or_insert_with(Default::default);
        s.state = state as i32;
        s.timestamp = timestamp;
        self
    }

    fn desired(mut self, state: TaskState) -> Task {
        self.desired_state = state as i32;
        self
    }

    fn with_image(mut self, image: &str) -> Task {
        self.spec.get_or_insert_with(Default::default).container = Some(ContainerSpec {
            image: image.into(),
            ..Default::default()
        });
        self
    }
}

/// A replicated service named `name` of one replica running `busybox`.
pub fn service(id: &str, name: &str) -> Service {
    Service {
        id: id.into(),
        spec: Some(service_spec(name)),
        ..Default::default()
    }
}

/// The spec of [`service`].
pub fn service_spec(name: &str) -> ServiceSpec {
    ServiceSpec {
        annotations: Some(Annotations {
            name: name.into(),
            labels: Default::default(),
        }),
        task: Some(
            TaskSpec {
                container: Some(ContainerSpec {
                    image: "busybox".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .into(),
        ),
        mode: Some(Mode::Replicated(ReplicatedService { replicas: 1 })),
        ..Default::default()
    }
}

pub trait ServiceFixture: Sized {
    fn with_replicas(self, replicas: u64) -> Self;
    fn global(self) -> Self;
    fn with_image(self, image: &str) -> Self;
    /// Publishes `target` on `published` through the routing mesh (ingress mode), in the spec.
    fn publishing(self, published: u32, target: u32) -> Self;
}

fn publish_in(spec: &mut ServiceSpec, published: u32, target: u32) {
    spec.endpoint
        .get_or_insert_with(Default::default)
        .ports
        .push(PortConfig {
            target_port: target,
            published_port: published,
            publish_mode: PublishMode::Ingress as i32,
            ..Default::default()
        });
}

impl ServiceFixture for ServiceSpec {
    fn with_replicas(mut self, replicas: u64) -> ServiceSpec {
        self.mode = Some(Mode::Replicated(ReplicatedService { replicas }));
        self
    }

    fn global(mut self) -> ServiceSpec {
        self.mode = Some(Mode::Global(GlobalService {}));
        self
    }

    fn with_image(mut self, image: &str) -> ServiceSpec {
        if let Some(c) = self.task.as_mut().and_then(|t| t.container.as_mut()) {
            c.image = image.into();
        }
        self
    }

    fn publishing(mut self, published: u32, target: u32) -> ServiceSpec {
        publish_in(&mut self, published, target);
        self
    }
}

impl ServiceFixture for Service {
    fn with_replicas(mut self, replicas: u64) -> Service {
        self.spec = self.spec.map(|s| s.with_replicas(replicas));
        self
    }

    fn global(mut self) -> Service {
        self.spec = self.spec.map(ServiceSpec::global);
        self
    }

    fn with_image(mut self, image: &str) -> Service {
        self.spec = self.spec.map(|s| s.with_image(image));
        self
    }

    fn publishing(mut self, published: u32, target: u32) -> Service {
        self.spec = self.spec.map(|s| s.publishing(published, target));
        self
    }
}

/// An overlay network named `name`, asking for `subnet` ("" = one from the pool), not yet
/// allocated.
pub fn network(id: &str, name: &str, subnet: &str) -> Network {
    Network {
        id: id.into(),
        spec: Some(NetworkSpec {
            annotations: Some(Annotations {
                name: name.into(),
                labels: Default::default(),
            }),
            driver: "overlay".into(),
            ipam: Some(IpamConfig {
                subnet: subnet.into(),
                gateway: String::new(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The routing mesh's network on `subnet`, as bootstrap makes it (not yet allocated).
pub fn ingress_network(id: &str, subnet: &str) -> Network {
    let mut n = network(id, "ingress", subnet);
    if let Some(spec) = n.spec.as_mut() {
        spec.ingress = true;
    }
    n
}

/// A secret named `name` holding `data`.
pub fn secret(id: &str, name: &str, data: &[u8]) -> Secret {
    Secret {
        id: id.into(),
        spec: Some(SecretSpec {
            annotations: Some(Annotations {
                name: name.into(),
                labels: Default::default(),
            }),
            data: data.to_vec(),
        }),
        ..Default::default()
    }
}

/// A config named `name` holding `data`.
pub fn config(id: &str, name: &str, data: &[u8]) -> Config {
    Config {
        id: id.into(),
        spec: Some(ConfigSpec {
            annotations: Some(Annotations {
                name: name.into(),
                labels: Default::default(),
            }),
            data: data.to_vec(),
        }),
        ..Default::default()
    }
}

pub trait NetworkFixture: Sized {
    /// Attached to the networks with these IDs.
    fn on_networks(self, network_ids: &[&str]) -> Self;
}

fn attachments(network_ids: &[&str]) -> Vec<NetworkAttachmentConfig> {
    network_ids
        .iter()
        .map(|n| NetworkAttachmentConfig {
            target: n.to_string(),
            aliases: Vec::new(),
        })
        .collect()
}

impl NetworkFixture for Service {
    fn on_networks(mut self, network_ids: &[&str]) -> Service {
        if let Some(t) = self.spec.as_mut().and_then(|s| s.task.as_mut()) {
            t.networks = attachments(network_ids);
        }
        self
    }
}

impl NetworkFixture for Task {
    fn on_networks(mut self, network_ids: &[&str]) -> Task {
        self.spec.get_or_insert_with(Default::default).networks = attachments(network_ids);
        self
    }
}
