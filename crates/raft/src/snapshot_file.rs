//! Snapshot files under `<raft dir>/snapshots/`: the newest snapshot's meta (last log id,
//! membership) and the prost-encoded store copy, written atomically. Owns that directory only;
//! what a snapshot contains is decided by `state_machine`.
//!
//! A file is written as `<name>.partial`, fsynced, renamed, and the directory fsynced, so after a
//! crash either the whole new snapshot or the previous one is there. Only the newest is kept.
//!
//! A file is the magic bytes and then frames, each a length (u32, little endian) and a record
//! sealed with the data key (`at_rest`), bound to (its number in the file, the snapshot's
//! index in the file name). Frame 0 holds the meta and the store copy's length; the frames
//! after it hold the store copy in pieces of [`FRAME_BYTES`]. So a file is written and read a
//! frame at a time: neither side holds a second (sealed, or serialised) copy of a snapshot of
//! hundreds of MiB, and no size limit of one record applies. A file renamed to another index,
//! with frames swapped, cut short, tampered with or sealed under another key fails to open, and
//! that is an error naming the index — a member never falls back to an older state or starts
//! empty because its newest snapshot is bad.
//!
//! `SWSNAP02` files (the whole snapshot in one sealed record) are still read.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::at_rest::{DataKey, Kind, SEAL_OVERHEAD};
use crate::codec;
use crate::types::SnapshotMeta;

/// Bumped with the format: `SWSNAP01` was unencrypted, `SWSNAP02` one sealed record.
pub(crate) const MAGIC: &[u8; 8] = b"SWSNAP03";
const ONE_RECORD_MAGIC: &[u8; 8] = b"SWSNAP02";
const OLD_MAGIC: &[u8; 8] = b"SWSNAP01";
pub(crate) const PREFIX: &str = "snapshot-";
pub(crate) const SUFFIX: &str = ".snap";
const PARTIAL: &str = ".partial";

/// Plaintext bytes of the store copy per frame.
const FRAME_BYTES: usize = 1024 * 1024;

/// Frame 0 of a file: what the frames after it hold.
#[derive(Serialize, Deserialize)]
struct FrameHeader {
    meta: SnapshotMeta,
    /// Length of the prost-encoded `StoreSnapshot` the data frames hold together.
    data_len: u64,
}

/// The whole content of a `SWSNAP02` file after the magic bytes.
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

        {
            let mut f = BufWriter::with_capacity(FRAME_BYTES + 64, File::create(&partial)?);
            f.write_all(MAGIC)?;
            let header = frame_header(meta, data.len() as u64).map_err(io::Error::other)?;
            if header.len() > FRAME_BYTES {
                return Err(io::Error::other(format!(
                    "snapshot at index {index}: meta of {} bytes is over a frame",
                    header.len()
                )));
            }
            let frames = std::iter::once(header.as_slice()).chain(data.chunks(FRAME_BYTES));
            write_frames(&mut f, &self.key, index, frames)?;
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
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
        let file = File::open(&path)?;
        let len = file.metadata()?.len();
        let rec = read_file(&self.key, index, BufReader::new(file), len).map_err(|e| {
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

/// Frame 0's plaintext, for a store copy of `data_len` bytes.
pub(crate) fn frame_header(meta: &SnapshotMeta, data_len: u64) -> Result<Vec<u8>, String> {
    codec::encode(&FrameHeader {
        meta: meta.clone(),
        data_len,
    })
    .map_err(|e| e.to_string())
}

/// Seals each of `frames` (frame 0 the header) for the snapshot of `index` and writes it,
/// length first, one at a time.
pub(crate) fn write_frames<'a>(
    w: &mut impl Write,
    key: &DataKey,
    index: u64,
    frames: impl IntoIterator<Item = &'a [u8]>,
) -> io::Result<()> {
    for (n, plain) in (0u64..).zip(frames) {
        let sealed = key
            .seal(Kind::SnapshotFrame, n, index, plain)
            .map_err(|e| io::Error::other(format!("snapshot at index {index}: {e}")))?;
        let len = u32::try_from(sealed.len()).map_err(io::Error::other)?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&sealed)?;
    }
    Ok(())
}

/// Opens the content of the snapshot file named for `index`: its meta and the prost-encoded
/// store. Errors name the index. Shared with `inspect`, so the two readers cannot drift.
pub(crate) fn decode_file(
    key: &DataKey,
    index: u64,
    bytes: &[u8],
) -> Result<(SnapshotMeta, Vec<u8>), String> {
    read_file(key, index, bytes, bytes.len() as u64)
}

/// [`decode_file`] over a reader of the file's `len` bytes, one frame in memory at a time.
fn read_file(
    key: &DataKey,
    index: u64,
    mut r: impl Read,
    len: u64,
) -> Result<(SnapshotMeta, Vec<u8>), String> {
    let at = |e: &dyn std::fmt::Display| format!("snapshot at index {index}: {e}");
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|_| at(&"not a swarm raft snapshot"))?;
    if &magic == OLD_MAGIC {
        return Err(at(&"state dir written by an older format (unencrypted)"));
    }
    if &magic == ONE_RECORD_MAGIC {
        return read_one_record(key, index, r);
    }
    if &magic != MAGIC {
        return Err(at(&"not a swarm raft snapshot"));
    }
    let mut open = |n: u64| -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        let mut len_bytes = [0u8; 4];
        r.read_exact(&mut len_bytes)
            .map_err(|_| at(&format!("frame {n} missing (file cut short)")))?;
        let sealed_len = u32::from_le_bytes(len_bytes) as usize;
        // Checked before allocating: a damaged length must not make us allocate without bound.
        if sealed_len > FRAME_BYTES + SEAL_OVERHEAD {
            return Err(at(&format!("frame {n} claims {sealed_len} bytes")));
        }
        let mut sealed = vec![0u8; sealed_len];
        r.read_exact(&mut sealed)
            .map_err(|_| at(&format!("frame {n} cut short")))?;
        key.open(Kind::SnapshotFrame, n, index, &sealed)
            .map_err(|e| at(&format!("frame {n}: {e}")))
    };
    let header: FrameHeader = codec::decode(&open(0)?).map_err(|e| at(&e))?;
    check_index(index, &header.meta)?;
    // The header is authenticated, but the file's own length still bounds what is reserved.
    let data_len = usize::try_from(header.data_len.min(len)).map_err(|e| at(&e))?;
    let mut data = Vec::with_capacity(data_len);
    let mut n = 1u64;
    while (data.len() as u64) < header.data_len {
        let piece = open(n)?;
        if piece.is_empty() {
            return Err(at(&format!("frame {n} is empty")));
        }
        data.extend_from_slice(&piece);
        n += 1;
    }
    if data.len() as u64 != header.data_len {
        return Err(at(&format!(
            "frames hold {} bytes, the header says {}",
            data.len(),
            header.data_len
        )));
    }
    let mut rest = [0u8; 1];
    if r.read(&mut rest).map_err(|e| at(&e))? != 0 {
        return Err(at(&"bytes after the last frame"));
    }
    Ok((header.meta, data))
}

/// The rest of a `SWSNAP02` file after its magic bytes: one sealed record.
fn read_one_record(
    key: &DataKey,
    index: u64,
    mut r: impl Read,
) -> Result<(SnapshotMeta, Vec<u8>), String> {
    let mut sealed = Vec::new();
    r.read_to_end(&mut sealed)
        .map_err(|e| format!("snapshot at index {index}: {e}"))?;
    let body = key
        .open(Kind::Snapshot, 0, index, &sealed)
        .map_err(|e| format!("snapshot at index {index}: {e}"))?;
    let rec: SnapshotRecord =
        codec::decode(&body).map_err(|e| format!("snapshot at index {index}: {e}"))?;
    check_index(index, &rec.meta)?;
    Ok((rec.meta, rec.data))
}

fn check_index(index: u64, meta: &SnapshotMeta) -> Result<(), String> {
    let claimed = meta.last_log_id.map(|l| l.index).unwrap_or(0);
    if claimed != index {
        return Err(format!(
            "snapshot at index {index}: holds the snapshot of index {claimed}"
        ));
    }
    Ok(())
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

    /// Varied bytes spanning `frames` frames and a part of one more.
    fn big(frames: usize) -> Vec<u8> {
        (0..frames * FRAME_BYTES + 12_345)
            .map(|k| (k.wrapping_mul(31) ^ (k >> 11)) as u8)
            .collect()
    }

    /// Where each frame of a file starts (after the magic bytes), and where it ends.
    fn frame_bounds(file: &[u8]) -> Vec<(usize, usize)> {
        let mut at = MAGIC.len();
        let mut out = Vec::new();
        while at < file.len() {
            let len = u32::from_le_bytes(file[at..at + 4].try_into().unwrap()) as usize;
            out.push((at, at + 4 + len));
            at += 4 + len;
        }
        out
    }

    #[test]
    fn a_snapshot_of_several_frames_round_trips_and_every_frame_is_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let snaps = tmp.path().join("snapshots");
        let key = DataKey::generate().unwrap();
        let dir = SnapshotDir::open(snaps.clone(), key.clone()).unwrap();
        let data = big(3);
        dir.save(&meta(11), &data).unwrap();
        let path = snaps.join(file_name(11));
        let good = fs::read(&path).unwrap();
        let frames = frame_bounds(&good);
        assert_eq!(frames.len(), 1 + 4, "a header and four data frames");
        assert!(frames
            .iter()
            .all(|(a, b)| b - a <= 4 + FRAME_BYTES + SEAL_OVERHEAD));
        let (m, back) = dir.load_newest().unwrap().unwrap();
        assert_eq!(m.snapshot_id, "s11");
        assert!(back == data, "the store copy comes back whole");
        assert!(decode_file(&key, 11, &good).unwrap().1 == data);

        let fails = |bytes: &[u8], what: &str| {
            fs::write(&path, bytes).unwrap();
            let err = dir.load_newest().unwrap_err().to_string();
            assert!(err.contains("snapshot at index 11"), "{what}: {err}");
        };
        // The last frame gone: the header's length no longer adds up.
        fails(&good[..frames[3].1], "cut at a frame boundary");
        fails(&good[..good.len() - 7], "cut inside a frame");
        // Frames 1 and 2 swapped (same lengths): each is bound to its number.
        let mut swapped = good[..frames[1].0].to_vec();
        swapped.extend_from_slice(&good[frames[2].0..frames[2].1]);
        swapped.extend_from_slice(&good[frames[1].0..frames[1].1]);
        swapped.extend_from_slice(&good[frames[3].0..]);
        fails(&swapped, "frames swapped");
        let mut longer = good.clone();
        longer.extend_from_slice(&good[frames[4].0..frames[4].1]);
        fails(&longer, "a frame repeated at the end");
        let mut huge = good.clone();
        huge[frames[2].0..frames[2].0 + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        fails(&huge, "a frame length past any frame");
    }

    #[test]
    fn a_snapshot_in_one_sealed_record_still_opens() {
        let tmp = tempfile::tempdir().unwrap();
        let snaps = tmp.path().join("snapshots");
        let key = DataKey::generate().unwrap();
        let dir = SnapshotDir::open(snaps.clone(), key.clone()).unwrap();
        let record = SnapshotRecord {
            meta: meta(4),
            data: b"written by the previous release".to_vec(),
        };
        let sealed = key
            .seal(Kind::Snapshot, 0, 4, &codec::encode(&record).unwrap())
            .unwrap();
        let mut file = ONE_RECORD_MAGIC.to_vec();
        file.extend_from_slice(&sealed);
        fs::write(snaps.join(file_name(4)), &file).unwrap();
        let (m, data) = dir.load_newest().unwrap().unwrap();
        assert_eq!(m.snapshot_id, "s4");
        assert_eq!(data, b"written by the previous release");
        // Bound to its index as before.
        fs::rename(snaps.join(file_name(4)), snaps.join(file_name(6))).unwrap();
        let err = dir.load_newest().unwrap_err().to_string();
        assert!(err.contains("snapshot at index 6"), "{err}");
    }
}
