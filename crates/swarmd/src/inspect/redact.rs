//! What `inspect-state` must never print: the CA key and secret data are removed, join tokens
//! masked, in every format. Only changes the report it is given.

use swarm_api::{store_object::Object, Cluster, StoreObject, StoreSnapshot};
use swarm_raft::{EntryKind, StateReport};

/// Removes the CA key and secret data and masks join tokens everywhere in the report: the
/// snapshot, the replayed state and every logged transaction.
pub(super) fn redact_report(r: &mut StateReport) {
    if let Some(s) = &mut r.snapshot {
        redact_snapshot(&mut s.objects);
    }
    redact_snapshot(&mut r.current);
    for e in &mut r.entries {
        if let EntryKind::Normal { batches } = &mut e.kind {
            for a in batches.iter_mut().flat_map(|b| b.actions.iter_mut()) {
                if let Some(StoreObject { object: Some(o) }) = &mut a.object {
                    redact_object(o);
                }
            }
        }
    }
}

fn redact_snapshot(s: &mut StoreSnapshot) {
    for c in &mut s.clusters {
        redact_cluster(c);
    }
    for sec in &mut s.secrets {
        if let Some(spec) = &mut sec.spec {
            spec.data.clear();
        }
    }
}

fn redact_object(o: &mut Object) {
    match o {
        Object::Cluster(c) => redact_cluster(c),
        Object::Secret(s) => {
            if let Some(spec) = &mut s.spec {
                spec.data.clear();
            }
        }
        _ => {}
    }
}

fn redact_cluster(c: &mut Cluster) {
    if let Some(ca) = &mut c.root_ca {
        ca.ca_key.clear();
        if let Some(t) = &mut ca.join_tokens {
            t.worker = mask_token(&t.worker);
            t.manager = mask_token(&t.manager);
        }
    }
}

/// `SWMTKN-1-<digest>-<secret>` → `SWMTKN-1-<digest prefix>…-****`: enough to tell clusters
/// apart, useless for joining. Anything not shaped like a token is masked whole.
pub(super) fn mask_token(t: &str) -> String {
    if t.is_empty() {
        return String::new();
    }
    let parts: Vec<&str> = t.split('-').collect();
    match parts.as_slice() {
        [prefix, version, digest, _secret] if *prefix == swarm_ca::TOKEN_PREFIX => {
            let short: String = digest.chars().take(8).collect();
            format!("{prefix}-{version}-{short}…-****")
        }
        _ => "****".to_string(),
    }
}

// ---- text ----
