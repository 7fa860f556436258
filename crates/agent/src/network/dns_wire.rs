//! The DNS wire format, as far as the tasks' resolver needs it: reading a query's one
//! question and writing an answer of A records (or an empty answer, or an error code). Pure
//! functions over bytes that come from tasks: anything malformed is an `Err`, never a panic
//! (the property tests below feed it arbitrary bytes).

use std::net::Ipv4Addr;

pub const TYPE_A: u16 = 1;
#[cfg(test)]
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const HEADER: usize = 12;

/// Response codes we answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
}

/// A query's question, with what the answer needs to echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: u16,
    /// Recursion desired, echoed in the answer.
    pub rd: bool,
    /// The name asked, lower-case, without the trailing dot.
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    /// The question section as sent (name, type, class), echoed in the answer.
    raw: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("shorter than a DNS header")]
    Short,
    #[error("not a standard query")]
    NotQuery,
    #[error("a query must hold exactly one question")]
    Questions,
    #[error("malformed name")]
    Name,
    #[error("the question is cut short")]
    Truncated,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Reads the one question of a standard query.
pub fn parse_query(b: &[u8]) -> Result<Question, WireError> {
    if b.len() < HEADER {
        return Err(WireError::Short);
    }
    let id = u16_at(b, 0).ok_or(WireError::Short)?;
    let flags = u16_at(b, 2).ok_or(WireError::Short)?;
    // QR must be 0 (a query) and the opcode 0 (QUERY).
    if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 {
        return Err(WireError::NotQuery);
    }
    if u16_at(b, 4) != Some(1) {
        return Err(WireError::Questions);
    }
    let mut at = HEADER;
    let mut labels: Vec<String> = Vec::new();
    let mut total = 0usize;
    loop {
        let len = *b.get(at).ok_or(WireError::Truncated)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        // Compression pointers (and the reserved label types) have no place in a question.
        if len > 63 {
            return Err(WireError::Name);
        }
        total += len + 1;
        if total > 255 {
            return Err(WireError::Name);
        }
        let label = b.get(at..at + len).ok_or(WireError::Truncated)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16_at(b, at).ok_or(WireError::Truncated)?;
    let qclass = u16_at(b, at + 2).ok_or(WireError::Truncated)?;
    let raw = b.get(HEADER..at + 4).ok_or(WireError::Truncated)?.to_vec();
    Ok(Question {
        id,
        rd: flags & 0x0100 != 0,
        name: labels.join("."),
        qtype,
        qclass,
        raw,
    })
}

/// The answer to `q`: `addrs` as A records with `ttl` (none for an empty answer), or the
/// error `rcode`.
pub fn answer(q: &Question, rcode: Rcode, addrs: &[Ipv4Addr], ttl: u32) -> Vec<u8> {
    let addrs = if rcode == Rcode::NoError && q.qtype == TYPE_A && q.qclass == CLASS_IN {
        addrs
    } else {
        &[]
    };
    let mut out = Vec::with_capacity(HEADER + q.raw.len() + addrs.len() * 16);
    out.extend_from_slice(&q.id.to_be_bytes());
    // QR, AA, RD as asked, RA; the rcode in the low bits.
    let flags: u16 = 0x8000 | 0x0400 | if q.rd { 0x0100 } else { 0 } | 0x0080 | rcode as u16;
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    // At most 255 answers fit the count we keep, far more than a UDP answer carries.
    let count = addrs.len().min(255);
    out.extend_from_slice(&(count as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&q.raw);
    for a in addrs.iter().take(count) {
        // The name: a pointer to the question's, at offset 12.
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&a.octets());
    }
    out
}

/// A FORMERR answer to bytes that did not parse, when at least the ID can be read.
pub fn format_error(b: &[u8]) -> Option<Vec<u8>> {
    let id = u16_at(b, 0)?;
    let mut out = Vec::with_capacity(HEADER);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(0x8000u16 | Rcode::FormErr as u16).to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// A query as a stub resolver sends it.
    pub(crate) fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&0x0100u16.to_be_bytes());
        b.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name.split('.') {
            b.push(l.len() as u8);
            b.extend_from_slice(l.as_bytes());
        }
        b.push(0);
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&1u16.to_be_bytes());
        b
    }

    #[test]
    fn a_query_is_read_and_answered() {
        let q = parse_query(&query(0xbeef, "Tasks.API", TYPE_A)).unwrap();
        assert_eq!(
            (q.id, q.name.as_str(), q.qtype, q.rd),
            (0xbeef, "tasks.api", 1, true)
        );
        let a = answer(&q, Rcode::NoError, &["10.0.1.3".parse().unwrap()], 1);
        assert_eq!(&a[0..2], &[0xbe, 0xef]);
        assert_eq!(u16_at(&a, 6), Some(1), "one answer");
        assert_eq!(&a[a.len() - 4..], &[10, 0, 1, 3]);
        let aaaa = parse_query(&query(1, "api", TYPE_AAAA)).unwrap();
        let a = answer(&aaaa, Rcode::NoError, &["10.0.1.3".parse().unwrap()], 1);
        assert_eq!(u16_at(&a, 6), Some(0), "no A records for an AAAA question");
    }

    #[test]
    fn malformed_queries_are_refused() {
        assert_eq!(parse_query(&[1, 2, 3]), Err(WireError::Short));
        let mut pointer = query(1, "api", TYPE_A);
        pointer[12] = 0xc0;
        assert_eq!(parse_query(&pointer), Err(WireError::Name));
        let cut = query(1, "api", TYPE_A);
        assert_eq!(
            parse_query(&cut[..cut.len() - 1]),
            Err(WireError::Truncated)
        );
        let mut response = query(1, "api", TYPE_A);
        response[2] |= 0x80;
        assert_eq!(parse_query(&response), Err(WireError::NotQuery));
        let long = vec!["a".repeat(63); 5].join(".");
        assert_eq!(parse_query(&query(1, &long, TYPE_A)), Err(WireError::Name));
        assert_eq!(format_error(&[7, 8, 9]).unwrap()[..2], [7, 8]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(q) = parse_query(&bytes) {
                let _ = answer(&q, Rcode::NoError, &[Ipv4Addr::LOCALHOST], 1);
            }
            let _ = format_error(&bytes);
        }

        #[test]
        fn mangled_queries_never_panic(
            name in "[a-z0-9]{1,20}(\\.[a-z0-9]{1,20}){0,3}",
            at in 0usize..64,
            byte in any::<u8>(),
        ) {
            let mut b = query(9, &name, TYPE_A);
            let i = at % b.len();
            b[i] = byte;
            let _ = parse_query(&b).map(|q| answer(&q, Rcode::NoError, &[], 0));
        }
    }
}
