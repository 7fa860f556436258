//! An in-process cluster of real nodes: each is a `swarm-node` node (the wiring `swarmd`
//! runs) with real mutual TLS and Raft over loopback, the sim executor, swarmd's Raft timing,
//! its own state dir, remote API listener (bound to `127.0.0.1:0` and handed in) and control
//! socket. The first node bootstraps the cluster; the other managers and the workers join it
//! with the tokens, as `swarmd --join-addr` does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use swarm_api::*;
use swarm_node::{
    ControlSocket, ExecutorChoice, Join, Listeners, ManagerHandle, NodeConfig, NodeInfo,
    PeerFilter, PeerVerdict, RaftTiming, RunningNode,
};
use swarm_store::Txn;
use tokio::sync::watch;

/// How long a node may take to come up (bootstrap, or join and catch up) on a loaded machine.
pub const NODE_UP: Duration = Duration::from_secs(60);

/// One node's Raft links as the test sets them: cut or slowed, by peer address.
#[derive(Default)]
pub struct LinkFilter {
    links: Mutex<HashMap<String, PeerVerdict>>,
}

impl LinkFilter {
    fn set(&self, addr: &str, verdict: PeerVerdict) {
        let mut links = self.links.lock().expect("link filter lock");
        match verdict {
            PeerVerdict::Pass => links.remove(addr),
            v => links.insert(addr.to_string(), v),
        };
    }
}

impl PeerFilter for LinkFilter {
    fn verdict(&self, addr: &str) -> PeerVerdict {
        let links = self.links.lock().expect("link filter lock");
        links.get(addr).copied().unwrap_or(PeerVerdict::Pass)
    }
}

pub struct ClusterNode {
    pub name: String,
    /// Its remote API address (a manager's Raft address).
    pub addr: String,
    filter: Arc<LinkFilter>,
    pub dir: PathBuf,
    node: Option<RunningNode>,
    info: watch::Receiver<Option<NodeInfo>>,
}

impl ClusterNode {
    /// What the node is now (it has an identity once the cluster has started).
    pub fn info(&self) -> NodeInfo {
        self.info
            .borrow()
            .clone()
            .expect("a started node has an identity")
    }

    pub fn node_id(&self) -> String {
        self.info().node_id
    }

    /// The manager role's parts, while it is a manager.
    pub fn manager(&self) -> Option<ManagerHandle> {
        self.info.borrow().as_ref().and_then(|i| i.manager.clone())
    }

    /// Stops the node and waits until everything it started has ended.
    pub async fn stop(&mut self) {
        if let Some(n) = self.node.take() {
            n.stop().await.expect("the node stops cleanly");
        }
    }
}

pub struct Cluster {
    _dir: tempfile::TempDir,
    pub nodes: Vec<ClusterNode>,
}

impl Cluster {
    /// `managers` managers (at least one) and `workers` workers, all up and READY.
    pub async fn start(managers: usize, workers: usize) -> Cluster {
        assert!(managers >= 1, "a cluster needs a manager");
        swarm_ca::install_ring_provider();
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
            // Several tests in one binary: only the first installs it.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let dir = crate::process::test_dir();
        let mut c = Cluster {
            _dir: dir,
            nodes: Vec::new(),
        };
        c.add("manager-0", None, None).await;
        for i in 1..managers {
            let join = c.join_with(|t| t.manager.clone());
            c.add(&format!("manager-{i}"), Some(join), None).await;
        }
        for i in 0..workers {
            let join = c.join_with(|t| t.worker.clone());
            c.add(&format!("worker-{i}"), Some(join), None).await;
        }
        let want = managers + workers;
        c.wait_for("every node READY", NODE_UP, |c| {
            let ready = c.leader().store.view(|t| {
                t.nodes
                    .iter()
                    .filter(|n| n.status.as_ref().map(|s| s.state) == Some(NodeState::Ready as i32))
                    .count()
            });
            (ready == want).then_some(())
        })
        .await;
        c
    }

    fn join_with(&self, token: impl Fn(&JoinTokens) -> String) -> Join {
        let leader = self.leader();
        let tokens = leader
            .store
            .view(|t| {
                t.default_cluster()
                    .and_then(|c| c.root_ca.clone()?.join_tokens)
            })
            .expect("the cluster has join tokens");
        Join {
            addr: leader.addr,
            token: token(&tokens),
        }
    }

    /// Joins one more worker whose control socket is `control` (the others' are their own
    /// `At` paths), once it is up.
    pub async fn join_worker(&mut self, name: &str, control: ControlSocket) {
        let join = self.join_with(|t| t.worker.clone());
        self.add(name, Some(join), Some(control)).await;
    }

    /// Starts one node and waits until it serves in its role.
    async fn add(&mut self, name: &str, join: Option<Join>, control: Option<ControlSocket>) {
        let dir = self._dir.path().join(name);
        let remote = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let mut cfg = NodeConfig::new(&dir);
        cfg.control_socket = control.unwrap_or_else(|| ControlSocket::At(dir.join("control.sock")));
        cfg.hostname = Some(name.into());
        cfg.executor = ExecutorChoice::Sim;
        cfg.sim_start_delay = Duration::from_millis(10);
        // 250 ms ticks, not swarmd's 100: openraft gives each AppendEntries one heartbeat, and
        // a 1 MiB entry of task writes takes longer than 100 ms to seal and send in a debug
        // build with every member of the cluster on the same few cores.
        cfg.raft = RaftTiming {
            tick_ms: 250,
            ..RaftTiming::default()
        };
        cfg.join = join;
        let addr = remote.local_addr().expect("a bound port").to_string();
        let filter = Arc::new(LinkFilter::default());
        let node = swarm_node::start(
            cfg,
            Listeners {
                remote_api: Some(remote),
                peer_filter: Some(filter.clone()),
            },
        );
        let up = tokio::time::timeout(NODE_UP, node.up()).await;
        assert!(
            matches!(up, Ok(Some(_))),
            "{name} did not come up within {NODE_UP:?}"
        );
        self.nodes.push(ClusterNode {
            name: name.into(),
            addr,
            filter,
            dir,
            info: node.info(),
            node: Some(node),
        });
    }

    /// The manager that leads now.
    pub fn leader(&self) -> ManagerHandle {
        self.nodes
            .iter()
            .filter_map(ClusterNode::manager)
            .find(|m| m.raft.leadership().borrow().is_leader)
            .or_else(|| self.nodes.iter().find_map(ClusterNode::manager))
            .expect("the cluster has a manager")
    }

    /// Index of the node named `name`.
    pub fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node named {name}"))
    }

    /// Asks for node `i` to become a `role` (as `swarmctl node promote|demote` does).
    pub async fn set_role(&self, i: usize, role: NodeRole) {
        let id = self.nodes[i].node_id();
        for _ in 0..20 {
            let leader = self.leader();
            let mut node = leader
                .store
                .view(|t| t.nodes.get(&id).cloned())
                .expect("the node is recorded");
            if let Some(s) = node.spec.as_mut() {
                s.desired_role = role as i32;
            }
            if leader
                .raft
                .propose(Txn::new().update(node).into_batch())
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("could not record {role:?} for node {i}");
    }

    /// Cuts node `i`'s Raft links to and from every other node (a partition of one).
    pub fn isolate(&self, i: usize) {
        self.set_links(i, PeerVerdict::Cut);
    }

    /// Restores node `i`'s Raft links.
    pub fn heal(&self, i: usize) {
        self.set_links(i, PeerVerdict::Pass);
    }

    /// Delays every Raft call between node `i` and the others by `d`, both ways.
    pub fn slow(&self, i: usize, d: Duration) {
        self.set_links(i, PeerVerdict::Delay(d));
    }

    fn set_links(&self, i: usize, verdict: PeerVerdict) {
        let me = &self.nodes[i];
        for other in self.nodes.iter().filter(|n| n.addr != me.addr) {
            me.filter.set(&other.addr, verdict);
            other.filter.set(&me.addr, verdict);
        }
    }

    /// Polls `f` every 50 ms until it gives Some, or panics naming `what` after `timeout`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&Cluster) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every node, workers first.
    pub async fn stop(mut self) {
        for n in self.nodes.iter_mut().rev() {
            n.stop().await;
        }
    }
}
