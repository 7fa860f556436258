//! The Control API's `Watch` against a store with no Raft (`MemoryProposer`): each committed
//! transaction arrives as one message with its events of the kinds asked for, objects
//! redacted as Get redacts them (a secret's data never leaves), and an unknown kind is
//! refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;
use swarm_api::control_server::Control;
use swarm_api::store_object::Object;
use swarm_api::*;
use swarm_manager::control::ControlApi;
use swarm_manager::{AlwaysLeader, Proposer};
use swarm_store::Store;
use swarm_testkit::MemoryProposer;
use tokio_stream::StreamExt;
use tonic::{Code, Request};

const DATA: &[u8] = b"watch-me-never-see-me";

fn api() -> ControlApi {
    let store = Store::new();
    let proposer: Arc<dyn Proposer> = MemoryProposer::new(store.clone());
    ControlApi::new(store, proposer, Arc::new(AlwaysLeader))
}

fn annotations(name: &str) -> Option<Annotations> {
    Some(Annotations {
        name: name.into(),
        ..Default::default()
    })
}

async fn next(s: &mut tonic::codegen::BoxStream<WatchMessage>) -> WatchMessage {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn watch_streams_redacted_events_of_the_kinds_asked_for() {
    let api = api();
    let watch = |kinds: &[&str]| {
        api.watch(Request::new(WatchRequest {
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
        }))
    };
    let mut secrets = watch(&["secret"]).await.unwrap().into_inner();
    let mut configs = watch(&["config"]).await.unwrap().into_inner();
    let bad = match watch(&["container"]).await {
        Err(e) => e,
        Ok(_) => panic!("an unknown kind must be refused"),
    };
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("kinds:"), "{bad:?}");

    let secret = api
        .create_secret(Request::new(CreateSecretRequest {
            spec: Some(SecretSpec {
                annotations: annotations("db"),
                data: DATA.to_vec(),
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .secret
        .unwrap();
    api.create_config(Request::new(CreateConfigRequest {
        spec: Some(ConfigSpec {
            annotations: annotations("app.conf"),
            data: b"port=80".to_vec(),
        }),
    }))
    .await
    .unwrap();
    api.remove_secret(Request::new(RemoveSecretRequest {
        secret_id: "db".into(),
    }))
    .await
    .unwrap();

    let created = next(&mut secrets).await;
    assert_eq!(created.events.len(), 1);
    assert_eq!(created.events[0].action, "create");
    assert!(created.index > 0 && created.timestamp_ms > 0);
    let Some(Object::Secret(s)) = created.events[0].object.clone().unwrap().object else {
        panic!("{created:?}");
    };
    assert_eq!(s.id, secret.id);
    assert!(
        s.spec.unwrap().data.is_empty(),
        "a watched secret is redacted"
    );
    // The config's transaction is not on the secrets' stream: the next is the removal.
    let removed = next(&mut secrets).await;
    assert_eq!(removed.events[0].action, "remove");
    assert!(!format!("{removed:?}").contains("watch-me"));
    let config = next(&mut configs).await;
    assert_eq!(config.events[0].action, "create");
    let Some(Object::Config(c)) = config.events[0].object.clone().unwrap().object else {
        panic!("{config:?}");
    };
    assert_eq!(c.spec.unwrap().data, b"port=80");
}
