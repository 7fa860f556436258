#![allow(clippy::unwrap_used)]
//! Tasks of one spec version hold one copy of their spec: the store hands each task decoded
//! from the log the copy it already holds (the task's previous row, its service's spec), in the
//! row and in the watch event alike, and after a restore. A task whose spec differs keeps its own.

use prost::Message;
use swarm_api::*;
use swarm_store::{Change, Store, Txn};
use swarm_testkit::fixtures::{self, service, TaskFixture};

/// Applies `txn` as a follower sees it: decoded from the bytes of the log entry, so nothing it
/// holds is shared with anything yet.
fn apply_from_log(s: &Store, index: u64, txn: Txn) {
    let b = txn.into_batch();
    s.apply(
        index,
        &StoreBatch::decode(b.encode_to_vec().as_slice()).unwrap(),
    )
    .unwrap();
}

/// A store holding `svc`, written through the log.
fn store_with(svc: &Service) -> Store {
    let s = Store::new();
    apply_from_log(&s, 1, Txn::new().create(svc.clone()));
    s
}

fn task_of(s: &Service, id: &str) -> Task {
    let mut t = fixtures::task(id, &s.id);
    t.spec = s.spec.as_ref().unwrap().task.clone();
    t
}

fn spec_of_task(s: &Store, id: &str) -> SharedTaskSpec {
    s.view(|t| t.tasks.get(id).unwrap().spec.clone().unwrap())
}

fn spec_of_service(s: &Store, id: &str) -> SharedTaskSpec {
    s.view(|t| {
        t.services
            .get(id)
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .task
            .clone()
            .unwrap()
    })
}

#[test]
fn tasks_decoded_from_the_log_share_their_services_spec() {
    let svc = service("s1", "web");
    let s = store_with(&svc);
    let mut watch = s.watch();
    apply_from_log(
        &s,
        2,
        Txn::new()
            .create(task_of(&svc, "t1"))
            .create(task_of(&svc, "t2")),
    );
    let held = spec_of_service(&s, "s1");
    assert!(spec_of_task(&s, "t1").ptr_eq(&held));
    assert!(spec_of_task(&s, "t2").ptr_eq(&held));
    // The watch event carries the same copy as the row.
    let Ok(change) = watch.try_recv() else {
        panic!("no change seen")
    };
    let Change::Batch { events, .. } = &*change else {
        panic!("not a batch: {change:?}")
    };
    for e in events {
        let Some(store_object::Object::Task(t)) = e.object.object.as_ref() else {
            panic!("not a task")
        };
        assert!(t.spec.as_ref().unwrap().ptr_eq(&held), "event of {}", t.id);
    }

    // A status report re-sends the whole task: it keeps the shared copy.
    let mut running = s.view(|t| t.tasks.get("t1").cloned()).unwrap();
    running = running.on("n1").in_state(TaskState::Running);
    apply_from_log(&s, 3, Txn::new().update(running));
    assert!(spec_of_task(&s, "t1").ptr_eq(&held));
}

#[test]
fn a_different_spec_keeps_its_own_copy_and_content() {
    let svc = service("s1", "web");
    let s = store_with(&svc);
    let other = task_of(&svc, "t1").with_image("nginx");
    apply_from_log(&s, 2, Txn::new().create(other));
    let spec = spec_of_task(&s, "t1");
    assert!(!spec.ptr_eq(&spec_of_service(&s, "s1")));
    assert_eq!(spec.container.as_ref().unwrap().image, "nginx");
}

#[test]
fn tasks_of_the_previous_spec_and_a_restore_share_too() {
    let svc = service("s1", "web");
    let s = store_with(&svc);
    // The service moves to a new image; its old spec is kept as the previous one.
    let mut updated = s.view(|t| t.services.get("s1").cloned()).unwrap();
    updated.previous_spec = updated.spec.clone();
    updated
        .spec
        .as_mut()
        .unwrap()
        .task
        .as_mut()
        .unwrap()
        .container = Some(ContainerSpec {
        image: "nginx".into(),
        ..Default::default()
    });
    apply_from_log(&s, 2, Txn::new().update(updated.clone()));
    let old = task_of(&service("s1", "web"), "t-old");
    let new = task_of(&updated, "t-new");
    apply_from_log(&s, 3, Txn::new().create(old).create(new));
    let previous = s.view(|t| {
        let svc = t.services.get("s1").unwrap();
        svc.previous_spec.clone().unwrap().task.unwrap()
    });
    assert!(spec_of_task(&s, "t-old").ptr_eq(&previous));
    assert!(spec_of_task(&s, "t-new").ptr_eq(&spec_of_service(&s, "s1")));

    // A manager restoring a snapshot decodes every task anew.
    let snap = StoreSnapshot::decode(s.snapshot().encode_to_vec().as_slice()).unwrap();
    let restored = Store::new();
    restored.restore(snap);
    assert!(spec_of_task(&restored, "t-new").ptr_eq(&spec_of_service(&restored, "s1")));
    // And one rebuilding its tables from the bytes a row at a time.
    let rows = Store::new();
    rows.restore_tables(swarm_store::Tables::from_snapshot_bytes(&s.snapshot_bytes()).unwrap());
    assert!(spec_of_task(&rows, "t-new").ptr_eq(&spec_of_service(&rows, "s1")));
    assert_eq!(
        spec_of_task(&restored, "t-old")
            .container
            .as_ref()
            .unwrap()
            .image,
        "busybox"
    );
}
