//! End-to-end tests of the built `swarmctl` binary against a test-only, in-memory FAKE of the
//! manager's Control API, served on a unix socket in a temporary directory. The fake keeps
//! services, nodes, tasks and one cluster in a map, records every create/update it receives,
//! and checks object versions the way the real control API does.
#![allow(clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use swarm_api::control_server::{Control, ControlServer};
use swarm_api::{
    service_spec::Mode, Annotations, Cluster, ClusterSpec, CreateServiceRequest,
    CreateServiceResponse, GetClusterRequest, GetClusterResponse, GetNodeRequest, GetNodeResponse,
    GetServiceRequest, GetServiceResponse, GetTaskRequest, GetTaskResponse, JoinTokens,
    ListClustersRequest, ListClustersResponse, ListNodesRequest, ListNodesResponse,
    ListServicesRequest, ListServicesResponse, ListTasksRequest, ListTasksResponse, ManagerStatus,
    Meta, Node, NodeAvailability, NodeDescription, NodeMembership, NodeSpec, NodeState, NodeStatus,
    Reachability, RemoveNodeRequest, RemoveNodeResponse, RemoveServiceRequest,
    RemoveServiceResponse, RootCa, Service, ServiceSpec, Task, UpdateClusterRequest,
    UpdateClusterResponse, UpdateNodeRequest, UpdateNodeResponse, UpdateServiceRequest,
    UpdateServiceResponse,
};
use tonic::{Request, Response, Status};

#[derive(Default)]
struct State {
    services: Vec<Service>,
    nodes: Vec<Node>,
    tasks: Vec<Task>,
    clusters: Vec<Cluster>,
    creates: Vec<CreateServiceRequest>,
    updates: Vec<UpdateServiceRequest>,
    node_updates: Vec<UpdateNodeRequest>,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<State>>);

impl Fake {
    fn lock(&self) -> MutexGuard<'_, State> {
        match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

fn not_found(kind: &str, id: &str) -> Status {
    Status::not_found(format!("{kind} {id} not found"))
}

#[tonic::async_trait]
impl Control for Fake {
    type WatchStream = tonic::codegen::BoxStream<swarm_api::WatchMessage>;

    async fn watch(
        &self,
        _: Request<swarm_api::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn get_node(
        &self,
        r: Request<GetNodeRequest>,
    ) -> Result<Response<GetNodeResponse>, Status> {
        let id = r.into_inner().node_id;
        let node = self.lock().nodes.iter().find(|n| n.id == id).cloned();
        match node {
            Some(node) => Ok(Response::new(GetNodeResponse { node: Some(node) })),
            None => Err(not_found("node", &id)),
        }
    }
    async fn list_nodes(
        &self,
        _: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        Ok(Response::new(ListNodesResponse {
            nodes: self.lock().nodes.clone(),
        }))
    }
    async fn update_node(
        &self,
        r: Request<UpdateNodeRequest>,
    ) -> Result<Response<UpdateNodeResponse>, Status> {
        let req = r.into_inner();
        let mut st = self.lock();
        st.node_updates.push(req.clone());
        let node = st
            .nodes
            .iter_mut()
            .find(|n| n.id == req.node_id)
            .ok_or_else(|| not_found("node", &req.node_id))?;
        let meta = node.meta.get_or_insert_with(Default::default);
        if meta.version != req.node_version {
            return Err(Status::failed_precondition("update out of sequence"));
        }
        meta.version += 1;
        node.spec = req.spec;
        Ok(Response::new(UpdateNodeResponse {
            node: Some(node.clone()),
        }))
    }
    async fn remove_node(
        &self,
        r: Request<RemoveNodeRequest>,
    ) -> Result<Response<RemoveNodeResponse>, Status> {
        let id = r.into_inner().node_id;
        self.lock().nodes.retain(|n| n.id != id);
        Ok(Response::new(RemoveNodeResponse {}))
    }
    async fn get_service(
        &self,
        r: Request<GetServiceRequest>,
    ) -> Result<Response<GetServiceResponse>, Status> {
        let id = r.into_inner().service_id;
        let service = self.lock().services.iter().find(|s| s.id == id).cloned();
        match service {
            Some(s) => Ok(Response::new(GetServiceResponse { service: Some(s) })),
            None => Err(not_found("service", &id)),
        }
    }
    async fn list_services(
        &self,
        _: Request<ListServicesRequest>,
    ) -> Result<Response<ListServicesResponse>, Status> {
        Ok(Response::new(ListServicesResponse {
            services: self.lock().services.clone(),
        }))
    }
    async fn create_service(
        &self,
        r: Request<CreateServiceRequest>,
    ) -> Result<Response<CreateServiceResponse>, Status> {
        let req = r.into_inner();
        let spec = req.spec.clone().unwrap_or_default();
        swarm_api::validate::validate_service_spec(&spec)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let service = Service {
            id: swarm_api::ids::new_id(),
            meta: Some(Meta {
                version: 1,
                created_at: 1,
                updated_at: 1,
            }),
            spec: Some(spec),
            ..Default::default()
        };
        let mut st = self.lock();
        st.creates.push(req);
        st.services.push(service.clone());
        Ok(Response::new(CreateServiceResponse {
            service: Some(service),
        }))
    }
    async fn update_service(
        &self,
        r: Request<UpdateServiceRequest>,
    ) -> Result<Response<UpdateServiceResponse>, Status> {
        let req = r.into_inner();
        let mut st = self.lock();
        st.updates.push(req.clone());
        let service = st
            .services
            .iter_mut()
            .find(|s| s.id == req.service_id)
            .ok_or_else(|| not_found("service", &req.service_id))?;
        let meta = service.meta.get_or_insert_with(Default::default);
        if meta.version != req.service_version {
            return Err(Status::failed_precondition("update out of sequence"));
        }
        meta.version += 1;
        service.spec = req.spec;
        Ok(Response::new(UpdateServiceResponse {
            service: Some(service.clone()),
        }))
    }
    async fn remove_service(
        &self,
        r: Request<RemoveServiceRequest>,
    ) -> Result<Response<RemoveServiceResponse>, Status> {
        let id = r.into_inner().service_id;
        self.lock().services.retain(|s| s.id != id);
        Ok(Response::new(RemoveServiceResponse {}))
    }
    async fn get_task(
        &self,
        r: Request<GetTaskRequest>,
    ) -> Result<Response<GetTaskResponse>, Status> {
        let id = r.into_inner().task_id;
        let task = self.lock().tasks.iter().find(|t| t.id == id).cloned();
        match task {
            Some(t) => Ok(Response::new(GetTaskResponse { task: Some(t) })),
            None => Err(not_found("task", &id)),
        }
    }
    async fn list_tasks(
        &self,
        r: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        let req = r.into_inner();
        let tasks = self
            .lock()
            .tasks
            .iter()
            .filter(|t| req.service_ids.is_empty() || req.service_ids.contains(&t.service_id))
            .filter(|t| req.node_ids.is_empty() || req.node_ids.contains(&t.node_id))
            .cloned()
            .collect();
        Ok(Response::new(ListTasksResponse { tasks }))
    }
    async fn get_cluster(
        &self,
        r: Request<GetClusterRequest>,
    ) -> Result<Response<GetClusterResponse>, Status> {
        let id = r.into_inner().cluster_id;
        let cluster = self.lock().clusters.iter().find(|c| c.id == id).cloned();
        match cluster {
            Some(c) => Ok(Response::new(GetClusterResponse { cluster: Some(c) })),
            None => Err(not_found("cluster", &id)),
        }
    }
    async fn list_clusters(
        &self,
        _: Request<ListClustersRequest>,
    ) -> Result<Response<ListClustersResponse>, Status> {
        Ok(Response::new(ListClustersResponse {
            clusters: self.lock().clusters.clone(),
        }))
    }
    async fn update_cluster(
        &self,
        _: Request<UpdateClusterRequest>,
    ) -> Result<Response<UpdateClusterResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn get_unlock_key(
        &self,
        _: Request<swarm_api::GetUnlockKeyRequest>,
    ) -> Result<Response<swarm_api::GetUnlockKeyResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn get_secret(
        &self,
        _: Request<swarm_api::GetSecretRequest>,
    ) -> Result<Response<swarm_api::GetSecretResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn list_secrets(
        &self,
        _: Request<swarm_api::ListSecretsRequest>,
    ) -> Result<Response<swarm_api::ListSecretsResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn create_secret(
        &self,
        _: Request<swarm_api::CreateSecretRequest>,
    ) -> Result<Response<swarm_api::CreateSecretResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn update_secret(
        &self,
        _: Request<swarm_api::UpdateSecretRequest>,
    ) -> Result<Response<swarm_api::UpdateSecretResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn update_config(
        &self,
        _: Request<swarm_api::UpdateConfigRequest>,
    ) -> Result<Response<swarm_api::UpdateConfigResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn remove_secret(
        &self,
        _: Request<swarm_api::RemoveSecretRequest>,
    ) -> Result<Response<swarm_api::RemoveSecretResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn get_config(
        &self,
        _: Request<swarm_api::GetConfigRequest>,
    ) -> Result<Response<swarm_api::GetConfigResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn list_configs(
        &self,
        _: Request<swarm_api::ListConfigsRequest>,
    ) -> Result<Response<swarm_api::ListConfigsResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn create_config(
        &self,
        _: Request<swarm_api::CreateConfigRequest>,
    ) -> Result<Response<swarm_api::CreateConfigResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn remove_config(
        &self,
        _: Request<swarm_api::RemoveConfigRequest>,
    ) -> Result<Response<swarm_api::RemoveConfigResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn get_network(
        &self,
        r: Request<swarm_api::GetNetworkRequest>,
    ) -> Result<Response<swarm_api::GetNetworkResponse>, Status> {
        Err(not_found("network", &r.into_inner().network_id))
    }
    async fn list_networks(
        &self,
        _: Request<swarm_api::ListNetworksRequest>,
    ) -> Result<Response<swarm_api::ListNetworksResponse>, Status> {
        Ok(Response::new(swarm_api::ListNetworksResponse::default()))
    }
    async fn create_network(
        &self,
        _: Request<swarm_api::CreateNetworkRequest>,
    ) -> Result<Response<swarm_api::CreateNetworkResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
    async fn remove_network(
        &self,
        _: Request<swarm_api::RemoveNetworkRequest>,
    ) -> Result<Response<swarm_api::RemoveNetworkResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
}

/// A fake manager on a socket in a temporary directory, alive as long as this value.
struct Fixture {
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    socket: PathBuf,
    fake: Fake,
}

impl Fixture {
    fn start() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("swarm.sock");
        let fake = Fake::default();
        seed(&fake);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = {
            let _guard = runtime.enter();
            tokio::net::UnixListener::bind(&socket).expect("bind")
        };
        let service = ControlServer::new(fake.clone());
        runtime.spawn(async move {
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        Fixture {
            _runtime: runtime,
            _dir: dir,
            socket,
            fake,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut child = Command::new(env!("CARGO_BIN_EXE_swarmctl"))
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn swarmctl");
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("swarmctl {args:?} hung");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait_with_output().expect("output")
    }
}

fn seed(fake: &Fake) {
    let mut st = fake.lock();
    st.nodes.push(Node {
        id: "15jkw04qb4yze".into(),
        meta: Some(Meta {
            version: 3,
            ..Default::default()
        }),
        spec: Some(NodeSpec {
            membership: NodeMembership::Accepted as i32,
            availability: NodeAvailability::Active as i32,
            ..Default::default()
        }),
        description: Some(NodeDescription {
            hostname: "node-1".into(),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: NodeState::Ready as i32,
            ..Default::default()
        }),
        manager_status: Some(ManagerStatus {
            leader: true,
            reachability: Reachability::Reachable as i32,
            ..Default::default()
        }),
        ..Default::default()
    });
    st.clusters.push(Cluster {
        id: "4ndfo1bhnxdfaxbbuyfavq3ie".into(),
        spec: Some(ClusterSpec {
            annotations: Some(Annotations {
                name: "default".into(),
                labels: Default::default(),
            }),
            ..Default::default()
        }),
        root_ca: Some(RootCa {
            ca_key: b"PRIVATE KEY".to_vec(),
            join_tokens: Some(JoinTokens {
                worker: "SWMTKN-1-digest-worker".into(),
                manager: "SWMTKN-1-digest-manager".into(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn replicas(spec: &ServiceSpec) -> Option<u64> {
    match &spec.mode {
        Some(Mode::Replicated(r)) => Some(r.replicas),
        _ => None,
    }
}

fn image(spec: &ServiceSpec) -> String {
    spec.task
        .as_ref()
        .and_then(|t| t.container.as_ref())
        .map(|c| c.image.clone())
        .unwrap_or_default()
}

/// Asserts a failed run: non-zero exit, nothing on stdout, one `Error: …` line on stderr.
fn assert_one_line_error(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected failure, got {o:?}");
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "stderr not one line: {err:?}");
    assert!(err.starts_with("Error: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert_eq!(stdout(o), "");
}

#[test]
fn walkthrough_create_ls_and_updates() {
    let fx = Fixture::start();

    // The fake runs no tasks: nothing to wait for.
    let created = fx.run(&[
        "service",
        "create",
        "--detach",
        "--name",
        "redis",
        "--image",
        "redis:3.0.5",
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    let id = stdout(&created).trim().to_string();
    assert_eq!(id.len(), 25, "{id:?}");
    {
        let st = fx.fake.lock();
        assert_eq!(st.creates.len(), 1);
        let spec = st.creates[0].spec.clone().unwrap_or_default();
        assert_eq!(
            spec.annotations.clone().map(|a| a.name),
            Some("redis".to_string())
        );
        assert_eq!(replicas(&spec), Some(1));
        assert_eq!(spec.update.map(|u| u.parallelism), Some(0));
    }

    let ls = fx.run(&["service", "ls"]);
    assert!(ls.status.success(), "{}", stderr(&ls));
    let want = format!(
        "ID                         Name   Image        Replicas\n\
         --                         ----   -----        ---------\n\
         {id}  redis  redis:3.0.5  1\n"
    );
    assert_eq!(stdout(&ls), want);

    let scaled = fx.run(&["service", "update", "-d", "redis", "--replicas", "6"]);
    assert!(scaled.status.success(), "{}", stderr(&scaled));
    {
        let st = fx.fake.lock();
        assert_eq!(st.updates.len(), 1);
        let req = &st.updates[0];
        assert_eq!(req.service_id, id);
        assert_eq!(req.service_version, 1);
        let spec = req.spec.clone().unwrap_or_default();
        assert_eq!(replicas(&spec), Some(6));
        assert_eq!(image(&spec), "redis:3.0.5");
    }

    let reimaged = fx.run(&[
        "service",
        "update",
        "-d",
        &id[..6],
        "--image",
        "redis:3.0.6",
    ]);
    assert!(reimaged.status.success(), "{}", stderr(&reimaged));
    {
        let st = fx.fake.lock();
        assert_eq!(st.updates.len(), 2);
        let req = &st.updates[1];
        assert_eq!(req.service_version, 2);
        let spec = req.spec.clone().unwrap_or_default();
        assert_eq!(replicas(&spec), Some(6));
        assert_eq!(image(&spec), "redis:3.0.6");
    }

    let inspect = fx.run(&["service", "inspect", "redis"]);
    assert!(inspect.status.success(), "{}", stderr(&inspect));
    assert!(
        stdout(&inspect).contains("Replicas          : 6\n"),
        "{}",
        stdout(&inspect)
    );
    assert!(stdout(&inspect).contains("  Image           : redis:3.0.6\n"));

    let json = fx.run(&["service", "ls", "--format", "json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(parsed[0]["id"], serde_json::Value::String(id.clone()));
}

#[test]
fn bad_replicas_is_one_line_and_sends_nothing() {
    let fx = Fixture::start();
    // The fake runs no tasks: nothing to wait for.
    let created = fx.run(&[
        "service",
        "create",
        "--detach",
        "--name",
        "redis",
        "--image",
        "redis:3.0.5",
    ]);
    assert!(created.status.success(), "{}", stderr(&created));

    let bad = fx.run(&["service", "update", "redis", "--replicas", "x"]);
    assert_one_line_error(&bad, "replicas");
    let bad_create = fx.run(&[
        "service",
        "create",
        "--name",
        "r2",
        "--image",
        "i",
        "--replicas",
        "-1",
    ]);
    assert_one_line_error(&bad_create, "replicas");
    let bad_delay = fx.run(&["service", "update", "redis", "--update-delay", "soon"]);
    assert_one_line_error(&bad_delay, "update-delay");

    let st = fx.fake.lock();
    assert_eq!(st.updates.len(), 0);
    assert_eq!(st.creates.len(), 1);
}

#[test]
fn unknown_service_is_not_found() {
    let fx = Fixture::start();
    let o = fx.run(&["service", "update", "redis2", "--replicas", "2"]);
    assert_one_line_error(&o, "service redis2 not found");
    assert_eq!(stderr(&o), "Error: service redis2 not found\n");
    let o = fx.run(&["service", "inspect", "redis2"]);
    assert_one_line_error(&o, "not found");
    assert!(fx.fake.lock().updates.is_empty());
}

#[test]
fn missing_socket_and_bad_usage_are_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nothing.sock");
    let o = Command::new(env!("CARGO_BIN_EXE_swarmctl"))
        .args(["-s"])
        .arg(&path)
        .args(["node", "ls"])
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o),
        format!(
            "Error: cannot connect to {}: No such file or directory\n",
            path.display()
        )
    );
    let fx = Fixture::start();
    let o = fx.run(&["service", "frobnicate"]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn nodes_and_cluster() {
    let fx = Fixture::start();
    let ls = fx.run(&["node", "ls"]);
    assert_eq!(
        stdout(&ls),
        "ID             Name    Membership  Status  Availability  Manager Status\n\
         --             ----    ----------  ------  ------------  --------------\n\
         15jkw04qb4yze  node-1  ACCEPTED    READY   ACTIVE        REACHABLE *\n"
    );

    let drained = fx.run(&["node", "drain", "node-1"]);
    assert!(drained.status.success(), "{}", stderr(&drained));
    let again = fx.run(&["node", "drain", "node-1"]);
    assert_one_line_error(&again, "already DRAIN");
    assert!(stdout(&fx.run(&["node", "ls"])).contains("  DRAIN  "));

    let labelled = fx.run(&["node", "update", "15jk", "--label-add", "zone=a"]);
    assert!(labelled.status.success(), "{}", stderr(&labelled));
    {
        let st = fx.fake.lock();
        let last = st.node_updates.last().cloned().unwrap_or_default();
        assert_eq!(last.node_version, 4);
        let labels = last
            .spec
            .and_then(|s| s.annotations)
            .map(|a| a.labels)
            .unwrap_or_default();
        assert_eq!(labels.get("zone").map(String::as_str), Some("a"));
    }

    let cluster = fx.run(&["cluster", "inspect", "default"]);
    assert!(cluster.status.success(), "{}", stderr(&cluster));
    let text = stdout(&cluster);
    let worker = text
        .lines()
        .find(|l| l.contains("Worker"))
        .unwrap_or_default();
    let manager = text
        .lines()
        .find(|l| l.contains("Manager"))
        .unwrap_or_default();
    assert_eq!(
        worker.split_whitespace().nth(1),
        Some("SWMTKN-1-digest-worker")
    );
    assert_eq!(
        manager.split_whitespace().nth(1),
        Some("SWMTKN-1-digest-manager")
    );

    let json = fx.run(&["cluster", "inspect", "default", "--format", "json"]);
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(parsed["id"], "4ndfo1bhnxdfaxbbuyfavq3ie");
    assert_eq!(
        parsed["root_ca"]["ca_key"],
        serde_json::json!([]),
        "CA key leaked"
    );
}
