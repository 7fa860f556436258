//! Entry points for the fuzz targets (`crates/fuzz-targets`): the decoders of what this crate
//! reads from disk — log rows, snapshot files, the wrapped data key — fed bytes as a damaged
//! or hostile file would hold them. Not an API: nothing but the fuzz targets may call them, and
//! they may change with the formats.
//!
//! Each decoder is reached twice: with the bytes as found (the envelope's framing and its
//! refusals), and with the bytes sealed under the right key first, since a fuzzer cannot forge
//! an AEAD tag and would otherwise never get past it to the decoding behind.

use crate::at_rest::{DataKey, KeyEncryptionKey};
use crate::log_schema::{decode_row, seal_row};
use crate::snapshot_file::{decode_file, frame_header, write_frames, MAGIC};

/// A fixed data key, so a failing input replays.
pub fn fixed_key() -> DataKey {
    DataKey::from_bytes([7u8; 32])
}

/// `row`, as found in the log under `index`.
pub fn log_row(key: &DataKey, index: u64, row: &[u8]) -> Result<(), String> {
    decode_row(key, index, row).map(drop)
}

/// `plain` as the entry stored under (`term`, `index`): sealed as the writer seals it, then
/// read back through the row decoder.
pub fn log_entry_plaintext(
    key: &DataKey,
    term: u64,
    index: u64,
    plain: &[u8],
) -> Result<(), String> {
    decode_row(key, index, &seal_row(key, term, index, plain)?).map(drop)
}

/// `bytes`, as the snapshot file named for `index`.
pub fn snapshot_file(key: &DataKey, index: u64, bytes: &[u8]) -> Result<(), String> {
    decode_file(key, index, bytes).map(drop)
}

/// A snapshot file of the current format whose frames hold `frames` (frame 0 the header),
/// each sealed as the writer seals it: the framing, the header's decoding and the checks
/// between frames, past the seal.
pub fn snapshot_frames(key: &DataKey, index: u64, frames: &[&[u8]]) -> Result<(), String> {
    decode_file(key, index, &file_of(key, index, frames.iter().copied())?).map(drop)
}

/// A snapshot file holding `frames`, as the writer writes one.
fn file_of<'a>(
    key: &DataKey,
    index: u64,
    frames: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, String> {
    let mut file = MAGIC.to_vec();
    write_frames(&mut file, key, index, frames).map_err(|e| e.to_string())?;
    Ok(file)
}

/// `wrapped` as the `data-key` file, unwrapped with a KEK derived from `material`.
pub fn data_key_file(material: &[u8], wrapped: &[u8]) -> Result<(), String> {
    KeyEncryptionKey::derive(material)
        .unwrap_key(wrapped)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Well-formed inputs to start from: an entry's plaintext as the log seals it, the frames of a
/// snapshot (header first), and that snapshot's whole file, for index `index` of term 1.
pub fn samples(index: u64, store_bytes: &[u8]) -> Result<Samples, String> {
    use crate::types::{Entry, LogId, Proposal, SnapshotMeta, StoredMembership};
    use openraft::{CommittedLeaderId, EntryPayload};
    let log_id = LogId::new(CommittedLeaderId::new(1, 1), index);
    let entry = Entry {
        log_id,
        payload: EntryPayload::Normal(Proposal(vec![swarm_api::StoreBatch {
            actions: vec![],
            timestamp: 1,
        }])),
    };
    let meta = SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: StoredMembership::default(),
        snapshot_id: format!("1-1-{index}"),
    };
    let mut frames = vec![frame_header(&meta, store_bytes.len() as u64)?];
    // As the writer cuts it: an empty store copy has no frame after the header.
    if !store_bytes.is_empty() {
        frames.push(store_bytes.to_vec());
    }
    let file = file_of(&fixed_key(), index, frames.iter().map(Vec::as_slice))?;
    Ok(Samples {
        entry_plaintext: crate::codec::encode(&entry).map_err(|e| e.to_string())?,
        snapshot_frames: frames,
        snapshot_file: file,
    })
}

/// See [`samples`].
pub struct Samples {
    pub entry_plaintext: Vec<u8>,
    pub snapshot_frames: Vec<Vec<u8>>,
    pub snapshot_file: Vec<u8>,
}
