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
    run_loop(cfg, store, cancel, move || {
        let txn = view.view(pass);
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

/// One look at the cluster and its nodes: the writes that move the rotation along.
fn pass(t: &Tables) -> Option<Txn> {
    let cluster = t.default_cluster()?;
    let signer = match Signer::of(cluster) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e.message(), "root CA in the store is unusable");
            return None;
        }
    };
    let mut txn = Txn::new();
    let rotating = cluster
        .root_ca
        .as_ref()
        .is_some_and(|r| r.root_rotation.is_some());
    if rotating && t.nodes.iter().all(|n| signed_by_new(n, &signer)) {
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
