//! Join tokens: `SWMTKN-1-<root CA digest>-<secret>`. Owns their format only; which token
//! grants which role, and rotating them, belong to the manager.

use rand::RngCore;

use crate::root::RootCa;
use crate::CaError;

/// Every join token starts with this.
pub const TOKEN_PREFIX: &str = "SWMTKN";
/// The only token format version we read and write.
pub const TOKEN_VERSION: &str = "1";
/// SHA-256 (256 bits) in base36.
const DIGEST_LEN: usize = 50;
/// 128 random bits in base36.
const SECRET_LEN: usize = 25;

/// A parsed join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// Base36 SHA-256 of the root CA certificate the joining node must find at the manager.
    pub ca_digest: String,
    /// The random part the manager compares against its worker and manager tokens.
    pub secret: String,
}

/// A new token for `root`, with a fresh 128-bit secret.
pub fn generate_join_token(root: &RootCa) -> String {
    let mut secret = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut secret);
    format!(
        "{TOKEN_PREFIX}-{TOKEN_VERSION}-{}-{}",
        root.digest(),
        swarm_api::ids::base36(&secret, SECRET_LEN)
    )
}

/// The same token (same secret) for another root: after a root rotation the tokens name the
/// new root's digest, and what operators hold changes only in that part.
pub fn retarget_join_token(token: &str, root: &RootCa) -> Result<String, CaError> {
    let t = parse_join_token(token)?;
    Ok(format!(
        "{TOKEN_PREFIX}-{TOKEN_VERSION}-{}-{}",
        root.digest(),
        t.secret
    ))
}

/// Parses and checks a token's shape. Errors say which part is wrong.
pub fn parse_join_token(s: &str) -> Result<JoinToken, CaError> {
    let s = s.trim();
    let parts: Vec<&str> = s.split('-').collect();
    if parts.first() != Some(&TOKEN_PREFIX) {
        return Err(CaError::Token(format!(
            "wrong prefix, expected {TOKEN_PREFIX}-{TOKEN_VERSION}"
        )));
    }
    if parts.len() != 4 {
        return Err(CaError::Token(format!(
            "expected 4 dash-separated parts ({TOKEN_PREFIX}-{TOKEN_VERSION}-<digest>-<secret>), found {}",
            parts.len()
        )));
    }
    if parts[1] != TOKEN_VERSION {
        return Err(CaError::Token(format!(
            "unsupported version {:?}, expected {TOKEN_VERSION}",
            parts[1]
        )));
    }
    let ca_digest = check_part("root CA digest", parts[2], DIGEST_LEN)?;
    let secret = check_part("secret", parts[3], SECRET_LEN)?;
    Ok(JoinToken { ca_digest, secret })
}

fn check_part(what: &str, part: &str, len: usize) -> Result<String, CaError> {
    if part.len() != len {
        return Err(CaError::Token(format!(
            "{what} has {} characters, expected {len}",
            part.len()
        )));
    }
    if !part
        .bytes()
        .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    {
        return Err(CaError::Token(format!(
            "{what} is not base36 (only 0-9 and a-z allowed)"
        )));
    }
    Ok(part.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> RootCa {
        RootCa::generate().expect("root")
    }

    #[test]
    fn generate_then_parse_round_trips() {
        let root = root();
        let tok = generate_join_token(&root);
        let parsed = parse_join_token(&tok).expect("parse");
        assert_eq!(parsed.ca_digest, root.digest());
        assert_eq!(parsed.secret.len(), 25);
        assert_eq!(
            tok,
            format!("SWMTKN-1-{}-{}", parsed.ca_digest, parsed.secret)
        );
        let other_root = RootCa::generate().expect("root");
        let moved = retarget_join_token(&tok, &other_root).expect("retarget");
        let m = parse_join_token(&moved).expect("parse");
        assert_eq!(m.ca_digest, other_root.digest());
        assert_eq!(m.secret, parsed.secret);
        // Secrets are random.
        let other = parse_join_token(&generate_join_token(&root)).expect("parse");
        assert_ne!(parsed.secret, other.secret);
    }

    fn err(s: &str) -> String {
        match parse_join_token(s) {
            Ok(t) => panic!("{s:?} was accepted as {t:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn malformed_tokens_are_refused_with_a_reason() {
        let d = "a".repeat(50);
        let s = "b".repeat(25);
        assert!(parse_join_token(&format!("SWMTKN-1-{d}-{s}")).is_ok());

        assert!(err(&format!("SWMKEY-1-{d}-{s}")).contains("wrong prefix"));
        assert!(err("").contains("wrong prefix"));
        assert!(err(&format!("SWMTKN-2-{d}-{s}")).contains("version"));
        assert!(err(&format!("SWMTKN-1-{d}")).contains("4 dash-separated parts"));
        assert!(err(&format!("SWMTKN-1-{d}-{s}-x")).contains("4 dash-separated parts"));
        assert!(err(&format!("SWMTKN-1-{}-{s}", &d[..49])).contains("digest has 49"));
        assert!(err(&format!("SWMTKN-1-{d}-{}", &s[..24])).contains("secret has 24"));
        assert!(err(&format!("SWMTKN-1-{}-{s}", "A".repeat(50))).contains("not base36"));
        assert!(err(&format!("SWMTKN-1-{d}-{}_", &s[..24])).contains("secret is not base36"));
        // One line, prefixed so the user knows it is about the token.
        let msg = err("nope");
        assert!(msg.starts_with("join token: "));
        assert!(!msg.contains('\n'));
    }
}
