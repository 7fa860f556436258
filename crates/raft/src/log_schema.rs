//! The layout of the Raft log file (`<raft dir>/log.redb`): its two tables, the meta keys, the
//! schema version and how one row holds a sealed entry. The one place both the writer
//! (`log_store`) and the offline reader (`inspect`) take it from, so they cannot disagree.
//!
//! Every entry is sealed with the data key (`at_rest`): a row is the entry's term (8 bytes,
//! big-endian, in the clear: it is needed to open the record and reveals nothing the vote does
//! not) followed by the sealed bincode entry, bound to (entry, term, index). The vote, committed
//! and purged log ids stay in the clear: they are only terms, indexes and node ids.
//!
//! Owns names and encodings only. Must not open the file or run transactions: that is
//! `log_store`'s (read-write) and `inspect`'s (read-only) business.

use openraft::RaftLogId;
use redb::TableDefinition;

use crate::at_rest::{DataKey, Kind};
use crate::codec;
use crate::types::Entry;

/// Entries by index.
pub(crate) const LOG: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("log");
pub(crate) const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");

pub(crate) const SCHEMA_KEY: &str = "schema";
pub(crate) const VOTE_KEY: &str = "vote";
pub(crate) const COMMITTED_KEY: &str = "committed";
pub(crate) const PURGED_KEY: &str = "last_purged";
/// Bumped whenever the meaning of a key or the encoding of an entry changes. Version 3 entries
/// may carry a group of transactions (`types::Proposal`).
pub(crate) const SCHEMA_VERSION: &[u8] = b"swarm-raft-log/3";
/// Formats this build reads unchanged and re-marks as [`SCHEMA_VERSION`] on open: version 2
/// is version 3 without groups.
pub(crate) const UPGRADABLE_SCHEMA_VERSIONS: &[&[u8]] = &[b"swarm-raft-log/2"];
/// The unencrypted format before it; refused with [`crate::RaftError::OldFormat`].
pub(crate) const OLD_SCHEMA_VERSIONS: &[&[u8]] = &[b"swarm-raft-log/1"];
const TERM_LEN: usize = 8;

/// The stored row of one entry: its term, then the entry sealed at (term, index).
pub(crate) fn encode_row(key: &DataKey, e: &Entry) -> Result<Vec<u8>, String> {
    let id = e.get_log_id();
    let term = id.leader_id.term;
    let plain = zeroize::Zeroizing::new(codec::encode(e).map_err(|err| err.to_string())?);
    seal_row(key, term, id.index, &plain)
}

/// The stored row of an entry's encoded bytes `plain` at (`term`, `index`).
pub(crate) fn seal_row(
    key: &DataKey,
    term: u64,
    index: u64,
    plain: &[u8],
) -> Result<Vec<u8>, String> {
    let sealed = key
        .seal(Kind::Entry, term, index, plain)
        .map_err(|err| format!("log entry {index}: {err}"))?;
    let mut row = Vec::with_capacity(TERM_LEN + sealed.len());
    row.extend_from_slice(&term.to_be_bytes());
    row.extend_from_slice(&sealed);
    Ok(row)
}

/// Opens the row stored under `index`; an error names the index. The decoded entry must claim
/// the position it was found at (the additional data already guarantees it; this is a guard
/// against a sealing bug).
pub(crate) fn decode_row(key: &DataKey, index: u64, row: &[u8]) -> Result<Entry, String> {
    let (term, record) = row
        .split_at_checked(TERM_LEN)
        .ok_or_else(|| format!("log entry {index}: row too short"))?;
    let mut term_bytes = [0u8; TERM_LEN];
    term_bytes.copy_from_slice(term);
    let term = u64::from_be_bytes(term_bytes);
    let plain = key
        .open(Kind::Entry, term, index, record)
        .map_err(|e| format!("log entry {index}: {e}"))?;
    let entry: Entry = codec::decode(&plain).map_err(|e| format!("log entry {index}: {e}"))?;
    let id = entry.get_log_id();
    if id.index != index || id.leader_id.term != term {
        return Err(format!(
            "log entry {index}: holds the entry of index {} term {}",
            id.index, id.leader_id.term
        ));
    }
    Ok(entry)
}
