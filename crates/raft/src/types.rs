//! The openraft type configuration and the log entry payload. Owns the mapping between our
//! store types and openraft's generic parameters; holds no state.

use std::io::Cursor;

use prost::Message;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use swarm_api::{StoreBatch, StoreObject};
use swarm_store::ApplyError;

/// What applying one log entry produced: one result per transaction it carries, in order,
/// handed back to each proposer.
pub(crate) type ApplyResult = Vec<Result<Vec<StoreObject>, ApplyError>>;

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

/// The store transactions one log entry carries: one, or several proposed concurrently and
/// committed together (group commit, see `group_commit`), each applied on its own.
///
/// A single transaction serializes as the batch's protobuf bytes rather than through serde's
/// view of the generated struct: protobuf tolerates added fields, so logs written by an older
/// build still decode after the API grows. It is also exactly what builds before group commit
/// wrote. Several are [`GROUP_TAG`], a format version byte, then each batch length-delimited.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Proposal(pub(crate) Vec<StoreBatch>);

/// First byte of a group. A protobuf message never starts with 0 (field number 0 is invalid),
/// so a group cannot be mistaken for one batch, and a build without group commit refuses it
/// instead of applying an empty batch in its place.
const GROUP_TAG: u8 = 0;
const GROUP_FORMAT: u8 = 1;

impl Proposal {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        match self.0.as_slice() {
            [one] => one.encode_to_vec(),
            many => {
                let len: usize = many.iter().map(|b| b.encoded_len() + 5).sum();
                let mut out = Vec::with_capacity(2 + len);
                out.extend_from_slice(&[GROUP_TAG, GROUP_FORMAT]);
                for b in many {
                    // Writing into a Vec cannot run out of room.
                    let _ = b.encode_length_delimited(&mut out);
                }
                out
            }
        }
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Proposal, String> {
        match bytes {
            [GROUP_TAG, GROUP_FORMAT, rest @ ..] => {
                let mut buf = rest;
                let mut batches = Vec::new();
                while !buf.is_empty() {
                    let b = StoreBatch::decode_length_delimited(&mut buf)
                        .map_err(|e| format!("transaction {} of a group: {e}", batches.len()))?;
                    batches.push(b);
                }
                if batches.len() < 2 {
                    return Err(format!("a group of {} transactions", batches.len()));
                }
                Ok(Proposal(batches))
            }
            [GROUP_TAG, version, ..] => Err(format!(
                "group format {version} is newer than this build reads"
            )),
            [GROUP_TAG] => Err("truncated group".into()),
            one => StoreBatch::decode(one)
                .map(|b| Proposal(vec![b]))
                .map_err(|e| e.to_string()),
        }
    }
}

impl Serialize for Proposal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
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
        Proposal::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn batch(ts: i64) -> StoreBatch {
        StoreBatch {
            actions: vec![swarm_api::StoreAction {
                kind: 1,
                object: Some(StoreObject {
                    object: Some(swarm_api::store_object::Object::Service(Box::new(
                        swarm_api::Service {
                            id: format!("s{ts}"),
                            ..Default::default()
                        },
                    ))),
                }),
            }],
            timestamp: ts,
        }
    }

    #[test]
    fn proposal_round_trips_through_bincode_and_json() {
        for p in [
            Proposal(vec![StoreBatch {
                actions: vec![],
                timestamp: 42,
            }]),
            Proposal(vec![batch(1)]),
            Proposal(vec![batch(1), batch(2), batch(3)]),
        ] {
            let back: Proposal = crate::codec::decode(&crate::codec::encode(&p).unwrap()).unwrap();
            assert_eq!(back, p);
            let back: Proposal = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
            assert_eq!(back, p);
        }
    }

    /// Entries written before group commit are one batch's bytes: they must read the same, and
    /// a lone proposal must still be written that way.
    #[test]
    fn a_single_transaction_keeps_the_format_before_groups() {
        let b = batch(7);
        assert_eq!(Proposal(vec![b.clone()]).to_bytes(), b.encode_to_vec());
        assert_eq!(
            Proposal::from_bytes(&b.encode_to_vec()).unwrap(),
            Proposal(vec![b])
        );
    }

    /// A group is refused, not misread, by a reader that expects one batch (as a build before
    /// group commit does), and damaged or future groups are refused with a reason.
    #[test]
    fn groups_cannot_pass_for_one_batch_and_bad_groups_are_refused() {
        let group = Proposal(vec![batch(1), batch(2)]).to_bytes();
        assert!(StoreBatch::decode(group.as_slice()).is_err());
        let err = Proposal::from_bytes(&group[..group.len() - 3]).unwrap_err();
        assert!(err.contains("transaction 1 of a group"), "{err}");
        let mut future = group.clone();
        future[1] = 9;
        let err = Proposal::from_bytes(&future).unwrap_err();
        assert!(err.contains("group format 9"), "{err}");
        assert!(Proposal::from_bytes(&[0]).is_err());
        let lone = Proposal::from_bytes(&[0, 1]).unwrap_err();
        assert!(lone.contains("a group of 0"), "{lone}");
    }
}
