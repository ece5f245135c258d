//! Host routes: reach OVN networks from the host (and, through BGP, from the LAN) without manual
//! `ip route add <subnet> via <uplink address>`.
//!
//! Pure: (NB replica, the host's directly attached networks, include/exclude) ->
//! [`HostRoutesPlan`]. For every logical router whose uplink port (a distributed gateway port, or a
//! port on a switch with a localnet port, which covers gateway routers on provider networks) has an
//! address inside one of the host's attached networks, each internal subnet of the router (the
//! networks of its other ports, not peer ports, not link-local) gets a route
//! `subnet via <uplink address of that family> dev <host interface>`.
//!
//! Incus objects (`incus-net<ID>-lr`, port group `incus_net<ID>` with `incus_project_id`) and
//! Neutron ones (`neutron-<uuid>`, `neutron:router_name`) are recognised for display; any naming
//! works. Every value that cannot be used is reported with the row it came from.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use ovn_model::nb::{LogicalRouter, LogicalRouterPort, LogicalSwitch, LogicalSwitchPort};
use ovsdb::{Replica, TableSelect};

use crate::exposure::Rejected;

/// One address of the host with its prefix: a directly attached network.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostNetwork {
    /// The interface holding the address.
    pub dev: String,
    /// The host's own address on it.
    pub address: IpAddr,
    /// The attached network (the address with its prefix length, host bits cleared).
    pub network: IpNet,
}

impl HostNetwork {
    /// The attached network of `address/prefix_len` on `dev`; `None` for an invalid length.
    pub fn new(dev: &str, address: IpAddr, prefix_len: u8) -> Option<Self> {
        Some(HostNetwork {
            dev: dev.to_string(),
            address,
            network: IpNet::new(address, prefix_len).ok()?.trunc(),
        })
    }
}

/// One include/exclude pattern: a prefix (matches the subnets inside it) or a glob (`*`, `?`) on
/// the router name, the network's display name or its Incus/Neutron id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Subnets inside this prefix.
    Prefix(IpNet),
    /// Networks whose router name, display name or id matches.
    Glob(String),
}

impl Pattern {
    /// Parses a pattern: text with a `/` is a prefix (host bits must be zero), anything else a glob.
    pub fn parse(s: &str) -> Result<Pattern, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty pattern".into());
        }
        if s.contains('/') {
            let n: IpNet = s.parse().map_err(|_| format!("{s:?} is not a prefix"))?;
            if n.trunc() != n {
                return Err(format!(
                    "{s:?} has host bits set (did you mean {}?)",
                    n.trunc()
                ));
            }
            return Ok(Pattern::Prefix(n));
        }
        Ok(Pattern::Glob(s.to_string()))
    }

    fn matches_name(&self, names: &[&str]) -> bool {
        match self {
            Pattern::Glob(g) => names.iter().any(|n| glob(g, n)),
            Pattern::Prefix(_) => false,
        }
    }

    fn matches_subnet(&self, subnet: &IpNet) -> bool {
        match self {
            Pattern::Prefix(p) => p.contains(subnet),
            Pattern::Glob(_) => false,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Prefix(p) => write!(f, "{p}"),
            Pattern::Glob(g) => f.write_str(g),
        }
    }
}

/// `*` (any run) and `?` (one character) glob match, whole string.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The options of the host routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostRoutesConfig {
    /// When not empty, only networks (name patterns) or subnets (prefixes) matching one of these.
    pub include: Vec<Pattern>,
    /// Networks or subnets matching one of these are left out (wins over `include`).
    pub exclude: Vec<Pattern>,
}

/// Who made a router, recognised from its names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// An Incus OVN network.
    Incus {
        /// The network id (`incus-net<ID>-lr`).
        network_id: u64,
        /// The project id (port group `incus_net<ID>` `external_ids:incus_project_id`).
        project_id: Option<u64>,
    },
    /// A Neutron router.
    Neutron {
        /// The router's id (`neutron-<uuid>`).
        router_id: String,
        /// Its name (`external_ids:neutron:router_name`).
        router_name: Option<String>,
        /// Its project: `neutron:project_id` of the router, else of the switch ports Neutron
        /// made for its interfaces (`neutron:device_id` = the router's id).
        project_id: Option<String>,
    },
    /// Any other naming.
    Plain,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Incus {
                network_id,
                project_id,
            } => {
                write!(f, "incus network id {network_id}")?;
                match project_id {
                    Some(p) => write!(f, ", project id {p}"),
                    None => Ok(()),
                }
            }
            Origin::Neutron {
                router_id,
                router_name,
                project_id,
            } => {
                write!(f, "neutron router {router_id}")?;
                if let Some(n) = router_name {
                    write!(f, " ({n})")?;
                }
                match project_id {
                    Some(p) => write!(f, ", project {p}"),
                    None => Ok(()),
                }
            }
            Origin::Plain => f.write_str("ovn"),
        }
    }
}

/// A route the host should hold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostRoute {
    /// The OVN subnet.
    pub prefix: IpNet,
    /// The router's uplink address (the next hop).
    pub via: IpAddr,
    /// The host interface on the uplink network.
    pub dev: String,
    /// The logical router's name.
    pub router: String,
    /// Why: the router port the subnet comes from and the uplink port.
    pub sources: Vec<String>,
}

/// One OVN network (a router) reachable from the host, with its uplink and its subnets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvnNetwork {
    /// The logical router's name.
    pub router: String,
    /// A name for people (Neutron's router name, `incus net<ID>`, else the router's name).
    pub name: String,
    /// Who made it.
    pub origin: Origin,
    /// The uplink port (`Logical_Router_Port` name).
    pub uplink_port: String,
    /// The uplink addresses inside the host's attached networks (one per family at most), with
    /// the host interface.
    pub uplink: Vec<(IpAddr, String)>,
    /// The routes of this network (not excluded, not refused).
    pub routes: Vec<HostRoute>,
    /// Subnets left out by `include`/`exclude`.
    pub excluded: Vec<IpNet>,
}

/// The host routes wanted, the networks behind them and what was refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostRoutesPlan {
    /// Networks reachable from the host, by router name.
    pub networks: Vec<OvnNetwork>,
    /// Every route, by prefix.
    pub routes: BTreeMap<IpNet, HostRoute>,
    /// Values refused, sorted.
    pub rejected: Vec<Rejected>,
}

/// The Northbound tables and columns the host routes read (the agent adds them to its monitor).
pub fn nb_tables() -> Vec<TableSelect> {
    [
        ("Logical_Switch", &["name", "ports"][..]),
        (
            "Logical_Switch_Port",
            &["name", "type", "options", "external_ids"][..],
        ),
        (
            "Logical_Router",
            &["name", "ports", "options", "enabled", "external_ids"][..],
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
            ][..],
        ),
        ("Port_Group", &["name", "external_ids"][..]),
    ]
    .iter()
    .map(|(t, c)| TableSelect::columns(t, c))
    .collect()
}

fn is_link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// `incus-net<ID>-lr` -> ID.
fn incus_network_id(router: &str) -> Option<u64> {
    let id = router.strip_prefix("incus-net")?.strip_suffix("-lr")?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

/// A canonical UUID text (8-4-4-4-12 hex digits).
fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

struct Builder {
    rejected: Vec<Rejected>,
}

impl Builder {
    fn reject(&mut self, value: &str, source: &str, reason: impl Into<String>) {
        self.rejected.push(Rejected {
            value: value.to_string(),
            source: source.to_string(),
            reason: reason.into(),
        });
    }
}

/// Recognises the router's maker and its display name. `neutron_projects`: the project of each
/// Neutron router id, from its interface ports (see [`neutron_projects`]).
fn origin_of(
    lr: &LogicalRouter<'_>,
    project_of_net: &HashMap<u64, Option<u64>>,
    neutron_projects: &HashMap<String, String>,
    b: &mut Builder,
) -> (Origin, String) {
    let name = lr.name();
    if let Some(id) = incus_network_id(name) {
        let project_id = project_of_net.get(&id).copied().flatten();
        return (
            Origin::Incus {
                network_id: id,
                project_id,
            },
            format!("incus net{id}"),
        );
    }
    if let Some(uuid) = name.strip_prefix("neutron-") {
        let source = format!("Logical_Router {name}");
        if !is_uuid(uuid) {
            b.reject(
                name,
                &source,
                "neutron- router name without a UUID: shown as is",
            );
            return (Origin::Plain, name.to_string());
        }
        let ids = lr.external_ids();
        let router_name = ids
            .get("neutron:router_name")
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let project_id = ids
            .get("neutron:project_id")
            .or_else(|| ids.get("neutron:tenant_id"))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or_else(|| neutron_projects.get(uuid).cloned());
        let display = router_name.clone().unwrap_or_else(|| name.to_string());
        return (
            Origin::Neutron {
                router_id: uuid.to_string(),
                router_name,
                project_id,
            },
            display,
        );
    }
    (Origin::Plain, name.to_string())
}

/// The Incus project of each network id, from the port groups `incus_net<ID>`.
fn incus_projects(nb: &Replica, b: &mut Builder) -> HashMap<u64, Option<u64>> {
    let mut out = HashMap::new();
    let Some(t) = nb.table("Port_Group") else {
        return out;
    };
    for row in t.iter() {
        let Some(name) = row.get("name").and_then(|d| d.as_str()) else {
            continue;
        };
        let Some(id) = name
            .strip_prefix("incus_net")
            .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        let project = row
            .get("external_ids")
            .and_then(|d| d.get_str("incus_project_id"));
        let project = match project {
            None => None,
            Some(p) => match p.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    b.reject(
                        p,
                        &format!("Port_Group {name}"),
                        "incus_project_id is not a number",
                    );
                    None
                }
            },
        };
        out.insert(id, project);
    }
    out
}

/// The project of each Neutron router (by router id): Neutron records none on the
/// `Logical_Router`, but on the switch port of each router interface (`type` router,
/// `neutron:device_id` = the router's id, `neutron:project_id`); the gateway port's switch port
/// has an empty project. The first non-empty one by port name.
fn neutron_projects(nb: &Replica) -> HashMap<String, String> {
    let mut ports: Vec<LogicalSwitchPort<'_>> = LogicalSwitchPort::all(nb)
        .filter(|p| p.port_type() == "router")
        .collect();
    ports.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = HashMap::new();
    for p in ports {
        let ids = p.external_ids();
        let (Some(router), Some(project)) =
            (ids.get("neutron:device_id"), ids.get("neutron:project_id"))
        else {
            continue;
        };
        if !router.is_empty() && !project.is_empty() {
            out.entry(router.to_string())
                .or_insert_with(|| project.to_string());
        }
    }
    out
}

/// Router port names attached to a switch with a localnet port (a provider network).
fn provider_router_ports(nb: &Replica) -> HashSet<String> {
    let mut out = HashSet::new();
    for ls in LogicalSwitch::all(nb) {
        let ports: Vec<LogicalSwitchPort<'_>> = ls
            .ports()
            .filter_map(|u| LogicalSwitchPort::get(nb, &u))
            .collect();
        if !ports.iter().any(|p| p.port_type() == "localnet") {
            continue;
        }
        for p in ports {
            if p.port_type() == "router" {
                if let Some(rp) = p.options().get("router-port") {
                    out.insert(rp.to_string());
                }
            }
        }
    }
    out
}

/// Computes the host routes.
pub fn plan_host_routes(
    nb: &Replica,
    host: &[HostNetwork],
    cfg: &HostRoutesConfig,
) -> HostRoutesPlan {
    let mut b = Builder { rejected: vec![] };
    let projects = incus_projects(nb, &mut b);
    let provider_lrps = provider_router_ports(nb);
    let neutron = neutron_projects(nb);
    let mut routers: Vec<LogicalRouter<'_>> = LogicalRouter::all(nb).collect();
    routers.sort_by(|a, b| a.name().cmp(b.name()).then(a.uuid().cmp(&b.uuid())));
    let mut plan = HostRoutesPlan::default();
    for lr in routers {
        if lr.enabled() == Some(false) {
            continue;
        }
        let mut ports: Vec<LogicalRouterPort<'_>> = lr
            .ports()
            .filter_map(|u| LogicalRouterPort::get(nb, &u))
            .collect();
        ports.sort_by(|a, b| a.name().cmp(b.name()));
        let is_uplink = |p: &LogicalRouterPort<'_>| {
            p.peer().is_none()
                && (p.gateway_chassis().next().is_some()
                    || p.ha_chassis_group().is_some()
                    || p.options().contains("redirect-chassis")
                    || provider_lrps.contains(p.name()))
        };
        // The uplink address of each family inside a host network, and its port.
        let mut uplink: Vec<(IpAddr, String)> = vec![];
        let mut uplink_port: Option<String> = None;
        for p in ports.iter().filter(|p| is_uplink(p)) {
            let source = format!("Logical_Router_Port {} (router {})", p.name(), lr.name());
            for net in p.networks() {
                let Ok(n) = net.parse::<IpNet>() else {
                    b.reject(net, &source, "not an IP/prefix network");
                    continue;
                };
                let a = n.addr();
                if uplink.iter().any(|(u, _)| u.is_ipv4() == a.is_ipv4()) {
                    continue;
                }
                let Some(h) = host.iter().find(|h| h.network.contains(&a)) else {
                    continue;
                };
                if h.address == a {
                    b.reject(
                        net,
                        &source,
                        format!("the host itself has this address (on {})", h.dev),
                    );
                    continue;
                }
                uplink.push((a, h.dev.clone()));
                uplink_port.get_or_insert_with(|| p.name().to_string());
            }
        }
        let Some(uplink_port) = uplink_port else {
            continue;
        };
        let (origin, name) = origin_of(&lr, &projects, &neutron, &mut b);
        let mut names = vec![lr.name().to_string(), name.clone()];
        match &origin {
            Origin::Incus { network_id, .. } => names.push(network_id.to_string()),
            Origin::Neutron { router_id, .. } => names.push(router_id.clone()),
            Origin::Plain => {}
        }
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut net = OvnNetwork {
            router: lr.name().to_string(),
            name,
            origin,
            uplink_port: uplink_port.clone(),
            uplink: uplink.clone(),
            routes: vec![],
            excluded: vec![],
        };
        for p in ports.iter().filter(|p| !is_uplink(p) && p.peer().is_none()) {
            let source = format!("Logical_Router_Port {} (router {})", p.name(), lr.name());
            for text in p.networks() {
                let Ok(n) = text.parse::<IpNet>() else {
                    b.reject(text, &source, "not an IP/prefix network");
                    continue;
                };
                let subnet = n.trunc();
                if is_link_local(subnet.addr()) || subnet.prefix_len() == 0 {
                    continue;
                }
                let Some((via, dev)) = uplink
                    .iter()
                    .find(|(u, _)| u.is_ipv4() == subnet.addr().is_ipv4())
                else {
                    continue;
                };
                if let Some(h) = host
                    .iter()
                    .find(|h| h.network.contains(&subnet) || subnet.contains(&h.network))
                {
                    b.reject(
                        text,
                        &source,
                        format!(
                            "overlaps the host's attached network {} on {}",
                            h.network, h.dev
                        ),
                    );
                    continue;
                }
                let hit = |p: &Pattern| p.matches_name(&name_refs) || p.matches_subnet(&subnet);
                let included = cfg.include.is_empty() || cfg.include.iter().any(hit);
                let excluded = cfg.exclude.iter().any(hit);
                if !included || excluded {
                    net.excluded.push(subnet);
                    continue;
                }
                if let Some(other) = plan.routes.get(&subnet) {
                    b.reject(
                        text,
                        &source,
                        format!("{subnet} is already routed to router {}", other.router),
                    );
                    continue;
                }
                let route = HostRoute {
                    prefix: subnet,
                    via: *via,
                    dev: dev.clone(),
                    router: lr.name().to_string(),
                    sources: vec![
                        source.clone(),
                        format!("uplink Logical_Router_Port {uplink_port} {via}"),
                    ],
                };
                plan.routes.insert(subnet, route.clone());
                net.routes.push(route);
            }
        }
        plan.networks.push(net);
    }
    b.rejected.sort();
    b.rejected.dedup();
    plan.rejected = b.rejected;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use ovsdb::DatabaseSchema;
    use serde_json::{json, Map, Value as Json};

    fn schema() -> DatabaseSchema {
        let map = json!({"key": "string", "value": "string", "min": 0, "max": "unlimited"});
        let uuids = json!({"key": "uuid", "min": 0, "max": "unlimited"});
        let strs = json!({"key": "string", "min": 0, "max": "unlimited"});
        let opt = |t: &str| json!({"key": t, "min": 0, "max": 1});
        DatabaseSchema::from_json(&json!({"name": "OVN_Northbound", "tables": {
            "Logical_Switch": {"columns": {"name": {"type": "string"}, "ports": {"type": uuids}}},
            "Logical_Switch_Port": {"columns": {"name": {"type": "string"}, "type": {"type": "string"},
                "options": {"type": map}, "external_ids": {"type": map}}},
            "Logical_Router": {"columns": {"name": {"type": "string"}, "ports": {"type": uuids},
                "options": {"type": map}, "external_ids": {"type": map}, "enabled": {"type": opt("boolean")}}},
            "Logical_Router_Port": {"columns": {"name": {"type": "string"}, "networks": {"type": strs},
                "gateway_chassis": {"type": uuids}, "ha_chassis_group": {"type": opt("uuid")},
                "peer": {"type": opt("string")}, "options": {"type": map}}},
            "Port_Group": {"columns": {"name": {"type": "string"}, "external_ids": {"type": map}}}
        }}))
        .unwrap()
    }

    fn kv(pairs: &[(&str, &str)]) -> Json {
        json!([
            "map",
            pairs.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
        ])
    }
    fn set(v: &[&str]) -> Json {
        json!(["set", v])
    }
    fn refs(u: &[String]) -> Json {
        json!([
            "set",
            u.iter().map(|u| json!(["uuid", u])).collect::<Vec<_>>()
        ])
    }

    /// Builds NB rows as `update2` inserts.
    #[derive(Default)]
    struct Fx {
        nb: Map<String, Json>,
        n: u32,
    }

    impl Fx {
        fn row(&mut self, table: &str, row: Json) -> String {
            self.n += 1;
            let u = format!("00000000-0000-0000-0000-{:012}", self.n);
            self.nb
                .entry(table)
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .unwrap()
                .insert(u.clone(), json!({"insert": row}));
            u
        }
        fn lrp(&mut self, name: &str, nets: &[&str], extra: Json) -> String {
            let mut r = json!({"name": name, "networks": set(nets)});
            for (k, v) in extra.as_object().unwrap() {
                r[k] = v.clone();
            }
            self.row("Logical_Router_Port", r)
        }
        /// A switch with a localnet port and router-type ports for `lrps`.
        fn provider_switch(&mut self, name: &str, lrps: &[&str]) {
            let mut ports = vec![self.row(
                "Logical_Switch_Port",
                json!({"name": format!("{name}-lsp-provider"), "type": "localnet",
                       "options": kv(&[("network_name", "incusbr0")])}),
            )];
            for l in lrps {
                ports.push(self.row(
                    "Logical_Switch_Port",
                    json!({"name": format!("{name}-{l}"), "type": "router",
                           "options": kv(&[("router-port", l)])}),
                ));
            }
            self.row(
                "Logical_Switch",
                json!({"name": name, "ports": refs(&ports)}),
            );
        }
        /// An Incus network: router incus-net<ID>-lr with -lrp-ext (uplink) and -lrp-int.
        fn incus(&mut self, id: u32, uplink: &[&str], internal: &[&str], project: Option<&str>) {
            let lr = format!("incus-net{id}-lr");
            let ext = self.lrp(&format!("{lr}-lrp-ext"), uplink, json!({}));
            let int = self.lrp(&format!("{lr}-lrp-int"), internal, json!({}));
            self.provider_switch(
                &format!("incus-net{id}-ls-ext"),
                &[&format!("{lr}-lrp-ext")],
            );
            self.row(
                "Logical_Router",
                json!({"name": lr, "ports": refs(&[ext, int])}),
            );
            if let Some(p) = project {
                self.row(
                    "Port_Group",
                    json!({"name": format!("incus_net{id}"), "external_ids": kv(&[("incus_project_id", p)])}),
                );
            }
        }
        fn replica(self) -> Replica {
            let mut r = Replica::for_schema(&schema(), None);
            r.apply_json_updates2(&Json::Object(self.nb)).unwrap();
            r
        }
    }

    fn host() -> Vec<HostNetwork> {
        vec![
            HostNetwork::new("incusbr0", "10.220.0.1".parse().unwrap(), 24).unwrap(),
            HostNetwork::new("incusbr0", "fd42::1".parse().unwrap(), 64).unwrap(),
            HostNetwork::new("eth0", "192.168.1.5".parse().unwrap(), 24).unwrap(),
        ]
    }

    /// Seed 002: `infra` and `kubernetes` behind incusbr0.
    fn seed() -> Replica {
        let mut fx = Fx::default();
        fx.incus(
            2,
            &["10.220.0.100/24", "fd42::100/64"],
            &["10.190.10.1/24", "fd42:10::1/64"],
            Some("1"),
        );
        fx.incus(
            3,
            &["10.220.0.101/24"],
            &["10.190.11.1/24", "fd42:11::1/64"],
            Some("4"),
        );
        fx.replica()
    }

    fn routes(p: &HostRoutesPlan) -> Vec<String> {
        p.routes
            .values()
            .map(|r| format!("{} via {} dev {}", r.prefix, r.via, r.dev))
            .collect()
    }

    #[test]
    fn seed_002_gets_a_route_per_subnet_via_its_uplink() {
        let p = plan_host_routes(&seed(), &host(), &HostRoutesConfig::default());
        assert_eq!(
            routes(&p),
            [
                "10.190.10.0/24 via 10.220.0.100 dev incusbr0",
                "10.190.11.0/24 via 10.220.0.101 dev incusbr0",
                "fd42:10::/64 via fd42::100 dev incusbr0",
            ]
        );
        assert_eq!(p.networks.len(), 2);
        let n = &p.networks[0];
        assert_eq!(n.router, "incus-net2-lr");
        assert_eq!(n.uplink_port, "incus-net2-lr-lrp-ext");
        assert_eq!(
            n.origin,
            Origin::Incus {
                network_id: 2,
                project_id: Some(1)
            }
        );
        assert_eq!(n.origin.to_string(), "incus network id 2, project id 1");
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        // The IPv6 subnet of net3 has no IPv6 uplink: no route, no rejection.
        assert!(p.networks[1]
            .routes
            .iter()
            .all(|r| r.prefix.addr().is_ipv4()));
    }

    #[test]
    fn no_route_without_an_attached_uplink_network() {
        let only_eth0 = vec![host().remove(2)];
        let p = plan_host_routes(&seed(), &only_eth0, &HostRoutesConfig::default());
        assert!(p.routes.is_empty() && p.networks.is_empty());
    }

    #[test]
    fn include_and_exclude_table() {
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            (
                &[],
                &[],
                &["10.190.10.0/24", "10.190.11.0/24", "fd42:10::/64"],
            ),
            (&["incus-net2-*"], &[], &["10.190.10.0/24", "fd42:10::/64"]),
            (&["3"], &[], &["10.190.11.0/24"]),
            (
                &["10.190.0.0/16"],
                &[],
                &["10.190.10.0/24", "10.190.11.0/24"],
            ),
            (&[], &["incus net3"], &["10.190.10.0/24", "fd42:10::/64"]),
            (&[], &["fd00::/8"], &["10.190.10.0/24", "10.190.11.0/24"]),
            (
                &["incus-net*"],
                &["10.190.11.0/24"],
                &["10.190.10.0/24", "fd42:10::/64"],
            ),
            (&["nothing"], &[], &[]),
        ];
        let nb = seed();
        for (inc, exc, want) in cases {
            let cfg = HostRoutesConfig {
                include: inc.iter().map(|s| Pattern::parse(s).unwrap()).collect(),
                exclude: exc.iter().map(|s| Pattern::parse(s).unwrap()).collect(),
            };
            let p = plan_host_routes(&nb, &host(), &cfg);
            let got: Vec<String> = p.routes.keys().map(|k| k.to_string()).collect();
            assert_eq!(got, *want, "include {inc:?} exclude {exc:?}");
            let excluded: usize = p.networks.iter().map(|n| n.excluded.len()).sum();
            assert_eq!(excluded + got.len(), 3, "include {inc:?} exclude {exc:?}");
        }
    }

    #[test]
    fn patterns_parse_or_say_why() {
        assert_eq!(
            Pattern::parse("10.0.0.0/8").unwrap(),
            Pattern::Prefix("10.0.0.0/8".parse().unwrap())
        );
        assert!(Pattern::parse("10.0.0.1/8")
            .unwrap_err()
            .contains("10.0.0.0/8"));
        assert!(Pattern::parse("10.0.0/8").is_err());
        assert!(Pattern::parse(" ").is_err());
        for (p, t, m) in [
            ("*", "", true),
            ("incus-net*-lr", "incus-net12-lr", true),
            ("incus-net?-lr", "incus-net12-lr", false),
            ("a*b*c", "aXbYbZc", true),
            ("abc", "abcd", false),
        ] {
            assert_eq!(glob(p, t), m, "{p} {t}");
        }
    }

    #[test]
    fn neutron_gateway_router_and_plain_routers() {
        let mut fx = Fx::default();
        // Neutron: distributed gateway port (gateway chassis), project recorded.
        let gw = fx.lrp(
            "lrp-gw",
            &["10.220.0.50/24"],
            json!({"gateway_chassis": refs(&["00000000-0000-0000-0000-000000009999".into()])}),
        );
        let int = fx.lrp("lrp-int", &["172.16.5.1/24", "fe80::1/64"], json!({}));
        fx.row(
            "Logical_Router",
            json!({"name": "neutron-0b9a1e4c-5d7f-4a8e-9c3b-2f1e0d9c8b7a", "ports": refs(&[gw, int]),
                   "external_ids": kv(&[("neutron:router_name", "web"), ("neutron:project_id", "p1")])}),
        );
        // A gateway router (options:chassis) whose port is on a provider switch; a peer port.
        let up = fx.lrp("gr-up", &["10.220.0.60/24"], json!({}));
        let int2 = fx.lrp("gr-int", &["172.16.6.1/24"], json!({}));
        let peer = fx.lrp("gr-peer", &["172.16.7.1/32"], json!({"peer": "other"}));
        fx.provider_switch("public", &["gr-up"]);
        fx.row(
            "Logical_Router",
            json!({"name": "gr0", "ports": refs(&[up, int2, peer]), "options": kv(&[("chassis", "hv1")])}),
        );
        // A malformed neutron name, a disabled router.
        let gw3 = fx.lrp(
            "lrp-gw3",
            &["10.220.0.70/24"],
            json!({"options": kv(&[("redirect-chassis", "hv1")])}),
        );
        let int3 = fx.lrp("lrp-int3", &["172.16.8.1/24"], json!({}));
        fx.row(
            "Logical_Router",
            json!({"name": "neutron-xyz", "ports": refs(&[gw3, int3])}),
        );
        let gw4 = fx.lrp(
            "lrp-gw4",
            &["10.220.0.80/24"],
            json!({"options": kv(&[("redirect-chassis", "hv1")])}),
        );
        let int4 = fx.lrp("lrp-int4", &["172.16.9.1/24"], json!({}));
        fx.row(
            "Logical_Router",
            json!({"name": "off", "ports": refs(&[gw4, int4]), "enabled": false}),
        );
        let p = plan_host_routes(&fx.replica(), &host(), &HostRoutesConfig::default());
        assert_eq!(
            routes(&p),
            [
                "172.16.5.0/24 via 10.220.0.50 dev incusbr0",
                "172.16.6.0/24 via 10.220.0.60 dev incusbr0",
                "172.16.8.0/24 via 10.220.0.70 dev incusbr0",
            ]
        );
        let n = p
            .networks
            .iter()
            .find(|n| n.router.starts_with("neutron-0b"))
            .unwrap();
        assert_eq!(n.name, "web");
        assert_eq!(
            n.origin.to_string(),
            "neutron router 0b9a1e4c-5d7f-4a8e-9c3b-2f1e0d9c8b7a (web), project p1"
        );
        assert_eq!(p.rejected.len(), 1, "{:?}", p.rejected);
        assert_eq!(p.rejected[0].source, "Logical_Router neutron-xyz");
    }

    /// A router as Neutron's OVN driver builds it: `neutron-<router id>` with
    /// `neutron:router_name` (no project on the router), gateway port `lrp-<port id>` on the
    /// external network's switch (`neutron-<net id>`, localnet `provnet-<segment id>`), an
    /// interface port whose switch port carries `neutron:device_id` and `neutron:project_id`.
    #[test]
    fn neutron_router_shows_its_ids_and_project_from_its_interface_ports() {
        let router = "5c1f3a2e-8d4b-4f6a-9e7c-1b2d3c4e5f60";
        let project = "9b1d2c3e4f5a4b6c8d7e6f5a4b3c2d1e";
        let gw_port = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
        let if_port = "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910";
        let mut fx = Fx::default();
        let chassis = "00000000-0000-0000-0000-000000009999".to_string();
        let gw = fx.lrp(
            &format!("lrp-{gw_port}"),
            &["10.220.0.50/24", "fd42::50/64"],
            json!({"gateway_chassis": refs(&[chassis])}),
        );
        let int = fx.lrp(
            &format!("lrp-{if_port}"),
            &["172.16.5.1/24", "fd42:5::1/64"],
            json!({}),
        );
        let router_lsp = |fx: &mut Fx, port: &str, owner: &str, project: &str| {
            fx.row(
                "Logical_Switch_Port",
                json!({"name": port, "type": "router",
                       "options": kv(&[("router-port", &format!("lrp-{port}"))]),
                       "external_ids": kv(&[("neutron:device_id", router),
                                            ("neutron:device_owner", owner),
                                            ("neutron:project_id", project)])}),
            )
        };
        let provnet = fx.row(
            "Logical_Switch_Port",
            json!({"name": "provnet-3e2d1c0b-a987-4654-b321-0fedcba98765", "type": "localnet",
                   "options": kv(&[("network_name", "physnet1")])}),
        );
        let gw_lsp = router_lsp(&mut fx, gw_port, "network:router_gateway", "");
        fx.row(
            "Logical_Switch",
            json!({"name": "neutron-1d2c3b4a-5e6f-4708-9a1b-2c3d4e5f6a7b",
                   "ports": refs(&[provnet, gw_lsp])}),
        );
        let if_lsp = router_lsp(&mut fx, if_port, "network:router_interface", project);
        fx.row(
            "Logical_Switch",
            json!({"name": "neutron-6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d", "ports": refs(&[if_lsp])}),
        );
        fx.row(
            "Logical_Router",
            json!({"name": format!("neutron-{router}"), "ports": refs(&[gw, int]),
                   "external_ids": kv(&[("neutron:router_name", "web"),
                                        ("neutron:revision_number", "4"),
                                        ("neutron:availability_zone_hints", ""),
                                        ("neutron:gw_port_id", gw_port)])}),
        );
        let nb = fx.replica();
        let p = plan_host_routes(&nb, &host(), &HostRoutesConfig::default());
        assert_eq!(
            routes(&p),
            [
                "172.16.5.0/24 via 10.220.0.50 dev incusbr0",
                "fd42:5::/64 via fd42::50 dev incusbr0",
            ]
        );
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        let n = &p.networks[0];
        assert_eq!(
            (n.name.as_str(), n.uplink_port.as_str()),
            ("web", &*format!("lrp-{gw_port}"))
        );
        assert_eq!(
            n.origin,
            Origin::Neutron {
                router_id: router.into(),
                router_name: Some("web".into()),
                project_id: Some(project.into()),
            }
        );
        assert_eq!(
            n.origin.to_string(),
            format!("neutron router {router} (web), project {project}")
        );
        // include/exclude by the router's name, its Neutron id or its name in Neutron.
        for (pattern, routed) in [
            ("web", true),
            (router, true),
            ("neutron-5c1f*", true),
            ("db", false),
        ] {
            let cfg = HostRoutesConfig {
                include: vec![Pattern::parse(pattern).unwrap()],
                exclude: vec![],
            };
            let p = plan_host_routes(&nb, &host(), &cfg);
            assert_eq!(p.routes.len(), if routed { 2 } else { 0 }, "{pattern}");
        }
    }

    #[test]
    fn malformed_overlapping_and_duplicate_values_name_their_row() {
        let mut fx = Fx::default();
        fx.incus(
            5,
            &["10.220.0.1/24", "10.220.0.105/24"],
            &["bogus", "10.190.20.1/24", "10.220.0.0/25"],
            Some("x"),
        );
        fx.incus(6, &["10.220.0.106/24"], &["10.190.20.1/24"], None);
        let p = plan_host_routes(&fx.replica(), &host(), &HostRoutesConfig::default());
        assert_eq!(routes(&p), ["10.190.20.0/24 via 10.220.0.105 dev incusbr0"]);
        let why: Vec<(String, String, String)> = p
            .rejected
            .iter()
            .map(|r| (r.value.clone(), r.source.clone(), r.reason.clone()))
            .collect();
        let has = |v: &str, src: &str, reason: &str| {
            why.iter()
                .any(|(a, b, c)| a == v && b.starts_with(src) && c.contains(reason))
        };
        assert!(has("x", "Port_Group incus_net5", "not a number"), "{why:?}");
        assert!(
            has(
                "bogus",
                "Logical_Router_Port incus-net5-lr-lrp-int",
                "not an IP"
            ),
            "{why:?}"
        );
        assert!(
            has(
                "10.220.0.1/24",
                "Logical_Router_Port incus-net5-lr-lrp-ext",
                "host itself"
            ),
            "{why:?}"
        );
        assert!(
            has(
                "10.220.0.0/25",
                "Logical_Router_Port incus-net5-lr-lrp-int",
                "overlaps"
            ),
            "{why:?}"
        );
        assert!(
            has(
                "10.190.20.1/24",
                "Logical_Router_Port incus-net6-lr-lrp-int",
                "already routed to router incus-net5-lr"
            ),
            "{why:?}"
        );
        assert_eq!(
            p.networks[0].origin,
            Origin::Incus {
                network_id: 5,
                project_id: None
            }
        );
    }
}
