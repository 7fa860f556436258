//! `--force-new-cluster`: restarts a surviving manager as the only member of a new Raft group,
//! keeping the cluster's objects (services, tasks, nodes and their identities, the CA). For
//! when a majority of managers is lost for good.
//!
//! As etcd does, every transaction in the local log counts, committed or not as far as this
//! manager knew: an acknowledged write may sit in its log before it learned of the commit. The
//! old Raft directory is kept aside, never deleted.
//!
//! The log and snapshots are sealed (`swarm_raft::at_rest`); `swarm_raft::inspect` opens them
//! with the data key kept in the state dir, and the moved-aside directory keeps its own wrapped
//! key so it stays readable. An entry or snapshot that fails to open (tampered, or another
//! key) is refused, naming it, rather than recovering a silently shortened history.

use crate::error::{bail, Context, Result};
use std::path::Path;
use swarm_api::*;
use swarm_manager::Proposer;
use swarm_raft::EntryKind;
use swarm_store::{Store, Txn};

/// Reads this manager's state out of its Raft log and snapshot, and moves that Raft
/// directory aside.
pub fn recover_state(state_dir: &Path) -> Result<StoreSnapshot> {
    let report =
        swarm_raft::inspect(state_dir).context("--force-new-cluster: reading the Raft state")?;
    if let Some(w) = report
        .warnings
        .iter()
        .find(|w| w.starts_with("skipped unreadable snapshot"))
    {
        bail!("--force-new-cluster: {w}; see `swarmd inspect-state`");
    }
    let store = Store::new();
    if let Some(s) = &report.snapshot {
        store.restore(s.objects.clone());
    }
    for e in &report.entries {
        match &e.kind {
            // Refusals were refusals at run time too.
            EntryKind::Normal { batches } => drop(store.apply_group(e.index, batches)),
            EntryKind::Unreadable { error } => {
                bail!("--force-new-cluster: {error}; see `swarmd inspect-state`")
            }
            EntryKind::Blank | EntryKind::Membership { .. } => {}
        }
    }
    let state = store.snapshot();
    if state.clusters.is_empty() {
        bail!("--force-new-cluster: the Raft state holds no cluster");
    }
    let aside = state_dir.join(format!("raft.before-force-new-cluster-{}", now_ms()));
    std::fs::rename(state_dir.join("raft"), &aside).with_context(|| {
        format!(
            "--force-new-cluster: moving the old Raft state to {}",
            aside.display()
        )
    })?;
    tracing::warn!(old = %aside.display(), "forcing a new cluster; the old Raft state is kept there");
    Ok(state)
}

/// Writes the recovered objects into the new one-member cluster. This manager becomes the
/// leader; the managers left behind are no longer members and show as unreachable.
pub async fn reseed(
    proposer: &dyn Proposer,
    state: StoreSnapshot,
    me: &str,
    raft_id: u64,
    addr: &str,
) -> Result<()> {
    let mut first = Txn::new();
    for c in state.clusters {
        first = first.create(c);
    }
    for mut n in state.nodes {
        if let Some(m) = n.manager_status.as_mut() {
            let mine = n.id == me;
            m.leader = mine;
            m.reachability = if mine {
                Reachability::Reachable
            } else {
                Reachability::Unreachable
            } as i32;
            if mine {
                m.raft_id = raft_id;
                m.addr = addr.to_string();
            }
        }
        first = first.create(n);
    }
    proposer
        .propose(first.into_batch())
        .await
        .context("--force-new-cluster: writing the cluster and nodes")?;
    let mut rest = Txn::new();
    for s in state.services {
        rest = rest.create(s);
    }
    for t in state.tasks {
        rest = rest.create(t);
    }
    for s in state.secrets {
        rest = rest.create(s);
    }
    for c in state.configs {
        rest = rest.create(c);
    }
    for batch in rest.into_batches(1_000) {
        proposer
            .propose(batch)
            .await
            .context("--force-new-cluster: writing services and tasks")?;
    }
    Ok(())
}
