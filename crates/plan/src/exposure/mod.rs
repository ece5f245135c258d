//! What this chassis exposes through BGP: a pure function of the OVN state, the chassis identity and
//! the configuration (the NB "OVN BGP agent" design, made topology-driven).
//!
//! * Provider network: a switch with a localnet port whose `network_name` is in this chassis'
//!   bridge mappings. Its bridge is where exposed traffic enters OVN.
//! * Where a port lives: SB `Port_Binding.chassis` when a Southbound replica is given (works on
//!   23.03), otherwise NB `options:requested-chassis` for switch ports and
//!   `Logical_Router_Port.status:hosting-chassis` (23.09+) for gateway ports.
//! * Exposed: VIF and virtual ports on provider networks bound here; floating IPs (distributed ones on
//!   the chassis of their port, centralized ones on the gateway's chassis); gateway (cr-lrp) IPs on the
//!   chassis hosting them; load-balancer VIPs of routers whose gateway is here; and, when enabled,
//!   tenant subnets or tenant IPs through the gateway's chassis.
//! * Never exposed: values that fail to parse, default routes, link-local, loopback and multicast
//!   addresses, and anything outside `allowed_prefixes`. Each rejection names the row it came from.
//!
//! Neutron `external_ids` are used when present and never required.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use ovsdb::{Replica, TableSelect};

use crate::ChassisIdentity;

mod index;
mod planner;
mod units;

pub use planner::{ExposurePlanner, PlanDelta};

/// How tenant networks are advertised (`advertisement_method_tenant_networks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TenantMethod {
    /// One host route per tenant port IP.
    #[default]
    Host,
    /// The tenant subnet itself.
    Subnet,
}

/// The options that decide what is exposed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExposureConfig {
    /// `expose_tenant_networks`.
    pub expose_tenant_networks: bool,
    /// `advertisement_method_tenant_networks`.
    pub tenant_method: TenantMethod,
    /// `require_snat_disabled_for_tenant_networks`: skip IPv4 tenant subnets that the router SNATs.
    pub require_snat_disabled_for_tenant_networks: bool,
    /// `expose_ipv6_gua_tenant_networks`: expose IPv6 global unicast tenant networks even when
    /// `expose_tenant_networks` is off.
    pub expose_ipv6_gua_tenant_networks: bool,
    /// `address_scopes`: when not empty, only tenant subnets of these Neutron address scopes.
    pub address_scopes: Vec<String>,
    /// `allowed_prefixes`: when not empty, only IPs inside these prefixes are exposed.
    pub allowed_prefixes: Vec<IpNet>,
}

/// Why a prefix is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A VIF or virtual port on a provider network, bound here.
    ProviderPort,
    /// A floating IP (NAT `dnat_and_snat`).
    FloatingIp,
    /// An IP of a gateway port (cr-lrp) hosted here.
    GatewayIp,
    /// A load-balancer VIP of a router whose gateway is here.
    LoadBalancerVip,
    /// A tenant subnet behind a gateway hosted here (`subnet` method).
    TenantSubnet,
    /// A tenant port IP behind a gateway hosted here (`host` method).
    TenantIp,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::ProviderPort => "provider port",
            Kind::FloatingIp => "floating IP",
            Kind::GatewayIp => "gateway IP",
            Kind::LoadBalancerVip => "load-balancer VIP",
            Kind::TenantSubnet => "tenant subnet",
            Kind::TenantIp => "tenant IP",
        })
    }
}

/// A router gateway port hosted on this chassis: where tenant traffic enters OVN.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gateway {
    /// The router port's name (its chassis-redirect port is `cr-<name>`).
    pub port: String,
    /// Its MAC (for the permanent neighbour entry).
    pub mac: String,
    /// Its IPv4 address on the provider network, if any.
    pub ipv4: Option<IpAddr>,
    /// Its IPv6 address on the provider network, if any.
    pub ipv6: Option<IpAddr>,
    /// The IPv6 provider network of `ipv6` (for the NDP proxy of that network's first address).
    pub ipv6_network: Option<IpNet>,
}

impl Gateway {
    /// The gateway address of the same family as `ip`.
    pub fn address_for(&self, ip: IpAddr) -> Option<IpAddr> {
        if ip.is_ipv4() {
            self.ipv4
        } else {
            self.ipv6
        }
    }
}

/// One exposed prefix, where its traffic enters OVN, and the rows behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The prefix: a /32 or /128, or a tenant subnet.
    pub prefix: IpNet,
    /// Why it is exposed.
    pub kind: Kind,
    /// The provider bridge through which its traffic enters OVN (shared by every exposure on it).
    pub bridge: Arc<str>,
    /// The VLAN of the provider network (`tag` of its localnet port), when it is tagged: traffic
    /// enters through the VLAN device on the bridge.
    pub vlan: Option<u16>,
    /// For traffic that must go through a gateway port: that gateway (shared by the router's
    /// exposures).
    pub gateway: Option<Arc<Gateway>>,
    /// The OVN rows behind it, e.g. `Logical_Switch_Port vm1`.
    pub sources: Vec<Arc<str>>,
}

/// A value that was not exposed, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rejected {
    /// The offending value as found.
    pub value: String,
    /// The row it came from.
    pub source: String,
    /// Why it was refused.
    pub reason: String,
}

/// The exposure plan: what this chassis advertises, and what it refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExposurePlan {
    /// Exposed prefixes.
    pub exposed: BTreeMap<IpNet, Exposure>,
    /// Values refused, sorted.
    pub rejected: Vec<Rejected>,
}

impl ExposurePlan {
    /// The exposed prefixes of one kind.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Exposure> {
        self.exposed.values().filter(move |e| e.kind == kind)
    }
}

/// The Northbound tables and columns the planner reads (what the agent monitors: nothing else,
/// which halves the initial download of a Neutron NB, whose `external_ids` are large).
pub fn nb_tables() -> Vec<TableSelect> {
    select(&[
        ("Logical_Switch", &["ports"]),
        (
            "Logical_Switch_Port",
            &[
                "name",
                "type",
                "addresses",
                "dynamic_addresses",
                "options",
                "enabled",
                "tag",
            ],
        ),
        (
            "Logical_Router",
            &[
                "name",
                "ports",
                "nat",
                "load_balancer",
                "load_balancer_group",
                "options",
                "enabled",
            ],
        ),
        (
            "Logical_Router_Port",
            &[
                "name",
                "mac",
                "networks",
                "gateway_chassis",
                "ha_chassis_group",
                "peer",
                "options",
                "external_ids",
                "status",
            ],
        ),
        (
            "NAT",
            &[
                "type",
                "external_ip",
                "external_mac",
                "logical_ip",
                "logical_port",
            ],
        ),
        ("Load_Balancer", &["name", "vips", "external_ids"]),
        ("Load_Balancer_Group", &["load_balancer"]),
    ])
}

/// The Southbound tables and columns the planner reads.
pub fn sb_tables() -> Vec<TableSelect> {
    select(&[
        ("Chassis", &["name"]),
        ("Port_Binding", &["logical_port", "chassis"]),
    ])
}

fn select(tables: &[(&str, &[&str])]) -> Vec<TableSelect> {
    tables
        .iter()
        .map(|(t, cols)| TableSelect::columns(t, cols))
        .collect()
}

/// Computes the exposure plan of chassis `me` from scratch (an [`ExposurePlanner`] keeps it up to
/// date instead).
pub fn plan_exposure(
    nb: &Replica,
    sb: Option<&Replica>,
    me: &ChassisIdentity,
    cfg: &ExposureConfig,
) -> ExposurePlan {
    let mut p = ExposurePlanner::new(me.clone(), cfg.clone());
    p.rebuild(nb, sb);
    p.plan().clone()
}
