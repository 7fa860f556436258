//! A task spec held through an `Arc`: the type of `Task.spec` and `ServiceSpec.task`.
//!
//! A service's tasks of one spec version carry the same spec, and a manager holds every task
//! (the store, the dispatcher's per-node copies, watch events). As an inline prost message the
//! spec made up most of a task's memory; shared, a task holds a pointer. On the wire it is a
//! `TaskSpec`, byte for byte. Cloning shares; writing through `DerefMut` copies first if
//! others hold it (copy on write), so no holder ever sees another's change. Deciding *what*
//! to share is the store's job (it hands a decoded task the copy it already holds); this
//! module only makes sharing possible.

use crate::v1::TaskSpec;
use prost::bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType};
use prost::DecodeError;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// A [`TaskSpec`] that clones by sharing.
#[derive(Clone, Default, PartialEq)]
pub struct SharedTaskSpec(Arc<TaskSpec>);

impl SharedTaskSpec {
    pub fn new(spec: TaskSpec) -> SharedTaskSpec {
        SharedTaskSpec(Arc::new(spec))
    }

    /// Whether both hold the very same copy.
    pub fn ptr_eq(&self, other: &SharedTaskSpec) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Holds `other`'s copy instead of its own when they are equal; says whether it does now.
    pub fn share_with(&mut self, other: &SharedTaskSpec) -> bool {
        if self.ptr_eq(other) {
            return true;
        }
        if *self.0 == *other.0 {
            self.0 = Arc::clone(&other.0);
            return true;
        }
        false
    }

    /// The spec, copied out only if others still hold it.
    pub fn into_inner(self) -> TaskSpec {
        Arc::unwrap_or_clone(self.0)
    }
}

impl From<TaskSpec> for SharedTaskSpec {
    fn from(spec: TaskSpec) -> SharedTaskSpec {
        SharedTaskSpec::new(spec)
    }
}

impl Deref for SharedTaskSpec {
    type Target = TaskSpec;
    fn deref(&self) -> &TaskSpec {
        &self.0
    }
}

impl DerefMut for SharedTaskSpec {
    fn deref_mut(&mut self) -> &mut TaskSpec {
        Arc::make_mut(&mut self.0)
    }
}

impl std::fmt::Debug for SharedTaskSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for SharedTaskSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for SharedTaskSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TaskSpec::deserialize(d).map(SharedTaskSpec::new)
    }
}

impl prost::Message for SharedTaskSpec {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.0.encode_raw(buf)
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        // A freshly decoded spec is held by nobody else, so this copies nothing.
        Arc::make_mut(&mut self.0).merge_field(tag, wire_type, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.encoded_len()
    }

    fn clear(&mut self) {
        *self = SharedTaskSpec::default();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::v1::{ContainerSpec, Task};
    use prost::Message;

    fn spec(image: &str) -> TaskSpec {
        TaskSpec {
            container: Some(ContainerSpec {
                image: image.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn encodes_exactly_as_a_task_spec() {
        let plain = spec("busybox");
        let shared = SharedTaskSpec::new(plain.clone());
        assert_eq!(shared.encode_to_vec(), plain.encode_to_vec());
        let back = SharedTaskSpec::decode(plain.encode_to_vec().as_slice()).unwrap();
        assert_eq!(*back, plain);
        let task = Task {
            spec: Some(shared),
            ..Default::default()
        };
        let decoded = Task::decode(task.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, task);
    }

    #[test]
    fn a_write_through_one_holder_leaves_the_others_alone() {
        let a = SharedTaskSpec::new(spec("one"));
        let mut b = a.clone();
        assert!(a.ptr_eq(&b));
        b.container = Some(ContainerSpec {
            image: "two".into(),
            ..Default::default()
        });
        assert_eq!(a.container.as_ref().unwrap().image, "one");
        assert_eq!(b.container.as_ref().unwrap().image, "two");
        assert!(!a.ptr_eq(&b));
    }

    #[test]
    fn equal_specs_come_to_share_one_copy_and_different_ones_do_not() {
        let a = SharedTaskSpec::new(spec("one"));
        let mut same = SharedTaskSpec::new(spec("one"));
        let mut other = SharedTaskSpec::new(spec("two"));
        assert!(!same.ptr_eq(&a));
        assert!(same.share_with(&a));
        assert!(same.ptr_eq(&a));
        assert!(!other.share_with(&a));
        assert_eq!(other.container.as_ref().unwrap().image, "two");
    }
}
