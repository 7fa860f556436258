//! The Control API as the nemesis's clients use it: one gRPC connection per operation to a
//! manager's control socket, each call bounded, and its result turned into an [`Outcome`]. Owns
//! the mapping from objects and errors to the history's terms; it must not decide which
//! operation to run (that is `workload`) nor judge results (that is the checker).

use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use swarm_api::control_client::ControlClient;
use swarm_api::*;
use swarm_bench::nemesis::history::{Outcome, Seen, INITIAL};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Code, Status};

pub type Client = ControlClient<Channel>;

/// The label every written object carries its history value in.
pub const LABEL: &str = "nemesis";

/// How long one call may take before its outcome is indeterminate. Longer than an election
/// plus a forwarded proposal's deadline, so a call that will be answered usually is.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(8);

/// Connects to the control socket at `path`; `None` when nothing answers (nothing was sent,
/// so there is nothing to record).
pub async fn connect(path: &Path) -> Option<Client> {
    let socket: PathBuf = path.to_path_buf();
    let endpoint =
        Endpoint::from_static("http://[::]:50051").connect_timeout(Duration::from_secs(2));
    let channel = endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
        let socket = socket.clone();
        async move {
            let stream = UnixStream::connect(socket).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    }));
    match tokio::time::timeout(Duration::from_secs(3), channel).await {
        Ok(Ok(ch)) => Some(ControlClient::new(ch).max_decoding_message_size(1 << 28)),
        _ => None,
    }
}

/// Runs one call with the bound; a timeout is a status like any other.
pub async fn bounded<T>(
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(r) => r.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded(
            "no answer within the call timeout",
        )),
    }
}

/// A refusal means the write was not applied; anything else may or may not have committed.
pub fn failure(s: &Status) -> Outcome {
    let refused = matches!(
        s.code(),
        Code::NotFound
            | Code::AlreadyExists
            | Code::Aborted
            | Code::InvalidArgument
            | Code::FailedPrecondition
    ) || (s.code() == Code::Unavailable
        // Said before anything is proposed: nobody to forward to, or a forward bounced.
        && (s.message().starts_with("no leader") || s.message().contains("leadership is changing")));
    let reason = format!("{:?}: {}", s.code(), s.message());
    if refused {
        Outcome::Failed { reason }
    } else {
        Outcome::Indeterminate { reason }
    }
}

fn label(labels: &HashMap<String, String>) -> String {
    labels
        .get(LABEL)
        .cloned()
        .unwrap_or_else(|| INITIAL.to_string())
}

fn version(meta: &Option<Meta>) -> u64 {
    meta.as_ref().map(|m| m.version).unwrap_or(0)
}

/// What a read saw of an object: its ID, its version and the value of the label we write.
fn seen(id: &str, meta: &Option<Meta>, annotations: Option<&Annotations>) -> Seen {
    Seen {
        id: id.to_string(),
        version: version(meta),
        value: annotations.map(|a| label(&a.labels)).unwrap_or_default(),
    }
}

pub fn seen_service(s: &Service) -> Seen {
    let annotations = s.spec.as_ref().and_then(|sp| sp.annotations.as_ref());
    seen(&s.id, &s.meta, annotations)
}

pub fn seen_secret(s: &Secret) -> Seen {
    let annotations = s.spec.as_ref().and_then(|sp| sp.annotations.as_ref());
    seen(&s.id, &s.meta, annotations)
}

/// A node's value: its availability and label, or the initial value while no label is set.
pub fn seen_node(n: &Node) -> Seen {
    let spec = n.spec.clone().unwrap_or_default();
    let l = spec
        .annotations
        .as_ref()
        .map(|a| label(&a.labels))
        .unwrap_or_default();
    let value = if l == INITIAL {
        l
    } else {
        node_value(spec.availability(), &l)
    };
    Seen {
        id: n.id.clone(),
        version: version(&n.meta),
        value,
    }
}

pub fn node_value(a: NodeAvailability, label: &str) -> String {
    let a = match a {
        NodeAvailability::Active => "active",
        NodeAvailability::Pause => "pause",
        NodeAvailability::Drain => "drain",
    };
    format!("{a}/{label}")
}

/// A replicated service of `sleep` processes carrying `value` in its label.
pub fn service_spec(name: &str, value: &str, replicas: u64) -> ServiceSpec {
    ServiceSpec {
        annotations: Some(Annotations {
            name: name.into(),
            labels: [(LABEL.to_string(), value.to_string())].into(),
        }),
        task: Some(
            TaskSpec {
                container: Some(ContainerSpec {
                    image: "busybox".into(),
                    command: vec!["sleep".into()],
                    args: vec!["3600".into()],
                    stop_grace_period_ms: 1_000,
                    ..Default::default()
                }),
                ..Default::default()
            }
            .into(),
        ),
        mode: Some(service_spec::Mode::Replicated(ReplicatedService {
            replicas,
        })),
        ..Default::default()
    }
}

pub fn secret_spec(name: &str, value: &str) -> SecretSpec {
    SecretSpec {
        annotations: Some(Annotations {
            name: name.into(),
            labels: [(LABEL.to_string(), value.to_string())].into(),
        }),
        data: value.as_bytes().to_vec(),
    }
}

/// The replicas a service asks for (0 for other modes).
pub fn replicas(s: &Service) -> u64 {
    match s.spec.as_ref().and_then(|sp| sp.mode.as_ref()) {
        Some(service_spec::Mode::Replicated(r)) => r.replicas,
        _ => 0,
    }
}
