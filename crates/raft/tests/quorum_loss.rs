//! Check-quorum: a leader cut off from both followers fails writes fast with a "quorum" error
//! and stops reporting leadership; the other two elect a leader and keep writing; after the
//! links heal the old leader follows, every store converges, and nothing acknowledged is lost.
//!
//! Links are cut with a small TCP relay per directed link (member A dialing member B goes
//! through relay A→B), so one direction can be cut while the rest of the mesh keeps working.
//! Cutting drops live connections as well as refusing new ones: an HTTP/2 connection that is
//! already up would otherwise keep carrying heartbeats.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use swarm_raft::{RaftNode, WriteError};
use swarm_store::Store;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};

/// One directed link's relay; `cut` drops its connections and refuses new ones while true.
struct Link {
    relay_addr: String,
    cut: watch::Sender<bool>,
}

/// The relays of the whole mesh, keyed by (dialing member, target address).
#[derive(Default)]
struct Mesh {
    links: Mutex<HashMap<(u64, String), Arc<Link>>>,
}

impl Mesh {
    /// The relay for `from` dialing `to`, started on first use.
    fn link(&self, from: u64, to: &str) -> Result<Arc<Link>, String> {
        let mut links = self.links.lock().unwrap();
        if let Some(l) = links.get(&(from, to.to_string())) {
            return Ok(l.clone());
        }
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let relay_addr = std_listener
            .local_addr()
            .map_err(|e| e.to_string())?
            .to_string();
        let listener = TcpListener::from_std(std_listener).map_err(|e| e.to_string())?;
        let (cut, cut_rx) = watch::channel(false);
        tokio::spawn(relay(listener, to.to_string(), cut_rx));
        let link = Arc::new(Link { relay_addr, cut });
        links.insert((from, to.to_string()), link.clone());
        Ok(link)
    }

    /// Cuts (or heals) both directions between `a` and `b`.
    fn set_cut(&self, a: (u64, &str), b: (u64, &str), cut: bool) {
        for (from, to) in [(a.0, b.1), (b.0, a.1)] {
            self.link(from, to).unwrap().cut.send_replace(cut);
        }
    }
}

async fn relay(listener: TcpListener, target: String, cut: watch::Receiver<bool>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            return;
        };
        if *cut.borrow() {
            continue; // dropped: the dialer sees the connection close
        }
        let target = target.clone();
        let mut cut = cut.clone();
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(&target).await else {
                return;
            };
            let (mut a, mut b) = (inbound, outbound);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                _ = cut.wait_for(|c| *c) => {}
            }
        });
    }
}

/// The connector of one member: every peer is dialed through that member's relays.
struct Via {
    me: u64,
    mesh: Arc<Mesh>,
}

impl swarm_raft::PeerConnector for Via {
    fn channel(&self, addr: &str) -> Result<Channel, swarm_raft::PeerConnectError> {
        let link = self.mesh.link(self.me, addr).map_err(|reason| {
            swarm_raft::PeerConnectError::NoRoute {
                addr: addr.into(),
                reason,
            }
        })?;
        Ok(Endpoint::from_shared(format!("http://{}", link.relay_addr))
            .map_err(|source| swarm_raft::PeerConnectError::Endpoint {
                addr: addr.into(),
                source,
            })?
            // Without a connect timeout a dial into a cut link could hang until the RPC's own
            // deadline; failing fast keeps the retries (and this test) quick.
            .connect_timeout(Duration::from_millis(200))
            .connect_lazy())
    }
}

struct Member {
    id: u64,
    node: RaftNode,
    store: Store,
    addr: String,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start(id: u64, mesh: &Arc<Mesh>) -> Member {
    let dir = tempfile::tempdir().unwrap();
    let (listener, addr) = listener().await;
    let addr = addr.to_string();
    // 50 ms ticks: heartbeat every 50 ms, election timeout 500 ms.
    let cfg = config(dir.path(), id, &addr);
    let store = Store::new();
    let connector = Arc::new(Via {
        me: id,
        mesh: mesh.clone(),
    });
    let node = RaftNode::open(cfg, store.clone(), connector).await.unwrap();
    let server = serve(&node, listener);
    Member {
        id,
        node,
        store,
        addr,
        server,
        _dir: dir,
    }
}

fn names_of(ids: &BTreeSet<usize>) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|i| format!("service-{i}")).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_fails_fast_and_rejoins_without_losing_writes() {
    let mesh = Arc::new(Mesh::default());
    let m1 = start(1, &mesh).await;
    let m2 = start(2, &mesh).await;
    let m3 = start(3, &mesh).await;
    let election = Duration::from_millis(500);

    form_cluster(&m1.node, &[(2, &m2.addr), (3, &m3.addr)]).await;

    // Every proposal that returned Ok; each must end up in every store.
    let mut acked = BTreeSet::new();
    for i in 0..10 {
        m1.node.propose(create_service(i)).await.unwrap();
        acked.insert(i);
    }
    // A healthy leader with fresh acknowledgements keeps leading through several windows.
    tokio::time::sleep(election * 5).await;
    assert!(m1.node.leadership().borrow().is_leader);
    m1.node.propose(create_service(10)).await.unwrap();
    acked.insert(10);

    // Cut the leader off from both followers, then propose on it right away: these entries
    // reach its log but can never commit.
    mesh.set_cut((1, &m1.addr), (2, &m2.addr), true);
    mesh.set_cut((1, &m1.addr), (3, &m3.addr), true);
    let cut_at = tokio::time::Instant::now();
    let mut in_flight = Vec::new();
    for i in 100..105 {
        let node = m1.node.clone();
        in_flight.push(tokio::spawn(async move {
            let r = node.propose(create_service(i)).await;
            (i, r, cut_at.elapsed())
        }));
    }
    let mut refused = BTreeSet::new();
    for h in in_flight {
        let (i, r, took) = h.await.unwrap();
        match r {
            Err(WriteError::Unavailable(msg)) => {
                assert!(
                    msg.contains("quorum"),
                    "error should say quorum is lost: {msg}"
                );
                // The window is openraft's leader lease, two election timeouts after the last
                // ack (which came at most a heartbeat before the cut); allow scheduling slack
                // on a busy 2-core machine.
                assert!(
                    took <= election * 2 + Duration::from_millis(300),
                    "propose failed only after {took:?}"
                );
                refused.insert(i);
            }
            other => panic!("isolated leader answered {other:?} for service {i}"),
        }
    }
    // The leadership watch reports the loss.
    let l = m1.node.leadership().borrow().clone();
    assert!(
        !l.is_leader,
        "isolated leader still claims leadership: {l:?}"
    );
    assert_eq!(l.leader_id, None);
    // Known lost: the next proposal fails at once.
    let t = tokio::time::Instant::now();
    match m1.node.propose(create_service(105)).await {
        Err(WriteError::Unavailable(msg)) if msg.contains("quorum") => {}
        other => panic!("expected a quorum error, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "took {:?}",
        t.elapsed()
    );
    refused.insert(105);
    // Reads of the last known state still work on the cut-off member.
    assert_eq!(service_names(&m1.store), names_of(&acked));

    // The other two elect a leader among themselves and take writes.
    let mut rx2 = m2.node.leadership();
    let mut rx3 = m3.node.leadership();
    let new_leader = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if rx2.borrow().is_leader {
                return &m2;
            }
            if rx3.borrow().is_leader {
                return &m3;
            }
            tokio::select! {
                _ = rx2.changed() => {}
                _ = rx3.changed() => {}
            }
        }
    })
    .await
    .expect("the majority side elects a leader");
    for i in 200..210 {
        new_leader.node.propose(create_service(i)).await.unwrap();
        acked.insert(i);
    }
    // Still cut off: the old leader keeps refusing and does not claim leadership back.
    assert!(!m1.node.leadership().borrow().is_leader);
    assert!(matches!(
        m1.node.propose(create_service(106)).await,
        Err(WriteError::Unavailable(_))
    ));
    refused.insert(106);

    // Heal: the old leader follows the new one and catches up.
    mesh.set_cut((1, &m1.addr), (2, &m2.addr), false);
    mesh.set_cut((1, &m1.addr), (3, &m3.addr), false);
    let l = wait_for(&m1.node, "old leader follows the new one", |l| {
        l.leader_id == Some(new_leader.id)
    })
    .await;
    assert!(!l.is_leader);
    match m1.node.propose(create_service(300)).await {
        Err(WriteError::NotLeader { leader_id, .. }) => {
            assert_eq!(leader_id, Some(new_leader.id))
        }
        other => panic!("a follower should redirect, got {other:?}"),
    }
    // One more write through the new leader after the heal, replicated to all three.
    new_leader.node.propose(create_service(210)).await.unwrap();
    acked.insert(210);

    let want = names_of(&acked);
    for m in [&m1, &m2, &m3] {
        eventually("stores converge on every acknowledged write", || {
            service_names(&m.store) == want
        })
        .await;
    }
    // What the isolated leader appended alone was overwritten, never applied anywhere (its
    // proposers were told "unavailable", never "ok").
    for m in [&m1, &m2, &m3] {
        let names = service_names(&m.store);
        for i in &refused {
            assert!(
                !names.contains(&format!("service-{i}")),
                "refused write service-{i} surfaced on member {}",
                m.id
            );
        }
    }
    eventually("all three applied the same log", || {
        let applied: Vec<_> = [&m1, &m2, &m3]
            .iter()
            .map(|m| m.node.status().last_applied)
            .collect();
        applied.iter().all(|a| *a == applied[0])
    })
    .await;

    for m in [&m1, &m2, &m3] {
        m.node.shutdown().await.unwrap();
        m.server.abort();
    }
}
