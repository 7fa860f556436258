//! Object IDs: 128 random bits written in base36, always 25 characters (as SwarmKit's).

use rand::RngCore;
use sha2::Digest;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Writes `bytes` (big-endian) in base36, left-padded with '0' to `width` characters.
pub fn base36(bytes: &[u8], width: usize) -> String {
    let mut digits: Vec<u8> = bytes.to_vec();
    let mut out = Vec::new();
    while digits.iter().any(|&d| d != 0) {
        let mut rem: u32 = 0;
        for d in digits.iter_mut() {
            let acc = (rem << 8) | u32::from(*d);
            *d = (acc / 36) as u8;
            rem = acc % 36;
        }
        out.push(ALPHABET[rem as usize]);
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A new random object ID.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    base36(&b, 25)
}

/// A manager's Raft member ID, derived from its node ID so both sides compute the same one
/// and nothing more needs storing: the first 8 bytes of a SHA-256, never 0.
pub fn raft_id_of(node_id: &str) -> u64 {
    let h = sha2::Sha256::digest(node_id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b).max(1)
}

/// The Raft member ID of one incarnation of a manager's Raft state: `raft_id_of(node_id)` for
/// incarnation 0 (every state made before incarnations existed), else the first 8 bytes of a
/// SHA-256 of the node ID and the incarnation, never 0. Both sides derive it from the
/// certificate's node ID, so a caller cannot take another node's member ID.
///
/// Why incarnations: a manager whose Raft state starts afresh (promoted again after a
/// demotion) must not come back under the member ID its old state voted and acknowledged
/// with — an empty log answering for a member that held entries can elect a leader that lacks
/// committed ones. SwarmKit gives each join a new Raft ID for the same reason.
pub fn raft_member_id(node_id: &str, incarnation: u64) -> u64 {
    if incarnation == 0 {
        return raft_id_of(node_id);
    }
    let mut h = sha2::Sha256::new();
    h.update(node_id.as_bytes());
    h.update(b"/");
    h.update(incarnation.to_be_bytes());
    let h = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b).max(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn member_ids_differ_per_incarnation_and_per_node_and_incarnation_0_is_the_old_id() {
        assert_eq!(raft_member_id("n1", 0), raft_id_of("n1"));
        let a = raft_member_id("n1", 7);
        assert_ne!(a, raft_id_of("n1"));
        assert_ne!(a, raft_member_id("n1", 8));
        assert_ne!(a, raft_member_id("n2", 7));
        assert_eq!(a, raft_member_id("n1", 7), "both sides compute the same");
        assert_ne!(raft_member_id("n1", 7), 0);
    }

    use super::*;

    #[test]
    fn ids_are_25_base36_chars_and_differ() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 25);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
        assert_ne!(a, b);
    }

    #[test]
    fn base36_of_known_values() {
        assert_eq!(base36(&[0], 3), "000");
        assert_eq!(base36(&[35], 1), "z");
        assert_eq!(base36(&[1, 0], 1), "74"); // 256 = 7*36 + 4
        assert_eq!(base36(&[0xff; 16], 0).len(), 25);
    }
}
