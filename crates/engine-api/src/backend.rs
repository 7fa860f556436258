//! The one way in to the cluster state: calls on the control API (which validates, forwards
//! to the leader and proposes), plus resolving what a Docker client names (a full ID, a name,
//! or a unique ID prefix, as `swarmctl` resolves them) to one object.

use crate::error::ApiError;
use std::sync::Arc;
use swarm_api::control_server::Control;
use swarm_api::lock_server::Lock;
use swarm_api::logs_server::Logs;
use swarm_api::*;
use tonic::Request;

/// This manager, as `/info` describes it.
#[derive(Debug, Clone)]
pub struct LocalNode {
    pub node_id: String,
    pub hostname: String,
    /// The remote API address other nodes reach this manager at.
    pub addr: String,
}

/// The log broker's answer: batches of lines, as the manager's `Logs` service streams them.
pub type LogStream = tonic::codegen::BoxStream<SubscribeLogsMessage>;

/// The control API's change stream (`Watch`).
pub type WatchStream = tonic::codegen::BoxStream<WatchMessage>;

/// The control API as this crate calls it.
pub type ControlApi = dyn Control<WatchStream = WatchStream>;

#[derive(Clone)]
pub struct Backend {
    control: Arc<ControlApi>,
    /// The manager's unlock service (`POST /swarm/unlock`), where the node gives one.
    lock: Option<Arc<dyn Lock>>,
    /// The log broker (`service logs`, `task logs`), where the node gives one.
    logs: Option<Arc<dyn Logs<SubscribeLogsStream = LogStream>>>,
    pub local: LocalNode,
}

impl Backend {
    pub fn new(control: Arc<ControlApi>, local: LocalNode) -> Backend {
        Backend {
            control,
            lock: None,
            logs: None,
            local,
        }
    }

    /// Serves `POST /swarm/unlock` through `lock`.
    pub fn with_lock(mut self, lock: Arc<dyn Lock>) -> Backend {
        self.lock = Some(lock);
        self
    }

    /// Serves service and task logs through `logs`.
    pub fn with_logs(mut self, logs: Arc<dyn Logs<SubscribeLogsStream = LogStream>>) -> Backend {
        self.logs = Some(logs);
        self
    }

    /// The service's tasks' output, as the log broker streams it.
    pub async fn subscribe_logs(&self, r: SubscribeLogsRequest) -> Result<LogStream, ApiError> {
        let logs = self
            .logs
            .as_ref()
            .ok_or_else(|| ApiError::NotFound("logs are not served on this socket".into()))?;
        Ok(logs.subscribe_logs(Request::new(r)).await?.into_inner())
    }

    pub fn lock(&self) -> Option<&dyn Lock> {
        self.lock.as_deref()
    }

    /// The control API itself, for handlers whose calls need nothing resolved here.
    pub fn control(&self) -> &ControlApi {
        self.control.as_ref()
    }

    pub async fn nodes(&self) -> Result<Vec<Node>, ApiError> {
        Ok(self
            .control
            .list_nodes(Request::new(ListNodesRequest {}))
            .await?
            .into_inner()
            .nodes)
    }

    pub async fn services(&self) -> Result<Vec<Service>, ApiError> {
        Ok(self
            .control
            .list_services(Request::new(ListServicesRequest {}))
            .await?
            .into_inner()
            .services)
    }

    pub async fn tasks(&self, service_ids: Vec<String>) -> Result<Vec<Task>, ApiError> {
        Ok(self
            .control
            .list_tasks(Request::new(ListTasksRequest {
                service_ids,
                node_ids: Vec::new(),
            }))
            .await?
            .into_inner()
            .tasks)
    }

    pub async fn task(&self, id: &str) -> Result<Task, ApiError> {
        self.control
            .get_task(Request::new(GetTaskRequest {
                task_id: id.to_string(),
            }))
            .await?
            .into_inner()
            .task
            .ok_or_else(|| ApiError::NotFound(format!("task {id} not found")))
    }

    pub async fn cluster(&self) -> Result<Cluster, ApiError> {
        self.control
            .list_clusters(Request::new(ListClustersRequest {}))
            .await?
            .into_inner()
            .clusters
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::Unavailable("the cluster object is not there yet".into()))
    }

    /// The node `arg` names: ID, then name (or hostname), then unique ID prefix.
    pub async fn node(&self, arg: &str) -> Result<Node, ApiError> {
        match self
            .control
            .get_node(Request::new(GetNodeRequest {
                node_id: arg.to_string(),
            }))
            .await
        {
            Ok(r) => {
                if let Some(n) = r.into_inner().node {
                    return Ok(n);
                }
            }
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(s.into()),
        }
        let nodes = self.nodes().await?;
        pick("node", arg, nodes, |n| n.id.as_str(), node_names)
    }

    /// The service `arg` names: ID or name, then unique ID prefix.
    pub async fn service(&self, arg: &str) -> Result<Service, ApiError> {
        match self
            .control
            .get_service(Request::new(GetServiceRequest {
                service_id: arg.to_string(),
            }))
            .await
        {
            Ok(r) => {
                if let Some(s) = r.into_inner().service {
                    return Ok(s);
                }
            }
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(s.into()),
        }
        let services = self.services().await?;
        pick(
            "service",
            arg,
            services,
            |s| s.id.as_str(),
            |s| vec![service_name(s)],
        )
    }

    pub async fn create_service(&self, spec: ServiceSpec) -> Result<Service, ApiError> {
        self.control
            .create_service(Request::new(CreateServiceRequest { spec: Some(spec) }))
            .await?
            .into_inner()
            .service
            .ok_or_else(|| ApiError::Internal("the created service was not returned".into()))
    }

    pub async fn update_service(&self, r: UpdateServiceRequest) -> Result<(), ApiError> {
        self.control.update_service(Request::new(r)).await?;
        Ok(())
    }

    pub async fn remove_service(&self, id: &str) -> Result<(), ApiError> {
        self.control
            .remove_service(Request::new(RemoveServiceRequest {
                service_id: id.to_string(),
            }))
            .await?;
        Ok(())
    }

    pub async fn networks(&self) -> Result<Vec<Network>, ApiError> {
        Ok(self
            .control
            .list_networks(Request::new(ListNetworksRequest {}))
            .await?
            .into_inner()
            .networks)
    }

    /// The network `arg` names: ID, then name, then unique ID prefix (as Docker resolves it).
    pub async fn network(&self, arg: &str) -> Result<Network, ApiError> {
        let networks = self.networks().await?;
        pick(
            "network",
            arg,
            networks,
            |n| n.id.as_str(),
            |n| vec![swarm_api::names::Named::name(n)],
        )
    }

    pub async fn create_network(&self, spec: NetworkSpec) -> Result<Network, ApiError> {
        self.control
            .create_network(Request::new(CreateNetworkRequest { spec: Some(spec) }))
            .await?
            .into_inner()
            .network
            .ok_or_else(|| ApiError::Internal("the created network was not returned".into()))
    }

    pub async fn remove_network(&self, id: &str) -> Result<(), ApiError> {
        let remove = || async {
            self.control
                .remove_network(Request::new(RemoveNetworkRequest {
                    network_id: id.to_string(),
                }))
                .await
                .map(|_| ())
        };
        // Held by a task only (its service is gone, it is still stopping): Docker's
        // `stack rm` removes the network right after the services, so wait for the tasks.
        let r = once_tasks_end(|s| s.message().contains("in use by task"), remove).await;
        match r {
            Ok(_) => Ok(()),
            // A network still in use: Docker's server answers 400 for a swarm network (it
            // maps the manager's FailedPrecondition so), not the 409 other refusals get.
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                Err(ApiError::BadRequest(s.message().replace('\n', " ")))
            }
            Err(s) => Err(s.into()),
        }
    }

    pub async fn update_node(&self, r: UpdateNodeRequest) -> Result<(), ApiError> {
        self.control.update_node(Request::new(r)).await?;
        Ok(())
    }

    pub async fn remove_node(&self, id: &str, force: bool) -> Result<(), ApiError> {
        self.control
            .remove_node(Request::new(RemoveNodeRequest {
                node_id: id.to_string(),
                force,
            }))
            .await?;
        Ok(())
    }
}

/// How long a removal refused only because tasks of removed services still stop is retried.
const TASKS_END_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `remove` until it is not refused for a reason `busy` says is a task still stopping,
/// for at most `TASKS_END_WAIT`: Docker's server refuses a removal only while a service
/// uses the object, and the tasks of a service just removed stop within moments.
pub async fn once_tasks_end<F, Fut>(
    busy: impl Fn(&tonic::Status) -> bool,
    mut remove: F,
) -> Result<(), tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    let deadline = tokio::time::Instant::now() + TASKS_END_WAIT;
    loop {
        match remove().await {
            Err(s)
                if s.code() == tonic::Code::FailedPrecondition
                    && busy(&s)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            other => return other,
        }
    }
}

pub fn service_name(s: &Service) -> &str {
    swarm_api::names::Named::name(s)
}

/// The names a node answers to: its spec name and its hostname.
pub fn node_names(n: &Node) -> Vec<&str> {
    let mut names = Vec::new();
    if let Some(a) = n.spec.as_ref().and_then(|s| s.annotations.as_ref()) {
        names.push(a.name.as_str());
    }
    if let Some(d) = &n.description {
        names.push(d.hostname.as_str());
    }
    names
}

/// Picks the one item `arg` names: exact ID, exact name, then unique ID prefix.
pub fn pick<T>(
    kind: &str,
    arg: &str,
    items: Vec<T>,
    id: impl Fn(&T) -> &str,
    names: impl Fn(&T) -> Vec<&str>,
) -> Result<T, ApiError> {
    if arg.is_empty() {
        return Err(ApiError::BadRequest(format!("{kind} name or ID missing")));
    }
    let exact = |i: &T| id(i) == arg;
    let named = |i: &T| names(i).iter().any(|n| !n.is_empty() && *n == arg);
    let prefixed = |i: &T| id(i).starts_with(arg);
    for test in [&exact as &dyn Fn(&T) -> bool, &named, &prefixed] {
        let n = items.iter().filter(|i| test(i)).count();
        if n > 1 {
            return Err(ApiError::BadRequest(format!(
                "{kind} {arg} is ambiguous ({n} matches found)"
            )));
        }
        if n == 1 {
            if let Some(found) = items.into_iter().find(|i| test(i)) {
                return Ok(found);
            }
            break;
        }
    }
    Err(ApiError::NotFound(format!("{kind} {arg} not found")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn items() -> Vec<(String, String)> {
        vec![
            ("abc123".into(), "web".into()),
            ("abd456".into(), "db".into()),
            ("xyz789".into(), "abc".into()),
        ]
    }

    fn run(arg: &str) -> Result<(String, String), ApiError> {
        pick(
            "service",
            arg,
            items(),
            |i| i.0.as_str(),
            |i| vec![i.1.as_str()],
        )
    }

    #[test]
    fn id_then_name_then_prefix() {
        assert_eq!(run("abc123").unwrap().1, "web");
        // A name beats an ID prefix it also is.
        assert_eq!(run("abc").unwrap().0, "xyz789");
        assert_eq!(run("abd").unwrap().1, "db");
        assert_eq!(run("db").unwrap().0, "abd456");
    }

    #[tokio::test]
    async fn removals_wait_for_stopping_tasks_only() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let busy_twice = || async {
            match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 | 1 => Err(tonic::Status::failed_precondition("in use by task t1")),
                _ => Ok(()),
            }
        };
        let by_task = |s: &tonic::Status| s.message().contains("by task");
        assert!(once_tasks_end(by_task, busy_twice).await.is_ok());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        // Another refusal is answered at once.
        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let by_service = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(tonic::Status::failed_precondition("in use by service web"))
        };
        assert!(once_tasks_end(by_task, by_service).await.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn unknown_and_ambiguous_are_refused() {
        let e = run("nope").unwrap_err();
        assert_eq!(e.status().as_u16(), 404);
        assert_eq!(e.to_string(), "service nope not found");
        let e = run("ab").unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert!(e.to_string().contains("ambiguous"));
        assert!(run("").is_err());
    }
}
