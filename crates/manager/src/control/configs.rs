//! Control API: configs. Unlike secrets their data is returned, as Docker does. The rules
//! they share with secrets are in `payloads.rs`.

use super::payloads::{check_update, remove_unused, validate, Kind};
use super::{first, ControlApi};
use crate::errors::status;
use swarm_api::*;
use swarm_store::Txn;
use tonic::Status;

fn find_config(api: &ControlApi, key: &str) -> Result<Config, Status> {
    api.store
        .view(|t| {
            t.configs
                .get(key)
                .or_else(|| t.configs.by_name(key))
                .cloned()
        })
        .ok_or_else(|| Status::not_found(format!("config {key} not found")))
}

pub(super) fn get_config(
    api: &ControlApi,
    r: GetConfigRequest,
) -> Result<GetConfigResponse, Status> {
    // Configs are not secret: their data is returned, as Docker does.
    find_config(api, &r.config_id).map(|c| GetConfigResponse { config: Some(c) })
}

pub(super) fn list_configs(api: &ControlApi) -> ListConfigsResponse {
    ListConfigsResponse {
        configs: api.store.view(|t| t.configs.iter().cloned().collect()),
    }
}

pub(super) async fn create_config(
    api: &ControlApi,
    r: CreateConfigRequest,
) -> Result<CreateConfigResponse, Status> {
    let spec = r
        .spec
        .ok_or_else(|| Status::invalid_argument("spec: missing"))?;
    validate(Kind::Config, spec.annotations.as_ref(), &spec.data)?;
    let config = Config {
        id: ids::new_id(),
        spec: Some(spec),
        ..Default::default()
    };
    let written = api
        .proposer
        .propose(Txn::new().create(config).into_batch())
        .await
        .map_err(status)?;
    Ok(CreateConfigResponse {
        config: first(written, |o| match o {
            store_object::Object::Config(c) => Some(*c),
            _ => None,
        }),
    })
}

/// Replaces the labels; the version the caller read must still be the config's.
pub(super) async fn update_config(
    api: &ControlApi,
    r: UpdateConfigRequest,
) -> Result<UpdateConfigResponse, Status> {
    let spec = r
        .spec
        .ok_or_else(|| Status::invalid_argument("spec: missing"))?;
    let mut config = find_config(api, &r.config_id)?;
    let old = config.spec.get_or_insert_with(Default::default);
    check_update(
        Kind::Config,
        (old.annotations.as_ref(), &old.data),
        (spec.annotations.as_ref(), &spec.data),
    )?;
    old.annotations.get_or_insert_with(Default::default).labels =
        spec.annotations.map(|a| a.labels).unwrap_or_default();
    config.meta.get_or_insert_with(Default::default).version = r.config_version;
    let written = api
        .proposer
        .propose(Txn::new().update(config).into_batch())
        .await
        .map_err(status)?;
    Ok(UpdateConfigResponse {
        config: first(written, |o| match o {
            store_object::Object::Config(c) => Some(*c),
            _ => None,
        }),
    })
}

pub(super) async fn remove_config(
    api: &ControlApi,
    r: RemoveConfigRequest,
) -> Result<RemoveConfigResponse, Status> {
    let config = find_config(api, &r.config_id)?;
    let id = config.id.clone();
    remove_unused(api, config, Kind::Config, |ts| {
        ts.configs.iter().any(|x| x.config_id == id)
    })
    .await?;
    Ok(RemoveConfigResponse {})
}
