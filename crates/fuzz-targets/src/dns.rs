//! The tasks' resolver (`swarm_agent::network::dns::answer`): any packet a task can send to
//! 127.0.0.11:53, answered from a view holding a service, its tasks and an alias. No upstream
//! resolvers, so names the view does not know are answered SERVFAIL here, never forwarded.

use crate::runtime::block_on;
use std::sync::OnceLock;
use swarm_agent::network::dns::{answer, Scope};
use swarm_api::{DnsRecord, Network, NetworksMessage, NodeNetwork};
use tokio::sync::watch;

const NET: &str = "fuzz-net";

fn scope() -> &'static Scope {
    static SCOPE: OnceLock<(watch::Sender<Option<NetworksMessage>>, Scope)> = OnceLock::new();
    &SCOPE
        .get_or_init(|| {
            let record = |name: &str, addrs: &[&str]| DnsRecord {
                name: name.into(),
                addresses: addrs.iter().map(|a| a.to_string()).collect(),
            };
            let view = NetworksMessage {
                networks: vec![NodeNetwork {
                    network: Some(Network {
                        id: NET.into(),
                        ..Default::default()
                    }),
                    records: vec![
                        record("web", &["10.0.1.2"]),
                        record("tasks.web", &["10.0.1.3", "10.0.1.4"]),
                        record("alias", &["10.0.1.2", "not an address"]),
                        record("", &[]),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let (tx, rx) = watch::channel(Some(view));
            let scope = Scope {
                networks: vec![NET.into()],
                view: rx,
                upstreams: Vec::new(),
            };
            (tx, scope)
        })
        .1
}

/// One packet to the resolver.
pub fn query(data: &[u8]) {
    let reply = block_on(answer(scope(), data));
    // An answer echoes the query's ID: a reply to a packet too short to carry one is a bug.
    if let Some(r) = reply {
        assert!(
            data.len() >= 2 && r.len() >= 12,
            "answered a packet without a header"
        );
    }
}
