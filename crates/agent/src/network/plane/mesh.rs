//! The routing mesh on this node (docs/networking.md §5): a sandbox namespace with a leg on
//! the ingress network and one on the egress bridge, the sandbox's table spreading each
//! published port over its backends, and the node's table sending published ports to the
//! sandbox (or, for `source=keep`, straight to a local task). Part of the plane: it runs on
//! the plane's state, in the plane's one task; the kernel calls are `kernel.rs`'s.

use std::net::Ipv4Addr;

use super::super::kernel;
use super::{gateway_port, switch_port, NetError, Plane};

/// The routing mesh on this node: a sandbox namespace with a leg on the ingress network and
/// one on the egress bridge, the sandbox's table, and the node's table that sends published
/// ports to it.
pub(super) struct Mesh {
    pub(super) ns: String,
    pub(super) network_id: String,
    address: String,
    /// Its address on the egress bridge: where the node's table sends published ports.
    lease: Ipv4Addr,
    /// The sandbox's and the node's rules as last written (`None` before the first write).
    written: Option<(Vec<kernel::MeshPort>, Vec<kernel::NodePort>)>,
}

impl Plane {
    /// The key of the sandbox's lease on the egress bridge (task IDs never start so).
    pub(super) fn mesh_key(&self) -> String {
        format!("mesh{}", self.node_id)
    }

    /// The node's mesh table, named for this node: swarmds sharing a namespace (tests) each
    /// keep their own.
    pub(super) fn mesh_table(&self) -> String {
        let id: String = self
            .node_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        format!("swarmd_mesh_{id}")
    }

    /// Brings the routing mesh to the view's: a sandbox while the view gives this node an
    /// ingress address, with the published ports forwarded to their backends; none otherwise.
    pub(super) async fn sync_mesh(&mut self) {
        let want = self.view.as_ref().and_then(|v| {
            if v.ingress_address.is_empty() {
                return None;
            }
            let ingress = v
                .networks
                .iter()
                .filter_map(|n| n.network.as_ref())
                .find(|n| n.spec.as_ref().is_some_and(|s| s.ingress))?;
            let proto = |p: &swarm_api::IngressPort| {
                if p.protocol == swarm_api::PortProtocol::Udp as i32 {
                    "udp"
                } else {
                    "tcp"
                }
            };
            let sandbox: Vec<kernel::MeshPort> = v
                .ingress_ports
                .iter()
                .filter(|p| !p.keep_source)
                .map(|p| kernel::MeshPort {
                    proto: proto(p),
                    published: p.published_port,
                    target: p.target_port,
                    backends: p.backends.iter().filter_map(|b| b.parse().ok()).collect(),
                })
                .collect();
            // Keep-source ports go to this node's own tasks, at their egress legs.
            let node: Vec<kernel::NodePort> = v
                .ingress_ports
                .iter()
                .map(|p| kernel::NodePort {
                    proto: proto(p),
                    published: p.published_port,
                    route: if p.keep_source {
                        kernel::NodeRoute::Local {
                            target: p.target_port,
                            backends: p
                                .local_task_ids
                                .iter()
                                .filter_map(|id| self.leases.get(id).copied())
                                .collect(),
                        }
                    } else {
                        kernel::NodeRoute::Sandbox
                    },
                })
                .collect();
            Some((
                ingress.id.clone(),
                v.ingress_address.clone(),
                (sandbox, node),
            ))
        });
        let Some((network_id, address, rules)) = want else {
            if self.mesh.is_some() {
                self.drop_mesh().await;
            }
            return;
        };
        let moved = self
            .mesh
            .as_ref()
            .is_some_and(|m| m.network_id != network_id || m.address != address);
        if moved {
            self.drop_mesh().await;
        }
        if self.mesh.is_none() {
            match self.make_mesh(&network_id, &address).await {
                Ok(m) => self.mesh = Some(m),
                Err(e) => {
                    tracing::warn!(error = %e, "making the routing mesh's sandbox");
                    // Half a sandbox is no sandbox: the next view tries again from nothing.
                    self.tear_down_mesh(&self.sandbox_ns(), &network_id).await;
                    return;
                }
            }
        }
        let table = self.mesh_table();
        let Some(mesh) = self.mesh.as_mut() else {
            return;
        };
        if mesh.written.as_ref() == Some(&rules) {
            return;
        }
        let written = async {
            kernel::sandbox_rules(&mesh.ns, &rules.0).await?;
            kernel::node_mesh_rules(&table, mesh.lease, Some(&rules.1)).await
        };
        match written.await {
            Ok(()) => mesh.written = Some(rules),
            Err(e) => tracing::warn!(error = %e, "writing the routing mesh's rules"),
        }
    }

    /// The sandbox: its namespace, a leg on the ingress network's switch at `address`, a leg
    /// on the egress bridge (its default route), forwarding on.
    pub(super) async fn make_mesh(
        &mut self,
        network_id: &str,
        address: &str,
    ) -> Result<Mesh, NetError> {
        let ns = self.sandbox_ns();
        self.record(&ns, true)?;
        kernel::netns_add(&ns).await?;
        let switch = self.ensure_switch(network_id).await?;
        kernel::plug(&switch, &switch_port("ingress-sbox"), &ns, "eth0", address).await?;
        let key = self.mesh_key();
        self.plug_gateway(&key, &ns).await?;
        kernel::enable_forwarding(&ns).await?;
        let lease = self
            .leases
            .get(&key)
            .copied()
            .ok_or_else(|| NetError::NoAddress(kernel::GATEWAY_SUBNET.into()))?;
        tracing::info!(%address, "routing mesh sandbox ready");
        Ok(Mesh {
            ns,
            network_id: network_id.to_string(),
            address: address.to_string(),
            lease,
            written: None,
        })
    }

    /// Takes the sandbox, its legs and both tables away; the ingress switch too once no task
    /// uses it, and the egress bridge once nothing does.
    pub(super) async fn drop_mesh(&mut self) {
        if let Some(mesh) = self.mesh.take() {
            self.tear_down_mesh(&mesh.ns, &mesh.network_id).await;
        }
    }

    /// The sandbox's namespace.
    fn sandbox_ns(&self) -> String {
        format!("swing-{}", self.node_id)
    }

    /// Removes whatever exists of a sandbox in `ns` on `network_id`'s switch: a whole one, or
    /// what a failed attempt made of it.
    async fn tear_down_mesh(&mut self, ns: &str, network_id: &str) {
        let table = self.mesh_table();
        if let Err(e) = kernel::node_mesh_rules(&table, Ipv4Addr::UNSPECIFIED, None).await {
            tracing::warn!(error = %e, "removing the mesh's node table");
        }
        let key = self.mesh_key();
        if self.leases.remove(&key).is_some() {
            kernel::unplug(None, &gateway_port(&key)).await;
        }
        if let Some(s) = self.switches.get(network_id) {
            kernel::unplug(Some(&s.ns), &switch_port("ingress-sbox")).await;
        }
        match kernel::netns_del(ns).await {
            Ok(()) => {
                let _ = self.record(ns, false);
            }
            Err(e) => tracing::warn!(%ns, error = %e, "removing the mesh's sandbox"),
        }
        let used = self
            .attached
            .values()
            .any(|v| v.iter().any(|n| n == network_id));
        if !used {
            if let Some(s) = self.switches.remove(network_id) {
                self.drop_switch(&s.ns).await;
            }
        }
        self.release_gateway().await;
        self.sync_filter().await;
    }
}
