//! Neighbour entries of one device: permanent entries (`ip neigh add IP lladdr MAC dev D nud
//! permanent`) and proxy entries (`ip neigh add proxy IP dev D`, `NTF_PROXY`).
//!
//! Ownership: every entry we create carries our protocol number (`NDA_PROTOCOL`, like `ip
//! neigh add ... protocol 201`); only entries with that mark are observed as ours, changed or
//! deleted. An entry without the mark is never deleted. When a desired entry's address is held
//! by a foreign permanent or proxy entry, it is not replaced ([`Error::ForeignNeighbour`]); a
//! foreign entry the kernel learned itself (reachable, stale, failed...: a cache entry nobody
//! configured) is replaced by ours.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use netlink_packet_core::{NetlinkPayload, NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::RouteProtocol;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::links::{errno, format_mac};
use crate::reconciler::{ReconcileStats, Reconciler};
use crate::Error;

const NUD_PERMANENT: u16 = 0x80;

/// One neighbour entry of ours on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Neighbour {
    /// `IP lladdr MAC nud permanent`: the kernel resolves IP to MAC without asking.
    Permanent {
        /// The neighbour's address.
        ip: IpAddr,
        /// Its MAC address.
        mac: [u8; 6],
    },
    /// `proxy IP`: the kernel answers ARP/NDP for IP on the device (with `proxy_arp` or
    /// `proxy_ndp` set on it).
    Proxy {
        /// The address answered for.
        ip: IpAddr,
    },
}

/// The kernel's identity of a neighbour entry on a device: one regular entry and one proxy
/// entry per address.
type NeighbourKey = (bool, IpAddr);

impl Neighbour {
    /// The entry's address.
    pub fn ip(&self) -> IpAddr {
        match self {
            Neighbour::Permanent { ip, .. } | Neighbour::Proxy { ip } => *ip,
        }
    }

    /// True for a proxy entry.
    pub fn is_proxy(&self) -> bool {
        matches!(self, Neighbour::Proxy { .. })
    }

    fn key(&self) -> NeighbourKey {
        (self.is_proxy(), self.ip())
    }
}

impl fmt::Display for Neighbour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Neighbour::Permanent { ip, mac } => {
                write!(f, "{ip} lladdr {} nud permanent", format_mac(mac))
            }
            Neighbour::Proxy { ip } => write!(f, "proxy {ip}"),
        }
    }
}

/// The neighbour entries ovn-route wants on one device, all marked with one protocol number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DesiredNeighbours {
    /// The device.
    pub dev: String,
    /// Our protocol number (`NDA_PROTOCOL`, the ownership mark; the agent uses 201).
    pub protocol: u8,
    /// The entries wanted: at most one permanent entry per address.
    pub entries: BTreeSet<Neighbour>,
}

impl DesiredNeighbours {
    /// No entry wanted on `dev` yet.
    pub fn new(dev: impl Into<String>, protocol: u8) -> Self {
        DesiredNeighbours {
            dev: dev.into(),
            protocol,
            entries: BTreeSet::new(),
        }
    }

    /// Checks that the entries can all be in the kernel at once (one permanent entry per
    /// address, no all-zero MAC).
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason| Error::InvalidNeighbours {
            dev: self.dev.clone(),
            reason,
        };
        let mut seen: BTreeMap<NeighbourKey, Neighbour> = BTreeMap::new();
        for e in &self.entries {
            if let Neighbour::Permanent { mac, .. } = e {
                if *mac == [0; 6] {
                    return Err(invalid(format!("{e}: not a neighbour's MAC address")));
                }
            }
            if let Some(prev) = seen.insert(e.key(), *e) {
                return Err(invalid(format!(
                    "two permanent entries for {}: {prev} and {e}",
                    e.ip()
                )));
            }
        }
        Ok(())
    }
}

/// A neighbour entry found on a device, with its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservedNeighbour {
    /// The address.
    pub ip: IpAddr,
    /// Its MAC address when it has one (a regular entry that is resolved).
    pub mac: Option<[u8; 6]>,
    /// A proxy entry.
    pub proxy: bool,
    /// A permanent entry (`NUD_PERMANENT`); proxy entries are configuration, reported
    /// permanent too.
    pub permanent: bool,
    /// Its protocol number (`NDA_PROTOCOL`), when it has one.
    pub protocol: Option<u8>,
}

impl ObservedNeighbour {
    /// The entry as one of ours. An entry of ours that is not permanent any more (changed by
    /// someone) becomes a permanent entry with MAC 00:00:00:00:00:00, which is never desired:
    /// the diff replaces or deletes it.
    pub fn as_neighbour(&self) -> Neighbour {
        if self.proxy {
            return Neighbour::Proxy { ip: self.ip };
        }
        let mac = match self.mac {
            Some(mac) if self.permanent => mac,
            _ => [0; 6],
        };
        Neighbour::Permanent { ip: self.ip, mac }
    }

    fn key(&self) -> NeighbourKey {
        (self.proxy, self.ip)
    }
}

impl fmt::Display for ObservedNeighbour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.proxy {
            write!(f, "proxy {}", self.ip)?;
        } else {
            write!(f, "{}", self.ip)?;
            if let Some(mac) = &self.mac {
                write!(f, " lladdr {}", format_mac(mac))?;
            }
            if self.permanent {
                write!(f, " nud permanent")?;
            }
        }
        match self.protocol {
            Some(p) => write!(f, " proto {p}"),
            None => Ok(()),
        }
    }
}

/// The difference between the desired and the observed neighbour entries of one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeighbourDiff {
    /// Entries to create (no entry of ours has their address).
    pub to_add: Vec<Neighbour>,
    /// Permanent entries of ours with another MAC: replaced in place (`NLM_F_REPLACE`).
    pub to_replace: Vec<Neighbour>,
    /// Entries of ours that are not wanted any more.
    pub to_delete: Vec<Neighbour>,
    /// Entries already present.
    pub unchanged: usize,
}

impl NeighbourDiff {
    /// True when nothing is to be done.
    pub fn is_empty(&self) -> bool {
        self.to_add.is_empty() && self.to_replace.is_empty() && self.to_delete.is_empty()
    }
}

/// Computes what turns `observed` (our entries on the device) into `desired`. When desired
/// entries contradict each other (see [`DesiredNeighbours::validate`]) the greatest wins.
pub fn diff_neighbours(desired: &DesiredNeighbours, observed: &[Neighbour]) -> NeighbourDiff {
    let want: BTreeMap<NeighbourKey, Neighbour> =
        desired.entries.iter().map(|e| (e.key(), *e)).collect();
    let have: BTreeMap<NeighbourKey, Neighbour> = observed.iter().map(|e| (e.key(), *e)).collect();
    let mut out = NeighbourDiff::default();
    for (k, w) in &want {
        match have.get(k) {
            None => out.to_add.push(*w),
            Some(h) if h == w => out.unchanged += 1,
            Some(_) => out.to_replace.push(*w),
        }
    }
    for (k, h) in &have {
        if !want.contains_key(k) {
            out.to_delete.push(*h);
        }
    }
    out
}

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

fn neighbour_message(index: u32, protocol: u8, e: &Neighbour) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = family(e.ip());
    m.header.ifindex = index;
    m.header.state = NeighbourState::Permanent;
    m.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::from(
            e.ip(),
        )));
    match e {
        Neighbour::Permanent { mac, .. } => m
            .attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec())),
        Neighbour::Proxy { .. } => m.header.flags = NeighbourFlags::Proxy,
    }
    m.attributes
        .push(NeighbourAttribute::Protocol(RouteProtocol::from(protocol)));
    m
}

/// Reads a neighbour message (`None` for entries without an IP destination).
fn parse_neighbour(m: &NeighbourMessage) -> Option<ObservedNeighbour> {
    let mut ip = None;
    let mut mac = None;
    let mut protocol = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                ip = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                ip = Some(IpAddr::V6(*v6))
            }
            NeighbourAttribute::LinkLayerAddress(l) => mac = <[u8; 6]>::try_from(&l[..]).ok(),
            NeighbourAttribute::Protocol(p) => protocol = Some(u8::from(*p)),
            _ => {}
        }
    }
    let proxy = m.header.flags.contains(NeighbourFlags::Proxy);
    Some(ObservedNeighbour {
        ip: ip?,
        mac,
        proxy,
        permanent: proxy || u16::from(m.header.state) & NUD_PERMANENT != 0,
        protocol,
    })
}

impl Reconciler {
    /// Every neighbour entry of `dev` (regular and proxy, both families, any owner).
    pub async fn observe_neighbour_table(
        &self,
        dev: &str,
    ) -> Result<Vec<ObservedNeighbour>, Error> {
        let index = self.require_link(dev).await?.index;
        self.observe_neighbours_of(index).await
    }

    async fn observe_neighbours_of(&self, index: u32) -> Result<Vec<ObservedNeighbour>, Error> {
        let mut out = Vec::new();
        for proxy in [false, true] {
            for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
                let mut m = NeighbourMessage::default();
                m.header.family = fam;
                if proxy {
                    // The kernel dumps the proxy table when the request's flags are NTF_PROXY.
                    m.header.flags = NeighbourFlags::Proxy;
                }
                let msgs = self
                    .dump("neighbours", RouteNetlinkMessage::GetNeighbour(m))
                    .await?;
                for m in msgs {
                    if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) =
                        m.payload
                    {
                        if n.header.ifindex == index {
                            out.extend(parse_neighbour(&n));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Our entries on `dev`: those carrying `protocol` (see [`ObservedNeighbour::as_neighbour`]).
    pub async fn observe_neighbours(
        &self,
        dev: &str,
        protocol: u8,
    ) -> Result<Vec<Neighbour>, Error> {
        Ok(self
            .observe_neighbour_table(dev)
            .await?
            .iter()
            .filter(|o| o.protocol == Some(protocol))
            .map(ObservedNeighbour::as_neighbour)
            .collect())
    }

    /// Applies a neighbour diff to `dev`: deletes, then replacements and additions (both
    /// `NLM_F_CREATE|NLM_F_REPLACE`, marked with `protocol`). `foreign` are the entries of the
    /// device without our mark: an addition or replacement over a foreign permanent or proxy
    /// entry is refused ([`Error::ForeignNeighbour`]). Every operation is attempted; failures
    /// are collected into [`Error::Apply`].
    pub async fn apply_neighbours(
        &self,
        dev: &str,
        protocol: u8,
        plan: &NeighbourDiff,
        foreign: &[ObservedNeighbour],
    ) -> Result<ReconcileStats, Error> {
        let index = self.require_link(dev).await?.index;
        self.apply_neighbours_of(dev, index, protocol, plan, foreign)
            .await
    }

    async fn apply_neighbours_of(
        &self,
        dev: &str,
        index: u32,
        protocol: u8,
        plan: &NeighbourDiff,
        foreign: &[ObservedNeighbour],
    ) -> Result<ReconcileStats, Error> {
        let foreign: BTreeMap<NeighbourKey, &ObservedNeighbour> = foreign
            .iter()
            .filter(|o| o.permanent)
            .map(|o| (o.key(), o))
            .collect();
        let mut stats = ReconcileStats {
            unchanged: plan.unchanged,
            ..Default::default()
        };
        let mut errors = Vec::new();
        let err = |op, e: &Neighbour, source| Error::Neighbour {
            op,
            entry: e.to_string(),
            dev: dev.to_string(),
            source: Box::new(source),
        };
        for e in &plan.to_delete {
            let msg = RouteNetlinkMessage::DelNeighbour(neighbour_message(index, protocol, e));
            match self.ack(msg, 0).await {
                Ok(()) => stats.deleted += 1,
                // Gone meanwhile.
                Err(x) if errno(&x) == Some(libc::ENOENT) => {}
                Err(x) => errors.push(err("delete", e, x)),
            }
        }
        for (op, list, count) in [
            ("replace", &plan.to_replace, &mut stats.replaced),
            ("add", &plan.to_add, &mut stats.added),
        ] {
            for e in list {
                if let Some(f) = foreign.get(&e.key()) {
                    errors.push(Error::ForeignNeighbour {
                        entry: e.to_string(),
                        dev: dev.to_string(),
                        foreign: f.to_string(),
                    });
                    continue;
                }
                let msg = RouteNetlinkMessage::NewNeighbour(neighbour_message(index, protocol, e));
                match self.ack(msg, NLM_F_CREATE | NLM_F_REPLACE).await {
                    Ok(()) => *count += 1,
                    Err(x) => errors.push(err(op, e, x)),
                }
            }
        }
        if errors.is_empty() {
            Ok(stats)
        } else {
            Err(Error::Apply { stats, errors })
        }
    }

    /// Observe, diff and apply the neighbour entries of one device (after
    /// [`DesiredNeighbours::validate`]). Idempotent; entries without our mark stay.
    pub async fn reconcile_neighbours(
        &self,
        desired: &DesiredNeighbours,
    ) -> Result<ReconcileStats, Error> {
        desired.validate()?;
        let index = self.require_link(&desired.dev).await?.index;
        let (ours, foreign): (Vec<_>, Vec<_>) = self
            .observe_neighbours_of(index)
            .await?
            .into_iter()
            .partition(|o| o.protocol == Some(desired.protocol));
        let ours: Vec<Neighbour> = ours.iter().map(ObservedNeighbour::as_neighbour).collect();
        let plan = diff_neighbours(desired, &ours);
        tracing::debug!(
            dev = desired.dev,
            add = plan.to_add.len(),
            replace = plan.to_replace.len(),
            delete = plan.to_delete.len(),
            unchanged = plan.unchanged,
            "neighbour plan"
        );
        if plan.is_empty() {
            return Ok(ReconcileStats {
                unchanged: plan.unchanged,
                ..Default::default()
            });
        }
        self.apply_neighbours_of(&desired.dev, index, desired.protocol, &plan, &foreign)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC1: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
    const MAC2: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

    fn perm(ip: &str, mac: [u8; 6]) -> Neighbour {
        Neighbour::Permanent {
            ip: ip.parse().unwrap(),
            mac,
        }
    }

    fn proxy(ip: &str) -> Neighbour {
        Neighbour::Proxy {
            ip: ip.parse().unwrap(),
        }
    }

    #[test]
    fn neighbour_diff() {
        let mut d = DesiredNeighbours::new("br-ex", 201);
        d.entries.extend([
            perm("172.24.4.10", MAC1),
            perm("172.24.4.11", MAC1),
            perm("172.24.4.12", MAC2),
            proxy("2001:db8::1"),
            // A proxy entry and a permanent entry for one address are two entries.
            proxy("172.24.4.10"),
        ]);
        d.validate().unwrap();
        let obs = [
            perm("172.24.4.10", MAC1),
            perm("172.24.4.11", MAC2),
            perm("172.24.4.99", MAC1),
            proxy("2001:db8::1"),
            proxy("2001:db8::99"),
        ];
        let diff = diff_neighbours(&d, &obs);
        assert_eq!(
            diff.to_add,
            vec![perm("172.24.4.12", MAC2), proxy("172.24.4.10")]
        );
        assert_eq!(diff.to_replace, vec![perm("172.24.4.11", MAC1)]);
        assert_eq!(
            diff.to_delete,
            vec![perm("172.24.4.99", MAC1), proxy("2001:db8::99")]
        );
        assert_eq!(diff.unchanged, 2);
        let all: Vec<Neighbour> = d.entries.iter().copied().collect();
        assert!(diff_neighbours(&d, &all).is_empty());
    }

    #[test]
    fn validate_rejects_contradictions() {
        let mut d = DesiredNeighbours::new("br-ex", 201);
        d.entries
            .extend([perm("172.24.4.10", MAC1), perm("172.24.4.10", MAC2)]);
        let e = d.validate().unwrap_err().to_string();
        assert!(e.contains("two permanent entries for 172.24.4.10"), "{e}");
        let mut d = DesiredNeighbours::new("br-ex", 201);
        d.entries.insert(perm("172.24.4.10", [0; 6]));
        assert!(d.validate().is_err());
    }

    #[test]
    fn a_non_permanent_entry_of_ours_is_replaced() {
        let o = ObservedNeighbour {
            ip: "172.24.4.10".parse().unwrap(),
            mac: Some(MAC1),
            proxy: false,
            permanent: false,
            protocol: Some(201),
        };
        let mut d = DesiredNeighbours::new("br-ex", 201);
        d.entries.insert(perm("172.24.4.10", MAC1));
        let diff = diff_neighbours(&d, &[o.as_neighbour()]);
        assert_eq!(diff.to_replace, vec![perm("172.24.4.10", MAC1)]);
    }

    #[test]
    fn message_roundtrip() {
        for e in [perm("172.24.4.10", MAC1), proxy("2001:db8::1")] {
            let m = neighbour_message(3, 201, &e);
            let o = parse_neighbour(&m).unwrap();
            assert_eq!(o.protocol, Some(201));
            assert!(o.permanent);
            assert_eq!(o.as_neighbour(), e);
        }
        assert_eq!(
            perm("172.24.4.10", MAC1).to_string(),
            "172.24.4.10 lladdr 02:00:00:00:00:01 nud permanent"
        );
    }
}
