//! Host addresses on one device: the agent's `bgp_nic` in `advertise_method = addresses`.
//!
//! Ownership: on that device every global-scope host address (IPv4 /32, IPv6 /128) is ours;
//! any other address there (other prefix lengths, link-local or host scope) is never touched.
//! The device must therefore be dedicated to the agent (`bgp_nic`), never a shared NIC.

use std::collections::BTreeSet;
use std::net::IpAddr;

use netlink_packet_core::{NetlinkPayload, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::links::errno;
use crate::reconciler::{ReconcileStats, Reconciler};
use crate::types::IpNet;
use crate::Error;

/// The host addresses ovn-route wants on one device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DesiredAddresses {
    /// The device (the agent's `bgp_nic`).
    pub dev: String,
    /// The addresses, each a /32 or /128.
    pub addrs: BTreeSet<IpNet>,
}

impl DesiredAddresses {
    /// No address wanted on `dev` yet.
    pub fn new(dev: impl Into<String>) -> Self {
        DesiredAddresses {
            dev: dev.into(),
            addrs: BTreeSet::new(),
        }
    }
}

/// The difference between the desired and the observed addresses of one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressDiff {
    /// Addresses to add.
    pub to_add: Vec<IpNet>,
    /// Addresses of ours to delete.
    pub to_delete: Vec<IpNet>,
    /// Addresses already present.
    pub unchanged: usize,
}

impl AddressDiff {
    /// True when nothing is to be done.
    pub fn is_empty(&self) -> bool {
        self.to_add.is_empty() && self.to_delete.is_empty()
    }
}

/// True for a link-local address (169.254.0.0/16, fe80::/10).
fn is_link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// True when an address of the device with this prefix and scope is ours: a host prefix
/// (/32, /128), global scope, not link-local.
pub fn is_owned_address(net: &IpNet, global_scope: bool) -> bool {
    let host = net.prefix_len() == if net.is_ipv6() { 128 } else { 32 };
    host && global_scope && !is_link_local(net.addr())
}

/// Computes what turns `observed` (our addresses on the device) into `desired`.
pub fn diff_addresses(desired: &DesiredAddresses, observed: &[IpNet]) -> AddressDiff {
    let have: BTreeSet<IpNet> = observed.iter().copied().collect();
    AddressDiff {
        to_add: desired.addrs.difference(&have).copied().collect(),
        to_delete: have.difference(&desired.addrs).copied().collect(),
        unchanged: desired.addrs.intersection(&have).count(),
    }
}

fn address_message(index: u32, a: &IpNet) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = if a.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    m.header.prefix_len = a.prefix_len();
    m.header.scope = AddressScope::Universe;
    m.header.index = index;
    if a.is_ipv6() {
        // No duplicate address detection: a /128 on bgp_nic is only announced, never used on a
        // link, and must not wait (tentative) before it counts.
        m.header.flags = AddressHeaderFlags::Nodad;
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    } else {
        m.attributes.push(AddressAttribute::Local(a.addr()));
    }
    m.attributes.push(AddressAttribute::Address(a.addr()));
    m
}

impl Reconciler {
    /// Our addresses on `dev`: its global-scope host addresses ([`is_owned_address`]).
    pub async fn observe_addresses(&self, dev: &str) -> Result<Vec<IpNet>, Error> {
        let index = self.require_link(dev).await?.index;
        self.observe_addresses_of(index).await
    }

    async fn observe_addresses_of(&self, index: u32) -> Result<Vec<IpNet>, Error> {
        let msgs = self
            .dump(
                "addresses",
                RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            )
            .await?;
        let mut out = Vec::new();
        for m in msgs {
            let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) = m.payload else {
                continue;
            };
            if a.header.index != index {
                continue;
            }
            // IFA_LOCAL is the local address (IFA_ADDRESS the peer's on point-to-point links).
            let mut addr = None;
            for attr in &a.attributes {
                match attr {
                    AddressAttribute::Local(l) => addr = Some(*l),
                    AddressAttribute::Address(x) if addr.is_none() => addr = Some(*x),
                    _ => {}
                }
            }
            let Some(addr) = addr else { continue };
            let Ok(net) = IpNet::new(addr, a.header.prefix_len) else {
                continue;
            };
            if is_owned_address(&net, a.header.scope == AddressScope::Universe) {
                out.push(net);
            }
        }
        Ok(out)
    }

    /// Applies an address diff to `dev`: deletes, then adds. Adding an address that exists
    /// already is not an error (counted unchanged), nor is deleting one that is gone. Every
    /// operation is attempted; failures are collected into [`Error::Apply`].
    pub async fn apply_addresses(
        &self,
        dev: &str,
        plan: &AddressDiff,
    ) -> Result<ReconcileStats, Error> {
        let index = self.require_link(dev).await?.index;
        self.apply_addresses_of(dev, index, plan).await
    }

    async fn apply_addresses_of(
        &self,
        dev: &str,
        index: u32,
        plan: &AddressDiff,
    ) -> Result<ReconcileStats, Error> {
        let mut stats = ReconcileStats {
            unchanged: plan.unchanged,
            ..Default::default()
        };
        let mut errors = Vec::new();
        let err = |op, a: &IpNet, source| Error::Address {
            op,
            addr: *a,
            dev: dev.to_string(),
            source: Box::new(source),
        };
        for a in &plan.to_delete {
            let msg = RouteNetlinkMessage::DelAddress(address_message(index, a));
            match self.ack(msg, 0).await {
                Ok(()) => stats.deleted += 1,
                Err(e) if errno(&e) == Some(libc::EADDRNOTAVAIL) => {}
                Err(e) => errors.push(err("delete", a, e)),
            }
        }
        for a in &plan.to_add {
            let msg = RouteNetlinkMessage::NewAddress(address_message(index, a));
            match self.ack(msg, NLM_F_CREATE | NLM_F_EXCL).await {
                Ok(()) => stats.added += 1,
                Err(e) if errno(&e) == Some(libc::EEXIST) => stats.unchanged += 1,
                Err(e) => errors.push(err("add", a, e)),
            }
        }
        if errors.is_empty() {
            Ok(stats)
        } else {
            Err(Error::Apply { stats, errors })
        }
    }

    /// Observe, diff and apply the host addresses of one device. A desired address that would
    /// not be ours once added (not a host prefix, link-local) is an [`Error::InvalidAddress`].
    pub async fn reconcile_addresses(
        &self,
        desired: &DesiredAddresses,
    ) -> Result<ReconcileStats, Error> {
        for a in &desired.addrs {
            if !is_owned_address(a, true) {
                return Err(Error::InvalidAddress {
                    addr: *a,
                    dev: desired.dev.clone(),
                    reason: "only global host addresses (/32, /128) are managed on this device",
                });
            }
        }
        let index = self.require_link(&desired.dev).await?.index;
        let observed = self.observe_addresses_of(index).await?;
        let plan = diff_addresses(desired, &observed);
        tracing::debug!(
            dev = desired.dev,
            add = plan.to_add.len(),
            delete = plan.to_delete.len(),
            unchanged = plan.unchanged,
            "address plan"
        );
        if plan.is_empty() {
            return Ok(ReconcileStats {
                unchanged: plan.unchanged,
                ..Default::default()
            });
        }
        self.apply_addresses_of(&desired.dev, index, &plan).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn address_diff() {
        let mut d = DesiredAddresses::new("bgp-nic");
        d.addrs
            .extend([net("10.0.0.1"), net("2001:db8::1"), net("10.0.0.2")]);
        let obs = [net("10.0.0.1"), net("10.0.0.9"), net("2001:db8::9")];
        let diff = diff_addresses(&d, &obs);
        assert_eq!(diff.to_add, vec![net("10.0.0.2"), net("2001:db8::1")]);
        assert_eq!(diff.to_delete, vec![net("10.0.0.9"), net("2001:db8::9")]);
        assert_eq!(diff.unchanged, 1);
        assert!(!diff.is_empty());
        let same = diff_addresses(&d, &d.addrs.iter().copied().collect::<Vec<_>>());
        assert!(same.is_empty());
        assert_eq!(same.unchanged, 3);
        let none = diff_addresses(&DesiredAddresses::new("bgp-nic"), &obs);
        assert_eq!(none.to_delete.len(), 3);
    }

    #[test]
    fn ownership() {
        assert!(is_owned_address(&net("10.0.0.1/32"), true));
        assert!(is_owned_address(&net("2001:db8::1/128"), true));
        assert!(!is_owned_address(&net("10.0.0.0/24"), true));
        assert!(!is_owned_address(&net("2001:db8::/64"), true));
        assert!(!is_owned_address(&net("10.0.0.1/32"), false));
        assert!(!is_owned_address(&net("fe80::1/128"), true));
        assert!(!is_owned_address(&net("169.254.1.1/32"), true));
    }

    #[test]
    fn messages() {
        let m = address_message(4, &net("10.0.0.1"));
        assert_eq!(m.header.prefix_len, 32);
        assert!(m
            .attributes
            .contains(&AddressAttribute::Local("10.0.0.1".parse().unwrap())));
        let m = address_message(4, &net("2001:db8::1"));
        assert_eq!(m.header.family, AddressFamily::Inet6);
        assert!(m.header.flags.contains(AddressHeaderFlags::Nodad));
    }
}
