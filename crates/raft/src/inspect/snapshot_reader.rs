//! Finds and reads the newest snapshot file for `inspect`, the way a restarting member would.
//!
//! Owns the listing of `snapshots/`. Must not change that dir: `SnapshotDir::open` is never
//! used here, since it deletes `.partial` leftovers. Files are decoded with `snapshot_file`'s
//! own function, so the two readers cannot drift apart.

use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;
use swarm_api::StoreSnapshot;

use crate::at_rest::DataKey;
use crate::error::{DiskError, RaftError};
use crate::snapshot_file::{decode_file, PREFIX as SNAP_PREFIX, SUFFIX as SNAP_SUFFIX};
use crate::types::SnapshotMeta;

/// The newest snapshot file that reads and decodes; damaged newer ones become warnings, the
/// way a restarting member would skip them.
pub(super) fn newest_snapshot(
    dir: &Path,
    key: &DataKey,
    warnings: &mut Vec<String>,
) -> Result<Option<(PathBuf, SnapshotMeta, StoreSnapshot)>, RaftError> {
    let listing = match fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DiskError::io(dir.display(), e).into()),
    };
    let mut files = Vec::new();
    for entry in listing {
        let path = entry.map_err(|e| DiskError::io(dir.display(), e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(index) = name
            .strip_prefix(SNAP_PREFIX)
            .and_then(|n| n.strip_suffix(SNAP_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        {
            files.push((index, path));
        }
    }
    files.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
    for (index, path) in files {
        match read_snapshot(&path, key, index) {
            Ok((meta, snap)) => return Ok(Some((path, meta, snap))),
            Err(e) => warnings.push(format!(
                "skipped unreadable snapshot {}: {e}",
                path.display()
            )),
        }
    }
    Ok(None)
}

fn read_snapshot(
    path: &Path,
    key: &DataKey,
    index: u64,
) -> Result<(SnapshotMeta, StoreSnapshot), String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let (meta, data) = decode_file(key, index, &bytes)?;
    let snap = StoreSnapshot::decode(data.as_slice()).map_err(|e| e.to_string())?;
    Ok((meta, snap))
}
