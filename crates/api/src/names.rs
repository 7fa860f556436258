//! What every object is called, read one way everywhere: the name in its annotations (a
//! task's own, the spec's for the rest), "" when it has none. A node is known by its spec
//! name, else its hostname ([`node_name`]).

use crate::{Cluster, Config, Network, Node, Secret, Service, Task};

pub trait Named {
    /// The object's name, "" when it has none.
    fn name(&self) -> &str;
}

macro_rules! named_by_spec {
    ($($t:ty),*) => {$(
        impl Named for $t {
            fn name(&self) -> &str {
                self.spec
                    .as_ref()
                    .and_then(|s| s.annotations.as_ref())
                    .map(|a| a.name.as_str())
                    .unwrap_or("")
            }
        }
    )*};
}

named_by_spec!(Node, Service, Cluster, Secret, Config, Network);

impl Named for Task {
    fn name(&self) -> &str {
        self.annotations
            .as_ref()
            .map(|a| a.name.as_str())
            .unwrap_or("")
    }
}

/// A task's name as operators see it: its own name when it has one, else `<service>.<slot>`
/// for a replica and `<service>.<node ID>` for a global service's task.
pub fn task_name(t: &Task) -> String {
    match t.name() {
        "" if t.slot > 0 => format!("{}.{}", t.service_name, t.slot),
        "" => format!("{}.{}", t.service_name, t.node_id),
        name => name.to_string(),
    }
}

/// A node's name as operators see it: its spec name, else its hostname.
pub fn node_name(n: &Node) -> &str {
    match n.name() {
        "" => n
            .description
            .as_ref()
            .map(|d| d.hostname.as_str())
            .unwrap_or(""),
        name => name,
    }
}
