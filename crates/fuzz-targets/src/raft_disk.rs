//! Target for what a manager reads back from its state dir: Raft log rows, snapshot files
//! (header and frames), the wrapped data key, and a snapshot's store content, which a new
//! member also installs from its leader. Each is reached as found on disk and, through
//! `swarm_raft::fuzzing`, past the seal a fuzzer cannot forge.

use crate::input::{choose, first_byte, length_prefixed};
use swarm_raft::fuzzing;
use swarm_store::{Store, Tables};

pub fn disk(data: &[u8]) {
    let (selector, body) = choose(data, 6);
    let key = fuzzing::fixed_key();
    // Small numbers the fuzzer can match: an index, and below a term.
    let (index, rest) = first_byte(body);
    let index = u64::from(index);
    let _ = match selector {
        0 => fuzzing::log_row(&key, index, rest),
        1 => {
            let (term, plain) = first_byte(rest);
            fuzzing::log_entry_plaintext(&key, u64::from(term), index, plain)
        }
        2 => fuzzing::snapshot_file(&key, index, rest),
        3 => fuzzing::snapshot_frames(&key, index, &length_prefixed(rest, 16)),
        4 => fuzzing::data_key_file(b"fuzz seed", body),
        _ => {
            store_content(body);
            Ok(())
        }
    };
}

/// A snapshot's store content, decoded row by row as a member installs it, and checked against
/// prost's decoding of the whole message: `Tables::from_snapshot_bytes` promises to accept
/// exactly what that accepts and to give the same tables.
fn store_content(bytes: &[u8]) {
    use prost::Message;
    let streamed = Tables::from_snapshot_bytes(bytes);
    let whole = swarm_api::StoreSnapshot::decode(bytes).map(Tables::from_snapshot);
    match (streamed, whole) {
        (Ok(a), Ok(b)) => {
            assert!(
                a.encode_snapshot() == b.encode_snapshot(),
                "a snapshot decoded row by row differs from its whole decoding"
            );
            let store = Store::new();
            store.restore_tables(a);
            let _ = store.snapshot_bytes();
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!(
            "row by row {}, whole {}: the two decodings disagree",
            if a.is_ok() { "accepted" } else { "refused" },
            if b.is_ok() { "accepted" } else { "refused" }
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The seeds must decode, or the fuzzer starts outside the decoders it is meant to reach.
    #[test]
    fn the_samples_get_past_the_seal_and_decode() {
        let key = fuzzing::fixed_key();
        let s = fuzzing::samples(9, b"").unwrap();
        fuzzing::log_entry_plaintext(&key, 1, 9, &s.entry_plaintext).unwrap();
        fuzzing::snapshot_file(&key, 9, &s.snapshot_file).unwrap();
        let frames: Vec<&[u8]> = s.snapshot_frames.iter().map(Vec::as_slice).collect();
        fuzzing::snapshot_frames(&key, 9, &frames).unwrap();
        assert!(fuzzing::snapshot_file(&key, 8, &s.snapshot_file).is_err());
        assert!(fuzzing::log_entry_plaintext(&key, 2, 9, &s.entry_plaintext).is_err());
        for seed in crate::seeds::seeds("raft_disk") {
            disk(&seed);
        }
    }
}
