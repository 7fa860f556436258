//! What every stored object has in common: an ID, a meta, a table it belongs to.

use swarm_api::{
    store_object::Object, Cluster, Config, Meta, Network, Node, Secret, Service, StoreObject, Task,
};

/// The tables of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    Node,
    Service,
    Task,
    Cluster,
    Secret,
    Config,
    Network,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Node => "node",
            Kind::Service => "service",
            Kind::Task => "task",
            Kind::Cluster => "cluster",
            Kind::Secret => "secret",
            Kind::Config => "config",
            Kind::Network => "network",
        })
    }
}

pub trait StoreItem: Clone + Send + Sync + 'static {
    const KIND: Kind;
    fn id(&self) -> &str;
    fn meta(&self) -> Option<&Meta>;
    fn meta_mut(&mut self) -> &mut Meta;
    /// Name that must be unique within the table, if the table has unique names.
    fn unique_name(&self) -> Option<&str>;
    fn into_object(self) -> StoreObject;
}

fn meta_mut(m: &mut Option<Meta>) -> &mut Meta {
    m.get_or_insert_with(Meta::default)
}

macro_rules! item {
    ($ty:ty, $kind:ident, $variant:ident, |$s:ident| $name:expr) => {
        impl StoreItem for $ty {
            const KIND: Kind = Kind::$kind;
            fn id(&self) -> &str {
                &self.id
            }
            fn meta(&self) -> Option<&Meta> {
                self.meta.as_ref()
            }
            fn meta_mut(&mut self) -> &mut Meta {
                meta_mut(&mut self.meta)
            }
            fn unique_name(&self) -> Option<&str> {
                let $s = self;
                $name
            }
            fn into_object(self) -> StoreObject {
                StoreObject {
                    object: Some(Object::$variant(Box::new(self))),
                }
            }
        }
    };
}

item!(Node, Node, Node, |_s| None);
item!(Task, Task, Task, |_s| None);
item!(Service, Service, Service, |s| s
    .spec
    .as_ref()
    .and_then(|sp| sp.annotations.as_ref())
    .map(|a| a.name.as_str()));
item!(Cluster, Cluster, Cluster, |s| s
    .spec
    .as_ref()
    .and_then(|sp| sp.annotations.as_ref())
    .map(|a| a.name.as_str()));
item!(Secret, Secret, Secret, |s| s
    .spec
    .as_ref()
    .and_then(|sp| sp.annotations.as_ref())
    .map(|a| a.name.as_str()));
item!(Config, Config, Config, |s| s
    .spec
    .as_ref()
    .and_then(|sp| sp.annotations.as_ref())
    .map(|a| a.name.as_str()));

item!(Network, Network, Network, |s| s
    .spec
    .as_ref()
    .and_then(|sp| sp.annotations.as_ref())
    .map(|a| a.name.as_str()));

/// The kind and ID of a store object, if it holds one.
pub fn object_key(o: &StoreObject) -> Option<(Kind, &str)> {
    Some(match o.object.as_ref()? {
        Object::Node(x) => (Kind::Node, x.id.as_str()),
        Object::Service(x) => (Kind::Service, x.id.as_str()),
        Object::Task(x) => (Kind::Task, x.id.as_str()),
        Object::Cluster(x) => (Kind::Cluster, x.id.as_str()),
        Object::Secret(x) => (Kind::Secret, x.id.as_str()),
        Object::Config(x) => (Kind::Config, x.id.as_str()),
        Object::Network(x) => (Kind::Network, x.id.as_str()),
    })
}
