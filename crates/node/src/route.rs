//! The manager's way to the leader, from Raft's view of who leads: used to forward control and
//! CA calls from a follower, and by the membership service to point joiners at the leader.

use crate::peers::TlsPeers;
use swarm_manager::LeaderRoute;
use swarm_raft::{Leadership, PeerConnector};
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic::Status;

pub struct RaftRoute {
    pub leadership: watch::Receiver<Leadership>,
    pub peers: TlsPeers,
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
