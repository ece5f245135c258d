//! The devices of an L3 VNI (EVPN type-5, FRR's documented recipe): a bridge enslaved to the VRF
//! (`addrgenmode none`) and a VXLAN device (`id VNI local IP dstport PORT nolearning`) enslaved
//! to the bridge, both up.
//!
//! ```text
//! ip link add br-100 type bridge; ip link set br-100 master VRF addrgenmode none up
//! ip link add vxlan-100 type vxlan id 100 local 192.0.2.1 dstport 4789 nolearning
//! ip link set vxlan-100 master br-100 addrgenmode none up
//! ```
//!
//! A device these calls create gets `mark` as its alias (the ownership mark
//! [`Reconciler::delete_marked_link`] checks). A device of that name that exists is used when it
//! fits; when it does not, one with the mark is brought in line (moved to the right master, or
//! deleted and created again when its VXLAN parameters differ), one without it is an error
//! ([`Error::LinkMismatch`]) and is never modified.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoVxlan, LinkAttribute, LinkInfo,
    LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVxlan};

use crate::links::{check_link_name, Link};
use crate::reconciler::Reconciler;
use crate::Error;

/// The largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = 16_777_215;

/// A VXLAN device's parameters as the kernel reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanLink {
    /// The device.
    pub link: Link,
    /// Its VNI (`id`).
    pub vni: Option<u32>,
    /// Its local (source) address.
    pub local: Option<IpAddr>,
    /// Its UDP destination port.
    pub port: Option<u16>,
    /// Whether it learns remote MACs (`learning`).
    pub learning: Option<bool>,
}

impl VxlanLink {
    fn from_message(m: &LinkMessage) -> Option<VxlanLink> {
        let link = Link::from_message(m)?;
        let mut v = VxlanLink {
            link,
            vni: None,
            local: None,
            port: None,
            learning: None,
        };
        for a in &m.attributes {
            let LinkAttribute::LinkInfo(infos) = a else {
                continue;
            };
            for i in infos {
                let LinkInfo::Data(InfoData::Vxlan(x)) = i else {
                    continue;
                };
                for x in x {
                    match x {
                        InfoVxlan::Id(id) => v.vni = Some(*id),
                        InfoVxlan::Local(a) => v.local = Some(IpAddr::V4(*a)),
                        InfoVxlan::Local6(a) => v.local = Some(IpAddr::V6(*a)),
                        InfoVxlan::Port(p) => v.port = Some(*p),
                        InfoVxlan::Learning(l) => v.learning = Some(*l),
                        _ => {}
                    }
                }
            }
        }
        Some(v)
    }

    /// Whether it is a VXLAN device with these parameters.
    pub fn fits(&self, vni: u32, local: Ipv4Addr, port: u16) -> bool {
        self.link.kind.as_deref() == Some("vxlan")
            && self.vni == Some(vni)
            && self.local == Some(IpAddr::V4(local))
            && self.port == Some(port)
    }

    fn describe(&self) -> String {
        let mut s = self
            .link
            .kind
            .clone()
            .unwrap_or_else(|| "a device without type".into());
        if let Some(v) = self.vni {
            s.push_str(&format!(" id {v}"));
        }
        if let Some(l) = self.local {
            s.push_str(&format!(" local {l}"));
        }
        if let Some(p) = self.port {
            s.push_str(&format!(" dstport {p}"));
        }
        s
    }
}

/// What one L3 VNI's devices are to be ([`Reconciler::ensure_l3vni`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L3Vni {
    /// The VRF the bridge is enslaved to (it must exist).
    pub vrf: String,
    /// The VNI.
    pub vni: u32,
    /// The bridge's name.
    pub bridge: String,
    /// The VXLAN device's name.
    pub vxlan: String,
    /// The local VTEP address.
    pub local: Ipv4Addr,
    /// The UDP destination port.
    pub port: u16,
    /// The underlay device (`dev`), if any.
    pub dev: Option<String>,
}

/// What [`Reconciler::ensure_l3vni`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct L3VniOutcome {
    /// What changed, in words (`created bridge br-100`...); empty: everything was in place.
    pub changes: Vec<String>,
}

impl Reconciler {
    /// The link named `name` with its VXLAN parameters (all `None` for another type), or `None`.
    pub async fn vxlan_link(&self, name: &str) -> Result<Option<VxlanLink>, Error> {
        Ok(self
            .link_message(name)
            .await?
            .and_then(|l| VxlanLink::from_message(&l)))
    }

    /// Makes sure the bridge and the VXLAN device of `want` exist, marked with `mark` when
    /// created here, enslaved (bridge to the VRF, VXLAN device to the bridge) and up; see the
    /// module documentation for devices that exist.
    pub async fn ensure_l3vni(&self, want: &L3Vni, mark: &str) -> Result<L3VniOutcome, Error> {
        check_link_name(&want.bridge)?;
        check_link_name(&want.vxlan)?;
        if !(1..=MAX_VNI).contains(&want.vni) {
            return Err(Error::InvalidLink {
                name: want.vxlan.clone(),
                reason: "a VNI is between 1 and 16777215",
            });
        }
        let mut out = L3VniOutcome::default();
        let vrf = self.require_link(&want.vrf).await?;
        if vrf.kind.as_deref() != Some("vrf") {
            return Err(Error::LinkMismatch {
                name: want.vrf.clone(),
                want: "vrf".into(),
                have: vrf
                    .kind
                    .clone()
                    .unwrap_or_else(|| "a device without type".into()),
            });
        }
        // The bridge.
        let bridge = match self.link(&want.bridge).await? {
            Some(l) => l,
            None => {
                let msg = LinkMessageBuilder::<LinkBridge>::new(&want.bridge).build();
                if self.create_link("bridge", &want.bridge, msg).await? {
                    out.changes.push(format!("created bridge {}", want.bridge));
                    let l = self.require_link(&want.bridge).await?;
                    self.set_alias(&l, mark).await?;
                    self.set_addrgenmode_none(&l).await?;
                }
                self.require_link(&want.bridge).await?
            }
        };
        let ours = bridge.alias.as_deref() == Some(mark);
        if bridge.kind.as_deref() != Some("bridge") || (!ours && bridge.master != Some(vrf.index)) {
            return Err(Error::LinkMismatch {
                name: want.bridge.clone(),
                want: format!("bridge in VRF {}", want.vrf),
                have: format!(
                    "{}{}",
                    bridge.kind.as_deref().unwrap_or("a device without type"),
                    bridge
                        .master
                        .map(|m| format!(" enslaved to if{m}"))
                        .unwrap_or_default()
                ),
            });
        }
        if bridge.master != Some(vrf.index) {
            self.set_master(&bridge, vrf.index).await?;
            out.changes
                .push(format!("bridge {}: master {}", want.bridge, want.vrf));
        }
        if !bridge.up {
            self.set_up_link(&bridge).await?;
            out.changes.push(format!("bridge {}: up", want.bridge));
        }
        // The VXLAN device.
        let mut vx = self.vxlan_link(&want.vxlan).await?;
        if let Some(v) = &vx {
            let ours = v.link.alias.as_deref() == Some(mark);
            if !v.fits(want.vni, want.local, want.port) {
                if !ours {
                    return Err(Error::LinkMismatch {
                        name: want.vxlan.clone(),
                        want: format!(
                            "vxlan id {} local {} dstport {}",
                            want.vni, want.local, want.port
                        ),
                        have: v.describe(),
                    });
                }
                self.delete_marked_link(&want.vxlan, mark).await?;
                out.changes
                    .push(format!("vxlan {}: deleted ({})", want.vxlan, v.describe()));
                vx = None;
            }
        }
        let vx = match vx {
            Some(v) => v.link,
            None => {
                let mut b = LinkVxlan::new(&want.vxlan, want.vni)
                    .local(want.local)
                    .port(want.port)
                    .learning(false);
                if let Some(d) = &want.dev {
                    b = b.dev(self.require_link(d).await?.index);
                }
                if self.create_link("vxlan", &want.vxlan, b.build()).await? {
                    out.changes.push(format!(
                        "created vxlan {} (id {} local {} dstport {})",
                        want.vxlan, want.vni, want.local, want.port
                    ));
                    let l = self.require_link(&want.vxlan).await?;
                    self.set_alias(&l, mark).await?;
                    self.set_addrgenmode_none(&l).await?;
                }
                let v = self
                    .vxlan_link(&want.vxlan)
                    .await?
                    .ok_or_else(|| Error::NoSuchLink {
                        name: want.vxlan.clone(),
                    })?;
                if !v.fits(want.vni, want.local, want.port) {
                    return Err(Error::LinkMismatch {
                        name: want.vxlan.clone(),
                        want: format!(
                            "vxlan id {} local {} dstport {}",
                            want.vni, want.local, want.port
                        ),
                        have: v.describe(),
                    });
                }
                v.link
            }
        };
        let ours = vx.alias.as_deref() == Some(mark);
        if vx.master != Some(bridge.index) {
            if !ours && vx.master.is_some() {
                return Err(Error::LinkMismatch {
                    name: want.vxlan.clone(),
                    want: format!("vxlan enslaved to {}", want.bridge),
                    have: format!("vxlan enslaved to if{}", vx.master.unwrap_or(0)),
                });
            }
            self.set_master(&vx, bridge.index).await?;
            out.changes
                .push(format!("vxlan {}: master {}", want.vxlan, want.bridge));
        }
        if !vx.up {
            self.set_up_link(&vx).await?;
            out.changes.push(format!("vxlan {}: up", want.vxlan));
        }
        Ok(out)
    }

    async fn set(&self, link: &Link, m: LinkMessage, op: &'static str) -> Result<(), Error> {
        self.ack(RouteNetlinkMessage::SetLink(m), 0)
            .await
            .map_err(|source| Error::Link {
                op,
                name: link.name.clone(),
                source,
            })
    }

    /// `ip link set DEV addrgenmode none` (no IPv6 link-local address).
    async fn set_addrgenmode_none(&self, link: &Link) -> Result<(), Error> {
        let mut m = LinkUnspec::new_with_index(link.index).build();
        m.attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]));
        self.set(link, m, "set addrgenmode none").await
    }

    async fn set_master(&self, link: &Link, master: u32) -> Result<(), Error> {
        let m = LinkUnspec::new_with_index(link.index)
            .controller(master)
            .build();
        self.set(link, m, "set master").await
    }

    async fn set_up_link(&self, link: &Link) -> Result<(), Error> {
        let m = LinkUnspec::new_with_index(link.index).up().build();
        self.set(link, m, "set up").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_vxlan_message() {
        let mut m = LinkVxlan::new("vxlan-100", 100)
            .local(Ipv4Addr::new(192, 0, 2, 1))
            .port(4789)
            .learning(false)
            .build();
        m.header.index = 9;
        let v = VxlanLink::from_message(&m).unwrap();
        assert_eq!(v.link.name, "vxlan-100");
        assert_eq!(v.vni, Some(100));
        assert_eq!(v.port, Some(4789));
        assert_eq!(v.learning, Some(false));
        assert!(v.fits(100, Ipv4Addr::new(192, 0, 2, 1), 4789));
        assert!(!v.fits(101, Ipv4Addr::new(192, 0, 2, 1), 4789));
        assert!(!v.fits(100, Ipv4Addr::new(192, 0, 2, 2), 4789));
        assert_eq!(v.describe(), "vxlan id 100 local 192.0.2.1 dstport 4789");
    }
}
