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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use ovn_model::nb::{
    LoadBalancer, LogicalRouter, LogicalRouterPort, LogicalSwitch, LogicalSwitchPort, Nat,
};
use ovn_model::sb::{Chassis, PortBinding};
use ovsdb::{Replica, Uuid};

use crate::ChassisIdentity;

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
    /// The provider bridge through which its traffic enters OVN.
    pub bridge: String,
    /// For traffic that must go through a gateway port: that gateway.
    pub gateway: Option<Gateway>,
    /// The OVN rows behind it, e.g. `Logical_Switch_Port vm1`.
    pub sources: Vec<String>,
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

/// Computes the exposure plan of chassis `me`.
pub fn plan_exposure(
    nb: &Replica,
    sb: Option<&Replica>,
    me: &ChassisIdentity,
    cfg: &ExposureConfig,
) -> ExposurePlan {
    let topo = Topology::new(nb, sb, me);
    let mut b = Builder {
        cfg,
        plan: ExposurePlan::default(),
    };
    provider_ports(&topo, &mut b);
    routers(&topo, &mut b);
    b.plan.rejected.sort();
    b.plan.rejected.dedup();
    b.plan
}

/// Indexes of the NB (and SB) rows the plan needs.
struct Topology<'a> {
    nb: &'a Replica,
    me: &'a ChassisIdentity,
    /// Provider switches: switch UUID -> bridge.
    provider: HashMap<Uuid, String>,
    /// Switch of each switch port.
    switch_of_port: HashMap<Uuid, Uuid>,
    /// Router port name -> the switch it attaches to (through a router-type switch port).
    switch_of_lrp: HashMap<&'a str, Uuid>,
    /// Logical ports bound to this chassis.
    bound_here: HashSet<&'a str>,
    /// Logical ports whose binding is known (bound anywhere).
    uses_sb: bool,
}

impl<'a> Topology<'a> {
    fn new(nb: &'a Replica, sb: Option<&'a Replica>, me: &'a ChassisIdentity) -> Self {
        let mappings: HashMap<&str, &str> = me
            .bridge_mappings
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_str()))
            .collect();
        let mut switch_of_port = HashMap::new();
        for ls in LogicalSwitch::all(nb) {
            for p in ls.ports() {
                switch_of_port.insert(p, ls.uuid());
            }
        }
        let mut provider = HashMap::new();
        let mut switch_of_lrp = HashMap::new();
        for lsp in LogicalSwitchPort::all(nb) {
            let Some(&sw) = switch_of_port.get(&lsp.uuid()) else {
                continue;
            };
            match lsp.port_type() {
                "localnet" => {
                    if let Some(br) = lsp
                        .options()
                        .get("network_name")
                        .and_then(|n| mappings.get(n))
                    {
                        provider.insert(sw, br.to_string());
                    }
                }
                "router" => {
                    if let Some(lrp) = lsp.options().get("router-port") {
                        switch_of_lrp.insert(lrp, sw);
                    }
                }
                _ => {}
            }
        }
        let mut bound_here = HashSet::new();
        match sb {
            Some(sb) => {
                let mine: HashSet<Uuid> = Chassis::all(sb)
                    .filter(|c| c.name() == me.system_id)
                    .map(|c| c.uuid())
                    .collect();
                for pb in PortBinding::all(sb) {
                    if pb.chassis().is_some_and(|c| mine.contains(&c)) {
                        bound_here.insert(pb.logical_port());
                    }
                }
            }
            None => {
                let names: Vec<&str> = std::iter::once(me.system_id.as_str())
                    .chain(me.hostname.as_deref())
                    .collect();
                for lsp in LogicalSwitchPort::all(nb) {
                    if lsp
                        .options()
                        .get("requested-chassis")
                        .is_some_and(|c| c.split(',').any(|c| names.contains(&c.trim())))
                    {
                        bound_here.insert(lsp.name());
                    }
                }
                for lrp in LogicalRouterPort::all(nb) {
                    if lrp
                        .status()
                        .get("hosting-chassis")
                        .is_some_and(|c| names.contains(&c))
                    {
                        // The chassis-redirect port carries the binding in the SB; keep both names.
                        bound_here.insert(lrp.name());
                    }
                }
            }
        }
        Topology {
            nb,
            me,
            provider,
            switch_of_port,
            switch_of_lrp,
            bound_here,
            uses_sb: sb.is_some(),
        }
    }

    /// True when logical port `name` (a switch port, or `cr-<lrp>`) is bound to this chassis.
    fn is_here(&self, name: &str) -> bool {
        if self.bound_here.contains(name) {
            return true;
        }
        // Without the SB, the gateway's location is the router port's hosting-chassis.
        !self.uses_sb
            && name
                .strip_prefix("cr-")
                .is_some_and(|lrp| self.bound_here.contains(lrp))
    }

    /// The provider bridge of the switch a router port attaches to.
    fn provider_of_lrp(&self, lrp: &str) -> Option<&str> {
        self.switch_of_lrp
            .get(lrp)
            .and_then(|sw| self.provider.get(sw))
            .map(String::as_str)
    }
}

/// Collects the plan, filtering every candidate.
struct Builder<'c> {
    cfg: &'c ExposureConfig,
    plan: ExposurePlan,
}

impl Builder<'_> {
    fn reject(&mut self, value: &str, source: &str, reason: &str) {
        self.plan.rejected.push(Rejected {
            value: value.to_string(),
            source: source.to_string(),
            reason: reason.to_string(),
        });
    }

    /// Adds `prefix` unless it must never be exposed.
    fn add(
        &mut self,
        prefix: IpNet,
        kind: Kind,
        bridge: &str,
        gateway: Option<&Gateway>,
        source: &str,
    ) {
        let text = prefix.to_string();
        if let Some(reason) = never_exposed(&prefix) {
            self.reject(&text, source, reason);
            return;
        }
        if !self.cfg.allowed_prefixes.is_empty()
            && !self
                .cfg
                .allowed_prefixes
                .iter()
                .any(|a| a.contains(&prefix))
        {
            self.reject(&text, source, "outside allowed_prefixes");
            return;
        }
        let e = self.plan.exposed.entry(prefix).or_insert_with(|| Exposure {
            prefix,
            kind,
            bridge: bridge.to_string(),
            gateway: gateway.cloned(),
            sources: vec![],
        });
        if !e.sources.iter().any(|s| s == source) {
            e.sources.push(source.to_string());
        }
    }

    /// Adds a host prefix for the address text `ip`, or records why not.
    fn add_ip(
        &mut self,
        ip: &str,
        kind: Kind,
        bridge: &str,
        gateway: Option<&Gateway>,
        source: &str,
    ) {
        match ip.parse::<IpAddr>() {
            Ok(addr) => self.add(IpNet::from(addr), kind, bridge, gateway, source),
            Err(_) => self.reject(ip, source, "not an IP address"),
        }
    }
}

/// Why a prefix must never be exposed, if it must not.
fn never_exposed(p: &IpNet) -> Option<&'static str> {
    if p.prefix_len() == 0 {
        return Some("a default route is never exposed");
    }
    let a = p.addr();
    if a.is_unspecified() {
        return Some("unspecified address");
    }
    if a.is_loopback() {
        return Some("loopback address");
    }
    if a.is_multicast() {
        return Some("multicast address");
    }
    let link_local = match a {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        return Some("link-local address");
    }
    None
}

/// The IP addresses in a switch port's `addresses` (and `dynamic_addresses`) entries: each entry is
/// `MAC IP...`; the MAC and the keywords `router`, `unknown` and `dynamic` are skipped.
fn port_ips<'a>(lsp: &LogicalSwitchPort<'a>) -> Vec<&'a str> {
    let mut out = vec![];
    let entries = lsp.addresses().chain(lsp.dynamic_addresses());
    for entry in entries {
        let mut words = entry.split_whitespace();
        match words.next() {
            None | Some("router" | "unknown" | "dynamic") => continue,
            Some(_mac) => out.extend(words),
        }
    }
    if lsp.port_type() == "virtual" {
        if let Some(vip) = lsp.options().get("virtual-ip") {
            out.push(vip);
        }
    }
    out
}

fn lsp_source(lsp: &LogicalSwitchPort<'_>) -> String {
    format!("Logical_Switch_Port {}", lsp.name())
}

/// VIF and virtual ports on provider networks bound here.
fn provider_ports(topo: &Topology<'_>, b: &mut Builder<'_>) {
    for lsp in LogicalSwitchPort::all(topo.nb) {
        if !matches!(lsp.port_type(), "" | "virtual") || lsp.enabled() == Some(false) {
            continue;
        }
        let Some(bridge) = topo
            .switch_of_port
            .get(&lsp.uuid())
            .and_then(|sw| topo.provider.get(sw))
        else {
            continue;
        };
        if !topo.is_here(lsp.name()) {
            continue;
        }
        let source = lsp_source(&lsp);
        for ip in port_ips(&lsp) {
            b.add_ip(ip, Kind::ProviderPort, bridge, None, &source);
        }
    }
}

/// The gateway port of a router and its provider bridge: a distributed gateway port (gateway
/// chassis, HA chassis group or `redirect-chassis`) on a provider network, or, for a gateway router
/// pinned to this chassis, its port on a provider network.
fn router_gateway<'a>(
    topo: &Topology<'a>,
    lr: &LogicalRouter<'a>,
) -> Option<(LogicalRouterPort<'a>, String, bool)> {
    let gw_router_here = lr.options().get("chassis") == Some(topo.me.system_id.as_str());
    for uuid in lr.ports() {
        let Some(lrp) = LogicalRouterPort::get(topo.nb, &uuid) else {
            continue;
        };
        let Some(bridge) = topo.provider_of_lrp(lrp.name()) else {
            continue;
        };
        let distributed = lrp.gateway_chassis().next().is_some()
            || lrp.ha_chassis_group().is_some()
            || lrp.options().contains("redirect-chassis");
        if distributed {
            let here = topo.is_here(&format!("cr-{}", lrp.name()));
            return Some((lrp, bridge.to_string(), here));
        }
        if gw_router_here {
            return Some((lrp, bridge.to_string(), true));
        }
    }
    None
}

fn gateway_of(lrp: &LogicalRouterPort<'_>) -> Gateway {
    let mut g = Gateway {
        port: lrp.name().to_string(),
        mac: lrp.mac().to_string(),
        ipv4: None,
        ipv6: None,
        ipv6_network: None,
    };
    for net in lrp.networks() {
        if let Ok(n) = net.parse::<IpNet>() {
            match n.addr() {
                IpAddr::V4(_) if g.ipv4.is_none() => g.ipv4 = Some(n.addr()),
                IpAddr::V6(v6) if g.ipv6.is_none() && (v6.segments()[0] & 0xffc0) != 0xfe80 => {
                    g.ipv6 = Some(n.addr());
                    g.ipv6_network = Some(n.trunc());
                }
                _ => {}
            }
        }
    }
    g
}

/// A load balancer VIP key: `IP`, `IP:PORT` or `[IPv6]:PORT`.
fn vip_ip(key: &str) -> &str {
    if let Some(rest) = key.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match key.rsplit_once(':') {
        // One colon: IPv4 with a port; more: a bare IPv6 address.
        Some((ip, _port)) if !ip.contains(':') => ip,
        _ => key,
    }
}

/// Gateway IPs, floating IPs, load-balancer VIPs and tenant networks, router by router.
fn routers(topo: &Topology<'_>, b: &mut Builder<'_>) {
    let cfg = b.cfg.clone();
    for lr in LogicalRouter::all(topo.nb) {
        if lr.enabled() == Some(false) {
            continue;
        }
        let Some((gw_port, bridge, gw_here)) = router_gateway(topo, &lr) else {
            continue;
        };
        let gateway = gateway_of(&gw_port);
        let gw_source = format!(
            "Logical_Router_Port {} (router {})",
            gw_port.name(),
            lr.name()
        );

        // Floating IPs: distributed ones where their port is; centralized ones with the gateway.
        for uuid in lr.nat() {
            let Some(nat) = Nat::get(topo.nb, &uuid) else {
                continue;
            };
            if nat.nat_type() != "dnat_and_snat" {
                continue;
            }
            let source = format!(
                "NAT {} ({} -> {}, router {})",
                nat.uuid(),
                nat.external_ip(),
                nat.logical_ip(),
                lr.name()
            );
            let here = match (nat.logical_port(), nat.external_mac()) {
                (Some(port), Some(_)) => topo.is_here(port),
                _ => gw_here,
            };
            if here {
                b.add_ip(nat.external_ip(), Kind::FloatingIp, &bridge, None, &source);
            }
        }
        if !gw_here {
            continue;
        }
        // The gateway port's own addresses.
        for net in gw_port.networks() {
            match net.parse::<IpNet>() {
                Ok(n) => b.add(
                    IpNet::from(n.addr()),
                    Kind::GatewayIp,
                    &bridge,
                    None,
                    &gw_source,
                ),
                Err(_) => b.reject(net, &gw_source, "not an IP/prefix network"),
            }
        }
        // Load-balancer VIPs (and their floating IPs, when Neutron recorded them).
        for uuid in lr.load_balancer() {
            let Some(lb) = LoadBalancer::get(topo.nb, &uuid) else {
                continue;
            };
            let source = format!("Load_Balancer {} (router {})", lb.name(), lr.name());
            for (vip, _backends) in lb.vips().iter() {
                b.add_ip(
                    vip_ip(vip),
                    Kind::LoadBalancerVip,
                    &bridge,
                    Some(&gateway),
                    &source,
                );
            }
            if let Some(fip) = lb.external_ids().get("neutron:vip_fip") {
                b.add_ip(fip, Kind::FloatingIp, &bridge, Some(&gateway), &source);
            }
        }
        // Tenant networks behind this gateway.
        if cfg.expose_tenant_networks || cfg.expose_ipv6_gua_tenant_networks {
            tenant_networks(topo, b, &lr, &gw_port, &bridge, &gateway);
        }
    }
}

fn tenant_networks(
    topo: &Topology<'_>,
    b: &mut Builder<'_>,
    lr: &LogicalRouter<'_>,
    gw_port: &LogicalRouterPort<'_>,
    bridge: &str,
    gateway: &Gateway,
) {
    let cfg = b.cfg.clone();
    // Subnets the router SNATs (for require_snat_disabled_for_tenant_networks).
    let snat: Vec<IpNet> = lr
        .nat()
        .filter_map(|u| Nat::get(topo.nb, &u))
        .filter(|n| n.nat_type() == "snat")
        .filter_map(|n| {
            n.logical_ip()
                .parse::<IpNet>()
                .or_else(|_| n.logical_ip().parse::<IpAddr>().map(IpNet::from))
                .ok()
        })
        .collect();
    for uuid in lr.ports() {
        let Some(lrp) = LogicalRouterPort::get(topo.nb, &uuid) else {
            continue;
        };
        if lrp.uuid() == gw_port.uuid() || lrp.peer().is_some() {
            continue;
        }
        let source = format!("Logical_Router_Port {} (router {})", lrp.name(), lr.name());
        let scopes = [
            lrp.external_ids().get("neutron:subnet_pool_addr_scope4"),
            lrp.external_ids().get("neutron:subnet_pool_addr_scope6"),
        ];
        for net in lrp.networks() {
            let Ok(n) = net.parse::<IpNet>() else {
                b.reject(net, &source, "not an IP/prefix network");
                continue;
            };
            let subnet = n.trunc();
            let gua = match subnet.addr() {
                IpAddr::V6(v6) => (v6.segments()[0] & 0xe000) == 0x2000,
                IpAddr::V4(_) => false,
            };
            if !cfg.expose_tenant_networks && !gua {
                continue;
            }
            if gateway.address_for(subnet.addr()).is_none() {
                b.reject(
                    net,
                    &source,
                    "the router's gateway has no address of this family",
                );
                continue;
            }
            if !cfg.address_scopes.is_empty() {
                let scope = if subnet.addr().is_ipv4() {
                    scopes[0]
                } else {
                    scopes[1]
                };
                if !scope.is_some_and(|s| cfg.address_scopes.iter().any(|a| a == s)) {
                    continue;
                }
            }
            if cfg.require_snat_disabled_for_tenant_networks
                && subnet.addr().is_ipv4()
                && snat
                    .iter()
                    .any(|s| s.contains(&subnet) || subnet.contains(s))
            {
                continue;
            }
            match cfg.tenant_method {
                TenantMethod::Subnet => {
                    b.add(subnet, Kind::TenantSubnet, bridge, Some(gateway), &source)
                }
                TenantMethod::Host => {
                    let Some(sw) = topo.switch_of_lrp.get(lrp.name()) else {
                        continue;
                    };
                    let Some(ls) = LogicalSwitch::get(topo.nb, sw) else {
                        continue;
                    };
                    for p in ls.ports() {
                        let Some(lsp) = LogicalSwitchPort::get(topo.nb, &p) else {
                            continue;
                        };
                        if !matches!(lsp.port_type(), "" | "virtual") {
                            continue;
                        }
                        let src = lsp_source(&lsp);
                        for ip in port_ips(&lsp) {
                            match ip.parse::<IpAddr>() {
                                Ok(a) if subnet.contains(&a) => b.add(
                                    IpNet::from(a),
                                    Kind::TenantIp,
                                    bridge,
                                    Some(gateway),
                                    &src,
                                ),
                                Ok(_) => {}
                                Err(_) => b.reject(ip, &src, "not an IP address"),
                            }
                        }
                    }
                }
            }
        }
    }
}
