//! Who this node is: its certificate, from the state dir on a restart, from a manager when
//! joining with a token, or self-issued by a new cluster's root CA when bootstrapping.

use crate::autolock::LocalKeys;
use crate::config::NodeConfig;
use crate::error::{bail, Context, Result};
use std::path::Path;
use swarm_api::*;
use swarm_ca::{NodeCredentials, RootCa};

/// A cluster being created by this node; its objects are written once Raft is up.
pub struct NewCluster {
    pub root: RootCa,
}

pub struct NodeIdentity {
    pub creds: NodeCredentials,
    pub new_cluster: Option<NewCluster>,
    /// Managers' remote API addresses known to this node.
    pub managers: Vec<String>,
}

const REMOTES_FILE: &str = "remotes";

/// Managers' addresses this node knows from its state dir.
pub fn known_managers(dir: &Path) -> Vec<String> {
    read_remotes(dir)
}

fn read_remotes(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join(REMOTES_FILE))
        .map(|s| {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn write_remotes(dir: &Path, remotes: &[String]) -> Result<()> {
    let tmp = dir.join(format!("{REMOTES_FILE}.tmp"));
    std::fs::write(&tmp, remotes.join("\n")).context("saving manager addresses")?;
    std::fs::rename(&tmp, dir.join(REMOTES_FILE)).context("saving manager addresses")?;
    Ok(())
}

/// This node's identity; `advertise` is the remote API address it tells the CA when joining.
pub async fn obtain(cfg: &NodeConfig, advertise: &str, keys: &LocalKeys) -> Result<NodeIdentity> {
    let dir = &cfg.state_dir;
    let join_addr = cfg.join.as_ref().map(|j| &j.addr);
    if let Some(creds) = keys.load_credentials().context("loading certificates")? {
        if join_addr.is_some() {
            tracing::info!("state dir already holds this node's identity; ignoring --join-addr");
        }
        let mut managers = read_remotes(dir);
        if let Some(a) = join_addr {
            if !managers.contains(a) {
                managers.insert(0, a.clone());
            }
        }
        return Ok(NodeIdentity {
            creds,
            new_cluster: None,
            managers,
        });
    }
    if let Some(crate::config::Join { addr, token }) = &cfg.join {
        let creds = swarm_ca::join(addr, token, &cfg.hostname(), advertise)
            .await
            .with_context(|| format!("joining {addr}"))?;
        creds.save(dir).context("saving certificates")?;
        write_remotes(dir, std::slice::from_ref(addr))?;
        return Ok(NodeIdentity {
            creds,
            new_cluster: None,
            managers: vec![addr.clone()],
        });
    }
    if dir.join("raft").exists() {
        bail!(
            "state dir {} holds Raft data but no certificates; remove it to start a new cluster",
            dir.display()
        );
    }
    let root = RootCa::generate().context("creating the root CA")?;
    let cluster_id = ids::new_id();
    let node_id = ids::new_id();
    let (cert, key) = root
        .issue(
            &node_id,
            NodeRole::Manager,
            &cluster_id,
            defaults::NODE_CERT_EXPIRY_MS,
        )
        .context("issuing this manager's certificate")?;
    let creds = NodeCredentials::from_pems(cert, key, root.cert_pem().to_string())?;
    Ok(NodeIdentity {
        creds,
        new_cluster: Some(NewCluster { root }),
        managers: vec![],
    })
}

/// Saves the identity of a bootstrapped node once its cluster exists in the store.
pub fn save_new(dir: &Path, creds: &NodeCredentials, advertise: &str) -> Result<()> {
    creds.save(dir).context("saving certificates")?;
    write_remotes(dir, &[advertise.to_string()])
}
