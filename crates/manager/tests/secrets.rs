//! The Control API's secrets and configs against a store with no Raft (`MemoryProposer`):
//! data never comes back for secrets, names are unique, a used secret cannot be removed, and
//! service specs may only name secrets that exist, an update changes labels only and must carry
//! the version it read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use swarm_api::control_server::Control;
use swarm_api::service_spec::Mode;
use swarm_api::*;
use swarm_manager::control::ControlApi;
use swarm_manager::{AlwaysLeader, Proposer};
use swarm_store::{Store, Txn};
use swarm_testkit::MemoryProposer;
use tonic::{Code, Request};

const DATA: &[u8] = b"s3cr3t-value-do-not-print";

fn api() -> (ControlApi, Store) {
    let store = Store::new();
    let proposer: Arc<dyn Proposer> = MemoryProposer::new(store.clone());
    (
        ControlApi::new(store.clone(), proposer, Arc::new(AlwaysLeader)),
        store,
    )
}

fn secret_spec(name: &str, data: &[u8]) -> SecretSpec {
    SecretSpec {
        annotations: Some(Annotations {
            name: name.into(),
            ..Default::default()
        }),
        data: data.to_vec(),
    }
}

fn service(name: &str, secrets: &[&str]) -> ServiceSpec {
    ServiceSpec {
        annotations: Some(Annotations {
            name: name.into(),
            ..Default::default()
        }),
        task: Some(
            TaskSpec {
                container: Some(ContainerSpec {
                    image: "img:1".into(),
                    ..Default::default()
                }),
                secrets: secrets
                    .iter()
                    .map(|s| SecretReference {
                        secret_name: s.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
            .into(),
        ),
        mode: Some(Mode::Replicated(ReplicatedService { replicas: 1 })),
        ..Default::default()
    }
}

async fn create(api: &ControlApi, name: &str, data: &[u8]) -> Result<Secret, tonic::Status> {
    api.create_secret(Request::new(CreateSecretRequest {
        spec: Some(secret_spec(name, data)),
    }))
    .await
    .map(|r| r.into_inner().secret.unwrap())
}

#[tokio::test]
async fn create_list_get_never_return_secret_data() {
    let (api, store) = api();
    let created = create(&api, "db", DATA).await.unwrap();
    assert!(created.spec.as_ref().unwrap().data.is_empty());
    // Stored with its data: only replies are stripped.
    let stored = store.view(|t| t.secrets.get(&created.id).cloned()).unwrap();
    assert_eq!(stored.spec.unwrap().data, DATA);

    let listed = api
        .list_secrets(Request::new(ListSecretsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .secrets;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].spec.as_ref().unwrap().data.is_empty());
    for key in [created.id.as_str(), "db"] {
        let got = api
            .get_secret(Request::new(GetSecretRequest {
                secret_id: key.into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .secret
            .unwrap();
        assert_eq!(got.id, created.id);
        let spec = got.spec.unwrap();
        assert_eq!(spec.annotations.unwrap().name, "db");
        assert!(spec.data.is_empty(), "get must strip the data");
    }
}

#[tokio::test]
async fn bad_names_sizes_and_duplicates_are_refused() {
    let (api, _) = api();
    create(&api, "db", DATA).await.unwrap();
    let dup = create(&api, "db", b"other").await.unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");
    assert_eq!(
        create(&api, "bad/name", DATA).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        create(&api, "empty", b"").await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let big = vec![b'x'; 500 * 1024 + 1];
    let e = create(&api, "big", &big).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(!e.message().contains("xxxx"), "errors never quote data");
    // Exactly the limit is allowed, as Docker does.
    create(&api, "max", &big[..500 * 1024]).await.unwrap();
}

#[tokio::test]
async fn services_resolve_names_and_refuse_unknown_ones() {
    let (api, _) = api();
    let secret = create(&api, "db", DATA).await.unwrap();
    let e = api
        .create_service(Request::new(CreateServiceRequest {
            spec: Some(service("web", &["nope"])),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("secret nope not found"), "{e:?}");

    let svc = api
        .create_service(Request::new(CreateServiceRequest {
            spec: Some(service("web", &["db"])),
        }))
        .await
        .unwrap()
        .into_inner()
        .service
        .unwrap();
    let r = &svc.spec.unwrap().task.unwrap().secrets[0];
    assert_eq!(r.secret_id, secret.id);
    assert_eq!(r.target, "db", "target defaults to the name");
}

#[tokio::test]
async fn a_secret_in_use_cannot_be_removed() {
    let (api, store) = api();
    create(&api, "db", DATA).await.unwrap();
    let svc = api
        .create_service(Request::new(CreateServiceRequest {
            spec: Some(service("web", &["db"])),
        }))
        .await
        .unwrap()
        .into_inner()
        .service
        .unwrap();
    let remove = || {
        api.remove_secret(Request::new(RemoveSecretRequest {
            secret_id: "db".into(),
        }))
    };
    let e = remove().await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(e.message(), "secret db is in use by service web");

    // The service goes, but one of its tasks is still meant to run: still in use.
    let task = Task {
        id: "t1".into(),
        service_id: svc.id.clone(),
        service_name: "web".into(),
        spec: svc.spec.as_ref().and_then(|s| s.task.clone()),
        desired_state: TaskState::Running as i32,
        ..Default::default()
    };
    MemoryProposer::new(store.clone())
        .propose(Txn::new().create(task.clone()).into_batch())
        .await
        .unwrap();
    api.remove_service(Request::new(RemoveServiceRequest {
        service_id: svc.id.clone(),
    }))
    .await
    .unwrap();
    assert_eq!(remove().await.unwrap_err().code(), Code::FailedPrecondition);

    // Once the task is told to shut down, the secret is free.
    let mut stopped = store.view(|t| t.tasks.get("t1").cloned()).unwrap();
    stopped.desired_state = TaskState::Shutdown as i32;
    MemoryProposer::new(store.clone())
        .propose(Txn::new().update(stopped).into_batch())
        .await
        .unwrap();
    remove().await.unwrap();
    assert!(store.view(|t| t.secrets.is_empty()));
}

#[tokio::test]
async fn configs_return_their_data_and_follow_the_same_rules() {
    let (api, _) = api();
    let spec = ConfigSpec {
        annotations: Some(Annotations {
            name: "app.conf".into(),
            ..Default::default()
        }),
        data: b"port=80".to_vec(),
    };
    api.create_config(Request::new(CreateConfigRequest {
        spec: Some(spec.clone()),
    }))
    .await
    .unwrap();
    let dup = api
        .create_config(Request::new(CreateConfigRequest { spec: Some(spec) }))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    let got = api
        .get_config(Request::new(GetConfigRequest {
            config_id: "app.conf".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    assert_eq!(got.spec.unwrap().data, b"port=80");
    let mut svc = service("web", &[]);
    svc.task.as_mut().unwrap().configs = vec![ConfigReference {
        config_name: "app.conf".into(),
        target: "app.conf".into(),
        ..Default::default()
    }];
    api.create_service(Request::new(CreateServiceRequest { spec: Some(svc) }))
        .await
        .unwrap();
    let e = api
        .remove_config(Request::new(RemoveConfigRequest {
            config_id: "app.conf".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.message(), "config app.conf is in use by service web");

    // A config may go to an absolute path (as compose files put them), never one that
    // climbs; a secret stays a plain name in /run/secrets.
    let with_config_at = |name: &str, target: &str| {
        let mut svc = service(name, &[]);
        svc.task.as_mut().unwrap().configs = vec![ConfigReference {
            config_name: "app.conf".into(),
            target: target.into(),
            ..Default::default()
        }];
        CreateServiceRequest { spec: Some(svc) }
    };
    api.create_service(Request::new(with_config_at(
        "nginx",
        "/etc/nginx/nginx.conf",
    )))
    .await
    .unwrap();
    let e = api
        .create_service(Request::new(with_config_at("climb", "/etc/../root/x")))
        .await
        .unwrap_err();
    assert!(
        e.message()
            .contains("must be a plain file name or an absolute path"),
        "{e}"
    );
}

fn labelled(name: &str, data: &[u8], labels: &[(&str, &str)]) -> SecretSpec {
    let mut spec = secret_spec(name, data);
    spec.annotations.as_mut().unwrap().labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spec
}

async fn update(api: &ControlApi, version: u64, spec: SecretSpec) -> Result<Secret, tonic::Status> {
    api.update_secret(Request::new(UpdateSecretRequest {
        secret_id: "db".into(),
        secret_version: version,
        spec: Some(spec),
    }))
    .await
    .map(|r| r.into_inner().secret.unwrap())
}

#[tokio::test]
async fn updates_change_labels_only_at_the_version_read() {
    let (api, store) = api();
    let created = create(&api, "db", DATA).await.unwrap();
    let v = created.meta.as_ref().unwrap().version;
    // Labels change; the data is left as it was (sent empty, as a client that read it has it).
    let updated = update(&api, v, labelled("db", b"", &[("env", "prod")]))
        .await
        .unwrap();
    assert!(
        updated.spec.as_ref().unwrap().data.is_empty(),
        "reply redacted"
    );
    let stored = store.view(|t| t.secrets.get(&created.id).cloned()).unwrap();
    let spec = stored.spec.unwrap();
    assert_eq!(spec.data, DATA);
    assert_eq!(spec.annotations.unwrap().labels["env"], "prod");
    let now = stored.meta.unwrap().version;
    assert!(now > v);

    // The version read before the update is stale now.
    let stale = update(&api, v, labelled("db", b"", &[])).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    // Name and data stay; the refusals name the field and change nothing.
    let e = update(&api, now, labelled("db2", b"", &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("name:"), "{e:?}");
    let e = update(&api, now, labelled("db", b"new", &[]))
        .await
        .unwrap_err();
    assert!(e.message().starts_with("data:"), "{e:?}");
    assert!(!e.message().contains("new"), "never quotes data: {e:?}");
    let kept = store.view(|t| t.secrets.get(&created.id).cloned()).unwrap();
    assert_eq!(kept.meta.unwrap().version, now);

    // Configs follow the same rules.
    let spec = ConfigSpec {
        annotations: Some(Annotations {
            name: "app.conf".into(),
            ..Default::default()
        }),
        data: b"port=80".to_vec(),
    };
    let c = api
        .create_config(Request::new(CreateConfigRequest {
            spec: Some(spec.clone()),
        }))
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    let mut relabel = spec.clone();
    relabel.annotations.as_mut().unwrap().labels = [("a".to_string(), "b".to_string())].into();
    let req = |version, spec| UpdateConfigRequest {
        config_id: c.id.clone(),
        config_version: version,
        spec: Some(spec),
    };
    let v = c.meta.unwrap().version;
    let got = api
        .update_config(Request::new(req(v, relabel.clone())))
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    let got = got.spec.unwrap();
    assert_eq!(got.data, b"port=80");
    assert_eq!(got.annotations.unwrap().labels["a"], "b");
    let e = api
        .update_config(Request::new(req(v, relabel)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
}
