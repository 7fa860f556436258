//! A node's life across role changes. The node runs in the role its certificate names; when
//! the managers record another role for it (promotion, demotion), it renews its certificate,
//! stops everything of the old role and starts again in the new one, in the same process.

use crate::autolock::LocalKeys;
use crate::config::NodeConfig;
use crate::error::{Context, Result};
use crate::identity::{self, NodeIdentity};
use crate::metrics_http::NodeMetrics;
use crate::role::{run_role, Outcome};
use crate::role_env::RoleEnv;
use std::sync::Arc;
use swarm_api::{now_ms, NodeRole};

pub async fn run_node(
    env: &RoleEnv<'_>,
    mut node: NodeIdentity,
    keys: Arc<LocalKeys>,
    metrics: Arc<NodeMetrics>,
) -> Result<()> {
    loop {
        match run_role(env, &node, &keys, &metrics).await? {
            Outcome::Stopped => return Ok(()),
            Outcome::RoleChanged(creds) => {
                if creds.role == NodeRole::Worker {
                    set_raft_aside(env.cfg)?;
                    // Autolock covers managers only: a worker must restart without a key.
                    keys.set_key(None)?;
                }
                tracing::info!(role = ?creds.role, "certificate renewed for a new role; restarting in it");
                node = NodeIdentity {
                    managers: identity::known_managers(&env.cfg.state_dir),
                    creds,
                    new_cluster: None,
                };
            }
        }
    }
}

/// A demoted manager's Raft state is of no further use, and would stop it from joining afresh
/// if promoted again: kept aside, not deleted.
fn set_raft_aside(cfg: &NodeConfig) -> Result<()> {
    let raft = cfg.state_dir.join("raft");
    if raft.exists() {
        let aside = cfg.state_dir.join(format!("raft.demoted-{}", now_ms()));
        std::fs::rename(&raft, &aside)
            .with_context(|| format!("moving {} aside", raft.display()))?;
    }
    Ok(())
}
