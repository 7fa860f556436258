//! Encryption at rest of the Raft state: the data key ([`DataKey`]) that seals every log entry
//! and snapshot, the key-encryption key ([`KeyEncryptionKey`]) that wraps it on disk, and the
//! sealed record format. Owns `<raft dir>/data-key` and `<state dir>/certificates/swarm-raft.kek`;
//! what a record carries is `log_store`'s and `snapshot_file`'s business.
//!
//! A record is `version (1) | algorithm (1) | nonce (24) | ciphertext + tag`, sealed with
//! XChaCha20-Poly1305 (random 192-bit nonces cannot collide in practice, so no counter has to
//! survive crashes). The additional data binds the record to its place — kind, term and index —
//! so a record copied to another index, or a snapshot renamed, fails to open instead of being
//! served.
//!
//! Key hierarchy, without autolock: the data key (32 random bytes per manager, created with its
//! Raft dir) is stored wrapped under a KEK derived with HKDF-SHA256 from a 32-byte random seed in
//! `<state dir>/certificates/swarm-raft.kek` (mode 0600, next to the TLS key). The Raft dir on
//! its own — a copied log, a backup of `raft/` — is therefore useless. The seed is deliberately
//! not the TLS private key itself: certificate renewal replaces that key (a new key per CSR), and
//! a crash between saving the new key and re-wrapping the data key would lose the whole log.
//! Autolock will replace [`KeyEncryptionKey::load_or_create_seed`] by a KEK derived from the
//! unlock key ([`KeyEncryptionKey::derive`]); nothing else changes.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{DiskError, RaftError};

/// Format version of a sealed record.
const RECORD_VERSION: u8 = 1;
/// The only algorithm so far.
const ALG_XCHACHA20_POLY1305: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 2 + NONCE_LEN;
/// What sealing adds to a plaintext (version, algorithm, nonce, tag).
pub(crate) const SEAL_OVERHEAD: usize = HEADER_LEN + TAG_LEN;
const KEY_LEN: usize = 32;

/// The wrapped data key, inside the Raft dir (so a `--force-new-cluster` move takes it along
/// with the log it opens).
pub(crate) const DATA_KEY_FILE: &str = "data-key";
/// The KEK seed, under the certificates dir with the node's TLS key.
pub const KEK_SEED_FILE: &str = "swarm-raft.kek";
const CERT_DIR: &str = "certificates";
const HKDF_INFO: &[u8] = b"swarm-raft key-encryption key v1";

/// What a sealed record is; part of its additional data, so one kind never opens as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Entry,
    /// A whole snapshot in one record (`SWSNAP02` files, still read).
    Snapshot,
    /// One frame of a snapshot file written in frames (`snapshot_file`); its number in the
    /// file takes the term's place in the additional data.
    SnapshotFrame,
    DataKey,
}

impl Kind {
    fn tag(self) -> &'static [u8] {
        match self {
            Kind::Entry => b"swarm-raft/entry",
            Kind::Snapshot => b"swarm-raft/snapshot",
            Kind::SnapshotFrame => b"swarm-raft/snapshot-frame",
            Kind::DataKey => b"swarm-raft/data-key",
        }
    }
}

/// Why a record did not seal or open. Callers add the position (index) to the message.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("record malformed: {0}")]
    Malformed(&'static str),
    #[error("record fails authentication (tampered, moved from another position, or sealed with another key)")]
    Open,
    #[error("sealing failed")]
    Seal,
    #[error("no random bytes from the OS: {0}")]
    Random(#[source] rand::Error),
}

fn aad(kind: Kind, term: u64, index: u64) -> Vec<u8> {
    let tag = kind.tag();
    let mut out = Vec::with_capacity(tag.len() + 17);
    out.extend_from_slice(tag);
    // A separator keeps the tag and the numbers from running into each other.
    out.push(0);
    out.extend_from_slice(&term.to_be_bytes());
    out.extend_from_slice(&index.to_be_bytes());
    out
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, SealError> {
    let mut out = Zeroizing::new([0u8; N]);
    rand::rngs::OsRng
        .try_fill_bytes(out.as_mut_slice())
        .map_err(SealError::Random)?;
    Ok(out)
}

fn seal_with(
    key: &[u8; KEY_LEN],
    kind: Kind,
    term: u64,
    index: u64,
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce = random::<NONCE_LEN>()?;
    let aad = aad(kind, term, index);
    let ct = cipher
        .encrypt(
            XNonce::from_slice(nonce.as_slice()),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| SealError::Seal)?;
    let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
    out.push(RECORD_VERSION);
    out.push(ALG_XCHACHA20_POLY1305);
    out.extend_from_slice(nonce.as_slice());
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open_with(
    key: &[u8; KEY_LEN],
    kind: Kind,
    term: u64,
    index: u64,
    record: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if record.len() < HEADER_LEN + TAG_LEN {
        return Err(SealError::Malformed("too short"));
    }
    if record[0] != RECORD_VERSION {
        return Err(SealError::Malformed("unknown record version"));
    }
    if record[1] != ALG_XCHACHA20_POLY1305 {
        return Err(SealError::Malformed("unknown algorithm"));
    }
    let cipher = XChaCha20Poly1305::new(key.into());
    let aad = aad(kind, term, index);
    cipher
        .decrypt(
            XNonce::from_slice(&record[2..HEADER_LEN]),
            Payload {
                msg: &record[HEADER_LEN..],
                aad: &aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| SealError::Open)
}

/// The key that seals this manager's log entries and snapshots. Cheap to clone (clones share
/// the one copy); the bytes are wiped when the last clone drops, and never printed.
#[derive(Clone)]
pub struct DataKey(Arc<Zeroizing<[u8; KEY_LEN]>>);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Result<DataKey, RaftError> {
        random::<KEY_LEN>()
            .map(|k| DataKey(Arc::new(k)))
            .map_err(|source| {
                DiskError::Seal {
                    context: "generating the data key".into(),
                    source,
                }
                .into()
            })
    }

    /// A key of the given bytes (fixed keys for the fuzz targets).
    pub(crate) fn from_bytes(bytes: [u8; KEY_LEN]) -> DataKey {
        DataKey(Arc::new(Zeroizing::new(bytes)))
    }

    pub(crate) fn seal(
        &self,
        kind: Kind,
        term: u64,
        index: u64,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        seal_with(&self.0, kind, term, index, plaintext)
    }

    pub(crate) fn open(
        &self,
        kind: Kind,
        term: u64,
        index: u64,
        record: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        open_with(&self.0, kind, term, index, record)
    }

    /// Reads and unwraps `<raft_dir>/data-key`. `None` when there is no such file.
    pub fn load(raft_dir: &Path, kek: &KeyEncryptionKey) -> Result<Option<DataKey>, RaftError> {
        let path = raft_dir.join(DATA_KEY_FILE);
        let wrapped = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DiskError::io(path.display(), e).into()),
        };
        kek.unwrap_key(&wrapped).map(Some).map_err(|source| {
            DiskError::Seal {
                context: path.display().to_string(),
                source,
            }
            .into()
        })
    }

    /// [`DataKey::load`], or a new key saved wrapped when the Raft dir holds no state yet. A
    /// Raft dir with a log or snapshots but no key is refused: it was written unencrypted by an
    /// older format (or its key was lost), and a new key could not read it anyway.
    pub fn load_or_create(raft_dir: &Path, kek: &KeyEncryptionKey) -> Result<DataKey, RaftError> {
        if let Some(k) = DataKey::load(raft_dir, kek)? {
            return Ok(k);
        }
        if has_raft_state(raft_dir) {
            return Err(RaftError::OldFormat(format!(
                "{} holds Raft state but no {DATA_KEY_FILE}: written unencrypted by an older \
                 build (or the key was lost); remove the state dir and join the node again",
                raft_dir.display()
            )));
        }
        let key = DataKey::generate()?;
        let wrapped = kek.wrap_key(&key).map_err(|source| DiskError::Seal {
            context: "wrapping the data key".into(),
            source,
        })?;
        write_durably(raft_dir, DATA_KEY_FILE, &wrapped)?;
        Ok(key)
    }
}

fn has_raft_state(raft_dir: &Path) -> bool {
    if raft_dir.join("log.redb").exists() {
        return true;
    }
    fs::read_dir(raft_dir.join("snapshots"))
        .map(|mut d| {
            d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("snapshot-")))
        })
        .unwrap_or(false)
}

/// Wraps the data key on disk. Without autolock it comes from the seed file next to the TLS
/// key; with autolock it will come from the unlock key. Wiped on drop, never printed.
pub struct KeyEncryptionKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

impl KeyEncryptionKey {
    /// Derives a KEK from secret material (a seed, later the unlock key) with HKDF-SHA256.
    pub fn derive(material: &[u8]) -> KeyEncryptionKey {
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        // 32 bytes is far below HKDF-SHA256's limit (255 × 32), so expand cannot fail; the
        // fallback of all zeros is unreachable but avoids a panic path.
        if Hkdf::<Sha256>::new(None, material)
            .expand(HKDF_INFO, out.as_mut_slice())
            .is_err()
        {
            out.as_mut_slice().fill(0);
        }
        KeyEncryptionKey(out)
    }

    /// The KEK from `<state_dir>/certificates/swarm-raft.kek`, creating that seed (32 random
    /// bytes, mode 0600) when `create` and it is missing.
    pub fn load_or_create_seed(
        state_dir: &Path,
        create: bool,
    ) -> Result<KeyEncryptionKey, RaftError> {
        let dir = state_dir.join(CERT_DIR);
        let path = dir.join(KEK_SEED_FILE);
        match fs::read(&path) {
            Ok(seed) => {
                let seed = Zeroizing::new(seed);
                if seed.len() != KEY_LEN {
                    return Err(DiskError::Invalid(format!(
                        "{}: expected {KEY_LEN} bytes, found {}",
                        path.display(),
                        seed.len()
                    ))
                    .into());
                }
                Ok(KeyEncryptionKey::derive(&seed))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let seed = random::<KEY_LEN>().map_err(|source| DiskError::Seal {
                    context: "generating the key seed".into(),
                    source,
                })?;
                fs::create_dir_all(&dir).map_err(|e| DiskError::io(dir.display(), e))?;
                write_durably(&dir, KEK_SEED_FILE, seed.as_slice())?;
                Ok(KeyEncryptionKey::derive(seed.as_slice()))
            }
            Err(e) => Err(DiskError::io(
                format_args!(
                    "{} (the key that unlocks the Raft data key)",
                    path.display()
                ),
                e,
            )
            .into()),
        }
    }

    fn wrap_key(&self, key: &DataKey) -> Result<Vec<u8>, SealError> {
        seal_with(&self.0, Kind::DataKey, 0, 0, key.0.as_slice())
    }

    pub(crate) fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey, SealError> {
        let plain = open_with(&self.0, Kind::DataKey, 0, 0, wrapped)?;
        let bytes: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| SealError::Malformed("data key of the wrong length"))?;
        Ok(DataKey(Arc::new(Zeroizing::new(bytes))))
    }
}

/// The data key of `<state_dir>/raft/`, unwrapped with the seed-derived KEK; both are created
/// on first use when `create`. What `RaftNode::open` uses when `RaftConfig::data_key` is `None`,
/// and what the offline readers (`inspect`) use with `create == false`.
pub fn load_data_key(state_dir: &Path, create: bool) -> Result<DataKey, RaftError> {
    let raft_dir = state_dir.join("raft");
    let kek = KeyEncryptionKey::load_or_create_seed(state_dir, create)?;
    if create {
        fs::create_dir_all(&raft_dir).map_err(|e| DiskError::io(raft_dir.display(), e))?;
        return DataKey::load_or_create(&raft_dir, &kek);
    }
    DataKey::load(&raft_dir, &kek)?.ok_or_else(|| {
        RaftError::OldFormat(format!(
            "no {} in {}: written unencrypted by an older build, or the key was lost",
            DATA_KEY_FILE,
            raft_dir.display()
        ))
    })
}

/// `<dir>/<name>.partial`, fsync, rename, fsync the dir: after a crash the file is whole or
/// absent. Mode 0600: both files are key material.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), RaftError> {
    let err = |p: &PathBuf, e: std::io::Error| RaftError::from(DiskError::io(p.display(), e));
    let final_path = dir.join(name);
    let partial = dir.join(format!("{name}.partial"));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|e| err(&partial, e))?;
        f.write_all(bytes).map_err(|e| err(&partial, e))?;
        f.sync_all().map_err(|e| err(&partial, e))?;
    }
    fs::rename(&partial, &final_path).map_err(|e| err(&final_path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err(&dir.to_path_buf(), e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_open_only_at_their_position_and_with_their_key() {
        let k = DataKey::generate().unwrap();
        let rec = k.seal(Kind::Entry, 3, 7, b"hello").unwrap();
        assert_eq!(rec.len(), HEADER_LEN + 5 + TAG_LEN);
        assert_eq!(&k.open(Kind::Entry, 3, 7, &rec).unwrap()[..], b"hello");
        assert!(matches!(
            k.open(Kind::Entry, 3, 8, &rec),
            Err(SealError::Open)
        ));
        assert!(matches!(
            k.open(Kind::Entry, 2, 7, &rec),
            Err(SealError::Open)
        ));
        assert!(matches!(
            k.open(Kind::Snapshot, 3, 7, &rec),
            Err(SealError::Open)
        ));
        let other = DataKey::generate().unwrap();
        assert!(matches!(
            other.open(Kind::Entry, 3, 7, &rec),
            Err(SealError::Open)
        ));
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 1;
            assert!(k.open(Kind::Entry, 3, 7, &bad).is_err(), "byte {i}");
        }
        assert!(matches!(
            k.open(Kind::Entry, 3, 7, &rec[..10]),
            Err(SealError::Malformed(_))
        ));
    }

    #[test]
    fn data_key_is_wrapped_and_survives_reload() {
        let tmp = tempfile::tempdir().unwrap();
        let k = load_data_key(tmp.path(), true).unwrap();
        let rec = k.seal(Kind::Entry, 1, 1, b"x").unwrap();
        let again = load_data_key(tmp.path(), false).unwrap();
        assert_eq!(&again.open(Kind::Entry, 1, 1, &rec).unwrap()[..], b"x");
        // The wrapped file does not hold the key in the clear.
        let wrapped = fs::read(tmp.path().join("raft").join(DATA_KEY_FILE)).unwrap();
        assert!(!wrapped.windows(KEY_LEN).any(|w| w == k.0.as_slice()));
        // Another KEK cannot unwrap it.
        let wrong = KeyEncryptionKey::derive(b"not the seed");
        assert!(DataKey::load(&tmp.path().join("raft"), &wrong).is_err());
        // A Raft dir with state but no key is refused, not given a fresh key.
        let old = tempfile::tempdir().unwrap();
        fs::create_dir_all(old.path().join("raft")).unwrap();
        fs::write(old.path().join("raft/log.redb"), b"old").unwrap();
        let err = load_data_key(old.path(), true).unwrap_err().to_string();
        assert!(
            err.starts_with("state dir written by an older format"),
            "{err}"
        );
    }
}
