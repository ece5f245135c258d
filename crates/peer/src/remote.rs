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
use std::net::{IpAddr, Ipv4Addr};

use ovsdb::Uuid;
use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::error::ModelError;
use crate::model::{validate_target_name, Declaration, PeerType, Status, OWNER_KEY, PEERING_KEY};
use crate::plan::{port_mac, DeclRef};
use crate::snapshot::Snapshot;

/// `NB_Global.external_ids` prefix of integrations: `ovn-route:integration:<name>` = JSON.
pub const INTEGRATION_KEY_PREFIX: &str = "ovn-route:integration:";
/// `Transit_Switch.external_ids` prefix: one key per AZ that declared the transit switch.
pub const AZ_KEY_PREFIX: &str = "ovn-route:az:";
/// `Transit_Switch.external_ids` key: the link subnet allocated to the transit switch.
pub const LINK_SUBNET_KEY: &str = "ovn-route:link-subnet";
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

fn default_pattern() -> String {
    DEFAULT_TS_PATTERN.to_string()
}
fn default_pool() -> String {
    DEFAULT_LINK_POOL.to_string()
}
fn default_prefix() -> u8 {
    DEFAULT_LINK_PREFIX
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
        for c in &self.gateway_chassis {
            validate_target_name("chassis", c)?;
        }
        Ok(())
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
    /// `addresses`.
    pub addresses: Vec<String>,
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
    /// Add our AZ key to an existing transit switch.
    Declare {
        /// The transit switch.
        uuid: Uuid,
        /// The key.
        key: String,
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

fn nth_host(subnet: &Cidr, n: u32) -> Option<IpAddr> {
    match subnet.addr {
        IpAddr::V4(a) => Some(IpAddr::V4(Ipv4Addr::from(u32::from(a).checked_add(n)?))),
        IpAddr::V6(_) => None,
    }
}

/// The lowest `/len` subnet of `pool` that overlaps none of `used`.
pub fn allocate(pool: &Cidr, len: u8, used: &[Cidr]) -> Option<Cidr> {
    let IpAddr::V4(base) = pool.addr else {
        return None;
    };
    let count = 1u64 << (len - pool.len);
    let size = 1u64 << (32 - len);
    (0..count)
        .map(|i| Cidr {
            addr: IpAddr::V4(Ipv4Addr::from(
                (u64::from(u32::from(base)) + i * size) as u32,
            )),
            len,
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
        let wanted_ts: BTreeSet<&str> = decls.iter().map(|(_, ts)| ts.as_str()).collect();
        for (d, ts) in &decls {
            let existing = view.iter().find(|(_, t)| &t.name == *ts);
            let Some((tu, t)) = existing else {
                let pool = integ.pool().expect("validated");
                match allocate(&pool, integ.link_prefix, &used) {
                    Some(subnet) => {
                        used.push(subnet);
                        ops.push(IcOp::CreateTs {
                            name: (*ts).clone(),
                            external_ids: BTreeMap::from([
                                (OWNER_KEY.to_string(), REMOTE_OWNER_VALUE.to_string()),
                                (LINK_SUBNET_KEY.to_string(), subnet.to_string()),
                                (my_key.clone(), "declared".to_string()),
                            ]),
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
            if !t.external_ids.contains_key(&my_key) {
                ops.push(IcOp::Declare {
                    uuid: *tu,
                    key: my_key.clone(),
                });
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
            let Some(addr) = nth_host(&subnet, index + 1) else {
                out.statuses.insert(
                    (*d).clone(),
                    Status::Errored(format!("link subnet {subnet} is not IPv4")),
                );
                continue;
            };
            out.statuses.insert((*d).clone(), Status::Created);
            // The objects wait for ovn-ic to create the transit switch in this NB.
            if let Some((su, _)) = nb.transit_switch(ts) {
                let router = &snap.routers[&d.router];
                wanted.push(DesiredRemotePort {
                    router: d.router,
                    switch: su,
                    lrp: remote_port_name(&router.name, &d.name),
                    mac: port_mac(d.router, &format!("ts/{}", d.name)),
                    networks: vec![format!("{addr}/{}", subnet.len)],
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
            // Ports left on it: anything on its local switch that is not ours.
            let ports_left = nb.transit_switch(&t.name).is_some_and(|(_, s)| {
                s.ports.iter().any(|p| {
                    nb.switch_ports.get(p).is_some_and(|lsp| {
                        lsp.external_ids.get(OWNER_KEY).map(String::as_str)
                            != Some(REMOTE_OWNER_VALUE)
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
