//! The kernel calls of the data plane, each one `ip`, `bridge` or `nft` command (iproute2 and
//! nftables): namespaces, the per-network bridge and VXLAN device, a task's veth, FDB entries
//! for peers, and the node's VXLAN source filter. Knows nothing of tasks or views: the plane
//! (`plane.rs`) decides what to call. Every failure names the command and what it printed.

use std::net::Ipv4Addr;
use tokio::process::Command;

/// The MTU of every overlay interface: the underlay's 1500 less VXLAN's 50 bytes.
pub const OVERLAY_MTU: &str = "1450";

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("`{command}`: {reason}")]
    Failed { command: String, reason: String },
    #[error("`{command}` could not run: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

async fn run_with_input(args: &[&str], input: Option<&str>) -> Result<String, KernelError> {
    use tokio::io::AsyncWriteExt;
    let command = args.join(" ");
    let spawn_err = |source| KernelError::Spawn {
        command: command.clone(),
        source,
    };
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..])
        .stdin(if input.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| KernelError::Spawn {
                command: command.clone(),
                source: e,
            })?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| KernelError::Spawn {
            command: command.clone(),
            source: e,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let reason = String::from_utf8_lossy(&out.stderr)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Err(KernelError::Failed { command, reason })
    }
}

async fn run(args: &[&str]) -> Result<String, KernelError> {
    run_with_input(args, None).await
}

pub fn netns_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new("/run/netns").join(name)
}

/// Creates namespace `name` with its loopback up (nothing when it exists).
pub async fn netns_add(name: &str) -> Result<(), KernelError> {
    if !netns_path(name).exists() {
        run(&["ip", "netns", "add", name]).await?;
    }
    run(&["ip", "-n", name, "link", "set", "lo", "up"]).await?;
    Ok(())
}

/// Names the network namespace of process `pid` (a container's) `name`, as `ip netns add`
/// would have made it (nothing when the name exists).
pub async fn netns_attach(name: &str, pid: u32) -> Result<(), KernelError> {
    if !netns_path(name).exists() {
        run(&["ip", "netns", "attach", name, &pid.to_string()]).await?;
    }
    run(&["ip", "-n", name, "link", "set", "lo", "up"]).await?;
    Ok(())
}

/// Deletes `port` from namespace `ns` (or the node's own with `None`); its veth peer goes
/// with it. Nothing when it is gone.
pub async fn unplug(ns: Option<&str>, port: &str) {
    let _ = match ns {
        Some(ns) if netns_path(ns).exists() => run(&["ip", "-n", ns, "link", "del", port]).await,
        Some(_) => return,
        None => run(&["ip", "link", "del", port]).await,
    };
}

/// Deletes namespace `name` and with it every interface inside (nothing when it is gone).
pub async fn netns_del(name: &str) -> Result<(), KernelError> {
    if netns_path(name).exists() {
        run(&["ip", "netns", "del", name]).await?;
    }
    Ok(())
}

/// Makes `ns` a network's switch: a bridge `br0` and the VXLAN device `vxlan0` for `vni` on
/// UDP `port`. The VXLAN device is made (as `tmp`) in the caller's namespace (so its socket listens on
/// this node's underlay) and then moved in.
pub async fn make_switch(ns: &str, tmp: &str, vni: u32, port: u32) -> Result<(), KernelError> {
    let have = run(&["ip", "-n", ns, "-o", "link", "show"]).await?;
    if have.contains(" vxlan0:") && have.contains(" br0:") {
        return Ok(());
    }
    let vni = vni.to_string();
    let port = port.to_string();
    // A leftover from an interrupted attempt would make `add` fail.
    let _ = run(&["ip", "link", "del", tmp]).await;
    run(&[
        "ip", "link", "add", tmp, "type", "vxlan", "id", &vni, "dstport", &port, "ttl", "64",
    ])
    .await?;
    run(&["ip", "link", "set", tmp, "netns", ns]).await?;
    run(&["ip", "-n", ns, "link", "set", tmp, "name", "vxlan0"]).await?;
    run(&["ip", "-n", ns, "link", "add", "br0", "type", "bridge"]).await?;
    run(&["ip", "-n", ns, "link", "set", "vxlan0", "mtu", OVERLAY_MTU]).await?;
    run(&["ip", "-n", ns, "link", "set", "vxlan0", "master", "br0"]).await?;
    run(&["ip", "-n", ns, "link", "set", "vxlan0", "up"]).await?;
    run(&["ip", "-n", ns, "link", "set", "br0", "up"]).await?;
    Ok(())
}

/// The peers `vxlan0` in `ns` floods unknown and broadcast frames to.
pub async fn peers(ns: &str) -> Result<Vec<Ipv4Addr>, KernelError> {
    let out = run(&["bridge", "-n", ns, "fdb", "show", "dev", "vxlan0"]).await?;
    Ok(out
        .lines()
        .filter(|l| l.starts_with("00:00:00:00:00:00"))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "dst")?;
            words.next()?.parse().ok()
        })
        .collect())
}

pub async fn add_peer(ns: &str, peer: Ipv4Addr) -> Result<(), KernelError> {
    fdb(ns, "append", peer).await
}

pub async fn del_peer(ns: &str, peer: Ipv4Addr) -> Result<(), KernelError> {
    fdb(ns, "del", peer).await
}

/// Adds or removes the flood entry for `peer` on `vxlan0` in `ns`.
async fn fdb(ns: &str, verb: &str, peer: Ipv4Addr) -> Result<(), KernelError> {
    let peer = peer.to_string();
    let zero = "00:00:00:00:00:00";
    run(&[
        "bridge", "-n", ns, "fdb", verb, zero, "dev", "vxlan0", "dst", &peer,
    ])
    .await
    .map(drop)
}

/// Plugs task namespace `task_ns` into the switch in `switch_ns`: `ifname` inside at
/// `address` ("10.0.1.5/24"), its peer `port` on `br0`.
pub async fn plug(
    switch_ns: &str,
    port: &str,
    task_ns: &str,
    ifname: &str,
    address: &str,
) -> Result<(), KernelError> {
    let _ = run(&["ip", "-n", switch_ns, "link", "del", port]).await;
    run(&[
        "ip",
        "-n",
        switch_ns,
        "link",
        "add",
        port,
        "mtu",
        OVERLAY_MTU,
        "type",
        "veth",
        "peer",
        "name",
        ifname,
        "netns",
        task_ns,
    ])
    .await?;
    run(&["ip", "-n", switch_ns, "link", "set", port, "master", "br0"]).await?;
    run(&["ip", "-n", switch_ns, "link", "set", port, "up"]).await?;
    run(&["ip", "-n", task_ns, "addr", "add", address, "dev", ifname]).await?;
    run(&[
        "ip",
        "-n",
        task_ns,
        "link",
        "set",
        ifname,
        "mtu",
        OVERLAY_MTU,
    ])
    .await?;
    run(&["ip", "-n", task_ns, "link", "set", ifname, "up"]).await?;
    Ok(())
}

/// The node's egress bridge, its name and address: every task on a non-internal network gets
/// a leg on it (`gw0`) as its default route, masqueraded out of the node. Ports are isolated
/// from each other, so tasks of different networks do not meet on it.
pub const GATEWAY_BRIDGE: &str = "swgw0";
pub const GATEWAY_SUBNET: &str = "172.31.0.0/16";
pub const GATEWAY_ADDR: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 1);

/// Makes the egress bridge (nothing when it is there), turns forwarding on in this
/// namespace and writes the masquerade table.
pub async fn make_gateway() -> Result<(), KernelError> {
    let have = run(&["ip", "-o", "link", "show"]).await?;
    if !have.contains(&format!(" {GATEWAY_BRIDGE}:")) {
        run(&["ip", "link", "add", GATEWAY_BRIDGE, "type", "bridge"]).await?;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{GATEWAY_ADDR}/16"),
            "dev",
            GATEWAY_BRIDGE,
        ])
        .await?;
    }
    run(&["ip", "link", "set", GATEWAY_BRIDGE, "up"]).await?;
    // Per namespace: this is the node's (the agent's) namespace.
    std::fs::write("/proc/sys/net/ipv4/ip_forward", b"1").map_err(|source| KernelError::Spawn {
        command: "write /proc/sys/net/ipv4/ip_forward".into(),
        source,
    })?;
    let script = format!(
        "table ip swarmd_nat\ndelete table ip swarmd_nat\ntable ip swarmd_nat {{\n  chain post {{\n    \
         type nat hook postrouting priority 100; policy accept;\n    \
         ip saddr {GATEWAY_SUBNET} oifname != \"{GATEWAY_BRIDGE}\" masquerade\n  }}\n}}\n"
    );
    run_with_input(&["nft", "-f", "-"], Some(&script)).await?;
    docker_forward("-I").await
}

/// The rules that let the egress bridge's traffic through a firewall that drops forwarded
/// packets by default, as Docker sets up its hosts (`FORWARD` policy DROP): Docker's
/// `DOCKER-USER` chain is the place it leaves for them. Public so a test that kills a swarmd
/// can remove what it left.
pub fn forward_rules() -> [Vec<&'static str>; 3] {
    let into_bridge = |state| {
        vec![
            "DOCKER-USER",
            "-o",
            GATEWAY_BRIDGE,
            "-m",
            "conntrack",
            "--ctstate",
            state,
            "-j",
            "ACCEPT",
        ]
    };
    [
        vec!["DOCKER-USER", "-i", GATEWAY_BRIDGE, "-j", "ACCEPT"],
        // The routing mesh's connections, translated to the sandbox's leg on the bridge.
        into_bridge("DNAT"),
        into_bridge("RELATED,ESTABLISHED"),
    ]
}

/// Adds (`-I`) or removes (`-D`) the forward rules, where this namespace has Docker's chain
/// (elsewhere nothing drops forwarded traffic on its behalf).
async fn docker_forward(verb: &str) -> Result<(), KernelError> {
    if run(&["iptables", "-S", "DOCKER-USER"]).await.is_err() {
        return Ok(());
    }
    for rule in forward_rules() {
        let mut check = vec!["iptables", "-C"];
        check.extend(rule.iter().copied());
        let present = run(&check).await.is_ok();
        if (verb == "-I") != present {
            let mut cmd = vec!["iptables", verb];
            cmd.extend(rule.iter().copied());
            run(&cmd).await?;
        }
    }
    Ok(())
}

/// Removes the egress bridge and its table (nothing when they are gone).
pub async fn remove_gateway() -> Result<(), KernelError> {
    docker_forward("-D").await?;
    let have = run(&["ip", "-o", "link", "show"]).await?;
    if have.contains(&format!(" {GATEWAY_BRIDGE}:")) {
        run(&["ip", "link", "del", GATEWAY_BRIDGE]).await?;
    }
    run_with_input(
        &["nft", "-f", "-"],
        Some("table ip swarmd_nat\ndelete table ip swarmd_nat\n"),
    )
    .await
    .map(drop)
}

/// Gives task namespace `task_ns` its egress leg: `gw0` at `address` (a /16 of the gateway
/// subnet), the default route through the bridge.
pub async fn plug_gateway(task_ns: &str, port: &str, address: Ipv4Addr) -> Result<(), KernelError> {
    let _ = run(&["ip", "link", "del", port]).await;
    run(&[
        "ip", "link", "add", port, "type", "veth", "peer", "name", "gw0", "netns", task_ns,
    ])
    .await?;
    run(&["ip", "link", "set", port, "master", GATEWAY_BRIDGE]).await?;
    run(&["bridge", "link", "set", "dev", port, "isolated", "on"]).await?;
    run(&["ip", "link", "set", port, "up"]).await?;
    let cidr = format!("{address}/16");
    run(&["ip", "-n", task_ns, "addr", "add", &cidr, "dev", "gw0"]).await?;
    run(&["ip", "-n", task_ns, "link", "set", "gw0", "up"]).await?;
    let gw = GATEWAY_ADDR.to_string();
    run(&["ip", "-n", task_ns, "route", "add", "default", "via", &gw]).await?;
    Ok(())
}

/// The VIPs a task reaches, in its own namespace `ns`: a connection to a VIP goes to one of
/// its backends, chosen at random (kube-proxy's nftables way; there is no IPVS). Replaced
/// whole; a VIP without backends gets no rule.
pub async fn vip_rules(ns: &str, vips: &[(Ipv4Addr, Vec<Ipv4Addr>)]) -> Result<(), KernelError> {
    let mut script = String::from("table ip swarmvip\ndelete table ip swarmvip\n");
    let rules: Vec<String> = vips
        .iter()
        .filter(|(_, b)| !b.is_empty())
        .map(|(vip, backends)| {
            let map: Vec<String> = backends
                .iter()
                .enumerate()
                .map(|(i, b)| format!("{i} : {b}"))
                .collect();
            format!(
                "    ip daddr {vip} dnat to numgen random mod {} map {{ {} }}\n",
                backends.len(),
                map.join(", ")
            )
        })
        .collect();
    if !rules.is_empty() {
        script.push_str(
            "table ip swarmvip {\n  chain out {\n    type nat hook output priority -100; policy accept;\n",
        );
        for r in rules {
            script.push_str(&r);
        }
        script.push_str("  }\n}\n");
    }
    run_with_input(
        &["ip", "netns", "exec", ns, "nft", "-f", "-"],
        Some(&script),
    )
    .await
    .map(drop)
}

/// The node's table: VXLAN traffic to `port` is dropped unless it comes from one of `nodes`.
/// Replaced whole in one transaction; `None` removes it.
pub async fn vxlan_filter(port: u32, nodes: Option<&[Ipv4Addr]>) -> Result<(), KernelError> {
    // Declaring the table first makes the delete succeed when it does not exist yet.
    let mut script = String::from("table inet swarmd\ndelete table inet swarmd\n");
    if let Some(nodes) = nodes {
        let elements = if nodes.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = nodes.iter().map(Ipv4Addr::to_string).collect();
            format!(" elements = {{ {} }};", list.join(", "))
        };
        script.push_str(&format!(
            "table inet swarmd {{\n  set nodes {{ type ipv4_addr;{elements} }}\n  \
             chain input {{ type filter hook input priority -1; policy accept;\n    \
             udp dport {port} ip saddr != @nodes drop\n  }}\n}}\n"
        ));
    }
    run_with_input(&["nft", "-f", "-"], Some(&script))
        .await
        .map(drop)
}

/// One port the routing mesh forwards: `proto` (`tcp` or `udp`), the published port, and the
/// target port on each backend (a task's address on the ingress network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshPort {
    pub proto: &'static str,
    pub published: u32,
    pub target: u32,
    pub backends: Vec<Ipv4Addr>,
}

/// Turns forwarding on in namespace `ns` (the mesh's sandbox forwards between its legs).
pub async fn enable_forwarding(ns: &str) -> Result<(), KernelError> {
    run(&[
        "ip",
        "netns",
        "exec",
        ns,
        "sh",
        "-c",
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
    ])
    .await
    .map(drop)
}

/// The sandbox's table, in namespace `ns`: a connection to a published port goes to one of
/// its backends at the target port, chosen at random, and leaves masqueraded as the
/// sandbox's address on the ingress leg (`eth0`), so the reply comes back through here and
/// conntrack unwinds both translations. A port without backends gets no rule (refused).
/// Replaced whole.
pub async fn sandbox_rules(ns: &str, ports: &[MeshPort]) -> Result<(), KernelError> {
    let mut script = String::from(
        "table ip swarmmesh\ndelete table ip swarmmesh\ntable ip swarmmesh {\n  chain pre {\n    \
         type nat hook prerouting priority -100; policy accept;\n",
    );
    for p in ports.iter().filter(|p| !p.backends.is_empty()) {
        let map: Vec<String> = p
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| format!("{i} : {b}"))
            .collect();
        script.push_str(&format!(
            "    {} dport {} dnat to numgen random mod {} map {{ {} }} : {}\n",
            p.proto,
            p.published,
            p.backends.len(),
            map.join(", "),
            p.target
        ));
    }
    script.push_str(
        "  }\n  chain post {\n    type nat hook postrouting priority 100; policy accept;\n    \
         oifname \"eth0\" masquerade\n  }\n}\n",
    );
    run_with_input(
        &["ip", "netns", "exec", ns, "nft", "-f", "-"],
        Some(&script),
    )
    .await
    .map(drop)
}

/// Where the node sends a published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRoute {
    /// To the sandbox, which spreads it over every task.
    Sandbox,
    /// Straight to one of this node's tasks (their legs on the egress bridge), at `target`,
    /// the client's address kept; none here = refused.
    Local {
        target: u32,
        backends: Vec<Ipv4Addr>,
    },
}

/// A published port as the node's table handles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePort {
    pub proto: &'static str,
    pub published: u32,
    pub route: NodeRoute,
}

/// The node's mesh table `table` (one per swarmd: several share a namespace in tests): a
/// connection to any of this namespace's own addresses on a published port goes to the
/// sandbox at `sandbox` (its leg on the egress bridge), masqueraded into the bridge so the
/// sandbox's reply comes back through here; a keep-source port goes to a local task as it
/// came. Replaced whole; `None` removes it.
pub async fn node_mesh_rules(
    table: &str,
    sandbox: Ipv4Addr,
    ports: Option<&[NodePort]>,
) -> Result<(), KernelError> {
    let mut script = format!("table ip {table}\ndelete table ip {table}\n");
    if let Some(ports) = ports {
        let rules: String = ports
            .iter()
            .filter_map(|p| {
                let (proto, port) = (p.proto, p.published);
                let to = match &p.route {
                    NodeRoute::Sandbox => sandbox.to_string(),
                    NodeRoute::Local { backends, .. } if backends.is_empty() => return None,
                    NodeRoute::Local { target, backends } => {
                        let map: Vec<String> = backends
                            .iter()
                            .enumerate()
                            .map(|(i, b)| format!("{i} : {b}"))
                            .collect();
                        format!(
                            "numgen random mod {} map {{ {} }} : {target}",
                            backends.len(),
                            map.join(", ")
                        )
                    }
                };
                Some(format!(
                    "    fib daddr type local {proto} dport {port} dnat to {to}\n"
                ))
            })
            .collect();
        script.push_str(&format!(
            "table ip {table} {{\n  chain pre {{\n    type nat hook prerouting priority -100; \
             policy accept;\n{rules}  }}\n  chain out {{\n    type nat hook output priority -100; \
             policy accept;\n{rules}  }}\n  chain post {{\n    type nat hook postrouting priority \
             100; policy accept;\n    oifname \"{GATEWAY_BRIDGE}\" ip daddr {sandbox} ct status dnat \
             masquerade\n    oifname \"{GATEWAY_BRIDGE}\" ip saddr 127.0.0.0/8 ct status dnat \
             masquerade\n  }}\n}}\n"
        ));
        // A client on this node itself may come from 127.0.0.1: let such packets be routed
        // into the bridge (the masquerade then gives them the bridge's address).
        let localnet = format!("/proc/sys/net/ipv4/conf/{GATEWAY_BRIDGE}/route_localnet");
        if let Err(e) = std::fs::write(&localnet, b"1") {
            tracing::debug!(error = %e, "route_localnet on the egress bridge");
        }
    }
    run_with_input(&["nft", "-f", "-"], Some(&script))
        .await
        .map(drop)
}
