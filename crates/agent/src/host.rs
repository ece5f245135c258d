//! The host plan: how an [`ExposurePlan`] becomes kernel, OVS and FRR state on this chassis.
//!
//! Pure: (exposure plan, bridge facts, settings) -> [`HostPlan`]. The reconcilers in
//! [`crate::apply`] compare it with what they observe and apply the difference.
//!
//! * Advertise: every exposed prefix goes into the exposure table (`bgp_vrf_table_id`) as a route
//!   carrying our protocol number (`advertise_method = routes`), or host prefixes become addresses
//!   on `bgp_nic` (`addresses`, the Python agent's way).
//! * Wire (underlay): per provider bridge a table with `IP dev BR scope link` for IPs OVN answers
//!   ARP/NDP for on the provider network, `PREFIX via <gateway IP> dev BR` for what sits behind a
//!   router gateway, a permanent neighbour for each gateway's MAC, an NDP proxy for the first
//!   address of each gateway's IPv6 provider network, `ip rule`s steering traffic to the table, and
//!   the OpenFlow flows that hand packets leaving OVN's patch port to the host
//!   (`mod_dl_dst:<bridge MAC>,NORMAL`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ovn_route_config::{AdvertiseMethod, RuleMethod, VrfMode};
use ovn_route_kernel::{DesiredRoutes, DesiredRules, Family, IpNet, Route, RuleSelector};
use ovn_route_ovs::{exposure_flows, Flow};
use ovn_route_plan::exposure::{Exposure, ExposurePlan, Kind};
use serde::Serialize;

/// The settings of the host plan (from the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSettings {
    /// `advertise_method`.
    pub advertise: AdvertiseMethod,
    /// `vrf_mode`.
    pub vrf_mode: VrfMode,
    /// `bgp_nic`.
    pub bgp_nic: String,
    /// `bgp_vrf_table_id`: the exposure table.
    pub vrf_table: u32,
    /// `route_protocol`: the mark of our routes.
    pub protocol: u8,
    /// `rule_method`.
    pub rule_method: RuleMethod,
    /// `rule_priority`: the mark of our rules.
    pub rule_priority: u32,
}

/// What the agent knows of one provider bridge (from the bridge mappings, the local OVS database,
/// the kernel and the table registry).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BridgeFacts {
    /// Its routing table id.
    pub table: u32,
    /// Its MAC (the kernel device's, else OVS `mac_in_use`), once known.
    pub mac: Option<[u8; 6]>,
    /// OpenFlow port numbers of OVN's patch ports on it (created by ovn-controller).
    pub patch_ports: BTreeSet<u16>,
}

/// The state wanted on one provider bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePlan {
    /// The bridge's routing table and its routes.
    pub routes: DesiredRoutes,
    /// The rules steering traffic into the table.
    pub rules: DesiredRules,
    /// Permanent neighbours: gateway IP -> gateway MAC.
    pub neighbours: BTreeMap<IpAddr, [u8; 6]>,
    /// NDP proxy entries.
    pub proxy_ndp: BTreeSet<IpAddr>,
    /// OpenFlow flows (the reconciler adds our cookie).
    pub flows: BTreeSet<Flow>,
    /// Whether anything is exposed through this bridge (proxy_arp/proxy_ndp are enabled then).
    pub in_use: bool,
}

/// How exposed prefixes are handed to FRR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    /// Routes in the exposure table.
    pub routes: DesiredRoutes,
    /// Addresses on `bgp_nic` (`addresses` mode), else empty.
    pub addresses: BTreeSet<IpNet>,
}

/// A value the host plan could not use (e.g. a gateway MAC that does not parse).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct HostProblem {
    /// What.
    pub value: String,
    /// Where it came from.
    pub source: String,
    /// Why it was skipped.
    pub reason: String,
}

/// Everything the agent wants on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    /// The advertised set.
    pub advertised: Advertised,
    /// Per provider bridge, by name.
    pub bridges: BTreeMap<String, BridgePlan>,
    /// Values skipped.
    pub problems: Vec<HostProblem>,
}

/// Converts a planner prefix to the kernel crate's.
pub fn knet(p: &ipnet::IpNet) -> IpNet {
    IpNet::new(p.addr(), p.prefix_len()).expect("ipnet prefixes are valid")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in out.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    if parts.next().is_some() || out == [0; 6] || out[0] & 1 == 1 {
        return None;
    }
    Some(out)
}

/// Whether traffic to this exposure is handed to a router gateway (routed `via` it) rather than
/// resolved on the provider network (OVN answers ARP/NDP for it there).
fn via_gateway(e: &Exposure) -> Option<IpAddr> {
    let gw = e.gateway.as_ref()?;
    let addr = gw.address_for(e.prefix.addr())?;
    match e.kind {
        Kind::TenantIp | Kind::TenantSubnet => Some(addr),
        _ => None,
    }
}

/// The first address of an IPv6 network (the gateway OVN routers on it point at).
fn first_address(n: &ipnet::IpNet) -> Option<IpAddr> {
    match n {
        ipnet::IpNet::V6(v6) if v6.prefix_len() < 128 => {
            Some(IpAddr::V6((u128::from(v6.network()) + 1).into()))
        }
        _ => None,
    }
}

/// Builds the host plan. `bridges` holds every mapped provider bridge (so that bridges no longer
/// used get empty plans, which removes our state from them).
pub fn plan_host(
    plan: &ExposurePlan,
    bridges: &BTreeMap<String, BridgeFacts>,
    s: &HostSettings,
) -> HostPlan {
    let mut adv = Advertised {
        routes: DesiredRoutes::new(s.vrf_table, s.protocol),
        addresses: BTreeSet::new(),
    };
    let mut out: BTreeMap<String, BridgePlan> = bridges
        .iter()
        .map(|(name, f)| {
            (
                name.clone(),
                BridgePlan {
                    routes: DesiredRoutes::new(f.table, s.protocol),
                    rules: DesiredRules::new(f.table, s.rule_priority),
                    neighbours: BTreeMap::new(),
                    proxy_ndp: BTreeSet::new(),
                    flows: BTreeSet::new(),
                    in_use: false,
                },
            )
        })
        .collect();
    let mut problems = Vec::new();

    for e in plan.exposed.values() {
        let prefix = knet(&e.prefix);
        let host = e.prefix.prefix_len() == e.prefix.max_prefix_len();
        // Advertise.
        if s.advertise == AdvertiseMethod::Addresses && host {
            adv.addresses.insert(prefix);
        } else {
            let dev = match s.vrf_mode {
                VrfMode::None => e.bridge.as_str(),
                VrfMode::Create | VrfMode::Existing => s.bgp_nic.as_str(),
            };
            adv.routes.insert(Route::dev_link(prefix, dev));
        }
        // Wire.
        let Some(bp) = out.get_mut(&e.bridge) else {
            problems.push(HostProblem {
                value: e.bridge.clone(),
                source: e.sources.join(", "),
                reason: "bridge is not in this chassis' ovn-bridge-mappings".into(),
            });
            continue;
        };
        bp.in_use = true;
        let route = match via_gateway(e) {
            Some(gw) if gw != e.prefix.addr() => Route::via(prefix, gw, Some(&e.bridge)),
            _ => Route::dev_link(prefix, &e.bridge),
        };
        bp.routes.insert(route);
        match s.rule_method {
            RuleMethod::PerIp => {
                bp.rules.selectors.insert(RuleSelector::To(prefix));
            }
            RuleMethod::PerBridge => {
                let family = if prefix.is_ipv6() {
                    Family::V6
                } else {
                    Family::V4
                };
                bp.rules.selectors.insert(RuleSelector::All {
                    family,
                    suppress_prefixlength: Some(0),
                });
            }
        }
        if let Some(gw) = &e.gateway {
            match parse_mac(&gw.mac) {
                Some(mac) => {
                    for ip in [gw.ipv4, gw.ipv6].into_iter().flatten() {
                        bp.neighbours.insert(ip, mac);
                        // Traffic to the gateway itself must resolve too.
                        let host = IpNet::host(ip);
                        if !bp.routes.routes().any(|r| r.prefix == host) {
                            bp.routes.insert(Route::dev_link(host, &e.bridge));
                        }
                    }
                }
                None => problems.push(HostProblem {
                    value: gw.mac.clone(),
                    source: format!("Logical_Router_Port {}", gw.port),
                    reason: "not a unicast MAC address".into(),
                }),
            }
            if let Some(p) = gw.ipv6_network.as_ref().and_then(first_address) {
                bp.proxy_ndp.insert(p);
            }
        }
    }
    for (name, bp) in out.iter_mut() {
        if !bp.in_use {
            continue;
        }
        let facts = &bridges[name];
        if let Some(mac) = &facts.mac {
            for port in &facts.patch_ports {
                bp.flows
                    .extend(exposure_flows(*port, *mac).map(|f| f.normalized()));
            }
        }
    }
    problems.sort();
    problems.dedup();
    HostPlan {
        advertised: adv,
        bridges: out,
        problems,
    }
}
