//! The `dynamic-routing*` options of `Logical_Router` and `Logical_Router_Port`, read as OVN
//! 25.03+ reads them. An invalid value is reported (row and option named) and handled as upstream
//! does: a boolean other than `true` is false, an unknown redistribute word is ignored, an invalid
//! table id falls back to the datapath's tunnel key, a VRF name of 16 characters or more falls back
//! to `ovnvrf<table id>`, an invalid prefix next hop leaves routes as blackholes.

use std::net::IpAddr;

use ovn_model::Map;

use crate::exposure::Rejected;

/// `dynamic-routing`.
pub const OPT_ENABLED: &str = "dynamic-routing";
/// `dynamic-routing-redistribute`.
pub const OPT_REDISTRIBUTE: &str = "dynamic-routing-redistribute";
/// `dynamic-routing-redistribute-local-only`.
pub const OPT_LOCAL_ONLY: &str = "dynamic-routing-redistribute-local-only";
/// `dynamic-routing-vrf-name`.
pub const OPT_VRF_NAME: &str = "dynamic-routing-vrf-name";
/// `dynamic-routing-vrf-id`.
pub const OPT_VRF_ID: &str = "dynamic-routing-vrf-id";
/// `dynamic-routing-no-learning`.
pub const OPT_NO_LEARNING: &str = "dynamic-routing-no-learning";
/// `dynamic-routing-v4-prefix-nexthop`.
pub const OPT_V4_NEXTHOP: &str = "dynamic-routing-v4-prefix-nexthop";
/// `dynamic-routing-v6-prefix-nexthop`.
pub const OPT_V6_NEXTHOP: &str = "dynamic-routing-v6-prefix-nexthop";
/// `dynamic-routing-maintain-vrf` (router port).
pub const OPT_MAINTAIN_VRF: &str = "dynamic-routing-maintain-vrf";
/// `dynamic-routing-port-name` (router port).
pub const OPT_PORT_NAME: &str = "dynamic-routing-port-name";
/// Open_vSwitch `external_ids:dynamic-routing-port-mapping`.
pub const OVS_PORT_MAPPING: &str = "dynamic-routing-port-mapping";

/// The longest VRF name the kernel accepts is 15 bytes; upstream ignores names of 16 or more.
pub const MAX_VRF_NAME: usize = 15;

/// Table ids never used for a router: unspec, default, main, local, and the all-ones id.
pub const RESERVED_TABLES: [u32; 6] = [0, 252, 253, 254, 255, u32::MAX];

/// What `dynamic-routing-redistribute` selects (a set of route sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Redistribute {
    /// `connected`: the router ports' networks (also set by `connected-as-host`).
    pub connected: bool,
    /// `connected-as-host`: host routes instead of the networks.
    pub connected_as_host: bool,
    /// `static`: the router's static routes.
    pub static_routes: bool,
    /// `nat`: NAT external IPs.
    pub nat: bool,
    /// `lb`: load-balancer VIPs.
    pub lb: bool,
}

impl Redistribute {
    /// True when nothing is redistributed.
    pub fn is_empty(&self) -> bool {
        *self == Redistribute::default()
    }
}

/// The row an option came from, for messages: `Logical_Router lr0`.
#[derive(Debug, Clone, Copy)]
pub struct RowName<'a> {
    /// `Logical_Router` or `Logical_Router_Port`.
    pub table: &'a str,
    /// The row's name.
    pub name: &'a str,
}

impl RowName<'_> {
    fn problem(&self, option: &str, value: &str, reason: impl Into<String>) -> Rejected {
        Rejected {
            value: value.to_string(),
            source: format!("{} {} options:{option}", self.table, self.name),
            reason: reason.into(),
        }
    }
}

/// A boolean option (default false): `true` is true, anything else false; a value other than
/// `true`/`false` is reported.
pub fn bool_opt(opts: &Map<'_>, row: RowName<'_>, key: &str, out: &mut Vec<Rejected>) -> bool {
    match opts.get(key) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            out.push(row.problem(key, v, "not a boolean (true or false): read as false"));
            false
        }
    }
}

/// Parses `dynamic-routing-redistribute`; `None` when the option is absent (a port then inherits
/// the router's). Unknown words are reported and ignored.
pub fn redistribute(
    opts: &Map<'_>,
    row: RowName<'_>,
    out: &mut Vec<Rejected>,
) -> Option<Redistribute> {
    let v = opts.get(OPT_REDISTRIBUTE)?;
    let mut r = Redistribute::default();
    for word in v.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word {
            "connected" => r.connected = true,
            "connected-as-host" => {
                r.connected = true;
                r.connected_as_host = true;
            }
            "static" => r.static_routes = true,
            "nat" => r.nat = true,
            "lb" => r.lb = true,
            _ => out.push(row.problem(
                OPT_REDISTRIBUTE,
                word,
                "unknown redistribute type (connected, connected-as-host, static, nat, lb): ignored",
            )),
        }
    }
    Some(r)
}

/// Parses `dynamic-routing-redistribute-local-only`; `None` when absent.
pub fn local_only(opts: &Map<'_>, row: RowName<'_>, out: &mut Vec<Rejected>) -> Option<bool> {
    opts.get(OPT_LOCAL_ONLY)?;
    Some(bool_opt(opts, row, OPT_LOCAL_ONLY, out))
}

/// Whether `id` may be a router's table.
pub fn table_id_allowed(id: u64) -> bool {
    u32::try_from(id).is_ok_and(|t| !RESERVED_TABLES.contains(&t))
}

/// Parses `dynamic-routing-vrf-id`: a table id in 1..4294967294 other than 252..255; `None`
/// when absent or invalid (reported).
pub fn vrf_id(opts: &Map<'_>, row: RowName<'_>, out: &mut Vec<Rejected>) -> Option<u32> {
    let v = opts.get(OPT_VRF_ID)?;
    match v.trim().parse::<u64>() {
        Ok(id) if table_id_allowed(id) => Some(id as u32),
        Ok(_) => {
            out.push(row.problem(
                OPT_VRF_ID,
                v,
                "reserved table id (0, 252..255, 4294967295): the datapath tunnel key is used",
            ));
            None
        }
        Err(_) => {
            out.push(row.problem(
                OPT_VRF_ID,
                v,
                "not a table id (1..4294967294): the datapath tunnel key is used",
            ));
            None
        }
    }
}

/// The VRF name: `dynamic-routing-vrf-name` when valid, else `ovnvrf<table>`.
pub fn vrf_name(opts: &Map<'_>, row: RowName<'_>, table: u32, out: &mut Vec<Rejected>) -> String {
    match opts.get(OPT_VRF_NAME) {
        Some(n) if n.len() > MAX_VRF_NAME => {
            out.push(row.problem(
                OPT_VRF_NAME,
                n,
                format!("16 characters or more: ovnvrf{table} is used"),
            ));
        }
        Some(n) if n.is_empty() || n.contains(['/', ' ', '\t', '\n']) || n == "." || n == ".." => {
            out.push(row.problem(
                OPT_VRF_NAME,
                n,
                format!("not an interface name: ovnvrf{table} is used"),
            ));
        }
        Some(n) => return n.to_string(),
        None => {}
    }
    format!("ovnvrf{table}")
}

/// Parses a prefix next hop option of the given family (`v6`); `None` when absent or invalid
/// (reported: routes stay blackholes).
pub fn prefix_nexthop(
    opts: &Map<'_>,
    row: RowName<'_>,
    v6: bool,
    out: &mut Vec<Rejected>,
) -> Option<IpAddr> {
    let key = if v6 { OPT_V6_NEXTHOP } else { OPT_V4_NEXTHOP };
    let v = opts.get(key)?;
    match v.trim().parse::<IpAddr>() {
        Ok(ip) if ip.is_ipv6() == v6 && !ip.is_unspecified() => Some(ip),
        _ => {
            out.push(row.problem(
                key,
                v,
                if v6 {
                    "not an IPv6 address: routes stay blackholes"
                } else {
                    "not an IPv4 address: routes stay blackholes"
                },
            ));
            None
        }
    }
}

/// Parses Open_vSwitch `external_ids:dynamic-routing-port-mapping` (`port=ifname,...`): the
/// interface name for each `dynamic-routing-port-name`. Malformed entries are reported.
pub fn port_mapping(value: &str, out: &mut Vec<Rejected>) -> Vec<(String, String)> {
    let mut m = vec![];
    for e in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match e.split_once('=') {
            Some((p, i)) if !p.trim().is_empty() && !i.trim().is_empty() => {
                m.push((p.trim().to_string(), i.trim().to_string()))
            }
            _ => out.push(Rejected {
                value: e.to_string(),
                source: format!("Open_vSwitch external_ids:{OVS_PORT_MAPPING}"),
                reason: "not PORT=IFNAME: ignored".into(),
            }),
        }
    }
    m
}
