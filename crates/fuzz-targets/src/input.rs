//! Splitting one fuzz input into the parts a target needs (a selector byte, strings, a body),
//! so that the fuzzer can vary each part on its own.

/// The first byte (0 when there is none) and the rest.
pub fn first_byte(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (b, rest),
        None => (0, data),
    }
}

/// The first byte picks among `n` choices; the rest is the payload.
pub fn choose(data: &[u8], n: u8) -> (u8, &[u8]) {
    let (b, rest) = first_byte(data);
    (b % n.max(1), rest)
}

/// Parts of `data`, each a u16 (little endian) length and that many bytes; the last part takes
/// what is left. Frames are binary and hold zeros, so NUL does not separate them.
pub fn length_prefixed(mut data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() && out.len() < max {
        let (len, rest) = match data {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            _ => (data.len(), data),
        };
        let len = len.min(rest.len());
        out.push(&rest[..len]);
        data = &rest[len..];
    }
    out
}

/// `data` cut at NUL bytes into at most `n` parts (the last keeps any further NULs).
pub fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |&b| b == 0).collect()
}

/// Bytes as text the way a server sees them: invalid UTF-8 replaced, as a lossy reader would.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_at_their_lengths() {
        assert_eq!(
            length_prefixed(&[2, 0, b'a', b'b', 1, 0, b'c', b'z'], 8),
            vec![&b"ab"[..], &b"c"[..], &b"z"[..]]
        );
    }
}
