//! The clients: threads that each run one operation at a time against a manager picked at
//! random, recording every operation (with its invoke and complete instants) into the shared
//! history. Owns what a client does and how it is recorded; it must not inject faults or judge
//! the history.

use crate::control::{self, Client};
use parking_lot::Mutex;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_api::*;
use swarm_bench::nemesis::history::{Op, OpKind, Outcome, Seen};
use swarm_bench::nemesis::schedule::Rng;

/// Object names the workload draws from: few, so clients collide and names are reused.
pub const SERVICES: usize = 6;
pub const SECRETS: usize = 4;

/// What the clients and the driver share.
pub struct Shared {
    pub start: Instant,
    pub sockets: Vec<PathBuf>,
    /// `(key, node ID)` of the workers, whose labels and availability the clients change.
    pub nodes: Vec<(String, String)>,
    /// The leader's index + 1 as the driver last saw it (0: unknown).
    pub leader: AtomicUsize,
    pub paused: AtomicBool,
    pub stop: AtomicBool,
    /// Clients in the middle of a step.
    pub busy: AtomicUsize,
    pub ops: Mutex<Vec<Op>>,
}

impl Shared {
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Stops the clients between steps and waits (bounded) until none is mid-step.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + control::CALL_TIMEOUT * 3;
        while self.busy.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

/// Records operations for client `p` through manager `m`.
pub struct Recorder<'a> {
    pub shared: &'a Shared,
    pub p: usize,
    pub m: usize,
    pub client: Client,
    /// Whether the last read got an answer (found or not found), not an error.
    pub answered: std::cell::Cell<bool>,
}

impl Recorder<'_> {
    fn via(&self, last: bool) -> OpKind {
        OpKind::Read {
            via: format!("m{}", self.m + 1),
            via_leader: self.shared.leader.load(Ordering::SeqCst) == self.m + 1,
            last,
        }
    }

    fn push(&self, kind: OpKind, key: &str, target: Option<String>, t0: u64, outcome: Outcome) {
        let op = Op {
            process: self.p,
            kind,
            key: key.to_string(),
            target,
            invoke_us: t0,
            complete_us: self.shared.now_us(),
            outcome,
        };
        self.shared.ops.lock().push(op);
    }

    /// One read; "not found" is a successful read of nothing.
    pub async fn read<T>(
        &self,
        key: &str,
        last: bool,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
        seen: impl Fn(&T) -> Option<Seen>,
    ) -> Option<T> {
        let t0 = self.shared.now_us();
        let r = control::bounded(call).await;
        let (outcome, got) = match r {
            Ok(v) => (Outcome::Ok { seen: seen(&v) }, Some(v)),
            Err(s) if s.code() == tonic::Code::NotFound => (Outcome::Ok { seen: None }, None),
            Err(s) => (control::failure(&s), None),
        };
        self.answered.set(matches!(outcome, Outcome::Ok { .. }));
        self.push(self.via(last), key, None, t0, outcome);
        got
    }

    /// One write; returns whether it was acknowledged.
    pub async fn write<T>(
        &self,
        kind: OpKind,
        key: &str,
        target: Option<String>,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
        seen: impl Fn(&T) -> Option<Seen>,
    ) -> bool {
        let t0 = self.shared.now_us();
        let (outcome, ok) = match control::bounded(call).await {
            Ok(v) => (Outcome::Ok { seen: seen(&v) }, true),
            Err(s) => (control::failure(&s), false),
        };
        self.push(kind, key, target, t0, outcome);
        ok
    }

    pub async fn read_service(&mut self, name: &str, last: bool) -> Option<Service> {
        let key = format!("service/{name}");
        let req = GetServiceRequest {
            service_id: name.into(),
        };
        let mut c = self.client.clone();
        let r = self
            .read(&key, last, c.get_service(req), |r: &GetServiceResponse| {
                r.service.as_ref().map(control::seen_service)
            })
            .await;
        r.and_then(|r| r.service)
    }

    pub async fn read_secret(&mut self, name: &str, last: bool) -> Option<Secret> {
        let key = format!("secret/{name}");
        let req = GetSecretRequest {
            secret_id: name.into(),
        };
        let mut c = self.client.clone();
        let r = self
            .read(&key, last, c.get_secret(req), |r: &GetSecretResponse| {
                r.secret.as_ref().map(control::seen_secret)
            })
            .await;
        r.and_then(|r| r.secret)
    }

    pub async fn read_node(&mut self, key: &str, id: &str, last: bool) -> Option<Node> {
        let req = GetNodeRequest { node_id: id.into() };
        let mut c = self.client.clone();
        let r = self
            .read(key, last, c.get_node(req), |r: &GetNodeResponse| {
                r.node.as_ref().map(control::seen_node)
            })
            .await;
        r.and_then(|r| r.node)
    }

    /// A compare-and-set of a worker's availability and label from what a read just showed.
    pub async fn update_node(
        &mut self,
        key: &str,
        n: &Node,
        to: NodeAvailability,
        label: &str,
    ) -> bool {
        let mut spec = n.spec.clone().unwrap_or_default();
        spec.set_availability(to);
        spec.annotations
            .get_or_insert_with(Default::default)
            .labels
            .insert(control::LABEL.into(), label.into());
        let expected = n.meta.as_ref().map(|m| m.version).unwrap_or(0);
        let kind = OpKind::Update {
            expected,
            value: control::node_value(to, label),
        };
        let req = UpdateNodeRequest {
            node_id: n.id.clone(),
            node_version: expected,
            spec: Some(spec),
        };
        let mut c = self.client.clone();
        self.write(
            kind,
            key,
            Some(n.id.clone()),
            c.update_node(req),
            |r: &UpdateNodeResponse| r.node.as_ref().map(control::seen_node),
        )
        .await
    }
}

/// One client thread: steps until told to stop.
pub fn client(shared: Arc<Shared>, p: usize, seed: u64) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut rng = Rng::new(seed ^ (p as u64 + 1).wrapping_mul(0x5851_f42d_4c95_7f2d));
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.paused.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        shared.busy.fetch_add(1, Ordering::SeqCst);
        if !shared.paused.load(Ordering::SeqCst) {
            seq += 1;
            rt.block_on(step(&shared, p, &mut rng, seq));
        }
        shared.busy.fetch_sub(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

async fn step(shared: &Shared, p: usize, rng: &mut Rng, seq: u64) {
    let m = rng.below(shared.sockets.len() as u64) as usize;
    let Some(client) = control::connect(&shared.sockets[m]).await else {
        // Nothing was sent: that manager is down. Try again shortly.
        tokio::time::sleep(Duration::from_millis(100)).await;
        return;
    };
    let mut r = Recorder {
        shared,
        p,
        m,
        client,
        answered: Default::default(),
    };
    let value = format!("p{p}-{seq}");
    let service = format!("s{}", rng.below(SERVICES as u64));
    let secret = format!("c{}", rng.below(SECRETS as u64));
    match rng.below(100) {
        0..30 => {
            r.read_service(&service, false).await;
        }
        30..50 => {
            let Some(s) = r.read_service(&service, false).await else {
                return;
            };
            let mut spec = s.spec.clone().unwrap_or_default();
            spec.annotations
                .get_or_insert_with(Default::default)
                .labels
                .insert(control::LABEL.into(), value.clone());
            if rng.chance(30) {
                spec.mode = Some(service_spec::Mode::Replicated(ReplicatedService {
                    replicas: rng.below(3),
                }));
            }
            let expected = s.meta.as_ref().map(|m| m.version).unwrap_or(0);
            let req = UpdateServiceRequest {
                service_id: s.id.clone(),
                service_version: expected,
                spec: Some(spec),
                ..Default::default()
            };
            let mut c = r.client.clone();
            r.write(
                OpKind::Update { expected, value },
                &format!("service/{service}"),
                Some(s.id.clone()),
                c.update_service(req),
                |x: &UpdateServiceResponse| x.service.as_ref().map(control::seen_service),
            )
            .await;
        }
        50..60 => {
            let req = CreateServiceRequest {
                spec: Some(control::service_spec(&service, &value, rng.below(3))),
            };
            let mut c = r.client.clone();
            r.write(
                OpKind::Create { value },
                &format!("service/{service}"),
                None,
                c.create_service(req),
                |x: &CreateServiceResponse| x.service.as_ref().map(control::seen_service),
            )
            .await;
        }
        60..68 => {
            let Some(s) = r.read_service(&service, false).await else {
                return;
            };
            let req = RemoveServiceRequest {
                service_id: s.id.clone(),
            };
            let mut c = r.client.clone();
            r.write(
                OpKind::Remove,
                &format!("service/{service}"),
                Some(s.id.clone()),
                c.remove_service(req),
                |_: &RemoveServiceResponse| None,
            )
            .await;
        }
        68..76 => {
            r.read_secret(&secret, false).await;
        }
        76..83 => {
            let req = CreateSecretRequest {
                spec: Some(control::secret_spec(&secret, &value)),
            };
            let mut c = r.client.clone();
            r.write(
                OpKind::Create { value },
                &format!("secret/{secret}"),
                None,
                c.create_secret(req),
                |x: &CreateSecretResponse| x.secret.as_ref().map(control::seen_secret),
            )
            .await;
        }
        83..88 => {
            let Some(s) = r.read_secret(&secret, false).await else {
                return;
            };
            let req = RemoveSecretRequest {
                secret_id: s.id.clone(),
            };
            let mut c = r.client.clone();
            r.write(
                OpKind::Remove,
                &format!("secret/{secret}"),
                Some(s.id.clone()),
                c.remove_secret(req),
                |_: &RemoveSecretResponse| None,
            )
            .await;
        }
        _ => {
            let Some((key, id)) = shared
                .nodes
                .get(rng.below(shared.nodes.len() as u64) as usize)
                .cloned()
            else {
                return;
            };
            let Some(n) = r.read_node(&key, &id, false).await else {
                return;
            };
            if rng.chance(40) {
                return;
            }
            // Mostly active: a paused worker takes no new tasks, and the cluster must still
            // place every replica.
            let to = if rng.chance(75) {
                NodeAvailability::Active
            } else {
                NodeAvailability::Pause
            };
            r.update_node(&key, &n, to, &value).await;
        }
    }
}
