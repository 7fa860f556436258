//! Targets for the strings and small files that reach a node from outside: placement
//! constraints and preferences (in every service spec), join tokens and unlock keys (typed by
//! operators, sent by joining nodes), and the sealed key files read from the state dir.

use crate::input::{choose, parts, text};
use swarm_ca::{is_sealed, parse_join_token, UnlockKey};
use swarm_manager::scheduler::constraint::{all_match, parse_all, parse_spread};

/// Constraint expressions, parsed and then evaluated against a labelled node (the scheduler's
/// own path), and a placement preference.
pub fn expressions(data: &[u8]) {
    let exprs: Vec<String> = parts(data, 8).into_iter().map(text).collect();
    if let Ok(cs) = parse_all(&exprs) {
        let node = labelled_node();
        let _ = all_match(&cs, &node);
        for c in &cs {
            let _ = c.matches(&node);
            let _ = c.key.value_of(&node);
        }
    }
    for e in &exprs {
        if let Ok(key) = parse_spread(e) {
            let _ = key.value_of(&labelled_node());
        }
    }
}

fn labelled_node() -> swarm_api::Node {
    let mut n = swarm_testkit::fixtures::node("fuzz-node");
    if let Some(spec) = n.spec.as_mut() {
        if let Some(a) = spec.annotations.as_mut() {
            a.labels.insert("zone".into(), "a".into());
            a.labels.insert("".into(), "empty key".into());
        }
    }
    n
}

/// A join token and an unlock key, as text.
pub fn tokens(data: &[u8]) {
    let s = text(data);
    let _ = parse_join_token(&s);
    let _ = UnlockKey::parse(&s);
}

/// A sealed key file opened with a key (wrong or right: the fuzzer cannot forge the tag, so
/// this covers the envelope's framing and the refusal paths).
pub fn sealed_file(data: &[u8]) {
    let (purpose, body) = choose(data, 3);
    let purpose = ["tls-key", "raft-kek-seed", ""][usize::from(purpose)];
    let _ = is_sealed(body);
    let key = fixed_key();
    let _ = key.open(purpose, body);
}

fn fixed_key() -> UnlockKey {
    // A fixed key keeps inputs reproducible; its text form cannot fail to parse.
    match UnlockKey::parse(&format!(
        "{}{}",
        swarm_ca::UNLOCK_KEY_PREFIX,
        "ab".repeat(32)
    )) {
        Ok(k) => k,
        Err(_) => UnlockKey::generate(),
    }
}
