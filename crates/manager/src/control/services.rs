//! Control API: services. A change to the task template or the published ports bumps
//! `spec_version`, which is what marks existing tasks out of date for the rolling updater;
//! scaling alone does not. Published ports are checked here (one owner per port, see
//! `allocator_ports`); the allocator fills in the ones left open.

use super::{first, ControlApi};
use crate::allocator_ports;
use crate::errors::status;
use crate::scheduler::constraint;
use swarm_api::*;
use swarm_store::Txn;
use tonic::Status;

fn validate(spec: &ServiceSpec) -> Result<(), Status> {
    validate::validate_service_spec(spec).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let constraints = spec
        .task
        .as_ref()
        .and_then(|t| t.placement.as_ref())
        .map(|p| p.constraints.clone())
        .unwrap_or_default();
    constraint::parse_all(&constraints).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let prefs = spec
        .task
        .as_ref()
        .and_then(|t| t.placement.as_ref())
        .map(|p| p.preferences.as_slice())
        .unwrap_or(&[]);
    for p in prefs {
        constraint::parse_spread(p).map_err(|e| Status::invalid_argument(e.to_string()))?;
    }
    Ok(())
}

/// Refuses ports that are invalid or published by another service than `service_id`.
fn check_ports(api: &ControlApi, spec: &ServiceSpec, service_id: &str) -> Result<(), Status> {
    let Some(endpoint) = spec.endpoint.as_ref() else {
        return Ok(());
    };
    let taken = api
        .store
        .view(|t| allocator_ports::taken(t.services.iter(), service_id));
    allocator_ports::check(endpoint, &taken).map_err(Status::invalid_argument)
}

fn find(api: &ControlApi, key: &str) -> Result<Service, Status> {
    api.store
        .view(|t| t.service_by_id_or_name(key).cloned())
        .ok_or_else(|| Status::not_found(format!("service {key} not found")))
}

fn service_of(objs: Vec<StoreObject>) -> Option<Service> {
    first(objs, |o| match o {
        store_object::Object::Service(s) => Some(*s),
        _ => None,
    })
}

pub(super) fn get(api: &ControlApi, r: GetServiceRequest) -> Result<GetServiceResponse, Status> {
    find(api, &r.service_id).map(|s| GetServiceResponse { service: Some(s) })
}

pub(super) fn list(api: &ControlApi) -> ListServicesResponse {
    ListServicesResponse {
        services: api.store.view(|t| t.services.iter().cloned().collect()),
    }
}

pub(super) async fn create(
    api: &ControlApi,
    r: CreateServiceRequest,
) -> Result<CreateServiceResponse, Status> {
    let mut spec = r
        .spec
        .ok_or_else(|| Status::invalid_argument("spec: missing"))?;
    validate(&spec)?;
    check_ports(api, &spec, "")?;
    super::payloads::resolve_refs(api, &mut spec)?;
    super::networks::resolve_service_networks(api, &mut spec, None)?;
    let service = Service {
        id: ids::new_id(),
        spec: Some(spec),
        spec_version: 1,
        ..Default::default()
    };
    let written = api
        .proposer
        .propose(Txn::new().create(service).into_batch())
        .await
        .map_err(status)?;
    Ok(CreateServiceResponse {
        service: service_of(written),
    })
}

pub(super) async fn update(
    api: &ControlApi,
    r: UpdateServiceRequest,
) -> Result<UpdateServiceResponse, Status> {
    let mut service = find(api, &r.service_id)?;
    let old = service.spec.clone().unwrap_or_default();
    let mut spec = if r.rollback {
        // The previous spec, as it was: a rollback is an update back to it.
        service.previous_spec.clone().ok_or_else(|| {
            Status::failed_precondition("rollback: the service has no previous spec")
        })?
    } else {
        r.spec
            .ok_or_else(|| Status::invalid_argument("spec: missing"))?
    };
    validate(&spec)?;
    check_ports(api, &spec, &service.id)?;
    super::payloads::resolve_refs(api, &mut spec)?;
    super::networks::resolve_service_networks(api, &mut spec, Some(&service))?;
    let same_mode = match (&old.mode, &spec.mode) {
        (Some(a), Some(b)) => std::mem::discriminant(a) == std::mem::discriminant(b),
        _ => false,
    };
    if !same_mode {
        return Err(Status::invalid_argument(
            "mode: a service's mode cannot be changed",
        ));
    }
    let old_name = old.annotations.as_ref().map(|a| a.name.as_str());
    if old_name != spec.annotations.as_ref().map(|a| a.name.as_str()) {
        return Err(Status::invalid_argument(
            "name: renaming a service is not supported",
        ));
    }
    if old.task != spec.task || old.endpoint != spec.endpoint || r.rollback {
        service.spec_version += 1;
        service.previous_spec = Some(old);
        let (state, message) = if r.rollback {
            (UpdateState::RollbackStarted, "manually requested rollback")
        } else {
            (UpdateState::Updating, "update in progress")
        };
        service.update_status = Some(UpdateStatus {
            state: state as i32,
            started_at: now_ms(),
            completed_at: 0,
            message: message.into(),
        });
    }
    if r.rebalance {
        if !matches!(
            spec.mode,
            Some(swarm_api::service_spec::Mode::Replicated(_))
        ) {
            return Err(Status::invalid_argument(
                "rebalance: only replicated services are rebalanced",
            ));
        }
        service.rebalance_requested = true;
    }
    service.spec = Some(spec);
    service.meta.get_or_insert_with(Default::default).version = r.service_version;
    let written = api
        .proposer
        .propose(Txn::new().update(service).into_batch())
        .await
        .map_err(status)?;
    Ok(UpdateServiceResponse {
        service: service_of(written),
    })
}

pub(super) async fn remove(
    api: &ControlApi,
    r: RemoveServiceRequest,
) -> Result<RemoveServiceResponse, Status> {
    let mut service = find(api, &r.service_id)?;
    // Unconditional: removing what the caller named is the intent, whatever its version.
    service.meta = None;
    api.proposer
        .propose(Txn::new().remove(service).into_batch())
        .await
        .map_err(status)?;
    Ok(RemoveServiceResponse {})
}
