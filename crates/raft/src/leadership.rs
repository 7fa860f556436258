//! Leadership events: who leads, in which term, and whether it is us, derived from openraft's
//! metrics. Owns the watch channel only; acting on leadership is the manager's job.

use openraft::{RaftMetrics, ServerState};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::types::{Node, NodeId, OpenRaft};

/// One view of the cluster's leadership as this member sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leadership {
    /// This member is the leader and may accept proposals.
    pub is_leader: bool,
    pub leader_id: Option<u64>,
    /// The leader's advertised address, from the membership config.
    pub leader_addr: Option<String>,
    pub term: u64,
}

pub(crate) fn from_metrics(m: &RaftMetrics<NodeId, Node>) -> Leadership {
    let leader_addr = m.current_leader.and_then(|id| {
        m.membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
    });
    Leadership {
        is_leader: m.state == ServerState::Leader && m.current_leader == Some(m.id),
        leader_id: m.current_leader,
        leader_addr,
        term: m.current_term,
    }
}

/// Follows openraft's metrics and publishes a new [`Leadership`] only when it changes, so
/// watchers are not woken by every applied entry.
pub(crate) fn spawn_watcher(raft: &OpenRaft, tx: watch::Sender<Leadership>) -> JoinHandle<()> {
    let mut metrics = raft.metrics();
    tokio::spawn(async move {
        loop {
            let next = from_metrics(&metrics.borrow_and_update());
            tx.send_if_modified(|cur| {
                if *cur == next {
                    false
                } else {
                    *cur = next;
                    true
                }
            });
            if metrics.changed().await.is_err() {
                break;
            }
        }
        // Raft stopped: nobody here leads any more.
        tx.send_modify(|cur| {
            cur.is_leader = false;
            cur.leader_id = None;
            cur.leader_addr = None;
        });
    })
}
