//! Splitting one fuzz input into the parts a target needs (a selector byte, strings, a body),
//! so that the fuzzer can vary each part on its own.

/// The first byte picks among `n` choices; the rest is the payload.
pub fn choose(data: &[u8], n: u8) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (b % n.max(1), rest),
        None => (0, data),
    }
}

/// `data` cut at NUL bytes into at most `n` parts (the last keeps any further NULs).
pub fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |&b| b == 0).collect()
}

/// Bytes as text the way a server sees them: invalid UTF-8 replaced, as a lossy reader would.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
