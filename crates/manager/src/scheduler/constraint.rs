//! Placement constraints: parsing `<key> == <value>` / `<key> != <value>` expressions and
//! matching them against a node. Owns the constraint grammar and its error messages only; it
//! does not decide placement (see `filters` and `plan`) and does no I/O.
//!
//! Behaviour follows SwarmKit's: keys are case-insensitive, label names are case-sensitive,
//! values compare case-insensitively, and a missing field or label reads as the empty string,
//! so `!=` matches a node without the label while `==` never does (values cannot be empty).
//! Unlike SwarmKit, an unknown key is a parse error rather than a constraint that silently
//! matches no node: a typo should be refused when the service is created, not leave its tasks
//! pending forever.

use swarm_api::{Node, NodeRole};

/// The keys a constraint may test, listed in error messages.
const KNOWN_KEYS: &str = "node.id, node.hostname, node.role, node.platform.os, \
                          node.platform.arch, node.ip, node.labels.<name>, engine.labels.<name>";
const NODE_LABEL_PREFIX: &str = "node.labels.";
const ENGINE_LABEL_PREFIX: &str = "engine.labels.";

/// Why an expression is not a constraint. Each message is one line naming the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    #[error("constraint {expr:?}: expected == or !=")]
    MissingOperator { expr: String },
    #[error("constraint {expr:?}: empty key")]
    EmptyKey { expr: String },
    #[error("constraint {expr:?}: unknown key {key:?} (expected one of {KNOWN_KEYS})")]
    UnknownKey { expr: String, key: String },
    #[error("constraint {expr:?}: label name missing after {prefix:?}")]
    EmptyLabel { expr: String, prefix: &'static str },
    #[error("constraint {expr:?}: empty value")]
    EmptyValue { expr: String },
    #[error("constraint {expr:?}: value {value:?} contains an operator character")]
    InvalidValue { expr: String, value: String },
    #[error("placement-pref {pref:?}: expected spread=<attribute> with a node attribute such as node.labels.zone")]
    BadPreference { pref: String },
    #[error("constraint {expr:?}: {value:?} is not an IP address or CIDR (e.g. 10.0.0.5 or 10.0.0.0/24)")]
    InvalidIp { expr: String, value: String },
}

/// What a constraint looks at on a node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    NodeId,
    Hostname,
    Role,
    Os,
    Arch,
    /// `node.labels.<name>`: the operator-set labels in the node's spec.
    NodeLabel(String),
    /// `engine.labels.<name>`: the labels the node's engine reports.
    EngineLabel(String),
    /// `node.ip`: the address the node reaches the managers from; the value is an address
    /// or a CIDR block.
    Ip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
}

/// One parsed constraint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Constraint {
    pub key: Key,
    pub op: Op,
    pub value: String,
}

/// Parses one expression such as `node.labels.zone == east` (spaces around the operator are
/// optional).
pub fn parse(expr: &str) -> Result<Constraint, ConstraintError> {
    let err_expr = || expr.to_string();
    // The first operator in the string splits it: "a!=b==c" is key "a", value "b==c", which
    // the value check then refuses, rather than a key containing "!=".
    let (pos, op) = match (expr.find("=="), expr.find("!=")) {
        (Some(e), Some(n)) if n < e => (n, Op::Ne),
        (Some(e), _) => (e, Op::Eq),
        (None, Some(n)) => (n, Op::Ne),
        (None, None) => {
            return Err(ConstraintError::MissingOperator { expr: err_expr() });
        }
    };
    let raw_key = expr[..pos].trim();
    let value = expr[pos + 2..].trim();
    if raw_key.is_empty() {
        return Err(ConstraintError::EmptyKey { expr: err_expr() });
    }
    let key = parse_key(expr, raw_key)?;
    if value.is_empty() {
        return Err(ConstraintError::EmptyValue { expr: err_expr() });
    }
    // Operator characters in a value are almost always a typo ("a==b==c", "a=>b"); SwarmKit
    // refuses them too, which also keeps room for future operators.
    if value.contains(['=', '!', '<', '>', '~']) {
        return Err(ConstraintError::InvalidValue {
            expr: err_expr(),
            value: value.to_string(),
        });
    }
    if key == Key::Ip && IpBlock::parse(value).is_none() {
        return Err(ConstraintError::InvalidIp {
            expr: err_expr(),
            value: value.to_string(),
        });
    }
    Ok(Constraint {
        key,
        op,
        value: value.to_string(),
    })
}

/// Parses every expression, failing on the first bad one.
pub fn parse_all(exprs: &[String]) -> Result<Vec<Constraint>, ConstraintError> {
    exprs.iter().map(|e| parse(e)).collect()
}

/// True when the node satisfies every constraint.
pub fn all_match(constraints: &[Constraint], node: &Node) -> bool {
    constraints.iter().all(|c| c.matches(node))
}

fn parse_key(expr: &str, raw: &str) -> Result<Key, ConstraintError> {
    // Keys are case-insensitive (as in SwarmKit); label names keep their case.
    let lower = raw.to_ascii_lowercase();
    let label = |prefix: &'static str, make: fn(String) -> Key| {
        let name = &raw[prefix.len()..];
        if name.is_empty() {
            Err(ConstraintError::EmptyLabel {
                expr: expr.to_string(),
                prefix,
            })
        } else {
            Ok(make(name.to_string()))
        }
    };
    match lower.as_str() {
        "node.id" => Ok(Key::NodeId),
        "node.hostname" => Ok(Key::Hostname),
        "node.role" => Ok(Key::Role),
        "node.platform.os" => Ok(Key::Os),
        "node.platform.arch" => Ok(Key::Arch),
        "node.ip" => Ok(Key::Ip),
        // Lower-casing is ASCII-only, so byte offsets in `lower` and `raw` agree.
        l if l.starts_with(NODE_LABEL_PREFIX) => label(NODE_LABEL_PREFIX, Key::NodeLabel),
        l if l.starts_with(ENGINE_LABEL_PREFIX) => label(ENGINE_LABEL_PREFIX, Key::EngineLabel),
        // "node.labels" / "engine.labels" without the dot and name.
        l if format!("{l}.") == NODE_LABEL_PREFIX => Err(ConstraintError::EmptyLabel {
            expr: expr.to_string(),
            prefix: NODE_LABEL_PREFIX,
        }),
        l if format!("{l}.") == ENGINE_LABEL_PREFIX => Err(ConstraintError::EmptyLabel {
            expr: expr.to_string(),
            prefix: ENGINE_LABEL_PREFIX,
        }),
        _ => Err(ConstraintError::UnknownKey {
            expr: expr.to_string(),
            key: raw.to_string(),
        }),
    }
}

impl Constraint {
    /// True when the node satisfies this constraint.
    pub fn matches(&self, node: &Node) -> bool {
        if self.key == Key::Ip {
            let inside = node_ip(node)
                .zip(IpBlock::parse(&self.value))
                .is_some_and(|(ip, block)| block.contains(ip));
            return inside == (self.op == Op::Eq);
        }
        let actual = self.key.value_of(node);
        let equal = fold_eq(actual, &self.value);
        match self.op {
            Op::Eq => equal,
            Op::Ne => !equal,
        }
    }
}

impl Key {
    /// The node's value for this key ("" when it has none).
    pub fn value_of<'n>(&self, node: &'n Node) -> &'n str {
        let desc = node.description.as_ref();
        let platform = desc.and_then(|d| d.platform.as_ref());
        // A missing field or label compares as "", which no (non-empty) value equals.
        match self {
            Key::NodeId => node.id.as_str(),
            Key::Hostname => desc.map_or("", |d| d.hostname.as_str()),
            Key::Role => match NodeRole::try_from(node.role) {
                Ok(NodeRole::Manager) => "manager",
                Ok(NodeRole::Worker) => "worker",
                Err(_) => "",
            },
            Key::Os => platform.map_or("", |p| p.os.as_str()),
            Key::Arch => platform.map_or("", |p| p.architecture.as_str()),
            Key::NodeLabel(name) => node
                .spec
                .as_ref()
                .and_then(|s| s.annotations.as_ref())
                .and_then(|a| a.labels.get(name))
                .map_or("", String::as_str),
            Key::EngineLabel(name) => desc
                .and_then(|d| d.engine.as_ref())
                .and_then(|e| e.labels.get(name))
                .map_or("", String::as_str),
            Key::Ip => "",
        }
    }
}

/// Parses a placement preference, `spread=<key>`, into the key whose values tasks spread over.
pub fn parse_spread(pref: &str) -> Result<Key, ConstraintError> {
    let Some((strategy, key)) = pref.split_once('=') else {
        return Err(ConstraintError::BadPreference {
            pref: pref.to_string(),
        });
    };
    if strategy.trim() != "spread" {
        return Err(ConstraintError::BadPreference {
            pref: pref.to_string(),
        });
    }
    match parse_key(pref, key.trim()) {
        Ok(Key::Ip) | Err(_) => Err(ConstraintError::BadPreference {
            pref: pref.to_string(),
        }),
        Ok(k) => Ok(k),
    }
}

/// An address, or a block of them (`10.0.0.0/24`, `fd00::/8`).
struct IpBlock {
    net: std::net::IpAddr,
    prefix: u32,
}

impl IpBlock {
    fn parse(s: &str) -> Option<IpBlock> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u32>().ok()?)),
            None => (s, None),
        };
        let net: std::net::IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpBlock { net, prefix })
    }

    fn contains(&self, ip: std::net::IpAddr) -> bool {
        let bits = |a: std::net::IpAddr| -> (u128, u32) {
            match a {
                std::net::IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                std::net::IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let ((n, width), (a, w2)) = (bits(self.net), bits(ip));
        if width != w2 {
            return false;
        }
        let shift = width - self.prefix;
        shift >= width || (n >> shift) == (a >> shift)
    }
}

/// The node's address as the managers record it (`ip` or `ip:port`).
fn node_ip(node: &Node) -> Option<std::net::IpAddr> {
    let addr = node
        .status
        .as_ref()
        .map(|s| s.addr.as_str())
        .filter(|a| !a.is_empty())?;
    addr.parse::<std::net::SocketAddr>()
        .map(|s| s.ip())
        .ok()
        .or_else(|| addr.parse().ok())
}

/// Case-insensitive comparison, as SwarmKit's `strings.EqualFold` (ASCII fast path first:
/// this runs once per node per task group).
fn fold_eq(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.to_lowercase() == b.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_api::{Annotations, EngineDescription, NodeDescription, NodeSpec, Platform};

    fn node() -> Node {
        Node {
            id: "node1abc".into(),
            spec: Some(NodeSpec {
                annotations: Some(Annotations {
                    name: String::new(),
                    labels: [("zone".to_string(), "East".to_string())].into(),
                }),
                ..Default::default()
            }),
            description: Some(NodeDescription {
                hostname: "Host-A".into(),
                platform: Some(Platform {
                    os: "linux".into(),
                    architecture: "x86_64".into(),
                }),
                resources: None,
                engine: Some(EngineDescription {
                    engine_version: String::new(),
                    labels: [("disk".to_string(), "ssd".to_string())].into(),
                }),
            }),
            role: NodeRole::Manager as i32,
            ..Default::default()
        }
    }

    fn m(expr: &str) -> bool {
        parse(expr).unwrap().matches(&node())
    }

    #[test]
    fn node_ip_matches_addresses_and_blocks() {
        let n = Node {
            status: Some(swarm_api::NodeStatus {
                addr: "10.1.2.3:4242".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(parse("node.ip==10.1.2.3").unwrap().matches(&n));
        assert!(parse("node.ip==10.1.0.0/16").unwrap().matches(&n));
        assert!(!parse("node.ip==10.2.0.0/16").unwrap().matches(&n));
        assert!(parse("node.ip!=10.2.0.0/16").unwrap().matches(&n));
        assert!(parse("node.ip==0.0.0.0/0").unwrap().matches(&n));
        assert!(!parse("node.ip==fd00::/8").unwrap().matches(&n));
        assert!(matches!(
            parse("node.ip==10.1.2.300"),
            Err(ConstraintError::InvalidIp { .. })
        ));
        assert!(matches!(
            parse("node.ip==10.0.0.0/33"),
            Err(ConstraintError::InvalidIp { .. })
        ));
        // A node with no recorded address matches no block, and != matches.
        let bare = Node::default();
        assert!(!parse("node.ip==10.0.0.0/8").unwrap().matches(&bare));
        assert!(parse("node.ip!=10.0.0.0/8").unwrap().matches(&bare));
    }

    #[test]
    fn parses_both_operators_with_and_without_spaces() {
        let c = parse("node.labels.zone==east").unwrap();
        assert_eq!(c.key, Key::NodeLabel("zone".into()));
        assert_eq!(c.op, Op::Eq);
        assert_eq!(c.value, "east");
        let c = parse("  node.role  !=  worker ").unwrap();
        assert_eq!(c.key, Key::Role);
        assert_eq!(c.op, Op::Ne);
        assert_eq!(c.value, "worker");
        // Keys are case-insensitive, label names keep their case.
        assert_eq!(
            parse("NODE.Labels.Zone==x").unwrap().key,
            Key::NodeLabel("Zone".into())
        );
        assert_eq!(parse("Node.Hostname==x").unwrap().key, Key::Hostname);
    }

    #[test]
    fn each_key_matches() {
        assert!(m("node.id==node1abc"));
        assert!(!m("node.id==node2"));
        assert!(m("node.hostname==host-a"), "hostname is case-insensitive");
        assert!(m("node.hostname!=host-b"));
        assert!(m("node.role==manager"));
        assert!(m("node.role==MANAGER"), "role is case-insensitive");
        assert!(!m("node.role==worker"));
        assert!(m("node.role!=worker"));
        assert!(m("node.platform.os==linux"));
        assert!(!m("node.platform.os==windows"));
        assert!(m("node.platform.arch==x86_64"));
        assert!(m("node.platform.arch!=aarch64"));
        assert!(m("node.labels.zone==east"));
        assert!(!m("node.labels.zone!=east"));
        assert!(m("engine.labels.disk==ssd"));
        assert!(!m("engine.labels.disk==hdd"));
    }

    #[test]
    fn worker_role_and_missing_description() {
        let bare = Node {
            id: "n".into(),
            ..Default::default()
        };
        assert!(parse("node.role==worker").unwrap().matches(&bare));
        assert!(!parse("node.hostname==x").unwrap().matches(&bare));
        assert!(parse("node.hostname!=x").unwrap().matches(&bare));
        assert!(!parse("node.platform.os==linux").unwrap().matches(&bare));
        assert!(parse("engine.labels.a!=b").unwrap().matches(&bare));
    }

    #[test]
    fn missing_labels() {
        assert!(
            !m("node.labels.rack==r1"),
            "== on a missing label never matches"
        );
        assert!(m("node.labels.rack!=r1"), "!= on a missing label matches");
        assert!(!m("engine.labels.gpu==yes"));
        assert!(m("engine.labels.gpu!=yes"));
        // Label names are case-sensitive: "Zone" is not "zone".
        assert!(!m("node.labels.Zone==east"));
    }

    #[test]
    fn malformed_expressions_are_refused() {
        let e = parse("node.labels.foo~bar").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"constraint "node.labels.foo~bar": expected == or !="#
        );
        assert!(matches!(
            parse("node.colour==red"),
            Err(ConstraintError::UnknownKey { .. })
        ));
        assert!(parse("node.colour==red")
            .unwrap_err()
            .to_string()
            .contains("unknown key \"node.colour\""));
        assert!(matches!(
            parse("node.labels.a=="),
            Err(ConstraintError::EmptyValue { .. })
        ));
        assert!(matches!(
            parse("==x"),
            Err(ConstraintError::EmptyKey { .. })
        ));
        assert!(matches!(
            parse("node.labels.==x"),
            Err(ConstraintError::EmptyLabel { .. })
        ));
        assert!(matches!(
            parse("node.labels==x"),
            Err(ConstraintError::EmptyLabel { .. })
        ));
        assert!(matches!(
            parse("node.labels.a==b==c"),
            Err(ConstraintError::InvalidValue { .. })
        ));
        assert!(matches!(
            parse("node.labels.a=b"),
            Err(ConstraintError::MissingOperator { .. })
        ));
        for e in [
            parse("x").unwrap_err(),
            parse("node.labels.a==b==c").unwrap_err(),
        ] {
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn parse_all_fails_on_first_bad() {
        let ok = parse_all(&["node.role==worker".into(), "node.labels.a!=b".into()]).unwrap();
        assert_eq!(ok.len(), 2);
        assert!(parse_all(&["node.role==worker".into(), "bogus".into()]).is_err());
        assert!(parse_all(&[]).unwrap().is_empty());
    }

    #[test]
    fn all_constraints_must_hold() {
        let cs =
            parse_all(&["node.role==manager".into(), "node.labels.zone==west".into()]).unwrap();
        assert!(!all_match(&cs, &node()));
        let cs =
            parse_all(&["node.role==manager".into(), "node.labels.zone==east".into()]).unwrap();
        assert!(all_match(&cs, &node()));
    }
}
