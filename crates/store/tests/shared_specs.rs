#![allow(clippy::unwrap_used)]
//! Tasks of one spec version hold one copy of their spec: the store hands each task decoded
//! from the log the copy it already holds (the task's previous row, its service's spec), in the
//! row and in the watch event alike, and after a restore. A task whose spec differs keeps its own.

use prost::Message;
use swarm_api::*;
use swarm_store::{Change, Store, Txn};
use swarm_testkit::fixtures::{self, service, TaskFixture};

/// As a follower sees a batch: decoded from the bytes of the log entry, so nothing it holds is
/// shared with anything yet.
fn from_log(b: StoreBatch) -> StoreBatch {
    StoreBatch::decode(b.encode_to_vec().as_slice()).unwrap()
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
            .clone()
            .unwrap()
            .task
            .unwrap()
    })
}

#[test]
fn tasks_decoded_from_the_log_share_their_services_spec() {
    let s = Store::new();
    let svc = service("s1", "web");
    s.apply(1, &from_log(Txn::new().create(svc.clone()).into_batch()))
        .unwrap();
    let mut watch = s.watch();
    s.apply(
        2,
        &from_log(
            Txn::new()
                .create(task_of(&svc, "t1"))
                .create(task_of(&svc, "t2"))
                .into_batch(),
        ),
    )
    .unwrap();
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
    s.apply(3, &from_log(Txn::new().update(running).into_batch()))
        .unwrap();
    assert!(spec_of_task(&s, "t1").ptr_eq(&held));
}

#[test]
fn a_different_spec_keeps_its_own_copy_and_content() {
    let s = Store::new();
    let svc = service("s1", "web");
    s.apply(1, &from_log(Txn::new().create(svc.clone()).into_batch()))
        .unwrap();
    let other = task_of(&svc, "t1").with_image("nginx");
    s.apply(2, &from_log(Txn::new().create(other).into_batch()))
        .unwrap();
    let spec = spec_of_task(&s, "t1");
    assert!(!spec.ptr_eq(&spec_of_service(&s, "s1")));
    assert_eq!(spec.container.as_ref().unwrap().image, "nginx");
}

#[test]
fn tasks_of_the_previous_spec_and_a_restore_share_too() {
    let s = Store::new();
    let svc = service("s1", "web");
    s.apply(1, &from_log(Txn::new().create(svc.clone()).into_batch()))
        .unwrap();
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
    s.apply(
        2,
        &from_log(Txn::new().update(updated.clone()).into_batch()),
    )
    .unwrap();
    let old = task_of(&service("s1", "web"), "t-old");
    let new = task_of(&updated, "t-new");
    s.apply(
        3,
        &from_log(Txn::new().create(old).create(new).into_batch()),
    )
    .unwrap();
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
    assert_eq!(
        spec_of_task(&restored, "t-old")
            .container
            .as_ref()
            .unwrap()
            .image,
        "busybox"
    );
}
