//! Autolock: the unlock key (`SWMKEY-1-<64 hex digits>`, 256 random bits) and the sealed file
//! format that managers keep their local keys in while autolock is on.
//!
//! Owns: the key's text form and the seal/open primitives. Must not touch: which files are
//! sealed or when (swarmd's autolock module decides), or where the key is stored (the
//! cluster object, through the control API).
//!
//! A sealed file is `SWARM-SEALED-1\n` followed by a 24-byte nonce and the XChaCha20-Poly1305
//! ciphertext of the content, under a key derived from the unlock key with HKDF-SHA256 and the
//! file's purpose as additional data, so a sealed TLS key cannot be passed off as a sealed
//! Raft seed or the other way round.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::CaError;

/// What every unlock key starts with.
pub const UNLOCK_KEY_PREFIX: &str = "SWMKEY-1-";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const MAGIC: &[u8] = b"SWARM-SEALED-1\n";
const HKDF_INFO: &[u8] = b"swarm autolock v1";

/// An unlock key, wiped on drop and never printed by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct UnlockKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for UnlockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockKey(..)")
    }
}

impl UnlockKey {
    /// A fresh random key.
    pub fn generate() -> UnlockKey {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        rand::thread_rng().fill_bytes(k.as_mut_slice());
        UnlockKey(k)
    }

    /// Parses `SWMKEY-1-<64 hex digits>`; the error says what is wrong, never the key.
    pub fn parse(s: &str) -> Result<UnlockKey, CaError> {
        let s = s.trim();
        let hex = s
            .strip_prefix(UNLOCK_KEY_PREFIX)
            .ok_or_else(|| CaError::UnlockKey(format!("must start with {UNLOCK_KEY_PREFIX}")))?;
        if hex.len() != KEY_LEN * 2 {
            return Err(CaError::UnlockKey(format!(
                "expected {} hex digits after {UNLOCK_KEY_PREFIX}, found {}",
                KEY_LEN * 2,
                hex.len()
            )));
        }
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("zz"), 16)
                .map_err(|_| CaError::UnlockKey("not hexadecimal".into()))?;
        }
        Ok(UnlockKey(k))
    }

    /// The key's text form: what operators keep and type back.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(UNLOCK_KEY_PREFIX.len() + KEY_LEN * 2));
        s.push_str(UNLOCK_KEY_PREFIX);
        for b in self.0.iter() {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        // 32 bytes is far below HKDF-SHA256's limit, so expand cannot fail.
        let _ = Hkdf::<Sha256>::new(None, self.0.as_slice()).expand(HKDF_INFO, k.as_mut_slice());
        XChaCha20Poly1305::new(k.as_slice().into())
    }

    /// Seals `plain` for a file whose purpose is `purpose`.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Result<Vec<u8>, CaError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| CaError::UnlockKey("sealing failed".into()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + ct.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens what [`UnlockKey::seal`] sealed for `purpose`. A wrong key (or a file sealed for
    /// another purpose, or tampered with) is an error.
    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CaError> {
        let body = sealed
            .strip_prefix(MAGIC)
            .ok_or_else(|| CaError::UnlockKey("file is not sealed".into()))?;
        if body.len() < NONCE_LEN + 16 {
            return Err(CaError::UnlockKey("sealed file is truncated".into()));
        }
        let (nonce, ct) = body.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: purpose.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                CaError::UnlockKey("invalid unlock key: it does not open this node's keys".into())
            })
    }
}

/// Whether `data` is a sealed file (autolock on when it was written).
pub fn is_sealed(data: &[u8]) -> bool {
    data.starts_with(MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_bad_keys_are_named() {
        let k = UnlockKey::generate();
        let text = k.to_text();
        assert!(
            text.starts_with("SWMKEY-1-") && text.len() == 9 + 64,
            "{}",
            *text
        );
        assert_eq!(UnlockKey::parse(&text).expect("parse"), k);
        assert_ne!(UnlockKey::generate(), k);
        assert!(format!("{k:?}").contains(".."));
        for bad in [
            "",
            "SWMTKN-1-00",
            "SWMKEY-1-abc",
            &format!("SWMKEY-1-{}", "g".repeat(64)),
        ] {
            let e = UnlockKey::parse(bad).expect_err(bad).to_string();
            assert!(e.starts_with("unlock key: "), "{e}");
        }
    }

    #[test]
    fn sealed_data_opens_only_with_its_key_and_purpose() {
        let k = UnlockKey::generate();
        let sealed = k.seal("tls-key", b"secret material").expect("seal");
        assert!(is_sealed(&sealed));
        assert!(!is_sealed(b"-----BEGIN PRIVATE KEY-----"));
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            k.open("tls-key", &sealed).expect("open").as_slice(),
            b"secret material"
        );
        assert!(k.open("raft-seed", &sealed).is_err());
        let wrong = UnlockKey::generate()
            .open("tls-key", &sealed)
            .expect_err("wrong key");
        assert!(wrong.to_string().contains("invalid unlock key"), "{wrong}");
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(k.open("tls-key", &tampered).is_err());
    }
}
