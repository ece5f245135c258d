//! The facts the dynamic-routing planner reads from the NB and SB: ports by name, which switch
//! each router port attaches to, where ports are bound, each router's datapath tunnel key.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use ovn_model::nb::{LogicalRouter, LogicalRouterPort, LogicalSwitch, LogicalSwitchPort};
use ovn_model::sb::{Chassis, DatapathBinding, PortBinding};
use ovsdb::{Replica, Uuid};

use crate::ChassisIdentity;

/// The topology index.
pub(super) struct Topology<'a> {
    pub nb: &'a Replica,
    pub me: &'a ChassisIdentity,
    pub uses_sb: bool,
    /// Router port name -> (port, its router).
    pub lrps: HashMap<&'a str, (LogicalRouterPort<'a>, LogicalRouter<'a>)>,
    /// Switch port name -> port.
    pub lsps: HashMap<&'a str, LogicalSwitchPort<'a>>,
    /// Router port name -> the switch it attaches to (through a router-type switch port).
    pub switch_of_lrp: HashMap<&'a str, LogicalSwitch<'a>>,
    /// With SB: logical ports bound on this chassis.
    pub bound: HashSet<&'a str>,
    /// With SB: router row -> its datapath's tunnel key.
    pub tunnel_keys: HashMap<Uuid, i64>,
}

impl<'a> Topology<'a> {
    pub fn new(nb: &'a Replica, sb: Option<&'a Replica>, me: &'a ChassisIdentity) -> Self {
        let mut lrps = HashMap::new();
        for r in LogicalRouter::all(nb) {
            for p in r.ports() {
                if let Some(p) = LogicalRouterPort::get(nb, &p) {
                    lrps.insert(p.name(), (p, r));
                }
            }
        }
        let lsps: HashMap<_, _> = LogicalSwitchPort::all(nb).map(|p| (p.name(), p)).collect();
        let mut switch_of_lrp = HashMap::new();
        for s in LogicalSwitch::all(nb) {
            for p in s.ports() {
                if let Some(p) = LogicalSwitchPort::get(nb, &p) {
                    if p.port_type() == "router" {
                        if let Some(rp) = p.options().get("router-port") {
                            switch_of_lrp.insert(rp, s);
                        }
                    }
                }
            }
        }
        let mut bound = HashSet::new();
        let mut tunnel_keys = HashMap::new();
        if let Some(sb) = sb {
            let mine: HashSet<Uuid> = Chassis::all(sb)
                .filter(|c| c.name() == me.system_id)
                .map(|c| c.uuid())
                .collect();
            for b in PortBinding::all(sb) {
                if b.chassis().is_some_and(|c| mine.contains(&c)) {
                    bound.insert(b.logical_port());
                }
            }
            for d in DatapathBinding::all(sb) {
                if let (Some(r), Some(k)) = (
                    d.external_ids()
                        .get("logical-router")
                        .and_then(|u| u.parse::<Uuid>().ok()),
                    d.tunnel_key(),
                ) {
                    tunnel_keys.insert(r, k);
                }
            }
        }
        Topology {
            nb,
            me,
            uses_sb: sb.is_some(),
            lrps,
            lsps,
            switch_of_lrp,
            bound,
            tunnel_keys,
        }
    }

    fn is_me(&self, chassis: &str) -> bool {
        chassis == self.me.system_id || self.me.hostname.as_deref() == Some(chassis)
    }

    /// Whether the router is a gateway router bound to this chassis (`options:chassis`).
    pub fn gateway_router_here(&self, r: &LogicalRouter<'_>) -> bool {
        r.options().get("chassis").is_some_and(|c| self.is_me(c))
    }

    /// Whether `r` is a gateway router (bound to some chassis).
    pub fn is_gateway_router(r: &LogicalRouter<'_>) -> bool {
        r.options().get("chassis").is_some_and(|c| !c.is_empty())
    }

    /// Whether a router port is a distributed gateway port.
    pub fn is_dgp(p: &LogicalRouterPort<'_>) -> bool {
        p.gateway_chassis().next().is_some()
            || p.ha_chassis_group().is_some()
            || p.options().contains("redirect-chassis")
    }

    /// Whether the distributed gateway port `p` is active on this chassis.
    pub fn dgp_here(&self, p: &LogicalRouterPort<'_>) -> bool {
        if self.uses_sb {
            self.bound.contains(format!("cr-{}", p.name()).as_str())
        } else {
            p.status()
                .get("hosting-chassis")
                .is_some_and(|c| self.is_me(c))
        }
    }

    /// Whether the logical port `name` (switch or router port) is bound on this chassis.
    pub fn is_local(&self, name: &str) -> bool {
        if let Some((p, r)) = self.lrps.get(name) {
            if self.gateway_router_here(r) {
                return true;
            }
            return Self::is_dgp(p) && self.dgp_here(p);
        }
        if self.uses_sb {
            return self.bound.contains(name);
        }
        self.lsps.get(name).is_some_and(|p| {
            p.options()
                .get("requested-chassis")
                .is_some_and(|c| c.split(',').any(|c| self.is_me(c.trim())))
        })
    }

    /// The router ports of router `r`.
    pub fn ports_of(&self, r: &LogicalRouter<'a>) -> Vec<LogicalRouterPort<'a>> {
        r.ports()
            .filter_map(|u| LogicalRouterPort::get(self.nb, &u))
            .collect()
    }

    /// The router ports on the other side of `op`: its `peer`, or every other router port on
    /// the switch it attaches to.
    pub fn neighbours(
        &self,
        op: &LogicalRouterPort<'a>,
    ) -> Vec<(LogicalRouterPort<'a>, LogicalRouter<'a>)> {
        if let Some(peer) = op.peer() {
            return self.lrps.get(peer).copied().into_iter().collect();
        }
        let Some(s) = self.switch_of_lrp.get(op.name()) else {
            return vec![];
        };
        let mut out = vec![];
        for p in s.ports() {
            let Some(p) = LogicalSwitchPort::get(self.nb, &p) else {
                continue;
            };
            if p.port_type() != "router" {
                continue;
            }
            match p.options().get("router-port") {
                Some(rp) if rp != op.name() => out.extend(self.lrps.get(rp).copied()),
                _ => {}
            }
        }
        out
    }
}

/// The networks of a router port that parse (`IP/LEN`).
pub(super) fn lrp_networks(p: &LogicalRouterPort<'_>) -> Vec<IpNet> {
    p.networks()
        .filter_map(|n| n.parse::<IpNet>().ok())
        .collect()
}

/// The IP addresses of a switch port (`MAC IP...` entries; `dynamic` through
/// `dynamic_addresses`).
pub(super) fn lsp_addresses(p: &LogicalSwitchPort<'_>) -> Vec<IpAddr> {
    let mut out = vec![];
    let mut entry = |e: &str| {
        let mut words = e.split_whitespace();
        let _mac = words.next();
        for w in words {
            let ip = w.split('/').next().unwrap_or(w);
            if let Ok(ip) = ip.parse::<IpAddr>() {
                out.push(ip);
            }
        }
    };
    for a in p.addresses() {
        if a == "dynamic" {
            if let Some(d) = p.dynamic_addresses() {
                entry(d);
            }
        } else {
            entry(a);
        }
    }
    out
}

/// Whether a prefix is link-local (169.254.0.0/16, fe80::/10).
pub(super) fn link_local(p: &IpNet) -> bool {
    match p {
        IpNet::V4(n) => {
            n.prefix_len() >= 16 && n.addr().octets()[0] == 169 && n.addr().octets()[1] == 254
        }
        IpNet::V6(n) => n.prefix_len() >= 10 && (n.addr().segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Whether an address is link-local.
pub(super) fn link_local_ip(ip: IpAddr) -> bool {
    link_local(&IpNet::from(ip))
}
