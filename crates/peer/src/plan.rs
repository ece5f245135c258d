//! The planner: (NB snapshot) -> the status of every declaration and the OVN objects every
//! created (mutual) relationship needs. Pure.
//!
//! Two local declarations `d` (on router A) and `e` (on router B != A) are *partners* when `d`'s
//! target names B and `e`'s target names A (project and router name or short name). A declaration
//! with exactly one partner whose only partner it is, is *created*; any other valid declaration is
//! *pending*. The partner search is one filter over every declaration: a target that does not
//! exist, a target in another project and a target that has not declared back all simply leave
//! the filter empty, and produce the same [`Status::Pending`].
//!
//! Addressing: each peer port carries its own network's gateway address(es) as host prefixes
//! (`/32`, `/128`); the routes for the other side's subnets go to the other side's gateway
//! address through the peer port. See ARCHITECTURE.md, "Peering".

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ovsdb::Uuid;

use crate::cidr::Cidr;
use crate::model::{
    validate_peer_name, Declaration, PeerType, Status, OWNER_KEY, OWNER_VALUE, PARTNER_KEY,
    PEERING_KEY,
};
use crate::snapshot::{is_marked, Router, Snapshot};

/// One declaration: the router it is stored on and its name there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeclRef {
    /// The declaring router.
    pub router: Uuid,
    /// The peer's name.
    pub name: String,
}

impl DeclRef {
    /// A reference to declaration `name` on `router`.
    pub fn new(router: Uuid, name: &str) -> DeclRef {
        DeclRef {
            router,
            name: name.to_string(),
        }
    }

    /// Parses the `<router uuid>/<peer name>` form used in [`PARTNER_KEY`].
    pub fn parse(s: &str) -> Option<DeclRef> {
        let (u, n) = s.split_once('/')?;
        Some(DeclRef {
            router: Uuid::parse_str(u).ok()?,
            name: n.to_string(),
        })
    }
}

impl fmt::Display for DeclRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.router, self.name)
    }
}

/// A router port the plan wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredPort {
    /// The router it belongs to.
    pub router: Uuid,
    /// `name` (deterministic: [`port_name`]).
    pub name: String,
    /// `mac` (deterministic: [`port_mac`]).
    pub mac: String,
    /// `networks`: the router's own gateway addresses as host prefixes.
    pub networks: Vec<String>,
    /// `peer`: the partner's port.
    pub peer: String,
    /// `external_ids`: the mark.
    pub external_ids: BTreeMap<String, String>,
}

/// A static route the plan wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRoute {
    /// The router it belongs to.
    pub router: Uuid,
    /// `ip_prefix`: a subnet of the other network.
    pub ip_prefix: String,
    /// `nexthop`: the other network's gateway address.
    pub nexthop: String,
    /// `output_port`: this router's peer port.
    pub output_port: String,
    /// `external_ids`: the mark.
    pub external_ids: BTreeMap<String, String>,
}

/// A created relationship: two partner declarations (`a < b`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Relationship {
    /// One side.
    pub a: DeclRef,
    /// The other side.
    pub b: DeclRef,
}

/// What the planner decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The status of every declaration on every router.
    pub statuses: BTreeMap<DeclRef, Status>,
    /// Each declaration's partner, for created relationships (both directions).
    pub partners: BTreeMap<DeclRef, DeclRef>,
    /// Created relationships.
    pub relationships: Vec<Relationship>,
    /// The ports of created relationships (two per relationship).
    pub ports: Vec<DesiredPort>,
    /// The routes of created relationships.
    pub routes: Vec<DesiredRoute>,
}

impl Plan {
    /// The status of declaration `name` on `router`.
    pub fn status(&self, router: Uuid, name: &str) -> Option<&Status> {
        self.statuses.get(&DeclRef::new(router, name))
    }
}

/// The name of the peer port of declaration `peer` on router `router_name`.
pub fn port_name(router_name: &str, peer: &str) -> String {
    format!("ovnr-{router_name}-peer-{peer}")
}

/// FNV-1a, 64 bits: stable across builds (unlike `std`'s hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The MAC of the peer port of declaration `peer` on `router`: locally administered, unicast
/// (`0a:` prefix), the rest from a stable hash.
pub fn port_mac(router: Uuid, peer: &str) -> String {
    let h = fnv1a(format!("{router}/{peer}").as_bytes()).to_be_bytes();
    format!(
        "0a:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        h[0], h[1], h[2], h[3], h[4]
    )
}

/// The mark of an object serving declaration `own` with partner `partner`.
pub fn mark(own: &DeclRef, partner: &DeclRef) -> BTreeMap<String, String> {
    BTreeMap::from([
        (OWNER_KEY.to_string(), OWNER_VALUE.to_string()),
        (PEERING_KEY.to_string(), own.name.clone()),
        (PARTNER_KEY.to_string(), partner.to_string()),
    ])
}

/// What the planner needs to know of a network's addressing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkFacts {
    /// The subnets behind the router (networks of its ports other than peer and uplink ports),
    /// host bits cleared, sorted, unique.
    pub subnets: Vec<Cidr>,
    /// The first IPv4 address of those ports (ports in name order): the network's gateway.
    pub gateway4: Option<IpAddr>,
    /// The first global IPv6 address of those ports.
    pub gateway6: Option<IpAddr>,
}

impl NetworkFacts {
    fn gateway(&self, v4: bool) -> Option<IpAddr> {
        if v4 {
            self.gateway4
        } else {
            self.gateway6
        }
    }
}

/// The addressing facts of `router`: which of its ports count as the network's own (not a port
/// of ours, not a port with a `peer`, not a gateway port — `gateway_chassis`, `ha_chassis_group`,
/// `options:redirect-chassis` or `options:chassis` — and not the port a default route leaves
/// through), their subnets and the gateway addresses.
pub fn network_facts(snap: &Snapshot, router: &Router) -> NetworkFacts {
    let mut default_ports: BTreeSet<&str> = BTreeSet::new();
    let mut default_hops: Vec<IpAddr> = Vec::new();
    for r in router
        .static_routes
        .iter()
        .filter_map(|u| snap.routes.get(u))
    {
        if Cidr::parse(&r.ip_prefix).is_some_and(|c| c.len == 0) {
            match &r.output_port {
                Some(p) => {
                    default_ports.insert(p);
                }
                None => default_hops.extend(Cidr::parse(&r.nexthop).map(|c| c.addr)),
            }
        }
    }
    let mut ports: Vec<_> = router
        .ports
        .iter()
        .filter_map(|u| snap.ports.get(u))
        .filter(|p| {
            !is_marked(&p.external_ids)
                && p.peer.is_none()
                && !p.gateway
                && !p.options.contains_key("redirect-chassis")
                && !p.options.contains_key("chassis")
                && !default_ports.contains(p.name.as_str())
        })
        .collect();
    ports.sort_by(|a, b| a.name.cmp(&b.name));
    let mut facts = NetworkFacts::default();
    let mut subnets = BTreeSet::new();
    for p in ports {
        let nets: Vec<Cidr> = p
            .networks
            .iter()
            .filter_map(|n| Cidr::parse(n))
            .filter(|c| !c.is_link_local())
            .collect();
        if nets
            .iter()
            .any(|c| default_hops.iter().any(|h| c.overlaps(&Cidr::host(*h))))
        {
            continue; // the uplink of a default route given by next hop
        }
        for c in nets {
            if c.is_ipv4() {
                facts.gateway4.get_or_insert(c.addr);
            } else {
                facts.gateway6.get_or_insert(c.addr);
            }
            subnets.insert(c.network());
        }
    }
    facts.subnets = subnets.into_iter().collect();
    facts
}

/// A declaration that made it through validation.
struct Live<'a> {
    decl: DeclRef,
    project: &'a str,
    network: &'a str,
}

/// Plans every declaration of `snap`.
pub fn plan(snap: &Snapshot) -> Plan {
    let mut out = Plan::default();
    // 1. Parse and validate each router's declarations.
    let mut live: Vec<Live<'_>> = Vec::new();
    let mut parsed: Vec<(DeclRef, Declaration)> = Vec::new();
    for (ru, r) in &snap.routers {
        let mut by_target: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for (name, raw) in r.raw_declarations() {
            let d = DeclRef::new(*ru, name);
            let res = validate_peer_name(name).and_then(|_| Declaration::parse(raw));
            match res {
                Err(e) => {
                    out.statuses.insert(d, Status::Errored(e.to_string()));
                }
                Ok(decl) if decl.kind == PeerType::Remote => {
                    // Planned by `remote::plan_remote` (it needs the IC-NB); pending until then.
                    out.statuses.insert(d, Status::Pending);
                }
                Ok(decl) => {
                    let (p, n) = decl.local_target().expect("validated local declaration");
                    by_target
                        .entry((p.to_string(), n.to_string()))
                        .or_default()
                        .push(name.to_string());
                    parsed.push((d, decl));
                }
            }
        }
        for ((p, n), names) in by_target.iter().filter(|(_, v)| v.len() > 1) {
            for name in names {
                out.statuses.insert(
                    DeclRef::new(*ru, name),
                    Status::Errored(format!(
                        "peers {} of this network have the same target {p}/{n}",
                        names.join(", ")
                    )),
                );
            }
        }
    }
    for (d, decl) in &parsed {
        if out.statuses.contains_key(d) {
            continue;
        }
        let (p, n) = decl.local_target().expect("local");
        if snap.routers[&d.router].answers_to(p, n) {
            out.statuses.insert(
                d.clone(),
                Status::Errored("a network cannot peer with itself".into()),
            );
            continue;
        }
        live.push(Live {
            decl: d.clone(),
            project: p,
            network: n,
        });
    }

    // 2. Partners: one filter over all live declarations, whatever the target is.
    let names_router = |l: &Live<'_>, router: Uuid| -> bool {
        snap.routers[&router].answers_to(l.project, l.network)
    };
    let mut partners: BTreeMap<&DeclRef, Vec<&DeclRef>> = BTreeMap::new();
    for d in &live {
        let found: Vec<&DeclRef> = live
            .iter()
            .filter(|e| {
                e.decl.router != d.decl.router
                    && names_router(d, e.decl.router)
                    && names_router(e, d.decl.router)
            })
            .map(|e| &e.decl)
            .collect();
        partners.insert(&d.decl, found);
    }

    // 3. Mutual pairs; everything else is pending, with one and the same status.
    let mut pairs: Vec<(DeclRef, DeclRef)> = Vec::new();
    for (d, ps) in &partners {
        let mutual = match ps.as_slice() {
            [e] => partners.get(e).is_some_and(|back| back.as_slice() == [*d]),
            _ => false,
        };
        if mutual && *d < ps[0] {
            pairs.push(((*d).clone(), ps[0].clone()));
        } else if !mutual {
            out.statuses.insert((*d).clone(), Status::Pending);
        }
    }

    // 4. Objects of each pair; a pair that cannot be realised is errored on both sides.
    let mut facts: BTreeMap<Uuid, NetworkFacts> = BTreeMap::new();
    let mut candidates: Vec<(
        Relationship,
        Vec<crate::plan::DesiredPort>,
        Vec<DesiredRoute>,
    )> = Vec::new();
    for (a, b) in pairs {
        for r in [a.router, b.router] {
            facts
                .entry(r)
                .or_insert_with(|| network_facts(snap, &snap.routers[&r]));
        }
        match realise(snap, &facts, &a, &b) {
            Ok((ports, routes)) => candidates.push((Relationship { a, b }, ports, routes)),
            Err(reason) => {
                out.statuses.insert(a, Status::Errored(reason.clone()));
                out.statuses.insert(b, Status::Errored(reason));
            }
        }
    }
    // Port names must be unique across relationships (router names need not be unique).
    let mut name_count: BTreeMap<String, usize> = BTreeMap::new();
    for (_, ports, _) in &candidates {
        for p in ports {
            *name_count.entry(p.name.clone()).or_default() += 1;
        }
    }
    for (rel, ports, routes) in candidates {
        if let Some(p) = ports.iter().find(|p| name_count[&p.name] > 1) {
            let reason = format!(
                "peer port name {:?} would be used twice (routers with the same name)",
                p.name
            );
            out.statuses.insert(rel.a, Status::Errored(reason.clone()));
            out.statuses.insert(rel.b, Status::Errored(reason));
            continue;
        }
        out.statuses.insert(rel.a.clone(), Status::Created);
        out.statuses.insert(rel.b.clone(), Status::Created);
        out.partners.insert(rel.a.clone(), rel.b.clone());
        out.partners.insert(rel.b.clone(), rel.a.clone());
        out.ports.extend(ports);
        out.routes.extend(routes);
        out.relationships.push(rel);
    }
    out
}

type Objects = (Vec<DesiredPort>, Vec<DesiredRoute>);

/// The ports and routes of the relationship `a` <-> `b`, or why it cannot be made.
fn realise(
    snap: &Snapshot,
    facts: &BTreeMap<Uuid, NetworkFacts>,
    a: &DeclRef,
    b: &DeclRef,
) -> Result<Objects, String> {
    let (ra, rb) = (&snap.routers[&a.router], &snap.routers[&b.router]);
    let (fa, fb) = (&facts[&a.router], &facts[&b.router]);
    for sa in &fa.subnets {
        if let Some(sb) = fb.subnets.iter().find(|sb| sa.overlaps(sb)) {
            return Err(format!(
                "the subnets of the two networks overlap ({sa} and {sb})"
            ));
        }
    }
    let families: Vec<bool> = [true, false]
        .into_iter()
        .filter(|v4| fa.gateway(*v4).is_some() && fb.gateway(*v4).is_some())
        .collect();
    if families.is_empty() {
        return Err("the two networks have no IP family in common".into());
    }
    let (pa, pb) = (port_name(&ra.name, &a.name), port_name(&rb.name, &b.name));
    if pa == pb {
        return Err(format!("both peer ports would be called {pa:?}"));
    }
    for name in [&pa, &pb] {
        if snap
            .ports
            .values()
            .any(|p| &p.name == name && !is_marked(&p.external_ids))
        {
            return Err(format!(
                "router port name {name:?} is taken by a port ovn-route does not own"
            ));
        }
    }
    let mut ports = Vec::new();
    let mut routes = Vec::new();
    for (own, other, f_own, f_other, p_own, p_other) in
        [(a, b, fa, fb, &pa, &pb), (b, a, fb, fa, &pb, &pa)]
    {
        let ext = mark(own, other);
        ports.push(DesiredPort {
            router: own.router,
            name: p_own.clone(),
            mac: port_mac(own.router, &own.name),
            networks: families
                .iter()
                .filter_map(|v4| f_own.gateway(*v4))
                .map(|g| Cidr::host(g).to_string())
                .collect(),
            peer: p_other.clone(),
            external_ids: ext.clone(),
        });
        for s in f_other
            .subnets
            .iter()
            .filter(|s| families.contains(&s.is_ipv4()))
        {
            routes.push(DesiredRoute {
                router: own.router,
                ip_prefix: s.to_string(),
                nexthop: f_other
                    .gateway(s.is_ipv4())
                    .expect("family in common")
                    .to_string(),
                output_port: p_own.clone(),
                external_ids: ext.clone(),
            });
        }
    }
    Ok((ports, routes))
}
