//! `/secrets` and `/configs`: list (Docker's filters), inspect (ID, name or unique ID
//! prefix), create, update (labels only, at the version read) and remove (refused while a
//! service uses it, in Docker's words). The control API validates and stores them; this
//! module translates, and never lets a secret's data into an answer or a log.

use crate::backend::{once_tasks_end, pick, service_name, Backend};
use crate::convert::payloads::{self as conv, Item, Kind, NewSpec};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::Request;
use crate::types as d;
use hyper::StatusCode;
use swarm_api::*;
use tonic::Request as Rpc;

fn annotations(s: &NewSpec) -> Option<Annotations> {
    Some(Annotations {
        name: s.name.clone(),
        labels: s.labels.clone(),
    })
}

async fn items(b: &Backend, kind: Kind) -> Result<Vec<Item>, ApiError> {
    let c = b.control();
    Ok(match kind {
        Kind::Secret => c
            .list_secrets(Rpc::new(ListSecretsRequest {}))
            .await?
            .into_inner()
            .secrets
            .into_iter()
            .map(Item::from)
            .collect(),
        Kind::Config => c
            .list_configs(Rpc::new(ListConfigsRequest {}))
            .await?
            .into_inner()
            .configs
            .into_iter()
            .map(Item::from)
            .collect(),
    })
}

/// The one `arg` names: ID, then name, then unique ID prefix, as Docker resolves them.
async fn find(b: &Backend, kind: Kind, arg: &str) -> Result<Item, ApiError> {
    let all = items(b, kind).await?;
    pick(
        kind.word(),
        arg,
        all,
        |i| i.id.as_str(),
        |i| vec![i.name.as_str()],
    )
}

pub async fn list(b: &Backend, kind: Kind, r: &Request) -> Result<Reply, ApiError> {
    let f = r.filters(conv::FILTERS)?;
    let out: Vec<d::Payload> = items(b, kind)
        .await?
        .iter()
        .filter(|i| conv::matches(i, &f))
        .map(|i| conv::to_docker(kind, i))
        .collect();
    Ok(Reply::ok(&out))
}

pub async fn get(b: &Backend, kind: Kind, id: &str) -> Result<Reply, ApiError> {
    let i = find(b, kind, id).await?;
    Ok(Reply::ok(&conv::to_docker(kind, &i)))
}

pub async fn create(b: &Backend, kind: Kind, r: &Request) -> Result<Reply, ApiError> {
    let spec = conv::spec_from_docker(kind, r.json()?)?;
    let c = b.control();
    let id = match kind {
        Kind::Secret => c
            .create_secret(Rpc::new(CreateSecretRequest {
                spec: Some(SecretSpec {
                    annotations: annotations(&spec),
                    data: spec.data,
                }),
            }))
            .await?
            .into_inner()
            .secret
            .map(|s| s.id),
        Kind::Config => c
            .create_config(Rpc::new(CreateConfigRequest {
                spec: Some(ConfigSpec {
                    annotations: annotations(&spec),
                    data: spec.data,
                }),
            }))
            .await?
            .into_inner()
            .config
            .map(|c| c.id),
    }
    .ok_or_else(|| ApiError::Internal(format!("the created {} was not returned", kind.word())))?;
    tracing::info!(kind = kind.word(), id = %id, name = %spec.name, "docker API: created");
    Ok(Reply::json(StatusCode::CREATED, &d::Created { id }))
}

/// Docker lets only the labels change; the control API refuses a new name or new data,
/// naming the field, and a stale `version` as "update out of sequence".
pub async fn update(b: &Backend, kind: Kind, id: &str, r: &Request) -> Result<Reply, ApiError> {
    let version = r.version()?;
    let spec = conv::spec_from_docker(kind, r.json()?)?;
    let i = find(b, kind, id).await?;
    let c = b.control();
    match kind {
        Kind::Secret => {
            c.update_secret(Rpc::new(UpdateSecretRequest {
                secret_id: i.id.clone(),
                secret_version: version,
                spec: Some(SecretSpec {
                    annotations: annotations(&spec),
                    data: spec.data,
                }),
            }))
            .await?;
        }
        Kind::Config => {
            c.update_config(Rpc::new(UpdateConfigRequest {
                config_id: i.id.clone(),
                config_version: version,
                spec: Some(ConfigSpec {
                    annotations: annotations(&spec),
                    data: spec.data,
                }),
            }))
            .await?;
        }
    }
    tracing::info!(kind = kind.word(), id = %i.id, "docker API: labels updated");
    Ok(Reply::empty(StatusCode::OK))
}

/// The services whose spec, or previous spec (a rollback would need it), names `id`.
fn users(services: &[Service], kind: Kind, id: &str) -> Vec<String> {
    let names = |spec: Option<&ServiceSpec>| {
        spec.and_then(|sp| sp.task.as_ref())
            .is_some_and(|t| match kind {
                Kind::Secret => t.secrets.iter().any(|r| r.secret_id == id),
                Kind::Config => t.configs.iter().any(|r| r.config_id == id),
            })
    };
    services
        .iter()
        .filter(|s| names(s.spec.as_ref()) || names(s.previous_spec.as_ref()))
        .map(|s| service_name(s).to_string())
        .collect()
}

/// Docker's refusal of a removal, word for word (clients look for "is in use").
fn in_use(kind: Kind, name: &str, users: &[String]) -> ApiError {
    let plural = if users.len() > 1 { "s" } else { "" };
    ApiError::BadRequest(format!(
        "{} '{name}' is in use by the following service{plural}: {}",
        kind.word(),
        users.join(", ")
    ))
}

pub async fn remove(b: &Backend, kind: Kind, id: &str) -> Result<Reply, ApiError> {
    let i = find(b, kind, id).await?;
    let users = users(&b.services().await?, kind, &i.id);
    if !users.is_empty() {
        return Err(in_use(kind, &i.name, &users));
    }
    let c = b.control();
    let remove = || async {
        match kind {
            Kind::Secret => c
                .remove_secret(Rpc::new(RemoveSecretRequest {
                    secret_id: i.id.clone(),
                }))
                .await
                .map(|_| ()),
            Kind::Config => c
                .remove_config(Rpc::new(RemoveConfigRequest {
                    config_id: i.id.clone(),
                }))
                .await
                .map(|_| ()),
        }
    };
    // No service uses it (checked above), so a refusal is a task of a removed service
    // still stopping: wait for it, as `docker stack rm` removes secrets right after.
    match once_tasks_end(|_| true, remove).await {
        Ok(()) => {}
        // Still used by a task that did not end in time: Docker's status for "in use".
        Err(s) if s.code() == tonic::Code::FailedPrecondition => {
            return Err(ApiError::BadRequest(s.message().replace('\n', " ")))
        }
        Err(s) => return Err(s.into()),
    }
    tracing::info!(kind = kind.word(), id = %i.id, "docker API: removed");
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn service(name: &str, secret: &str, config: &str) -> Service {
        Service {
            id: format!("{name}-id"),
            spec: Some(ServiceSpec {
                annotations: Some(Annotations {
                    name: name.into(),
                    ..Default::default()
                }),
                task: Some(
                    TaskSpec {
                        secrets: vec![SecretReference {
                            secret_id: secret.into(),
                            ..Default::default()
                        }],
                        configs: vec![ConfigReference {
                            config_id: config.into(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }
                    .into(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn removal_of_a_used_one_is_refused_in_dockers_words() {
        let mut rolled = service("old", "s9", "c9");
        rolled.previous_spec = service("x", "s3", "c3").spec;
        let all = [
            service("web", "s1", "c1"),
            service("api", "s1", "c2"),
            rolled,
        ];
        assert_eq!(
            users(&all, Kind::Secret, "s3"),
            ["old"],
            "a previous spec counts"
        );
        let u = users(&all, Kind::Secret, "s1");
        assert_eq!(u, ["web", "api"]);
        let e = in_use(Kind::Secret, "db", &u);
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(
            e.to_string(),
            "secret 'db' is in use by the following services: web, api"
        );
        let u = users(&all, Kind::Config, "c2");
        assert_eq!(
            in_use(Kind::Config, "conf", &u).to_string(),
            "config 'conf' is in use by the following service: api"
        );
        assert!(users(&all, Kind::Config, "s1").is_empty());
    }
}
