//! Value types of the options and the parsers turning one option's text into them. Parsers return
//! the reason as a `String`; the caller wraps it into [`crate::ConfigError::InvalidValue`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;

/// How tenant networks are advertised (`advertisement_method_tenant_networks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TenantAdvertisement {
    /// `host`: one host route (/32, /128) per tenant IP.
    #[default]
    Host,
    /// `subnet`: the tenant subnet's CIDR, once.
    Subnet,
}

/// The Python agent's `driver`. ovn-route implements the NB driver's design only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// `nb_ovn_bgp_driver`.
    #[default]
    NbOvnBgp,
    /// `ovn_bgp_driver` (the Python SB driver): accepted and treated as the NB driver, with a warning.
    OvnBgp,
}

/// `exposing_method`. Only `underlay` is implemented; the others (`ovn`, `vrf`, `l2vni`, `dynamic`)
/// are refused with an error saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExposingMethod {
    /// `underlay`: expose through the host's kernel routing and FRR in the default underlay.
    #[default]
    Underlay,
}

/// `advertise_method` (ovn-route): how an exposed IP is handed to FRR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdvertiseMethod {
    /// `routes`: a route per exposed IP in the VRF table, marked with `route_protocol`.
    #[default]
    Routes,
    /// `addresses`: a /32 or /128 address per exposed IP on `bgp_nic`, like the Python agent.
    Addresses,
}

/// `rule_method` (ovn-route): how traffic to exposed IPs is steered to the provider bridges' tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuleMethod {
    /// `per-bridge`: one `ip rule ... lookup <table> suppress_prefixlength 0` per provider bridge.
    #[default]
    PerBridge,
    /// `per-ip`: one `ip rule` per exposed IP, like the Python agent.
    PerIp,
}

/// `vrf_mode` (ovn-route): who owns the VRF device and `bgp_nic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VrfMode {
    /// `create`: ovn-route creates (and keeps) the VRF `bgp_vrf` and the dummy `bgp_nic` in it.
    #[default]
    Create,
    /// `existing`: use the devices as they are; never create or delete them.
    Existing,
    /// `none`: no VRF device; FRR imports `bgp_vrf_table_id` directly.
    None,
}

/// One OVSDB remote (`tcp:HOST:PORT`, `ssl:HOST:PORT`, `unix:PATH`): the OVSDB client's own type, so
/// that a remote the configuration accepts is exactly one the client can connect to.
pub use ovsdb::Remote;

/// An IP prefix (`10.0.0.0/8`, `2001:db8::/32`) with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// True for `0.0.0.0/0` and `::/0`.
    pub fn is_default(&self) -> bool {
        self.len == 0
    }

    /// Whether `ip` lies inside the prefix (always false across address families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask32(self.len) & u32::from(ip) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask128(self.len) & u128::from(ip) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl fmt::Display for Prefix {
    /// `ADDR/LEN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = String;

    /// Parses `ADDR/LEN`; a bare address is a host prefix (/32 or /128). Host bits must be zero.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not a CIDR (ADDR/LEN)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: prefix length {l:?} is not 0..{max}")),
            },
        };
        let network = match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(len))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(len))),
        };
        if network != addr {
            return Err(format!(
                "{s:?} has host bits set; did you mean {network}/{len}?"
            ));
        }
        Ok(Prefix { addr, len })
    }
}

/// Splits a comma list (oslo `ListOpt`): items trimmed, empty items dropped, so an empty value is
/// an empty list.
pub(crate) fn list(v: &str) -> Vec<&str> {
    v.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// oslo's booleans, case-insensitive.
pub(crate) fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "t" | "y" => Ok(true),
        "false" | "no" | "off" | "0" | "f" | "n" => Ok(false),
        _ => Err("not a boolean (True/False, yes/no, on/off, 1/0)".into()),
    }
}

/// A decimal integer in `min..=max`; `what` names the kind of number in the error.
pub(crate) fn integer(v: &str, min: u64, max: u64, what: &str) -> Result<u64, String> {
    let digits = v.strip_prefix('+').unwrap_or(v);
    match digits.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) && !digits.starts_with('+') => Ok(n),
        _ => Err(format!("not {what} ({min}..{max})")),
    }
}

/// One line of a value: refuses the newline an indented next line adds.
pub(crate) fn single_line(v: &str) -> Result<&str, String> {
    if v.contains('\n') {
        Err(
            "the value continues on an indented next line (an indented line continues the \
             previous value); remove the indentation"
                .into(),
        )
    } else {
        Ok(v)
    }
}

/// A Linux interface name: 1..15 bytes, no `/`, `:` or whitespace, not `.` or `..`.
pub(crate) fn ifname(v: &str) -> Result<String, String> {
    if v.is_empty() || v.len() > 15 {
        return Err("not an interface name (1 to 15 characters)".into());
    }
    if v == "." || v == ".." || v.contains(|c: char| c == '/' || c == ':' || c.is_whitespace()) {
        return Err("not an interface name (no '/', ':' or whitespace)".into());
    }
    Ok(v.to_string())
}

/// An absolute path.
pub(crate) fn abs_path(v: &str) -> Result<PathBuf, String> {
    if v.starts_with('/') {
        Ok(PathBuf::from(v))
    } else {
        Err("not an absolute path".into())
    }
}

/// Parses one keyword of a fixed set, naming all of them in the error.
pub(crate) fn keyword<T: Copy>(v: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(v))
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<_> = choices.iter().map(|(k, _)| *k).collect();
            format!("not one of {}", names.join(", "))
        })
}

/// The edit distance (Levenshtein) of two ASCII-case-folded strings.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `names` to `wanted` when within edit distance 2.
pub(crate) fn closest<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Option<String> {
    names
        .map(|n| (edit_distance(wanted, n), n))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let p: Prefix = "10.0.0.0/8".parse().unwrap();
        assert!(p.contains("10.1.2.3".parse().unwrap()));
        assert!(!p.contains("11.0.0.1".parse().unwrap()));
        assert!(!p.contains("::1".parse().unwrap()));
        let d: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(d.is_default() && d.contains("1.2.3.4".parse().unwrap()));
        let v6: Prefix = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert_eq!(v6.to_string(), "2001:db8::/32");
        let host: Prefix = "192.0.2.7".parse().unwrap();
        assert_eq!(host.prefix_len(), 32);
        assert!("10.0.0.1/8"
            .parse::<Prefix>()
            .unwrap_err()
            .contains("did you mean 10.0.0.0/8"));
        assert!("10.0.0.0/33".parse::<Prefix>().is_err());
        assert!("::/129".parse::<Prefix>().is_err());
        assert!("nope/8".parse::<Prefix>().is_err());
    }

    #[test]
    fn scalars() {
        for t in ["True", "true", "YES", "1", "on"] {
            assert_eq!(boolean(t), Ok(true));
        }
        for f in ["False", "false", "No", "0", "off"] {
            assert_eq!(boolean(f), Ok(false));
        }
        assert!(boolean("").is_err() && boolean("2").is_err());
        assert_eq!(integer("42", 1, 100, "n"), Ok(42));
        assert_eq!(integer("+42", 1, 100, "n"), Ok(42));
        assert!(integer("0", 1, 100, "n").is_err());
        assert!(integer("-1", 1, 100, "n").is_err());
        assert!(integer("1e3", 1, 10000, "n").is_err());
        assert!(integer("++1", 1, 10000, "n").is_err());
        assert_eq!(list(" a, b ,,c "), vec!["a", "b", "c"]);
        assert!(list("").is_empty());
        assert!(ifname("bgp-nic").is_ok());
        for bad in ["", "a/b", "a b", "sixteen-chars-xx", "..", "a:b"] {
            assert!(ifname(bad).is_err(), "{bad}");
        }
        assert_eq!(edit_distance("bgp_as", "bgp_AS"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            closest("bgp_nik", ["bgp_nic", "bgp_vrf"].into_iter()),
            Some("bgp_nic".into())
        );
        assert_eq!(closest("zzzz", ["bgp_nic"].into_iter()), None);
    }
}
