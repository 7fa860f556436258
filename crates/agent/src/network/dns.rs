//! The tasks' resolver: one UDP listener at 127.0.0.11:53 inside each task namespace, all
//! served by the agent. Names of the networks the task is attached to are answered from the
//! managers' view (services, `tasks.<service>`, aliases, task names); every other name is
//! forwarded to the node's own resolvers (from the agent's namespace) and the answer relayed.
//! Owns only its sockets; the plane starts and stops a listener with the task's namespace.

use super::dns_wire::{self, Rcode, TYPE_A};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use swarm_api::NetworksMessage;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The resolver's address inside every task namespace (Docker's embedded DNS address).
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// Short, so that a task that stops is soon asked about again (answers come from the view).
const TTL: u32 = 1;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// The nameservers of the node's `/etc/resolv.conf`.
pub fn upstreams() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The resolver file a task sees: our resolver, names tried as given.
pub fn resolv_conf() -> String {
    format!("nameserver {RESOLVER}\noptions ndots:0\n")
}

/// Binds the resolver's socket inside the namespace at `netns`, from a thread of its own that
/// enters the namespace and ends afterwards (a socket stays in the namespace it was made in).
pub async fn bind_in(netns: &Path) -> std::io::Result<UdpSocket> {
    let netns = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = (|| {
            let target = std::fs::File::open(&netns)?;
            nix::sched::setns(&target, nix::sched::CloneFlags::CLONE_NEWNET)?;
            let s = std::net::UdpSocket::bind((RESOLVER, 53))?;
            s.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(s)
        })();
        let _ = tx.send(r);
    });
    let socket = rx
        .await
        .map_err(|_| std::io::Error::other("the namespace thread ended"))??;
    UdpSocket::from_std(socket)
}

/// What one task's listener answers from.
pub struct Scope {
    /// The networks the task is attached to.
    pub networks: Vec<String>,
    pub view: watch::Receiver<Option<NetworksMessage>>,
    pub upstreams: Vec<SocketAddr>,
}

impl Scope {
    /// The addresses `name` has on the task's networks; `None` when no network knows it.
    fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        let view = self.view.borrow();
        let mut found: Option<Vec<Ipv4Addr>> = None;
        for n in view.iter().flat_map(|v| &v.networks) {
            let on_it = n
                .network
                .as_ref()
                .is_some_and(|x| self.networks.contains(&x.id));
            if !on_it {
                continue;
            }
            for r in n.records.iter().filter(|r| r.name == name) {
                let addrs = found.get_or_insert_with(Vec::new);
                addrs.extend(
                    r.addresses
                        .iter()
                        .filter_map(|a| a.parse::<Ipv4Addr>().ok()),
                );
            }
        }
        found
    }
}

/// The answer to one packet, or `None` to say nothing (not even a header to answer).
pub async fn answer(scope: &Scope, packet: &[u8]) -> Option<Vec<u8>> {
    let q = match dns_wire::parse_query(packet) {
        Ok(q) => q,
        Err(_) => return dns_wire::format_error(packet),
    };
    let name = q.name.trim_end_matches('.');
    if let Some(addrs) = scope.lookup(name) {
        // Ours: A gets the addresses, AAAA (and anything else) an empty answer.
        let addrs = if q.qtype == TYPE_A { addrs } else { Vec::new() };
        return Some(dns_wire::answer(&q, Rcode::NoError, &addrs, TTL));
    }
    match forward(&scope.upstreams, packet).await {
        Some(reply) => Some(reply),
        None => Some(dns_wire::answer(&q, Rcode::ServFail, &[], 0)),
    }
}

/// Asks the node's resolvers in turn; the first answer with the query's ID wins.
async fn forward(upstreams: &[SocketAddr], packet: &[u8]) -> Option<Vec<u8>> {
    let id = packet.get(0..2)?;
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(s) = UdpSocket::bind(bind).await else {
            continue;
        };
        if s.send_to(packet, up).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        let got = tokio::time::timeout(UPSTREAM_TIMEOUT, s.recv_from(&mut buf)).await;
        if let Ok(Ok((n, from))) = got {
            if from == *up && buf.get(0..2) == Some(id) {
                buf.truncate(n);
                return Some(buf);
            }
        }
    }
    None
}

/// Serves `socket` until `cancel`.
pub async fn serve(socket: UdpSocket, scope: Scope, cancel: CancellationToken) {
    let mut buf = vec![0u8; 1500];
    loop {
        let (n, from) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "task resolver");
                    continue;
                }
            },
        };
        let Some(packet) = buf.get(..n) else { continue };
        if let Some(reply) = answer(&scope, packet).await {
            let _ = socket.send_to(&reply, from).await;
        }
    }
}

/// `/etc/netns/<ns>/`: where `ip netns exec` finds the namespace's resolver file.
pub fn etc_dir(ns: &str) -> PathBuf {
    Path::new("/etc/netns").join(ns)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::network::dns_wire::tests::query;
    use crate::network::dns_wire::TYPE_AAAA;
    use swarm_api::{DnsRecord, Network, NodeNetwork};

    fn view() -> NetworksMessage {
        let net = |id: &str, name: &str, addr: &str| NodeNetwork {
            network: Some(Network {
                id: id.into(),
                ..Default::default()
            }),
            records: vec![DnsRecord {
                name: name.into(),
                addresses: vec![addr.into()],
            }],
            ..Default::default()
        };
        NetworksMessage {
            networks: vec![
                net("app", "api", "10.0.1.2"),
                net("other", "db", "10.0.2.2"),
            ],
            data_path_port: 4789,
            ..Default::default()
        }
    }

    fn rcode(reply: &[u8]) -> u8 {
        reply[3] & 0x0f
    }

    #[tokio::test]
    async fn names_of_the_tasks_networks_only_and_the_rest_forwarded() {
        // A stand-in for the node's resolver: answers every query with its ID and rcode 0.
        let upstream = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up_addr = upstream.local_addr().unwrap();
        let (_keep, rx) = watch::channel(Some(view()));
        let scope = Scope {
            networks: vec!["app".into()],
            view: rx,
            upstreams: vec![up_addr],
        };
        let a = answer(&scope, &query(7, "API", TYPE_A)).await.unwrap();
        assert_eq!((rcode(&a), &a[a.len() - 4..]), (0, &[10u8, 0, 1, 2][..]));
        let aaaa = answer(&scope, &query(8, "api", TYPE_AAAA)).await.unwrap();
        assert_eq!(u16::from_be_bytes([aaaa[6], aaaa[7]]), 0, "no AAAA answers");
        // db is on a network this task is not on: forwarded, as any outside name.
        let relay = async {
            let mut buf = [0u8; 512];
            let (n, from) = upstream.recv_from(&mut buf).await.unwrap();
            let mut reply = buf[..n].to_vec();
            reply[2] |= 0x80;
            upstream.send_to(&reply, from).await.unwrap();
            reply
        };
        let db = query(9, "db", TYPE_A);
        let (got, sent) = tokio::join!(answer(&scope, &db), relay);
        assert_eq!(
            got.unwrap(),
            sent,
            "the upstream's answer is relayed as it came"
        );
        // No upstream answering: SERVFAIL, quickly enough for a test with one dead upstream.
        let dead = Scope {
            networks: vec![],
            view: watch::channel(None).1,
            upstreams: vec![],
        };
        let r = answer(&dead, &query(10, "example.org", TYPE_A))
            .await
            .unwrap();
        assert_eq!(rcode(&r), Rcode::ServFail as u8);
        // Garbage with an ID: FORMERR.
        let r = answer(&dead, &[1, 2, 3, 4, 5]).await.unwrap();
        assert_eq!(rcode(&r), Rcode::FormErr as u8);
    }
}
