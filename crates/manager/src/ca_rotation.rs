//! The root rotation reconciler (leader only): asks every node whose recorded certificate is
//! not from the current signer, or came with another trust bundle, to renew (status ROTATE,
//! which reaches the node through its session), and finishes a rotation once every node holds
//! a certificate from the new root: the new root becomes the root, the join tokens name its
//! digest, and the old root is dropped — which changes the trust bundle, so every node renews
//! once more and stops trusting the old root.
//!
//! Owns: the ROTATE flags on node certificates and the end of a rotation. Must not touch:
//! signing (the CA service) or starting a rotation (the control API).

use crate::ca_signer::Signer;
use crate::component_loop::{run_loop, LoopConfig};
use crate::proposer::Proposer;
use std::sync::Arc;
use std::time::Duration;
use swarm_api::*;
use swarm_store::{Store, Tables, Txn};
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(store: Store, proposer: Arc<dyn Proposer>, cancel: CancellationToken) {
    let cfg = LoopConfig {
        name: "ca-rotation",
        debounce: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        tick: Duration::from_secs(2),
        leading_edge: false,
        relevant: None,
    };
    let view = store.clone();
    let mut signer = SignerCache::default();
    run_loop(cfg, store, cancel, move || {
        let txn = view.view(|t| pass(t, &mut signer));
        let proposer = proposer.clone();
        async move {
            match txn {
                Some(txn) if !txn.is_empty() => proposer.propose(txn.into_batch()).await.is_err(),
                _ => false,
            }
        }
    })
    .await;
}

/// The signer of the cluster object's version it was read from. The pass runs after every
/// change (status reports flow all the time in a big cluster), and reading the signer parses
/// the root's certificate and key and hashes the trust bundle; the cluster object changes
/// rarely, and every change gives it a new version.
#[derive(Default)]
struct SignerCache {
    of_version: u64,
    signer: Option<Signer>,
}

impl SignerCache {
    fn get(&mut self, cluster: &Cluster) -> Option<&Signer> {
        let version = cluster.meta.as_ref().map_or(0, |m| m.version);
        // Version 0: an object the store never wrote (no meta), not worth remembering.
        if version == 0 || self.of_version != version {
            self.signer = None;
        }
        if self.signer.is_none() {
            match Signer::of(cluster) {
                Ok(s) => {
                    self.signer = Some(s);
                    self.of_version = version;
                }
                Err(e) => {
                    tracing::error!(error = %e.message(), "root CA in the store is unusable");
                    return None;
                }
            }
        }
        self.signer.as_ref()
    }
}

/// One look at the cluster and its nodes: the writes that move the rotation along.
fn pass(t: &Tables, signer: &mut SignerCache) -> Option<Txn> {
    let cluster = t.default_cluster()?;
    let signer = signer.get(cluster)?;
    let mut txn = Txn::new();
    let rotating = cluster
        .root_ca
        .as_ref()
        .is_some_and(|r| r.root_rotation.is_some());
    if rotating && t.nodes.iter().all(|n| signed_by_new(n, signer)) {
        return finish(cluster).map(|c| txn.update(c));
    }
    for node in t.nodes.iter() {
        let cert = node.certificate.as_ref();
        if signer.is_current(cert)
            || cert.is_some_and(|c| c.status == CertificateStatus::Rotate as i32)
        {
            continue;
        }
        let mut n = node.clone();
        n.certificate.get_or_insert_with(Default::default).status =
            CertificateStatus::Rotate as i32;
        txn = txn.update(n);
    }
    Some(txn)
}

fn signed_by_new(node: &Node, signer: &Signer) -> bool {
    node.certificate
        .as_ref()
        .is_some_and(|c| c.signer_digest == signer.signer_digest)
}

/// The cluster with the rotation completed, or None if the stored material is unusable.
fn finish(cluster: &Cluster) -> Option<Cluster> {
    let mut c = cluster.clone();
    let rc = c.root_ca.as_mut()?;
    let rot = rc.root_rotation.take()?;
    let next = swarm_ca::RootCa::from_pem(&String::from_utf8_lossy(&rot.ca_cert), None).ok()?;
    rc.ca_cert = rot.ca_cert;
    rc.ca_key = rot.ca_key;
    rc.ca_cert_hash = next.digest();
    if let Some(tokens) = rc.join_tokens.as_mut() {
        for tok in [&mut tokens.worker, &mut tokens.manager] {
            match swarm_ca::retarget_join_token(tok, &next) {
                Ok(t) => *tok = t,
                // A malformed stored token would be refused anyway: replace it.
                Err(_) => *tok = swarm_ca::generate_join_token(&next),
            }
        }
    }
    tracing::info!(root = %next.digest(), "root CA rotation complete: every node holds a certificate from the new root");
    Some(c)
}

/// How far a rotation has come: (nodes holding a certificate from the new root, all nodes).
pub(crate) fn progress(t: &Tables) -> Option<(usize, usize)> {
    let cluster = t.default_cluster()?;
    cluster.root_ca.as_ref()?.root_rotation.as_ref()?;
    let signer = Signer::of(cluster).ok()?;
    let done = t.nodes.iter().filter(|n| signed_by_new(n, &signer)).count();
    Some((done, t.nodes.len()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::objects::{issued_by_root, joined_node, new_cluster};
    use swarm_ca::RootCa;

    fn worker(i: usize, root: &RootCa) -> Node {
        let id = format!("node{i}");
        let (cert, _key) = root.issue(&id, NodeRole::Worker, "c1", 3_600_000).unwrap();
        let record = issued_by_root(root, NodeRole::Worker, &cert, i64::MAX).unwrap();
        joined_node(&id, &format!("host-{i}"), NodeRole::Worker, "", record)
    }

    fn rotate_flags(t: &Tables) -> usize {
        t.nodes
            .iter()
            .filter(|n| {
                n.certificate
                    .as_ref()
                    .is_some_and(|c| c.status == CertificateStatus::Rotate as i32)
            })
            .count()
    }

    /// The signer is remembered between passes, but only for the cluster object's version it
    /// was read from: a root written after a pass is the one the next pass checks against.
    #[test]
    fn a_root_written_after_a_pass_is_seen_by_the_next_one() {
        let store = Store::new();
        let first = RootCa::generate().unwrap();
        let mut txn = Txn::new().create(new_cluster(&first, "c1", Default::default()).unwrap());
        for i in 0..3 {
            txn = txn.create(worker(i, &first));
        }
        store.apply(1, &txn.into_batch()).unwrap();
        let mut cache = SignerCache::default();
        let quiet = store.view(|t| pass(t, &mut cache)).unwrap();
        assert!(
            quiet.is_empty(),
            "every node holds a certificate from the root"
        );

        // Another root, written as a plain cluster update (a restore of an old backup would
        // look the same): the nodes' certificates no longer come from the signer.
        let second = RootCa::generate().unwrap();
        let mut cluster = store.view(|t| t.default_cluster().cloned()).unwrap();
        let rc = cluster.root_ca.as_mut().unwrap();
        rc.ca_cert = second.cert_pem().as_bytes().to_vec();
        rc.ca_key = second.key_pem().unwrap().as_bytes().to_vec();
        store
            .apply(2, &Txn::new().update(cluster).into_batch())
            .unwrap();
        let txn = store.view(|t| pass(t, &mut cache)).unwrap();
        store.apply(3, &txn.into_batch()).unwrap();
        assert_eq!(store.view(rotate_flags), 3, "every node asked to renew");
    }
}
