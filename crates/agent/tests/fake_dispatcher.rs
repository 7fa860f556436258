//! The agent against an in-memory FAKE of the manager's dispatcher (test-only; the real one
//! lives in the manager crate), served by tonic on 127.0.0.1 in plaintext. Each fake runs on
//! its own runtime thread so "killing" it drops every connection, as a dead manager would.
// Tests own the tasks they spawn: each ends with the test's runtime.
#![allow(clippy::disallowed_methods, clippy::expect_used)]

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use swarm_agent::{Agent, AgentConfig, CancellationToken, ConnectFn, ExecutorKind};
use swarm_api::dispatcher_server::{Dispatcher, DispatcherServer};
use swarm_api::{
    AssignmentsMessage, AssignmentsRequest, AssignmentsType, ContainerSpec, HeartbeatRequest,
    HeartbeatResponse, SessionMessage, SessionRequest, Task, TaskSpec, TaskState, TaskStatus,
    UpdateTaskStatusRequest, UpdateTaskStatusResponse,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::{TcpListenerStream, WatchStream};
use tonic::{Request, Response, Status};

const HEARTBEAT_MS: i64 = 200;

#[derive(Debug)]
enum Event {
    Session {
        server: &'static str,
        hostname: String,
    },
    Heartbeat {
        server: &'static str,
    },
    Status {
        task_id: String,
        status: TaskStatus,
    },
}

/// The fake: hands out one session, streams whatever the test puts in `assignments`, and
/// forwards every call it gets to the test as an `Event`.
struct FakeDispatcher {
    name: &'static str,
    assignments: watch::Receiver<AssignmentsMessage>,
    events: mpsc::UnboundedSender<Event>,
    /// How long opening a session takes (a manager busy with thousands of agents).
    open_delay: Duration,
}

impl FakeDispatcher {
    fn new(
        name: &'static str,
        assignments: watch::Receiver<AssignmentsMessage>,
        events: mpsc::UnboundedSender<Event>,
    ) -> FakeDispatcher {
        FakeDispatcher {
            name,
            assignments,
            events,
            open_delay: Duration::ZERO,
        }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Dispatcher for FakeDispatcher {
    type SessionStream = BoxStream<SessionMessage>;
    type AssignmentsStream = BoxStream<AssignmentsMessage>;
    type NetworksStream = BoxStream<swarm_api::NetworksMessage>;

    /// As a manager of an older version: no network view (the agent carries on without).
    async fn networks(
        &self,
        _req: Request<swarm_api::NetworksRequest>,
    ) -> Result<Response<Self::NetworksStream>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn session(
        &self,
        req: Request<SessionRequest>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let hostname = req
            .into_inner()
            .description
            .map(|d| d.hostname)
            .unwrap_or_default();
        let _ = self.events.send(Event::Session {
            server: self.name,
            hostname,
        });
        tokio::time::sleep(self.open_delay).await;
        let first = SessionMessage {
            session_id: format!("session-{}", self.name),
            heartbeat_period_ms: HEARTBEAT_MS,
            ..Default::default()
        };
        let stream =
            futures::stream::once(async move { Ok(first) }).chain(futures::stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn heartbeat(
        &self,
        _req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let _ = self.events.send(Event::Heartbeat { server: self.name });
        Ok(Response::new(HeartbeatResponse {
            period_ms: HEARTBEAT_MS,
        }))
    }

    async fn assignments(
        &self,
        _req: Request<AssignmentsRequest>,
    ) -> Result<Response<Self::AssignmentsStream>, Status> {
        let stream = WatchStream::new(self.assignments.clone()).map(Ok);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn update_task_status(
        &self,
        req: Request<UpdateTaskStatusRequest>,
    ) -> Result<Response<UpdateTaskStatusResponse>, Status> {
        for u in req.into_inner().updates {
            if let Some(status) = u.status {
                let _ = self.events.send(Event::Status {
                    task_id: u.task_id,
                    status,
                });
            }
        }
        Ok(Response::new(UpdateTaskStatusResponse {}))
    }
}

/// A fake served on its own runtime; dropping it shuts that runtime down with every
/// connection.
struct FakeServer {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    fn start(listener: std::net::TcpListener, fake: FakeDispatcher) -> FakeServer {
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                listener.set_nonblocking(true).expect("nonblocking");
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let serve = tonic::transport::Server::builder()
                    .add_service(DispatcherServer::new(fake))
                    .serve_with_incoming(TcpListenerStream::new(listener));
                tokio::select! {
                    r = serve => r.expect("serve"),
                    _ = stopped => {}
                }
            });
            // Drops the connection tasks too, unlike a graceful shutdown.
            rt.shutdown_background();
        });
        FakeServer {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn plaintext_connect() -> ConnectFn {
    Arc::new(|addr: String| {
        Box::pin(async move {
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| e.to_string())?
                .connect()
                .await
                .map_err(|e| e.to_string())
        })
    })
}

fn sleep_task(id: &str, observed: TaskState) -> Task {
    Task {
        id: id.into(),
        spec: Some(
            TaskSpec {
                container: Some(ContainerSpec {
                    image: "busybox".into(),
                    command: vec!["sleep".into(), "30".into()],
                    stop_grace_period_ms: 2_000,
                    ..Default::default()
                }),
                ..Default::default()
            }
            .into(),
        ),
        desired_state: TaskState::Running as i32,
        status: Some(TaskStatus {
            state: observed as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn complete(tasks: Vec<Task>) -> AssignmentsMessage {
    AssignmentsMessage {
        r#type: AssignmentsType::Complete as i32,
        tasks,
        removed_task_ids: vec![],
        ..Default::default()
    }
}

fn bind() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    (l, addr)
}

fn agent(state_dir: &std::path::Path, managers: Vec<String>) -> Agent {
    Agent::new(AgentConfig {
        state_dir: state_dir.to_path_buf(),
        hostname: "worker-1".into(),
        managers,
        connect: plaintext_connect(),
        executor: ExecutorKind::Process {
            node_id: "worker-1".into(),
        },
        advertise_addr: "127.0.0.1:0".into(),
    })
    .expect("agent")
}

/// Everything the fakes told the test so far, so waits do not depend on arrival order.
struct Seen {
    events: mpsc::UnboundedReceiver<Event>,
    sessions: Vec<(&'static str, String)>,
    heartbeats: HashMap<&'static str, usize>,
    statuses: Vec<(String, TaskStatus)>,
}

impl Seen {
    fn new(events: mpsc::UnboundedReceiver<Event>) -> Seen {
        Seen {
            events,
            sessions: Vec::new(),
            heartbeats: HashMap::new(),
            statuses: Vec::new(),
        }
    }

    /// Takes in events (up to 15 s) until `done` holds.
    async fn until<T>(&mut self, what: &str, done: impl Fn(&Seen) -> Option<T>) -> T {
        self.until_within(Duration::from_secs(15), what, done).await
    }

    async fn until_within<T>(
        &mut self,
        within: Duration,
        what: &str,
        done: impl Fn(&Seen) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(t) = done(self) {
                return t;
            }
            let e = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("events open");
            match e {
                Event::Session { server, hostname } => self.sessions.push((server, hostname)),
                Event::Heartbeat { server } => *self.heartbeats.entry(server).or_default() += 1,
                Event::Status { task_id, status } => self.statuses.push((task_id, status)),
            }
        }
    }

    fn status(&self, id: &str, state: TaskState) -> Option<TaskStatus> {
        self.statuses
            .iter()
            .find(|(t, s)| t == id && s.state() == state)
            .map(|(_, s)| s.clone())
    }

    fn states_of(&self, id: &str) -> Vec<TaskState> {
        self.statuses
            .iter()
            .filter(|(t, _)| t == id)
            .map(|(_, s)| s.state())
            .collect()
    }

    fn beats(&self, server: &str) -> usize {
        self.heartbeats.get(server).copied().unwrap_or(0)
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_stops_heartbeats_and_fails_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (l1, addr1) = bind();
    let (l2, addr2) = bind();
    let (events_tx, events) = mpsc::unbounded_channel();
    let mut seen = Seen::new(events);
    let (assign_tx, assign_rx) = watch::channel(complete(vec![
        sleep_task("task-1", TaskState::Assigned),
        sleep_task("task-2", TaskState::Assigned),
    ]));
    let server1 = FakeServer::start(
        l1,
        FakeDispatcher::new("one", assign_rx.clone(), events_tx.clone()),
    );
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(agent(dir.path(), vec![addr1, addr2]).run(shutdown.clone()));

    let (r1, r2) = seen
        .until("both tasks RUNNING", |s| {
            Some((
                s.status("task-1", TaskState::Running)?,
                s.status("task-2", TaskState::Running)?,
            ))
        })
        .await;
    assert_eq!(seen.sessions, vec![("one", "worker-1".to_string())]);
    assert!(r1.pid > 0 && r2.pid > 0);
    assert!(alive(r1.pid) && alive(r2.pid));

    // Desired SHUTDOWN for task-1: stopped and reported, task-2 untouched.
    let mut t1 = sleep_task("task-1", TaskState::Running);
    t1.desired_state = TaskState::Shutdown as i32;
    assign_tx.send_replace(complete(vec![t1, sleep_task("task-2", TaskState::Running)]));
    let s1 = seen
        .until("task-1 SHUTDOWN", |s| {
            s.status("task-1", TaskState::Shutdown)
        })
        .await;
    assert!(!s1.message.is_empty());
    assert!(!alive(r1.pid), "task-1's process is gone");
    assert!(alive(r2.pid), "task-2 still runs");

    seen.until("2 heartbeats on one", |s| {
        (s.beats("one") >= 2).then_some(())
    })
    .await;

    // Manager one dies; two comes up at the next listed address.
    drop(server1);
    let _server2 = FakeServer::start(
        l2,
        FakeDispatcher::new("two", assign_rx.clone(), events_tx.clone()),
    );
    seen.until("session and heartbeat on two", |s| {
        (s.sessions.iter().any(|(n, _)| *n == "two") && s.beats("two") >= 1).then_some(())
    })
    .await;
    assert!(
        alive(r2.pid),
        "a new session does not disturb running tasks"
    );

    // Shutting the agent down stops what still runs and reports it.
    shutdown.cancel();
    seen.until("task-2 SHUTDOWN", |s| {
        s.status("task-2", TaskState::Shutdown)
    })
    .await;
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("agent stops in time")
        .expect("agent task")
        .expect("agent run");
    assert!(!alive(r2.pid), "task-2's process is gone after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_started_task_is_reported_lost_and_not_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (l1, addr1) = bind();
    let (events_tx, events) = mpsc::unbounded_channel();
    let mut seen = Seen::new(events);
    let (_assign_tx, assign_rx) = watch::channel(complete(vec![
        sleep_task("lost", TaskState::Running),
        sleep_task("fresh", TaskState::Assigned),
    ]));
    let _server = FakeServer::start(l1, FakeDispatcher::new("one", assign_rx, events_tx));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(agent(dir.path(), vec![addr1]).run(shutdown.clone()));

    let failed = seen
        .until("lost FAILED", |s| s.status("lost", TaskState::Failed))
        .await;
    assert!(failed.message.contains("task lost"), "{}", failed.message);
    // The fresh task runs, then is stopped with the agent; the lost one is never touched.
    seen.until("fresh RUNNING", |s| s.status("fresh", TaskState::Running))
        .await;
    shutdown.cancel();
    seen.until("fresh SHUTDOWN", |s| s.status("fresh", TaskState::Shutdown))
        .await;
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("agent stops in time")
        .expect("agent task")
        .expect("agent run");
    assert_eq!(seen.states_of("lost"), vec![TaskState::Failed]);
}

/// A manager slower to open a session than the agent's first patience (say, thousands of
/// agents reconnecting to it at once) still gets the session in the end: each opening that
/// timed out gives the next one twice the time, rather than giving up on it again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_slow_to_open_sessions_gets_one_in_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (l1, addr1) = bind();
    let (events_tx, events) = mpsc::unbounded_channel();
    let mut seen = Seen::new(events);
    let (_assign_tx, assign_rx) = watch::channel(complete(vec![]));
    let mut slow = FakeDispatcher::new("slow", assign_rx, events_tx);
    // Over the agent's first 5 s, within the 10 s of its second attempt.
    slow.open_delay = Duration::from_secs(7);
    let _server = FakeServer::start(l1, slow);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(agent(dir.path(), vec![addr1]).run(shutdown.clone()));

    seen.until_within(Duration::from_secs(40), "a heartbeat", |s| {
        (s.beats("slow") >= 1).then_some(())
    })
    .await;
    assert!(
        seen.sessions.len() >= 2,
        "the first opening timed out: {:?}",
        seen.sessions
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("agent stops in time")
        .expect("agent task")
        .expect("agent run");
}
