//! Opening a session: the node's record is brought up to date (READY, what the agent says
//! about itself, the address it came from) and the session is registered.
//!
//! Owns the order of those two steps; must not touch the session's streams (`mod.rs`) nor
//! decide when a node is DOWN (`health.rs`).

use super::Dispatcher;
use crate::proposer::WriteError;
use swarm_api::*;
use swarm_store::Txn;
use tokio_util::sync::CancellationToken;
use tonic::Status;

impl Dispatcher {
    /// Records what the agent says about itself, marks it READY and opens its session.
    /// `seen_from` is the address the connection came from: the node's IP as the cluster sees
    /// it (what `node.ip` constraints match), whatever the agent advertises.
    ///
    /// A node that reopens its session with nothing new while its previous session is still
    /// live costs no Raft write: in a reconnect storm every agent retries session opens it gave
    /// up on, and each was a write. Once the health loop has expired the previous session a
    /// DOWN write may be on its way, and only a write of ours, whose version check orders it
    /// against that one, can leave the node READY; so then it writes.
    pub(super) async fn register(
        &self,
        node_id: &str,
        req: &SessionRequest,
        seen_from: Option<std::net::SocketAddr>,
    ) -> Result<(Node, String, CancellationToken), Status> {
        // Held until the session is registered: the health loop must not write the node DOWN
        // between our READY write and then.
        let _opening = self.inner.sessions.opening(node_id);
        for _ in 0..5 {
            let node = self
                .inner
                .store
                .view(|t| t.nodes.get(node_id).cloned())
                .ok_or_else(|| {
                    Status::permission_denied(format!(
                        "node {node_id} is not a member of this cluster"
                    ))
                })?;
            let n = registered(&node, req, seen_from);
            if n == node {
                if let Some((id, cancel)) = self.inner.sessions.replace_live(node_id) {
                    return Ok((node, id, cancel));
                }
            }
            match self
                .inner
                .proposer
                .propose(Txn::new().update(n).into_batch())
                .await
            {
                Ok(written) => {
                    let node = crate::control::first(written, |o| match o {
                        store_object::Object::Node(n) => Some(*n),
                        _ => None,
                    })
                    .unwrap_or(node);
                    let (id, cancel) = self.inner.sessions.open(node_id);
                    return Ok((node, id, cancel));
                }
                Err(WriteError::Refused(swarm_store::ApplyError::Conflict { .. })) => continue,
                Err(e) => return Err(Status::unavailable(e.to_string())),
            }
        }
        Err(Status::unavailable(
            "could not record the node's session; retry",
        ))
    }
}

/// `node` as the session opening records it.
fn registered(node: &Node, req: &SessionRequest, seen_from: Option<std::net::SocketAddr>) -> Node {
    let mut n = node.clone();
    if req.description.is_some() {
        n.description = req.description.clone();
    }
    n.status = Some(NodeStatus {
        state: NodeState::Ready as i32,
        message: String::new(),
        addr: match seen_from {
            Some(a) => a.ip().to_string(),
            None if req.addr.is_empty() => node
                .status
                .as_ref()
                .map(|s| s.addr.clone())
                .unwrap_or_default(),
            None => req.addr.clone(),
        },
    });
    n
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::route::AlwaysLeader;
    use std::sync::Arc;
    use swarm_store::Store;
    use swarm_tasks::TaskOwner;
    use swarm_testkit::{fixtures, MemoryProposer};

    fn version(store: &Store, id: &str) -> u64 {
        store.view(|t| t.nodes.get(id).unwrap().meta.as_ref().unwrap().version)
    }

    fn opening(hostname: &str) -> SessionRequest {
        SessionRequest {
            description: Some(NodeDescription {
                hostname: hostname.into(),
                ..Default::default()
            }),
            addr: "192.0.2.7".into(),
        }
    }

    /// Reopening with nothing new while the last session lives writes nothing and replaces
    /// that session; once the health loop expired it, or when the agent says something new,
    /// the opening writes (so a DOWN write in flight cannot outlast it).
    #[tokio::test]
    async fn a_reopened_session_writes_only_what_is_new_or_after_expiry() {
        let store = Store::new();
        let owner = TaskOwner::new();
        let proposer = MemoryProposer::new(store.clone());
        store
            .apply(0, &Txn::new().create(fixtures::node("n1")).into_batch())
            .unwrap();
        let d = Dispatcher::new(
            store.clone(),
            proposer,
            "cluster".into(),
            "127.0.0.1:4242".into(),
            Arc::new(AlwaysLeader),
            &owner,
        );

        let (_, first, first_cancel) = d.register("n1", &opening("a"), None).await.unwrap();
        let written = version(&store, "n1");
        let (node, second, _) = d.register("n1", &opening("a"), None).await.unwrap();
        assert_eq!(version(&store, "n1"), written, "nothing new: no write");
        assert_eq!(node.status.as_ref().unwrap().state, NodeState::Ready as i32);
        assert_ne!(first, second, "a new session");
        assert!(first_cancel.is_cancelled(), "the old session ends");
        assert!(d.inner.sessions.check("n1", &second).is_some());

        let (_, third, _) = d.register("n1", &opening("b"), None).await.unwrap();
        assert!(
            version(&store, "n1") > written,
            "a new description is written"
        );
        let written = version(&store, "n1");

        // The health loop expires the session (a DOWN write may follow it).
        d.inner.sessions.end("n1");
        assert!(d.inner.sessions.check("n1", &third).is_none());
        let (_, fourth, _) = d.register("n1", &opening("b"), None).await.unwrap();
        assert!(
            version(&store, "n1") > written,
            "after expiry the opening writes, nothing new or not"
        );
        assert!(d.inner.sessions.check("n1", &fourth).is_some());
        owner.stop().await;
    }
}
