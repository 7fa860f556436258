//! The log broker (SwarmKit's): carries tasks' output from the agents that run them to the
//! operators who ask, through the leader.
//!
//! An operator's `Logs.SubscribeLogs` (on any manager; a follower forwards it to the leader)
//! opens a subscription: the broker finds the service's tasks and the nodes they were assigned
//! to in the store, and hands each node's agent the subscription (`LogBroker.ListenSubscriptions`,
//! opened by agents beside their dispatcher session). Agents answer on `PublishLogs`, one
//! stream per subscription, and the broker passes the lines on, named (task name, node).
//!
//! Owns the open subscriptions and the agents' listeners, in memory only: logs never go to
//! the store or Raft. Reads tasks from the store; must not write it, nor reach executors.
//!
//! Authorization: a node is who its certificate names. It is told only of subscriptions for
//! its own tasks, and may publish only for subscriptions addressed to it and only lines of its
//! tasks in them; anything else ends its stream with PERMISSION_DENIED.
//!
//! Memory is bounded: a reader has at most `SUB_BUFFER` messages queued; a publisher waits for
//! room (backpressure that reaches the agent's reading of the output: nothing is dropped, and
//! a slow reader slows only its own subscription).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use swarm_api::log_broker_server::{LogBroker as LogBrokerRpc, LogBrokerServer};
use swarm_api::logs_client::LogsClient;
use swarm_api::logs_server::{Logs, LogsServer};
use swarm_api::*;
use swarm_store::Store;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::dispatcher::Dispatcher;
use crate::route::{forward_to, forwarded, on_leader, LeaderRoute};

/// Messages queued for one reader.
const SUB_BUFFER: usize = 16;
/// Subscription messages queued for one agent beyond those open when it starts listening.
const LISTEN_BUFFER: usize = 64;
/// How often a following subscription checks that this manager still leads.
const LEADERSHIP_CHECK: Duration = Duration::from_secs(1);

type Reply = Result<SubscribeLogsMessage, Status>;

/// The broker; cheap to clone. Serve it with [`LogBroker::logs_service`] (operators) and
/// [`LogBroker::agent_service`] (agents).
#[derive(Clone)]
pub struct LogBroker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// Who leads, who calls, and their sessions: the dispatcher's view.
    dispatcher: Dispatcher,
    route: Arc<dyn LeaderRoute>,
    state: Mutex<State>,
    next_listener: AtomicU64,
}

#[derive(Default)]
struct State {
    subs: HashMap<String, Sub>,
    listeners: HashMap<String, Listener>,
}

/// An agent's open `ListenSubscriptions` stream.
struct Listener {
    /// Tells a replaced listener's end from the current one's.
    id: u64,
    tx: mpsc::Sender<Result<LogSubscription, Status>>,
}

struct Sub {
    follow: bool,
    tail: Option<i64>,
    /// Node → its tasks this subscription wants.
    nodes: BTreeMap<String, BTreeSet<String>>,
    /// Task → its name.
    names: HashMap<String, String>,
    /// Not following: the nodes still to finish sending.
    pending: HashSet<String>,
    tx: mpsc::Sender<Reply>,
}

impl Sub {
    fn message_for(&self, id: &str, node: &str) -> LogSubscription {
        LogSubscription {
            id: id.to_string(),
            task_ids: self
                .nodes
                .get(node)
                .map(|t| t.iter().cloned().collect())
                .unwrap_or_default(),
            follow: self.follow,
            tail: self.tail,
            close: false,
        }
    }
}

/// The name logs show for a task: `<service>.<slot>`, or `<service>.<node id>` (global).
pub fn task_name(task: &Task) -> String {
    match task.annotations.as_ref().map(|a| a.name.as_str()) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ if task.slot > 0 => format!("{}.{}", task.service_name, task.slot),
        _ => format!("{}.{}", task.service_name, task.node_id),
    }
}

/// The tasks of a service by node, and their names.
type Placement = (BTreeMap<String, BTreeSet<String>>, HashMap<String, String>);

impl LogBroker {
    pub fn new(store: Store, dispatcher: Dispatcher, route: Arc<dyn LeaderRoute>) -> LogBroker {
        LogBroker {
            inner: Arc::new(Inner {
                store,
                dispatcher,
                route,
                state: Mutex::new(State::default()),
                next_listener: AtomicU64::new(0),
            }),
        }
    }

    /// The operators' `Logs` service (control socket, and managers' forwarded calls).
    pub fn logs_service(&self) -> LogsServer<LogBroker> {
        LogsServer::new(self.clone())
    }

    /// The agents' `LogBroker` service (remote API, any node's certificate).
    pub fn agent_service(&self) -> LogBrokerServer<LogBroker> {
        LogBrokerServer::new(self.clone())
    }

    /// Every task of the service that was given a node (ended ones too: their output may
    /// still be there), or NOT_FOUND.
    fn placement(&self, service_id: &str) -> Result<Placement, Status> {
        self.inner.store.view(|t| {
            if t.services.get(service_id).is_none() {
                return Err(Status::not_found(format!("service {service_id} not found")));
            }
            let mut nodes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            let mut names = HashMap::new();
            for task in t.tasks_of_service(service_id) {
                if task.node_id.is_empty() {
                    continue;
                }
                nodes
                    .entry(task.node_id.clone())
                    .or_default()
                    .insert(task.id.clone());
                names.insert(task.id.clone(), task_name(task));
            }
            Ok((nodes, names))
        })
    }

    fn node_label(&self, node_id: &str) -> String {
        self.inner
            .store
            .view(|t| {
                t.nodes
                    .get(node_id)
                    .and_then(|n| n.spec.as_ref())
                    .and_then(|s| s.annotations.as_ref())
                    .map(|a| a.name.clone())
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| node_id.to_string())
    }

    /// Opens a subscription (on the leader) and returns its reader's stream.
    pub fn subscribe(&self, req: SubscribeLogsRequest) -> Result<SubscriptionStream, Status> {
        if !self.inner.dispatcher.is_leader() {
            return Err(Status::unavailable(
                "this manager is not the leader; retry shortly",
            ));
        }
        // Watching before reading: a task placed in between is seen (twice at worst, which
        // changes nothing), never missed.
        let changes = req.follow.then(|| self.inner.store.watch());
        let (nodes, names) = self.placement(&req.service_id)?;
        let id = ids::new_id();
        let (tx, rx) = mpsc::channel(SUB_BUFFER);
        let mut sub = Sub {
            follow: req.follow,
            tail: req.tail,
            nodes,
            names,
            pending: HashSet::new(),
            tx: tx.clone(),
        };
        let mut missing = Vec::new();
        {
            let mut st = self.inner.state.lock();
            for node in sub.nodes.keys() {
                let sent = st
                    .listeners
                    .get(node)
                    .is_some_and(|l| l.tx.try_send(Ok(sub.message_for(&id, node))).is_ok());
                if sent {
                    sub.pending.insert(node.clone());
                } else {
                    missing.push(node.clone());
                }
            }
            // Not following with no node to hear from: the stream ends right away.
            if sub.follow || !sub.pending.is_empty() {
                st.subs.insert(id.clone(), sub);
            }
        }
        if !missing.is_empty() {
            let warnings = missing
                .iter()
                .map(|n| {
                    format!(
                        "node {} is not connected: its tasks' output is missing",
                        self.node_label(n)
                    )
                })
                .collect();
            // The channel is new and empty: this cannot be refused for lack of room.
            let _ = tx.try_send(Ok(SubscribeLogsMessage {
                messages: Vec::new(),
                warnings,
            }));
        }
        drop(tx);
        if let Some(changes) = changes {
            self.inner
                .dispatcher
                .tasks()
                .spawn_until_stopped(self.clone().follow(id.clone(), req.service_id, changes));
        }
        Ok(SubscriptionStream {
            rx,
            broker: self.clone(),
            id,
        })
    }

    /// Ends a subscription (its reader went away, or it failed) and tells its nodes.
    fn end(&self, id: &str) {
        let mut st = self.inner.state.lock();
        let Some(sub) = st.subs.remove(id) else {
            return;
        };
        for node in sub.nodes.keys() {
            if let Some(l) = st.listeners.get(node) {
                // A full listener is a stuck agent; its publisher ends when it next sends.
                let _ = l.tx.try_send(Ok(LogSubscription {
                    id: id.to_string(),
                    close: true,
                    ..Default::default()
                }));
            }
        }
    }

    /// A following subscription: adds tasks the service gets on the way (new replicas,
    /// restarts), and ends when the service is removed or this manager stops leading.
    async fn follow(
        self,
        id: String,
        service_id: String,
        mut changes: tokio::sync::broadcast::Receiver<Arc<swarm_store::Change>>,
    ) {
        let mut tick = tokio::time::interval(LEADERSHIP_CHECK);
        loop {
            tokio::select! {
                r = changes.recv() => match r {
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    Ok(c) if !touches_tasks_of(&c, &service_id) => continue,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                },
                _ = tick.tick() => {
                    let tx = match self.inner.state.lock().subs.get(&id) {
                        Some(sub) => sub.tx.clone(),
                        None => return,
                    };
                    if !self.inner.dispatcher.is_leader() {
                        let _ = tx.try_send(Err(Status::unavailable(
                            "the leader changed; ask again",
                        )));
                        drop(tx);
                        self.end(&id);
                        return;
                    }
                    continue;
                }
            }
            let Ok((nodes, names)) = self.placement(&service_id) else {
                // The service is gone: so is its output.
                self.end(&id);
                return;
            };
            let mut st = self.inner.state.lock();
            let State { subs, listeners } = &mut *st;
            let Some(sub) = subs.get_mut(&id) else { return };
            sub.names.extend(names);
            for (node, tasks) in nodes {
                let known = sub.nodes.entry(node.clone()).or_default();
                let before = known.len();
                known.extend(tasks);
                if known.len() == before {
                    continue;
                }
                if let Some(l) = listeners.get(&node) {
                    // The whole list again: the agent starts the tasks it does not serve yet.
                    let _ = l.tx.try_send(Ok(sub.message_for(&id, &node)));
                }
            }
        }
    }

    /// An agent starts listening: it is told of every open subscription for its tasks, then
    /// of new ones, until its session ends or it goes away.
    fn listen(
        &self,
        node_id: &str,
        session: CancellationToken,
    ) -> mpsc::Receiver<Result<LogSubscription, Status>> {
        let lid = self.inner.next_listener.fetch_add(1, Ordering::Relaxed);
        let mut st = self.inner.state.lock();
        let open: Vec<LogSubscription> = st
            .subs
            .iter()
            .filter(|(_, s)| {
                s.nodes.contains_key(node_id) && (s.follow || s.pending.contains(node_id))
            })
            .map(|(id, s)| s.message_for(id, node_id))
            .collect();
        let (tx, rx) = mpsc::channel(LISTEN_BUFFER + open.len());
        for m in open {
            let _ = tx.try_send(Ok(m));
        }
        // A listener it replaces (an older session) ends as its session does.
        st.listeners.insert(
            node_id.to_string(),
            Listener {
                id: lid,
                tx: tx.clone(),
            },
        );
        drop(st);
        let this = self.clone();
        let node = node_id.to_string();
        self.inner
            .dispatcher
            .tasks()
            .spawn_until_stopped(async move {
                tokio::select! {
                    _ = session.cancelled() => {}
                    _ = tx.closed() => {}
                }
                drop(tx);
                this.listener_gone(&node, lid);
            });
        rx
    }

    /// An agent stopped listening: subscriptions still waiting for it stop waiting.
    fn listener_gone(&self, node_id: &str, lid: u64) {
        let mut st = self.inner.state.lock();
        if st.listeners.get(node_id).is_some_and(|l| l.id == lid) {
            st.listeners.remove(node_id);
        } else {
            // Replaced by a newer listener of the same node, which carries on.
            return;
        }
        let waiting: Vec<String> = st
            .subs
            .iter()
            .filter(|(_, s)| s.pending.contains(node_id))
            .map(|(id, _)| id.clone())
            .collect();
        drop(st);
        for id in waiting {
            self.node_done(&id, node_id, true);
        }
    }

    /// `node_id` will send nothing more for subscription `id`; when no node is left to hear
    /// from (not following), the reader's stream ends. `cut` says it ended without saying so.
    fn node_done(&self, id: &str, node_id: &str, cut: bool) {
        let label = if cut {
            Some(self.node_label(node_id))
        } else {
            None
        };
        let mut st = self.inner.state.lock();
        let Some(sub) = st.subs.get_mut(id) else {
            return;
        };
        if !sub.pending.remove(node_id) {
            return;
        }
        if let Some(label) = label {
            let _ = sub.tx.try_send(Ok(SubscribeLogsMessage {
                messages: Vec::new(),
                warnings: vec![format!(
                    "node {label} went away before sending all of its tasks' output"
                )],
            }));
        }
        if !sub.follow && sub.pending.is_empty() {
            // Dropping the last sender ends the reader's stream once it has read the rest.
            st.subs.remove(id);
        }
    }

    /// Checks one published message and names its lines; returns where they go.
    fn route(
        &self,
        node_id: &str,
        msg: &mut PublishLogsMessage,
    ) -> Result<mpsc::Sender<Reply>, Status> {
        let st = self.inner.state.lock();
        let sub = st
            .subs
            .get(&msg.subscription_id)
            .ok_or_else(|| Status::not_found("the log subscription has ended"))?;
        let tasks = sub.nodes.get(node_id).ok_or_else(|| {
            Status::permission_denied("this log subscription is not addressed to this node")
        })?;
        for m in &mut msg.messages {
            if !tasks.contains(&m.task_id) {
                return Err(Status::permission_denied(format!(
                    "task {} is not one of this node's tasks in the subscription",
                    m.task_id
                )));
            }
            m.node_id = node_id.to_string();
            m.task_name = sub.names.get(&m.task_id).cloned().unwrap_or_default();
        }
        Ok(sub.tx.clone())
    }

    /// One agent's publishing stream for one subscription, until it closes or breaks.
    pub async fn publish<S>(&self, node_id: &str, mut stream: S) -> Result<(), Status>
    where
        S: Stream<Item = Result<PublishLogsMessage, Status>> + Unpin,
    {
        let mut sub_id: Option<String> = None;
        let mut closed = false;
        let result = loop {
            let mut msg = match stream.next().await {
                None => break Ok(()),
                Some(Err(e)) => break Err(e),
                Some(Ok(m)) => m,
            };
            if sub_id.get_or_insert_with(|| msg.subscription_id.clone()) != &msg.subscription_id {
                break Err(Status::invalid_argument(
                    "one publishing stream carries one subscription",
                ));
            }
            let tx = match self.route(node_id, &mut msg) {
                Ok(tx) => tx,
                Err(e) => break Err(e),
            };
            if !msg.messages.is_empty() {
                let reply = SubscribeLogsMessage {
                    messages: msg.messages,
                    warnings: Vec::new(),
                };
                // Waits for room: the slow reader's backpressure, passed on to the agent.
                if tx.send(Ok(reply)).await.is_err() {
                    break Err(Status::not_found("the log subscription has ended"));
                }
            }
            drop(tx);
            if msg.close {
                closed = true;
                break Ok(());
            }
        };
        if let Some(id) = sub_id {
            self.node_done(&id, node_id, !closed);
        }
        result
    }
}

fn touches_tasks_of(c: &swarm_store::Change, service_id: &str) -> bool {
    match c {
        swarm_store::Change::Restored => true,
        swarm_store::Change::Batch { events, .. } => events.iter().any(|e| {
            matches!(&e.object.object, Some(store_object::Object::Task(t)) if t.service_id == service_id)
        }),
    }
}

/// A reader's stream of one subscription; dropping it (the reader went away) ends the
/// subscription and tells the agents to stop.
pub struct SubscriptionStream {
    rx: mpsc::Receiver<Reply>,
    broker: LogBroker,
    id: String,
}

impl Stream for SubscriptionStream {
    type Item = Reply;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Reply>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for SubscriptionStream {
    fn drop(&mut self) {
        self.broker.end(&self.id);
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Logs for LogBroker {
    type SubscribeLogsStream = BoxStream<SubscribeLogsMessage>;

    async fn subscribe_logs(
        &self,
        req: Request<SubscribeLogsRequest>,
    ) -> Result<Response<Self::SubscribeLogsStream>, Status> {
        let route = self.inner.route.as_ref();
        if let Some(leader) = forward_to(route, &req)? {
            // The leader holds the broker: pass its stream through (HTTP/2 flow control
            // carries the reader's pace back to it).
            let mut client = LogsClient::new(leader);
            let call = client.subscribe_logs(forwarded(req));
            let stream = on_leader(route, call).await?.into_inner();
            return Ok(Response::new(Box::pin(stream)));
        }
        let stream = self.subscribe(req.into_inner())?;
        Ok(Response::new(Box::pin(stream)))
    }
}

#[tonic::async_trait]
impl LogBrokerRpc for LogBroker {
    type ListenSubscriptionsStream = BoxStream<LogSubscription>;

    async fn listen_subscriptions(
        &self,
        req: Request<ListenSubscriptionsRequest>,
    ) -> Result<Response<Self::ListenSubscriptionsStream>, Status> {
        let node_id = self.inner.dispatcher.caller(&req)?;
        let session = self
            .inner
            .dispatcher
            .session(&node_id, &req.get_ref().session_id)
            .ok_or_else(|| Status::not_found("session invalid: open a new session"))?;
        let rx = self.listen(&node_id, session);
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn publish_logs(
        &self,
        req: Request<tonic::Streaming<PublishLogsMessage>>,
    ) -> Result<Response<PublishLogsResponse>, Status> {
        let node_id = self.inner.dispatcher.caller(&req)?;
        self.publish(&node_id, req.into_inner()).await?;
        Ok(Response::new(PublishLogsResponse {}))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::proposer::Proposer;
    use crate::route::AlwaysLeader;
    use swarm_store::Txn;
    use swarm_testkit::fixtures::{self, TaskFixture};
    use swarm_testkit::MemoryProposer;

    fn task(id: &str, slot: u64, node: &str) -> Task {
        let mut t = fixtures::task(id, "svc").on(node).in_slot(slot);
        t.service_name = "web".into();
        t
    }

    async fn broker() -> LogBroker {
        let store = Store::new();
        let proposer: Arc<dyn Proposer> = MemoryProposer::new(store.clone());
        let service = fixtures::service("svc", "web");
        let txn = Txn::new()
            .create(service)
            .create(task("t1", 1, "node-a"))
            .create(task("t2", 2, "node-b"));
        proposer.propose(txn.into_batch()).await.unwrap();
        let route: Arc<dyn LeaderRoute> = Arc::new(AlwaysLeader);
        let dispatcher = Dispatcher::new(
            store.clone(),
            proposer,
            "cluster".into(),
            "127.0.0.1:1".into(),
            route.clone(),
            &swarm_tasks::TaskOwner::new(),
        );
        dispatcher.set_leader(true);
        LogBroker::new(store, dispatcher, route)
    }

    fn lines(sub: &str, task: &str, data: &[&str], close: bool) -> PublishLogsMessage {
        PublishLogsMessage {
            subscription_id: sub.into(),
            messages: data
                .iter()
                .map(|d| LogMessage {
                    task_id: task.into(),
                    stream: LogStream::Stdout as i32,
                    data: d.as_bytes().to_vec(),
                    // A node cannot claim another node or name: the broker sets both.
                    node_id: "forged".into(),
                    task_name: "forged".into(),
                    ..Default::default()
                })
                .collect(),
            close,
        }
    }

    fn stream(
        msgs: Vec<PublishLogsMessage>,
    ) -> impl Stream<Item = Result<PublishLogsMessage, Status>> + Unpin {
        tokio_stream::iter(msgs.into_iter().map(Ok))
    }

    #[tokio::test]
    async fn lines_flow_named_and_the_stream_ends_when_every_node_is_done() {
        let b = broker().await;
        let mut la = b.listen("node-a", CancellationToken::new());
        let mut lb = b.listen("node-b", CancellationToken::new());
        let mut reader = b
            .subscribe(SubscribeLogsRequest {
                service_id: "svc".into(),
                follow: false,
                tail: Some(1),
            })
            .unwrap();
        let sa = la.recv().await.unwrap().unwrap();
        assert_eq!(sa.task_ids, ["t1"]);
        assert_eq!(sa.tail, Some(1));
        let sb = lb.recv().await.unwrap().unwrap();
        assert_eq!(sb.task_ids, ["t2"]);
        b.publish(
            "node-a",
            stream(vec![lines(&sa.id, "t1", &["hello"], true)]),
        )
        .await
        .unwrap();
        let got = reader.next().await.unwrap().unwrap();
        assert_eq!(got.messages.len(), 1);
        assert_eq!(got.messages[0].task_name, "web.1");
        assert_eq!(got.messages[0].node_id, "node-a");
        assert_eq!(got.messages[0].data, b"hello");
        // node-b still owes its part: the stream stays open...
        assert!(
            tokio::time::timeout(Duration::from_millis(100), reader.next())
                .await
                .is_err()
        );
        b.publish("node-b", stream(vec![lines(&sb.id, "t2", &[], true)]))
            .await
            .unwrap();
        // ...and ends once it is done.
        assert!(reader.next().await.is_none());
    }

    #[tokio::test]
    async fn a_node_may_publish_only_its_own_tasks_of_subscriptions_addressed_to_it() {
        let b = broker().await;
        let mut la = b.listen("node-a", CancellationToken::new());
        let _lb = b.listen("node-b", CancellationToken::new());
        let _reader = b
            .subscribe(SubscribeLogsRequest {
                service_id: "svc".into(),
                follow: true,
                tail: None,
            })
            .unwrap();
        let sa = la.recv().await.unwrap().unwrap();
        // node-b sends lines of node-a's task.
        let e = b
            .publish("node-b", stream(vec![lines(&sa.id, "t1", &["x"], false)]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        // A node with no task in the subscription.
        let e = b
            .publish("node-c", stream(vec![lines(&sa.id, "t1", &["x"], false)]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        // A made-up subscription.
        let e = b
            .publish("node-a", stream(vec![lines("nope", "t1", &["x"], false)]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
    }

    #[tokio::test]
    async fn missing_nodes_are_named_and_a_gone_reader_closes_the_subscription() {
        let b = broker().await;
        let mut la = b.listen("node-a", CancellationToken::new());
        let mut reader = b
            .subscribe(SubscribeLogsRequest {
                service_id: "svc".into(),
                follow: true,
                tail: None,
            })
            .unwrap();
        let first = reader.next().await.unwrap().unwrap();
        assert_eq!(first.warnings.len(), 1);
        assert!(first.warnings[0].contains("node-b"), "{first:?}");
        let sa = la.recv().await.unwrap().unwrap();
        drop(reader);
        let closed = la.recv().await.unwrap().unwrap();
        assert!(closed.close);
        assert_eq!(closed.id, sa.id);
        assert!(b
            .subscribe(SubscribeLogsRequest {
                service_id: "nope".into(),
                ..Default::default()
            })
            .is_err());
    }

    #[tokio::test]
    async fn following_picks_up_new_tasks() {
        let b = broker().await;
        let mut la = b.listen("node-a", CancellationToken::new());
        let _reader = b
            .subscribe(SubscribeLogsRequest {
                service_id: "svc".into(),
                follow: true,
                tail: None,
            })
            .unwrap();
        let first = la.recv().await.unwrap().unwrap();
        assert_eq!(first.task_ids, ["t1"]);
        b.inner
            .store
            .apply(
                100,
                &Txn::new().create(task("t3", 3, "node-a")).into_batch(),
            )
            .unwrap();
        let update = tokio::time::timeout(Duration::from_secs(5), la.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(update.id, first.id);
        assert_eq!(update.task_ids, ["t1", "t3"]);
    }
}
