//! Remote peering through OVN Interconnection (OVN-IC): integrations (IC-NB and IC-SB settings
//! stored in the local NB), and the pure planner of remote relationships.
//!
//! A remote declaration `d` (peer `p` on network `N`, `target_integration` `I`) names a *transit
//! switch* from `I`'s pattern (default `ts-{peer}`). That transit switch, in the IC-NB, is the
//! rendezvous of the two deployments (availability zones, AZ): each AZ that declares it adds the
//! key `ovn-route:az:<AZ name>` to the transit switch's `external_ids`. A declaration is
//! *created* when exactly one other AZ has declared the same transit switch; otherwise it is
//! *pending* (with the one pending message, whatever the reason). Only a created relationship
//! gets objects in the local NB: the router port (a gateway port on the integration's gateway
//! chassis) with an address of the transit switch's link subnet, and the router-type port on the
//! transit switch's `Logical_Switch` (which ovn-ic creates in each AZ's NB). Routes are learned
//! through ovn-ic (`NB_Global options:ic-route-adv`/`ic-route-learn`, turned on while a remote
//! relationship exists).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ovsdb::Uuid;
use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::error::ModelError;
use crate::model::{validate_target_name, Declaration, PeerType, Status, OWNER_KEY, PEERING_KEY};
use crate::plan::{network_facts, port_mac, DeclRef};
use crate::snapshot::Snapshot;

/// `NB_Global.external_ids` prefix of integrations: `ovn-route:integration:<name>` = JSON.
pub const INTEGRATION_KEY_PREFIX: &str = "ovn-route:integration:";
/// `Transit_Switch.external_ids` prefix: one key per AZ that declared the transit switch.
pub const AZ_KEY_PREFIX: &str = "ovn-route:az:";
/// `Transit_Switch.external_ids` key: the link subnet allocated to the transit switch.
pub const LINK_SUBNET_KEY: &str = "ovn-route:link-subnet";
/// `Transit_Switch.external_ids` key: the IPv6 link subnet allocated to the transit switch.
pub const LINK_SUBNET6_KEY: &str = "ovn-route:link-subnet6";
/// Value of an AZ key: the AZ declared the transit switch (its network has no IPv6 subnet).
pub const AZ_DECLARED: &str = "declared";
/// Value of an AZ key: the AZ declared the transit switch and its network has IPv6 subnets.
pub const AZ_DECLARED_IPV6: &str = "declared,ipv6";
/// `external_ids` key on remote peering objects: the transit switch they belong to.
pub const TRANSIT_SWITCH_KEY: &str = "ovn-route:transit-switch";
/// Value of [`OWNER_KEY`] on remote peering objects (transit switches, router and switch ports).
pub const REMOTE_OWNER_VALUE: &str = "peering-remote";
/// `NB_Global.external_ids` key set when ovn-route turned on ovn-ic route advertisement/learning.
pub const IC_ROUTES_KEY: &str = "ovn-route:ic-routes";
/// Default transit switch name pattern.
pub const DEFAULT_TS_PATTERN: &str = "ts-{peer}";
/// Default pool of link subnets (split into /30s, one per transit switch).
pub const DEFAULT_LINK_POOL: &str = "169.254.100.0/24";
/// Default prefix length of a link subnet.
pub const DEFAULT_LINK_PREFIX: u8 = 30;
/// Default prefix length of an IPv6 link subnet (from `link_pool6`, which has no default).
pub const DEFAULT_LINK_PREFIX6: u8 = 126;
/// The keys `peer integration set/unset` accept.
pub const INTEGRATION_KEYS: &[&str] = &[
    "ic_nb",
    "ic_sb",
    "transit_switch_pattern",
    "link_pool",
    "link_prefix",
    "link_pool6",
    "link_prefix6",
    "gateway_chassis",
    "ssl_private_key",
    "ssl_certificate",
    "ssl_ca_cert",
];

fn default_pattern() -> String {
    DEFAULT_TS_PATTERN.to_string()
}
fn default_pool() -> String {
    DEFAULT_LINK_POOL.to_string()
}
fn default_prefix() -> u8 {
    DEFAULT_LINK_PREFIX
}
fn default_prefix6() -> u8 {
    DEFAULT_LINK_PREFIX6
}

/// A named integration: how to reach the interconnection databases and how to name and address
/// transit switches. Stored as compact JSON under [`integration_key`] in `NB_Global.external_ids`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integration {
    /// IC-NB remote(s), comma-separated (`tcp:`, `ssl:`, `unix:`).
    pub ic_nb: String,
    /// IC-SB remote(s), comma-separated.
    pub ic_sb: String,
    /// Transit switch name pattern: `{peer}`, `{network}`, `{project}`, `{integration}` are
    /// replaced. Both AZs must expand it to the same name.
    #[serde(default = "default_pattern")]
    pub transit_switch_pattern: String,
    /// IPv4 pool the link subnets are allocated from.
    #[serde(default = "default_pool")]
    pub link_pool: String,
    /// Prefix length of each link subnet (at most 30).
    #[serde(default = "default_prefix")]
    pub link_prefix: u8,
    /// Interconnection gateway chassis of this AZ for the router ports, highest priority first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_chassis: Vec<String>,
    /// IPv6 pool the IPv6 link subnets are allocated from (none: IPv4 links only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_pool6: Option<String>,
    /// Prefix length of each IPv6 link subnet (126 or 127 typically).
    #[serde(default = "default_prefix6")]
    pub link_prefix6: u8,
    /// TLS private key (PEM file) for `ssl:` IC-NB remotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_private_key: Option<PathBuf>,
    /// TLS certificate (PEM file) for `ssl:` IC-NB remotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_certificate: Option<PathBuf>,
    /// TLS CA certificate (PEM file) the IC-NB server's certificate must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_ca_cert: Option<PathBuf>,
}

/// The `NB_Global.external_ids` key of integration `name`.
pub fn integration_key(name: &str) -> String {
    format!("{INTEGRATION_KEY_PREFIX}{name}")
}

impl Integration {
    /// An integration with the default pattern and pool.
    pub fn new(ic_nb: &str, ic_sb: &str) -> Integration {
        Integration {
            ic_nb: ic_nb.to_string(),
            ic_sb: ic_sb.to_string(),
            transit_switch_pattern: default_pattern(),
            link_pool: default_pool(),
            link_prefix: DEFAULT_LINK_PREFIX,
            gateway_chassis: vec![],
            link_pool6: None,
            link_prefix6: DEFAULT_LINK_PREFIX6,
            ssl_private_key: None,
            ssl_certificate: None,
            ssl_ca_cert: None,
        }
    }

    /// Checks every field; the error names the offending value.
    pub fn validate(&self) -> Result<(), ModelError> {
        for (what, v) in [("ic_nb", &self.ic_nb), ("ic_sb", &self.ic_sb)] {
            if v.is_empty() || ovsdb::Remote::parse_list(v).is_err() {
                return Err(ModelError::Invalid(format!(
                    "{what} {v:?} is not a list of OVSDB remotes (tcp:IP:PORT, ssl:IP:PORT, unix:PATH)"
                )));
            }
        }
        if !self.transit_switch_pattern.contains("{peer}") {
            return Err(ModelError::Invalid(format!(
                "transit_switch_pattern {:?} must contain {{peer}}",
                self.transit_switch_pattern
            )));
        }
        validate_target_name("transit switch pattern", &self.transit_switch_pattern)?;
        self.pool()?;
        self.pool6()?;
        for c in &self.gateway_chassis {
            validate_target_name("chassis", c)?;
        }
        let files = self.ssl_files();
        let set = files.iter().filter(|(_, f)| f.is_some()).count();
        if set != 0 && set != files.len() {
            let missing: Vec<&str> = files
                .iter()
                .filter(|(_, f)| f.is_none())
                .map(|(k, _)| *k)
                .collect();
            return Err(ModelError::Invalid(format!(
                "TLS needs ssl_private_key, ssl_certificate and ssl_ca_cert together: {} missing",
                missing.join(", ")
            )));
        }
        let nb_ssl = ovsdb::Remote::parse_list(&self.ic_nb)
            .map(|rs| rs.iter().any(ovsdb::Remote::is_ssl))
            .unwrap_or(false);
        if nb_ssl && set == 0 {
            return Err(ModelError::Invalid(format!(
                "ic_nb {:?} is ssl: but ssl_private_key, ssl_certificate and ssl_ca_cert are not set",
                self.ic_nb
            )));
        }
        Ok(())
    }

    fn ssl_files(&self) -> [(&'static str, Option<&PathBuf>); 3] {
        [
            ("ssl_private_key", self.ssl_private_key.as_ref()),
            ("ssl_certificate", self.ssl_certificate.as_ref()),
            ("ssl_ca_cert", self.ssl_ca_cert.as_ref()),
        ]
    }

    /// Checks that the TLS files exist on this machine (at `integration create`/`set` time; the
    /// controller reads them at each connection). The error names the key and the file.
    pub fn check_files(&self) -> Result<(), ModelError> {
        for (key, f) in self.ssl_files() {
            if let Some(f) = f {
                if !f.is_file() {
                    return Err(ModelError::Invalid(format!(
                        "{key} {:?}: no such file",
                        f.display().to_string()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The TLS settings of the IC-NB connection, when the files are set.
    pub fn ssl(&self) -> Option<ovsdb::SslConfig> {
        Some(ovsdb::SslConfig {
            private_key: self.ssl_private_key.clone()?,
            certificate: self.ssl_certificate.clone()?,
            ca_cert: self.ssl_ca_cert.clone()?,
        })
    }

    /// The IPv6 link pool, checked (IPv6, and the prefix fits in it), if one is set.
    pub fn pool6(&self) -> Result<Option<Cidr>, ModelError> {
        let Some(p) = &self.link_pool6 else {
            if self.link_prefix6 > 127 {
                return Err(ModelError::Invalid(format!(
                    "link_prefix6 {} is not an IPv6 prefix length of at most 127",
                    self.link_prefix6
                )));
            }
            return Ok(None);
        };
        let bad = || {
            ModelError::Invalid(format!(
                "link_pool6 {p:?} with link_prefix6 {} is not an IPv6 pool that holds /{} subnets \
                 (link_prefix6 at most 127)",
                self.link_prefix6, self.link_prefix6
            ))
        };
        let c = Cidr::parse(p).ok_or_else(bad)?;
        if c.is_ipv4() || self.link_prefix6 > 127 || self.link_prefix6 < c.len {
            return Err(bad());
        }
        Ok(Some(c.network()))
    }

    /// Sets `key` (one of [`INTEGRATION_KEYS`]) to `value` and validates the result; the error
    /// names the key or the value. `gateway_chassis` takes a comma-separated list.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ModelError> {
        let prefix = |v: &str| {
            v.parse::<u8>()
                .map_err(|_| ModelError::Invalid(format!("{key}: {v:?} is not a prefix length")))
        };
        let path = |v: &str| {
            if v.is_empty() {
                Err(ModelError::Invalid(format!("{key}: empty file name")))
            } else {
                Ok(Some(PathBuf::from(v)))
            }
        };
        match key {
            "ic_nb" => self.ic_nb = value.to_string(),
            "ic_sb" => self.ic_sb = value.to_string(),
            "transit_switch_pattern" => self.transit_switch_pattern = value.to_string(),
            "link_pool" => self.link_pool = value.to_string(),
            "link_prefix" => self.link_prefix = prefix(value)?,
            "link_pool6" => self.link_pool6 = Some(value.to_string()),
            "link_prefix6" => self.link_prefix6 = prefix(value)?,
            "gateway_chassis" => {
                self.gateway_chassis = value
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "ssl_private_key" => self.ssl_private_key = path(value)?,
            "ssl_certificate" => self.ssl_certificate = path(value)?,
            "ssl_ca_cert" => self.ssl_ca_cert = path(value)?,
            other => return Err(unknown_key(other)),
        }
        self.validate()
    }

    /// Returns `key` to its default (`ic_nb` and `ic_sb` have none and cannot be unset) and
    /// validates the result.
    pub fn unset(&mut self, key: &str) -> Result<(), ModelError> {
        match key {
            "ic_nb" | "ic_sb" => {
                return Err(ModelError::Invalid(format!(
                    "{key} cannot be unset: an integration needs it"
                )))
            }
            "transit_switch_pattern" => self.transit_switch_pattern = default_pattern(),
            "link_pool" => self.link_pool = default_pool(),
            "link_prefix" => self.link_prefix = DEFAULT_LINK_PREFIX,
            "link_pool6" => self.link_pool6 = None,
            "link_prefix6" => self.link_prefix6 = DEFAULT_LINK_PREFIX6,
            "gateway_chassis" => self.gateway_chassis.clear(),
            "ssl_private_key" => self.ssl_private_key = None,
            "ssl_certificate" => self.ssl_certificate = None,
            "ssl_ca_cert" => self.ssl_ca_cert = None,
            other => return Err(unknown_key(other)),
        }
        self.validate()
    }

    /// The link pool, checked: IPv4, and the link prefix fits in it.
    pub fn pool(&self) -> Result<Cidr, ModelError> {
        let bad = || {
            ModelError::Invalid(format!(
                "link_pool {:?} with link_prefix {} is not an IPv4 pool that holds /{} subnets",
                self.link_pool, self.link_prefix, self.link_prefix
            ))
        };
        let c = Cidr::parse(&self.link_pool).ok_or_else(bad)?;
        if !c.is_ipv4() || self.link_prefix > 30 || self.link_prefix < c.len {
            return Err(bad());
        }
        Ok(c.network())
    }

    /// The stored form: compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an integration always serializes")
    }

    /// Parses and validates a stored value.
    pub fn parse(value: &str) -> Result<Integration, ModelError> {
        let i: Integration =
            serde_json::from_str(value).map_err(|e| ModelError::Stored(e.to_string()))?;
        i.validate()?;
        Ok(i)
    }

    /// The transit switch name of peer `peer` on `network` in `project`, through `integration`.
    pub fn transit_switch(
        &self,
        integration: &str,
        project: &str,
        network: &str,
        peer: &str,
    ) -> String {
        self.transit_switch_pattern
            .replace("{peer}", peer)
            .replace("{network}", network)
            .replace("{project}", project)
            .replace("{integration}", integration)
    }
}

fn unknown_key(key: &str) -> ModelError {
    ModelError::Invalid(format!(
        "unknown integration key {key:?}: expected one of {}",
        INTEGRATION_KEYS.join(", ")
    ))
}

/// A `Logical_Switch` row (the NB side of a transit switch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Switch {
    /// `name`.
    pub name: String,
    /// `other_config` (`interconn-ts` names the transit switch).
    pub other_config: BTreeMap<String, String>,
    /// `ports`.
    pub ports: BTreeSet<Uuid>,
}

/// A `Logical_Switch_Port` row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchPort {
    /// `name`.
    pub name: String,
    /// `type`.
    pub kind: String,
    /// `options`.
    pub options: BTreeMap<String, String>,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
}

/// The NB rows remote peering reads besides [`Snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteNb {
    /// `NB_Global` row.
    pub global: Uuid,
    /// `NB_Global.name`: this AZ's name for ovn-ic.
    pub az: String,
    /// `NB_Global.options`.
    pub options: BTreeMap<String, String>,
    /// `NB_Global.external_ids` (integrations live here).
    pub external_ids: BTreeMap<String, String>,
    /// `Logical_Switch` by UUID.
    pub switches: BTreeMap<Uuid, Switch>,
    /// `Logical_Switch_Port` by UUID.
    pub switch_ports: BTreeMap<Uuid, SwitchPort>,
    /// `Gateway_Chassis`: UUID -> (chassis name, priority).
    pub gateway_chassis: BTreeMap<Uuid, (String, i64)>,
    /// For each router port UUID, its `gateway_chassis` column.
    pub port_gateway_chassis: BTreeMap<Uuid, BTreeSet<Uuid>>,
}

impl RemoteNb {
    /// The integrations stored in the NB: name -> parsed value or why it does not parse.
    pub fn integrations(&self) -> BTreeMap<String, Result<Integration, ModelError>> {
        self.external_ids
            .range(INTEGRATION_KEY_PREFIX.to_string()..)
            .take_while(|(k, _)| k.starts_with(INTEGRATION_KEY_PREFIX))
            .map(|(k, v)| {
                (
                    k[INTEGRATION_KEY_PREFIX.len()..].to_string(),
                    Integration::parse(v),
                )
            })
            .collect()
    }

    /// The `Logical_Switch` standing for transit switch `ts` (ovn-ic sets
    /// `other_config:interconn-ts`).
    pub fn transit_switch(&self, ts: &str) -> Option<(Uuid, &Switch)> {
        self.switches
            .iter()
            .find(|(_, s)| s.other_config.get("interconn-ts").map(String::as_str) == Some(ts))
            .map(|(u, s)| (*u, s))
    }
}

/// A `Transit_Switch` row of an IC-NB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransitSwitch {
    /// `name`.
    pub name: String,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
}

impl TransitSwitch {
    /// The AZs that declared this transit switch.
    pub fn azs(&self) -> BTreeSet<&str> {
        self.external_ids
            .keys()
            .filter_map(|k| k.strip_prefix(AZ_KEY_PREFIX))
            .collect()
    }

    /// True when AZ `az` declared it with a network that has IPv6 subnets.
    pub fn az_has_ipv6(&self, az: &str) -> bool {
        self.external_ids
            .get(&format!("{AZ_KEY_PREFIX}{az}"))
            .map(String::as_str)
            == Some(AZ_DECLARED_IPV6)
    }

    /// True when ovn-route created it.
    pub fn is_ours(&self) -> bool {
        self.external_ids.get(OWNER_KEY).map(String::as_str) == Some(REMOTE_OWNER_VALUE)
    }
}

/// What one IC-NB holds (only `Transit_Switch` is read), or why it cannot be read.
pub type IcView = Result<BTreeMap<Uuid, TransitSwitch>, String>;

/// One change to an IC-NB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IcOp {
    /// Insert a transit switch with these `external_ids` (mark, our AZ key, link subnet).
    CreateTs {
        /// Its name.
        name: String,
        /// Its `external_ids`.
        external_ids: BTreeMap<String, String>,
    },
    /// Set our AZ key on an existing transit switch (replacing its value if present).
    Declare {
        /// The transit switch.
        uuid: Uuid,
        /// The key.
        key: String,
        /// [`AZ_DECLARED`] or [`AZ_DECLARED_IPV6`].
        value: String,
    },
    /// Record an IPv6 link subnet on a transit switch of ours that has none yet.
    SetLinkSubnet6 {
        /// The transit switch.
        uuid: Uuid,
        /// The subnet.
        subnet: String,
    },
    /// Remove our AZ key (other AZs still declare it, or ports are left on it).
    Withdraw {
        /// The transit switch.
        uuid: Uuid,
        /// The key.
        key: String,
    },
    /// Delete a transit switch of ours that nobody declares and no port is left on.
    DeleteTs {
        /// The transit switch.
        uuid: Uuid,
    },
}

/// The router port and switch port of a created remote relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRemotePort {
    /// The router.
    pub router: Uuid,
    /// The transit switch's `Logical_Switch` in the local NB.
    pub switch: Uuid,
    /// Router port name (`ovnr-<router>-ts-<peer>`).
    pub lrp: String,
    /// Router port MAC.
    pub mac: String,
    /// Router port `networks`: our address in the link subnet.
    pub networks: Vec<String>,
    /// Gateway chassis names, highest priority first.
    pub gateway_chassis: Vec<String>,
    /// Switch port name (`ovnr-<AZ>-<transit switch>`: unique across AZs, as ovn-ic copies it to
    /// the other AZ).
    pub lsp: String,
    /// The mark of both ports.
    pub external_ids: BTreeMap<String, String>,
}

/// One change to the local NB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NbOp {
    /// Create the router port (with its gateway chassis) and the switch port.
    Create(DesiredRemotePort),
    /// Delete one of our remote router ports.
    DeleteLrp {
        /// The router.
        router: Uuid,
        /// The port.
        uuid: Uuid,
    },
    /// Delete one of our remote switch ports.
    DeleteLsp {
        /// The switch.
        switch: Uuid,
        /// The port.
        uuid: Uuid,
    },
    /// Turn ovn-ic route advertisement and learning on (true) or back off (false).
    IcRoutes(bool),
}

/// What the remote planner decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemotePlan {
    /// The status of every remote declaration.
    pub statuses: BTreeMap<DeclRef, Status>,
    /// The transit switch of every valid remote declaration.
    pub transit_switches: BTreeMap<DeclRef, (String, String)>,
    /// Operations per integration's IC-NB.
    pub ic_ops: BTreeMap<String, Vec<IcOp>>,
    /// Operations on the local NB.
    pub nb_ops: Vec<NbOp>,
}

/// The router port name of remote peer `peer` on router `router_name`.
pub fn remote_port_name(router_name: &str, peer: &str) -> String {
    format!("ovnr-{router_name}-ts-{peer}")
}

/// The transit switch port name of AZ `az` on transit switch `ts`.
pub fn remote_switch_port_name(az: &str, ts: &str) -> String {
    format!("ovnr-{az}-{ts}")
}

fn to_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_bits(v4: bool, n: u128) -> Option<IpAddr> {
    if v4 {
        Some(IpAddr::V4(Ipv4Addr::from(u32::try_from(n).ok()?)))
    } else {
        Some(IpAddr::V6(Ipv6Addr::from(n)))
    }
}

fn nth_host(subnet: &Cidr, n: u128) -> Option<IpAddr> {
    from_bits(subnet.is_ipv4(), to_bits(subnet.addr).checked_add(n)?)
}

/// Our address in link subnet `subnet` as the `index`-th AZ (0 or 1): the 1st and 2nd host
/// addresses, or on an IPv6 /127 (RFC 6164) both addresses of the subnet.
pub fn link_address(subnet: &Cidr, index: u32) -> Option<Cidr> {
    let first = if !subnet.is_ipv4() && subnet.len == 127 {
        0
    } else {
        1
    };
    let c = Cidr {
        addr: nth_host(&subnet.network(), u128::from(index) + first)?,
        len: subnet.len,
    };
    (c.network() == subnet.network()).then_some(c)
}

/// The lowest `/len` subnet of `pool` (IPv4 or IPv6) that overlaps none of `used`.
pub fn allocate(pool: &Cidr, len: u8, used: &[Cidr]) -> Option<Cidr> {
    let width: u32 = if pool.is_ipv4() { 32 } else { 128 };
    if len < pool.len || u32::from(len) > width {
        return None;
    }
    let base = to_bits(pool.network().addr);
    let count = 1u128
        .checked_shl(u32::from(len - pool.len))
        .unwrap_or(u128::MAX);
    let size = 1u128.checked_shl(width - u32::from(len)).unwrap_or(0);
    (0..count)
        .map_while(|i| {
            Some(Cidr {
                addr: from_bits(pool.is_ipv4(), base.checked_add(i.checked_mul(size)?)?)?,
                len,
            })
        })
        .find(|c| !used.iter().any(|u| u.overlaps(c)))
}

/// Plans every remote declaration of `snap`. `ics` holds the IC-NB view of each integration the
/// caller could read (a missing integration is reported as not connected).
pub fn plan_remote(snap: &Snapshot, nb: &RemoteNb, ics: &BTreeMap<String, IcView>) -> RemotePlan {
    let mut out = RemotePlan::default();
    let integrations = nb.integrations();
    // 1. Valid remote declarations -> (integration, transit switch).
    let mut by_ts: BTreeMap<(String, String), Vec<DeclRef>> = BTreeMap::new();
    for (ru, r) in &snap.routers {
        for (name, raw) in r.raw_declarations() {
            let Ok(d) = Declaration::parse(raw) else {
                continue;
            };
            if d.kind != PeerType::Remote {
                continue;
            }
            let dref = DeclRef::new(*ru, name);
            let iname = d.target_integration.clone().unwrap_or_default();
            let err = |out: &mut RemotePlan, why: String| {
                out.statuses.insert(dref.clone(), Status::Errored(why));
            };
            if nb.az.is_empty() {
                err(
                    &mut out,
                    "NB_Global name (this availability zone's name for ovn-ic) is not set".into(),
                );
                continue;
            }
            let integ = match integrations.get(&iname) {
                None => {
                    err(&mut out, format!("no integration named {iname:?}"));
                    continue;
                }
                Some(Err(e)) => {
                    err(&mut out, format!("integration {iname:?}: {e}"));
                    continue;
                }
                Some(Ok(i)) => i,
            };
            if integ.gateway_chassis.is_empty() {
                err(
                    &mut out,
                    format!("integration {iname:?} has no gateway_chassis"),
                );
                continue;
            }
            let ts = integ.transit_switch(&iname, r.project(), r.network_name(), name);
            if let Err(e) = validate_target_name("transit switch", &ts) {
                err(&mut out, e.to_string());
                continue;
            }
            by_ts.entry((iname, ts)).or_default().push(dref);
        }
    }
    for ((iname, ts), decls) in &by_ts {
        if decls.len() > 1 {
            let names: Vec<String> = decls.iter().map(|d| d.to_string()).collect();
            for d in decls {
                out.statuses.insert(
                    d.clone(),
                    Status::Errored(format!(
                        "peers {} all map to transit switch {ts:?} of integration {iname:?}",
                        names.join(", ")
                    )),
                );
            }
        } else {
            out.transit_switches
                .insert(decls[0].clone(), (iname.clone(), ts.clone()));
        }
    }

    // 2. Per integration: the IC-NB changes and the created relationships.
    let my_key = format!("{AZ_KEY_PREFIX}{}", nb.az);
    let mut wanted: Vec<DesiredRemotePort> = Vec::new();
    let mut touched: BTreeSet<&str> = BTreeSet::new();
    for (iname, integ) in integrations
        .iter()
        .filter_map(|(n, i)| Some((n, i.as_ref().ok()?)))
    {
        let decls: Vec<(&DeclRef, &String)> = out
            .transit_switches
            .iter()
            .filter(|(_, (i, _))| i == iname)
            .map(|(d, (_, ts))| (d, ts))
            .collect();
        let view = match ics.get(iname) {
            Some(Ok(v)) => v,
            other => {
                let why = match other {
                    Some(Err(e)) => e.clone(),
                    _ => "not connected".to_string(),
                };
                for (d, _) in decls {
                    out.statuses.insert(
                        d.clone(),
                        Status::Errored(format!("integration {iname:?}: IC-NB {why}")),
                    );
                }
                continue;
            }
        };
        touched.insert(iname.as_str());
        let mut ops = Vec::new();
        let mut used: Vec<Cidr> = view
            .values()
            .filter_map(|t| t.external_ids.get(LINK_SUBNET_KEY))
            .filter_map(|s| Cidr::parse(s))
            .collect();
        let mut used6: Vec<Cidr> = view
            .values()
            .filter_map(|t| t.external_ids.get(LINK_SUBNET6_KEY))
            .filter_map(|s| Cidr::parse(s))
            .collect();
        let pool6 = integ.pool6().ok().flatten();
        let wanted_ts: BTreeSet<&str> = decls.iter().map(|(_, ts)| ts.as_str()).collect();
        for (d, ts) in &decls {
            let router = &snap.routers[&d.router];
            // IPv6 on the link only when this network has IPv6 subnets (and so does the other).
            let has6 = network_facts(snap, router)
                .subnets
                .iter()
                .any(|c| !c.is_ipv4());
            let my_value = if has6 { AZ_DECLARED_IPV6 } else { AZ_DECLARED };
            let new6 = |used6: &mut Vec<Cidr>| -> Option<Cidr> {
                let c = allocate(pool6.as_ref()?, integ.link_prefix6, used6)?;
                used6.push(c);
                Some(c)
            };
            let existing = view.iter().find(|(_, t)| &t.name == *ts);
            let Some((tu, t)) = existing else {
                let pool = integ.pool().expect("validated");
                match allocate(&pool, integ.link_prefix, &used) {
                    Some(subnet) => {
                        used.push(subnet);
                        let mut external_ids = BTreeMap::from([
                            (OWNER_KEY.to_string(), REMOTE_OWNER_VALUE.to_string()),
                            (LINK_SUBNET_KEY.to_string(), subnet.to_string()),
                            (my_key.clone(), my_value.to_string()),
                        ]);
                        if let Some(s6) = has6.then(|| new6(&mut used6)).flatten() {
                            external_ids.insert(LINK_SUBNET6_KEY.to_string(), s6.to_string());
                        }
                        ops.push(IcOp::CreateTs {
                            name: (*ts).clone(),
                            external_ids,
                        });
                        out.statuses.insert((*d).clone(), Status::Pending);
                    }
                    None => {
                        out.statuses.insert(
                            (*d).clone(),
                            Status::Errored(format!(
                                "link pool {} of integration {iname:?} is exhausted",
                                integ.link_pool
                            )),
                        );
                    }
                }
                continue;
            };
            let subnet = t
                .external_ids
                .get(LINK_SUBNET_KEY)
                .and_then(|s| Cidr::parse(s));
            let Some(subnet) = subnet.filter(|_| t.is_ours()) else {
                out.statuses.insert(
                    (*d).clone(),
                    Status::Errored(format!(
                        "transit switch {ts:?} exists but was not made by ovn-route"
                    )),
                );
                continue;
            };
            if t.external_ids.get(&my_key).map(String::as_str) != Some(my_value) {
                ops.push(IcOp::Declare {
                    uuid: *tu,
                    key: my_key.clone(),
                    value: my_value.to_string(),
                });
            }
            let subnet6 = t
                .external_ids
                .get(LINK_SUBNET6_KEY)
                .and_then(|s| Cidr::parse(s))
                .filter(|c| !c.is_ipv4());
            if has6 && subnet6.is_none() {
                if let Some(s6) = new6(&mut used6) {
                    ops.push(IcOp::SetLinkSubnet6 {
                        uuid: *tu,
                        subnet: s6.to_string(),
                    });
                }
            }
            let mut azs = t.azs();
            azs.insert(nb.az.as_str());
            if azs.len() < 2 {
                out.statuses.insert((*d).clone(), Status::Pending);
                continue;
            }
            if azs.len() > 2 {
                out.statuses.insert(
                    (*d).clone(),
                    Status::Errored(format!(
                        "more than two availability zones declared transit switch {ts:?}"
                    )),
                );
                continue;
            }
            let index = azs.iter().position(|a| *a == nb.az).expect("inserted") as u32;
            let Some(addr) = link_address(&subnet, index).filter(|c| c.is_ipv4()) else {
                out.statuses.insert(
                    (*d).clone(),
                    Status::Errored(format!("link subnet {subnet} is not an IPv4 /30 or larger")),
                );
                continue;
            };
            let mut networks = vec![addr.to_string()];
            // IPv6: both AZs declared IPv6 networks (ours as of this plan) and a subnet is set.
            let other_has6 = azs
                .iter()
                .filter(|a| **a != nb.az)
                .all(|a| t.az_has_ipv6(a));
            if has6 && other_has6 {
                if let Some(a6) = subnet6.and_then(|s6| link_address(&s6, index)) {
                    networks.push(a6.to_string());
                }
            }
            let lrp = remote_port_name(&router.name, &d.name);
            let taken = snap.ports.values().any(|p| {
                p.name == lrp
                    && p.external_ids.get(OWNER_KEY).map(String::as_str) != Some(REMOTE_OWNER_VALUE)
            });
            if taken {
                out.statuses.insert(
                    (*d).clone(),
                    Status::Errored(format!(
                        "router port name {lrp:?} is taken by a port ovn-route did not create"
                    )),
                );
                continue;
            }
            out.statuses.insert((*d).clone(), Status::Created);
            // The objects wait for ovn-ic to create the transit switch in this NB.
            if let Some((su, _)) = nb.transit_switch(ts) {
                wanted.push(DesiredRemotePort {
                    router: d.router,
                    switch: su,
                    lrp,
                    mac: port_mac(d.router, &format!("ts/{}", d.name)),
                    networks,
                    gateway_chassis: integ.gateway_chassis.clone(),
                    lsp: remote_switch_port_name(&nb.az, ts),
                    external_ids: BTreeMap::from([
                        (OWNER_KEY.to_string(), REMOTE_OWNER_VALUE.to_string()),
                        (PEERING_KEY.to_string(), d.name.clone()),
                        (TRANSIT_SWITCH_KEY.to_string(), (*ts).clone()),
                    ]),
                });
            }
        }
        // Transit switches we declared that nothing here wants any more.
        for (tu, t) in view {
            if !t.is_ours()
                || !t.external_ids.contains_key(&my_key)
                || wanted_ts.contains(t.name.as_str())
            {
                continue;
            }
            let others = t.azs().into_iter().filter(|a| *a != nb.az).count();
            // Ports left on it: anything on its local switch that is not ours (only our switch
            // ports are monitored: a port UUID not in `switch_ports` is someone else's).
            let ports_left = nb.transit_switch(&t.name).is_some_and(|(_, s)| {
                s.ports.iter().any(|p| {
                    !nb.switch_ports.get(p).is_some_and(|lsp| {
                        lsp.external_ids.get(OWNER_KEY).map(String::as_str)
                            == Some(REMOTE_OWNER_VALUE)
                    })
                })
            });
            if others == 0 && !ports_left {
                ops.push(IcOp::DeleteTs { uuid: *tu });
            } else {
                ops.push(IcOp::Withdraw {
                    uuid: *tu,
                    key: my_key.clone(),
                });
            }
        }
        if !ops.is_empty() {
            out.ic_ops.insert(iname.clone(), ops);
        }
    }

    // 3. Local NB: our remote ports vs the wanted ones. Ports of integrations whose IC-NB could
    // not be read are kept as they are.
    let unreadable = |ext: &BTreeMap<String, String>| -> bool {
        let ts = ext
            .get(TRANSIT_SWITCH_KEY)
            .map(String::as_str)
            .unwrap_or("");
        by_ts
            .keys()
            .any(|(i, t)| t == ts && !touched.contains(i.as_str()))
    };
    let ours = |ext: &BTreeMap<String, String>| {
        ext.get(OWNER_KEY).map(String::as_str) == Some(REMOTE_OWNER_VALUE)
    };
    let mut keep_lrp: BTreeSet<Uuid> = BTreeSet::new();
    let mut keep_lsp: BTreeSet<Uuid> = BTreeSet::new();
    for w in &wanted {
        let r = &snap.routers[&w.router];
        let lrp = r.ports.iter().find(|u| {
            snap.ports
                .get(u)
                .is_some_and(|p| p.name == w.lrp && ours(&p.external_ids))
        });
        let lrp_ok = lrp.is_some_and(|u| {
            let p = &snap.ports[u];
            let gcs: Vec<(String, i64)> = nb
                .port_gateway_chassis
                .get(u)
                .into_iter()
                .flatten()
                .filter_map(|g| nb.gateway_chassis.get(g).cloned())
                .collect();
            p.mac == w.mac
                && p.networks == w.networks
                && p.external_ids == w.external_ids
                && gcs.len() == w.gateway_chassis.len()
                && w.gateway_chassis
                    .iter()
                    .enumerate()
                    .all(|(i, c)| gcs.contains(&(c.clone(), gateway_priority(i))))
        });
        let sw = &nb.switches[&w.switch];
        let lsp = sw.ports.iter().find(|u| {
            nb.switch_ports
                .get(u)
                .is_some_and(|p| p.name == w.lsp && ours(&p.external_ids))
        });
        let lsp_ok = lsp.is_some_and(|u| {
            let p = &nb.switch_ports[u];
            p.kind == "router"
                && p.options.get("router-port") == Some(&w.lrp)
                && p.external_ids == w.external_ids
        });
        if lrp_ok && lsp_ok {
            keep_lrp.extend(lrp);
            keep_lsp.extend(lsp);
        } else {
            out.nb_ops.push(NbOp::Create(w.clone()));
        }
    }
    let mut deletes = Vec::new();
    for (ru, r) in &snap.routers {
        for pu in &r.ports {
            if let Some(p) = snap.ports.get(pu) {
                if ours(&p.external_ids) && !keep_lrp.contains(pu) && !unreadable(&p.external_ids) {
                    deletes.push(NbOp::DeleteLrp {
                        router: *ru,
                        uuid: *pu,
                    });
                }
            }
        }
    }
    for (su, s) in &nb.switches {
        for pu in &s.ports {
            if let Some(p) = nb.switch_ports.get(pu) {
                if ours(&p.external_ids) && !keep_lsp.contains(pu) && !unreadable(&p.external_ids) {
                    deletes.push(NbOp::DeleteLsp {
                        switch: *su,
                        uuid: *pu,
                    });
                }
            }
        }
    }
    deletes.append(&mut out.nb_ops);
    out.nb_ops = deletes;
    let want_routes = !wanted.is_empty();
    let routes_on = nb.options.get("ic-route-adv").map(String::as_str) == Some("true")
        && nb.options.get("ic-route-learn").map(String::as_str) == Some("true");
    if want_routes && !routes_on {
        out.nb_ops.push(NbOp::IcRoutes(true));
    } else if !want_routes && nb.external_ids.contains_key(IC_ROUTES_KEY) && by_ts.is_empty() {
        out.nb_ops.push(NbOp::IcRoutes(false));
    }
    out
}

/// The priority of the `i`-th gateway chassis (first = highest).
pub fn gateway_priority(i: usize) -> i64 {
    100 - i.min(99) as i64
}
