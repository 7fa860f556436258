#![allow(clippy::unwrap_used)]
//! Store behaviour: transactions are atomic, versions are optimistic, indexes follow writes,
//! snapshots round-trip, and watchers see each committed batch.

use proptest::prelude::*;
use swarm_api::*;
use swarm_store::{ApplyError, Change, EventKind, Store, Txn};
use swarm_testkit::fixtures::{self, service, TaskFixture};

fn task(id: &str, service_id: &str, node_id: &str) -> Task {
    fixtures::task(id, service_id).on(node_id)
}

#[test]
fn create_sets_meta_from_index_and_batch_time() {
    let s = Store::new();
    let mut b = Txn::new().create(service("s1", "redis")).into_batch();
    b.timestamp = 1234;
    s.apply(7, &b).unwrap();
    let got = s.view(|t| t.services.get("s1").cloned()).unwrap();
    let m = got.meta.unwrap();
    assert_eq!((m.version, m.created_at, m.updated_at), (7, 1234, 1234));
}

#[test]
fn stale_update_is_refused_and_changes_nothing() {
    let s = Store::new();
    s.apply(1, &Txn::new().create(service("s1", "redis")).into_batch())
        .unwrap();
    let mut fresh = s.view(|t| t.services.get("s1").cloned()).unwrap();
    let stale = fresh.clone();
    fresh.spec_version = 2;
    s.apply(2, &Txn::new().update(fresh).into_batch()).unwrap();
    let mut stale2 = stale;
    stale2.spec_version = 99;
    let err = s
        .apply(3, &Txn::new().update(stale2).into_batch())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ApplyError::Conflict {
                expected: 1,
                actual: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        s.view(|t| t.services.get("s1").map(|x| x.spec_version)),
        Some(2)
    );
}

#[test]
fn failing_action_rolls_back_the_whole_batch() {
    let s = Store::new();
    s.apply(1, &Txn::new().create(service("s1", "redis")).into_batch())
        .unwrap();
    // Second action collides on the name: the first must not stay.
    let b = Txn::new()
        .create(task("t1", "s1", "n1"))
        .create(service("s2", "redis"))
        .into_batch();
    let err = s.apply(2, &b).unwrap_err();
    assert!(matches!(err, ApplyError::NameConflict { .. }));
    assert!(s.view(|t| t.tasks.get("t1").is_none()));
    assert_eq!(s.view(|t| t.tasks_of_service("s1").count()), 0);
    assert_eq!(s.view(|t| t.tasks_of_node("n1").count()), 0);
}

#[test]
fn rollback_restores_removed_and_updated_rows_with_indexes() {
    let s = Store::new();
    s.apply(
        1,
        &Txn::new()
            .create(task("t1", "s1", "n1"))
            .create(task("t2", "s1", "n2"))
            .into_batch(),
    )
    .unwrap();
    let t1 = s.view(|t| t.tasks.get("t1").cloned()).unwrap();
    let mut moved = s.view(|t| t.tasks.get("t2").cloned()).unwrap();
    moved.node_id = "n9".into();
    let b = Txn::new()
        .remove(t1)
        .update(moved)
        .update(task("nope", "", ""))
        .into_batch();
    assert!(matches!(s.apply(2, &b), Err(ApplyError::NotFound { .. })));
    assert_eq!(s.view(|t| t.tasks_of_node("n1").count()), 1);
    assert_eq!(s.view(|t| t.tasks_of_node("n2").count()), 1);
    assert_eq!(s.view(|t| t.tasks_of_node("n9").count()), 0);
}

#[test]
fn renaming_frees_the_old_name() {
    let s = Store::new();
    s.apply(1, &Txn::new().create(service("s1", "a")).into_batch())
        .unwrap();
    let mut x = s.view(|t| t.services.get("s1").cloned()).unwrap();
    x.spec.as_mut().unwrap().annotations.as_mut().unwrap().name = "b".into();
    s.apply(2, &Txn::new().update(x).into_batch()).unwrap();
    assert!(s.view(|t| t.services.by_name("a").is_none()));
    s.apply(3, &Txn::new().create(service("s2", "a")).into_batch())
        .unwrap();
    assert_eq!(
        s.view(|t| t.service_by_id_or_name("b").map(|x| x.id.clone())),
        Some("s1".into())
    );
}

#[tokio::test]
async fn watchers_see_each_batch_in_order() {
    let s = Store::new();
    let (_, mut rx) = s.view_and_watch(|_| ());
    s.apply(
        1,
        &Txn::new()
            .create(service("s1", "a"))
            .create(task("t1", "s1", ""))
            .into_batch(),
    )
    .unwrap();
    let _ = s.apply(2, &Txn::new().create(service("s2", "a")).into_batch()); // refused: no event
    let t = s.view(|t| t.tasks.get("t1").cloned()).unwrap();
    s.apply(3, &Txn::new().remove(t).into_batch()).unwrap();
    let Change::Batch { index, events } = &*rx.recv().await.unwrap() else {
        panic!("restored?")
    };
    assert_eq!(
        (*index, events.len(), events[0].kind),
        (1, 2, EventKind::Create)
    );
    let Change::Batch { index, events } = &*rx.recv().await.unwrap() else {
        panic!("restored?")
    };
    assert_eq!((*index, events[0].kind), (3, EventKind::Remove));
}

/// A group (one Raft entry with several transactions) gives each its own outcome: a refused
/// one leaves no trace, the others land, a second write of an object the first already wrote
/// in the group is a conflict, and watchers see one change for the whole entry.
#[tokio::test]
async fn a_group_lands_each_transaction_on_its_own_under_one_index() {
    let s = Store::new();
    s.apply(1, &Txn::new().create(service("s1", "a")).into_batch())
        .unwrap();
    let (_, mut rx) = s.view_and_watch(|_| ());
    let read = s.view(|t| t.services.get("s1").cloned()).unwrap();
    let mut first = read.clone();
    first.spec_version = 2;
    let mut second = read;
    second.spec_version = 3;
    let results = s.apply_group(
        5,
        &[
            Txn::new().update(first).into_batch(),
            Txn::new().create(service("s2", "a")).into_batch(), // name taken: refused alone
            Txn::new().update(second).into_batch(),             // read version 1, now 5
            Txn::new().create(task("t1", "s1", "n1")).into_batch(),
        ],
    );
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(matches!(results[1], Err(ApplyError::NameConflict { .. })));
    assert!(
        matches!(
            results[2],
            Err(ApplyError::Conflict {
                expected: 1,
                actual: 5,
                ..
            })
        ),
        "{:?}",
        results[2]
    );
    assert!(results[3].is_ok());
    let svc = s.view(|t| t.services.get("s1").cloned()).unwrap();
    assert_eq!((svc.spec_version, svc.meta.unwrap().version), (2, 5));
    assert!(s.view(|t| t.services.get("s2").is_none()));
    assert_eq!(s.view(|t| t.tasks_of_node("n1").count()), 1);
    let Change::Batch { index, events } = &*rx.recv().await.unwrap() else {
        panic!("restored?")
    };
    assert_eq!((*index, events.len()), (5, 2));
    assert!(rx.try_recv().is_err(), "one change per entry");
}

#[derive(Debug, Clone)]
enum Op {
    Create(u8, u8),
    Update(u8, u8, bool),
    Remove(u8, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..8, 0u8..4).prop_map(|(i, n)| Op::Create(i, n)),
        (0u8..8, 0u8..4, any::<bool>()).prop_map(|(i, n, stale)| Op::Update(i, n, stale)),
        (0u8..8, any::<bool>()).prop_map(|(i, stale)| Op::Remove(i, stale)),
    ]
}

proptest! {
    /// Any sequence of batches (some refused) leaves the store equal to a model that applies
    /// only the accepted batches whole; and a snapshot restores exactly that state.
    #[test]
    fn batches_are_atomic_and_snapshots_round_trip(batches in prop::collection::vec(prop::collection::vec(op(), 1..4), 1..30)) {
        let s = Store::new();
        for (i, ops) in batches.iter().enumerate() {
            let index = i as u64 + 1;
            let before = s.snapshot();
            let mut txn = Txn::new();
            for op in ops {
                match *op {
                    Op::Create(id, n) => txn = txn.create(service(&format!("s{id}"), &format!("n{n}"))),
                    Op::Update(id, n, stale) => {
                        let mut x = s.view(|t| t.services.get(&format!("s{id}")).cloned()).unwrap_or_else(|| service(&format!("s{id}"), ""));
                        x.spec.get_or_insert_with(Default::default).annotations.get_or_insert_with(Default::default).name = format!("n{n}");
                        if stale { x.meta.get_or_insert_with(Default::default).version += 1000; }
                        txn = txn.update(x);
                    }
                    Op::Remove(id, stale) => {
                        let mut x = s.view(|t| t.services.get(&format!("s{id}")).cloned()).unwrap_or_else(|| service(&format!("s{id}"), ""));
                        if stale { x.meta.get_or_insert_with(Default::default).version += 1000; }
                        txn = txn.remove(x);
                    }
                }
            }
            let res = s.apply(index, &txn.into_batch());
            if res.is_err() {
                prop_assert_eq!(s.snapshot(), before);
            }
            // Names stay unique and the name index agrees with the rows.
            let ok = s.view(|t| t.services.iter().all(|x| {
                let name = &x.spec.as_ref().unwrap().annotations.as_ref().unwrap().name;
                t.services.by_name(name).map(|y| y.id == x.id).unwrap_or(false)
            }));
            prop_assert!(ok);
        }
        let snap = s.snapshot();
        let restored = Store::new();
        restored.restore(snap.clone());
        prop_assert_eq!(restored.snapshot(), snap.clone());
        let bytes = prost::Message::encode_to_vec(&snap);
        let decoded: StoreSnapshot = prost::Message::decode(bytes.as_slice()).unwrap();
        prop_assert_eq!(decoded, snap);
    }
}

#[derive(Debug, Clone)]
enum TaskOp {
    Create(u8, u8, u8),
    SetState(u8, u8, u8),
    Remove(u8),
}

/// States the indexes care about, and some they do not; `0` means no status at all.
const STATES: [i32; 5] = [
    0,
    TaskState::New as i32,
    TaskState::Pending as i32,
    TaskState::Assigned as i32,
    TaskState::Running as i32,
];

fn with_state(mut x: Task, pick: u8) -> Task {
    let state = STATES[pick as usize % STATES.len()];
    x.status = (pick > 0).then(|| TaskStatus {
        state,
        ..Default::default()
    });
    x
}

const SERVICES: [&str; 2] = ["s0", "s1"];
const NODES: [&str; 3] = ["", "n0", "n1"];
const NETWORKS: [&[&str]; 4] = [&[], &["a"], &["a", "b"], &["b"]];

/// Moves the task: its service, node and networks, each picked from a few.
fn placed(mut x: Task, pick: u8) -> Task {
    let p = pick as usize;
    x.service_id = SERVICES[p % 2].into();
    x.node_id = NODES[(p / 2) % 3].into();
    x.networks = NETWORKS[(p / 6) % 4]
        .iter()
        .map(|n| NetworkAttachment {
            network_id: (*n).into(),
            ..Default::default()
        })
        .collect();
    x
}

fn task_op() -> impl Strategy<Value = TaskOp> {
    prop_oneof![
        (0u8..6, 0u8..5, 0u8..24).prop_map(|(i, s, p)| TaskOp::Create(i, s, p)),
        (0u8..6, 0u8..5, 0u8..24).prop_map(|(i, s, p)| TaskOp::SetState(i, s, p)),
        (0u8..6).prop_map(TaskOp::Remove),
    ]
}

/// Every index of the task table, as the store answers it and as a scan of the rows finds it.
fn indexes_and_scan(t: &swarm_store::Tables) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let ids = |it: &mut dyn Iterator<Item = &Task>| it.map(|x| x.id.clone()).collect::<Vec<_>>();
    let state = |x: &Task| {
        x.status
            .as_ref()
            .map_or(TaskState::New as i32, |st| st.state)
    };
    let mut indexed = vec![ids(&mut t.new_tasks()), ids(&mut t.pending_tasks())];
    let mut scanned = vec![
        ids(&mut t.tasks.iter().filter(|x| state(x) == TaskState::New as i32)),
        ids(&mut t
            .tasks
            .iter()
            .filter(|x| state(x) == TaskState::Pending as i32)),
    ];
    for s in SERVICES {
        indexed.push(ids(&mut t.tasks_of_service(s)));
        scanned.push(ids(&mut t.tasks.iter().filter(|x| x.service_id == s)));
    }
    for n in NODES.iter().filter(|n| !n.is_empty()) {
        indexed.push(ids(&mut t.tasks_of_node(n)));
        scanned.push(ids(&mut t.tasks.iter().filter(|x| x.node_id == *n)));
    }
    for n in ["a", "b"] {
        indexed.push(ids(&mut t.tasks_of_network(n)));
        scanned.push(ids(&mut t
            .tasks
            .iter()
            .filter(|x| x.networks.iter().any(|a| a.network_id == n))));
    }
    (indexed, scanned)
}

proptest! {
    /// Whatever is written (batches refused halfway included), every task index (NEW,
    /// PENDING, by service, by node, by network) holds exactly the tasks a scan of the rows
    /// finds, in ID order.
    #[test]
    fn task_indexes_agree_with_a_scan(batches in prop::collection::vec(prop::collection::vec(task_op(), 1..4), 1..30)) {
        let s = Store::new();
        for (i, ops) in batches.iter().enumerate() {
            let mut txn = Txn::new();
            let current = |id: u8| {
                s.view(|t| t.tasks.get(&format!("t{id}")).cloned())
                    .unwrap_or_else(|| task(&format!("t{id}"), "s0", ""))
            };
            for op in ops {
                match *op {
                    TaskOp::Create(id, st, p) => {
                        txn = txn.create(with_state(placed(task(&format!("t{id}"), "s0", ""), p), st))
                    }
                    TaskOp::SetState(id, st, p) => txn = txn.update(with_state(placed(current(id), p), st)),
                    TaskOp::Remove(id) => txn = txn.remove(current(id)),
                }
            }
            let _ = s.apply(i as u64 + 1, &txn.into_batch());
            let (indexed, scanned) = s.view(indexes_and_scan);
            prop_assert_eq!(indexed, scanned);
        }
    }
}
