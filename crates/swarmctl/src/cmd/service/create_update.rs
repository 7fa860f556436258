//! `service create` and `service update`: build the spec from the flags, send it, print the
//! service ID and wait for the service to converge (unless `--detach`).
//!
//! Owns the rules of what an update may combine (rollback alone, no empty update). Must not
//! parse flag values (`crate::flags`) nor draw progress (`super::super::wait`).

use std::path::Path;

use anyhow::{bail, Result};
use swarm_api::{CreateServiceRequest, UpdateServiceRequest};

use super::WaitArgs;
use crate::client;
use crate::cmd::{out, wait};
use crate::flags::{new_service_spec, ServiceFlags};
use crate::resolve;

/// The flags with the cluster's network names known, when they name networks: a stored spec
/// holds network IDs.
async fn with_network_ids(c: &mut client::Client, mut flags: ServiceFlags) -> Result<ServiceFlags> {
    if flags.networks.is_empty() && flags.network_rm.is_empty() {
        return Ok(flags);
    }
    let networks = crate::cmd::network::list(c).await?;
    flags.network_ids = networks
        .iter()
        .map(|n| (swarm_api::names::Named::name(n).to_string(), n.id.clone()))
        .collect();
    Ok(flags)
}

/// `service create`.
pub(super) async fn create(socket: &Path, w: WaitArgs, flags: ServiceFlags) -> Result<()> {
    if flags.name.is_none() {
        bail!("name: --name is required");
    }
    if flags.image.is_none() {
        bail!("image: --image is required");
    }
    // Parse every flag before talking to the manager.
    flags.apply(&mut new_service_spec())?;
    let mut c = client::connect(socket).await?;
    let flags = with_network_ids(&mut c, flags).await?;
    let mut spec = new_service_spec();
    flags.apply(&mut spec)?;
    let created = c
        .create_service(CreateServiceRequest { spec: Some(spec) })
        .await?
        .into_inner();
    let service = created.service.unwrap_or_default();
    // The ID first, as `docker service create` does, then the wait.
    out(&format!("{}\n", service.id))?;
    if w.detach {
        return Ok(());
    }
    let base = wait::baseline(&mut c, &service, false).await?;
    wait::converge(&mut c, &service.id, base, w.quiet).await
}

/// `service update`.
pub(super) async fn update(
    socket: &Path,
    service: &str,
    force: bool,
    rollback: bool,
    rebalance: bool,
    w: WaitArgs,
    flags: ServiceFlags,
) -> Result<()> {
    // Parse every flag before talking to the manager.
    flags.apply(&mut new_service_spec())?;
    let mut c = client::connect(socket).await?;
    let current = resolve::service(&mut c, service).await?;
    let flags = with_network_ids(&mut c, flags).await?;
    let old_spec = current.spec.clone().unwrap_or_default();
    let mut spec = old_spec.clone();
    flags.apply(&mut spec)?;
    if force {
        let task = spec.task.get_or_insert_with(Default::default);
        task.force_update = task.force_update.wrapping_add(1);
    }
    if rollback && spec != old_spec {
        bail!("rollback: cannot be combined with other changes");
    }
    if spec == old_spec && !rollback && !rebalance {
        bail!("no changes for service {service}");
    }
    let version = current.meta.as_ref().map(|m| m.version).unwrap_or(0);
    let base = if w.detach {
        Default::default()
    } else {
        wait::baseline(&mut c, &current, rollback).await?
    };
    let updated = c
        .update_service(UpdateServiceRequest {
            service_id: current.id.clone(),
            service_version: version,
            spec: Some(spec),
            rollback,
            rebalance,
        })
        .await?
        .into_inner();
    let id = updated.service.map(|s| s.id).unwrap_or(current.id);
    out(&format!("{id}\n"))?;
    if w.detach {
        return Ok(());
    }
    wait::converge(&mut c, &id, base, w.quiet).await
}
