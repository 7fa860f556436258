//! Snapshot files under `<raft dir>/snapshots/`: the newest snapshot's meta (last log id,
//! membership) and the prost-encoded store copy, written atomically. Owns that directory only;
//! what a snapshot contains is decided by `state_machine`.
//!
//! A file is written as `<name>.partial`, fsynced, renamed, and the directory fsynced, so after a
//! crash either the whole new snapshot or the previous one is there. Only the newest is kept.
//!
//! A file is the magic bytes and then one record sealed with the data key (`at_rest`), bound
//! to (snapshot, index in the file name): a file renamed to another index, tampered with or
//! sealed under another key fails to open, and that is an error naming the index — a member
//! never falls back to an older state or starts empty because its newest snapshot is bad.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::at_rest::{DataKey, Kind};
use crate::codec;
use crate::types::SnapshotMeta;

/// Bumped with the format; `SWSNAP01` was the unencrypted one.
pub(crate) const MAGIC: &[u8; 8] = b"SWSNAP02";
const OLD_MAGIC: &[u8; 8] = b"SWSNAP01";
pub(crate) const PREFIX: &str = "snapshot-";
pub(crate) const SUFFIX: &str = ".snap";
const PARTIAL: &str = ".partial";

/// The on-disk record after the magic bytes.
#[derive(Serialize, Deserialize)]
struct SnapshotRecord {
    meta: SnapshotMeta,
    /// prost-encoded `StoreSnapshot`.
    data: Vec<u8>,
}

pub(crate) struct SnapshotDir {
    dir: PathBuf,
    /// Serialises saves, so pruning by one never removes the file another just wrote.
    save_lock: Mutex<()>,
    key: DataKey,
}

impl SnapshotDir {
    /// Opens (creating) the directory and removes leftovers of interrupted writes.
    pub(crate) fn open(dir: PathBuf, key: DataKey) -> io::Result<SnapshotDir> {
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.to_string_lossy().ends_with(PARTIAL) {
                fs::remove_file(&path)?;
            }
        }
        Ok(SnapshotDir {
            dir,
            save_lock: Mutex::new(()),
            key,
        })
    }

    /// Durably writes a snapshot, then deletes every older one.
    pub(crate) fn save(&self, meta: &SnapshotMeta, data: &[u8]) -> io::Result<()> {
        let _guard = self
            .save_lock
            .lock()
            .map_err(|_| io::Error::other("snapshot lock poisoned"))?;
        let index = meta.last_log_id.map(|l| l.index).unwrap_or(0);
        let name = file_name(index);
        let final_path = self.dir.join(&name);
        let partial = self.dir.join(format!("{name}{PARTIAL}"));

        let record = SnapshotRecord {
            meta: meta.clone(),
            data: data.to_vec(),
        };
        let body = zeroize::Zeroizing::new(codec::encode(&record).map_err(io::Error::other)?);
        let sealed = self
            .key
            .seal(Kind::Snapshot, 0, index, &body)
            .map_err(|e| io::Error::other(format!("snapshot at index {index}: {e}")))?;
        {
            let mut f = File::create(&partial)?;
            f.write_all(MAGIC)?;
            f.write_all(&sealed)?;
            f.sync_all()?;
        }
        fs::rename(&partial, &final_path)?;
        sync_dir(&self.dir)?;

        for (other_index, path) in self.list()? {
            if other_index < index {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }

    /// The newest snapshot, if any. One that does not open is an error, not skipped: the log
    /// behind it is purged, so falling back would silently serve an older state (or none).
    /// Writes are atomic, so a final file that fails is damage or tampering, not a torn write.
    pub(crate) fn load_newest(&self) -> io::Result<Option<(SnapshotMeta, Vec<u8>)>> {
        let files = self.list()?;
        let Some((index, path)) = files.into_iter().max_by_key(|(index, _)| *index) else {
            return Ok(None);
        };
        let bytes = fs::read(&path)?;
        let rec = decode_file(&self.key, index, &bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        Ok(Some(rec))
    }

    fn list(&self) -> io::Result<Vec<(u64, PathBuf)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(index) = name
                .strip_prefix(PREFIX)
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            out.push((index, path));
        }
        Ok(out)
    }
}

fn file_name(index: u64) -> String {
    // Zero-padded so names sort by index.
    format!("{PREFIX}{index:020}{SUFFIX}")
}

/// Opens the content of the snapshot file named for `index`: its meta and the prost-encoded
/// store. Errors name the index. Shared with `inspect`, so the two readers cannot drift.
pub(crate) fn decode_file(
    key: &DataKey,
    index: u64,
    bytes: &[u8],
) -> Result<(SnapshotMeta, Vec<u8>), String> {
    if bytes.starts_with(OLD_MAGIC) {
        return Err(format!(
            "snapshot at index {index}: state dir written by an older format (unencrypted)"
        ));
    }
    let sealed = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| format!("snapshot at index {index}: not a swarm raft snapshot"))?;
    let body = key
        .open(Kind::Snapshot, 0, index, sealed)
        .map_err(|e| format!("snapshot at index {index}: {e}"))?;
    let rec: SnapshotRecord =
        codec::decode(&body).map_err(|e| format!("snapshot at index {index}: {e}"))?;
    let claimed = rec.meta.last_log_id.map(|l| l.index).unwrap_or(0);
    if claimed != index {
        return Err(format!(
            "snapshot at index {index}: holds the snapshot of index {claimed}"
        ));
    }
    Ok((rec.meta, rec.data))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::types::{LogId, StoredMembership};
    use openraft::CommittedLeaderId;

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
            last_membership: StoredMembership::default(),
            snapshot_id: format!("s{index}"),
        }
    }

    #[test]
    fn keeps_only_the_newest_and_ignores_partials() {
        let tmp = tempfile::tempdir().unwrap();
        let key = DataKey::generate().unwrap();
        let dir = SnapshotDir::open(tmp.path().join("snapshots"), key.clone()).unwrap();
        dir.save(&meta(5), b"five").unwrap();
        dir.save(&meta(9), b"nine").unwrap();
        fs::write(
            tmp.path()
                .join("snapshots")
                .join("snapshot-00000000000000000012.snap.partial"),
            b"x",
        )
        .unwrap();
        let (m, data) = dir.load_newest().unwrap().unwrap();
        assert_eq!(m.snapshot_id, "s9");
        assert_eq!(data, b"nine");
        assert_eq!(dir.list().unwrap().len(), 1);

        let reopened = SnapshotDir::open(tmp.path().join("snapshots"), key).unwrap();
        assert_eq!(
            fs::read_dir(tmp.path().join("snapshots")).unwrap().count(),
            1
        );
        assert_eq!(reopened.load_newest().unwrap().unwrap().1, b"nine");
    }

    #[test]
    fn tampered_renamed_and_wrongly_keyed_snapshots_fail_naming_the_index() {
        let tmp = tempfile::tempdir().unwrap();
        let snaps = tmp.path().join("snapshots");
        let key = DataKey::generate().unwrap();
        let dir = SnapshotDir::open(snaps.clone(), key.clone()).unwrap();
        dir.save(&meta(7), b"secret-snapshot-bytes").unwrap();
        let path = snaps.join(file_name(7));
        let good = fs::read(&path).unwrap();
        assert!(!good
            .windows(b"secret-snapshot-bytes".len())
            .any(|w| w == b"secret-snapshot-bytes"));

        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 30] ^= 0x80;
        fs::write(&path, &bad).unwrap();
        let err = dir.load_newest().unwrap_err().to_string();
        assert!(err.contains("snapshot at index 7"), "{err}");

        // Renamed to look newer: bound to index 7, so it does not open as 9.
        fs::write(&path, &good).unwrap();
        fs::write(snaps.join(file_name(9)), &good).unwrap();
        let err = dir.load_newest().unwrap_err().to_string();
        assert!(err.contains("snapshot at index 9"), "{err}");
        fs::remove_file(snaps.join(file_name(9))).unwrap();
        assert_eq!(
            dir.load_newest().unwrap().unwrap().1,
            b"secret-snapshot-bytes"
        );

        let other = SnapshotDir::open(snaps, DataKey::generate().unwrap()).unwrap();
        let err = other.load_newest().unwrap_err().to_string();
        assert!(err.contains("snapshot at index 7"), "{err}");
    }
}
