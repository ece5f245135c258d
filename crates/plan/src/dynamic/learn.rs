//! Learning: which routes of a router's table are learned, and which NB static routes must
//! exist for them.
//!
//! A kernel route qualifies unless its protocol is ours (84), the kernel's or static (0..4), its
//! prefix is link-local, or it has no next hop address; each next hop of a multipath (ECMP)
//! route becomes one static route (OVN makes routes of one prefix with several next hops an
//! ECMP group). The output port is a learning gateway port of the router bound here: with
//! `dynamic-routing-port-name`, only the one whose interface the next hop uses; among the
//! candidates, those whose network holds the next hop, else all of them.
//!
//! In the NB a learned route is a `Logical_Router_Static_Route` on the router, marked
//! `external_ids:ovn-route:owner=dynamic-routing` and `ovn-route:chassis=<learning chassis>`.
//! Upstream ranks learned routes below static ones; here they are static routes, so a prefix an
//! unmarked route of the router already has (the operator's, or OVN-IC's) is not written at all.
//! Unmarked routes are never changed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use ovn_model::nb::{LogicalRouter, LogicalRouterPort, StaticRoute};
use ovsdb::{Replica, Uuid};

use super::advertise::parse_prefix;
use super::topology::link_local;
use super::{DynamicPlan, RouterPlan, PROTOCOL};

/// The `external_ids` key marking learned routes as ours.
pub const OWNER_KEY: &str = "ovn-route:owner";
/// Its value.
pub const OWNER: &str = "dynamic-routing";
/// The `external_ids` key naming the chassis that learned the route.
pub const CHASSIS_KEY: &str = "ovn-route:chassis";
/// `RTPROT_STATIC`: this protocol and lower ones are never learned.
pub const MAX_NOT_LEARNED: u8 = 4;

/// One next hop of a kernel route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NextHop {
    /// The gateway address, if any.
    pub gateway: Option<IpAddr>,
    /// The output interface, if known.
    pub dev: Option<String>,
}

/// A route of a router's table as the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// The destination.
    pub prefix: IpNet,
    /// Its protocol number.
    pub protocol: u8,
    /// Its next hops (several for a multipath route).
    pub nexthops: Vec<NextHop>,
}

/// Whether a kernel route is learned at all.
pub fn learnable(r: &KernelRoute) -> bool {
    r.protocol != PROTOCOL
        && r.protocol > MAX_NOT_LEARNED
        && !link_local(&r.prefix)
        && r.nexthops.iter().any(|n| n.gateway.is_some())
}

/// A route to hold in the NB.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Learned {
    /// Destination (host bits cleared).
    pub prefix: IpNet,
    /// Next hop.
    pub nexthop: IpAddr,
    /// Output port (a gateway port of the router).
    pub output_port: String,
}

/// The learned routes of `router` given its table's routes.
pub fn desired_learned(router: &RouterPlan, table: &[KernelRoute]) -> BTreeSet<Learned> {
    let mut out = BTreeSet::new();
    for r in table.iter().filter(|r| learnable(r)) {
        for nh in &r.nexthops {
            let Some(gw) = nh.gateway else {
                continue;
            };
            let cands: Vec<_> = router
                .bound_ports
                .iter()
                .filter(|p| p.learning)
                .filter(|p| {
                    p.ifname
                        .as_deref()
                        .is_none_or(|i| nh.dev.as_deref() == Some(i))
                })
                .collect();
            let holding: Vec<_> = cands
                .iter()
                .filter(|p| p.networks.iter().any(|n| n.contains(&gw)))
                .collect();
            let chosen: Vec<&str> = if holding.is_empty() {
                cands.iter().map(|p| p.name.as_str()).collect()
            } else {
                holding.iter().map(|p| p.name.as_str()).collect()
            };
            for port in chosen {
                out.insert(Learned {
                    prefix: r.prefix.trunc(),
                    nexthop: gw,
                    output_port: port.to_string(),
                });
            }
        }
    }
    out
}

/// One marked static route found in the NB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedRoute {
    /// Its row.
    pub uuid: Uuid,
    /// The route, if its columns parse.
    pub route: Option<Learned>,
    /// The chassis that learned it.
    pub chassis: String,
}

/// What to change on one router.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterChange {
    /// `Logical_Router` row.
    pub router: Uuid,
    /// Its name.
    pub name: String,
    /// Its `static_routes` as read (the transaction waits on it).
    pub static_routes: Vec<Uuid>,
    /// Marked rows to remove.
    pub delete: Vec<Uuid>,
    /// Routes to add (marked with this chassis).
    pub add: Vec<Learned>,
    /// Learned routes not written because an unmarked route of the router has the prefix.
    pub shadowed: Vec<Learned>,
}

/// Whether a static route row carries our mark.
pub fn is_ours(sr: &StaticRoute<'_>) -> bool {
    sr.external_ids().get(OWNER_KEY) == Some(OWNER)
}

/// Whether an NB change set (applied to `nb`) carries nothing but learned routes: marked static
/// routes added or removed, and routers whose only change is those rows in `static_routes`.
/// The advertise plan ignores learned routes, so such a change (typically the echo of our own
/// transaction) needs no new plan.
pub fn only_learned_routes(cs: &ovsdb::ChangeSet, nb: &Replica) -> bool {
    const SR: &str = "Logical_Router_Static_Route";
    let Some(sr_table) = nb.table(SR) else {
        return cs.is_empty();
    };
    let ext = sr_table.layout().column_index("external_ids");
    let old_marked = |row: &ovsdb::Row| {
        ext.and_then(|i| row.values().get(i))
            .and_then(|d| d.get_str(OWNER_KEY))
            == Some(OWNER)
    };
    let now_marked = |u: &Uuid| StaticRoute::get(nb, u).is_some_and(|sr| is_ours(&sr));
    let mut removed_marked: BTreeSet<Uuid> = BTreeSet::new();
    for (name, t) in &cs.tables {
        match name.as_str() {
            SR => {
                if !t.inserted.iter().all(now_marked)
                    || !t
                        .modified
                        .iter()
                        .all(|(u, _, old)| old_marked(old) && now_marked(u))
                    || !t.deleted.iter().all(|(_, old)| old_marked(old))
                {
                    return false;
                }
                removed_marked.extend(t.deleted.iter().map(|(u, _)| *u));
            }
            "Logical_Router" => {}
            _ if t.is_empty() => {}
            _ => return false,
        }
    }
    let Some(routers) = cs.tables.get("Logical_Router") else {
        return true;
    };
    if !routers.inserted.is_empty() || !routers.deleted.is_empty() {
        return false;
    }
    let lr = nb.table("Logical_Router");
    let sr_col = lr.and_then(|t| t.layout().column_index("static_routes"));
    routers.modified.iter().all(|(u, cols, old)| {
        if cols.iter().any(|c| c != "static_routes") {
            return false;
        }
        let before: BTreeSet<Uuid> = sr_col
            .and_then(|i| old.values().get(i))
            .map(|d| d.uuids().collect())
            .unwrap_or_default();
        let after: BTreeSet<Uuid> = LogicalRouter::get(nb, u)
            .map(|r| r.static_routes().collect())
            .unwrap_or_default();
        after.difference(&before).all(now_marked)
            && before
                .difference(&after)
                .all(|x| removed_marked.contains(x) || now_marked(x))
    })
}

/// The NB changes that make the marked static routes match `desired` (router -> learned
/// routes, for the routers advertised here that learn). Routers advertised here: every marked
/// route this chassis manages (its own, and any through a port bound here or through a port
/// the router no longer has) that is not desired goes; another chassis' routes through its
/// own gateway port stay. Routers with dynamic routing or learning off: every marked route
/// goes. Other routers (advertised elsewhere): only this chassis' go.
pub fn nb_changes(
    nb: &Replica,
    plan: &DynamicPlan,
    chassis: &str,
    desired: &BTreeMap<Uuid, BTreeSet<Learned>>,
) -> Vec<RouterChange> {
    let mut out = vec![];
    for r in LogicalRouter::all(nb) {
        let statics: Vec<StaticRoute<'_>> = r
            .static_routes()
            .filter_map(|u| StaticRoute::get(nb, &u))
            .collect();
        let mut marked = vec![];
        let mut foreign: BTreeSet<IpNet> = BTreeSet::new();
        for sr in &statics {
            if is_ours(sr) {
                marked.push(MarkedRoute {
                    uuid: sr.uuid(),
                    route: parse_prefix(sr.ip_prefix()).and_then(|prefix| {
                        Some(Learned {
                            prefix,
                            nexthop: sr.nexthop().parse().ok()?,
                            output_port: sr.output_port()?.to_string(),
                        })
                    }),
                    chassis: sr.external_ids().get(CHASSIS_KEY).unwrap_or("").to_string(),
                });
            } else if sr.policy().is_none_or(|p| p == "dst-ip") && sr.route_table().is_empty() {
                if let Some(p) = parse_prefix(sr.ip_prefix()) {
                    foreign.insert(p);
                }
            }
        }
        let mut ch = RouterChange {
            router: r.uuid(),
            name: r.name().to_string(),
            static_routes: statics.iter().map(|s| s.uuid()).collect(),
            ..Default::default()
        };
        // A router advertised from several chassis (a gateway port bound on each): each
        // chassis manages the routes learned through its own ports. Routes of another chassis
        // through a port of the router not bound here are that chassis' (left alone); through
        // a port bound here (a failover), or a port the router no longer has, they are ours
        // to reconcile.
        let managed = |m: &MarkedRoute| -> bool {
            if m.chassis == chassis {
                return true;
            }
            let (Some(rp), Some(l)) = (plan.routers.get(&r.uuid()), &m.route) else {
                return true;
            };
            rp.bound_ports.iter().any(|p| p.name == l.output_port)
                || !r.ports().any(|u| {
                    LogicalRouterPort::get(nb, &u).is_some_and(|p| p.name() == l.output_port)
                })
        };
        if let Some(want) = plan.routers.get(&r.uuid()).and(desired.get(&r.uuid())) {
            let mut have = BTreeSet::new();
            for m in marked.iter().filter(|m| managed(m)) {
                match &m.route {
                    Some(l)
                        if m.chassis == chassis
                            && want.contains(l)
                            && !foreign.contains(&l.prefix)
                            && have.insert(l.clone()) => {}
                    _ => ch.delete.push(m.uuid),
                }
            }
            for l in want {
                if foreign.contains(&l.prefix) {
                    ch.shadowed.push(l.clone());
                } else if !have.contains(l) {
                    ch.add.push(l.clone());
                }
            }
        } else if plan.routers.contains_key(&r.uuid()) {
            // Here without learning: none of the routes this chassis manages stays.
            ch.delete = marked
                .iter()
                .filter(|m| managed(m))
                .map(|m| m.uuid)
                .collect();
        } else if plan.learning_off.contains(&r.uuid()) {
            // Dynamic routing or learning off on the router: none stays, whoever learned it.
            ch.delete = marked.iter().map(|m| m.uuid).collect();
        } else {
            ch.delete = marked
                .iter()
                .filter(|m| m.chassis == chassis)
                .map(|m| m.uuid)
                .collect();
        }
        if !ch.delete.is_empty() || !ch.add.is_empty() || !ch.shadowed.is_empty() {
            out.push(ch);
        }
    }
    out
}
