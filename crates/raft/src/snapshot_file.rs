//! Snapshot files under `<raft dir>/snapshots/`: the newest snapshot's meta (last log id,
//! membership) and the prost-encoded store copy, written atomically. Owns that directory only;
//! what a snapshot contains is decided by `state_machine`.
//!
//! A file is written as `<name>.partial`, fsynced, renamed, and the directory fsynced, so after a
//! crash either the whole new snapshot or the previous one is there. Only the newest is kept.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::types::SnapshotMeta;

const MAGIC: &[u8; 8] = b"SWSNAP01";
const SUFFIX: &str = ".snap";
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
}

impl SnapshotDir {
    /// Opens (creating) the directory and removes leftovers of interrupted writes.
    pub(crate) fn open(dir: PathBuf) -> io::Result<SnapshotDir> {
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
        let body = codec::encode(&record).map_err(io::Error::other)?;
        {
            let mut f = File::create(&partial)?;
            f.write_all(MAGIC)?;
            f.write_all(&body)?;
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

    /// The newest readable snapshot, if any.
    pub(crate) fn load_newest(&self) -> io::Result<Option<(SnapshotMeta, Vec<u8>)>> {
        let mut files = self.list()?;
        files.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
        for (_, path) in files {
            match read_record(&path) {
                Ok(rec) => return Ok(Some((rec.meta, rec.data))),
                // A damaged newest file is skipped rather than fatal: an older one plus the log
                // may still be complete, and openraft fetches a fresh snapshot from the leader
                // if not.
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable raft snapshot")
                }
            }
        }
        Ok(None)
    }

    fn list(&self) -> io::Result<Vec<(u64, PathBuf)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(index) = name
                .strip_prefix("snapshot-")
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
    format!("snapshot-{index:020}{SUFFIX}")
}

fn read_record(path: &Path) -> io::Result<SnapshotRecord> {
    let bytes = fs::read(path)?;
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a swarm raft snapshot"))?;
    codec::decode(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
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
        let dir = SnapshotDir::open(tmp.path().join("snapshots")).unwrap();
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

        let reopened = SnapshotDir::open(tmp.path().join("snapshots")).unwrap();
        assert_eq!(
            fs::read_dir(tmp.path().join("snapshots")).unwrap().count(),
            1
        );
        assert_eq!(reopened.load_newest().unwrap().unwrap().1, b"nine");
    }
}
