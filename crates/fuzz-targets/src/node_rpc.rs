//! What a node sends its managers over mutual TLS: the dispatcher's calls (session, heartbeat,
//! assignments, networks, task status reports) and the CA's (root certificate, a join or a
//! renewal). The first byte picks the call, the rest is its protobuf request, decoded as tonic
//! would and handled by the real `Dispatcher` and `CaService` of a leading manager, as worker
//! `w1`: each request carries the connection info of a real TLS handshake in which `w1`
//! presented the certificate the cluster's root issued it, so `authorize` lets it in and the
//! handlers run past their door.
//!
//! A fuzzer cannot guess a session ID or a join token, so a bit of the first byte swaps in
//! `w1`'s open session or the cluster's worker token.
//!
//! Writes go through the in-memory proposer (Raft is the `raft_rpc` target's). The world is
//! made once and shared by every input, as a manager's state is by every call.

use crate::input::choose;
use crate::runtime::block_on;
use prost::Message;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use swarm_api::ca_server::Ca;
use swarm_api::dispatcher_server::Dispatcher as _;
use swarm_api::*;
use swarm_manager::ca_server::CaService;
use swarm_manager::dispatcher::Dispatcher;
use swarm_manager::AlwaysLeader;
use swarm_store::{Proposer, Store, Txn};
use swarm_tasks::TaskOwner;
use swarm_testkit::{fixtures, MemoryProposer};
use tokio_stream::StreamExt;
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};
use tonic::Request;

/// Joins through the CA's real token stop adding nodes past this many, so a long run's store
/// stays small.
const MAX_NODES: usize = 1_000;

struct World {
    store: Store,
    dispatcher: Dispatcher,
    ca: CaService,
    /// `w1`'s side of the handshake, as tonic hands it to every request on that connection.
    info: TlsConnectInfo<TcpConnectInfo>,
    /// `w2`'s: session openings come from it, since a node's new session ends its old one
    /// and `w1`'s must stay open for the other calls.
    w2: TlsConnectInfo<TcpConnectInfo>,
    session_id: String,
    worker_token: String,
    /// `w1`'s open session, kept open for the whole run.
    _session: Mutex<
        Box<dyn Send + Unpin + tokio_stream::Stream<Item = Result<SessionMessage, tonic::Status>>>,
    >,
    _owner: TaskOwner,
}

fn world() -> Option<&'static World> {
    static WORLD: OnceLock<Option<World>> = OnceLock::new();
    WORLD.get_or_init(|| block_on(make_world())).as_ref()
}

async fn make_world() -> Option<World> {
    swarm_ca::install_ring_provider();
    let cluster = crate::control::cluster()?.clone();
    let root = crate::control::root()?;
    let store = Store::new();
    let proposer: Arc<dyn Proposer> = MemoryProposer::new(store.clone());
    let mut mine = fixtures::task("t1", "s1");
    mine.node_id = "w1".into();
    let mut theirs = fixtures::task("t2", "s1");
    theirs.node_id = "w2".into();
    let txn = Txn::new()
        .create(cluster.clone())
        .create(fixtures::node("w1"))
        .create(fixtures::node("w2"))
        .create(fixtures::service("s1", "web"))
        .create(fixtures::network("net1", "backend", "10.0.9.0/24"))
        .create(mine)
        .create(theirs);
    proposer.propose(txn.into_batch()).await.ok()?;

    let owner = TaskOwner::new();
    let route = Arc::new(AlwaysLeader);
    let dispatcher = Dispatcher::new(
        store.clone(),
        proposer.clone(),
        cluster.id.clone(),
        "127.0.0.1:1".into(),
        route.clone(),
        &owner,
    );
    dispatcher.set_leader(true);
    let ca = CaService::new(store.clone(), proposer, route);
    let info = handshake(root, &cluster.id, "w1").await?;
    let w2 = handshake(root, &cluster.id, "w2").await?;

    let open = request::<SessionRequest>(&info, &[], |_| {})?;
    let mut session = dispatcher.session(open).await.ok()?.into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), session.next())
        .await
        .ok()??
        .ok()?;
    let worker_token = cluster
        .root_ca
        .as_ref()
        .and_then(|r| r.join_tokens.as_ref())
        .map(|t| t.worker.clone())?;
    Some(World {
        store,
        dispatcher,
        ca,
        info,
        w2,
        session_id: first.session_id,
        worker_token,
        _session: Mutex::new(Box::new(session)),
        _owner: owner,
    })
}

/// One real mutual-TLS handshake on loopback: worker `node` with its certificate against a
/// manager's server config; the server side's connection info is what tonic gives requests.
async fn handshake(
    root: &swarm_ca::RootCa,
    cluster_id: &str,
    node: &str,
) -> Option<TlsConnectInfo<TcpConnectInfo>> {
    let creds = |id: &str, role| {
        let (cert, key) = root.issue(id, role, cluster_id, 86_400_000).ok()?;
        swarm_ca::NodeCredentials::from_pems(cert, key, root.cert_pem().to_string()).ok()
    };
    let server = creds("m1", NodeRole::Manager)?
        .server_rustls_config()
        .ok()?;
    let client = creds(node, NodeRole::Worker)?.client_rustls_config().ok()?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
    let addr = listener.local_addr().ok()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = rustls::pki_types::ServerName::try_from(MANAGER_SERVER_NAME).ok()?;
    let (served, _client_side) = tokio::join!(
        async {
            let (tcp, _) = listener.accept().await.ok()?;
            acceptor.accept(tcp).await.ok()
        },
        async {
            let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
            connector.connect(name, tcp).await.ok()
        }
    );
    let info = served?.connect_info();
    info.peer_certs().is_some().then_some(info)
}

pub fn rpc(data: &[u8]) {
    let Some(w) = world() else {
        return;
    };
    let (selector, body) = choose(data, 16);
    let swap = selector >= 8;
    block_on(call(w, selector % 8, swap, body));
}

/// `T` decoded from `body`, with the caller's TLS connection info, as tonic hands it over.
fn request<T: Message + Default>(
    caller: &TlsConnectInfo<TcpConnectInfo>,
    body: &[u8],
    fix: impl FnOnce(&mut T),
) -> Option<Request<T>> {
    let mut msg = T::decode(body).ok()?;
    fix(&mut msg);
    let mut r = Request::new(msg);
    r.extensions_mut().insert(caller.clone());
    Some(r)
}

/// The first message of a stream the handler opened, if one comes at once; the stream is then
/// dropped, as an agent that goes away drops it.
async fn first<S: tokio_stream::Stream + Unpin>(mut s: S) {
    let _ = tokio::time::timeout(Duration::from_millis(5), s.next()).await;
}

async fn call(w: &World, which: u8, swap: bool, body: &[u8]) {
    let session = |id: &mut String| {
        if swap {
            id.clone_from(&w.session_id);
        }
    };
    match which {
        0 => {
            if let Some(r) = request::<SessionRequest>(&w.w2, body, |_| {}) {
                if let Ok(s) = w.dispatcher.session(r).await {
                    first(s.into_inner()).await;
                }
            }
        }
        1 => {
            if let Some(r) =
                request::<HeartbeatRequest>(&w.info, body, |m| session(&mut m.session_id))
            {
                let _ = w.dispatcher.heartbeat(r).await;
            }
        }
        2 => {
            if let Some(r) =
                request::<UpdateTaskStatusRequest>(&w.info, body, |m| session(&mut m.session_id))
            {
                let _ = w.dispatcher.update_task_status(r).await;
            }
        }
        3 => {
            if let Some(r) =
                request::<AssignmentsRequest>(&w.info, body, |m| session(&mut m.session_id))
            {
                if let Ok(s) = w.dispatcher.assignments(r).await {
                    first(s.into_inner()).await;
                }
            }
        }
        4 => {
            if let Some(r) =
                request::<NetworksRequest>(&w.info, body, |m| session(&mut m.session_id))
            {
                if let Ok(s) = w.dispatcher.networks(r).await {
                    first(s.into_inner()).await;
                }
            }
        }
        5 => {
            if let Some(r) = request::<GetRootCaCertificateRequest>(&w.info, body, |_| {}) {
                let _ = w.ca.get_root_ca_certificate(r).await;
            }
        }
        _ => {
            let room = w.store.view(|t| t.nodes.len()) < MAX_NODES;
            if let Some(r) = request::<IssueNodeCertificateRequest>(&w.info, body, |m| {
                if swap && room {
                    m.token.clone_from(&w.worker_token);
                }
            }) {
                let _ = w.ca.issue_node_certificate(r).await;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The target is worth running only if its requests get past `authorize` as `w1`.
    #[test]
    fn requests_reach_the_handlers_as_worker_w1() {
        let w = world().expect("the fuzz world");
        block_on(async {
            let beat = request::<HeartbeatRequest>(&w.info, &[], |m| {
                m.session_id.clone_from(&w.session_id)
            });
            w.dispatcher.heartbeat(beat.unwrap()).await.unwrap();

            let report = |task: &str| UpdateTaskStatusRequest {
                session_id: w.session_id.clone(),
                updates: vec![TaskStatusUpdate {
                    task_id: task.into(),
                    status: Some(TaskStatus::default()),
                }],
            };
            let own =
                request::<UpdateTaskStatusRequest>(&w.info, &report("t1").encode_to_vec(), |_| {});
            w.dispatcher.update_task_status(own.unwrap()).await.unwrap();
            let foreign =
                request::<UpdateTaskStatusRequest>(&w.info, &report("t2").encode_to_vec(), |_| {});
            let refused = w
                .dispatcher
                .update_task_status(foreign.unwrap())
                .await
                .unwrap_err();
            assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");

            // Without the connection info, the door stays shut.
            let bare = Request::new(HeartbeatRequest {
                session_id: w.session_id.clone(),
            });
            let refused = w.dispatcher.heartbeat(bare).await.unwrap_err();
            assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");
        });
        let before = w.store.view(|t| t.nodes.len());
        for seed in crate::seeds::seeds("node_rpc") {
            rpc(&seed);
        }
        // The join seed, with the real token swapped in, added a node.
        assert_eq!(w.store.view(|t| t.nodes.len()), before + 1);
        // A session opening (w2's) left w1's session open.
        let beat =
            request::<HeartbeatRequest>(&w.info, &[], |m| m.session_id.clone_from(&w.session_id));
        block_on(w.dispatcher.heartbeat(beat.unwrap())).unwrap();
    }
}
