//! Control API: secrets. A secret's data never leaves this module in a reply: `Get`/`List`
//! strip it, errors never quote it. The rules it shares with configs are in `payloads.rs`.

use super::payloads::{check_update, remove_unused, validate, Kind};
use super::{first, ControlApi};
use crate::errors::status;
use swarm_api::*;
use swarm_store::Txn;
use tonic::Status;

/// A secret as operators see it: everything but the data.
pub(super) fn redact(mut s: Secret) -> Secret {
    if let Some(spec) = s.spec.as_mut() {
        spec.data.clear();
    }
    s
}

fn find_secret(api: &ControlApi, key: &str) -> Result<Secret, Status> {
    api.store
        .view(|t| {
            t.secrets
                .get(key)
                .or_else(|| t.secrets.by_name(key))
                .cloned()
        })
        .ok_or_else(|| Status::not_found(format!("secret {key} not found")))
}

pub(super) fn get_secret(
    api: &ControlApi,
    r: GetSecretRequest,
) -> Result<GetSecretResponse, Status> {
    find_secret(api, &r.secret_id).map(|s| GetSecretResponse {
        secret: Some(redact(s)),
    })
}

pub(super) fn list_secrets(api: &ControlApi) -> ListSecretsResponse {
    ListSecretsResponse {
        secrets: api
            .store
            .view(|t| t.secrets.iter().cloned().map(redact).collect()),
    }
}

pub(super) async fn create_secret(
    api: &ControlApi,
    r: CreateSecretRequest,
) -> Result<CreateSecretResponse, Status> {
    let spec = r
        .spec
        .ok_or_else(|| Status::invalid_argument("spec: missing"))?;
    validate(Kind::Secret, spec.annotations.as_ref(), &spec.data)?;
    let secret = Secret {
        id: ids::new_id(),
        spec: Some(spec),
        ..Default::default()
    };
    let written = api
        .proposer
        .propose(Txn::new().create(secret).into_batch())
        .await
        .map_err(status)?;
    Ok(CreateSecretResponse {
        secret: first(written, |o| match o {
            store_object::Object::Secret(s) => Some(redact(*s)),
            _ => None,
        }),
    })
}

/// Replaces the labels; the version the caller read must still be the secret's.
pub(super) async fn update_secret(
    api: &ControlApi,
    r: UpdateSecretRequest,
) -> Result<UpdateSecretResponse, Status> {
    let spec = r
        .spec
        .ok_or_else(|| Status::invalid_argument("spec: missing"))?;
    let mut secret = find_secret(api, &r.secret_id)?;
    let old = secret.spec.get_or_insert_with(Default::default);
    check_update(
        Kind::Secret,
        (old.annotations.as_ref(), &old.data),
        (spec.annotations.as_ref(), &spec.data),
    )?;
    old.annotations.get_or_insert_with(Default::default).labels =
        spec.annotations.map(|a| a.labels).unwrap_or_default();
    secret.meta.get_or_insert_with(Default::default).version = r.secret_version;
    let written = api
        .proposer
        .propose(Txn::new().update(secret).into_batch())
        .await
        .map_err(status)?;
    Ok(UpdateSecretResponse {
        secret: first(written, |o| match o {
            store_object::Object::Secret(s) => Some(redact(*s)),
            _ => None,
        }),
    })
}

pub(super) async fn remove_secret(
    api: &ControlApi,
    r: RemoveSecretRequest,
) -> Result<RemoveSecretResponse, Status> {
    let secret = find_secret(api, &r.secret_id)?;
    let id = secret.id.clone();
    remove_unused(api, secret, Kind::Secret, |ts| {
        ts.secrets.iter().any(|x| x.secret_id == id)
    })
    .await?;
    Ok(RemoveSecretResponse {})
}
