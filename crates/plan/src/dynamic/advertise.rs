//! What a router advertises from this chassis, per redistribute type, as upstream OVN computes
//! it (northd's advertised routes plus ovn-controller's metric and local-only rules):
//!
//! * `connected`: each network of each router port whose (effective) redistribute has it, unless
//!   it has `connected-as-host`; link-local networks never;
//! * `connected-as-host`: host routes, once per router port, for the addresses behind it: the
//!   peer router port's addresses (tracked: that port) or, on the attached switch, each router
//!   port's addresses (tracked: that router port, the advertising one included) and each switch
//!   port's addresses (tracked: the switch port); IPv6 link-local addresses never;
//! * `static`: each static route of the router (not `discard`, not `src-ip`, not link-local)
//!   whose output port (`output_port`, else the port whose network holds the next hop) has it;
//! * `nat`: through each port that has it, the external IPs of this router's NATs and of its
//!   neighbours' (routers on the peer port or the attached switch): tracked to the NAT's
//!   `logical_port` for a distributed NAT, else to the router's gateway port;
//! * `lb`: through each port that has it, this router's VIPs (tracked to each of its gateway
//!   ports; untracked on a gateway router) and the neighbours' VIPs (tracked to the neighbour's
//!   router port).
//!
//! A port's `dynamic-routing-redistribute` replaces the router's. Metric 100 when the tracked
//! port is bound here, else 1000; with local-only, routes whose tracked port is elsewhere are not
//! installed. Routes are blackholes unless the router sets a prefix next hop for the family.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use ovn_model::nb::{
    LoadBalancer, LoadBalancerGroup, LogicalRouter, LogicalRouterPort, Nat, StaticRoute,
};

use super::options::{self as opt, Redistribute, RowName};
use super::topology::{link_local, link_local_ip, lrp_networks, lsp_addresses, Topology};
use super::{Advertised, BoundPort, DynamicPlan, RouterPlan, Source, METRIC_DEFAULT, METRIC_LOCAL};
use crate::exposure::Rejected;

/// A candidate route before the metric is known.
struct Candidate {
    prefix: IpNet,
    source: Source,
    port: String,
    tracked: Option<String>,
}

/// The per-port settings: effective redistribute and local-only.
struct PortSettings {
    redistribute: Redistribute,
    local_only: bool,
}

fn host(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

/// Plans one router: adds it to `plan.routers` when it is advertised here, to
/// `plan.learning_off` when its learned routes must all go.
pub(super) fn plan_router<'a>(
    topo: &Topology<'a>,
    r: LogicalRouter<'a>,
    mapping: &[(String, String)],
    plan: &mut DynamicPlan,
    problems: &mut Vec<Rejected>,
) {
    let row = RowName {
        table: "Logical_Router",
        name: r.name(),
    };
    let o = r.options();
    let enabled = opt::bool_opt(&o, row, opt::OPT_ENABLED, problems) && r.enabled() != Some(false);
    if !enabled {
        plan.learning_off.insert(r.uuid());
        return;
    }
    let router_no_learning = opt::bool_opt(&o, row, opt::OPT_NO_LEARNING, problems);
    if router_no_learning {
        plan.learning_off.insert(r.uuid());
    }
    // Which of its ports are bound here.
    let ports = topo.ports_of(&r);
    let gw_router = Topology::is_gateway_router(&r);
    let here: Vec<&LogicalRouterPort<'_>> = if gw_router {
        if topo.gateway_router_here(&r) {
            ports.iter().collect()
        } else {
            vec![]
        }
    } else {
        ports
            .iter()
            .filter(|p| Topology::is_dgp(p) && topo.dgp_here(p))
            .collect()
    };
    if here.is_empty() {
        return;
    }
    // Table id and VRF name.
    let table = match opt::vrf_id(&o, row, problems) {
        Some(t) => t,
        None => {
            match topo.tunnel_keys.get(&r.uuid()) {
                Some(&k) if u64::try_from(k).is_ok_and(opt::table_id_allowed) => k as u32,
                Some(&k) => {
                    problems.push(Rejected {
                    value: k.to_string(),
                    source: format!("Logical_Router {} (datapath tunnel key)", r.name()),
                    reason: "a reserved table id: set options:dynamic-routing-vrf-id; not advertised".into(),
                });
                    return;
                }
                None => {
                    problems.push(Rejected {
                    value: String::new(),
                    source: format!("Logical_Router {}", r.name()),
                    reason: if topo.uses_sb {
                        "its datapath has no tunnel key yet: not advertised".into()
                    } else {
                        "no table id: without the Southbound (datapath tunnel key), set options:dynamic-routing-vrf-id; not advertised".into()
                    },
                });
                    return;
                }
            }
        }
    };
    let vrf = opt::vrf_name(&o, row, table, problems);
    let nh4 = opt::prefix_nexthop(&o, row, false, problems);
    let nh6 = opt::prefix_nexthop(&o, row, true, problems);
    let router_drr = opt::redistribute(&o, row, problems).unwrap_or_default();
    let router_local_only = opt::local_only(&o, row, problems).unwrap_or(false);

    let mut settings: BTreeMap<&str, PortSettings> = BTreeMap::new();
    for p in &ports {
        let prow = RowName {
            table: "Logical_Router_Port",
            name: p.name(),
        };
        let po = p.options();
        settings.insert(
            p.name(),
            PortSettings {
                redistribute: opt::redistribute(&po, prow, problems).unwrap_or(router_drr),
                local_only: opt::local_only(&po, prow, problems).unwrap_or(router_local_only),
            },
        );
    }
    let mut bound_ports = vec![];
    for p in &here {
        let prow = RowName {
            table: "Logical_Router_Port",
            name: p.name(),
        };
        let po = p.options();
        let no_learning = opt::bool_opt(&po, prow, opt::OPT_NO_LEARNING, problems);
        let maintain_vrf = opt::bool_opt(&po, prow, opt::OPT_MAINTAIN_VRF, problems);
        let ifname = po
            .get(opt::OPT_PORT_NAME)
            .filter(|n| !n.is_empty())
            .map(|n| {
                mapping
                    .iter()
                    .find(|(port, _)| port == n)
                    .map(|(_, i)| i.clone())
                    .unwrap_or_else(|| n.to_string())
            });
        bound_ports.push(BoundPort {
            name: p.name().to_string(),
            networks: lrp_networks(p),
            learning: !router_no_learning && !no_learning,
            ifname,
            maintain_vrf,
        });
    }

    let mut cands = vec![];
    for op in &ports {
        let s = &settings[op.name()];
        let drr = s.redistribute;
        if drr.is_empty() {
            continue;
        }
        let nets: Vec<IpNet> = lrp_networks(op)
            .into_iter()
            .filter(|n| !link_local(&n.trunc()))
            .collect();
        if drr.connected && !nets.is_empty() {
            if drr.connected_as_host {
                host_routes(topo, op, &mut cands);
            } else {
                for n in &nets {
                    cands.push(Candidate {
                        prefix: n.trunc(),
                        source: Source::Connected,
                        port: op.name().to_string(),
                        tracked: None,
                    });
                }
            }
        }
        if drr.nat {
            nat_routes(topo, op, &r, &ports, &mut cands);
            for (_, nr) in topo.neighbours(op) {
                let nports = topo.ports_of(&nr);
                nat_routes(topo, op, &nr, &nports, &mut cands);
            }
        }
        if drr.lb {
            let vips = lb_vips(topo, &r);
            if gw_router {
                for v in &vips {
                    cands.push(Candidate {
                        prefix: host(*v),
                        source: Source::Lb,
                        port: op.name().to_string(),
                        tracked: None,
                    });
                }
            } else {
                for dgp in ports.iter().filter(|p| Topology::is_dgp(p)) {
                    for v in &vips {
                        cands.push(Candidate {
                            prefix: host(*v),
                            source: Source::Lb,
                            port: op.name().to_string(),
                            tracked: Some(dgp.name().to_string()),
                        });
                    }
                }
            }
            for (nop, nr) in topo.neighbours(op) {
                for v in lb_vips(topo, &nr) {
                    cands.push(Candidate {
                        prefix: host(v),
                        source: Source::Lb,
                        port: op.name().to_string(),
                        tracked: Some(nop.name().to_string()),
                    });
                }
            }
        }
    }
    static_routes(topo, &r, &ports, &settings, &mut cands);

    let mut routes = BTreeMap::new();
    for c in cands {
        let local = c.tracked.as_deref().is_some_and(|t| topo.is_local(t));
        if c.tracked.is_some()
            && !local
            && settings.get(c.port.as_str()).is_some_and(|s| s.local_only)
        {
            continue;
        }
        let metric = if local { METRIC_LOCAL } else { METRIC_DEFAULT };
        let nexthop = if c.prefix.addr().is_ipv6() { nh6 } else { nh4 };
        routes.entry((c.prefix, metric)).or_insert(Advertised {
            prefix: c.prefix,
            metric,
            nexthop,
            source: c.source,
            port: c.port,
            tracked: c.tracked,
        });
    }
    let maintain_vrf = bound_ports.iter().any(|p| p.maintain_vrf);
    plan.routers.insert(
        r.uuid(),
        RouterPlan {
            uuid: r.uuid(),
            name: r.name().to_string(),
            table,
            vrf,
            maintain_vrf,
            bound_ports,
            routes,
        },
    );
}

/// `connected-as-host` for router port `op`.
fn host_routes(topo: &Topology<'_>, op: &LogicalRouterPort<'_>, out: &mut Vec<Candidate>) {
    let mut add = |ip: IpAddr, tracked: &str| {
        if !link_local_ip(ip) || ip.is_ipv4() {
            out.push(Candidate {
                prefix: host(ip),
                source: Source::ConnectedAsHost,
                port: op.name().to_string(),
                tracked: Some(tracked.to_string()),
            });
        }
    };
    if let Some(peer) = op.peer() {
        if let Some((pp, _)) = topo.lrps.get(peer) {
            for n in lrp_networks(pp) {
                add(n.addr(), pp.name());
            }
        }
        return;
    }
    let Some(s) = topo.switch_of_lrp.get(op.name()) else {
        return;
    };
    for u in s.ports() {
        let Some(p) = ovn_model::nb::LogicalSwitchPort::get(topo.nb, &u) else {
            continue;
        };
        if p.port_type() == "router" {
            if let Some((rp, _)) = p
                .options()
                .get("router-port")
                .and_then(|n| topo.lrps.get(n))
            {
                for n in lrp_networks(rp) {
                    add(n.addr(), rp.name());
                }
            }
            continue;
        }
        for ip in lsp_addresses(&p) {
            add(ip, p.name());
        }
    }
}

/// The external IPs of router `r`'s NATs, advertised through `op`.
fn nat_routes(
    topo: &Topology<'_>,
    op: &LogicalRouterPort<'_>,
    r: &LogicalRouter<'_>,
    r_ports: &[LogicalRouterPort<'_>],
    out: &mut Vec<Candidate>,
) {
    let dgps: Vec<&LogicalRouterPort<'_>> =
        r_ports.iter().filter(|p| Topology::is_dgp(p)).collect();
    for u in r.nat() {
        let Some(n) = Nat::get(topo.nb, &u) else {
            continue;
        };
        if !matches!(n.nat_type(), "snat" | "dnat" | "dnat_and_snat") {
            continue;
        }
        let Ok(ip) = n.external_ip().trim().parse::<IpAddr>() else {
            continue;
        };
        let distributed = n.nat_type() == "dnat_and_snat"
            && n.logical_port().is_some_and(|p| !p.is_empty())
            && n.external_mac().is_some_and(|m| !m.is_empty())
            && !dgps.is_empty();
        let tracked = if distributed {
            n.logical_port().map(str::to_string)
        } else if let Some(gp) = n.gateway_port() {
            r_ports
                .iter()
                .find(|p| p.uuid() == gp)
                .map(|p| p.name().to_string())
        } else if dgps.len() == 1 {
            Some(dgps[0].name().to_string())
        } else {
            None
        };
        out.push(Candidate {
            prefix: host(ip),
            source: Source::Nat,
            port: op.name().to_string(),
            tracked,
        });
    }
}

/// The VIPs of router `r`'s load balancers, its own and those of its load-balancer groups.
fn lb_vips(topo: &Topology<'_>, r: &LogicalRouter<'_>) -> Vec<IpAddr> {
    let mut out = vec![];
    let grouped = r
        .load_balancer_group()
        .filter_map(|g| LoadBalancerGroup::get(topo.nb, &g))
        .flat_map(|g| g.load_balancer().collect::<Vec<_>>());
    for u in r.load_balancer().chain(grouped) {
        let Some(lb) = LoadBalancer::get(topo.nb, &u) else {
            continue;
        };
        for (vip, _) in lb.vips().iter() {
            if let Some(ip) = vip_ip(vip) {
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out
}

/// The IP of a VIP key: `IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6 address.
pub fn vip_ip(vip: &str) -> Option<IpAddr> {
    let v = vip.trim();
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    v.rsplit_once(':')?
        .0
        .parse::<std::net::Ipv4Addr>()
        .ok()
        .map(IpAddr::V4)
}

/// `static`: the router's static routes, by output port.
fn static_routes(
    topo: &Topology<'_>,
    r: &LogicalRouter<'_>,
    ports: &[LogicalRouterPort<'_>],
    settings: &BTreeMap<&str, PortSettings>,
    out: &mut Vec<Candidate>,
) {
    for u in r.static_routes() {
        let Some(sr) = StaticRoute::get(topo.nb, &u) else {
            continue;
        };
        if sr.nexthop() == "discard" || sr.policy() == Some("src-ip") {
            continue;
        }
        // Routes we learned are not the operator's static routes (upstream keeps them apart, in
        // Learned_Route): advertising them would send the peer's routes back to it.
        if super::learn::is_ours(&sr) {
            continue;
        }
        let Some(prefix) = parse_prefix(sr.ip_prefix()) else {
            continue;
        };
        if link_local(&prefix) {
            continue;
        }
        let port = match sr.output_port() {
            Some(p) if !p.is_empty() => ports.iter().find(|x| x.name() == p),
            _ => {
                let Ok(nh) = sr.nexthop().parse::<IpAddr>() else {
                    continue;
                };
                ports
                    .iter()
                    .filter_map(|p| {
                        lrp_networks(p)
                            .into_iter()
                            .filter(|n| n.contains(&nh))
                            .map(|n| n.prefix_len())
                            .max()
                            .map(|l| (l, p))
                    })
                    .max_by_key(|(l, _)| *l)
                    .map(|(_, p)| p)
            }
        };
        let Some(port) = port else {
            continue;
        };
        if settings
            .get(port.name())
            .is_some_and(|s| s.redistribute.static_routes)
        {
            out.push(Candidate {
                prefix,
                source: Source::Static,
                port: port.name().to_string(),
                tracked: None,
            });
        }
    }
}

/// `IP/LEN` or a bare IP (a host prefix), host bits cleared.
pub fn parse_prefix(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}
