//! The few sysctls the agent sets (proxy ARP/NDP, forwarding), written under `/proc/sys`.
//!
//! `/proc/sys/net` shows the network namespace of the thread that opens the file: a thread
//! that entered a namespace with `setns` reads and writes that namespace's values (see
//! [`crate::netns::ScratchNetns::run`]). Each setter returns the previous value, and writes
//! nothing when the value is already the wanted one.

use std::path::{Path, PathBuf};

use crate::links::check_link_name;
use crate::Error;

/// One file under `/proc/sys`, read and written in the network namespace of the calling
/// thread (`/proc/sys/net` follows the namespace of the thread that opens it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sysctl {
    path: PathBuf,
}

impl Sysctl {
    /// `net.ipv4.conf.<dev>.proxy_arp`.
    pub fn proxy_arp(dev: &str) -> Result<Self, Error> {
        Self::conf("ipv4", dev, "proxy_arp")
    }

    /// `net.ipv6.conf.<dev>.proxy_ndp`.
    pub fn proxy_ndp(dev: &str) -> Result<Self, Error> {
        Self::conf("ipv6", dev, "proxy_ndp")
    }

    /// `net.ipv4.conf.<dev>.forwarding` (`dev` may be `all` or `default`).
    pub fn ipv4_forwarding(dev: &str) -> Result<Self, Error> {
        Self::conf("ipv4", dev, "forwarding")
    }

    /// `net.ipv6.conf.<dev>.forwarding` (`dev` may be `all` or `default`).
    pub fn ipv6_forwarding(dev: &str) -> Result<Self, Error> {
        Self::conf("ipv6", dev, "forwarding")
    }

    /// `net.ipv4.ip_forward`.
    pub fn ip_forward() -> Self {
        Self::from_path("/proc/sys/net/ipv4/ip_forward")
    }

    /// Any file, e.g. `/proc/sys/net/ipv4/conf/all/rp_filter`.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        Sysctl { path: path.into() }
    }

    /// `/proc/sys/net/<family>/conf/<dev>/<name>`; `dev` is a device name, used verbatim
    /// (a VLAN device `eth1.100` keeps its dot).
    fn conf(family: &str, dev: &str, name: &str) -> Result<Self, Error> {
        check_link_name(dev)?;
        Ok(Self::from_path(format!(
            "/proc/sys/net/{family}/conf/{dev}/{name}"
        )))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current value, without the trailing newline.
    pub fn read(&self) -> Result<String, Error> {
        std::fs::read_to_string(&self.path)
            .map(|s| s.trim_end().to_string())
            .map_err(|source| Error::Sysctl {
                op: "read",
                path: self.path.clone(),
                source,
            })
    }

    /// Writes `value` unless it is already the current value; returns the previous value.
    pub fn write(&self, value: &str) -> Result<String, Error> {
        let previous = self.read()?;
        if previous != value {
            std::fs::write(&self.path, value).map_err(|source| Error::Sysctl {
                op: "write",
                path: self.path.clone(),
                source,
            })?;
            tracing::info!(path = %self.path.display(), previous, value, "sysctl set");
        }
        Ok(previous)
    }

    /// Writes `1` or `0`; returns whether the previous value was non-zero.
    pub fn set(&self, on: bool) -> Result<bool, Error> {
        Ok(self.write(if on { "1" } else { "0" })? != "0")
    }
}

/// Sets `net.ipv4.conf.<dev>.proxy_arp`; returns the previous setting.
pub fn set_proxy_arp(dev: &str, on: bool) -> Result<bool, Error> {
    Sysctl::proxy_arp(dev)?.set(on)
}

/// Sets `net.ipv6.conf.<dev>.proxy_ndp`; returns the previous setting.
pub fn set_proxy_ndp(dev: &str, on: bool) -> Result<bool, Error> {
    Sysctl::proxy_ndp(dev)?.set(on)
}

/// Sets `net.ipv4.conf.<dev>.forwarding`, or `net.ipv4.ip_forward` when `dev` is `None`;
/// returns the previous setting.
pub fn set_ipv4_forwarding(dev: Option<&str>, on: bool) -> Result<bool, Error> {
    match dev {
        Some(dev) => Sysctl::ipv4_forwarding(dev)?.set(on),
        None => Sysctl::ip_forward().set(on),
    }
}

/// Sets `net.ipv6.conf.all.forwarding` (which the kernel copies to every device); returns the
/// previous setting.
pub fn set_ipv6_forwarding(on: bool) -> Result<bool, Error> {
    Sysctl::ipv6_forwarding("all")?.set(on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            Sysctl::proxy_arp("br-ex").unwrap().path(),
            Path::new("/proc/sys/net/ipv4/conf/br-ex/proxy_arp")
        );
        assert_eq!(
            Sysctl::proxy_ndp("eth1.100").unwrap().path(),
            Path::new("/proc/sys/net/ipv6/conf/eth1.100/proxy_ndp")
        );
        assert!(Sysctl::proxy_arp("../../x").is_err());
        assert_eq!(
            Sysctl::ip_forward().path(),
            Path::new("/proc/sys/net/ipv4/ip_forward")
        );
    }

    #[test]
    fn errors_name_the_path() {
        let e = set_proxy_arp("no-such-dev-x", true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/proc/sys/net/ipv4/conf/no-such-dev-x/proxy_arp"),
            "{e}"
        );
    }
}
