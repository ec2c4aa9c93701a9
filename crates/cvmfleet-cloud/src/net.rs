//! IPv4 blocks: parsing CIDRs and handing out free addresses.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv4 block such as `10.0.1.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: u32,
    prefix: u8,
}

/// The text is not an IPv4 CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IPv4 CIDR block such as 10.0.1.0/24")]
pub struct BadCidr(pub String);

impl Cidr {
    /// A block from its address and prefix length; host bits are cleared and the prefix is
    /// capped at 32, so every input gives a valid block.
    #[must_use]
    pub const fn literal(octets: [u8; 4], prefix: u8) -> Cidr {
        let prefix = if prefix > 32 { 32 } else { prefix };
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix as u32) };
        Cidr { network: u32::from_be_bytes(octets) & mask, prefix }
    }

    /// The first address (the network address).
    #[must_use]
    pub fn network(self) -> u32 {
        self.network
    }

    /// The number of addresses in the block.
    #[must_use]
    pub fn size(self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) }
    }

    /// Whether the block holds the address.
    #[must_use]
    pub fn contains(self, ip: u32) -> bool {
        ip & self.mask() == self.network
    }

    /// Whether the address is one a host may not use: the network address, the gateway (the
    /// first host, as in Tencent VPCs) or the broadcast address. Blocks smaller than /30 have
    /// no such reservations.
    #[must_use]
    pub fn is_reserved(self, ip: u32) -> bool {
        if self.prefix >= 30 {
            return false;
        }
        let last = self.network | !self.mask();
        ip == self.network || ip == self.network.wrapping_add(1) || ip == last
    }
}

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCidr(s.to_owned());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let cidr = Cidr { network: u32::from(addr), prefix };
        if cidr.network & cidr.mask() != cidr.network {
            return Err(bad());
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a dotted IPv4 address strictly (four decimal octets, no leading zeros).
#[must_use]
pub fn parse_ipv4(s: &str) -> Option<u32> {
    let ip: Ipv4Addr = s.parse().ok()?;
    Some(u32::from(ip))
}

/// Formats an address.
#[must_use]
pub fn format_ipv4(ip: u32) -> String {
    Ipv4Addr::from(ip).to_string()
}

/// Finds `count` free host addresses in `cidr`, scanning from `cursor` and wrapping around.
///
/// `used` says whether an address is taken; reserved addresses are skipped. Returns `None` when
/// the block has fewer free addresses than asked for.
pub fn find_free(cidr: Cidr, cursor: u32, count: usize, used: impl Fn(u32) -> bool) -> Option<Vec<u32>> {
    let size = cidr.size();
    let start = if cidr.contains(cursor) { u64::from(cursor - cidr.network()) } else { 0 };
    let mut out = Vec::with_capacity(count);
    let mut taken = HashSet::new();
    for step in 0..size {
        if out.len() == count {
            break;
        }
        let offset = (start + step) % size;
        let Ok(offset) = u32::try_from(offset) else { continue };
        let ip = cidr.network().wrapping_add(offset);
        if cidr.is_reserved(ip) || used(ip) || !taken.insert(ip) {
            continue;
        }
        out.push(ip);
    }
    (out.len() == count).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_contains() {
        let c: Cidr = "10.0.0.0/24".parse().unwrap();
        assert!(c.contains(parse_ipv4("10.0.0.18").unwrap()));
        assert!(!c.contains(parse_ipv4("10.0.1.18").unwrap()));
        assert_eq!(c.to_string(), "10.0.0.0/24");
        assert_eq!(c.size(), 256);
        assert!(c.is_reserved(parse_ipv4("10.0.0.0").unwrap()));
        assert!(c.is_reserved(parse_ipv4("10.0.0.1").unwrap()));
        assert!(c.is_reserved(parse_ipv4("10.0.0.255").unwrap()));
        assert!(!c.is_reserved(parse_ipv4("10.0.0.2").unwrap()));
        for bad in ["10.0.0.1/24", "10.0.0.0", "10.0.0.0/33", "x/8", "10.0.0/8"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn strict_addresses() {
        assert_eq!(parse_ipv4("10.0.0.18"), Some(0x0a00_0012));
        for bad in ["10.0.0", "10.0.0.256", "10.0.0.018", " 10.0.0.1", "a.b.c.d"] {
            assert_eq!(parse_ipv4(bad), None, "{bad}");
        }
    }

    #[test]
    fn allocation_skips_reserved_and_used_and_wraps() {
        let c: Cidr = "10.0.0.0/29".parse().unwrap();
        let used = |ip: u32| ip == parse_ipv4("10.0.0.3").unwrap();
        let got = find_free(c, parse_ipv4("10.0.0.5").unwrap(), 4, used).unwrap();
        let got: Vec<String> = got.into_iter().map(format_ipv4).collect();
        assert_eq!(got, ["10.0.0.5", "10.0.0.6", "10.0.0.2", "10.0.0.4"]);
        assert!(find_free(c, 0, 5, used).is_none());
    }
}
