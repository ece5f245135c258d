//! Every route of a table with all its next hops (multipath included), for learning the routes
//! a routing daemon installs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteType, RouteVia,
};
use netlink_packet_route::AddressFamily;

use crate::reconciler::parse_route;
use crate::types::IpNet;
use crate::{Error, ObservedRoute, Reconciler};

/// One next hop of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNextHop {
    /// The gateway, if any.
    pub gateway: Option<IpAddr>,
    /// The output interface by name (`if<index>` when unknown).
    pub dev: Option<String>,
}

/// A unicast route of a table with its protocol and next hops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRoute {
    /// The destination.
    pub prefix: IpNet,
    /// The protocol number that installed it.
    pub protocol: u8,
    /// Its metric, if set.
    pub metric: Option<u32>,
    /// Its next hops: one, or several for a multipath route.
    pub nexthops: Vec<TableNextHop>,
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn via(v: &RouteVia) -> Option<IpAddr> {
    match v {
        RouteVia::Inet(a) => Some(IpAddr::V4(*a)),
        RouteVia::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn gateway_of(attrs: &[RouteAttribute]) -> Option<IpAddr> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Gateway(g) => addr(g),
        RouteAttribute::Via(v) => via(v),
        _ => None,
    })
}

/// Converts a unicast route message into a [`TableRoute`]; other route types give `None`.
pub(crate) fn table_route(r: &RouteMessage, names: &HashMap<u32, String>) -> Option<TableRoute> {
    if r.header.kind != RouteType::Unicast {
        return None;
    }
    let v6 = match r.header.address_family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let name = |i: u32| names.get(&i).cloned().unwrap_or_else(|| format!("if{i}"));
    let mut dst = None;
    let mut oif = None;
    let mut metric = None;
    let mut hops = vec![];
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = addr(d),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => metric = Some(*p),
            RouteAttribute::MultiPath(nhs) => {
                for nh in nhs {
                    hops.push(TableNextHop {
                        gateway: gateway_of(&nh.attributes),
                        dev: (nh.interface_index != 0).then(|| name(nh.interface_index)),
                    });
                }
            }
            _ => {}
        }
    }
    if hops.is_empty() {
        hops.push(TableNextHop {
            gateway: gateway_of(&r.attributes),
            dev: oif.map(name),
        });
    }
    let dst = dst.unwrap_or(if v6 {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    });
    Some(TableRoute {
        prefix: IpNet::new(dst, r.header.destination_prefix_length).ok()?,
        protocol: u8::from(r.header.protocol),
        metric,
        nexthops: hops,
    })
}

impl Reconciler {
    /// Every unicast route of `table` (both families, all protocols) with all its next hops.
    pub async fn observe_nexthops(&self, table: u32) -> Result<Vec<TableRoute>, Error> {
        let mut all = self
            .dump_tables(&BTreeSet::from([table]), table_route)
            .await?;
        Ok(all.remove(&table).unwrap_or_default())
    }

    /// [`Reconciler::observe_nexthops`] for several tables at once, from one dump per family
    /// (every table present in `tables` has an entry, empty when it holds no route).
    pub async fn observe_nexthops_tables(
        &self,
        tables: &BTreeSet<u32>,
    ) -> Result<BTreeMap<u32, Vec<TableRoute>>, Error> {
        self.dump_tables(tables, table_route).await
    }

    /// Every route of each of `tables` (both families, all protocols), as
    /// [`Reconciler::observe_table`] gives them, from one dump per family (every table present in
    /// `tables` has an entry).
    pub async fn observe_tables(
        &self,
        tables: &BTreeSet<u32>,
    ) -> Result<BTreeMap<u32, Vec<ObservedRoute>>, Error> {
        self.dump_tables(tables, parse_route).await
    }
}
