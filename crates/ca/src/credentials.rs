//! A node's credentials and their files under `<state_dir>/certificates/`:
//! `swarm-root-ca.crt`, `swarm-node.crt`, `swarm-node.key` (mode 0600). Owns the file layout
//! and durable writes; TLS configs built from the credentials live in `tls.rs`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::Rng;
use rcgen::KeyPair;
use swarm_api::NodeRole;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::{identity_from_cert_der, PeerIdentity};
use crate::unlock::{is_sealed, UnlockKey};
use crate::{pem, CaError};
use zeroize::Zeroizing;

/// Directory under the state dir that holds the files below.
pub const CERT_DIR: &str = "certificates";
pub const ROOT_CA_FILE: &str = "swarm-root-ca.crt";
pub const NODE_CERT_FILE: &str = "swarm-node.crt";
pub const NODE_KEY_FILE: &str = "swarm-node.key";

/// What a node needs to speak mTLS: its certificate and key, the root it trusts, and the
/// identity its certificate carries.
#[derive(Clone)]
pub struct NodeCredentials {
    pub node_id: String,
    pub role: NodeRole,
    pub cluster_id: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub root_pem: String,
}

impl std::fmt::Debug for NodeCredentials {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCredentials")
            .field("node_id", &self.node_id)
            .field("role", &self.role)
            .field("cluster_id", &self.cluster_id)
            .finish_non_exhaustive()
    }
}

impl NodeCredentials {
    /// Builds credentials from PEMs, reading the identity from the certificate and checking
    /// that the key belongs to it (a mismatch would otherwise surface as an obscure TLS error).
    pub fn from_pems(cert_pem: String, key_pem: String, root_pem: String) -> Result<Self, CaError> {
        let der = pem::cert_der(&cert_pem)?;
        let id = identity_from_cert_der(&der)?;
        check_key_matches(&der, &key_pem)?;
        // Validates the root's PEM too, so a corrupt root file is reported here.
        pem::cert_der(&root_pem)?;
        Ok(NodeCredentials {
            node_id: id.node_id,
            role: id.role,
            cluster_id: id.cluster_id,
            cert_pem,
            key_pem,
            root_pem,
        })
    }

    /// The identity this node presents.
    pub fn identity(&self) -> PeerIdentity {
        PeerIdentity {
            node_id: self.node_id.clone(),
            role: self.role,
            cluster_id: self.cluster_id.clone(),
        }
    }

    /// When the node certificate stops being valid, ms since the unix epoch.
    pub fn expires_at_ms(&self) -> Result<i64, CaError> {
        validity_ms(&self.cert_pem).map(|(_, not_after)| not_after)
    }

    /// A random point between 50 % and 80 % of the certificate's life (DESIGN.md §4), in ms
    /// since the unix epoch: when the node should ask for a new one. Random so that nodes
    /// joined together do not all renew together. The life counts from issuance, not from the
    /// backdated not-before: with the 1 h minimum expiry and the 1 h backdate, the latter would
    /// put the 50 % point at the moment of issuance and have nodes renew at once.
    pub fn renew_at_ms(&self) -> Result<i64, CaError> {
        let (nb, na) = validity_ms(&self.cert_pem)?;
        let issued = (nb + crate::root::BACKDATE.whole_milliseconds() as i64).min(na);
        let life = (na - issued).max(0) as f64;
        let frac: f64 = rand::thread_rng().gen_range(0.5..0.8);
        Ok(issued + (life * frac) as i64)
    }

    /// Loads the credentials kept in `<state_dir>/certificates/`. None when the node
    /// certificate is absent (a node that has not joined yet); an error when the set is
    /// partial or inconsistent, or when the key is sealed (autolock): see [`Self::load_with`].
    pub fn load(state_dir: &Path) -> Result<Option<NodeCredentials>, CaError> {
        Self::load_with(state_dir, None)
    }

    /// [`Self::load`], opening a key sealed by autolock with `unlock`.
    pub fn load_with(
        state_dir: &Path,
        unlock: Option<&UnlockKey>,
    ) -> Result<Option<NodeCredentials>, CaError> {
        let dir = state_dir.join(CERT_DIR);
        let Some(cert_pem) = read_optional(&dir.join(NODE_CERT_FILE))? else {
            return Ok(None);
        };
        let key_path = dir.join(NODE_KEY_FILE);
        let raw = Zeroizing::new(fs::read(&key_path).map_err(CaError::io(&key_path))?);
        let key_pem = if is_sealed(&raw) {
            let key = unlock.ok_or_else(|| {
                CaError::UnlockKey(
                    "this manager is locked (autolock): its keys need the unlock key".into(),
                )
            })?;
            let plain = key.open(NODE_KEY_FILE, &raw)?;
            String::from_utf8(plain.to_vec())
                .map_err(|_| CaError::InvalidKey("sealed node key is not PEM text".into()))?
        } else {
            String::from_utf8(raw.to_vec())
                .map_err(|_| CaError::InvalidKey("node key is not PEM text".into()))?
        };
        let root_pem = read_required(&dir.join(ROOT_CA_FILE))?;
        NodeCredentials::from_pems(cert_pem, key_pem, root_pem).map(Some)
    }

    /// Whether the node key in `state_dir` is sealed (autolock was on when it was saved).
    pub fn is_locked(state_dir: &Path) -> bool {
        fs::read(state_dir.join(CERT_DIR).join(NODE_KEY_FILE)).is_ok_and(|b| is_sealed(&b))
    }

    /// Writes the three files durably (temporary file, fsync, rename, fsync of the directory),
    /// the key with mode 0600. The node certificate goes last: its presence is what `load`
    /// takes as "this node has credentials".
    pub fn save(&self, state_dir: &Path) -> Result<(), CaError> {
        self.save_with(state_dir, None)
    }

    /// [`Self::save`], with the key sealed by `seal` when given (autolock on).
    pub fn save_with(&self, state_dir: &Path, seal: Option<&UnlockKey>) -> Result<(), CaError> {
        let dir = state_dir.join(CERT_DIR);
        fs::create_dir_all(&dir).map_err(CaError::io(&dir))?;
        // The directory holds a private key: keep others out of it too.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(CaError::io(&dir))?;
        write_atomic(&dir, ROOT_CA_FILE, self.root_pem.as_bytes(), 0o644)?;
        match seal {
            Some(k) => {
                let sealed = k.seal(NODE_KEY_FILE, self.key_pem.as_bytes())?;
                write_atomic(&dir, NODE_KEY_FILE, &sealed, 0o600)?;
            }
            None => write_atomic(&dir, NODE_KEY_FILE, self.key_pem.as_bytes(), 0o600)?,
        }
        write_atomic(&dir, NODE_CERT_FILE, self.cert_pem.as_bytes(), 0o644)?;
        Ok(())
    }
}

fn check_key_matches(cert_der: &[u8], key_pem: &str) -> Result<(), CaError> {
    let key =
        KeyPair::from_pem(key_pem).map_err(|e| CaError::InvalidKey(format!("node key: {e}")))?;
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| CaError::InvalidCertificate(e.to_string()))?;
    if key.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
        return Err(CaError::InvalidKey(
            "node key does not belong to the node certificate".into(),
        ));
    }
    Ok(())
}

/// (not before, not after) of a PEM certificate, ms since the unix epoch.
fn validity_ms(cert_pem: &str) -> Result<(i64, i64), CaError> {
    let der = pem::cert_der(cert_pem)?;
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|e| CaError::InvalidCertificate(e.to_string()))?;
    let v = cert.validity();
    Ok((
        v.not_before.timestamp().saturating_mul(1000),
        v.not_after.timestamp().saturating_mul(1000),
    ))
}

fn read_optional(path: &Path) -> Result<Option<String>, CaError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CaError::io(path)(e)),
    }
}

fn read_required(path: &Path) -> Result<String, CaError> {
    fs::read_to_string(path).map_err(CaError::io(path))
}

/// Writes `data` to `dir/name` durably with `mode` (shared with swarmd's autolock files).
pub fn write_atomic(dir: &Path, name: &str, data: &[u8], mode: u32) -> Result<(), CaError> {
    let tmp: PathBuf = dir.join(format!(".{name}.tmp"));
    let dst = dir.join(name);
    // A leftover temporary file may have other permissions; `mode` only applies on creation.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CaError::io(&tmp)(e)),
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(CaError::io(&tmp))?;
    // The umask may have narrowed `mode`; set it exactly.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(CaError::io(&tmp))?;
    f.write_all(data).map_err(CaError::io(&tmp))?;
    f.sync_all().map_err(CaError::io(&tmp))?;
    drop(f);
    fs::rename(&tmp, &dst).map_err(CaError::io(&dst))?;
    // Make the rename itself durable.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(CaError::io(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RootCa;

    const DAY_MS: i64 = 24 * 3600 * 1000;

    fn creds(role: NodeRole) -> NodeCredentials {
        let root = RootCa::generate().expect("root");
        let (cert, key) = root
            .issue("node1", role, "cluster1", 90 * DAY_MS)
            .expect("issue");
        NodeCredentials::from_pems(cert, key, root.cert_pem().to_string()).expect("creds")
    }

    #[test]
    fn save_then_load_round_trips_with_private_key_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(NodeCredentials::load(dir.path()).expect("load").is_none());

        let c = creds(NodeRole::Worker);
        c.save(dir.path()).expect("save");
        let back = NodeCredentials::load(dir.path())
            .expect("load")
            .expect("present");
        assert_eq!(back.node_id, "node1");
        assert_eq!(back.role, NodeRole::Worker);
        assert_eq!(back.cluster_id, "cluster1");
        assert_eq!(back.cert_pem, c.cert_pem);
        assert_eq!(back.key_pem, c.key_pem);
        assert_eq!(back.root_pem, c.root_pem);

        let certs = dir.path().join(CERT_DIR);
        let mode = |n: &str| {
            fs::metadata(certs.join(n))
                .expect("stat")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(NODE_KEY_FILE), 0o600);
        assert_eq!(mode(NODE_CERT_FILE), 0o644);
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(&certs)
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");

        // Saving again (renewal) replaces the files.
        let c2 = creds(NodeRole::Manager);
        c2.save(dir.path()).expect("save again");
        let back = NodeCredentials::load(dir.path())
            .expect("load")
            .expect("present");
        assert_eq!(back.role, NodeRole::Manager);
        assert_eq!(mode(NODE_KEY_FILE), 0o600);
    }

    #[test]
    fn missing_key_or_mismatched_key_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = creds(NodeRole::Worker);
        c.save(dir.path()).expect("save");
        let certs = dir.path().join(CERT_DIR);

        let other = creds(NodeRole::Worker);
        fs::write(certs.join(NODE_KEY_FILE), &other.key_pem).expect("write");
        let err = NodeCredentials::load(dir.path()).expect_err("mismatch");
        assert!(err.to_string().contains("does not belong"), "{err}");

        fs::remove_file(certs.join(NODE_KEY_FILE)).expect("rm");
        let err = NodeCredentials::load(dir.path()).expect_err("missing key");
        assert!(err.to_string().contains(NODE_KEY_FILE), "{err}");
    }

    #[test]
    fn renewal_point_is_between_half_and_four_fifths_of_life() {
        let c = creds(NodeRole::Worker);
        let exp = c.expires_at_ms().expect("expiry");
        let now = swarm_api::now_ms();
        // Expiry is 90 days out (give a minute of slack for slow test machines).
        assert!((exp - (now + 90 * DAY_MS)).abs() < 60_000, "{exp} vs {now}");
        for _ in 0..20 {
            let at = c.renew_at_ms().expect("renew");
            // Validity starts 1 h back, but the life counts from issuance: 90 days.
            let life = exp - now;
            assert!(at >= now + life / 2 - 60_000, "too early");
            assert!(at <= now + life * 8 / 10 + 60_000, "too late");
        }
        // The shortest life a cluster allows (1 h, as long as the backdate) still renews
        // between 30 and 48 minutes from now, not at once.
        let root = RootCa::generate().expect("root");
        let (cert, key) = root
            .issue("n", NodeRole::Worker, "c", 3600 * 1000)
            .expect("issue");
        let short =
            NodeCredentials::from_pems(cert, key, root.cert_pem().to_string()).expect("creds");
        for _ in 0..20 {
            let wait = short.renew_at_ms().expect("renew") - now;
            assert!(wait >= 30 * 60_000 - 60_000, "too early: {wait} ms");
            assert!(wait <= 48 * 60_000 + 60_000, "too late: {wait} ms");
        }
    }

    #[test]
    fn sealed_key_loads_only_with_the_unlock_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let c = creds(NodeRole::Manager);
        let key = UnlockKey::generate();
        c.save_with(dir.path(), Some(&key)).expect("save sealed");
        assert!(NodeCredentials::is_locked(dir.path()));
        let on_disk = fs::read(dir.path().join(CERT_DIR).join(NODE_KEY_FILE)).expect("read");
        assert!(!String::from_utf8_lossy(&on_disk).contains("PRIVATE KEY"));
        let err = NodeCredentials::load(dir.path()).expect_err("locked");
        assert!(err.to_string().contains("locked"), "{err}");
        let wrong = NodeCredentials::load_with(dir.path(), Some(&UnlockKey::generate()))
            .expect_err("wrong key");
        assert!(wrong.to_string().contains("invalid unlock key"), "{wrong}");
        let back = NodeCredentials::load_with(dir.path(), Some(&key))
            .expect("load")
            .expect("present");
        assert_eq!(back.key_pem, c.key_pem);
        // Saved plain again (autolock off): loads without a key.
        back.save(dir.path()).expect("save plain");
        assert!(!NodeCredentials::is_locked(dir.path()));
        assert!(NodeCredentials::load(dir.path()).expect("load").is_some());
    }
}
