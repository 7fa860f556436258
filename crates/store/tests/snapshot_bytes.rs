//! `Store::snapshot_bytes` encodes the tables straight to a `StoreSnapshot`'s bytes: they must
//! be exactly what encoding a copy gives, for every kind of object, and decode to the state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use prost::Message;
use swarm_api::*;
use swarm_store::{Store, Tables, Txn};
use swarm_testkit::fixtures::{self, NodeFixture, TaskFixture};

/// A store holding every kind of object, 50 tasks among them.
fn filled() -> Store {
    let s = Store::new();
    let mut txn = Txn::new()
        .create(fixtures::node("n2"))
        .create(fixtures::node("n1").with_manager_role("10.0.0.1:4242"))
        .create(fixtures::service("s1", "web"))
        .create(fixtures::service("s0", "db"))
        .create(fixtures::network("net1", "front", "10.1.0.0/24"))
        .create(Cluster {
            id: "c1".into(),
            ..Default::default()
        })
        .create(fixtures::secret("sec1", "pw", b"hunter2"))
        .create(fixtures::config("cfg1", "conf", b"x=1"));
    for i in (0..50).rev() {
        let service = if i % 2 == 0 { "s0" } else { "s1" };
        let node = format!("n{}", 1 + i % 2);
        txn = txn.create(fixtures::task(&format!("t{i:03}"), service).on(&node));
    }
    s.apply(1, &txn.into_batch()).unwrap();
    s
}

#[test]
fn snapshot_bytes_are_the_encoded_copy_for_every_kind_of_object() {
    let s = filled();
    let bytes = s.snapshot_bytes();
    assert_eq!(bytes, s.snapshot().encode_to_vec());
    let decoded = StoreSnapshot::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded, s.snapshot());
    assert_eq!(decoded.tasks.len(), 50);
    assert_eq!(
        (
            decoded.nodes.len(),
            decoded.services.len(),
            decoded.networks.len()
        ),
        (2, 2, 1)
    );
    assert_eq!(
        (
            decoded.clusters.len(),
            decoded.secrets.len(),
            decoded.configs.len()
        ),
        (1, 1, 1)
    );
    // An empty store encodes to nothing, as an empty message does.
    assert!(Store::new().snapshot_bytes().is_empty());
}

/// Tables rebuilt from the bytes a row at a time hold the state the decoded copy gives (encoded
/// again: the same bytes); damaged bytes are an error, and fields a later release may add are
/// skipped.
#[test]
fn tables_read_from_the_bytes_a_row_at_a_time_are_the_decoded_state() {
    let bytes = filled().snapshot_bytes();
    let rows = Tables::from_snapshot_bytes(&bytes).unwrap();
    assert_eq!(rows.encode_snapshot(), bytes);
    assert_eq!(rows.tasks.len(), 50);
    let copy = Tables::from_snapshot(StoreSnapshot::decode(bytes.as_slice()).unwrap());
    assert_eq!(copy.encode_snapshot(), bytes);

    assert!(Tables::from_snapshot_bytes(&bytes[..bytes.len() - 3]).is_err());
    // A varint field 15 in front, which no release writes yet.
    let mut unknown = vec![15 << 3, 1];
    unknown.extend_from_slice(&bytes);
    assert_eq!(
        Tables::from_snapshot_bytes(&unknown)
            .unwrap()
            .encode_snapshot(),
        bytes
    );
    assert!(Tables::from_snapshot_bytes(&[]).unwrap().tasks.is_empty());
}
