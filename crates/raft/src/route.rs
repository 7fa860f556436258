//! The manager's way to the leader, from Raft's view of who leads: used to forward control and
//! CA calls from a follower, and by the membership service to point joiners at the leader.
//! Dials through the member's own peer connector.

use crate::leadership::Leadership;
use crate::network::PeerConnector;
use std::sync::Arc;
use swarm_api::route::LeaderRoute;
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic::Status;

pub struct RaftRoute {
    leadership: watch::Receiver<Leadership>,
    peers: Arc<dyn PeerConnector>,
}

impl RaftRoute {
    pub(crate) fn new(
        leadership: watch::Receiver<Leadership>,
        peers: Arc<dyn PeerConnector>,
    ) -> RaftRoute {
        RaftRoute { leadership, peers }
    }
}

impl LeaderRoute for RaftRoute {
    fn leader(&self) -> Option<Result<Channel, Status>> {
        let l = self.leadership.borrow().clone();
        if l.is_leader {
            return None;
        }
        Some(match l.leader_addr {
            Some(addr) => self
                .peers
                .channel(&addr)
                .map_err(|e| Status::unavailable(e.to_string())),
            None => Err(Status::unavailable(
                "no leader: the managers are electing one or have lost quorum; retry shortly",
            )),
        })
    }

    fn leader_addr(&self) -> Option<String> {
        let l = self.leadership.borrow();
        if l.is_leader {
            None
        } else {
            l.leader_addr.clone()
        }
    }
}
