//! The little IP prefix arithmetic the planner needs (router port networks such as
//! `10.0.0.1/24`, their subnets, overlap).

use std::fmt;
use std::net::IpAddr;

/// An address with a prefix length, e.g. a router port network `10.0.0.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    /// The address (host bits kept).
    pub addr: IpAddr,
    /// The prefix length.
    pub len: u8,
}

impl Cidr {
    /// Parses `ADDR/LEN` (or a bare address, as a host prefix).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            Some(l) => l.trim().parse::<u8>().ok().filter(|l| *l <= max)?,
            None => max,
        };
        Some(Cidr { addr, len })
    }

    /// True for IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The address as a host prefix (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr {
            addr,
            len: if addr.is_ipv4() { 32 } else { 128 },
        }
    }

    fn bits(addr: IpAddr) -> (u128, u8) {
        match addr {
            IpAddr::V4(a) => (u32::from(a) as u128, 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        }
    }

    fn mask(width: u8, len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            let ones = u128::MAX << (128 - len as u32);
            ones >> (128 - width as u32)
        }
    }

    /// The network: host bits cleared.
    pub fn network(&self) -> Cidr {
        let (v, w) = Self::bits(self.addr);
        let n = v & Self::mask(w, self.len);
        let addr = match self.addr {
            IpAddr::V4(_) => IpAddr::V4((n as u32).into()),
            IpAddr::V6(_) => IpAddr::V6(n.into()),
        };
        Cidr {
            addr,
            len: self.len,
        }
    }

    /// True when the two prefixes share an address (same family, one contains the other).
    pub fn overlaps(&self, other: &Cidr) -> bool {
        if self.is_ipv4() != other.is_ipv4() {
            return false;
        }
        let len = self.len.min(other.len);
        let (a, w) = Self::bits(self.addr);
        let (b, _) = Self::bits(other.addr);
        let m = Self::mask(w, len);
        a & m == b & m
    }

    /// True for IPv6 link-local addresses (fe80::/10), which are not a network's gateway.
    pub fn is_link_local(&self) -> bool {
        match self.addr {
            IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
            IpAddr::V4(_) => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_network_overlap() {
        let c = Cidr::parse("10.0.1.1/24").unwrap();
        assert_eq!(c.network().to_string(), "10.0.1.0/24");
        assert_eq!(
            Cidr::parse("fd00:1::1/64").unwrap().network().to_string(),
            "fd00:1::/64"
        );
        assert_eq!(Cidr::parse("10.0.0.1").unwrap().len, 32);
        assert!(Cidr::parse("10.0.0.1/33").is_none());
        assert!(Cidr::parse("x/1").is_none());
        let a = Cidr::parse("10.0.0.0/16").unwrap();
        assert!(a.overlaps(&Cidr::parse("10.0.5.0/24").unwrap()));
        assert!(!a.overlaps(&Cidr::parse("10.1.0.0/24").unwrap()));
        assert!(!a.overlaps(&Cidr::parse("fd00::/8").unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().overlaps(&a));
        assert!(Cidr::parse("fe80::1/64").unwrap().is_link_local());
    }
}
