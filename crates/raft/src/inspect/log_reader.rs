//! Reads the Raft log file (`log.redb`) for `inspect`: vote, commit and purge markers and every
//! row, each opened with the data key (or why it did not open).
//!
//! Owns the read-only opening of the log, and the repair of a private copy when the file was
//! not closed cleanly. Must never write the original file: it opens it with redb's read-only
//! handle only. The layout it reads is `log_schema`'s, the same one `log_store` writes.

use std::fs;
use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable};

use crate::at_rest::DataKey;
use crate::codec;
use crate::error::{log_err, DiskError, RaftError};
use crate::log_schema::{
    decode_row, COMMITTED_KEY, LOG, META, OLD_SCHEMA_VERSIONS, PURGED_KEY, SCHEMA_KEY,
    SCHEMA_VERSION, UPGRADABLE_SCHEMA_VERSIONS, VOTE_KEY,
};
use crate::types::{Entry, LogId, Vote};

/// The raw content of the log file.
pub(super) struct LogContent {
    pub(super) vote: Option<Vote>,
    pub(super) committed: Option<LogId>,
    pub(super) purged: Option<LogId>,
    /// Key and decoded entry (or why it did not decode), in index order.
    pub(super) entries: Vec<(u64, Result<Entry, String>)>,
    pub(super) repaired: bool,
}

pub(super) fn read_log(path: &Path, key: &DataKey) -> Result<LogContent, RaftError> {
    match redb::ReadOnlyDatabase::open(path) {
        Ok(db) => read_tables(&db, path, key, false),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(RaftError::Unavailable(format!(
            "{} is in use by a running swarmd; stop it first",
            path.display()
        ))),
        // Not closed cleanly (a crash or kill -9): reading needs a repair, which writes. Do it
        // on a copy so the original stays exactly as the crashed swarmd left it.
        Err(redb::DatabaseError::RepairAborted) => read_repaired_copy(path, key),
        Err(e) => Err(DiskError::log(
            format_args!("{}: not a readable raft log", path.display()),
            e,
        )
        .into()),
    }
}

fn read_repaired_copy(path: &Path, key: &DataKey) -> Result<LogContent, RaftError> {
    let copy = TempCopy::new(path)?;
    let db = redb::Database::open(&copy.0).map_err(|e| {
        DiskError::log(
            format_args!(
                "{}: not a readable raft log (repair of a copy failed)",
                path.display()
            ),
            e,
        )
    })?;
    read_tables(&db, path, key, true)
}

/// A private copy of the log in the temp dir, removed on drop.
struct TempCopy(PathBuf);

impl TempCopy {
    fn new(src: &Path) -> Result<TempCopy, RaftError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dst = std::env::temp_dir().join(format!(
            "swarmd-inspect-{}-{nanos}.redb",
            std::process::id()
        ));
        fs::copy(src, &dst).map_err(|e| {
            DiskError::io(
                format_args!("copying {} to {} for repair", src.display(), dst.display()),
                e,
            )
        })?;
        Ok(TempCopy(dst))
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        // Best effort: a leftover copy in the temp dir is harmless.
        let _ = fs::remove_file(&self.0);
    }
}

fn read_tables(
    db: &impl ReadableDatabase,
    path: &Path,
    key: &DataKey,
    repaired: bool,
) -> Result<LogContent, RaftError> {
    let txn = db.begin_read().map_err(log_err(path))?;
    // A log that swarmd created always has both tables and the schema key; a missing one means
    // this is some other redb file (or one whose creation never committed).
    let meta = txn.open_table(META).map_err(log_err(path))?;
    let schema = meta
        .get(SCHEMA_KEY)
        .map_err(log_err(path))?
        .map(|v| v.value().to_vec());
    match schema {
        // Read-only: an older readable format is reported as it is, not re-marked.
        Some(v) if v == SCHEMA_VERSION || UPGRADABLE_SCHEMA_VERSIONS.contains(&v.as_slice()) => {}
        Some(v) if OLD_SCHEMA_VERSIONS.contains(&v.as_slice()) => {
            return Err(RaftError::OldFormat(format!(
                "{} is an unencrypted {} log",
                path.display(),
                String::from_utf8_lossy(&v)
            )))
        }
        Some(v) => {
            return Err(RaftError::Format(
                path.display().to_string(),
                String::from_utf8_lossy(&v).into_owned(),
            ))
        }
        None => {
            return Err(DiskError::Invalid(format!(
                "{}: no schema version: not a swarmd raft log",
                path.display()
            ))
            .into())
        }
    }
    let vote: Option<Vote> = read_meta(&meta, path, VOTE_KEY)?;
    // Stored as `Option<LogId>` itself (openraft may save "nothing committed").
    let committed: Option<LogId> =
        read_meta::<Option<LogId>>(&meta, path, COMMITTED_KEY)?.flatten();
    let purged: Option<LogId> = read_meta(&meta, path, PURGED_KEY)?;

    let log = txn.open_table(LOG).map_err(log_err(path))?;
    let mut entries = Vec::new();
    for item in log.iter().map_err(log_err(path))? {
        let (k, v) = item.map_err(log_err(path))?;
        let decoded = decode_row(key, k.value(), v.value());
        entries.push((k.value(), decoded));
    }
    Ok(LogContent {
        vote,
        committed,
        purged,
        entries,
        repaired,
    })
}

fn read_meta<T: serde::de::DeserializeOwned>(
    meta: &redb::ReadOnlyTable<&str, &[u8]>,
    path: &Path,
    key: &str,
) -> Result<Option<T>, RaftError> {
    match meta.get(key).map_err(log_err(path))? {
        Some(v) => codec::decode(v.value()).map(Some).map_err(|source| {
            DiskError::Codec {
                context: format!("{}: {key}", path.display()),
                source,
            }
            .into()
        }),
        None => Ok(None),
    }
}
