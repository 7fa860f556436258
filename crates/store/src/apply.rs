//! Applying one transaction: checks every action's preconditions (existence, optimistic
//! version, unique names), writes, and on any refusal undoes what the batch already wrote, so a
//! batch lands whole or not at all. Deterministic: the only inputs are the tables, the log
//! index and the batch.

use crate::item::{object_key, Kind, StoreItem};
use crate::tables::Tables;
use crate::watch::{Event, EventKind};
use swarm_api::{store_object::Object, Meta, StoreActionKind, StoreBatch, StoreObject};

/// Why a transaction was refused. Carried back to the proposer through Raft.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ApplyError {
    #[error("{kind} {id} was changed by someone else (version {expected} is stale, now {actual}); read it again and retry")]
    Conflict {
        kind: Kind,
        id: String,
        expected: u64,
        actual: u64,
    },
    #[error("{kind} {id} not found")]
    NotFound { kind: Kind, id: String },
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: Kind, id: String },
    #[error("{kind} name {name:?} is already in use")]
    NameConflict { kind: Kind, name: String },
    #[error("invalid transaction: {0}")]
    Invalid(String),
}

pub(crate) fn apply_batch(
    tables: &mut Tables,
    index: u64,
    batch: StoreBatch,
) -> Result<(Vec<StoreObject>, Vec<Event>), ApplyError> {
    let timestamp = batch.timestamp;
    let mut undo: Vec<(Kind, String, Option<StoreObject>)> =
        Vec::with_capacity(batch.actions.len());
    let mut written = Vec::with_capacity(batch.actions.len());
    let mut events = Vec::with_capacity(batch.actions.len());
    for action in batch.actions {
        let kind = StoreActionKind::try_from(action.kind)
            .map_err(|_| ApplyError::Invalid(format!("unknown action kind {}", action.kind)));
        let result = kind.and_then(|kind| match action.object {
            Some(obj) => apply_one(tables, index, timestamp, kind, obj, &mut undo),
            None => Err(ApplyError::Invalid("action without object".into())),
        });
        match result {
            Ok((ev, obj)) => {
                events.push(Event {
                    kind: ev,
                    object: obj.clone(),
                });
                written.push(obj);
            }
            Err(e) => {
                for (kind, id, old) in undo.into_iter().rev() {
                    match old {
                        Some(o) => drop(put(tables, o)),
                        None => drop(remove(tables, kind, &id)),
                    }
                }
                return Err(e);
            }
        }
    }
    Ok((written, events))
}

fn apply_one(
    tables: &mut Tables,
    index: u64,
    ts: i64,
    action: StoreActionKind,
    mut obj: StoreObject,
    undo: &mut Vec<(Kind, String, Option<StoreObject>)>,
) -> Result<(EventKind, StoreObject), ApplyError> {
    let (kind, id) = object_key(&obj)
        .map(|(k, id)| (k, id.to_string()))
        .ok_or_else(|| ApplyError::Invalid("empty object".into()))?;
    if id.is_empty() {
        return Err(ApplyError::Invalid(format!("{kind} without an ID")));
    }
    // Only the existing row's version and creation time are needed to decide; the row
    // itself is taken out by the write below and kept for the undo, not copied here.
    let existing = existing_meta(tables, kind, &id);
    let given_version = meta_of(&obj).map(|m| m.version).unwrap_or(0);
    match action {
        StoreActionKind::Create => {
            if existing.is_some() {
                return Err(ApplyError::AlreadyExists { kind, id });
            }
            check_name(tables, kind, &obj, &id)?;
            *meta_mut(&mut obj) = Meta {
                version: index,
                created_at: ts,
                updated_at: ts,
            };
            share_spec(tables, &mut obj);
            put(tables, obj.clone());
            undo.push((kind, id, None));
            Ok((EventKind::Create, obj))
        }
        StoreActionKind::Update => {
            let old_meta = existing.ok_or_else(|| ApplyError::NotFound {
                kind,
                id: id.clone(),
            })?;
            if given_version != old_meta.version {
                return Err(ApplyError::Conflict {
                    kind,
                    id,
                    expected: given_version,
                    actual: old_meta.version,
                });
            }
            check_name(tables, kind, &obj, &id)?;
            *meta_mut(&mut obj) = Meta {
                version: index,
                created_at: old_meta.created_at,
                updated_at: ts,
            };
            share_spec(tables, &mut obj);
            let old = put(tables, obj.clone());
            undo.push((kind, id, old));
            Ok((EventKind::Update, obj))
        }
        StoreActionKind::Remove => {
            let actual = existing
                .ok_or_else(|| ApplyError::NotFound {
                    kind,
                    id: id.clone(),
                })?
                .version;
            if given_version != 0 && given_version != actual {
                return Err(ApplyError::Conflict {
                    kind,
                    id,
                    expected: given_version,
                    actual,
                });
            }
            let old = remove(tables, kind, &id).ok_or_else(|| ApplyError::NotFound {
                kind,
                id: id.clone(),
            })?;
            undo.push((kind, id, Some(old.clone())));
            Ok((EventKind::Remove, old))
        }
    }
}

fn check_name(tables: &Tables, kind: Kind, obj: &StoreObject, id: &str) -> Result<(), ApplyError> {
    let name = match obj.object.as_ref() {
        Some(Object::Service(x)) => x.unique_name(),
        Some(Object::Cluster(x)) => x.unique_name(),
        Some(Object::Secret(x)) => x.unique_name(),
        Some(Object::Config(x)) => x.unique_name(),
        Some(Object::Network(x)) => x.unique_name(),
        _ => None,
    };
    let Some(name) = name else { return Ok(()) };
    let owner = match kind {
        Kind::Service => tables.services.name_owner(name),
        Kind::Cluster => tables.clusters.name_owner(name),
        Kind::Secret => tables.secrets.name_owner(name),
        Kind::Config => tables.configs.name_owner(name),
        Kind::Network => tables.networks.name_owner(name),
        Kind::Node | Kind::Task => None,
    };
    match owner {
        Some(o) if o != id => Err(ApplyError::NameConflict {
            kind,
            name: name.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The version and times of the row `id`, if it exists (a row without them reads as zero).
fn existing_meta(tables: &Tables, kind: Kind, id: &str) -> Option<Meta> {
    fn of<T: StoreItem>(table: &crate::tables::Table<T>, id: &str) -> Option<Meta> {
        table.get(id).map(|x| x.meta().cloned().unwrap_or_default())
    }
    match kind {
        Kind::Node => of(&tables.nodes, id),
        Kind::Service => of(&tables.services, id),
        Kind::Task => of(&tables.tasks, id),
        Kind::Cluster => of(&tables.clusters, id),
        Kind::Secret => of(&tables.secrets, id),
        Kind::Config => of(&tables.configs, id),
        Kind::Network => of(&tables.networks, id),
    }
}

/// Before the row and the watch event are cloned from it, so both hold the shared spec.
fn share_spec(tables: &Tables, obj: &mut StoreObject) {
    if let Some(Object::Task(task)) = obj.object.as_mut() {
        tables.share_task_spec(task);
    }
}

/// Writes the row; returns the one it replaced.
fn put(tables: &mut Tables, obj: StoreObject) -> Option<StoreObject> {
    match obj.object {
        Some(Object::Node(x)) => tables.nodes.put(*x).map(StoreItem::into_object),
        Some(Object::Service(x)) => tables.services.put(*x).map(StoreItem::into_object),
        Some(Object::Task(x)) => tables.put_task(*x).map(StoreItem::into_object),
        Some(Object::Cluster(x)) => tables.clusters.put(*x).map(StoreItem::into_object),
        Some(Object::Secret(x)) => tables.secrets.put(*x).map(StoreItem::into_object),
        Some(Object::Config(x)) => tables.configs.put(*x).map(StoreItem::into_object),
        Some(Object::Network(x)) => tables.networks.put(*x).map(StoreItem::into_object),
        None => None,
    }
}

/// Removes the row; returns it.
fn remove(tables: &mut Tables, kind: Kind, id: &str) -> Option<StoreObject> {
    match kind {
        Kind::Node => tables.nodes.remove(id).map(StoreItem::into_object),
        Kind::Service => tables.services.remove(id).map(StoreItem::into_object),
        Kind::Task => tables.remove_task(id).map(StoreItem::into_object),
        Kind::Cluster => tables.clusters.remove(id).map(StoreItem::into_object),
        Kind::Secret => tables.secrets.remove(id).map(StoreItem::into_object),
        Kind::Config => tables.configs.remove(id).map(StoreItem::into_object),
        Kind::Network => tables.networks.remove(id).map(StoreItem::into_object),
    }
}

fn meta_of(o: &StoreObject) -> Option<&Meta> {
    match o.object.as_ref()? {
        Object::Node(x) => x.meta(),
        Object::Service(x) => x.meta(),
        Object::Task(x) => x.meta(),
        Object::Cluster(x) => x.meta(),
        Object::Secret(x) => x.meta(),
        Object::Config(x) => x.meta(),
        Object::Network(x) => x.meta(),
    }
}

fn meta_mut(o: &mut StoreObject) -> &mut Meta {
    match o
        .object
        .get_or_insert_with(|| Object::Task(Default::default()))
    {
        Object::Node(x) => x.meta_mut(),
        Object::Service(x) => x.meta_mut(),
        Object::Task(x) => x.meta_mut(),
        Object::Cluster(x) => x.meta_mut(),
        Object::Secret(x) => x.meta_mut(),
        Object::Config(x) => x.meta_mut(),
        Object::Network(x) => x.meta_mut(),
    }
}
