//! Route exchange driven by OVN's own `dynamic-routing*` options (as OVN 25.03+ does natively),
//! for every OVN from 23.03 on: a pure function of the NB (and SB when replicated), the chassis
//! identity and the local Open_vSwitch port mapping.
//!
//! * Which routers this chassis advertises for: `dynamic-routing=true`, enabled, and either a
//!   gateway router whose `options:chassis` is this chassis or a router with a distributed gateway
//!   port bound here (SB `Port_Binding` of `cr-<lrp>`; without SB, NB `status:hosting-chassis`).
//! * Each router's table (`dynamic-routing-vrf-id`, else the SB datapath tunnel key; reserved ids
//!   refused) and VRF name (`dynamic-routing-vrf-name`, else `ovnvrf<table>`).
//! * What it advertises ([`advertise`]): per redistribute type with router and per-port overrides,
//!   tracked ports, metric 100 when the tracked port is bound here and 1000 otherwise, local-only,
//!   blackhole unless a prefix next hop is set.
//! * What it learns ([`learn`]): which kernel routes qualify and which NB static routes (marked as
//!   ours, with the learning chassis) must exist.
//! * An OVN that does this itself (its SB has `Advertised_Route`) makes the plan stand aside.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use ovsdb::{Replica, TableSelect, Uuid};

use crate::exposure::Rejected;
use crate::ChassisIdentity;

pub mod advertise;
pub mod learn;
pub mod options;
mod topology;

#[cfg(test)]
mod tests;

pub use options::Redistribute;

/// The protocol number of advertised routes (`RTPROT_OVN`, "ovn" in iproute2).
pub const PROTOCOL: u8 = 84;
/// The metric of a route whose tracked port is bound on this chassis.
pub const METRIC_LOCAL: u32 = 100;
/// The metric of every other advertised route.
pub const METRIC_DEFAULT: u32 = 1000;

/// Where an advertised prefix comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A router port's network (`connected`).
    Connected,
    /// A host address on a router port's network (`connected-as-host`).
    ConnectedAsHost,
    /// A static route of the router (`static`).
    Static,
    /// A NAT external IP (`nat`).
    Nat,
    /// A load-balancer VIP (`lb`).
    Lb,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Connected => "connected",
            Source::ConnectedAsHost => "connected-as-host",
            Source::Static => "static",
            Source::Nat => "nat",
            Source::Lb => "lb",
        })
    }
}

/// One route to install in a router's table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Advertised {
    /// The prefix (host bits cleared).
    pub prefix: IpNet,
    /// 100 when the tracked port is bound here, else 1000.
    pub metric: u32,
    /// The prefix next hop of the router for this family; `None`: a blackhole.
    pub nexthop: Option<IpAddr>,
    /// Why it is advertised.
    pub source: Source,
    /// The router port that advertises it.
    pub port: String,
    /// The port whose location sets the metric, if any.
    pub tracked: Option<String>,
}

/// A gateway port of an advertising router, bound here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundPort {
    /// The router port's name (the output port of routes learned through it).
    pub name: String,
    /// Its networks (a learned route prefers the port whose network holds its next hop).
    pub networks: Vec<IpNet>,
    /// Routes are learned through it (neither the router nor the port says no-learning).
    pub learning: bool,
    /// With `dynamic-routing-port-name`: the interface a learned route's next hop must use.
    pub ifname: Option<String>,
    /// `dynamic-routing-maintain-vrf`.
    pub maintain_vrf: bool,
}

/// A router this chassis advertises for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterPlan {
    /// `Logical_Router` row.
    pub uuid: Uuid,
    /// Its name.
    pub name: String,
    /// Its kernel table.
    pub table: u32,
    /// Its VRF's name.
    pub vrf: String,
    /// A bound port asks for the VRF to be created here.
    pub maintain_vrf: bool,
    /// Its gateway ports bound here (every port of a gateway router).
    pub bound_ports: Vec<BoundPort>,
    /// The routes to install, by (prefix, metric): the kernel keeps one route per key.
    pub routes: BTreeMap<(IpNet, u32), Advertised>,
}

impl RouterPlan {
    /// Whether routes are learned for this router (through at least one port).
    pub fn learning(&self) -> bool {
        self.bound_ports.iter().any(|p| p.learning)
    }
}

/// The dynamic-routing plan of this chassis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicPlan {
    /// OVN does dynamic routing itself (SB `Advertised_Route` exists): nothing is done.
    pub native: bool,
    /// The routers advertised here, by row.
    pub routers: BTreeMap<Uuid, RouterPlan>,
    /// Routers whose learned routes must all go (dynamic routing or learning off).
    pub learning_off: BTreeSet<Uuid>,
    /// Invalid values and refused routers, with the row and option named.
    pub problems: Vec<Rejected>,
}

impl DynamicPlan {
    /// The tables of the routers advertised here.
    pub fn tables(&self) -> BTreeSet<u32> {
        self.routers.values().map(|r| r.table).collect()
    }
}

fn select(tables: &[(&str, &[&str])]) -> Vec<TableSelect> {
    tables
        .iter()
        .map(|(t, cols)| TableSelect::columns(t, cols))
        .collect()
}

/// The Northbound tables and columns the dynamic-routing planner reads.
pub fn nb_tables() -> Vec<TableSelect> {
    select(&[
        ("Logical_Switch", &["ports"]),
        (
            "Logical_Switch_Port",
            &["name", "type", "addresses", "dynamic_addresses", "options"],
        ),
        (
            "Logical_Router",
            &[
                "name",
                "ports",
                "nat",
                "load_balancer",
                "load_balancer_group",
                "static_routes",
                "options",
                "enabled",
            ],
        ),
        (
            "Logical_Router_Port",
            &[
                "name",
                "networks",
                "gateway_chassis",
                "ha_chassis_group",
                "peer",
                "options",
                "status",
            ],
        ),
        (
            "Logical_Router_Static_Route",
            &[
                "ip_prefix",
                "nexthop",
                "output_port",
                "policy",
                "route_table",
                "external_ids",
            ],
        ),
        (
            "NAT",
            &[
                "type",
                "external_ip",
                "external_mac",
                "logical_port",
                "gateway_port",
            ],
        ),
        ("Load_Balancer", &["vips"]),
        ("Load_Balancer_Group", &["load_balancer"]),
    ])
}

/// The Southbound tables and columns the dynamic-routing planner reads. `Advertised_Route` is
/// monitored with a condition no row meets: only whether the server's schema has it matters.
pub fn sb_tables() -> Vec<TableSelect> {
    let mut t = select(&[
        ("Chassis", &["name"]),
        ("Port_Binding", &["logical_port", "chassis"]),
        ("Datapath_Binding", &["tunnel_key", "external_ids"]),
    ]);
    let mut native = TableSelect::columns("Advertised_Route", &["ip_prefix"]);
    native.conditions = Some(vec![ovsdb::Condition::uuid(Uuid::nil()).to_json()]);
    t.push(native);
    t
}

/// `a` with the tables and columns of `b` added (a table selected whole stays whole).
pub fn merge_selects(mut a: Vec<TableSelect>, b: Vec<TableSelect>) -> Vec<TableSelect> {
    for s in b {
        match a.iter_mut().find(|x| x.table == s.table) {
            Some(x) => match (&mut x.columns, s.columns) {
                (Some(have), Some(add)) => {
                    for c in add {
                        if !have.contains(&c) {
                            have.push(c);
                        }
                    }
                }
                (cols, _) => *cols = None,
            },
            None => a.push(s),
        }
    }
    a
}

/// Whether the Southbound's schema has `Advertised_Route` (OVN does dynamic routing itself).
pub fn ovn_is_native(sb: Option<&Replica>) -> bool {
    sb.is_some_and(|sb| sb.table("Advertised_Route").is_some())
}

/// Computes the dynamic-routing plan of chassis `me`. `port_mapping` is the Open_vSwitch
/// `external_ids:dynamic-routing-port-mapping` value, if set.
pub fn plan_dynamic(
    nb: &Replica,
    sb: Option<&Replica>,
    me: &ChassisIdentity,
    port_mapping: Option<&str>,
) -> DynamicPlan {
    if ovn_is_native(sb) {
        return DynamicPlan {
            native: true,
            ..Default::default()
        };
    }
    let mut problems = vec![];
    let mapping = port_mapping
        .map(|v| options::port_mapping(v, &mut problems))
        .unwrap_or_default();
    let topo = topology::Topology::new(nb, sb, me);
    let mut plan = DynamicPlan::default();
    for r in ovn_model::nb::LogicalRouter::all(nb) {
        advertise::plan_router(&topo, r, &mapping, &mut plan, &mut problems);
    }
    problems.sort();
    problems.dedup();
    plan.problems = problems;
    plan
}
