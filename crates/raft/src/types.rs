//! The openraft type configuration and the log entry payload. Owns the mapping between our
//! store types and openraft's generic parameters; holds no state.

use std::io::Cursor;

use prost::Message;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use swarm_api::{StoreBatch, StoreObject};
use swarm_store::ApplyError;

/// What applying one log entry produced, handed back to the proposer.
pub(crate) type ApplyResult = Result<Vec<StoreObject>, ApplyError>;

openraft::declare_raft_types!(
    /// Type configuration of our Raft group.
    pub(crate) TypeConfig:
        D = Proposal,
        R = ApplyResult,
);

pub(crate) type NodeId = u64;
pub(crate) type Node = openraft::BasicNode;
pub(crate) type OpenRaft = openraft::Raft<TypeConfig>;
pub(crate) type Entry = openraft::Entry<TypeConfig>;
pub(crate) type LogId = openraft::LogId<NodeId>;
pub(crate) type Vote = openraft::Vote<NodeId>;
pub(crate) type StorageError = openraft::StorageError<NodeId>;
pub(crate) type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub(crate) type Snapshot = openraft::Snapshot<TypeConfig>;

/// One store transaction as carried by a log entry.
///
/// It serializes as the batch's protobuf bytes rather than through serde's view of the generated
/// struct: protobuf tolerates added fields, so logs written by an older build still decode after
/// the API grows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Proposal(pub(crate) StoreBatch);

impl Serialize for Proposal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0.encode_to_vec())
    }
}

impl<'de> Deserialize<'de> for Proposal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> serde::de::Visitor<'de> for BytesVisitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("protobuf-encoded StoreBatch bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            // Self-describing formats (JSON) hand bytes over as a sequence of numbers.
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        let bytes = deserializer.deserialize_bytes(BytesVisitor)?;
        StoreBatch::decode(bytes.as_slice())
            .map(Proposal)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn proposal_round_trips_through_bincode_and_json() {
        let p = Proposal(StoreBatch {
            actions: vec![],
            timestamp: 42,
        });
        let back: Proposal = crate::codec::decode(&crate::codec::encode(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        let back: Proposal = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
