//! The plan's units: one provider switch port, or one router with its gateway, floating IPs,
//! load balancers and tenant networks. A unit is computed from the replica and the topology
//! [`Index`]; a router unit records every row and fact it read ([`Dep`]), so that a change to any
//! of them recomputes it.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use ovn_model::nb::{
    LoadBalancer, LoadBalancerGroup, LogicalRouter, LogicalRouterPort, LogicalSwitch,
    LogicalSwitchPort, Nat,
};
use ovsdb::{Replica, Uuid};

use super::index::{Dep, Index, Provider};
use super::{ExposureConfig, Gateway, Kind, Rejected, TenantMethod};

/// One exposed prefix as a unit found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub prefix: IpNet,
    pub kind: Kind,
    pub bridge: Arc<str>,
    pub vlan: Option<u16>,
    pub gateway: Option<Arc<Gateway>>,
    pub source: Arc<str>,
}

/// What one unit contributes to the plan, and what it read (router units).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Unit {
    /// Kept at its exact size (a unit lives as long as its rows; most hold one entry).
    pub entries: Vec<Entry>,
    pub rejected: Vec<Rejected>,
    /// Sorted, without duplicates (after [`Builder::finish`]).
    pub deps: Vec<Dep>,
}

/// Collects one unit, filtering every candidate.
struct Builder<'c> {
    cfg: &'c ExposureConfig,
    unit: Unit,
}

impl Builder<'_> {
    fn reject(&mut self, value: &str, source: &str, reason: &str) {
        self.unit.rejected.push(Rejected {
            value: value.to_string(),
            source: source.to_string(),
            reason: reason.to_string(),
        });
    }

    /// The unit, its vectors at their exact size.
    fn finish(mut self) -> Unit {
        self.unit.entries.shrink_to_fit();
        self.unit.rejected.shrink_to_fit();
        self.unit.deps.sort_unstable();
        self.unit.deps.dedup();
        self.unit.deps.shrink_to_fit();
        self.unit
    }

    fn dep(&mut self, d: Dep) {
        self.unit.deps.push(d);
    }

    /// True when `name` is bound here; the answer is a dependency of the unit.
    fn is_here(&mut self, idx: &Index, name: &str) -> bool {
        self.dep(Dep::Bound(Arc::from(name)));
        idx.is_here(name)
    }

    /// Adds `prefix` unless it must never be exposed.
    fn add(
        &mut self,
        prefix: IpNet,
        kind: Kind,
        provider: &Provider,
        gateway: Option<&Arc<Gateway>>,
        source: &Arc<str>,
    ) {
        if let Some(reason) = never_exposed(&prefix) {
            self.reject(&prefix.to_string(), source, reason);
            return;
        }
        if !self.cfg.allowed_prefixes.is_empty()
            && !self
                .cfg
                .allowed_prefixes
                .iter()
                .any(|a| a.contains(&prefix))
        {
            self.reject(&prefix.to_string(), source, "outside allowed_prefixes");
            return;
        }
        self.unit.entries.push(Entry {
            prefix,
            kind,
            bridge: provider.bridge.clone(),
            vlan: provider.vlan,
            gateway: gateway.cloned(),
            source: source.clone(),
        });
    }

    /// Adds a host prefix for the address text `ip`, or records why not.
    fn add_ip(
        &mut self,
        ip: &str,
        kind: Kind,
        provider: &Provider,
        gateway: Option<&Arc<Gateway>>,
        source: &Arc<str>,
    ) {
        match ip.parse::<IpAddr>() {
            Ok(addr) => self.add(IpNet::from(addr), kind, provider, gateway, source),
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

fn lsp_source(lsp: &LogicalSwitchPort<'_>) -> Arc<str> {
    Arc::from(format!("Logical_Switch_Port {}", lsp.name()))
}

/// A VIF or virtual port on a provider network bound here. `None`: the port contributes nothing.
pub(super) fn provider_port(
    nb: &Replica,
    idx: &Index,
    cfg: &ExposureConfig,
    uuid: &Uuid,
) -> Option<Unit> {
    let lsp = LogicalSwitchPort::get(nb, uuid)?;
    if !matches!(lsp.port_type(), "" | "virtual") || lsp.enabled() == Some(false) {
        return None;
    }
    let provider = idx.provider_of_port(uuid)?;
    if !idx.is_here(lsp.name()) {
        return None;
    }
    let mut b = Builder {
        cfg,
        unit: Unit::default(),
    };
    let source = lsp_source(&lsp);
    for ip in port_ips(&lsp) {
        b.add_ip(ip, Kind::ProviderPort, provider, None, &source);
    }
    Some(b.finish())
}

/// The gateway port of a router and its provider bridge: a distributed gateway port (gateway
/// chassis, HA chassis group or `redirect-chassis`) on a provider network, or, for a gateway router
/// pinned to this chassis, its port on a provider network.
fn router_gateway<'a>(
    nb: &'a Replica,
    idx: &Index,
    b: &mut Builder<'_>,
    lr: &LogicalRouter<'a>,
) -> Option<(LogicalRouterPort<'a>, Provider, bool)> {
    let gw_router_here = lr.options().get("chassis") == Some(idx.system_id());
    for uuid in lr.ports() {
        b.dep(Dep::Row(uuid));
        let Some(lrp) = LogicalRouterPort::get(nb, &uuid) else {
            continue;
        };
        b.dep(Dep::LrpSwitch(Arc::from(lrp.name())));
        let Some(provider) = idx.provider_of_lrp(lrp.name()) else {
            continue;
        };
        let distributed = lrp.gateway_chassis().next().is_some()
            || lrp.ha_chassis_group().is_some()
            || lrp.options().contains("redirect-chassis");
        if distributed {
            let here = b.is_here(idx, &format!("cr-{}", lrp.name()));
            return Some((lrp, provider.clone(), here));
        }
        if gw_router_here {
            return Some((lrp, provider.clone(), true));
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

/// A router's gateway IPs, floating IPs, load-balancer VIPs and tenant networks. `None`: the
/// router does not exist any more.
pub(super) fn router(nb: &Replica, idx: &Index, cfg: &ExposureConfig, uuid: &Uuid) -> Option<Unit> {
    let lr = LogicalRouter::get(nb, uuid)?;
    let mut b = Builder {
        cfg,
        unit: Unit::default(),
    };
    b.dep(Dep::Row(*uuid));
    if lr.enabled() == Some(false) {
        return Some(b.finish());
    }
    let Some((gw_port, provider, gw_here)) = router_gateway(nb, idx, &mut b, &lr) else {
        return Some(b.finish());
    };
    let gateway = Arc::new(gateway_of(&gw_port));
    let gw_source: Arc<str> = Arc::from(format!(
        "Logical_Router_Port {} (router {})",
        gw_port.name(),
        lr.name()
    ));

    // Floating IPs: distributed ones where their port is; centralized ones with the gateway.
    for uuid in lr.nat() {
        b.dep(Dep::Row(uuid));
        let Some(nat) = Nat::get(nb, &uuid) else {
            continue;
        };
        if nat.nat_type() != "dnat_and_snat" {
            continue;
        }
        let here = match (nat.logical_port(), nat.external_mac()) {
            (Some(port), Some(_)) => b.is_here(idx, port),
            _ => gw_here,
        };
        if here {
            let source: Arc<str> = Arc::from(format!(
                "NAT {} ({} -> {}, router {})",
                nat.uuid(),
                nat.external_ip(),
                nat.logical_ip(),
                lr.name()
            ));
            b.add_ip(
                nat.external_ip(),
                Kind::FloatingIp,
                &provider,
                None,
                &source,
            );
        }
    }
    if !gw_here {
        return Some(b.finish());
    }
    // The gateway port's own addresses.
    for net in gw_port.networks() {
        match net.parse::<IpNet>() {
            Ok(n) => b.add(
                IpNet::from(n.addr()),
                Kind::GatewayIp,
                &provider,
                None,
                &gw_source,
            ),
            Err(_) => b.reject(net, &gw_source, "not an IP/prefix network"),
        }
    }
    // Load-balancer VIPs (and their floating IPs, when Neutron recorded them): the router's
    // own load balancers and those of its load-balancer groups.
    let mut lbs: Vec<Uuid> = lr.load_balancer().collect();
    for g in lr.load_balancer_group() {
        b.dep(Dep::Row(g));
        if let Some(group) = LoadBalancerGroup::get(nb, &g) {
            lbs.extend(group.load_balancer());
        }
    }
    for uuid in lbs {
        b.dep(Dep::Row(uuid));
        let Some(lb) = LoadBalancer::get(nb, &uuid) else {
            continue;
        };
        let source: Arc<str> = Arc::from(format!(
            "Load_Balancer {} (router {})",
            lb.name(),
            lr.name()
        ));
        for (vip, _backends) in lb.vips().iter() {
            b.add_ip(
                vip_ip(vip),
                Kind::LoadBalancerVip,
                &provider,
                Some(&gateway),
                &source,
            );
        }
        if let Some(fip) = lb.external_ids().get("neutron:vip_fip") {
            b.add_ip(fip, Kind::FloatingIp, &provider, Some(&gateway), &source);
        }
    }
    // Tenant networks behind this gateway.
    if cfg.expose_tenant_networks || cfg.expose_ipv6_gua_tenant_networks {
        tenant_networks(nb, idx, &mut b, &lr, &gw_port, &provider, &gateway);
    }
    Some(b.finish())
}

fn tenant_networks(
    nb: &Replica,
    idx: &Index,
    b: &mut Builder<'_>,
    lr: &LogicalRouter<'_>,
    gw_port: &LogicalRouterPort<'_>,
    provider: &Provider,
    gateway: &Arc<Gateway>,
) {
    let cfg = b.cfg;
    // Subnets the router SNATs (for require_snat_disabled_for_tenant_networks).
    let snat: Vec<IpNet> = lr
        .nat()
        .filter_map(|u| Nat::get(nb, &u))
        .filter(|n| n.nat_type() == "snat")
        .filter_map(|n| {
            n.logical_ip()
                .parse::<IpNet>()
                .or_else(|_| n.logical_ip().parse::<IpAddr>().map(IpNet::from))
                .ok()
        })
        .collect();
    for uuid in lr.ports() {
        b.dep(Dep::Row(uuid));
        let Some(lrp) = LogicalRouterPort::get(nb, &uuid) else {
            continue;
        };
        if lrp.uuid() == gw_port.uuid() || lrp.peer().is_some() {
            continue;
        }
        let source: Arc<str> = Arc::from(format!(
            "Logical_Router_Port {} (router {})",
            lrp.name(),
            lr.name()
        ));
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
                    b.add(subnet, Kind::TenantSubnet, provider, Some(gateway), &source)
                }
                TenantMethod::Host => {
                    b.dep(Dep::LrpSwitch(Arc::from(lrp.name())));
                    let Some(sw) = idx.switch_of_lrp(lrp.name()) else {
                        continue;
                    };
                    b.dep(Dep::Row(sw));
                    let Some(ls) = LogicalSwitch::get(nb, &sw) else {
                        continue;
                    };
                    for p in ls.ports() {
                        b.dep(Dep::Row(p));
                        let Some(lsp) = LogicalSwitchPort::get(nb, &p) else {
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
                                    provider,
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
