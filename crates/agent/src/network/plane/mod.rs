//! The node's data plane: the one owner of the namespaces, interfaces, FDB entries, nftables
//! tables and task resolvers this agent makes (see docs/networking.md §3). Executors ask it, through a
//! [`NetPlane`] handle, for a task's namespace before the task starts and to take it away
//! when the task is removed; the manager's network view (`Dispatcher.Networks`) tells it each
//! network's VNI and peers. Everything it makes is recorded under `<worker>/network/owned/`,
//! so a restarted agent removes what it no longer wants and never what another node on the
//! same machine made.

mod handle;
mod mesh;

pub use handle::{task_netns, NetError, NetPlane};
use handle::{Cmd, Reply, VIEW_WAIT};
use mesh::Mesh;

use super::dns;
use super::kernel;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;
use swarm_api::{Network, NetworksMessage, Task};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The name a network's VXLAN device has in the node's namespace before it moves into the
/// switch's: unique per node and network, so swarmds sharing a namespace (tests) do not meet.
fn temp_device(node_id: &str, vni: u32) -> String {
    // FNV-1a: a short, stable name; only clashes matter, not secrecy.
    let mut h: u32 = 0x811c_9dc5;
    for b in node_id.bytes().chain(vni.to_be_bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("swvx{h:08x}")
}

/// A task's port on a network's bridge (its veth's end in the switch namespace).
fn switch_port(task_id: &str) -> String {
    format!("v{}", task_id.chars().take(12).collect::<String>())
}

/// A task's port on the egress bridge.
fn gateway_port(task_id: &str) -> String {
    format!("g{}", task_id.chars().take(12).collect::<String>())
}

/// One network's switch on this node.
struct Switch {
    ns: String,
    vni: u32,
    peers: BTreeSet<Ipv4Addr>,
}

struct Plane {
    node_id: String,
    owned_dir: PathBuf,
    view: Option<NetworksMessage>,
    /// Task ID → the networks it is plugged into.
    attached: HashMap<String, Vec<String>>,
    switches: HashMap<String, Switch>,
    waiting: Vec<(Box<Task>, Option<u32>, Reply, Instant)>,
    /// The VXLAN filter as last written (port, nodes); `None` = no table.
    filter: Option<(u32, Vec<Ipv4Addr>)>,
    /// The view, for the task resolvers to answer from.
    views: watch::Receiver<Option<NetworksMessage>>,
    upstreams: Vec<std::net::SocketAddr>,
    /// Each attached task's resolver (stopped with the task) and the VIP rules last written in
    /// its namespace.
    resolvers: HashMap<String, CancellationToken>,
    vip_rules: HashMap<String, Vec<(Ipv4Addr, Vec<Ipv4Addr>)>>,
    /// Owns the resolvers' tasks: they end when the plane does.
    jobs: tokio::task::JoinSet<()>,
    /// Each task's address on the egress bridge (tasks on a non-internal network only), and
    /// the mesh sandbox's (under [`Plane::mesh_key`]).
    leases: HashMap<String, Ipv4Addr>,
    gateway_up: bool,
    /// The routing mesh's sandbox on this node, while the view asks for one.
    mesh: Option<Mesh>,
}

/// The owned-record name of the egress bridge and its table.
const GATEWAY_RECORD: &str = "gateway";

/// Starts the plane; it runs until `cancel`, then tears down nothing (the tasks' own
/// removal does, and a restarted agent's cleanup).
pub fn start(
    node_id: String,
    worker_dir: PathBuf,
    views: watch::Receiver<Option<NetworksMessage>>,
    cancel: CancellationToken,
) -> (NetPlane, impl std::future::Future<Output = ()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let plane = Plane {
        node_id,
        owned_dir: worker_dir.join("network").join("owned"),
        view: None,
        attached: HashMap::new(),
        switches: HashMap::new(),
        waiting: Vec::new(),
        filter: None,
        views: views.clone(),
        upstreams: dns::upstreams(),
        resolvers: HashMap::new(),
        vip_rules: HashMap::new(),
        jobs: tokio::task::JoinSet::new(),
        leases: HashMap::new(),
        gateway_up: false,
        mesh: None,
    };
    (NetPlane { tx }, plane.run(rx, views, cancel))
}

impl Plane {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Cmd>,
        mut views: watch::Receiver<Option<NetworksMessage>>,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                cmd = rx.recv() => match cmd {
                    None => return,
                    Some(Cmd::Attach { task, pid, reply }) => {
                        self.waiting.push((task, pid, reply, Instant::now() + VIEW_WAIT));
                        self.serve_waiting().await;
                    }
                    Some(Cmd::Detach { task_id }) => self.detach(&task_id).await,
                    Some(Cmd::Cleanup { keep }) => self.cleanup(&keep).await,
                },
                r = views.changed() => {
                    if r.is_err() {
                        // The session is gone for good: keep serving with the last view.
                        views = watch::channel(None).1;
                        continue;
                    }
                    let v = views.borrow_and_update().clone();
                    if v.is_some() {
                        self.view = v;
                        self.sync_mesh().await;
                        self.sync_peers().await;
                        self.serve_waiting().await;
                    }
                }
                _ = tick.tick() => self.serve_waiting().await,
                Some(_) = self.jobs.join_next(), if !self.jobs.is_empty() => {}
            }
        }
    }

    fn network(&self, id: &str) -> Option<(&Network, Vec<Ipv4Addr>)> {
        let n = self
            .view
            .as_ref()?
            .networks
            .iter()
            .find(|n| n.network.as_ref().is_some_and(|x| x.id == id))?;
        let peers = n.peers.iter().filter_map(|p| p.addr.parse().ok()).collect();
        Some((n.network.as_ref()?, peers))
    }

    fn data_path_port(&self) -> u32 {
        self.view
            .as_ref()
            .map_or(swarm_api::defaults::DATA_PATH_PORT, |v| v.data_path_port)
    }

    /// Attaches every waiting task whose networks are all in the view; fails those that
    /// waited too long.
    async fn serve_waiting(&mut self) {
        let now = Instant::now();
        for (task, pid, reply, deadline) in std::mem::take(&mut self.waiting) {
            let missing = task
                .networks
                .iter()
                .find(|a| self.network(&a.network_id).is_none())
                .map(|a| a.network_id.clone());
            match missing {
                None => {
                    let r = self.attach(&task, pid).await;
                    if r.is_err() {
                        self.detach(&task.id).await;
                    }
                    let _ = reply.send(r);
                }
                Some(id) if now >= deadline => {
                    let _ = reply.send(Err(NetError::NotInView(id)));
                }
                Some(_) => self.waiting.push((task, pid, reply, deadline)),
            }
        }
    }

    fn record(&self, ns: &str, owned: bool) -> Result<(), NetError> {
        let path = self.owned_dir.join(ns);
        let err = |source| NetError::Record {
            path: path.display().to_string(),
            source,
        };
        if owned {
            std::fs::create_dir_all(&self.owned_dir).map_err(err)?;
            std::fs::write(&path, b"").map_err(err)
        } else {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(err(e)),
                _ => Ok(()),
            }
        }
    }

    async fn ensure_switch(&mut self, network_id: &str) -> Result<String, NetError> {
        if let Some(s) = self.switches.get(network_id) {
            return Ok(s.ns.clone());
        }
        let vni = self.network(network_id).map_or(0, |(n, _)| n.vni);
        let ns = format!("swnet-{vni}-{}", self.node_id);
        self.record(&ns, true)?;
        let made = async {
            kernel::netns_add(&ns).await?;
            let tmp = temp_device(&self.node_id, vni);
            kernel::make_switch(&ns, &tmp, vni, self.data_path_port()).await
        };
        if let Err(e) = made.await {
            // Half a switch is no switch: nothing may stay behind for the next try.
            self.drop_switch(&ns).await;
            return Err(e.into());
        }
        let peers = kernel::peers(&ns).await?.into_iter().collect();
        self.switches.insert(
            network_id.to_string(),
            Switch {
                ns: ns.clone(),
                vni,
                peers,
            },
        );
        Ok(ns)
    }

    async fn attach(&mut self, task: &Task, pid: Option<u32>) -> Result<PathBuf, NetError> {
        let task_ns = task_netns(&task.id);
        self.record(&task_ns, true)?;
        match pid {
            Some(pid) => kernel::netns_attach(&task_ns, pid).await?,
            None => kernel::netns_add(&task_ns).await?,
        }
        let port = switch_port(&task.id);
        let mut plugged = Vec::new();
        for (i, a) in task.networks.iter().enumerate() {
            let address = a
                .addresses
                .first()
                .ok_or_else(|| NetError::NoAddress(a.network_id.clone()))?;
            let switch = self.ensure_switch(&a.network_id).await?;
            kernel::plug(&switch, &port, &task_ns, &format!("eth{i}"), address).await?;
            plugged.push(a.network_id.clone());
            self.attached.insert(task.id.clone(), plugged.clone());
        }
        let external = task.networks.iter().any(|a| {
            self.network(&a.network_id)
                .is_some_and(|(n, _)| !n.spec.as_ref().is_some_and(|s| s.internal))
        });
        if external {
            self.plug_gateway(&task.id, &task_ns).await?;
        }
        let path = kernel::netns_path(&task_ns);
        self.start_resolver(&task.id, &task_ns, &path, plugged)
            .await?;
        self.sync_peers().await;
        Ok(path)
    }

    /// The task's way out: a leg on the node's egress bridge at an address of its own.
    async fn plug_gateway(&mut self, task_id: &str, task_ns: &str) -> Result<(), NetError> {
        if !self.gateway_up {
            self.record(GATEWAY_RECORD, true)?;
            kernel::make_gateway().await?;
            self.gateway_up = true;
        }
        let used: HashSet<Ipv4Addr> = self.leases.values().copied().collect();
        let first = u32::from(kernel::GATEWAY_ADDR) + 1;
        let address = (first..first + 65_000)
            .map(Ipv4Addr::from)
            .find(|a| !used.contains(a))
            .ok_or_else(|| NetError::NoAddress(kernel::GATEWAY_SUBNET.into()))?;
        self.leases.insert(task_id.to_string(), address);
        kernel::plug_gateway(task_ns, &gateway_port(task_id), address).await?;
        Ok(())
    }

    /// Removes the egress bridge once no task uses it.
    async fn release_gateway(&mut self) {
        if !self.leases.is_empty() {
            return;
        }
        match kernel::remove_gateway().await {
            Ok(()) => {
                self.gateway_up = false;
                let _ = self.record(GATEWAY_RECORD, false);
            }
            Err(e) => tracing::warn!(error = %e, "removing the egress bridge"),
        }
    }

    /// The task's resolver at 127.0.0.11:53 in its namespace, and the file pointing there.
    async fn start_resolver(
        &mut self,
        task_id: &str,
        task_ns: &str,
        path: &std::path::Path,
        networks: Vec<String>,
    ) -> Result<(), NetError> {
        let etc = dns::etc_dir(task_ns);
        let record = |source| NetError::Record {
            path: etc.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&etc).map_err(record)?;
        std::fs::write(etc.join("resolv.conf"), dns::resolv_conf()).map_err(record)?;
        let socket = dns::bind_in(path)
            .await
            .map_err(|source| NetError::Record {
                path: format!("{RESOLVER}:53 in {task_ns}", RESOLVER = dns::RESOLVER),
                source,
            })?;
        let cancel = CancellationToken::new();
        let scope = dns::Scope {
            networks,
            view: self.views.clone(),
            upstreams: self.upstreams.clone(),
        };
        self.jobs.spawn(dns::serve(socket, scope, cancel.clone()));
        if let Some(old) = self.resolvers.insert(task_id.to_string(), cancel) {
            old.cancel();
        }
        Ok(())
    }

    /// Each attached task's VIP rules, brought to the view's.
    async fn sync_vips(&mut self) {
        let Some(view) = self.view.as_ref() else {
            return;
        };
        let mut wanted = Vec::new();
        for (task, nets) in &self.attached {
            let mut vips: Vec<(Ipv4Addr, Vec<Ipv4Addr>)> = view
                .networks
                .iter()
                .filter(|n| n.network.as_ref().is_some_and(|x| nets.contains(&x.id)))
                .flat_map(|n| &n.vips)
                .filter_map(|v| {
                    let backends = v.backends.iter().filter_map(|b| b.parse().ok()).collect();
                    Some((v.vip.parse().ok()?, backends))
                })
                .collect();
            vips.sort();
            if self.vip_rules.get(task) != Some(&vips) {
                wanted.push((task.clone(), vips));
            }
        }
        for (task, vips) in wanted {
            match kernel::vip_rules(&task_netns(&task), &vips).await {
                Ok(()) => drop(self.vip_rules.insert(task, vips)),
                Err(e) => tracing::warn!(%task, error = %e, "writing a task's VIP rules"),
            }
        }
    }

    async fn detach(&mut self, task_id: &str) {
        self.waiting.retain(|(t, _, _, _)| t.id != task_id);
        let networks = self.attached.remove(task_id).unwrap_or_default();
        if let Some(r) = self.resolvers.remove(task_id) {
            r.cancel();
        }
        self.vip_rules.remove(task_id);
        let had_lease = self.leases.remove(task_id).is_some();
        // A container's namespace outlives its name here: its legs are cut explicitly.
        for net in &networks {
            if let Some(s) = self.switches.get(net) {
                kernel::unplug(Some(&s.ns), &switch_port(task_id)).await;
            }
        }
        if had_lease {
            kernel::unplug(None, &gateway_port(task_id)).await;
        }
        let task_ns = task_netns(task_id);
        let _ = std::fs::remove_dir_all(dns::etc_dir(&task_ns));
        match kernel::netns_del(&task_ns).await {
            Ok(()) => {
                let _ = self.record(&task_ns, false);
            }
            Err(e) => tracing::warn!(task = %task_id, error = %e, "removing a task's namespace"),
        }
        if had_lease {
            self.release_gateway().await;
        }
        self.sync_mesh().await;
        for net in networks {
            let used = self.attached.values().any(|v| v.contains(&net))
                || self.mesh.as_ref().is_some_and(|m| m.network_id == net);
            if !used {
                if let Some(s) = self.switches.remove(&net) {
                    self.drop_switch(&s.ns).await;
                }
            }
        }
        self.sync_filter().await;
    }

    async fn drop_switch(&self, ns: &str) {
        let _ = std::fs::remove_dir_all(dns::etc_dir(ns));
        match kernel::netns_del(ns).await {
            Ok(()) => {
                let _ = self.record(ns, false);
            }
            Err(e) => tracing::warn!(%ns, error = %e, "removing a network's namespace"),
        }
    }

    /// Brings every switch's peers to the view's, and the VXLAN filter with them.
    async fn sync_peers(&mut self) {
        let ids: Vec<String> = self.switches.keys().cloned().collect();
        for id in ids {
            let Some(want) = self
                .network(&id)
                .map(|(_, peers)| peers.into_iter().collect::<BTreeSet<_>>())
            else {
                continue;
            };
            let Some(s) = self.switches.get_mut(&id) else {
                continue;
            };
            for gone in s.peers.difference(&want).copied().collect::<Vec<_>>() {
                match kernel::del_peer(&s.ns, gone).await {
                    Ok(()) => drop(s.peers.remove(&gone)),
                    Err(e) => tracing::warn!(vni = s.vni, error = %e, "removing a VXLAN peer"),
                }
            }
            for new in want.difference(&s.peers).copied().collect::<Vec<_>>() {
                match kernel::add_peer(&s.ns, new).await {
                    Ok(()) => drop(s.peers.insert(new)),
                    Err(e) => tracing::warn!(vni = s.vni, error = %e, "adding a VXLAN peer"),
                }
            }
        }
        self.sync_filter().await;
        self.sync_vips().await;
    }

    /// VXLAN is accepted only from the nodes of the view, and only while this node has a
    /// switch; no switch, no table.
    async fn sync_filter(&mut self) {
        let want = if self.switches.is_empty() {
            None
        } else {
            let nodes: BTreeSet<Ipv4Addr> = self
                .view
                .iter()
                .flat_map(|v| &v.networks)
                .flat_map(|n| &n.peers)
                .filter_map(|p| p.addr.parse().ok())
                .collect();
            Some((self.data_path_port(), nodes.into_iter().collect::<Vec<_>>()))
        };
        if want == self.filter {
            return;
        }
        let r = kernel::vxlan_filter(
            want.as_ref().map_or(0, |w| w.0),
            want.as_ref().map(|w| w.1.as_slice()),
        )
        .await;
        match r {
            Ok(()) => self.filter = want,
            Err(e) => tracing::warn!(error = %e, "writing the VXLAN source filter"),
        }
    }

    /// Removes the namespaces earlier runs made for tasks not in `keep` and not attached now.
    async fn cleanup(&mut self, keep: &HashSet<String>) {
        let Ok(entries) = std::fs::read_dir(&self.owned_dir) else {
            return;
        };
        let mut in_use: HashSet<&String> = self.switches.values().map(|s| &s.ns).collect();
        in_use.extend(self.mesh.as_ref().map(|m| &m.ns));
        let mut stale = Vec::new();
        let mut gateway_stale = false;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == GATEWAY_RECORD {
                gateway_stale = self.leases.is_empty();
                continue;
            }
            let wanted = match name.strip_prefix("swarm-") {
                Some(task) => keep.contains(task) || self.attached.contains_key(task),
                None => in_use.contains(&name),
            };
            if !wanted {
                stale.push(name);
            }
        }
        for ns in stale {
            tracing::info!(%ns, "removing a namespace an earlier run left");
            self.drop_switch(&ns).await;
        }
        if self.mesh.is_none() {
            // A table an earlier run left while the mesh was in use.
            let table = self.mesh_table();
            if let Err(e) = kernel::node_mesh_rules(&table, Ipv4Addr::UNSPECIFIED, None).await {
                tracing::warn!(error = %e, "removing the mesh's node table");
            }
        }
        if gateway_stale {
            self.release_gateway().await;
        }
        self.sync_filter().await;
        if self.switches.is_empty() && self.filter.is_none() {
            // A table an earlier run left while it had switches.
            if let Err(e) = kernel::vxlan_filter(0, None).await {
                tracing::warn!(error = %e, "removing the VXLAN source filter");
            }
        }
    }
}
