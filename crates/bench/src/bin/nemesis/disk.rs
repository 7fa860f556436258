//! The managers' own stores, read from disk: after the final reads (which every manager
//! forwards to the leader, so they show the leader's store only), each manager is stopped
//! cleanly and its state dir replayed offline by `swarmd inspect-state`; what each store holds
//! for every object becomes one more final read in the history (`via` "mN (disk)"), so a write
//! missing from any one manager's store counts as lost. Owns that reading only; it must not
//! restart anything.

use crate::control::LABEL;
use crate::workload::{Shared, SECRETS, SERVICES};
use anyhow::Result;
use serde_json::Value;
use std::path::Path;
use swarm_bench::nemesis::history::{Op, OpKind, Outcome, Seen, INITIAL};
use swarm_testkit::process::inspect_state_json;

/// Appends a final read of every object from manager `name`'s state dir `dir` (stopped).
pub fn read_store(shared: &Shared, name: &str, dir: &Path) -> Result<()> {
    let t0 = shared.now_us();
    let report = inspect_state_json(dir).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let current = &report["current"];
    let t1 = shared.now_us();
    let mut ops = Vec::new();
    let mut push = |key: String, seen: Option<Seen>| {
        ops.push(Op {
            process: 0,
            kind: OpKind::Read {
                via: format!("{name} (disk)"),
                via_leader: false,
                last: true,
            },
            key,
            target: None,
            invoke_us: t0,
            complete_us: t1,
            outcome: Outcome::Ok { seen },
        });
    };
    for (table, prefix, names) in [
        (
            "services",
            "service",
            (0..SERVICES).map(|i| format!("s{i}")).collect::<Vec<_>>(),
        ),
        (
            "secrets",
            "secret",
            (0..SECRETS).map(|i| format!("c{i}")).collect(),
        ),
    ] {
        let objects = current[table].as_array().cloned().unwrap_or_default();
        for n in names {
            let found = objects
                .iter()
                .find(|o| o["spec"]["annotations"]["name"].as_str() == Some(n.as_str()));
            push(format!("{prefix}/{n}"), found.map(|o| seen(o, false)));
        }
    }
    let nodes = current["nodes"].as_array().cloned().unwrap_or_default();
    for (key, id) in &shared.nodes {
        let found = nodes.iter().find(|o| o["id"].as_str() == Some(id.as_str()));
        push(key.clone(), found.map(|o| seen(o, true)));
    }
    shared.ops.lock().extend(ops);
    Ok(())
}

/// An object as the history records it; a node's value carries its availability, as
/// `control::seen_node` does.
fn seen(o: &Value, node: bool) -> Seen {
    let label = o["spec"]["annotations"]["labels"][LABEL]
        .as_str()
        .unwrap_or(INITIAL)
        .to_string();
    let value = if node && label != INITIAL {
        let a = match o["spec"]["availability"].as_i64().unwrap_or(0) {
            1 => swarm_api::NodeAvailability::Pause,
            2 => swarm_api::NodeAvailability::Drain,
            _ => swarm_api::NodeAvailability::Active,
        };
        crate::control::node_value(a, &label)
    } else {
        label
    };
    Seen {
        id: o["id"].as_str().unwrap_or_default().to_string(),
        version: o["meta"]["version"].as_u64().unwrap_or(0),
        value,
    }
}
