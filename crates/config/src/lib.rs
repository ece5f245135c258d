//! The ovn-route agent's configuration file (`ovn-route agent --config /etc/ovn-route/agent.conf`).
//!
//! The file is INI in oslo.config's dialect and accepts the Python OVN BGP agent's `bgp-agent.conf`
//! sections (`[DEFAULT]`, `[ovn]`, `[agent]`) and option names with the same meanings, so an existing
//! file works unchanged, plus ovn-route's own options in `[ovn_route]`. `docs/configuration.md` is
//! the reference of every option.
//!
//! Anything unknown or invalid refuses the whole file with a [`ConfigError`] naming the file, line,
//! section, option and value (and the closest known name for a misspelt one). Things that are
//! accepted but deserve attention (an option given twice, an option ovn-route ignores, a route
//! protocol number another daemon uses) end up in [`Config::warnings`] for the agent to log.
//!
//! ```
//! let text = "[DEFAULT]\nbgp_AS = 64512\n[ovn]\novn_nb_connection = tcp:192.0.2.10:6641\n";
//! let config = ovn_route_config::Config::from_str(text, "agent.conf").unwrap();
//! assert_eq!(config.default.bgp_as, 64512);
//! assert_eq!(config.default.bgp_nic, "bgp-nic");
//!
//! let err = ovn_route_config::Config::from_str("[DEFAULT]\nbgp_AS = abc\n", "agent.conf").unwrap_err();
//! assert_eq!(err.to_string(), r#"agent.conf:2: [DEFAULT] bgp_AS = "abc": not an AS number (1..4294967295)"#);
//! ```

mod error;
mod ini;
mod types;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::ConfigError;
use types::{abs_path, boolean, closest, ifname, integer, keyword, list, single_line};
pub use types::{
    AdvertiseMethod, Driver, ExposingMethod, Prefix, Remote, RuleMethod, TenantAdvertisement,
    VrfMode,
};

/// The default `route_protocol`: a number no kernel header, iproute2, FRR (11, 42, 186..198) or
/// OVN (84) assigns. FRR's zebra treats routes of its own protocol numbers (193 is its LDP) as
/// left-overs of its previous run and deletes them when it starts.
pub const DEFAULT_ROUTE_PROTOCOL: u8 = 201;

/// The whole configuration: one field per section, then the warnings collected while reading.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// `[DEFAULT]`: the Python agent's general options.
    pub default: DefaultSection,
    /// `[ovn]`: the Python agent's OVN database connections.
    pub ovn: OvnSection,
    /// `[agent]`: the Python agent's privilege options (accepted, ignored).
    pub agent: AgentSection,
    /// `[ovn_route]`: ovn-route's own options.
    pub ovn_route: OvnRouteSection,
    /// `[host_routes]`: routes on this host to OVN networks behind an attached uplink.
    pub host_routes: HostRoutesSection,
    /// Accepted things the agent should log at start-up, each `file:line: [section] option: text`.
    pub warnings: Vec<String>,
}

/// `[DEFAULT]`, with the Python agent's option names and meanings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultSection {
    /// `reconcile_interval` (seconds, default 300): period of the full resynchronisation.
    pub reconcile_interval: Duration,
    /// `frr_reconcile_interval` (seconds, default 15): period of the FRR configuration check.
    pub frr_reconcile_interval: Duration,
    /// `expose_tenant_networks` (default false): also expose IPs on tenant networks.
    pub expose_tenant_networks: bool,
    /// `advertisement_method_tenant_networks` (default `host`).
    pub advertisement_method_tenant_networks: TenantAdvertisement,
    /// `require_snat_disabled_for_tenant_networks` (default false): expose a tenant network only
    /// when its router does no SNAT.
    pub require_snat_disabled_for_tenant_networks: bool,
    /// `expose_ipv6_gua_tenant_networks` (default false): expose IPv6 global unicast tenant subnets.
    pub expose_ipv6_gua_tenant_networks: bool,
    /// `driver` (default `nb_ovn_bgp_driver`).
    pub driver: Driver,
    /// `ovsdb_connection` (default `unix:/var/run/openvswitch/db.sock`): the local Open_vSwitch DB.
    pub ovsdb_connection: Remote,
    /// `ovsdb_connection_timeout` (seconds, default 180).
    pub ovsdb_connection_timeout: Duration,
    /// `bgp_AS` (default 64999): the local AS number.
    pub bgp_as: u32,
    /// `bgp_router_id` (default unset: FRR's router id is used).
    pub bgp_router_id: Option<Ipv4Addr>,
    /// `bgp_nic` (default `bgp-nic`): the dummy device inside the VRF.
    pub bgp_nic: String,
    /// `bgp_vrf` (default `bgp-vrf`): the VRF device.
    pub bgp_vrf: String,
    /// `bgp_vrf_table_id` (default 10): the VRF's routing table.
    pub bgp_vrf_table_id: u32,
    /// `address_scopes` (default empty): only expose tenant networks in these neutron address
    /// scopes (ids); empty means no filtering.
    pub address_scopes: Vec<String>,
    /// `exposing_method` (default `underlay`).
    pub exposing_method: ExposingMethod,
    /// `clear_vrf_routes_on_startup` (default false).
    pub clear_vrf_routes_on_startup: bool,
    /// `delete_vrf_on_disconnect` (default true).
    pub delete_vrf_on_disconnect: bool,
    /// `evpn_local_ip` (default unset).
    pub evpn_local_ip: Option<IpAddr>,
    /// `evpn_nic` (default unset).
    pub evpn_nic: Option<String>,
    /// `evpn_udp_dstport` (default 4789).
    pub evpn_udp_dstport: u16,
    /// `debug` (default false): debug logging.
    pub debug: bool,
}

impl Default for DefaultSection {
    fn default() -> Self {
        DefaultSection {
            reconcile_interval: Duration::from_secs(300),
            frr_reconcile_interval: Duration::from_secs(15),
            expose_tenant_networks: false,
            advertisement_method_tenant_networks: TenantAdvertisement::Host,
            require_snat_disabled_for_tenant_networks: false,
            expose_ipv6_gua_tenant_networks: false,
            driver: Driver::NbOvnBgp,
            ovsdb_connection: Remote::Unix(PathBuf::from("/var/run/openvswitch/db.sock")),
            ovsdb_connection_timeout: Duration::from_secs(180),
            bgp_as: 64999,
            bgp_router_id: None,
            bgp_nic: "bgp-nic".into(),
            bgp_vrf: "bgp-vrf".into(),
            bgp_vrf_table_id: 10,
            address_scopes: Vec::new(),
            exposing_method: ExposingMethod::Underlay,
            clear_vrf_routes_on_startup: false,
            delete_vrf_on_disconnect: true,
            evpn_local_ip: None,
            evpn_nic: None,
            evpn_udp_dstport: 4789,
            debug: false,
        }
    }
}

/// `[ovn]`: where the OVN databases are and the TLS files for `ssl:` remotes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OvnSection {
    /// `ovn_nb_connection`: the NB remotes (a comma list for a cluster). Empty (the default): the
    /// agent takes `external_ids:ovn-nb-remote` of the local Open_vSwitch record.
    pub ovn_nb_connection: Vec<Remote>,
    /// `ovn_sb_connection`: the SB remotes. Empty (the default): `external_ids:ovn-remote` of the
    /// local Open_vSwitch record, the one ovn-controller uses.
    pub ovn_sb_connection: Vec<Remote>,
    /// `ovn_nb_private_key`: PEM private key for `ssl:` NB remotes.
    pub ovn_nb_private_key: Option<PathBuf>,
    /// `ovn_nb_certificate`: PEM certificate for `ovn_nb_private_key`.
    pub ovn_nb_certificate: Option<PathBuf>,
    /// `ovn_nb_ca_cert`: PEM CA certificate to verify the NB servers.
    pub ovn_nb_ca_cert: Option<PathBuf>,
    /// `ovn_sb_private_key`: PEM private key for `ssl:` SB remotes.
    pub ovn_sb_private_key: Option<PathBuf>,
    /// `ovn_sb_certificate`: PEM certificate for `ovn_sb_private_key`.
    pub ovn_sb_certificate: Option<PathBuf>,
    /// `ovn_sb_ca_cert`: PEM CA certificate to verify the SB servers.
    pub ovn_sb_ca_cert: Option<PathBuf>,
}

/// `[agent]`: the Python agent's privilege-escalation options. ovn-route is a native binary that
/// needs no helper: the values are kept only so that they can be shown, and a warning says so.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentSection {
    /// `root_helper` (ignored).
    pub root_helper: Option<String>,
    /// `root_helper_daemon` (ignored).
    pub root_helper_daemon: Option<String>,
}

/// `[ovn_route]`: ovn-route's own options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvnRouteSection {
    /// `advertise_method` (default `routes`).
    pub advertise_method: AdvertiseMethod,
    /// `rule_method` (default `per-bridge`).
    pub rule_method: RuleMethod,
    /// `route_protocol` (default [`DEFAULT_ROUTE_PROTOCOL`]): the rtnetlink protocol number that
    /// marks ovn-route's routes.
    pub route_protocol: u8,
    /// `rule_priority` (default 32000): the priority of ovn-route's `ip rule`s (their mark).
    pub rule_priority: u32,
    /// `flow_cookie` (default 0x3e7): the OpenFlow cookie of ovn-route's flows (their mark).
    pub flow_cookie: u64,
    /// `allowed_prefixes` (default empty = everything): only IPs inside one of them are exposed.
    pub allowed_prefixes: Vec<Prefix>,
    /// `vrf_mode` (default `create`).
    pub vrf_mode: VrfMode,
    /// `frr_vty_socket` (default `/var/run/frr`): the directory given to `vtysh --vty_socket`.
    pub frr_vty_socket: PathBuf,
    /// `metrics_listen` (default unset = off): where to serve Prometheus metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// `status_socket` (default `/run/ovn-route/status.sock`; empty = off).
    pub status_socket: Option<PathBuf>,
    /// `iproute2_dir` (default `/etc/iproute2`): where provider bridges' routing tables are named
    /// (`rt_tables.d/ovn-route.conf`).
    pub iproute2_dir: PathBuf,
    /// `southbound` (default `auto`): whether port locations come from the Southbound database.
    pub southbound: Southbound,
    /// `peering_controller` (default false): run the network peering controller in the agent
    /// (one active instance cluster-wide, through an NB lock).
    pub peering_controller: bool,
    /// `dynamic_routing` (default false): exchange routes with each logical router's VRF table as
    /// its NB `dynamic-routing*` options ask (docs/dynamic-routing.md).
    pub dynamic_routing: bool,
    /// `dynamic_routing_frr` (default false): configure, through vtysh, a BGP instance
    /// `router bgp ASN vrf NAME` for each router VRF advertised here (docs/dynamic-routing.md).
    pub dynamic_routing_frr: bool,
    /// `dynamic_routing_frr_neighbors` (default empty): BGP neighbors of those instances, each
    /// `[VRF/]PEER@AS`.
    pub dynamic_routing_frr_neighbors: Vec<FrrNeighbor>,
    /// `dynamic_routing_evpn` (default false): L3 EVPN (type-5) for each dynamic-routing VRF (a
    /// bridge and a VXLAN device per VRF, its L3 VNI and EVPN address family in FRR); needs
    /// `dynamic_routing_frr` and `[DEFAULT] evpn_local_ip` (docs/dynamic-routing.md).
    pub dynamic_routing_evpn: bool,
}

/// One `[ovn_route] dynamic_routing_frr_neighbors` entry, `[VRF/]PEER@AS`: a BGP neighbor of the
/// dynamic-routing VRF instances (e.g. `192.0.2.2@65000`, `ovnvrf10/eth1@external`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrrNeighbor {
    /// Only in this VRF's instance; `None`: in every one.
    pub vrf: Option<String>,
    /// The peer.
    pub peer: FrrPeer,
    /// `remote-as`: an AS number, `internal` or `external`.
    pub remote_as: String,
}

/// The peer of an [`FrrNeighbor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrrPeer {
    /// A neighbor address.
    Address(IpAddr),
    /// An interface (BGP unnumbered: `neighbor IFNAME interface`).
    Interface(String),
}

/// Parses `dynamic_routing_frr_neighbors`.
fn frr_neighbors(v: &str) -> Result<Vec<FrrNeighbor>, String> {
    let mut out = Vec::new();
    for item in list(v) {
        let (head, remote_as) = item
            .rsplit_once('@')
            .ok_or_else(|| format!("{item:?} is not [VRF/]PEER@AS"))?;
        if remote_as != "internal" && remote_as != "external" {
            integer(
                remote_as,
                1,
                u32::MAX as u64,
                "an AS number, internal or external",
            )
            .map_err(|e| format!("{item:?}: {e}"))?;
        }
        let (vrf, peer) = match head.split_once('/') {
            Some((vrf, peer)) => (
                Some(ifname(vrf).map_err(|e| format!("{item:?}: VRF {e}"))?),
                peer,
            ),
            None => (None, head),
        };
        let peer = match peer.parse::<IpAddr>() {
            Ok(a) => FrrPeer::Address(a),
            Err(_) => FrrPeer::Interface(ifname(peer).map_err(|e| {
                format!("{item:?}: the peer is neither an IP address nor an interface ({e})")
            })?),
        };
        out.push(FrrNeighbor {
            vrf,
            peer,
            remote_as: remote_as.to_string(),
        });
    }
    Ok(out)
}

/// `[host_routes]`: routes on the host to the subnets of OVN networks whose uplink address is on
/// a network the host is attached to (docs/host-routes.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoutesSection {
    /// `enabled` (default false).
    pub enabled: bool,
    /// `table` (default `main`): the routing table the routes go into.
    pub table: HostRoutesTable,
    /// `include` (default empty = every network): globs on network names, or prefixes.
    pub include: Vec<String>,
    /// `exclude` (default empty): globs on network names, or prefixes; wins over `include`.
    pub exclude: Vec<String>,
    /// `advertise` (default false): also advertise the subnets through BGP, next hop = the
    /// uplink address, from the chassis hosting the router's gateway port.
    pub advertise: bool,
}

/// `[host_routes] table`: a table id, or a name from `rt_tables` resolved at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRoutesTable {
    /// A table id (`main` is 254).
    Id(u32),
    /// A name of `rt_tables` / `rt_tables.d/*.conf` under `iproute2_dir`.
    Name(String),
}

impl Default for HostRoutesSection {
    fn default() -> Self {
        HostRoutesSection {
            enabled: false,
            table: HostRoutesTable::Id(254),
            include: Vec::new(),
            exclude: Vec::new(),
            advertise: false,
        }
    }
}

/// A host-routes pattern: text with a `/` must be a prefix with zero host bits; other text is a
/// glob.
fn host_route_patterns(v: &str) -> Result<Vec<String>, String> {
    let items: Vec<String> = list(v).into_iter().map(str::to_string).collect();
    for i in &items {
        if i.contains('/') {
            i.parse::<Prefix>()?;
        }
    }
    Ok(items)
}

fn host_routes_table(v: &str) -> Result<HostRoutesTable, String> {
    match v {
        "main" => Ok(HostRoutesTable::Id(254)),
        "local" | "default" | "unspec" => Err(format!(
            "table {v} is not for ovn-route's routes; use main, a number or an rt_tables name"
        )),
        _ if v.bytes().all(|b| b.is_ascii_digit()) => {
            let n = integer(v, 1, u64::from(u32::MAX), "a routing table id")? as u32;
            if n == 253 || n == 255 {
                return Err(format!("table {n} is reserved (253 default, 255 local)"));
            }
            Ok(HostRoutesTable::Id(n))
        }
        _ if !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) =>
        {
            Ok(HostRoutesTable::Name(v.to_string()))
        }
        _ => Err("expected main, a table id or an rt_tables name".into()),
    }
}

/// `southbound`: where port locations come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Southbound {
    /// The SB of `ovn_sb_connection`, else the one of `external_ids:ovn-remote`; without either, the NB.
    #[default]
    Auto,
    /// Never connect to the SB: NB `requested-chassis` and `hosting-chassis` (OVN 23.09+) only.
    Off,
}

impl Default for OvnRouteSection {
    fn default() -> Self {
        OvnRouteSection {
            advertise_method: AdvertiseMethod::Routes,
            rule_method: RuleMethod::PerBridge,
            route_protocol: DEFAULT_ROUTE_PROTOCOL,
            rule_priority: 32000,
            flow_cookie: 0x3e7,
            allowed_prefixes: Vec::new(),
            vrf_mode: VrfMode::Create,
            frr_vty_socket: PathBuf::from("/var/run/frr"),
            metrics_listen: None,
            status_socket: Some(PathBuf::from("/run/ovn-route/status.sock")),
            iproute2_dir: PathBuf::from("/etc/iproute2"),
            southbound: Southbound::Auto,
            peering_controller: false,
            dynamic_routing: false,
            dynamic_routing_frr: false,
            dynamic_routing_frr_neighbors: Vec::new(),
            dynamic_routing_evpn: false,
        }
    }
}

impl OvnRouteSection {
    /// Whether `ip` may be exposed under `allowed_prefixes` (everything when it is empty).
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allowed_prefixes.is_empty() || self.allowed_prefixes.iter().any(|p| p.contains(ip))
    }
}

/// What setting one option produced besides the new value: an optional warning text.
type SetResult = Result<Option<String>, String>;

/// One known option and how to store its value.
struct Opt {
    name: &'static str,
    set: fn(&mut Config, &str) -> SetResult,
}

/// One known section.
struct Section {
    name: &'static str,
    options: &'static [Opt],
}

fn seconds(v: &str) -> Result<Duration, String> {
    integer(v, 1, u64::from(u32::MAX), "a number of seconds").map(Duration::from_secs)
}

fn optional<T>(
    v: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if v.is_empty() {
        Ok(None)
    } else {
        parse(v).map(Some)
    }
}

fn path(v: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(v))
}

fn remotes(v: &str) -> Result<Vec<Remote>, String> {
    list(v)
        .into_iter()
        .map(|r| Remote::parse(r).map_err(|e| e.to_string()))
        .collect()
}

/// Numbers of rtnetlink protocols that others own (kernel headers, iproute2, FRR, OVN).
const KNOWN_PROTOCOLS: &[(u8, &str)] = &[
    (8, "gated"),
    (9, "ra"),
    (10, "mrt"),
    (11, "zebra"),
    (12, "bird"),
    (13, "dnrouted"),
    (14, "xorp"),
    (15, "ntk"),
    (16, "dhcp"),
    (17, "mrouted"),
    (18, "keepalived"),
    (42, "babel"),
    (84, "ovn (ovn-controller's route exchange)"),
    (99, "openr"),
    (186, "bgp (FRR)"),
    (187, "isis (FRR)"),
    (188, "ospf (FRR)"),
    (189, "rip (FRR)"),
    (190, "ripng (FRR)"),
    (191, "nhrp (FRR)"),
    (192, "eigrp (FRR)"),
    (193, "ldp (FRR)"),
    (194, "sharp (FRR)"),
    (195, "pbr (FRR)"),
    (196, "static (FRR)"),
    (197, "openfabric (FRR)"),
    (198, "srte (FRR)"),
];

fn route_protocol(c: &mut Config, v: &str) -> SetResult {
    let n = integer(v, 0, 255, "a route protocol number")? as u8;
    if n <= 4 {
        return Err(format!(
            "protocol {n} is reserved by the kernel (0 unspec, 1 redirect, 2 kernel, 3 boot, \
             4 static); use 5..255, e.g. {DEFAULT_ROUTE_PROTOCOL}"
        ));
    }
    c.ovn_route.route_protocol = n;
    Ok(KNOWN_PROTOCOLS.iter().find(|(p, _)| *p == n).map(|(_, who)| {
        let frr = if who.contains("FRR") || *who == "zebra" {
            "; FRR's zebra deletes routes carrying its own protocol numbers when it starts"
        } else {
            ""
        };
        format!(
            "protocol {n} is already used by {who}: ovn-route would take such routes for its own{frr}"
        )
    }))
}

fn table_id(v: &str) -> Result<u32, String> {
    let n = integer(v, 1, u64::from(u32::MAX), "a routing table id")? as u32;
    if (252..=255).contains(&n) {
        return Err(format!(
            "table {n} is reserved (252 compat, 253 default, 254 main, 255 local)"
        ));
    }
    Ok(n)
}

fn flow_cookie(v: &str) -> Result<u64, String> {
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse::<u64>().ok(),
    };
    match parsed {
        Some(0) => Err("cookie 0 is every unmarked flow's cookie; use a non-zero value".into()),
        Some(n) => Ok(n),
        None => Err("not a 64-bit cookie (decimal or 0x-prefixed hex)".into()),
    }
}

const DEFAULT_OPTIONS: &[Opt] = &[
    Opt {
        name: "reconcile_interval",
        set: |c, v| {
            c.default.reconcile_interval = seconds(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "frr_reconcile_interval",
        set: |c, v| {
            c.default.frr_reconcile_interval = seconds(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "expose_tenant_networks",
        set: |c, v| {
            c.default.expose_tenant_networks = boolean(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "advertisement_method_tenant_networks",
        set: |c, v| {
            c.default.advertisement_method_tenant_networks = keyword(
                v,
                &[
                    ("host", TenantAdvertisement::Host),
                    ("subnet", TenantAdvertisement::Subnet),
                ],
            )?;
            Ok(None)
        },
    },
    Opt {
        name: "require_snat_disabled_for_tenant_networks",
        set: |c, v| {
            c.default.require_snat_disabled_for_tenant_networks = boolean(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "expose_ipv6_gua_tenant_networks",
        set: |c, v| {
            c.default.expose_ipv6_gua_tenant_networks = boolean(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "driver",
        set: |c, v| {
            c.default.driver = match v {
                "nb_ovn_bgp_driver" => Driver::NbOvnBgp,
                "ovn_bgp_driver" => Driver::OvnBgp,
                "ovn_evpn_driver" | "ovn_stretched_l2_bgp_driver" => {
                    return Err(format!(
                        "the {v} is not implemented; ovn-route implements nb_ovn_bgp_driver"
                    ))
                }
                _ => return Err("not one of nb_ovn_bgp_driver, ovn_bgp_driver".into()),
            };
            Ok((c.default.driver == Driver::OvnBgp).then(|| {
                "ovn-route implements the NB driver's design: ovn_bgp_driver (the SB driver) is \
                 treated as nb_ovn_bgp_driver"
                    .to_string()
            }))
        },
    },
    Opt {
        name: "ovsdb_connection",
        set: |c, v| {
            let r = Remote::parse(v).map_err(|e| e.to_string())?;
            if r.is_ssl() {
                return Err(
                    "the local Open_vSwitch database takes unix: or tcp: (there are no \
                            certificate options for it)"
                        .into(),
                );
            }
            c.default.ovsdb_connection = r;
            Ok(None)
        },
    },
    Opt {
        name: "ovsdb_connection_timeout",
        set: |c, v| {
            c.default.ovsdb_connection_timeout = seconds(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "bgp_AS",
        set: |c, v| {
            c.default.bgp_as = integer(v, 1, u64::from(u32::MAX), "an AS number")? as u32;
            Ok(None)
        },
    },
    Opt {
        name: "bgp_router_id",
        set: |c, v| {
            c.default.bgp_router_id = optional(v, |v| {
                v.parse::<Ipv4Addr>()
                    .map_err(|_| "not an IPv4 address (a BGP router id)".to_string())
            })?;
            Ok(None)
        },
    },
    Opt {
        name: "bgp_nic",
        set: |c, v| {
            c.default.bgp_nic = ifname(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "bgp_vrf",
        set: |c, v| {
            c.default.bgp_vrf = ifname(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "bgp_vrf_table_id",
        set: |c, v| {
            c.default.bgp_vrf_table_id = table_id(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "address_scopes",
        set: |c, v| {
            c.default.address_scopes = list(v).into_iter().map(String::from).collect();
            Ok(None)
        },
    },
    Opt {
        name: "exposing_method",
        set: |c, v| match v {
            "underlay" => {
                c.default.exposing_method = ExposingMethod::Underlay;
                Ok(None)
            }
            "ovn" | "vrf" | "l2vni" | "dynamic" => Err(format!(
                "exposing method {v} is not implemented yet; only underlay is"
            )),
            _ => Err("not one of underlay, ovn, vrf, l2vni, dynamic".into()),
        },
    },
    Opt {
        name: "clear_vrf_routes_on_startup",
        set: |c, v| {
            c.default.clear_vrf_routes_on_startup = boolean(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "delete_vrf_on_disconnect",
        set: |c, v| {
            c.default.delete_vrf_on_disconnect = boolean(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "evpn_local_ip",
        set: |c, v| {
            c.default.evpn_local_ip = optional(v, |v| {
                v.parse::<IpAddr>()
                    .map_err(|_| "not an IP address".to_string())
            })?;
            Ok(None)
        },
    },
    Opt {
        name: "evpn_nic",
        set: |c, v| {
            c.default.evpn_nic = optional(v, ifname)?;
            Ok(None)
        },
    },
    Opt {
        name: "evpn_udp_dstport",
        set: |c, v| {
            c.default.evpn_udp_dstport = integer(v, 1, 65535, "a UDP port")? as u16;
            Ok(None)
        },
    },
    Opt {
        name: "debug",
        set: |c, v| {
            c.default.debug = boolean(v)?;
            Ok(None)
        },
    },
];

const OVN_OPTIONS: &[Opt] = &[
    Opt {
        name: "ovn_nb_connection",
        set: |c, v| {
            c.ovn.ovn_nb_connection = remotes(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "ovn_sb_connection",
        set: |c, v| {
            c.ovn.ovn_sb_connection = remotes(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "ovn_nb_private_key",
        set: |c, v| {
            c.ovn.ovn_nb_private_key = optional(v, path)?;
            Ok(None)
        },
    },
    Opt {
        name: "ovn_nb_certificate",
        set: |c, v| {
            c.ovn.ovn_nb_certificate = optional(v, path)?;
            Ok(None)
        },
    },
    Opt {
        name: "ovn_nb_ca_cert",
        set: |c, v| {
            c.ovn.ovn_nb_ca_cert = optional(v, path)?;
            Ok(None)
        },
    },
    Opt {
        name: "ovn_sb_private_key",
        set: |c, v| {
            c.ovn.ovn_sb_private_key = optional(v, path)?;
            Ok(None)
        },
    },
    Opt {
        name: "ovn_sb_certificate",
        set: |c, v| {
            c.ovn.ovn_sb_certificate = optional(v, path)?;
            Ok(None)
        },
    },
    Opt {
        name: "ovn_sb_ca_cert",
        set: |c, v| {
            c.ovn.ovn_sb_ca_cert = optional(v, path)?;
            Ok(None)
        },
    },
];

const AGENT_OPTIONS: &[Opt] = &[
    Opt {
        name: "root_helper",
        set: |c, v| {
            c.agent.root_helper = optional(v, |v| Ok(v.to_string()))?;
            Ok(Some(
                "ignored: ovn-route is a native binary and needs no root helper".into(),
            ))
        },
    },
    Opt {
        name: "root_helper_daemon",
        set: |c, v| {
            c.agent.root_helper_daemon = optional(v, |v| Ok(v.to_string()))?;
            Ok(Some(
                "ignored: ovn-route is a native binary and needs no root helper".into(),
            ))
        },
    },
];

const OVN_ROUTE_OPTIONS: &[Opt] = &[
    Opt {
        name: "advertise_method",
        set: |c, v| {
            c.ovn_route.advertise_method = keyword(
                v,
                &[
                    ("routes", AdvertiseMethod::Routes),
                    ("addresses", AdvertiseMethod::Addresses),
                ],
            )?;
            Ok(None)
        },
    },
    Opt {
        name: "rule_method",
        set: |c, v| {
            c.ovn_route.rule_method = keyword(
                v,
                &[
                    ("per-bridge", RuleMethod::PerBridge),
                    ("per-ip", RuleMethod::PerIp),
                ],
            )?;
            Ok(None)
        },
    },
    Opt {
        name: "route_protocol",
        set: route_protocol,
    },
    Opt {
        name: "rule_priority",
        set: |c, v| {
            c.ovn_route.rule_priority =
                integer(v, 1, 32765, "a rule priority before the main table's 32766")? as u32;
            Ok(None)
        },
    },
    Opt {
        name: "flow_cookie",
        set: |c, v| {
            c.ovn_route.flow_cookie = flow_cookie(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "allowed_prefixes",
        set: |c, v| {
            c.ovn_route.allowed_prefixes = list(v)
                .into_iter()
                .map(str::parse)
                .collect::<Result<_, _>>()?;
            Ok(c.ovn_route
                .allowed_prefixes
                .iter()
                .any(Prefix::is_default)
                .then(|| "a /0 prefix allows every address of its family".to_string()))
        },
    },
    Opt {
        name: "vrf_mode",
        set: |c, v| {
            c.ovn_route.vrf_mode = keyword(
                v,
                &[
                    ("create", VrfMode::Create),
                    ("existing", VrfMode::Existing),
                    ("none", VrfMode::None),
                ],
            )?;
            Ok(None)
        },
    },
    Opt {
        name: "frr_vty_socket",
        set: |c, v| {
            c.ovn_route.frr_vty_socket = abs_path(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "metrics_listen",
        set: |c, v| {
            c.ovn_route.metrics_listen = optional(v, |v| {
                v.parse::<SocketAddr>().map_err(|_| {
                    "not IP:PORT (IPv6 as [ADDR]:PORT; empty turns metrics off)".to_string()
                })
            })?;
            Ok(None)
        },
    },
    Opt {
        name: "status_socket",
        set: |c, v| {
            c.ovn_route.status_socket = optional(v, abs_path)?;
            Ok(None)
        },
    },
    Opt {
        name: "iproute2_dir",
        set: |c, v| {
            c.ovn_route.iproute2_dir = abs_path(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "southbound",
        set: |c, v| {
            c.ovn_route.southbound = match v {
                "auto" => Southbound::Auto,
                "off" => Southbound::Off,
                _ => return Err("expected auto or off".into()),
            };
            Ok(None)
        },
    },
    Opt {
        name: "peering_controller",
        set: |c, v| {
            c.ovn_route.peering_controller = boolean(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "dynamic_routing",
        set: |c, v| {
            c.ovn_route.dynamic_routing = boolean(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "dynamic_routing_frr",
        set: |c, v| {
            c.ovn_route.dynamic_routing_frr = boolean(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "dynamic_routing_frr_neighbors",
        set: |c, v| {
            c.ovn_route.dynamic_routing_frr_neighbors = frr_neighbors(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "dynamic_routing_evpn",
        set: |c, v| {
            c.ovn_route.dynamic_routing_evpn = boolean(v)?;
            Ok(None)
        },
    },
];

const HOST_ROUTES_OPTIONS: &[Opt] = &[
    Opt {
        name: "enabled",
        set: |c, v| {
            c.host_routes.enabled = boolean(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "table",
        set: |c, v| {
            c.host_routes.table = host_routes_table(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "include",
        set: |c, v| {
            c.host_routes.include = host_route_patterns(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "exclude",
        set: |c, v| {
            c.host_routes.exclude = host_route_patterns(v)?;
            Ok(None)
        },
    },
    Opt {
        name: "advertise",
        set: |c, v| {
            c.host_routes.advertise = boolean(v)?;
            Ok(None)
        },
    },
];

const SECTIONS: &[Section] = &[
    Section {
        name: "DEFAULT",
        options: DEFAULT_OPTIONS,
    },
    Section {
        name: "ovn",
        options: OVN_OPTIONS,
    },
    Section {
        name: "agent",
        options: AGENT_OPTIONS,
    },
    Section {
        name: "ovn_route",
        options: OVN_ROUTE_OPTIONS,
    },
    Section {
        name: "host_routes",
        options: HOST_ROUTES_OPTIONS,
    },
];

/// The options whose values may continue on indented lines (comma lists).
const LIST_OPTIONS: &[&str] = &[
    "address_scopes",
    "ovn_nb_connection",
    "ovn_sb_connection",
    "allowed_prefixes",
    "include",
    "exclude",
];

/// Finds a section: `DEFAULT` exactly, the others case-insensitively (oslo lower-cases group names).
fn find_section(name: &str) -> Option<&'static Section> {
    SECTIONS.iter().find(|s| {
        if s.name == "DEFAULT" {
            name == "DEFAULT"
        } else {
            s.name.eq_ignore_ascii_case(name)
        }
    })
}

impl Config {
    /// Reads and validates the file at `path`; errors and warnings name it as given.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_str(&text, &path.display().to_string())
    }

    /// Parses and validates `text`; `origin` names it in errors and warnings (usually the path).
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let doc = ini::parse(text, origin)?;
        let mut config = Config::default();
        // The line and value each option was last set on, for checks across options.
        let mut seen: HashMap<(&'static str, &'static str), (usize, String)> = HashMap::new();

        // Section headers and assignments in file order, so that the first problem is reported.
        let mut headers = doc.sections.iter().peekable();
        for a in &doc.assignments {
            while let Some((name, line)) = headers.next_if(|(_, l)| *l < a.line) {
                check_section(name, *line, origin)?;
            }
            let section = check_section(&a.section, a.section_line, origin)?;
            let opt = section
                .options
                .iter()
                .find(|o| o.name == a.key)
                .ok_or_else(|| ConfigError::UnknownOption {
                    origin: origin.to_string(),
                    line: a.line,
                    section: section.name,
                    option: a.key.clone(),
                    suggestion: closest(&a.key, section.options.iter().map(|o| o.name)),
                })?;
            let value = if LIST_OPTIONS.contains(&opt.name) {
                Ok(a.value.as_str())
            } else {
                single_line(&a.value)
            };
            let warning = value
                .and_then(|v| (opt.set)(&mut config, v))
                .map_err(|reason| ConfigError::InvalidValue {
                    origin: origin.to_string(),
                    line: a.line,
                    section: section.name,
                    option: opt.name,
                    value: a.value.clone(),
                    reason,
                })?;
            let here = format!("{origin}:{}: [{}] {}", a.line, section.name, opt.name);
            if let Some(w) = warning {
                config.warnings.push(format!("{here}: {w}"));
            }
            if let Some((first, _)) =
                seen.insert((section.name, opt.name), (a.line, a.value.clone()))
            {
                config.warnings.push(format!(
                    "{here}: set again (also on line {first}); the last value wins"
                ));
            }
        }
        for (name, line) in headers {
            check_section(name, *line, origin)?;
        }
        config.check_tls(&seen, origin)?;
        config.check_modes(&seen, origin)?;
        Ok(config)
    }

    /// Combinations of options that cannot work together.
    fn check_modes(
        &self,
        seen: &HashMap<(&'static str, &'static str), (usize, String)>,
        origin: &str,
    ) -> Result<(), ConfigError> {
        let r = &self.ovn_route;
        let d = &self.default;
        let refuse = |section: &'static str, option: &'static str, reason: String| {
            let (line, value) = seen.get(&(section, option)).cloned().unwrap_or_default();
            Err(ConfigError::InvalidValue {
                origin: origin.to_string(),
                line,
                section,
                option,
                value,
                reason,
            })
        };
        if r.southbound == Southbound::Off && !self.ovn.ovn_sb_connection.is_empty() {
            return refuse(
                "ovn_route",
                "southbound",
                "off contradicts [ovn] ovn_sb_connection: remove one of them".into(),
            );
        }
        if r.advertise_method == AdvertiseMethod::Addresses && r.vrf_mode == VrfMode::None {
            return refuse(
                "ovn_route",
                "advertise_method",
                "addresses on bgp_nic need a VRF (vrf_mode = create or existing); \
                 with vrf_mode = none use advertise_method = routes"
                    .into(),
            );
        }
        if r.advertise_method == AdvertiseMethod::Addresses
            && d.expose_tenant_networks
            && d.advertisement_method_tenant_networks == TenantAdvertisement::Subnet
        {
            return refuse(
                "ovn_route",
                "advertise_method",
                "advertisement_method_tenant_networks = subnet needs advertise_method = routes \
                 (a subnet is not an address on bgp_nic)"
                    .into(),
            );
        }
        if self.host_routes.table == HostRoutesTable::Id(d.bgp_vrf_table_id) {
            return refuse(
                "host_routes",
                "table",
                "is bgp_vrf_table_id, the exposure table: use another table (main by default)"
                    .into(),
            );
        }
        if r.dynamic_routing_evpn {
            if !r.dynamic_routing || !r.dynamic_routing_frr {
                return refuse(
                    "ovn_route",
                    "dynamic_routing_evpn",
                    "needs [ovn_route] dynamic_routing = true and dynamic_routing_frr = true \
                     (EVPN is rendered into the agent's FRR instances)"
                        .into(),
                );
            }
            match d.evpn_local_ip {
                None => {
                    return refuse(
                        "ovn_route",
                        "dynamic_routing_evpn",
                        "needs [DEFAULT] evpn_local_ip (the VTEP address of the VXLAN devices)"
                            .into(),
                    )
                }
                Some(IpAddr::V6(_)) => {
                    return refuse(
                        "DEFAULT",
                        "evpn_local_ip",
                        "[ovn_route] dynamic_routing_evpn takes an IPv4 VTEP address \
                         (FRR 8.4's EVPN has no IPv6 VTEPs)"
                            .into(),
                    )
                }
                Some(IpAddr::V4(_)) => {}
            }
        }
        if r.vrf_mode == VrfMode::None && !(1..=252).contains(&d.bgp_vrf_table_id) {
            return refuse(
                "DEFAULT",
                "bgp_vrf_table_id",
                "with vrf_mode = none FRR imports the table with `ip import-table`, \
                 which takes 1..252"
                    .into(),
            );
        }
        Ok(())
    }

    /// An `ssl:` remote needs its database's private key, certificate and CA certificate.
    fn check_tls(
        &self,
        seen: &HashMap<(&'static str, &'static str), (usize, String)>,
        origin: &str,
    ) -> Result<(), ConfigError> {
        let o = &self.ovn;
        for (db, remotes, files) in [
            (
                "nb",
                &o.ovn_nb_connection,
                [
                    &o.ovn_nb_private_key,
                    &o.ovn_nb_certificate,
                    &o.ovn_nb_ca_cert,
                ],
            ),
            (
                "sb",
                &o.ovn_sb_connection,
                [
                    &o.ovn_sb_private_key,
                    &o.ovn_sb_certificate,
                    &o.ovn_sb_ca_cert,
                ],
            ),
        ] {
            if !remotes.iter().any(Remote::is_ssl) {
                continue;
            }
            let names = ["private_key", "certificate", "ca_cert"];
            let missing: Vec<String> = names
                .iter()
                .zip(files)
                .filter(|(_, f)| f.is_none())
                .map(|(n, _)| format!("ovn_{db}_{n}"))
                .collect();
            if !missing.is_empty() {
                let option = if db == "nb" {
                    "ovn_nb_connection"
                } else {
                    "ovn_sb_connection"
                };
                let (line, value) = seen
                    .get(&("ovn", option))
                    .cloned()
                    .expect("a remote was set from the file");
                return Err(ConfigError::InvalidValue {
                    origin: origin.to_string(),
                    line,
                    section: "ovn",
                    option,
                    value,
                    reason: format!(
                        "an ssl: remote needs [ovn] {} (missing: {})",
                        names.map(|n| format!("ovn_{db}_{n}")).join(", "),
                        missing.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    /// Every `(section, option)` the file accepts, in reference order.
    pub fn known_options() -> impl Iterator<Item = (&'static str, &'static str)> {
        SECTIONS
            .iter()
            .flat_map(|s| s.options.iter().map(move |o| (s.name, o.name)))
    }
}

fn check_section(name: &str, line: usize, origin: &str) -> Result<&'static Section, ConfigError> {
    find_section(name).ok_or_else(|| ConfigError::UnknownSection {
        origin: origin.to_string(),
        line,
        section: name.to_string(),
        suggestion: closest(name, SECTIONS.iter().map(|s| s.name)),
    })
}

#[cfg(test)]
mod tests;
