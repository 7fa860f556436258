//! What changed in an update event, as Docker's attributes show it: for a node its
//! availability, role, state, leadership and reachability (`availability.old`,
//! `availability.new`, ...), for a service its image, replica count and update state
//! (`image.old`, `replicas.new`, `updatestate.new`, ...). Only changed values are given;
//! the old object is what the events stream saw last. Pure functions.

use super::{availability_name, node_state_name, reachability_name, role_name, update_state_name};
use std::collections::BTreeMap;
use swarm_api::service_spec::Mode;
use swarm_api::store_object::Object;
use swarm_api::{Node, Service};

type Attrs = BTreeMap<String, String>;

fn changed(out: &mut Attrs, key: &str, old: &str, new: &str) {
    if old != new {
        out.insert(format!("{key}.old"), old.to_string());
        out.insert(format!("{key}.new"), new.to_string());
    }
}

fn node(old: &Node, new: &Node) -> Attrs {
    let mut out = Attrs::new();
    let avail = |n: &Node| availability_name(n.spec.as_ref().map(|s| s.availability).unwrap_or(0));
    changed(&mut out, "availability", avail(old), avail(new));
    changed(&mut out, "role", role_name(old.role), role_name(new.role));
    let state = |n: &Node| node_state_name(n.status.as_ref().map(|s| s.state).unwrap_or(0));
    changed(&mut out, "state", state(old), state(new));
    // Between two manager states only, as Docker: a promotion is the role's change.
    if let (Some(o), Some(n)) = (&old.manager_status, &new.manager_status) {
        changed(
            &mut out,
            "leader",
            &o.leader.to_string(),
            &n.leader.to_string(),
        );
        changed(
            &mut out,
            "reachability",
            reachability_name(o.reachability),
            reachability_name(n.reachability),
        );
    }
    out
}

fn image(s: &Service) -> Option<&str> {
    let c = s.spec.as_ref()?.task.as_ref()?.container.as_ref()?;
    Some(c.image.as_str())
}

fn replicas(s: &Service) -> Option<u64> {
    match s.spec.as_ref()?.mode.as_ref()? {
        Mode::Replicated(r) => Some(r.replicas),
        _ => None,
    }
}

fn service(old: &Service, new: &Service) -> Attrs {
    let mut out = Attrs::new();
    if let (Some(o), Some(n)) = (image(old), image(new)) {
        changed(&mut out, "image", o, n);
    }
    if let (Some(o), Some(n)) = (replicas(old), replicas(new)) {
        changed(&mut out, "replicas", &o.to_string(), &n.to_string());
    }
    let state = |s: &Service| {
        s.update_status
            .as_ref()
            .and_then(|u| update_state_name(u.state))
    };
    match (state(old), state(new)) {
        (None, Some(n)) => {
            out.insert("updatestate.new".into(), n.to_string());
        }
        (Some(o), Some(n)) => changed(&mut out, "updatestate", o, n),
        _ => {}
    }
    out
}

/// The attributes an update from `old` to `new` adds to the event's `name`.
pub fn update_attributes(old: &Object, new: &Object) -> Attrs {
    match (old, new) {
        (Object::Node(o), Object::Node(n)) => node(o, n),
        (Object::Service(o), Object::Service(n)) => service(o, n),
        _ => Attrs::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_api::*;

    fn svc(image: &str, replicas: u64, state: Option<UpdateState>) -> Object {
        Object::Service(Box::new(Service {
            spec: Some(ServiceSpec {
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
                ..Default::default()
            }),
            update_status: state.map(|s| UpdateStatus {
                state: s as i32,
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    fn pairs(a: &Attrs) -> Vec<(&str, &str)> {
        a.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn a_service_update_names_what_changed() {
        let a = update_attributes(
            &svc("busybox:1", 1, None),
            &svc("busybox:2", 3, Some(UpdateState::Updating)),
        );
        assert_eq!(
            pairs(&a),
            [
                ("image.new", "busybox:2"),
                ("image.old", "busybox:1"),
                ("replicas.new", "3"),
                ("replicas.old", "1"),
                ("updatestate.new", "updating"),
            ]
        );
        let same = svc("busybox:1", 1, Some(UpdateState::Completed));
        assert!(update_attributes(&same, &same).is_empty());
    }

    #[test]
    fn a_node_update_names_what_changed() {
        let n = |avail: NodeAvailability, state: NodeState, leader: bool| {
            Object::Node(Box::new(Node {
                spec: Some(NodeSpec {
                    availability: avail as i32,
                    ..Default::default()
                }),
                status: Some(NodeStatus {
                    state: state as i32,
                    ..Default::default()
                }),
                role: NodeRole::Manager as i32,
                manager_status: Some(ManagerStatus {
                    leader,
                    ..Default::default()
                }),
                ..Default::default()
            }))
        };
        let a = update_attributes(
            &n(NodeAvailability::Active, NodeState::Ready, true),
            &n(NodeAvailability::Drain, NodeState::Down, false),
        );
        assert_eq!(
            pairs(&a),
            [
                ("availability.new", "drain"),
                ("availability.old", "active"),
                ("leader.new", "false"),
                ("leader.old", "true"),
                ("state.new", "down"),
                ("state.old", "ready"),
            ]
        );
    }
}
