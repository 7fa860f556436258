//! IPv4 subnets and interface addresses as the network objects hold them ("10.0.1.0/24",
//! "10.0.1.5/24"): parsing with a one-line reason, containment, overlap, and the host range
//! the allocator hands out. Pure arithmetic on `u32`; knows nothing of the store.

use std::fmt;
use std::net::Ipv4Addr;

/// A subnet: a network address and a prefix length, host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    base: u32,
    len: u8,
}

/// Why a CIDR or address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not a CIDR (want a.b.c.d/n)")]
    Malformed(String),
    #[error("{0:?} is not an IPv4 address")]
    BadAddress(String),
    #[error("prefix length in {0:?} must be 0-32")]
    BadPrefix(String),
    #[error("{given} is not a network address (did you mean {meant}?)")]
    HostBitsSet { given: String, meant: Subnet },
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn split_cidr(s: &str) -> Result<(u32, u8), CidrError> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| CidrError::Malformed(s.to_string()))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| CidrError::BadAddress(ip.to_string()))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| CidrError::BadPrefix(s.to_string()))?;
    Ok((u32::from(ip), len))
}

impl Subnet {
    /// Parses "10.0.1.0/24"; host bits must be zero.
    pub fn parse(s: &str) -> Result<Subnet, CidrError> {
        let (ip, len) = split_cidr(s.trim())?;
        let meant = Subnet {
            base: ip & mask(len),
            len,
        };
        if meant.base != ip {
            return Err(CidrError::HostBitsSet {
                given: s.trim().to_string(),
                meant,
            });
        }
        Ok(meant)
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    fn last(&self) -> u32 {
        self.base | !mask(self.len)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.len) == self.base
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.base <= other.last() && other.base <= self.last()
    }

    /// Addresses a host may hold: all but the network and broadcast addresses (a /31 or /32
    /// has none).
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let (first, last) = if self.len >= 31 {
            (1, 0)
        } else {
            (self.base + 1, self.last() - 1)
        };
        (first..=last).map(Ipv4Addr::from)
    }

    /// How many host addresses `hosts` yields.
    pub fn host_count(&self) -> u64 {
        if self.len >= 31 {
            0
        } else {
            (1u64 << (32 - u32::from(self.len))) - 2
        }
    }

    /// True for an address `hosts` would yield.
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        self.len < 31 && ip > self.base && ip < self.last() && self.contains(Ipv4Addr::from(ip))
    }

    /// The first host address: the default gateway.
    pub fn first_host(&self) -> Option<Ipv4Addr> {
        self.hosts().next()
    }

    /// The subnets of length `len` inside this one, in address order (none when `len` is
    /// shorter than this subnet's own).
    pub fn carve(&self, len: u8) -> impl Iterator<Item = Subnet> {
        let base = self.base;
        let count: u64 = if len < self.len || len > 32 {
            0
        } else {
            1u64 << (len - self.len)
        };
        let step = 1u64 << (32 - u32::from(len.min(32)));
        (0..count).map(move |i| Subnet {
            // Stays within the parent subnet, so within u32.
            base: (u64::from(base) + i * step) as u32,
            len,
        })
    }

    /// "10.0.1.5/24": an address of this subnet with its prefix length.
    pub fn address(&self, ip: Ipv4Addr) -> String {
        format!("{ip}/{}", self.len)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.len)
    }
}

/// Parses an interface address "10.0.1.5/24" into the address and its subnet.
pub fn parse_address(s: &str) -> Result<(Ipv4Addr, Subnet), CidrError> {
    let (ip, len) = split_cidr(s.trim())?;
    Ok((
        Ipv4Addr::from(ip),
        Subnet {
            base: ip & mask(len),
            len,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_with_reasons() {
        let s = Subnet::parse("10.0.1.0/24").unwrap();
        assert_eq!(s.to_string(), "10.0.1.0/24");
        assert_eq!(s.host_count(), 254);
        assert!(matches!(
            Subnet::parse("10.0.1/24"),
            Err(CidrError::BadAddress(_))
        ));
        assert!(matches!(
            Subnet::parse("10.0.1.0"),
            Err(CidrError::Malformed(_))
        ));
        assert!(matches!(
            Subnet::parse("10.0.1.0/33"),
            Err(CidrError::BadPrefix(_))
        ));
        let e = Subnet::parse("10.0.1.5/24").unwrap_err();
        assert_eq!(
            e.to_string(),
            "10.0.1.5/24 is not a network address (did you mean 10.0.1.0/24?)"
        );
    }

    #[test]
    fn overlap_contains_hosts_and_carving() {
        let big = Subnet::parse("10.0.0.0/16").unwrap();
        let small = Subnet::parse("10.0.3.0/24").unwrap();
        let other = Subnet::parse("10.1.0.0/24").unwrap();
        assert!(big.overlaps(&small) && small.overlaps(&big));
        assert!(!big.overlaps(&other));
        assert!(small.contains("10.0.3.255".parse().unwrap()));
        assert!(!small.is_host("10.0.3.255".parse().unwrap()));
        assert!(!small.is_host("10.0.3.0".parse().unwrap()));
        assert!(small.is_host("10.0.3.1".parse().unwrap()));
        assert_eq!(small.first_host(), Some("10.0.3.1".parse().unwrap()));
        assert_eq!(small.hosts().count() as u64, small.host_count());
        let carved: Vec<String> = big.carve(24).take(2).map(|s| s.to_string()).collect();
        assert_eq!(carved, ["10.0.0.0/24", "10.0.1.0/24"]);
        assert_eq!(big.carve(24).count(), 256);
        assert_eq!(small.carve(16).count(), 0);
        let all = Subnet::parse("0.0.0.0/0").unwrap();
        assert_eq!(all.carve(1).last().unwrap().to_string(), "128.0.0.0/1");
        assert_eq!(
            parse_address("10.0.3.7/24").unwrap(),
            ("10.0.3.7".parse().unwrap(), small)
        );
    }
}
