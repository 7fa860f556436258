//! Control API: networks. Create checks the spec and that its subnet overlaps no other
//! network's; the allocator fills in what the spec leaves open. Remove is refused while a
//! service names the network or a task may still hold an address on it. Also the checks a
//! service spec's networks get: they exist, are not the ingress network, and have room for
//! the replicas asked.

use super::{first, ControlApi};
use crate::allocator_networks::{self as nets, NetAddresses};
use crate::errors::status;
use swarm_api::*;
use swarm_store::{Tables, Txn};
use tonic::Status;

fn find(t: &Tables, key: &str) -> Option<Network> {
    t.networks
        .get(key)
        .or_else(|| t.networks.by_name(key))
        .cloned()
}

fn find_network(api: &ControlApi, key: &str) -> Result<Network, Status> {
    api.store
        .view(|t| find(t, key))
        .ok_or_else(|| Status::not_found(format!("network {key} not found")))
}

pub(super) fn get(api: &ControlApi, r: GetNetworkRequest) -> Result<GetNetworkResponse, Status> {
    find_network(api, &r.network_id).map(|n| GetNetworkResponse { network: Some(n) })
}

pub(super) fn list(api: &ControlApi) -> ListNetworksResponse {
    ListNetworksResponse {
        networks: api.store.view(|t| t.networks.iter().cloned().collect()),
    }
}

/// Refuses a spec that is invalid on its own, asks for a second ingress network, or whose
/// subnet overlaps another network's.
fn check(t: &Tables, spec: &NetworkSpec, except: &str) -> Result<(), Status> {
    let subnet = validate::validate_network_spec(spec)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let name = spec.annotations.as_ref().map_or("", |a| a.name.as_str());
    if t.networks.by_name(name).is_some_and(|n| n.id != except) {
        return Err(Status::already_exists(format!(
            "name: network {name} already exists"
        )));
    }
    if spec.ingress {
        if let Some(n) = t
            .networks
            .iter()
            .find(|n| n.id != except && n.spec.as_ref().is_some_and(|s| s.ingress))
        {
            return Err(Status::already_exists(format!(
                "ingress: the cluster already has an ingress network ({})",
                nets::network_name(n)
            )));
        }
    }
    if let Some(s) = subnet {
        if let Some((o, name)) = nets::subnets_in_use(t, except)
            .into_iter()
            .find(|(o, _)| o.overlaps(&s))
        {
            return Err(Status::invalid_argument(format!(
                "subnet: {s} overlaps network {name} ({o})"
            )));
        }
    }
    Ok(())
}

pub(super) async fn create(
    api: &ControlApi,
    r: CreateNetworkRequest,
) -> Result<CreateNetworkResponse, Status> {
    let mut spec = r
        .spec
        .ok_or_else(|| Status::invalid_argument("spec: missing"))?;
    api.store.view(|t| check(t, &spec, ""))?;
    if spec.driver.is_empty() {
        spec.driver = defaults::NETWORK_DRIVER.to_string();
    }
    let network = Network {
        id: ids::new_id(),
        spec: Some(spec),
        ..Default::default()
    };
    let written = api
        .proposer
        .propose(Txn::new().create(network).into_batch())
        .await
        .map_err(status)?;
    Ok(CreateNetworkResponse {
        network: first(written, |o| match o {
            store_object::Object::Network(n) => Some(*n),
            _ => None,
        }),
    })
}

/// Who still uses a network: a service whose spec names it, or a task that may still hold an
/// address on it. A previous spec naming it does not count (as in Docker): a rollback to it
/// is then refused ("network: … not found"), and tasks an automatic rollback makes wait in
/// NEW, saying the network is gone.
fn user(t: &Tables, network_id: &str) -> Option<String> {
    let names = |s: Option<&ServiceSpec>| {
        s.and_then(|s| s.task.as_ref())
            .is_some_and(|ts| ts.networks.iter().any(|n| n.target == network_id))
    };
    if let Some(s) = t.services.iter().find(|s| names(s.spec.as_ref())) {
        return Some(format!("service {}", names::Named::name(s)));
    }
    t.tasks_of_network(network_id)
        .find(|x| nets::holds_addresses(x))
        .map(|x| format!("task {}", x.id))
}

pub(super) async fn remove(
    api: &ControlApi,
    r: RemoveNetworkRequest,
) -> Result<RemoveNetworkResponse, Status> {
    let mut network = find_network(api, &r.network_id)?;
    if let Some(who) = api.store.view(|t| user(t, &network.id)) {
        return Err(Status::failed_precondition(format!(
            "network {} is in use by {who}",
            nets::network_name(&network)
        )));
    }
    network.meta = None;
    api.proposer
        .propose(Txn::new().remove(network).into_batch())
        .await
        .map_err(status)?;
    Ok(RemoveNetworkResponse {})
}

/// Resolves the networks a service spec names (by name or ID) to their IDs, refusing unknown
/// ones and the ingress network; then checks each has room for the service's tasks (`old`:
/// the service as stored, whose own addresses count as its to reuse).
pub(super) fn resolve_service_networks(
    api: &ControlApi,
    spec: &mut ServiceSpec,
    old: Option<&Service>,
) -> Result<(), Status> {
    let Some(task) = spec.task.as_mut() else {
        return Ok(());
    };
    api.store.view(|t| {
        for cfg in task.networks.iter_mut() {
            let n = find(t, &cfg.target)
                .ok_or_else(|| Status::not_found(format!("network: {} not found", cfg.target)))?;
            if n.spec.as_ref().is_some_and(|s| s.ingress) {
                return Err(Status::invalid_argument(format!(
                    "network: {} is the ingress network: services join it by publishing ports, not with --network",
                    nets::network_name(&n)
                )));
            }
            cfg.target = n.id;
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = task.networks.iter().find(|n| !seen.insert(n.target.as_str())) {
            return Err(Status::invalid_argument(format!(
                "network: {} is given more than once",
                dup.target
            )));
        }
        Ok(())
    })?;
    check_room(api, spec, old)
}

/// Refuses a replicated service whose replicas (and VIP) cannot all get an address on one of
/// its networks.
fn check_room(api: &ControlApi, spec: &ServiceSpec, old: Option<&Service>) -> Result<(), Status> {
    let Some(service_spec::Mode::Replicated(r)) = &spec.mode else {
        return Ok(());
    };
    let vip = spec
        .endpoint
        .as_ref()
        .is_none_or(|e| e.mode == EndpointMode::Vip as i32);
    let networks = spec
        .task
        .as_ref()
        .map_or(&[][..], |t| t.networks.as_slice());
    api.store.view(|t| {
        for cfg in networks {
            let Some(n) = t.networks.get(&cfg.target) else {
                continue;
            };
            // Not allocated yet: the allocator will say so in the tasks' status.
            let Some((subnet, gateway)) = nets::allocated(n) else {
                continue;
            };
            let mut used = nets::taken_on(t, &n.id, gateway);
            // The service's own addresses are its to reuse.
            if let Some(old) = old {
                for v in old.endpoint.iter().flat_map(|e| &e.virtual_ips) {
                    if let Ok((ip, _)) = cidr::parse_address(&v.addr) {
                        used.remove(&ip);
                    }
                }
                for task in t.tasks_of_service(&old.id) {
                    for a in task.networks.iter().filter(|a| a.network_id == n.id) {
                        for addr in &a.addresses {
                            if let Ok((ip, _)) = cidr::parse_address(addr) {
                                used.remove(&ip);
                            }
                        }
                    }
                }
                used.insert(gateway);
            }
            let free = NetAddresses::new(String::new(), subnet, used).free();
            let needed = r.replicas + u64::from(vip);
            if needed > free {
                return Err(Status::invalid_argument(format!(
                    "replicas: network {} ({subnet}) has {free} free addresses, {needed} needed ({} tasks{})",
                    nets::network_name(n),
                    r.replicas,
                    if vip { " and a VIP" } else { "" }
                )));
            }
        }
        Ok(())
    })
}
