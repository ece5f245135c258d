//! Links: look a device up by name, and create the few devices the agent owns (the VRF,
//! `bgp_nic`, VLAN devices) when they are missing.
//!
//! The `ensure_*` methods never modify a device that exists with other parameters (a VRF with
//! another table, a device of another type): they return an error naming both. When the kernel
//! has no such link type (`EOPNOTSUPP`, "Unknown device type") they return
//! [`Error::Unsupported`], whose message suggests `vrf_mode = none` or `existing`.

use futures::StreamExt;
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVlan, InfoVrf, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::{LinkDummy, LinkUnspec, LinkVlan, LinkVrf};

use crate::reconciler::Reconciler;
use crate::Error;

const EEXIST: i32 = libc::EEXIST;
const ENODEV: i32 = libc::ENODEV;
const EOPNOTSUPP: i32 = libc::EOPNOTSUPP;

/// The longest device name the kernel takes (`IFNAMSIZ` - 1).
pub const MAX_LINK_NAME: usize = 15;

/// A network device as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its index.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// Its link-layer address when it is a 6-byte (Ethernet) one.
    pub mac: Option<[u8; 6]>,
    /// Its type as `ip -d link` names it (`bridge`, `vrf`, `dummy`, `vlan`, `veth`...); `None` for
    /// devices without one (physical NICs, `lo`).
    pub kind: Option<String>,
    /// The index of its master (VRF or bridge).
    pub master: Option<u32>,
    /// The index of its lower device (`IFLA_LINK`: the parent of a VLAN device, the peer of a
    /// veth).
    pub parent: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// For a VRF: its table.
    pub vrf_table: Option<u32>,
    /// For a VLAN device: its VLAN id.
    pub vlan_id: Option<u16>,
    /// Its alias (`IFLA_IFALIAS`, `ip link set DEV alias TEXT`): ovn-route's ownership mark on the
    /// devices it creates.
    pub alias: Option<String>,
}

impl Link {
    /// Reads a link message (`None` without a name).
    pub(crate) fn from_message(m: &LinkMessage) -> Option<Link> {
        let mut link = Link {
            index: m.header.index,
            name: String::new(),
            mac: None,
            kind: None,
            master: None,
            parent: None,
            up: m.header.flags.contains(LinkFlags::Up),
            vrf_table: None,
            vlan_id: None,
            alias: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::IfAlias(a) if !a.is_empty() => link.alias = Some(a.clone()),
                LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
                LinkAttribute::Controller(i) if *i != 0 => link.master = Some(*i),
                LinkAttribute::Link(i) if *i != 0 && *i != m.header.index => link.parent = Some(*i),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        match i {
                            LinkInfo::Kind(k) => link.kind = Some(k.to_string()),
                            LinkInfo::Data(InfoData::Vrf(v)) => {
                                link.vrf_table = v.iter().find_map(|x| match x {
                                    InfoVrf::TableId(t) => Some(*t),
                                    _ => None,
                                })
                            }
                            LinkInfo::Data(InfoData::Vlan(v)) => {
                                link.vlan_id = v.iter().find_map(|x| match x {
                                    InfoVlan::Id(id) => Some(*id),
                                    _ => None,
                                })
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        (!link.name.is_empty()).then_some(link)
    }

    /// The MAC address as `aa:bb:cc:dd:ee:ff`.
    pub fn mac_string(&self) -> Option<String> {
        self.mac.as_ref().map(format_mac)
    }
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The default name of VLAN `vlan_id` on `parent`: `<parent>.<id>` (may be longer than the
/// kernel allows for long parent names; pass a name to [`Reconciler::ensure_vlan`] then).
pub fn vlan_name(parent: &str, vlan_id: u16) -> String {
    format!("{parent}.{vlan_id}")
}

/// Checks that the kernel can take `name` as a device name.
pub(crate) fn check_link_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "an empty device name"
    } else if name.len() > MAX_LINK_NAME {
        "a device name is at most 15 bytes long"
    } else if name == "." || name == ".." {
        "not a device name"
    } else if name.contains(['/', ':']) || name.chars().any(char::is_whitespace) {
        "a device name has no '/', ':' or white space"
    } else {
        return Ok(());
    };
    Err(Error::InvalidLink {
        name: name.to_string(),
        reason,
    })
}

/// The positive errno of a netlink error answer.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// A link in words, for the errors of the `ensure_*` calls (`vrf table 10`, `vlan id 100 on if3`).
fn describe(l: &Link) -> String {
    let mut s = l
        .kind
        .clone()
        .unwrap_or_else(|| "a device without type".into());
    if let Some(t) = l.vrf_table {
        s.push_str(&format!(" table {t}"));
    }
    if let Some(id) = l.vlan_id {
        s.push_str(&format!(" id {id}"));
    }
    if let Some(p) = l.parent {
        s.push_str(&format!(" on if{p}"));
    }
    s
}

impl Reconciler {
    /// The link named `name`, or `None` when there is none.
    pub async fn link(&self, name: &str) -> Result<Option<Link>, Error> {
        Ok(self
            .link_message(name)
            .await?
            .and_then(|l| Link::from_message(&l)))
    }

    /// The kernel's message for the link named `name`, or `None` when there is none.
    pub(crate) async fn link_message(&self, name: &str) -> Result<Option<LinkMessage>, Error> {
        check_link_name(name)?;
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetLink(m));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        let err = |source| Error::Link {
            op: "get",
            name: name.to_string(),
            source,
        };
        let mut handle = self.handle().clone();
        let mut resp = handle.request(req).map_err(err)?;
        let mut found = None;
        while let Some(m) = resp.next().await {
            match m.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                    found = Some(l);
                }
                NetlinkPayload::Error(e) => {
                    let e = rtnetlink::Error::NetlinkError(e);
                    if errno(&e) == Some(ENODEV) {
                        return Ok(None);
                    }
                    return Err(err(e));
                }
                _ => {}
            }
        }
        Ok(found)
    }

    /// The link named `name`, or [`Error::NoSuchLink`].
    pub async fn require_link(&self, name: &str) -> Result<Link, Error> {
        self.link(name).await?.ok_or_else(|| Error::NoSuchLink {
            name: name.to_string(),
        })
    }

    /// Sets `name` administratively up (`ip link set NAME up`). Returns true when it was down.
    pub async fn set_up(&self, name: &str) -> Result<bool, Error> {
        let link = self.require_link(name).await?;
        if link.up {
            return Ok(false);
        }
        self.set_link(&link, None, "set up").await?;
        Ok(true)
    }

    /// Sends `RTM_SETLINK` for `link`: up, and enslaved to `master` when given.
    async fn set_link(
        &self,
        link: &Link,
        master: Option<u32>,
        op: &'static str,
    ) -> Result<(), Error> {
        let mut b = LinkUnspec::new_with_index(link.index).up();
        if let Some(m) = master {
            b = b.controller(m);
        }
        self.ack(RouteNetlinkMessage::SetLink(b.build()), 0)
            .await
            .map_err(|source| Error::Link {
                op,
                name: link.name.clone(),
                source,
            })
    }

    /// Creates a link (`NLM_F_CREATE|NLM_F_EXCL`). `Ok(false)` when one of that name appeared
    /// meanwhile (the caller checks it); [`Error::Unsupported`] when the kernel lacks `kind`.
    pub(crate) async fn create_link(
        &self,
        kind: &'static str,
        name: &str,
        msg: LinkMessage,
    ) -> Result<bool, Error> {
        match self
            .ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .await
        {
            Ok(()) => {
                tracing::info!(name, kind, "created link");
                Ok(true)
            }
            Err(e) if errno(&e) == Some(EEXIST) => Ok(false),
            Err(e) if errno(&e) == Some(EOPNOTSUPP) => Err(Error::Unsupported {
                kind,
                name: name.to_string(),
            }),
            Err(source) => Err(Error::Link {
                op: "create",
                name: name.to_string(),
                source,
            }),
        }
    }

    /// Makes sure the VRF `name` with table `table` exists and is up (`ip link add NAME type vrf
    /// table TABLE; ip link set NAME up`). A VRF with another table is an error
    /// ([`Error::VrfTableMismatch`]) and is never modified; so is a device of another type.
    /// Returns true when something was created or set up.
    pub async fn ensure_vrf(&self, name: &str, table: u32) -> Result<bool, Error> {
        check_link_name(name)?;
        if table == 0 {
            return Err(Error::InvalidLink {
                name: name.to_string(),
                reason: "a VRF needs a table id other than 0",
            });
        }
        let mut created = false;
        let link = match self.link(name).await? {
            Some(l) => l,
            None => {
                let msg = LinkVrf::new(name, table).up().build();
                created = self.create_link("vrf", name, msg).await?;
                self.require_link(name).await?
            }
        };
        if link.kind.as_deref() != Some(InfoKind::Vrf.to_string().as_str()) {
            return Err(Error::LinkMismatch {
                name: name.to_string(),
                want: format!("vrf table {table}"),
                have: describe(&link),
            });
        }
        match link.vrf_table {
            Some(t) if t == table => {}
            have => {
                return Err(Error::VrfTableMismatch {
                    name: name.to_string(),
                    want: table,
                    have: have.unwrap_or(0),
                })
            }
        }
        if !link.up {
            self.set_link(&link, None, "set up").await?;
            return Ok(true);
        }
        Ok(created)
    }

    /// Makes sure the dummy device `name` exists, is up and, when `master` is given, is enslaved
    /// to it (`ip link add NAME type dummy; ip link set NAME master MASTER up`); a dummy enslaved
    /// elsewhere is moved to `master`. `master: None` leaves its master as it is. A device of
    /// another type is an error and is never modified. Returns true when something changed.
    pub async fn ensure_dummy(&self, name: &str, master: Option<&str>) -> Result<bool, Error> {
        check_link_name(name)?;
        let master = match master {
            Some(m) => Some(self.require_link(m).await?.index),
            None => None,
        };
        let mut created = false;
        let link = match self.link(name).await? {
            Some(l) => l,
            None => {
                let mut b = LinkDummy::new(name).up();
                if let Some(m) = master {
                    b = b.controller(m);
                }
                created = self.create_link("dummy", name, b.build()).await?;
                self.require_link(name).await?
            }
        };
        if link.kind.as_deref() != Some(InfoKind::Dummy.to_string().as_str()) {
            return Err(Error::LinkMismatch {
                name: name.to_string(),
                want: "dummy".into(),
                have: describe(&link),
            });
        }
        let move_master = master.is_some() && link.master != master;
        if move_master || !link.up {
            let op = if move_master { "set master" } else { "set up" };
            self.set_link(&link, master.filter(|_| move_master), op)
                .await?;
            return Ok(true);
        }
        Ok(created)
    }

    /// Makes sure VLAN `vlan_id` on `parent` exists as `name` (default [`vlan_name`]:
    /// `<parent>.<id>`) and is up (`ip link add link PARENT name NAME type vlan id ID`). A
    /// device of that name with another type, parent or id is an error and is never modified.
    /// A device it creates gets `mark` as its alias (the ownership mark
    /// [`Reconciler::delete_marked_link`] checks); one that exists is used as it is. Returns true
    /// when something was created or set up.
    pub async fn ensure_vlan(
        &self,
        parent: &str,
        vlan_id: u16,
        name: Option<&str>,
        mark: Option<&str>,
    ) -> Result<bool, Error> {
        let name = name.map_or_else(|| vlan_name(parent, vlan_id), str::to_string);
        check_link_name(&name)?;
        if !(1..=4094).contains(&vlan_id) {
            return Err(Error::InvalidLink {
                name,
                reason: "a VLAN id is between 1 and 4094",
            });
        }
        let parent_link = self.require_link(parent).await?;
        let mut created = false;
        let link = match self.link(&name).await? {
            Some(l) => l,
            None => {
                let msg = LinkVlan::new(&name, parent_link.index, vlan_id)
                    .up()
                    .build();
                created = self.create_link("vlan", &name, msg).await?;
                let link = self.require_link(&name).await?;
                if let (true, Some(mark)) = (created, mark) {
                    self.set_alias(&link, mark).await?;
                }
                link
            }
        };
        if link.kind.as_deref() != Some(InfoKind::Vlan.to_string().as_str())
            || link.vlan_id != Some(vlan_id)
            || link.parent != Some(parent_link.index)
        {
            return Err(Error::LinkMismatch {
                name: name.clone(),
                want: format!("vlan id {vlan_id} on if{} ({parent})", parent_link.index),
                have: describe(&link),
            });
        }
        if !link.up {
            self.set_link(&link, None, "set up").await?;
            return Ok(true);
        }
        Ok(created)
    }

    /// Sets the alias of `link` (`ip link set DEV alias TEXT`).
    pub async fn set_alias(&self, link: &Link, alias: &str) -> Result<(), Error> {
        let mut m = LinkUnspec::new_with_index(link.index).build();
        m.attributes.push(LinkAttribute::IfAlias(alias.to_string()));
        self.ack(RouteNetlinkMessage::SetLink(m), 0)
            .await
            .map_err(|source| Error::Link {
                op: "set alias",
                name: link.name.clone(),
                source,
            })
    }

    /// Every link.
    pub async fn all_links(&self) -> Result<Vec<Link>, Error> {
        let msgs = self
            .dump(
                "links",
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
            )
            .await?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                    Link::from_message(&l)
                }
                _ => None,
            })
            .collect())
    }

    /// The VLAN devices on `parent` (none when there is no such link).
    pub async fn vlans_on(&self, parent: &str) -> Result<Vec<Link>, Error> {
        let Some(p) = self.link(parent).await? else {
            return Ok(vec![]);
        };
        Ok(self
            .all_links()
            .await?
            .into_iter()
            .filter(|l| l.parent == Some(p.index) && l.vlan_id.is_some())
            .collect())
    }

    /// The VLAN devices on `parent` that carry `mark` as their alias (the ones we created).
    pub async fn marked_vlans_on(&self, parent: &str, mark: &str) -> Result<Vec<Link>, Error> {
        let mut v = self.vlans_on(parent).await?;
        v.retain(|l| l.alias.as_deref() == Some(mark));
        Ok(v)
    }

    /// Deletes the link `name` if it carries `mark` as its alias (`ip link del NAME`). Returns
    /// false when there is no such link or it is not ours (then it is left alone).
    pub async fn delete_marked_link(&self, name: &str, mark: &str) -> Result<bool, Error> {
        let Some(link) = self.link(name).await? else {
            return Ok(false);
        };
        if link.alias.as_deref() != Some(mark) {
            return Ok(false);
        }
        let m = LinkUnspec::new_with_index(link.index).build();
        match self.ack(RouteNetlinkMessage::DelLink(m), 0).await {
            Ok(()) => {
                tracing::info!(name, "deleted link");
                Ok(true)
            }
            Err(e) if errno(&e) == Some(ENODEV) => Ok(false),
            Err(source) => Err(Error::Link {
                op: "delete",
                name: name.to_string(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names() {
        assert!(check_link_name("br-ex").is_ok());
        assert!(check_link_name("eth1.100").is_ok());
        assert!(check_link_name("0123456789abcde").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "a:1", "0123456789abcdef"] {
            let e = check_link_name(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        assert_eq!(vlan_name("eth1", 100), "eth1.100");
    }

    #[test]
    fn parses_a_vrf_message() {
        let m = LinkVrf::new("bgp-vrf", 10).up().build();
        let mut m = m;
        m.header.index = 7;
        m.attributes
            .push(LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]));
        m.attributes.push(LinkAttribute::Controller(0));
        let l = Link::from_message(&m).unwrap();
        assert_eq!(l.name, "bgp-vrf");
        assert_eq!(l.kind.as_deref(), Some("vrf"));
        assert_eq!(l.vrf_table, Some(10));
        assert_eq!(l.master, None);
        assert!(l.up);
        assert_eq!(l.mac_string().as_deref(), Some("02:00:00:00:00:01"));
        let v = LinkVlan::new("eth1.100", 3, 100).build();
        let l = Link::from_message(&v).unwrap();
        assert_eq!((l.vlan_id, l.parent, l.up), (Some(100), Some(3), false));
    }

    #[test]
    fn unsupported_message_suggests_vrf_mode() {
        let e = Error::Unsupported {
            kind: "vrf",
            name: "bgp-vrf".into(),
        }
        .to_string();
        assert!(e.contains("cannot create a vrf device"), "{e}");
        assert!(e.contains("vrf_mode = none"), "{e}");
        assert!(e.contains("vrf_mode = existing"), "{e}");
        let e = Error::VrfTableMismatch {
            name: "bgp-vrf".into(),
            want: 10,
            have: 20,
        }
        .to_string();
        assert!(e.contains("table 20") && e.contains("table 10"), "{e}");
    }
}
