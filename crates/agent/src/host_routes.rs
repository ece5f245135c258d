//! Host routes on this host: `subnet via <uplink address> dev <interface>` for the subnets of OVN
//! networks whose uplink address is on a network the host is attached to (`[host_routes]`).
//!
//! The plan is [`ovn_route_plan::host_routes`] (pure). Here: the host's attached networks read
//! from the kernel (its connected routes and local addresses), the routes kept in the configured
//! table marked with `route_protocol` (observe, diff, apply: a restart adopts what is there), a
//! foreign route for the same prefix left alone and reported as conflicting, the optional BGP
//! advertisement (a route `subnet via <uplink address>` in the exposure table on the chassis that
//! hosts the router's gateway port), and the entries `status` and `ovn-route routes` show.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ovn_route_config::{Config, HostRoutesTable};
#[cfg(test)]
use ovn_route_kernel::RouteKey;
use ovn_route_kernel::{diff_owned, DesiredRoutes, IpNet, ObservedRoute, Reconciler, Route};
use ovn_route_plan::exposure::{ExposurePlan, Kind};
use ovn_route_plan::host_routes::{
    plan_host_routes, HostNetwork, HostRoutesConfig, HostRoutesPlan, Pattern,
};
use ovsdb::{Replica, TableSelect};
use serde::{Deserialize, Serialize};

use crate::apply::ApplyReport;
use crate::tables::TableRegistry;

/// The kernel's protocol number of connected and local routes (`proto kernel`).
const RTPROT_KERNEL: u8 = 2;
/// The protocol number zebra installs its imported table routes with (`proto zebra`).
const RTPROT_ZEBRA: u8 = 11;
/// The main table.
pub const MAIN_TABLE: u32 = 254;
/// The local table (the host's own addresses).
const LOCAL_TABLE: u32 = 255;

/// Why the host routes cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum HostRoutesError {
    /// `[host_routes] table` names a table that no `rt_tables` file defines.
    #[error(
        "[host_routes] table = {name}: no such table in {dir}/rt_tables or rt_tables.d/*.conf"
    )]
    UnknownTable {
        /// The name.
        name: String,
        /// `iproute2_dir`.
        dir: String,
    },
    /// An include/exclude pattern does not parse.
    #[error("[host_routes] {option}: {reason}")]
    Pattern {
        /// `include` or `exclude`.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// Netlink.
    #[error("kernel: {0}")]
    Kernel(#[from] ovn_route_kernel::Error),
}

/// The host-routes settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoutesSettings {
    /// The table of the routes.
    pub table: u32,
    /// `route_protocol`: their mark.
    pub protocol: u8,
    /// include/exclude.
    pub config: HostRoutesConfig,
    /// Advertise the subnets through BGP from the gateway chassis.
    pub advertise: bool,
    /// FRR imports the exposure table into the RIB that also holds `table` (`vrf_mode = none`,
    /// `ip import-table`, and `table` is main): there our host route, a kernel route of distance
    /// 0, would always win over the imported copy (distance 15), which FRR would then never
    /// redistribute. On the chassis that advertises an IPv4 subnet the agent therefore leaves its
    /// host route out, and the host uses the copy zebra installs (`proto zebra`, same next hop).
    pub frr_imports_into_table: bool,
    /// FRR imports the exposure table (`vrf_mode = none`, `ip import-table`). FRR 8.4's zebra
    /// loses its imported copy of a route replaced in place in that table (the new next hop is in
    /// the table, the copy is gone, nothing is advertised): an advertised route whose next hop
    /// changed is deleted and added again after the exposure table's apply.
    pub frr_import_table: bool,
}

impl HostRoutesSettings {
    /// The settings of `cfg` (a table name is looked up under `iproute2_dir`).
    pub fn from_config(cfg: &Config) -> Result<Self, HostRoutesError> {
        let h = &cfg.host_routes;
        let table = match &h.table {
            HostRoutesTable::Id(id) => *id,
            HostRoutesTable::Name(name) => TableRegistry::new(&cfg.ovn_route.iproute2_dir, &[])
                .entries()
                .into_iter()
                .find(|(_, n, _)| n == name)
                .map(|(id, _, _)| id)
                .ok_or_else(|| HostRoutesError::UnknownTable {
                    name: name.clone(),
                    dir: cfg.ovn_route.iproute2_dir.display().to_string(),
                })?,
        };
        let patterns = |option: &'static str, v: &[String]| {
            v.iter()
                .map(|p| {
                    Pattern::parse(p).map_err(|reason| HostRoutesError::Pattern { option, reason })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(HostRoutesSettings {
            table,
            protocol: cfg.ovn_route.route_protocol,
            config: HostRoutesConfig {
                include: patterns("include", &h.include)?,
                exclude: patterns("exclude", &h.exclude)?,
            },
            advertise: h.advertise,
            frr_imports_into_table: cfg.ovn_route.vrf_mode == ovn_route_config::VrfMode::None
                && table == MAIN_TABLE,
            frr_import_table: cfg.ovn_route.vrf_mode == ovn_route_config::VrfMode::None,
        })
    }
}

/// `a` plus the tables and columns of `b` (the NB monitor of the agent with host routes on).
pub fn merge_tables(mut a: Vec<TableSelect>, b: Vec<TableSelect>) -> Vec<TableSelect> {
    for t in b {
        match a.iter_mut().find(|x| x.table == t.table) {
            Some(x) => {
                if let (Some(have), Some(add)) = (&mut x.columns, t.columns) {
                    for c in add {
                        if !have.contains(&c) {
                            have.push(c);
                        }
                    }
                }
            }
            None => a.push(t),
        }
    }
    a
}

/// The NB tables the agent monitors: the exposure planner's, plus the host routes' when on.
pub fn agent_nb_tables(host_routes: bool) -> Vec<TableSelect> {
    let t = ovn_route_plan::exposure::nb_tables();
    if host_routes {
        merge_tables(t, ovn_route_plan::host_routes::nb_tables())
    } else {
        t
    }
}

fn plan_net(n: &IpNet) -> ipnet::IpNet {
    ipnet::IpNet::new(n.addr(), n.prefix_len()).expect("valid prefix")
}

fn is_link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// The host's directly attached networks from its connected routes (main table, `proto kernel`,
/// no gateway) and its own addresses (local table).
pub fn host_networks(main: &[ObservedRoute], local: &[ObservedRoute]) -> Vec<HostNetwork> {
    let own: Vec<IpAddr> = local
        .iter()
        .filter(|o| {
            o.protocol == RTPROT_KERNEL
                && o.key.prefix.prefix_len() == if o.key.prefix.is_ipv6() { 128 } else { 32 }
        })
        .map(|o| o.key.prefix.addr())
        .collect();
    let mut out: Vec<HostNetwork> = vec![];
    for o in main.iter().filter(|o| o.protocol == RTPROT_KERNEL) {
        let Some(Route {
            prefix,
            kind:
                ovn_route_kernel::RouteKind::Unicast {
                    via: None,
                    dev: Some(dev),
                    ..
                },
            ..
        }) = &o.route
        else {
            continue;
        };
        if is_link_local(prefix.addr()) || prefix.prefix_len() == 0 {
            continue;
        }
        let net = plan_net(prefix);
        let address = own
            .iter()
            .copied()
            .find(|a| net.contains(a))
            .unwrap_or(prefix.addr());
        if let Some(h) = HostNetwork::new(dev, address, prefix.prefix_len()) {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out.sort();
    out
}

/// Reads the host's attached networks from the kernel.
pub async fn observe_host(rec: &Reconciler) -> Result<Vec<HostNetwork>, ovn_route_kernel::Error> {
    // One dump for both tables (each dump walks every route of the host).
    let mut t = rec
        .observe_tables(&std::collections::BTreeSet::from([MAIN_TABLE, LOCAL_TABLE]))
        .await?;
    let main = t.remove(&MAIN_TABLE).unwrap_or_default();
    let local = t.remove(&LOCAL_TABLE).unwrap_or_default();
    Ok(host_networks(&main, &local))
}

/// Where one host route stands in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteState {
    /// Our route is there as planned.
    Installed,
    /// Not there (yet, or an apply failed).
    Missing,
    /// A foreign route for the same prefix is there: it wins, ours is not installed.
    Conflicting,
}

impl std::fmt::Display for RouteState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RouteState::Installed => "installed",
            RouteState::Missing => "missing",
            RouteState::Conflicting => "conflicting",
        })
    }
}

/// One host route as `status` and `ovn-route routes` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRouteEntry {
    /// The OVN subnet.
    pub prefix: String,
    /// The next hop: the router's uplink address.
    pub via: String,
    /// The host interface on the uplink network.
    pub dev: String,
    /// The kernel table.
    pub table: u32,
    /// The logical router.
    pub router: String,
    /// The network's name for people.
    pub network: String,
    /// Incus/Neutron ids (`incus network id 2, project id 1`), or `ovn`.
    pub origin: String,
    /// The router's uplink port.
    pub uplink_port: String,
    /// installed / missing / conflicting.
    pub state: RouteState,
    /// The foreign route that wins, when conflicting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
    /// The route present is FRR's copy of the one this chassis advertises (zebra imports the
    /// exposure table and installs it, `proto zebra`), not ours: see
    /// [`HostRoutesSettings::frr_imports_into_table`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_frr: bool,
    /// How it is advertised through BGP, if it is (`table 10: ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised: Option<String>,
    /// The OVN rows behind it.
    pub sources: Vec<String>,
}

/// Whether `o` is zebra's copy of a planned route: `proto zebra`, the planned prefix and next
/// hop (FRR imported it from the exposure table, where this chassis advertises it).
fn is_frr_copy(o: &ObservedRoute, plan: &HostRoutesPlan) -> bool {
    if o.protocol != RTPROT_ZEBRA {
        return false;
    }
    let Some(Route {
        kind: ovn_route_kernel::RouteKind::Unicast { via: Some(via), .. },
        ..
    }) = &o.route
    else {
        return false;
    };
    plan.routes
        .get(&plan_net(&o.key.prefix))
        .is_some_and(|r| r.via == *via)
}

/// The foreign routes of a table by prefix, as text (zebra's copies of planned routes are not
/// foreign).
fn foreign_by_prefix(
    all: &[ObservedRoute],
    protocol: u8,
    plan: &HostRoutesPlan,
) -> BTreeMap<IpNet, String> {
    let mut out = BTreeMap::new();
    for o in all
        .iter()
        .filter(|o| o.protocol != protocol && !is_frr_copy(o, plan))
    {
        let text = match &o.route {
            Some(r) => format!("{r} proto {}", o.protocol),
            None => format!("{} (proto {})", o.key.prefix, o.protocol),
        };
        out.entry(o.key.prefix).or_insert(text);
    }
    out
}

fn route_of(r: &ovn_route_plan::host_routes::HostRoute) -> Route {
    let p = IpNet::new(r.prefix.addr(), r.prefix.prefix_len()).expect("valid prefix");
    Route::via(p, r.via, Some(&r.dev))
}

/// The entries of a plan against the routes observed in its table.
pub fn entries(
    plan: &HostRoutesPlan,
    table: u32,
    protocol: u8,
    observed: &[ObservedRoute],
) -> Vec<HostRouteEntry> {
    let foreign = foreign_by_prefix(observed, protocol, plan);
    let ours: BTreeSet<&Route> = observed
        .iter()
        .filter(|o| o.protocol == protocol)
        .filter_map(|o| o.route.as_ref())
        .collect();
    let copies: BTreeSet<IpNet> = observed
        .iter()
        .filter(|o| is_frr_copy(o, plan))
        .map(|o| o.key.prefix)
        .collect();
    let mut out = vec![];
    for n in &plan.networks {
        for r in &n.routes {
            let want = route_of(r).normalized();
            let conflict = foreign.get(&want.prefix).cloned();
            let by_frr = !ours.contains(&want) && copies.contains(&want.prefix);
            let state = if conflict.is_some() {
                RouteState::Conflicting
            } else if ours.contains(&want) || by_frr {
                RouteState::Installed
            } else {
                RouteState::Missing
            };
            out.push(HostRouteEntry {
                prefix: r.prefix.to_string(),
                via: r.via.to_string(),
                dev: r.dev.clone(),
                table,
                router: n.router.clone(),
                network: n.name.clone(),
                origin: n.origin.to_string(),
                uplink_port: n.uplink_port.clone(),
                state,
                conflict,
                by_frr: by_frr && state != RouteState::Conflicting,
                advertised: None,
                sources: r.sources.clone(),
            });
        }
    }
    out
}

/// The host routes part of the agent: plan, BGP routes, kernel.
#[derive(Debug)]
pub struct HostRoutes {
    /// The settings.
    pub settings: HostRoutesSettings,
    plan: HostRoutesPlan,
    entries: Vec<HostRouteEntry>,
    /// Routes added to the exposure table for BGP (prefix -> route text).
    advertised: BTreeMap<String, String>,
    /// Advertised prefixes whose host route is FRR's copy (ours left out): see
    /// [`HostRoutesSettings::frr_imports_into_table`].
    frr_copies: BTreeSet<ipnet::IpNet>,
    /// The routes put into the exposure table in the last pass, and that table.
    adv_routes: BTreeMap<IpNet, Route>,
    adv_table: u32,
    /// Advertised routes replaced in place in this pass, to delete and add again (see
    /// [`HostRoutesSettings::frr_import_table`]).
    reimport: Vec<Route>,
    warned: BTreeSet<String>,
}

impl HostRoutes {
    /// A new, empty state.
    pub fn new(settings: HostRoutesSettings) -> Self {
        HostRoutes {
            settings,
            plan: HostRoutesPlan::default(),
            entries: vec![],
            advertised: BTreeMap::new(),
            frr_copies: BTreeSet::new(),
            adv_routes: BTreeMap::new(),
            adv_table: 0,
            reimport: vec![],
            warned: BTreeSet::new(),
        }
    }

    /// Recomputes the plan from the NB and the host's networks; logs new refusals.
    pub fn update(&mut self, nb: &Replica, host: &[HostNetwork]) {
        self.plan = plan_host_routes(nb, host, &self.settings.config);
        for r in &self.plan.rejected {
            let key = format!("{}|{}|{}", r.value, r.source, r.reason);
            if self.warned.insert(key) {
                tracing::warn!(value = %r.value, source = %r.source, reason = %r.reason, "no host route");
            }
        }
    }

    /// The last plan.
    pub fn plan(&self) -> &HostRoutesPlan {
        &self.plan
    }

    /// With `advertise`: adds `subnet via <uplink address> dev D` to the exposure table for every
    /// host route whose router's uplink address is exposed here as a gateway IP (its gateway
    /// port is hosted on this chassis); `D` is the device of that gateway IP's own route, which
    /// also makes the next hop resolvable in the table. When FRR imports that table into the
    /// host routes' table (see [`HostRoutesSettings::frr_imports_into_table`]) and `frr_failed`
    /// is false, the IPv4 ones are also marked to leave our host route out (FRR's copy replaces
    /// it); with `frr_failed` (the last FRR apply failed) our host route stays.
    pub fn advertise_into(
        &mut self,
        exposure: &ExposurePlan,
        adv: &mut DesiredRoutes,
        frr_failed: bool,
    ) {
        self.advertised.clear();
        self.frr_copies.clear();
        self.reimport.clear();
        let prev = std::mem::take(&mut self.adv_routes);
        self.adv_table = adv.table;
        if !self.settings.advertise {
            return;
        }
        for r in self.plan.routes.values() {
            let host = ipnet::IpNet::from(r.via);
            let here = exposure
                .exposed
                .get(&host)
                .is_some_and(|e| e.kind == Kind::GatewayIp);
            if !here {
                continue;
            }
            if self.settings.frr_import_table && r.prefix.addr().is_ipv6() {
                // FRR 8.4 imports IPv4 tables only (`ip import-table`): an IPv6 route there
                // would not be advertised; the host route stays the agent's.
                continue;
            }
            let gw = adv.first_for(&IpNet::host(r.via)).cloned();
            let dev = match gw.as_ref().map(|g| &g.kind) {
                Some(ovn_route_kernel::RouteKind::Unicast { dev, .. }) => dev.clone(),
                _ => None,
            };
            let p = IpNet::new(r.prefix.addr(), r.prefix.prefix_len()).expect("valid prefix");
            let route = Route::via(p, r.via, dev.as_deref());
            self.advertised.insert(
                r.prefix.to_string(),
                format!("table {}: {route}", adv.table),
            );
            if self.settings.frr_import_table
                && !p.is_ipv6()
                && prev.get(&p).is_some_and(|old| *old != route)
            {
                self.reimport.push(route.clone());
            }
            self.adv_routes.insert(p, route.clone());
            adv.insert(route);
            if self.settings.frr_imports_into_table && !frr_failed && r.prefix.addr().is_ipv4() {
                self.frr_copies.insert(r.prefix);
            }
        }
    }

    /// Observes the table, keeps our routes equal to the plan minus the prefixes a foreign route
    /// holds, and records the entries. `dry_run`: only describes the changes. Call after the
    /// exposure table was applied (advertised routes replaced there are deleted and added again
    /// first, see [`HostRoutesSettings::frr_import_table`]).
    pub async fn apply(&mut self, rec: &Reconciler, dry_run: bool, report: &mut ApplyReport) {
        if !dry_run && !self.reimport.is_empty() {
            self.reimport(rec, report).await;
        }
        let table = self.settings.table;
        let protocol = self.settings.protocol;
        let observed = match rec.observe_table(table).await {
            Ok(o) => o,
            Err(e) => {
                report
                    .errors
                    .push(format!("host routes: table {table}: {e}"));
                return;
            }
        };
        let foreign = foreign_by_prefix(&observed, protocol, &self.plan);
        let mut desired = DesiredRoutes::new(table, protocol);
        for r in self.plan.routes.values() {
            if self.frr_copies.contains(&r.prefix) {
                // Advertised here: FRR's copy of the exposure table's route serves the host.
                continue;
            }
            let route = route_of(r);
            if let Some(f) = foreign.get(&route.prefix) {
                let key = format!("conflict|{}|{f}", route.prefix);
                if self.warned.insert(key) {
                    tracing::warn!(route = %route, foreign = %f, table, "a foreign route holds this prefix: left alone, ours not installed");
                }
                continue;
            }
            desired.insert(route);
        }
        let ours: Vec<Route> = observed
            .iter()
            .filter(|o| o.protocol == protocol)
            .map(|o| {
                o.route.clone().unwrap_or(Route {
                    prefix: o.key.prefix,
                    kind: ovn_route_kernel::RouteKind::Blackhole,
                    metric: Some(o.key.metric),
                })
            })
            .collect();
        let diff = diff_owned(&desired, ours);
        if !diff.is_empty() {
            for (op, rs) in [
                ("delete", &diff.to_delete),
                ("replace", &diff.to_replace),
                ("add", &diff.to_add),
            ] {
                for r in rs.iter() {
                    report
                        .changes
                        .push(format!("host routes: table {table}: {op} route {r}"));
                }
            }
            if !dry_run {
                let keys: BTreeSet<_> = observed
                    .iter()
                    .filter(|o| o.protocol != protocol)
                    .map(|o| o.key)
                    .collect();
                let res = rec.apply(table, protocol, &diff, &keys).await;
                let stats = match res {
                    Ok(s) => s,
                    Err(ovn_route_kernel::Error::Apply { stats, errors }) => {
                        report.errors.extend(
                            errors
                                .iter()
                                .map(|e| format!("host routes: table {table}: {e}")),
                        );
                        stats
                    }
                    Err(e) => {
                        report
                            .errors
                            .push(format!("host routes: table {table}: {e}"));
                        Default::default()
                    }
                };
                for (op, n) in [
                    ("add", stats.added),
                    ("replace", stats.replaced),
                    ("delete", stats.deleted),
                ] {
                    if n > 0 {
                        *report.counts.entry(("host_route", op)).or_default() += n;
                    }
                }
            }
        }
        // The state after the apply (re-observed only when something was changed).
        let observed = if diff.is_empty() || dry_run {
            observed
        } else {
            rec.observe_table(table).await.unwrap_or(observed)
        };
        let mut entries = entries(&self.plan, table, protocol, &observed);
        for e in &mut entries {
            e.advertised = self.advertised.get(&e.prefix).cloned();
        }
        self.entries = entries;
    }

    /// Deletes and adds again the advertised routes replaced in place in this pass, so that
    /// FRR 8.4's `ip import-table` imports them again.
    async fn reimport(&mut self, rec: &Reconciler, report: &mut ApplyReport) {
        let routes = std::mem::take(&mut self.reimport);
        for r in &routes {
            tracing::debug!(route = %r, table = self.adv_table, "advertised route replaced: deleted and added again for FRR's import-table");
        }
        let diff = ovn_route_kernel::RouteDiff {
            to_add: routes.clone(),
            to_replace: vec![],
            to_delete: routes,
            unchanged: 0,
        };
        let t = self.adv_table;
        if let Err(e) = rec
            .apply(t, self.settings.protocol, &diff, &BTreeSet::new())
            .await
        {
            report
                .errors
                .push(format!("host routes: table {t}: re-import: {e}"));
        }
    }

    /// The entries as last applied.
    pub fn entries(&self) -> &[HostRouteEntry] {
        &self.entries
    }

    /// Whether a route event in `table` matters to the host routes: an address change (a
    /// connected route of the kernel), or a route for a prefix the plan routes (ours deleted, a
    /// foreign one appearing or going).
    pub fn concerns(&self, table: u32, ev: &ovn_route_kernel::RouteEvent) -> bool {
        if table == MAIN_TABLE && ev.protocol == RTPROT_KERNEL {
            return true;
        }
        if table != self.settings.table {
            return false;
        }
        use ovn_route_kernel::{RouteChange, RouteKind};
        let p = plan_net(&ev.key.prefix);
        let planned = self.plan.routes.get(&p);
        if ev.protocol != self.settings.protocol {
            // A foreign route for a planned prefix appeared or went.
            return planned.is_some();
        }
        match (planned, ev.change) {
            (None, RouteChange::Deleted) => false,
            // A route with our mark that the plan does not want.
            (None, _) => true,
            (Some(_), RouteChange::Deleted) => {
                let text = p.to_string();
                self.entries
                    .iter()
                    .any(|e| e.prefix == text && e.state == RouteState::Installed)
            }
            // Our own change matching the plan costs nothing (watch events name devices by index).
            (Some(r), _) => !ev.route.as_ref().is_some_and(
                |x| matches!(&x.kind, RouteKind::Unicast { via: Some(v), .. } if *v == r.via),
            ),
        }
    }
}

/// Renders host route entries for people: uplink -> network -> subnet -> next hop, state.
pub fn render(entries: &[HostRouteEntry]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    // uplink (dev) -> network -> routes
    let mut by_dev: BTreeMap<&str, BTreeMap<(&str, &str), Vec<&HostRouteEntry>>> = BTreeMap::new();
    for e in entries {
        by_dev
            .entry(e.dev.as_str())
            .or_default()
            .entry((e.network.as_str(), e.router.as_str()))
            .or_default()
            .push(e);
    }
    for (dev, nets) in by_dev {
        let _ = writeln!(s, "{dev}");
        for ((name, router), es) in nets {
            let e0 = es[0];
            // The uplink addresses in use (one per family), in the order of the routes.
            let mut vias: Vec<&str> = vec![];
            for e in &es {
                if !vias.contains(&e.via.as_str()) {
                    vias.push(&e.via);
                }
            }
            let _ = writeln!(
                s,
                "  {name} (router {router}, {}; uplink {} {})",
                e0.origin,
                e0.uplink_port,
                vias.join(", ")
            );
            for e in es {
                let _ = writeln!(
                    s,
                    "    {:<22} via {:<16} table {:<5} {}{}",
                    e.prefix,
                    e.via,
                    e.table,
                    e.state,
                    match (&e.conflict, e.by_frr) {
                        (Some(c), _) => format!(" (foreign route: {c})"),
                        (None, true) => " (by FRR from the exposure table)".into(),
                        (None, false) => String::new(),
                    }
                );
                if let Some(a) = &e.advertised {
                    let _ = writeln!(s, "      advertised: {a}");
                }
            }
        }
    }
    s
}

/// Starts the agent's NB session: the exposure planner's tables, plus the host routes' when on.
pub fn nb_session(
    remotes: Vec<ovsdb::Remote>,
    ssl: Option<ovsdb::SslConfig>,
    host_routes: bool,
) -> ovsdb::Session {
    let mut cfg = ovsdb::SessionConfig::new(remotes, "OVN_Northbound");
    cfg.tables = agent_nb_tables(host_routes);
    cfg.connect.ssl = ssl;
    ovsdb::Session::start(cfg)
}

/// The kernel reconciler type (re-exported for `ovn-route routes`).
pub use ovn_route_kernel::Reconciler as KernelReconciler;

#[cfg(test)]
mod tests {
    use super::*;
    use ovn_route_plan::host_routes::{HostRoute, Origin, OvnNetwork};

    fn plan() -> HostRoutesPlan {
        let r = HostRoute {
            prefix: "10.190.10.0/24".parse().unwrap(),
            via: "10.220.0.100".parse().unwrap(),
            dev: "incusbr0".into(),
            router: "incus-net2-lr".into(),
            sources: vec![],
        };
        HostRoutesPlan {
            networks: vec![OvnNetwork {
                router: r.router.clone(),
                name: "incus net2".into(),
                origin: Origin::Incus {
                    network_id: 2,
                    project_id: Some(1),
                },
                uplink_port: "incus-net2-lr-lrp-ext".into(),
                uplink: vec![],
                routes: vec![r.clone()],
                excluded: vec![],
            }],
            routes: [(r.prefix, r)].into_iter().collect(),
            rejected: vec![],
        }
    }

    fn observed(via: &str, protocol: u8, metric: u32) -> ObservedRoute {
        let p: IpNet = "10.190.10.0/24".parse().unwrap();
        let mut route = Route::via(p, via.parse().unwrap(), Some("incusbr0"));
        route.metric = Some(metric);
        ObservedRoute {
            key: RouteKey { prefix: p, metric },
            route: Some(route.normalized()),
            protocol,
        }
    }

    /// A Neutron router (dual-stack) as `ovn-route routes` draws it: its Neutron name, router id
    /// and project id, both uplink addresses, one line per subnet.
    #[test]
    fn render_shows_a_neutron_router_with_its_ids() {
        let router = "neutron-5c1f3a2e-8d4b-4f6a-9e7c-1b2d3c4e5f60";
        let route = |prefix: &str, via: &str| HostRoute {
            prefix: prefix.parse().unwrap(),
            via: via.parse().unwrap(),
            dev: "br-ex".into(),
            router: router.into(),
            sources: vec![],
        };
        let rs = [
            route("172.16.5.0/24", "10.220.0.50"),
            route("fd42:5::/64", "fd42::50"),
        ];
        let plan = HostRoutesPlan {
            networks: vec![OvnNetwork {
                router: router.into(),
                name: "web".into(),
                origin: Origin::Neutron {
                    router_id: "5c1f3a2e-8d4b-4f6a-9e7c-1b2d3c4e5f60".into(),
                    router_name: Some("web".into()),
                    project_id: Some("9b1d2c3e4f5a4b6c8d7e6f5a4b3c2d1e".into()),
                },
                uplink_port: "lrp-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into(),
                uplink: vec![],
                routes: rs.to_vec(),
                excluded: vec![],
            }],
            routes: rs.iter().map(|r| (r.prefix, r.clone())).collect(),
            rejected: vec![],
        };
        let mut ours = Route::via(
            "172.16.5.0/24".parse().unwrap(),
            "10.220.0.50".parse().unwrap(),
            Some("br-ex"),
        );
        ours.metric = Some(0);
        let observed = [ObservedRoute {
            key: RouteKey {
                prefix: ours.prefix,
                metric: 0,
            },
            route: Some(ours.normalized()),
            protocol: 201,
        }];
        let e = entries(&plan, MAIN_TABLE, 201, &observed);
        assert_eq!(
            render(&e),
            "br-ex\n  web (router neutron-5c1f3a2e-8d4b-4f6a-9e7c-1b2d3c4e5f60, neutron router \
             5c1f3a2e-8d4b-4f6a-9e7c-1b2d3c4e5f60 (web), project 9b1d2c3e4f5a4b6c8d7e6f5a4b3c2d1e; \
             uplink lrp-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d 10.220.0.50, fd42::50)\n    \
             172.16.5.0/24          via 10.220.0.50      table 254   installed\n    \
             fd42:5::/64            via fd42::50         table 254   missing\n"
        );
    }

    #[test]
    fn zebra_copy_of_the_advertised_route_is_installed_not_foreign() {
        let e = entries(
            &plan(),
            MAIN_TABLE,
            201,
            &[observed("10.220.0.100", 11, 20)],
        );
        assert_eq!((e[0].state, e[0].by_frr), (RouteState::Installed, true));
        assert!(render(&e).contains("installed (by FRR from the exposure table)"));
        // Zebra's route with another next hop, or another protocol's: foreign.
        let e = entries(&plan(), MAIN_TABLE, 201, &[observed("10.220.0.9", 11, 20)]);
        assert_eq!((e[0].state, e[0].by_frr), (RouteState::Conflicting, false));
        let e = entries(&plan(), MAIN_TABLE, 201, &[observed("10.220.0.100", 4, 50)]);
        assert_eq!(e[0].state, RouteState::Conflicting);
        // Ours.
        let e = entries(
            &plan(),
            MAIN_TABLE,
            201,
            &[observed("10.220.0.100", 201, 0)],
        );
        assert_eq!((e[0].state, e[0].by_frr), (RouteState::Installed, false));
    }
}
