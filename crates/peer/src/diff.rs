//! Desired objects vs the marked objects in the NB -> operations. Objects without our mark are
//! never touched (nor even compared). Pure.

use std::collections::{BTreeMap, BTreeSet};

use ovsdb::Uuid;

use crate::model::PARTNER_KEY;
use crate::plan::{DeclRef, DesiredPort, DesiredRoute, Plan};
use crate::snapshot::{is_marked, Snapshot};

/// One change to the NB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Insert a router port and add it to its router.
    CreatePort(DesiredPort),
    /// Set the columns of one of our ports to the desired values.
    UpdatePort {
        /// The existing port.
        uuid: Uuid,
        /// What it must look like.
        port: DesiredPort,
    },
    /// Remove one of our ports from its router (and delete it).
    DeletePort {
        /// The router holding it.
        router: Uuid,
        /// The port.
        uuid: Uuid,
    },
    /// Insert a static route and add it to its router.
    CreateRoute(DesiredRoute),
    /// Set the columns of one of our routes.
    UpdateRoute {
        /// The existing route.
        uuid: Uuid,
        /// What it must look like.
        route: DesiredRoute,
    },
    /// Remove one of our routes from its router (and delete it).
    DeleteRoute {
        /// The router holding it.
        router: Uuid,
        /// The route.
        uuid: Uuid,
    },
}

impl Op {
    /// The router whose row the operation changes.
    pub fn router(&self) -> Uuid {
        match self {
            Op::CreatePort(p) | Op::UpdatePort { port: p, .. } => p.router,
            Op::CreateRoute(r) | Op::UpdateRoute { route: r, .. } => r.router,
            Op::DeletePort { router, .. } | Op::DeleteRoute { router, .. } => *router,
        }
    }

    /// The partner router the operation depends on (from the mark), if known.
    pub fn partner_router(&self, snap: &Snapshot) -> Option<Uuid> {
        let ext = match self {
            Op::CreatePort(p) | Op::UpdatePort { port: p, .. } => &p.external_ids,
            Op::CreateRoute(r) | Op::UpdateRoute { route: r, .. } => &r.external_ids,
            Op::DeletePort { uuid, .. } => &snap.ports.get(uuid)?.external_ids,
            Op::DeleteRoute { uuid, .. } => &snap.routes.get(uuid)?.external_ids,
        };
        ext.get(PARTNER_KEY)
            .and_then(|p| DeclRef::parse(p))
            .map(|d| d.router)
    }
}

fn port_matches(a: &DesiredPort, b: &crate::snapshot::RouterPort) -> bool {
    let na: BTreeSet<&str> = a.networks.iter().map(String::as_str).collect();
    let nb: BTreeSet<&str> = b.networks.iter().map(String::as_str).collect();
    a.mac == b.mac
        && na == nb
        && b.peer.as_deref() == Some(a.peer.as_str())
        && a.external_ids == b.external_ids
}

/// The operations that turn the marked objects of `snap` into exactly the objects of `plan`:
/// deletions first, then updates, then creations. A duplicate of a wanted object (two marked
/// rows for one port name or one route) is deleted.
pub fn diff(snap: &Snapshot, plan: &Plan) -> Vec<Op> {
    let (mut deletes, mut updates, mut creates) = (Vec::new(), Vec::new(), Vec::new());

    let want_ports: BTreeMap<(Uuid, &str), &DesiredPort> = plan
        .ports
        .iter()
        .map(|p| ((p.router, p.name.as_str()), p))
        .collect();
    let mut seen_ports: BTreeSet<(Uuid, &str)> = BTreeSet::new();
    for (ru, r) in &snap.routers {
        for pu in &r.ports {
            let Some(p) = snap.ports.get(pu).filter(|p| is_marked(&p.external_ids)) else {
                continue;
            };
            let key = (*ru, p.name.as_str());
            match want_ports.get(&key) {
                Some(want) if seen_ports.insert(key) => {
                    if !port_matches(want, p) {
                        updates.push(Op::UpdatePort {
                            uuid: *pu,
                            port: (*want).clone(),
                        });
                    }
                }
                _ => deletes.push(Op::DeletePort {
                    router: *ru,
                    uuid: *pu,
                }),
            }
        }
    }
    for (key, p) in &want_ports {
        if !seen_ports.contains(key) {
            creates.push(Op::CreatePort((*p).clone()));
        }
    }

    type RouteKey<'a> = (Uuid, &'a str, &'a str);
    let want_routes: BTreeMap<RouteKey<'_>, &DesiredRoute> = plan
        .routes
        .iter()
        .map(|r| ((r.router, r.ip_prefix.as_str(), r.output_port.as_str()), r))
        .collect();
    let mut seen_routes: BTreeSet<RouteKey<'_>> = BTreeSet::new();
    for (ru, r) in &snap.routers {
        for su in &r.static_routes {
            let Some(s) = snap.routes.get(su).filter(|s| is_marked(&s.external_ids)) else {
                continue;
            };
            let key = (
                *ru,
                s.ip_prefix.as_str(),
                s.output_port.as_deref().unwrap_or(""),
            );
            match want_routes.get(&key) {
                Some(want) if seen_routes.insert(key) => {
                    if want.nexthop != s.nexthop || want.external_ids != s.external_ids {
                        updates.push(Op::UpdateRoute {
                            uuid: *su,
                            route: (*want).clone(),
                        });
                    }
                }
                _ => deletes.push(Op::DeleteRoute {
                    router: *ru,
                    uuid: *su,
                }),
            }
        }
    }
    for (key, r) in &want_routes {
        if !seen_routes.contains(key) {
            creates.push(Op::CreateRoute((*r).clone()));
        }
    }

    deletes.extend(updates);
    deletes.extend(creates);
    deletes
}

/// Applies `ops` to a copy of `snap` in memory, as the NB would (for tests and dry runs).
/// Created rows get UUIDs derived from their content.
pub fn simulate(snap: &Snapshot, ops: &[Op]) -> Snapshot {
    use crate::snapshot::{RouterPort, StaticRoute};
    let mut s = snap.clone();
    let new_uuid = |what: &str| {
        let h = what.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Uuid::from_u64_pair(h, 0x5eed)
    };
    for op in ops {
        match op {
            Op::CreatePort(p) | Op::UpdatePort { port: p, .. } => {
                let uuid = match op {
                    Op::UpdatePort { uuid, .. } => *uuid,
                    _ => new_uuid(&format!("port {} {}", p.router, p.name)),
                };
                s.ports.insert(
                    uuid,
                    RouterPort {
                        name: p.name.clone(),
                        mac: p.mac.clone(),
                        networks: p.networks.clone(),
                        peer: Some(p.peer.clone()),
                        gateway: false,
                        options: BTreeMap::new(),
                        external_ids: p.external_ids.clone(),
                    },
                );
                if let Some(r) = s.routers.get_mut(&p.router) {
                    r.ports.insert(uuid);
                }
            }
            Op::CreateRoute(r) | Op::UpdateRoute { route: r, .. } => {
                let uuid = match op {
                    Op::UpdateRoute { uuid, .. } => *uuid,
                    _ => new_uuid(&format!(
                        "route {} {} {}",
                        r.router, r.ip_prefix, r.output_port
                    )),
                };
                s.routes.insert(
                    uuid,
                    StaticRoute {
                        ip_prefix: r.ip_prefix.clone(),
                        nexthop: r.nexthop.clone(),
                        output_port: Some(r.output_port.clone()),
                        external_ids: r.external_ids.clone(),
                    },
                );
                if let Some(rt) = s.routers.get_mut(&r.router) {
                    rt.static_routes.insert(uuid);
                }
            }
            Op::DeletePort { router, uuid } => {
                if let Some(r) = s.routers.get_mut(router) {
                    r.ports.remove(uuid);
                }
                s.ports.remove(uuid);
            }
            Op::DeleteRoute { router, uuid } => {
                if let Some(r) = s.routers.get_mut(router) {
                    r.static_routes.remove(uuid);
                }
                s.routes.remove(uuid);
            }
        }
    }
    s
}
