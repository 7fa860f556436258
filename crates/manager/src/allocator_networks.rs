//! Network addresses: a subnet, gateway and VXLAN ID for every network, one virtual IP per
//! (service, network) in vip mode, and one address per task attachment. Pure functions over
//! the tables; the allocator loop writes what they return, and the control API asks them how
//! many addresses a network has left. Must not touch the store itself.
//!
//! Nothing is remembered between passes: what is taken is read back from the store (network
//! rows, services' endpoints, tasks' attachments), so a new leader's allocator carries on
//! where the old one stopped. An address is free again once its task has stopped (observed
//! past RUNNING) or is gone, or its service is gone. New addresses are taken after the highest
//! one in use, wrapping round, so a just-freed address is not handed out again at once (a
//! client's cached DNS answer for it then fails rather than reaching another task).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use swarm_api::cidr::{parse_address, Subnet};
use swarm_api::{
    defaults, EndpointMode, IpamConfig, Network, NetworkAttachment, NetworkAttachmentConfig,
    PublishMode, Service, Task, TaskState, VirtualIp,
};
use swarm_store::Tables;

/// The cluster's default address pool: where networks without a subnet draw theirs from.
#[derive(Debug, Clone)]
pub struct AddressPool {
    pub pools: Vec<Subnet>,
    pub subnet_size: u8,
}

impl AddressPool {
    /// The cluster's pool, or Docker's default where it sets none (or none that parses: the
    /// values were checked at bootstrap).
    pub fn of_cluster(t: &Tables) -> AddressPool {
        let c = t.default_cluster();
        let pools: Vec<Subnet> = c
            .map(|c| c.default_address_pool.as_slice())
            .unwrap_or(&[])
            .iter()
            .filter_map(|p| Subnet::parse(p).ok())
            .collect();
        let size = c.map_or(0, |c| c.subnet_size);
        AddressPool {
            pools: if pools.is_empty() {
                Subnet::parse(defaults::ADDRESS_POOL).into_iter().collect()
            } else {
                pools
            },
            subnet_size: if (1..=29).contains(&size) {
                size as u8
            } else {
                defaults::SUBNET_SIZE as u8
            },
        }
    }

    /// The first subnet of the pool that overlaps none of `taken`.
    pub fn carve(&self, taken: &[Subnet]) -> Option<Subnet> {
        self.pools
            .iter()
            .flat_map(|p| p.carve(self.subnet_size.max(p.prefix_len())))
            .find(|s| !taken.iter().any(|t| t.overlaps(s)))
    }

    pub fn describe(&self) -> String {
        let pools: Vec<String> = self.pools.iter().map(Subnet::to_string).collect();
        format!("{} in /{}s", pools.join(","), self.subnet_size)
    }
}

/// A network's allocated subnet and gateway, when both are set and parse.
pub fn allocated(n: &Network) -> Option<(Subnet, Ipv4Addr)> {
    let ipam = n.ipam.as_ref()?;
    let subnet = Subnet::parse(&ipam.subnet).ok()?;
    let gateway: Ipv4Addr = ipam.gateway.parse().ok()?;
    Some((subnet, gateway))
}

/// Every subnet networks hold or ask for, but `except`'s.
pub fn subnets_in_use(t: &Tables, except: &str) -> Vec<(Subnet, String)> {
    let mut out = Vec::new();
    for n in t.networks.iter().filter(|n| n.id != except) {
        let name = network_name(n).to_string();
        if let Some((s, _)) = allocated(n) {
            out.push((s, name.clone()));
        }
        let asked = n.spec.as_ref().and_then(|s| s.ipam.as_ref());
        if let Some(s) = asked.and_then(|i| Subnet::parse(&i.subnet).ok()) {
            out.push((s, name));
        }
    }
    out
}

/// A network's name, or its ID when it has none.
pub fn network_name(n: &Network) -> &str {
    match swarm_api::names::Named::name(n) {
        "" => n.id.as_str(),
        name => name,
    }
}

/// True while a task may still be using its addresses: until it is seen stopped.
pub fn holds_addresses(task: &Task) -> bool {
    swarm_api::state::observed(task) <= TaskState::Running
}

/// The networks (IDs, sorted) a service's spec attaches it to.
pub fn spec_networks(s: &Service) -> Vec<String> {
    let set: BTreeSet<String> = s
        .spec
        .as_ref()
        .and_then(|sp| sp.task.as_ref())
        .map(|t| t.networks.iter().map(|n| n.target.clone()).collect())
        .unwrap_or_default();
    set.into_iter().collect()
}

/// The ingress network's ID (bootstrap makes it), when the store has one.
pub fn ingress_id(t: &Tables) -> Option<&str> {
    t.networks
        .iter()
        .find(|n| n.spec.as_ref().is_some_and(|s| s.ingress))
        .map(|n| n.id.as_str())
}

/// True when the service's spec publishes a port through the routing mesh (ingress mode).
pub fn publishes_ingress(s: &Service) -> bool {
    s.spec
        .as_ref()
        .and_then(|sp| sp.endpoint.as_ref())
        .is_some_and(|e| {
            e.ports
                .iter()
                .any(|p| p.publish_mode == PublishMode::Ingress as i32)
        })
}

/// True while some service publishes through the routing mesh: then every node has an
/// ingress sandbox.
pub fn mesh_in_use(t: &Tables) -> bool {
    t.services.iter().any(publishes_ingress)
}

/// The networks (IDs, sorted) a service's tasks attach to: its spec's, and `ingress` when it
/// publishes through the routing mesh (implicitly, as Docker: the spec does not name it).
pub fn service_networks(s: &Service, ingress: Option<&str>) -> Vec<String> {
    let mut nets = spec_networks(s);
    if let Some(i) = ingress.filter(|_| publishes_ingress(s)) {
        if !nets.iter().any(|n| n == i) {
            nets.push(i.to_string());
            nets.sort();
        }
    }
    nets
}

fn vip_mode(s: &Service) -> bool {
    s.spec
        .as_ref()
        .and_then(|sp| sp.endpoint.as_ref())
        .is_none_or(|e| e.mode == EndpointMode::Vip as i32)
}

/// The networks a service should have VIPs on: its networks (ingress included) in vip mode,
/// none in dnsrr.
pub fn wanted_vip_networks(s: &Service, ingress: Option<&str>) -> Vec<String> {
    if vip_mode(s) {
        service_networks(s, ingress)
    } else {
        Vec::new()
    }
}

/// True when the service's VIPs were allocated for its current spec.
pub fn vips_allocated(s: &Service, ingress: Option<&str>) -> bool {
    let want = wanted_vip_networks(s, ingress);
    let have = s.endpoint.as_ref();
    have.map_or(&[][..], |e| e.vip_networks.as_slice()) == want.as_slice()
        && have.map_or(0, |e| e.virtual_ips.len()) == want.len()
}

/// The addresses taken on one network: its gateway, the VIPs of services on it, and the
/// attachments of tasks that may still use them.
pub fn taken_on(t: &Tables, network_id: &str, gateway: Ipv4Addr) -> HashSet<Ipv4Addr> {
    let mut used = HashSet::from([gateway]);
    if ingress_id(t) == Some(network_id) {
        for n in t.nodes.iter() {
            used.extend(parse_address(&n.ingress_address).ok().map(|(ip, _)| ip));
        }
    }
    for s in t.services.iter() {
        for v in s.endpoint.iter().flat_map(|e| &e.virtual_ips) {
            if v.network_id == network_id {
                used.extend(parse_address(&v.addr).ok().map(|(ip, _)| ip));
            }
        }
    }
    for task in t
        .tasks_of_network(network_id)
        .filter(|x| holds_addresses(x))
    {
        for a in task.networks.iter().filter(|a| a.network_id == network_id) {
            used.extend(
                a.addresses
                    .iter()
                    .filter_map(|x| parse_address(x).ok().map(|(ip, _)| ip)),
            );
        }
    }
    used
}

/// One network's addresses during a pass: what is taken, and where the next one is looked for.
pub struct NetAddresses {
    pub name: String,
    pub subnet: Subnet,
    used: HashSet<Ipv4Addr>,
    next: u32,
}

impl NetAddresses {
    pub fn new(name: String, subnet: Subnet, used: HashSet<Ipv4Addr>) -> NetAddresses {
        let next = used.iter().map(|ip| u32::from(*ip)).max().unwrap_or(0);
        NetAddresses {
            name,
            subnet,
            used,
            next,
        }
    }

    pub fn free(&self) -> u64 {
        let held = self
            .used
            .iter()
            .filter(|ip| self.subnet.is_host(**ip))
            .count() as u64;
        self.subnet.host_count().saturating_sub(held)
    }

    /// The next free host address after the last one handed out, wrapping round.
    pub fn take(&mut self) -> Option<Ipv4Addr> {
        let hosts = self.subnet.host_count();
        let first = u32::from(self.subnet.first_host()?);
        let start = if self.subnet.is_host(Ipv4Addr::from(self.next)) {
            u64::from(self.next - first) + 1
        } else {
            0
        };
        for i in 0..hosts {
            let ip = Ipv4Addr::from(first + ((start + i) % hosts) as u32);
            if self.used.insert(ip) {
                self.next = u32::from(ip);
                return Some(ip);
            }
        }
        None
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip);
    }

    pub fn exhausted(&self) -> String {
        format!("no address left in network {} ({})", self.name, self.subnet)
    }
}

/// Why a network cannot give out addresses yet.
fn not_ready(t: &Tables, network_id: &str) -> String {
    match t.networks.get(network_id) {
        None => format!("network {network_id} no longer exists"),
        Some(n) => format!("network {} has no subnet allocated yet", network_name(n)),
    }
}

/// Everything one allocator pass decided about networks, ready to be written.
#[derive(Default)]
pub struct NetworkPass {
    pub networks: Vec<Network>,
    /// Networks whose subnet is settled in the store (not just allocated in this pass):
    /// only these give out addresses, so a refused network write cannot strand them.
    ready: HashMap<String, NetAddresses>,
    /// Networks that could not be given a subnet, with the reason.
    waiting: HashMap<String, String>,
}

impl NetworkPass {
    /// Gives every network without one a subnet, gateway and VXLAN ID.
    pub fn allocate_networks(t: &Tables) -> NetworkPass {
        let mut pass = NetworkPass::default();
        let pool = AddressPool::of_cluster(t);
        let mut taken: Vec<Subnet> = subnets_in_use(t, "").into_iter().map(|x| x.0).collect();
        let mut vnis: HashSet<u32> = t.networks.iter().map(|n| n.vni).collect();
        for n in t.networks.iter() {
            if allocated(n).is_some() {
                if n.vni == 0 {
                    let mut x = n.clone();
                    x.vni = (defaults::FIRST_VNI..)
                        .find(|v| !vnis.contains(v))
                        .unwrap_or(0);
                    vnis.insert(x.vni);
                    pass.networks.push(x);
                }
                continue;
            }
            let asked = n
                .spec
                .as_ref()
                .and_then(|s| s.ipam.clone())
                .unwrap_or_default();
            let subnet = match Subnet::parse(&asked.subnet) {
                Ok(s) => Some(s),
                Err(_) => pool.carve(&taken),
            };
            let Some(subnet) = subnet else {
                let why = format!(
                    "network {} has no subnet: the default address pool ({}) is used up",
                    network_name(n),
                    pool.describe()
                );
                tracing::warn!(network = %n.id, "{why}");
                pass.waiting.insert(n.id.clone(), why);
                continue;
            };
            taken.push(subnet);
            let gateway = asked
                .gateway
                .parse::<Ipv4Addr>()
                .ok()
                .or_else(|| subnet.first_host());
            let Some(gateway) = gateway else { continue };
            let mut x = n.clone();
            x.ipam = Some(IpamConfig {
                subnet: subnet.to_string(),
                gateway: gateway.to_string(),
            });
            if x.vni == 0 {
                let vni = (defaults::FIRST_VNI..).find(|v| !vnis.contains(v));
                x.vni = vni.unwrap_or(0);
                vnis.insert(x.vni);
            }
            pass.networks.push(x);
        }
        pass
    }

    /// The addresses of a network settled in the store, read back the first time it is asked.
    fn addresses<'p>(
        &'p mut self,
        t: &Tables,
        network_id: &str,
    ) -> Result<&'p mut NetAddresses, String> {
        if let Some(why) = self.waiting.get(network_id) {
            return Err(why.clone());
        }
        if !self.ready.contains_key(network_id) {
            let settled = self.networks.iter().all(|n| n.id != network_id);
            let n = t.networks.get(network_id).filter(|_| settled);
            let Some((n, (subnet, gateway))) = n.and_then(|n| Some((n, allocated(n)?))) else {
                return Err(not_ready(t, network_id));
            };
            let used = taken_on(t, network_id, gateway);
            let state = NetAddresses::new(network_name(n).to_string(), subnet, used);
            self.ready.insert(network_id.to_string(), state);
        }
        self.ready
            .get_mut(network_id)
            .ok_or_else(|| not_ready(t, network_id))
    }

    /// The VIPs `service` should have now: kept where its networks stay, new ones taken for
    /// networks added, none for networks dropped. `Err` (nothing taken) when one is missing.
    pub fn service_vips(
        &mut self,
        t: &Tables,
        service: &Service,
    ) -> Result<Vec<VirtualIp>, String> {
        let old = service
            .endpoint
            .as_ref()
            .map_or(&[][..], |e| e.virtual_ips.as_slice());
        let mut out = Vec::new();
        let mut fresh = Vec::new();
        for net in wanted_vip_networks(service, ingress_id(t)) {
            if let Some(v) = old.iter().find(|v| v.network_id == net) {
                out.push(v.clone());
                continue;
            }
            let taken = self.addresses(t, &net).and_then(|a| {
                let ip = a.take().ok_or_else(|| a.exhausted())?;
                Ok(VirtualIp {
                    network_id: net.clone(),
                    addr: a.subnet.address(ip),
                })
            });
            match taken {
                Ok(v) => {
                    fresh.push(v.clone());
                    out.push(v);
                }
                Err(e) => {
                    self.give_back(
                        fresh
                            .iter()
                            .map(|v| (v.network_id.as_str(), v.addr.as_str())),
                    );
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// One attachment per network of the task's spec, each with a fresh address; `Err` (and
    /// nothing taken) when a network is not ready or full.
    pub fn task_attachments(
        &mut self,
        t: &Tables,
        task: &Task,
    ) -> Result<Vec<NetworkAttachment>, String> {
        let wanted = task_networks(t, task);
        let mut out: Vec<NetworkAttachment> = Vec::new();
        for cfg in wanted {
            let taken = self.addresses(t, &cfg.target).and_then(|a| {
                let ip = a.take().ok_or_else(|| a.exhausted())?;
                Ok(a.subnet.address(ip))
            });
            match taken {
                Ok(addr) => out.push(NetworkAttachment {
                    network_id: cfg.target.clone(),
                    addresses: vec![addr],
                    aliases: cfg.aliases.clone(),
                }),
                Err(e) => {
                    self.give_back(out.iter().flat_map(|a| {
                        a.addresses
                            .iter()
                            .map(|x| (a.network_id.as_str(), x.as_str()))
                    }));
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    fn give_back<'a>(&mut self, addrs: impl Iterator<Item = (&'a str, &'a str)>) {
        for (net, addr) in addrs {
            if let (Some(a), Ok((ip, _))) = (self.ready.get_mut(net), parse_address(addr)) {
                a.release(ip);
            }
        }
    }

    /// An address on the ingress network for a node's sandbox; `Err` when there is none.
    pub fn sandbox_address(&mut self, t: &Tables, ingress: &str) -> Result<String, String> {
        let a = self.addresses(t, ingress)?;
        let ip = a.take().ok_or_else(|| a.exhausted())?;
        Ok(a.subnet.address(ip))
    }
}

/// The networks a task attaches to: its spec's, then `ingress` when its service publishes
/// through the routing mesh.
pub fn task_networks(t: &Tables, task: &Task) -> Vec<NetworkAttachmentConfig> {
    let mut wanted: Vec<NetworkAttachmentConfig> = task
        .spec
        .as_ref()
        .map(|s| s.networks.clone())
        .unwrap_or_default();
    let mesh = t
        .services
        .get(&task.service_id)
        .is_some_and(publishes_ingress);
    if let Some(i) = ingress_id(t).filter(|_| mesh) {
        if !wanted.iter().any(|w| w.target == i) {
            wanted.push(NetworkAttachmentConfig {
                target: i.to_string(),
                aliases: Vec::new(),
            });
        }
    }
    wanted
}

/// True when the networks a task should be on are not what its attachments cover yet.
pub fn needs_attachments(t: &Tables, task: &Task) -> bool {
    let wanted = task_networks(t, task);
    wanted.len() != task.networks.len()
        || wanted
            .iter()
            .zip(&task.networks)
            .any(|(w, a)| w.target != a.network_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(subnet: &str, used: &[&str]) -> NetAddresses {
        let used = used.iter().map(|s| s.parse().unwrap()).collect();
        NetAddresses::new("app".into(), Subnet::parse(subnet).unwrap(), used)
    }

    #[test]
    fn takes_after_the_highest_in_use_and_wraps_round() {
        let mut a = addrs("10.0.1.0/29", &["10.0.1.1", "10.0.1.3"]);
        assert_eq!(a.free(), 4);
        assert_eq!(a.take(), Some("10.0.1.4".parse().unwrap()));
        assert_eq!(a.take(), Some("10.0.1.5".parse().unwrap()));
        assert_eq!(a.take(), Some("10.0.1.6".parse().unwrap()));
        // Wraps to the low end: .2 was never taken.
        assert_eq!(a.take(), Some("10.0.1.2".parse().unwrap()));
        assert_eq!(a.take(), None);
        assert_eq!(
            a.exhausted(),
            "no address left in network app (10.0.1.0/29)"
        );
        a.release("10.0.1.5".parse().unwrap());
        assert_eq!(a.take(), Some("10.0.1.5".parse().unwrap()));
    }

    #[test]
    fn the_pool_skips_subnets_in_use() {
        let pool = AddressPool {
            pools: vec![Subnet::parse("10.0.0.0/22").unwrap()],
            subnet_size: 24,
        };
        let taken = [
            Subnet::parse("10.0.0.0/24").unwrap(),
            Subnet::parse("10.0.1.128/25").unwrap(),
        ];
        assert_eq!(pool.carve(&taken).unwrap().to_string(), "10.0.2.0/24");
        let all = [Subnet::parse("10.0.0.0/16").unwrap()];
        assert_eq!(pool.carve(&all), None);
    }
}
