//! The dispatcher: agents' sessions, heartbeats, task assignments and status reports, over
//! mutual TLS. The calling node is whoever its certificate names; nothing in a request can
//! claim another node. Node health (DOWN after missed heartbeats) is a leader-only loop.

mod assignments;
mod fanout;
mod health;
mod networks;
mod register;
mod sessions;
mod status;
mod streams;

use crate::proposer::Proposer;
use crate::route::LeaderRoute;
use fanout::{Fanout, ManagerAddr};
use sessions::Sessions;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use streams::Stream;
use swarm_api::dispatcher_server::{Dispatcher as DispatcherRpc, DispatcherServer};
use swarm_api::*;
use swarm_store::Store;
use swarm_tasks::TaskOwner;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    proposer: Arc<dyn Proposer>,
    cluster_id: String,
    /// This manager's remote API address, handed to agents as the manager list.
    advertise_addr: String,
    /// Shared with the status writer, which ends the sessions whose reports it had to drop.
    sessions: Arc<Sessions>,
    reports: mpsc::Sender<status::Report>,
    leader: AtomicBool,
    route: Arc<dyn LeaderRoute>,
    /// The one store watcher that wakes the per-node streams.
    fanout: Fanout,
    /// Owns the status writer, the fan-out and every stream's task: the role that made the
    /// dispatcher stops them, which lets go of the store they hold.
    tasks: TaskOwner,
}

impl Dispatcher {
    /// Creates the dispatcher and starts its status writer and store fan-out as tasks of
    /// `tasks`; they, and every stream the dispatcher serves, end when `tasks` stops.
    pub fn new(
        store: Store,
        proposer: Arc<dyn Proposer>,
        cluster_id: String,
        advertise_addr: String,
        route: Arc<dyn LeaderRoute>,
        tasks: &TaskOwner,
    ) -> Dispatcher {
        let (tx, rx) = mpsc::channel(status::QUEUE_ITEMS);
        let sessions = Arc::new(Sessions::default());
        tasks.spawn_until_stopped(status::run(
            store.clone(),
            proposer.clone(),
            sessions.clone(),
            rx,
        ));
        let fanout = Fanout::start(store.clone(), tasks);
        Dispatcher {
            inner: Arc::new(Inner {
                store,
                proposer,
                cluster_id,
                advertise_addr,
                sessions,
                reports: tx,
                leader: AtomicBool::new(false),
                route,
                fanout,
                tasks: tasks.clone(),
            }),
        }
    }

    pub fn into_service(self) -> DispatcherServer<Dispatcher> {
        DispatcherServer::new(self)
    }

    /// Sessions are served only while this manager leads; agents of a follower reconnect.
    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.store(leader, Ordering::SeqCst);
    }

    /// Agents' sessions open on this manager now (for the metrics).
    pub fn session_count(&self) -> usize {
        self.inner.sessions.len()
    }

    /// The owner of the dispatcher's tasks (the log broker's streams run there too).
    pub(crate) fn tasks(&self) -> &TaskOwner {
        &self.inner.tasks
    }

    /// Whether this manager serves sessions now (it leads).
    pub(crate) fn is_leader(&self) -> bool {
        self.inner.leader.load(Ordering::SeqCst)
    }

    /// The token of `session_id` if it is `node_id`'s current session: cancelled when the
    /// session ends (the log broker ends the node's streams with it).
    pub(crate) fn session(&self, node_id: &str, session_id: &str) -> Option<CancellationToken> {
        self.inner.sessions.check(node_id, session_id)
    }

    /// The calling node, from its certificate, while this manager leads; otherwise an error
    /// naming the leader.
    pub(crate) fn caller<T>(&self, req: &Request<T>) -> Result<String, Status> {
        if !self.inner.leader.load(Ordering::SeqCst) {
            // Point the agent at the leader: it tries that address next.
            let mut status = Status::unavailable("this manager is not the leader");
            if let Some(addr) = self.inner.route.leader_addr() {
                if let Ok(v) = addr.parse() {
                    status.metadata_mut().insert(LEADER_METADATA, v);
                }
            }
            return Err(status);
        }
        let peer = swarm_ca::authorize(
            req,
            &self.inner.cluster_id,
            &[NodeRole::Worker, NodeRole::Manager],
        )?;
        Ok(peer.node_id)
    }

    /// The calling node and its session's token, for a stream that lives as long as the
    /// session: refused unless `session_id` is the node's open session.
    fn open_session<T>(
        &self,
        req: &Request<T>,
        session_id: &str,
    ) -> Result<(String, CancellationToken), Status> {
        let node_id = self.caller(req)?;
        let cancel = self
            .inner
            .sessions
            .check(&node_id, session_id)
            .ok_or_else(|| Status::not_found("session invalid: open a new session"))?;
        Ok((node_id, cancel))
    }

    fn heartbeat_period(&self) -> Duration {
        let ms = self.inner.store.view(|t| {
            t.default_cluster()
                .and_then(|c| c.spec.as_ref())
                .and_then(|s| s.dispatcher.as_ref())
                .map(|d| d.heartbeat_period_ms)
                .filter(|ms| *ms > 0)
                .unwrap_or(defaults::HEARTBEAT_PERIOD_MS)
        });
        Duration::from_millis(ms as u64)
    }

    /// Sends the first session message, then a new one whenever the node's role, spec or
    /// certificate status or the set of managers changes (a promotion or demotion, or a root
    /// rotation, reaches the node this way), until the session
    /// ends or the agent goes away.
    async fn session_updates(
        self,
        node_id: String,
        first: SessionMessage,
        // Both subscribed before `first` was read, so no change falls in between.
        mut node_wake: tokio::sync::watch::Receiver<()>,
        mut managers: tokio::sync::watch::Receiver<Arc<Vec<ManagerAddr>>>,
        cancel: CancellationToken,
        tx: streams::Sender<SessionMessage>,
    ) {
        let session_id = first.session_id.clone();
        let heartbeat_period_ms = first.heartbeat_period_ms;
        // What the node was last told, kept as the little that decides whether to tell it
        // again (not the whole Node: its description is the bulk of it, per connected node).
        let mut last = first.node.as_ref().map(|n| Told::of(n, &first.managers));
        if tx.send(Box::new(first)).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tx.closed() => return,
                r = node_wake.changed() => if r.is_err() { return },
                r = managers.changed() => if r.is_err() { return },
            }
            let list = self.managers(&managers.borrow_and_update().clone());
            // The node is copied only when something it is told changed.
            let Some((told, node)) = self.inner.store.view(|t| {
                let n = t.nodes.get(&node_id)?;
                let told = Told::of(n, &list);
                let node = (Some(&told) != last.as_ref()).then(|| n.clone());
                Some((told, node))
            }) else {
                return;
            };
            let Some(node) = node else {
                continue;
            };
            let next = SessionMessage {
                node: Some(node),
                managers: list,
                session_id: session_id.clone(),
                heartbeat_period_ms,
            };
            if tx.send(Box::new(next)).await.is_err() {
                return;
            }
            last = Some(told);
        }
    }

    /// Every manager's remote address, this one first, so agents can fail over.
    fn managers(&self, list: &[ManagerAddr]) -> Vec<WeightedPeer> {
        let own = &self.inner.advertise_addr;
        std::iter::once(WeightedPeer {
            node_id: String::new(),
            addr: own.clone(),
        })
        .chain(
            list.iter()
                .filter(|m| m.addr != *own)
                .map(|m| WeightedPeer {
                    node_id: m.node_id.clone(),
                    addr: m.addr.clone(),
                }),
        )
        .collect()
    }
}

#[tonic::async_trait]
impl DispatcherRpc for Dispatcher {
    type SessionStream = Stream<SessionMessage>;
    type AssignmentsStream = Stream<AssignmentsMessage>;
    type NetworksStream = Stream<NetworksMessage>;

    async fn session(
        &self,
        req: Request<SessionRequest>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let node_id = self.caller(&req)?;
        // Subscribed before the node and the manager list are read (see `session_updates`).
        let wake = self.inner.fanout.watch_node(&node_id);
        let mut managers = self.inner.fanout.managers();
        if !self.inner.sessions.admit(&node_id) {
            tracing::warn!(node = %node_id, "node opens sessions too often: refused");
            return Err(Status::resource_exhausted(format!(
                "session: node {node_id} opened {} sessions in {} s; wait before opening another",
                sessions::SESSIONS_PER_WINDOW,
                sessions::SESSION_WINDOW.as_secs()
            )));
        }
        let (node, session_id, cancel) = self
            .register(&node_id, req.get_ref(), req.remote_addr())
            .await?;
        let list = managers.borrow_and_update().clone();
        let msg = SessionMessage {
            session_id,
            node: Some(node),
            managers: self.managers(&list),
            heartbeat_period_ms: self.heartbeat_period().as_millis() as i64,
        };
        let (tx, stream) = streams::channel(4);
        let this = self.clone();
        self.inner.tasks.spawn_until_stopped(async move {
            this.session_updates(node_id, msg, wake.node, managers, cancel, tx)
                .await
        });
        Ok(Response::new(stream))
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let node_id = self.caller(&req)?;
        if !self
            .inner
            .sessions
            .heartbeat(&node_id, &req.get_ref().session_id)
        {
            return Err(Status::not_found("session invalid: open a new session"));
        }
        Ok(Response::new(HeartbeatResponse {
            period_ms: self.heartbeat_period().as_millis() as i64,
        }))
    }

    async fn assignments(
        &self,
        req: Request<AssignmentsRequest>,
    ) -> Result<Response<Self::AssignmentsStream>, Status> {
        let (node_id, cancel) = self.open_session(&req, &req.get_ref().session_id)?;
        let (tx, stream) = streams::channel(16);
        let wake = self.inner.fanout.watch_node(&node_id);
        self.inner.tasks.spawn_until_stopped(assignments::stream(
            self.inner.store.clone(),
            node_id,
            wake.tasks,
            cancel,
            tx,
        ));
        Ok(Response::new(stream))
    }

    async fn networks(
        &self,
        req: Request<NetworksRequest>,
    ) -> Result<Response<Self::NetworksStream>, Status> {
        let (node_id, cancel) = self.open_session(&req, &req.get_ref().session_id)?;
        let (tx, stream) = streams::channel(4);
        let wake = self.inner.fanout.networking();
        self.inner.tasks.spawn_until_stopped(networks::stream(
            self.inner.store.clone(),
            node_id,
            wake,
            cancel,
            tx,
        ));
        Ok(Response::new(stream))
    }

    async fn update_task_status(
        &self,
        req: Request<UpdateTaskStatusRequest>,
    ) -> Result<Response<UpdateTaskStatusResponse>, Status> {
        let node_id = self.caller(&req)?;
        let req = req.into_inner();
        if self
            .inner
            .sessions
            .check(&node_id, &req.session_id)
            .is_none()
        {
            return Err(Status::not_found("session invalid: open a new session"));
        }
        // A node reports on its own tasks only: one naming another node's task is refused
        // whole, before anything is queued (the writer would drop it, but silently).
        let foreign = self.inner.store.view(|t| {
            req.updates.iter().find_map(|u| {
                t.tasks
                    .get(&u.task_id)
                    .filter(|x| x.node_id != node_id)
                    .map(|_| u.task_id.clone())
            })
        });
        if let Some(task_id) = foreign {
            tracing::warn!(node = %node_id, task = %task_id, "status report for a task of another node: refused");
            return Err(Status::permission_denied(format!(
                "updates: task {task_id} is not assigned to node {node_id}"
            )));
        }
        for u in req.updates {
            let Some(status) = u.status else { continue };
            let report = status::Report {
                node_id: node_id.clone(),
                task_id: u.task_id,
                status,
            };
            self.inner
                .reports
                .send(report)
                .await
                .map_err(|_| Status::unavailable("dispatcher is shutting down"))?;
        }
        Ok(Response::new(UpdateTaskStatusResponse {}))
    }
}

/// Leader-only: while this manager leads, serve sessions and watch node health.
///
/// Every session ends with the leadership that opened it (as SwarmKit's dispatcher stops with
/// it): reports this manager acknowledged but could not write are sent again only to a new
/// session, and a session that outlived a short loss of leadership would never see them again
/// (a task left ASSIGNED although it runs).
pub async fn run_leader(dispatcher: Dispatcher, cancel: CancellationToken) {
    // Also at the start: a session call that passed the leader check just before the last
    // term's end registers after that term's `end_all`.
    dispatcher.inner.sessions.end_all();
    dispatcher.set_leader(true);
    health::run(dispatcher.clone(), cancel.clone()).await;
    dispatcher.set_leader(false);
    dispatcher.inner.sessions.end_all();
}

/// What a session message tells a node that can change: the managers, its role and spec, and
/// its certificate's status (a root rotation asks the node to renew through it).
#[derive(PartialEq)]
struct Told {
    managers: Vec<WeightedPeer>,
    role: i32,
    spec: Option<NodeSpec>,
    cert_status: Option<i32>,
}

impl Told {
    fn of(node: &Node, managers: &[WeightedPeer]) -> Told {
        Told {
            managers: managers.to_vec(),
            role: node.role,
            spec: node.spec.clone(),
            cert_status: node.certificate.as_ref().map(|c| c.status),
        }
    }
}
