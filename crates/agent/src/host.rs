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
//!   (`mod_dl_dst:<bridge MAC>,NORMAL`). A tagged provider network (localnet `tag`) is reached
//!   through a VLAN device on the bridge (`<bridge>.<tag>`, created and marked by us): its
//!   exposures' routes and gateway neighbours use that device.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ovn_route_config::{AdvertiseMethod, RuleMethod, VrfMode};
use ovn_route_kernel::{
    vlan_name, DesiredRoutes, DesiredRules, Family, IpNet, Route, RuleSelector, MAX_LINK_NAME,
};
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
    /// Whether Open vSwitch has it (a bridge it does not have gets no flows, and no attempt).
    pub in_ovs: bool,
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
    /// Whether Open vSwitch has the bridge (else its flows are not looked at).
    pub in_ovs: bool,
    /// VLAN devices on the bridge for tagged provider networks, by VLAN id.
    pub vlans: BTreeMap<u16, VlanPlan>,
}

/// A VLAN device on a provider bridge (a tagged provider network) and what is wired on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanPlan {
    /// The device's name: `<bridge>.<id>`.
    pub name: String,
    /// Permanent neighbours on it: gateway IP -> gateway MAC.
    pub neighbours: BTreeMap<IpAddr, [u8; 6]>,
    /// NDP proxy entries on it.
    pub proxy_ndp: BTreeSet<IpAddr>,
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

/// The VLAN device for VLAN `id` on `bridge`, or why there cannot be one.
fn vlan_device(bridge: &str, id: u16) -> Result<String, String> {
    if !(1..=4094).contains(&id) {
        return Err("not a usable VLAN id (1 to 4094)".into());
    }
    let name = vlan_name(bridge, id);
    if name.len() > MAX_LINK_NAME {
        return Err(format!(
            "the VLAN device name {name} is longer than the kernel's {MAX_LINK_NAME} bytes"
        ));
    }
    Ok(name)
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
                    in_ovs: f.in_ovs,
                    vlans: BTreeMap::new(),
                },
            )
        })
        .collect();
    let mut problems = Vec::new();

    for e in plan.exposed.values() {
        let prefix = knet(&e.prefix);
        let host = e.prefix.prefix_len() == e.prefix.max_prefix_len();
        // The device its traffic enters OVN through: the bridge, or the VLAN device on it.
        let vlan_dev = match e.vlan {
            None => None,
            Some(id) => match vlan_device(&e.bridge, id) {
                Ok(name) => Some((id, name)),
                Err(reason) => {
                    // Neither advertised nor wired: traffic attracted here would go nowhere.
                    problems.push(HostProblem {
                        value: format!("{} VLAN {id}", e.bridge),
                        source: e.sources.join(", "),
                        reason,
                    });
                    continue;
                }
            },
        };
        let dev: &str = vlan_dev.as_ref().map_or(&e.bridge, |(_, n)| n.as_str());
        // Advertise.
        if s.advertise == AdvertiseMethod::Addresses && host {
            adv.addresses.insert(prefix);
        } else if s.vrf_mode == VrfMode::None && prefix.is_ipv6() {
            // FRR 8.4 imports only IPv4 tables (`ip import-table`): without a VRF, IPv6 is wired
            // but not advertised (status says so).
        } else {
            let dev = match s.vrf_mode {
                VrfMode::None => dev,
                VrfMode::Create | VrfMode::Existing => s.bgp_nic.as_str(),
            };
            adv.routes.insert(Route::dev_link(prefix, dev));
        }
        // Wire.
        let Some(bp) = out.get_mut(&*e.bridge) else {
            problems.push(HostProblem {
                value: e.bridge.to_string(),
                source: e.sources.join(", "),
                reason: "bridge is not in this chassis' ovn-bridge-mappings".into(),
            });
            continue;
        };
        bp.in_use = true;
        let route = match via_gateway(e) {
            Some(gw) if gw != e.prefix.addr() => Route::via(prefix, gw, Some(dev)),
            _ => Route::dev_link(prefix, dev),
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
        let (neighbours, proxy_ndp) = match &vlan_dev {
            None => (&mut bp.neighbours, &mut bp.proxy_ndp),
            Some((id, name)) => {
                let v = bp.vlans.entry(*id).or_insert_with(|| VlanPlan {
                    name: name.clone(),
                    neighbours: BTreeMap::new(),
                    proxy_ndp: BTreeSet::new(),
                });
                (&mut v.neighbours, &mut v.proxy_ndp)
            }
        };
        if let Some(gw) = &e.gateway {
            match parse_mac(&gw.mac) {
                Some(mac) => {
                    for ip in [gw.ipv4, gw.ipv6].into_iter().flatten() {
                        neighbours.insert(ip, mac);
                        // Traffic to the gateway itself must resolve too.
                        let host = IpNet::host(ip);
                        if bp.routes.first_for(&host).is_none() {
                            bp.routes.insert(Route::dev_link(host, dev));
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
                proxy_ndp.insert(p);
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

#[cfg(test)]
mod tests {
    use super::*;
    use ovn_route_plan::exposure::Gateway;

    fn settings(advertise: AdvertiseMethod, vrf_mode: VrfMode, rules: RuleMethod) -> HostSettings {
        HostSettings {
            advertise,
            vrf_mode,
            bgp_nic: "bgp-nic".into(),
            vrf_table: 10,
            protocol: 201,
            rule_method: rules,
            rule_priority: 32000,
        }
    }

    fn plan() -> ExposurePlan {
        let gw = std::sync::Arc::new(Gateway {
            port: "lrp-pub".into(),
            mac: "00:00:00:00:ff:02".into(),
            ipv4: Some("172.16.0.1".parse().unwrap()),
            ipv6: Some("2001:db8::5".parse().unwrap()),
            ipv6_network: Some("2001:db8::/64".parse().unwrap()),
        });
        let mut p = ExposurePlan::default();
        for (prefix, kind, g) in [
            ("172.16.0.10/32", Kind::ProviderPort, None),
            ("172.16.0.1/32", Kind::GatewayIp, Some(gw.clone())),
            ("10.0.0.0/24", Kind::TenantSubnet, Some(gw.clone())),
            ("fd00::/64", Kind::TenantSubnet, Some(gw)),
        ] {
            let prefix: ipnet::IpNet = prefix.parse().unwrap();
            p.exposed.insert(
                prefix,
                Exposure {
                    prefix,
                    kind,
                    bridge: "br-ex".into(),
                    vlan: None,
                    gateway: g,
                    sources: vec!["row".into()],
                },
            );
        }
        p
    }

    fn facts() -> BTreeMap<String, BridgeFacts> {
        let mut m = BTreeMap::new();
        m.insert(
            "br-ex".to_string(),
            BridgeFacts {
                table: 200,
                mac: Some([2, 0, 0, 0, 0, 1]),
                patch_ports: [3].into(),
                in_ovs: true,
            },
        );
        m.insert(
            "br-unused".to_string(),
            BridgeFacts {
                table: 201,
                ..Default::default()
            },
        );
        m
    }

    #[test]
    fn routes_mode_with_vrf_and_per_bridge_rules() {
        let s = settings(
            AdvertiseMethod::Routes,
            VrfMode::Create,
            RuleMethod::PerBridge,
        );
        let h = plan_host(&plan(), &facts(), &s);
        let adv: Vec<String> = h
            .advertised
            .routes
            .routes()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            adv,
            [
                "10.0.0.0/24 dev bgp-nic scope link",
                "172.16.0.1/32 dev bgp-nic scope link",
                "172.16.0.10/32 dev bgp-nic scope link",
                "fd00::/64 dev bgp-nic"
            ]
        );
        assert!(h.advertised.addresses.is_empty());
        let br = &h.bridges["br-ex"];
        let wired: Vec<String> = br.routes.routes().map(|r| r.to_string()).collect();
        assert_eq!(
            wired,
            [
                "10.0.0.0/24 via 172.16.0.1 dev br-ex",
                "172.16.0.1/32 dev br-ex scope link",
                "172.16.0.10/32 dev br-ex scope link",
                "2001:db8::5/128 dev br-ex",
                "fd00::/64 via 2001:db8::5 dev br-ex"
            ]
        );
        assert_eq!(br.rules.selectors.len(), 2, "one rule per family");
        assert_eq!(br.neighbours.len(), 2);
        assert!(br
            .proxy_ndp
            .contains(&"2001:db8::1".parse::<IpAddr>().unwrap()));
        assert_eq!(br.flows.len(), 2);
        let unused = &h.bridges["br-unused"];
        assert!(!unused.in_use && unused.routes.is_empty() && unused.flows.is_empty());
    }

    #[test]
    fn addresses_mode_and_per_ip_rules() {
        let s = settings(
            AdvertiseMethod::Addresses,
            VrfMode::Create,
            RuleMethod::PerIp,
        );
        let h = plan_host(&plan(), &facts(), &s);
        let addrs: Vec<String> = h
            .advertised
            .addresses
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(addrs, ["172.16.0.1/32", "172.16.0.10/32"]);
        // Subnets stay routes in the VRF table.
        assert_eq!(h.advertised.routes.len(), 2);
        assert_eq!(h.bridges["br-ex"].rules.selectors.len(), 4);
    }

    #[test]
    fn no_vrf_routes_point_at_the_bridge_and_bad_macs_are_reported() {
        let s = settings(
            AdvertiseMethod::Routes,
            VrfMode::None,
            RuleMethod::PerBridge,
        );
        let mut p = plan();
        for e in p.exposed.values_mut() {
            if let Some(g) = &mut e.gateway {
                std::sync::Arc::make_mut(g).mac = "ff:ff:ff:ff:ff:ff".into();
            }
        }
        let h = plan_host(&p, &facts(), &s);
        assert!(h
            .advertised
            .routes
            .routes()
            .all(|r| r.to_string().contains("dev br-ex")));
        // IPv6 is wired but not advertised without a VRF (FRR 8.4 imports IPv4 tables only).
        assert!(h.advertised.routes.routes().all(|r| !r.prefix.is_ipv6()));
        assert!(h.bridges["br-ex"]
            .routes
            .routes()
            .any(|r| r.prefix.is_ipv6()));
        assert!(h.bridges["br-ex"].neighbours.is_empty());
        assert_eq!(h.problems.len(), 1, "{:?}", h.problems);
        assert!(h.problems[0].reason.contains("MAC"));
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("00:00:00:00:ff:02"), Some([0, 0, 0, 0, 0xff, 2]));
        for bad in [
            "",
            "00:00:00:00:00:00",
            "01:00:5e:00:00:01",
            "0:0:0:0:0:1",
            "zz:00:00:00:00:01",
            "00:00:00:00:00:01:02",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn tagged_networks_go_through_the_vlan_device_and_bad_vlans_are_reported() {
        let s = settings(
            AdvertiseMethod::Routes,
            VrfMode::None,
            RuleMethod::PerBridge,
        );
        let mut p = plan();
        for e in p.exposed.values_mut() {
            e.vlan = Some(100);
        }
        // A network whose VLAN device name would be too long for the kernel.
        let long: ipnet::IpNet = "172.16.9.9/32".parse().unwrap();
        let mut facts = facts();
        facts.insert(
            "br-provider-long".into(),
            BridgeFacts {
                table: 202,
                ..Default::default()
            },
        );
        p.exposed.insert(
            long,
            Exposure {
                prefix: long,
                kind: Kind::ProviderPort,
                bridge: "br-provider-long".into(),
                vlan: Some(300),
                gateway: None,
                sources: vec!["Logical_Switch_Port far".into()],
            },
        );
        let h = plan_host(&p, &facts, &s);
        let br = &h.bridges["br-ex"];
        let wired: Vec<String> = br.routes.routes().map(|r| r.to_string()).collect();
        assert_eq!(
            wired,
            [
                "10.0.0.0/24 via 172.16.0.1 dev br-ex.100",
                "172.16.0.1/32 dev br-ex.100 scope link",
                "172.16.0.10/32 dev br-ex.100 scope link",
                "2001:db8::5/128 dev br-ex.100",
                "fd00::/64 via 2001:db8::5 dev br-ex.100"
            ]
        );
        assert!(h
            .advertised
            .routes
            .routes()
            .all(|r| r.to_string().contains("dev br-ex.100")));
        // The gateway's neighbours and NDP proxy are on the VLAN device, not on the bridge.
        assert!(br.neighbours.is_empty() && br.proxy_ndp.is_empty());
        let v = &br.vlans[&100];
        assert_eq!(v.name, "br-ex.100");
        assert_eq!(v.neighbours.len(), 2);
        assert_eq!(v.proxy_ndp.len(), 1);
        // The flows are the bridge's as for an untagged network.
        assert!(!br.flows.is_empty());
        // Neither advertised nor wired, and said why.
        let kl = knet(&long);
        assert!(h.advertised.routes.first_for(&kl).is_none());
        assert!(h.bridges["br-provider-long"]
            .routes
            .first_for(&kl)
            .is_none());
        assert_eq!(
            h.problems,
            [HostProblem {
                value: "br-provider-long VLAN 300".into(),
                source: "Logical_Switch_Port far".into(),
                reason: "the VLAN device name br-provider-long.300 is longer than the kernel's 15 \
                         bytes"
                    .into(),
            }]
        );
    }
}
