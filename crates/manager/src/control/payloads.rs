//! Control API: the rules secrets and configs share (DESIGN §3) — a valid name, a size limit,
//! immutable name and data (an update changes labels only), refusing removal while a service or a live task still uses one —
//! and resolving the references a service spec makes to them. The kinds' own calls are in
//! `secrets.rs` and `configs.rs`. Must not decide which node receives the data (the
//! dispatcher does) nor touch the store other than by proposing.

use super::ControlApi;
use crate::errors::status;
use swarm_api::*;
use swarm_store::{StoreItem, Tables, Txn};
use tonic::Status;

/// Largest secret, as SwarmKit and Docker allow.
pub const MAX_SECRET_SIZE: usize = 500 * 1024;
/// Largest config (SwarmKit's limit, twice the secrets').
pub const MAX_CONFIG_SIZE: usize = 1000 * 1024;

/// What differs between the two kinds, so the rules are written once.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Secret,
    Config,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }

    fn max(self) -> usize {
        match self {
            Kind::Secret => MAX_SECRET_SIZE,
            Kind::Config => MAX_CONFIG_SIZE,
        }
    }
}

pub(super) fn validate(
    kind: Kind,
    annotations: Option<&Annotations>,
    data: &[u8],
) -> Result<(), Status> {
    let name = annotations.map(|a| a.name.as_str()).unwrap_or("");
    validate::validate_name("name", name).map_err(|e| Status::invalid_argument(e.to_string()))?;
    if data.is_empty() || data.len() > kind.max() {
        return Err(Status::invalid_argument(format!(
            "data: {} data must be larger than 0 and at most {} KiB",
            kind.word(),
            kind.max() / 1024
        )));
    }
    Ok(())
}

/// An update changes the labels only, as Docker allows: the name must stay, and the data must
/// be sent empty (left as it is; a secret's is never read back) or unchanged.
pub(super) fn check_update(
    kind: Kind,
    old: (Option<&Annotations>, &[u8]),
    new: (Option<&Annotations>, &[u8]),
) -> Result<(), Status> {
    let name = |a: Option<&Annotations>| a.map(|a| a.name.clone()).unwrap_or_default();
    if name(old.0) != name(new.0) {
        return Err(Status::invalid_argument(format!(
            "name: a {}'s name cannot be changed, only its labels",
            kind.word()
        )));
    }
    if !new.1.is_empty() && new.1 != old.1 {
        return Err(Status::invalid_argument(format!(
            "data: a {}'s data cannot be changed, only its labels",
            kind.word()
        )));
    }
    Ok(())
}

/// The service that uses the object `id` (through its spec, its previous spec, or a task still
/// meant to run), if any.
fn user(t: &Tables, uses: impl Fn(&TaskSpec) -> bool) -> Option<String> {
    let spec_uses = |s: Option<&ServiceSpec>| s.and_then(|s| s.task.as_deref()).is_some_and(&uses);
    for s in t.services.iter() {
        if spec_uses(s.spec.as_ref()) || spec_uses(s.previous_spec.as_ref()) {
            let name = s
                .spec
                .as_ref()
                .and_then(|sp| sp.annotations.as_ref())
                .map(|a| a.name.clone())
                .unwrap_or_else(|| s.id.clone());
            return Some(name);
        }
    }
    t.tasks
        .iter()
        .filter(|x| x.desired_state <= TaskState::Running as i32)
        .find(|x| x.spec.as_deref().is_some_and(&uses))
        .map(|x| {
            if x.service_name.is_empty() {
                x.service_id.clone()
            } else {
                x.service_name.clone()
            }
        })
}

/// Fills in each reference's ID, name and default target from the table (looked up by name,
/// else ID); refuses unknown ones, bad targets and a target used twice.
fn resolve<'a, T: StoreItem>(
    table: &swarm_store::Table<T>,
    kind: Kind,
    refs: impl Iterator<Item = (&'a mut String, &'a mut String, &'a mut String)>,
) -> Result<(), Status> {
    let mut targets = std::collections::HashSet::new();
    for (id, name, target) in refs {
        let key = if name.is_empty() {
            id.clone()
        } else {
            name.clone()
        };
        let found = table
            .by_name(&key)
            .or_else(|| table.get(&key))
            .ok_or_else(|| Status::invalid_argument(format!("{} {key} not found", kind.word())))?;
        *id = found.id().to_string();
        *name = found.unique_name().unwrap_or_default().to_string();
        if target.is_empty() {
            *target = name.clone();
        }
        check_target(kind, target)?;
        if !targets.insert(target.clone()) {
            return Err(Status::invalid_argument(format!(
                "{}: target {target:?} is used twice",
                kind.word()
            )));
        }
    }
    Ok(())
}

fn in_use(kind: Kind, name: &str, service: &str) -> Status {
    Status::failed_precondition(format!(
        "{} {name} is in use by service {service}",
        kind.word()
    ))
}

/// A reference's target: a plain file name (a secret's, under `/run/secrets`), or for a
/// config also an absolute path in the container (`/etc/nginx/nginx.conf`, as compose files
/// write them) — never one that climbs (`..`) or names a directory.
fn check_target(kind: Kind, target: &str) -> Result<(), Status> {
    let plain = |name: &str| {
        !name.is_empty()
            && name.len() <= 255
            && name != "."
            && name != ".."
            && !name.contains(['/', '\0'])
    };
    let ok = match (kind, target.strip_prefix('/')) {
        (Kind::Config, Some(path)) => target.len() <= 4096 && path.split('/').all(plain),
        (_, None) => plain(target),
        (Kind::Secret, Some(_)) => false,
    };
    if ok {
        return Ok(());
    }
    let what = match kind {
        Kind::Secret => "a plain file name (it goes in /run/secrets)",
        Kind::Config => "a plain file name or an absolute path without . or .. parts",
    };
    Err(Status::invalid_argument(format!(
        "{}: target {target:?} must be {what}",
        kind.word()
    )))
}

/// Fills in the IDs (and default targets) of the secrets and configs a service spec names, and
/// refuses names that do not exist and two references to the same target.
pub(super) fn resolve_refs(api: &ControlApi, spec: &mut ServiceSpec) -> Result<(), Status> {
    let Some(task) = spec.task.as_mut() else {
        return Ok(());
    };
    api.store.view(|t| {
        let secrets = task
            .secrets
            .iter_mut()
            .map(|r| (&mut r.secret_id, &mut r.secret_name, &mut r.target));
        resolve(&t.secrets, Kind::Secret, secrets)?;
        let configs = task
            .configs
            .iter_mut()
            .map(|r| (&mut r.config_id, &mut r.config_name, &mut r.target));
        resolve(&t.configs, Kind::Config, configs)?;
        Ok(())
    })
}

/// Removes a secret or config unless a service or a live task still uses it.
pub(super) async fn remove_unused<T: StoreItem>(
    api: &ControlApi,
    mut item: T,
    kind: Kind,
    uses: impl Fn(&TaskSpec) -> bool,
) -> Result<(), Status> {
    let name = item.unique_name().unwrap_or(item.id()).to_string();
    if let Some(service) = api.store.view(|t| user(t, uses)) {
        return Err(in_use(kind, &name, &service));
    }
    // Unconditional: removing what the caller named is the intent, whatever its version.
    *item.meta_mut() = Meta::default();
    api.proposer
        .propose(Txn::new().remove(item).into_batch())
        .await
        .map_err(status)?;
    Ok(())
}
