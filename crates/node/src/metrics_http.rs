//! The node's Prometheus metrics: one registry per node (never a global one), the gauges
//! computed from the current manager role's store and Raft at scrape time, the control API
//! RPC timer, and `GET /metrics` on `--listen-metrics`. Event metrics (scheduler, proposals)
//! are recorded by the manager crate into the handles registered here. Must not change any
//! state: a scrape only reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::error::Result;
use futures::future::BoxFuture;
use hyper::StatusCode;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use swarm_api::{state, NodeAvailability, NodeState};
use swarm_manager::dispatcher::Dispatcher;
use swarm_manager::ManagerMetrics;
use swarm_raft::RaftNode;
use swarm_store::Store;
use swarm_tasks::TaskOwner;

use crate::http;

type Labels = Vec<(&'static str, String)>;
type LatencyFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn rpc_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// What a running manager role lends the scrape.
#[derive(Clone)]
pub struct ManagerSource {
    pub store: Store,
    pub raft: RaftNode,
    pub dispatcher: Dispatcher,
    pub node_id: String,
}

/// Everything measured on one node. Lives as long as the process; manager roles come and go
/// (promotion, demotion) and attach their source while they run.
pub struct NodeMetrics {
    registry: Registry,
    pub manager: ManagerMetrics,
    rpc_seconds: LatencyFamily,
    nodes: Family<Labels, Gauge>,
    tasks: Family<Labels, Gauge>,
    node_tasks: Family<Labels, Gauge>,
    executor: Family<Labels, Gauge>,
    raft_term: Gauge,
    raft_last_log_index: Gauge,
    raft_last_applied: Gauge,
    raft_is_leader: Gauge,
    raft_leader_changes: Counter,
    dispatcher_sessions: Gauge,
    source: Mutex<Option<ManagerSource>>,
}

impl NodeMetrics {
    pub fn new() -> Arc<NodeMetrics> {
        let mut registry = Registry::with_prefix("swarm");
        let m = NodeMetrics {
            manager: ManagerMetrics::default(),
            rpc_seconds: Family::new_with_constructor(rpc_histogram as fn() -> Histogram),
            nodes: Family::default(),
            tasks: Family::default(),
            node_tasks: Family::default(),
            executor: Family::default(),
            raft_term: Gauge::default(),
            raft_last_log_index: Gauge::default(),
            raft_last_applied: Gauge::default(),
            raft_is_leader: Gauge::default(),
            raft_leader_changes: Counter::default(),
            dispatcher_sessions: Gauge::default(),
            source: Mutex::new(None),
            registry: Registry::default(),
        };
        m.manager.register(&mut registry);
        let r = &mut registry;
        r.register(
            "control_rpc_seconds",
            "Control API call latency by method",
            m.rpc_seconds.clone(),
        );
        r.register(
            "nodes",
            "Nodes by state and availability (managers)",
            m.nodes.clone(),
        );
        r.register(
            "tasks",
            "Tasks of the cluster by observed state (managers)",
            m.tasks.clone(),
        );
        r.register(
            "node_tasks",
            "Tasks assigned to this node by observed state",
            m.node_tasks.clone(),
        );
        r.register(
            "node_executor",
            "The executor running this node's tasks (value 1)",
            m.executor.clone(),
        );
        r.register("raft_term", "Current Raft term", m.raft_term.clone());
        r.register(
            "raft_last_log_index",
            "Last Raft log index on this manager",
            m.raft_last_log_index.clone(),
        );
        r.register(
            "raft_last_applied",
            "Last Raft log index applied to the store",
            m.raft_last_applied.clone(),
        );
        r.register(
            "raft_is_leader",
            "1 on the Raft leader, else 0",
            m.raft_is_leader.clone(),
        );
        r.register(
            "raft_leader_changes",
            "Changes of Raft leader seen by this manager",
            m.raft_leader_changes.clone(),
        );
        r.register(
            "dispatcher_sessions",
            "Agent sessions open on this manager",
            m.dispatcher_sessions.clone(),
        );
        Arc::new(NodeMetrics { registry, ..m })
    }

    pub fn set_executor(&self, name: &str) {
        self.executor.clear();
        self.executor
            .get_or_create(&vec![("executor", name.to_string())])
            .set(1);
    }

    /// Lends the scrape a running manager's state until `tasks` stop; also counts leader
    /// changes.
    pub fn attach_manager(self: &Arc<Self>, source: ManagerSource, tasks: &TaskOwner) {
        let mut leadership = source.raft.leadership();
        *self.source.lock() = Some(source);
        let me = self.clone();
        let stop = tasks.token().clone();
        tasks.spawn(async move {
            let mut leader = leadership.borrow_and_update().leader_id;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    r = leadership.changed() => {
                        if r.is_err() { break }
                        let now = leadership.borrow_and_update().leader_id;
                        if now.is_some() && now != leader {
                            me.raft_leader_changes.inc();
                        }
                        if now.is_some() {
                            leader = now;
                        }
                    }
                }
            }
            *me.source.lock() = None;
            me.raft_is_leader.set(0);
        });
    }

    /// Sets the scrape-time gauges from the attached manager, if any.
    fn refresh(&self) {
        let Some(src) = self.source.lock().clone() else {
            return;
        };
        let (nodes, tasks, mine) = src.store.view(|t| {
            let mut nodes: HashMap<(i32, i32), i64> = HashMap::new();
            for n in t.nodes.iter() {
                let st = n.status.as_ref().map_or(0, |s| s.state);
                let av = n.spec.as_ref().map_or(0, |s| s.availability);
                *nodes.entry((st, av)).or_default() += 1;
            }
            let mut tasks: HashMap<i32, i64> = HashMap::new();
            let mut mine: HashMap<i32, i64> = HashMap::new();
            for task in t.tasks.iter_unordered() {
                let st = task.status.as_ref().map_or(0, |s| s.state);
                *tasks.entry(st).or_default() += 1;
                if task.node_id == src.node_id {
                    *mine.entry(st).or_default() += 1;
                }
            }
            (nodes, tasks, mine)
        });
        for st in [
            NodeState::Unknown,
            NodeState::Down,
            NodeState::Ready,
            NodeState::Disconnected,
        ] {
            for av in [
                NodeAvailability::Active,
                NodeAvailability::Pause,
                NodeAvailability::Drain,
            ] {
                let labels = vec![
                    ("state", state::node_state_name(st).to_lowercase()),
                    ("availability", state::availability_name(av).to_lowercase()),
                ];
                let n = nodes.get(&(st as i32, av as i32)).copied().unwrap_or(0);
                self.nodes.get_or_create(&labels).set(n);
            }
        }
        set_task_states(&self.tasks, &tasks);
        set_task_states(&self.node_tasks, &mine);
        let status = src.raft.status();
        self.raft_term.set(status.term as i64);
        self.raft_last_log_index
            .set(status.last_log_index.unwrap_or(0) as i64);
        self.raft_last_applied
            .set(status.last_applied.unwrap_or(0) as i64);
        let leading = src.raft.leadership().borrow().is_leader;
        self.raft_is_leader.set(i64::from(leading));
        self.dispatcher_sessions
            .set(src.dispatcher.session_count() as i64);
    }

    /// The text exposition of every metric of this node.
    pub fn render(&self) -> String {
        self.refresh();
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        out
    }

    /// A tower layer timing every control API call into `swarm_control_rpc_seconds`.
    pub fn rpc_layer(&self) -> RpcTimerLayer {
        RpcTimerLayer(self.rpc_seconds.clone())
    }
}

/// Every state gets a value, 0 included, so a state that empties does not keep its old one.
fn set_task_states(family: &Family<Labels, Gauge>, counts: &HashMap<i32, i64>) {
    for st in state::ALL_TASK_STATES {
        let labels = vec![("state", state::task_state_name(st).to_lowercase())];
        family
            .get_or_create(&labels)
            .set(counts.get(&(st as i32)).copied().unwrap_or(0));
    }
}

/// Serves `GET /metrics` on `addr` until `tasks` stop.
pub async fn serve(addr: &str, metrics: Arc<NodeMetrics>, tasks: &TaskOwner) -> Result<()> {
    let listener = http::bind("--listen-metrics", addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving metrics");
    let handler: http::Handler = Arc::new(move |req| {
        let metrics = metrics.clone();
        Box::pin(async move {
            if req.uri().path() != "/metrics" {
                return http::not_found();
            }
            http::full(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                metrics.render(),
            )
        })
    });
    http::serve(listener, handler, tasks);
    Ok(())
}

#[derive(Clone)]
pub struct RpcTimerLayer(LatencyFamily);

impl<S> tower::Layer<S> for RpcTimerLayer {
    type Service = RpcTimer<S>;
    fn layer(&self, inner: S) -> RpcTimer<S> {
        RpcTimer {
            inner,
            family: self.0.clone(),
        }
    }
}

/// Times a gRPC call from request to response head (for streams: until the stream starts).
#[derive(Clone)]
pub struct RpcTimer<S> {
    inner: S,
    family: LatencyFamily,
}

impl<S, B> tower::Service<::http::Request<B>> for RpcTimer<S>
where
    S: tower::Service<::http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: ::http::Request<B>) -> Self::Future {
        // "/swarm.Control/ListTasks" → "ListTasks": the method is the last path segment.
        let method = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        let family = self.family.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let start = Instant::now();
            let res = fut.await;
            family
                .get_or_create(&vec![("method", method)])
                .observe(start.elapsed().as_secs_f64());
            res
        })
    }
}
