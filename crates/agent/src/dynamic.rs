//! Route exchange driven by OVN's own `dynamic-routing*` options (`[ovn_route] dynamic_routing`):
//! the I/O side of [`ovn_route_plan::dynamic`].
//!
//! * Advertise: each router advertised here gets its planned routes in its table with protocol
//!   84 (stale protocol-84 routes deleted first, then missing ones added; other protocols are never
//!   touched). A table no router wants any more loses our routes.
//! * VRFs (`dynamic-routing-maintain-vrf`): created where the port is bound, marked with the alias
//!   [`VRF_MARK`]; deleted when no longer wanted, and only when they carry the mark.
//! * Learn: each router's table is dumped at start, on every full pass and after a route event in
//!   it (route notifications of other protocols); qualifying routes become NB static routes on the
//!   router, marked as ours with this chassis, in transactions that `wait` on the router's
//!   `static_routes` as read.
//! * An OVN that does this itself (SB `Advertised_Route`): nothing is done, status says so.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ovn_model::vswitch::OpenVSwitch;
use ovn_route_frr::dynamic::{DynamicIntent, Neighbor, Peer};
use ovn_route_kernel::{
    DesiredRoutes, ReconcileStats, Reconciler, Route, RouteEvent, RouteKey, TableDiff,
};
use ovn_route_plan::dynamic::learn::{
    self, desired_learned, KernelRoute, Learned, NextHop, RouterChange,
};
use ovn_route_plan::dynamic::{options::OVS_PORT_MAPPING, plan_dynamic, DynamicPlan, PROTOCOL};
use ovn_route_plan::exposure::Rejected;
use ovn_route_plan::ChassisIdentity;
use ovsdb::{Atom, Condition, Datum, Mutation, Operation, RowData, Session, Uuid, WaitUntil};
use serde::{Deserialize, Serialize};

use crate::apply::ApplyReport;

/// The alias that marks a VRF created by ovn-route for a router (`ip -d link` shows it).
pub const VRF_MARK: &str = "ovn-route:dynamic-routing";

/// One router advertised here, for `ovn-route status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DynamicRouterEntry {
    /// Router name.
    pub router: String,
    /// Its table.
    pub table: u32,
    /// Its VRF, and whether ovn-route maintains it.
    pub vrf: String,
    /// `dynamic-routing-maintain-vrf` is set on a bound port.
    pub maintain_vrf: bool,
    /// Its gateway ports bound here.
    pub ports: Vec<String>,
    /// Advertised routes: `PREFIX metric M (source, tracked PORT)`.
    pub advertised: Vec<String>,
    /// Learned routes: `PREFIX via NH port PORT`.
    pub learned: Vec<String>,
}

/// Dynamic routing in `ovn-route status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DynamicStatus {
    /// OVN does it natively: ovn-route stands aside.
    pub native: bool,
    /// Routers advertised here.
    pub routers: Vec<DynamicRouterEntry>,
    /// Invalid values and refused routers.
    pub problems: Vec<crate::status::RejectedEntry>,
}

/// Renders the dynamic-routing part of a status report.
pub fn render(d: &DynamicStatus) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if d.native {
        let _ = writeln!(
            s,
            "dynamic routing: OVN does it natively (SB Advertised_Route): ovn-route stands aside"
        );
        return s;
    }
    let _ = writeln!(s, "dynamic routing ({} router(s) here):", d.routers.len());
    for r in &d.routers {
        let _ = writeln!(
            s,
            "  {} table {} vrf {}{} ports {}",
            r.router,
            r.table,
            r.vrf,
            if r.maintain_vrf { " (maintained)" } else { "" },
            r.ports.join(",")
        );
        for a in &r.advertised {
            let _ = writeln!(s, "    advertised {a}");
        }
        for l in &r.learned {
            let _ = writeln!(s, "    learned {l}");
        }
    }
    for p in &d.problems {
        let _ = writeln!(s, "  refused {:?} in {}: {}", p.value, p.source, p.reason);
    }
    s
}

/// The dynamic-routing state between passes.
#[derive(Debug)]
pub struct DynamicRouting {
    rec: Reconciler,
    dry_run: bool,
    plan: DynamicPlan,
    /// Routes last applied per table.
    applied: BTreeMap<u32, DesiredRoutes>,
    /// Tables whose non-ovn routes changed since they were last dumped.
    dirty: BTreeSet<u32>,
    /// Learned routes per router, from the last dump of its table.
    learned: BTreeMap<Uuid, BTreeSet<Learned>>,
    /// Routers whose NB transaction committed: their `static_routes` as read then (skipped until
    /// the replica shows the change).
    inflight: BTreeMap<Uuid, Vec<Uuid>>,
    /// VRFs wanted at the last pass.
    vrfs: BTreeMap<String, u32>,
    native_logged: bool,
    /// FRR settings (`dynamic_routing_frr`); `None`: off (marked instances are removed).
    frr: Option<FrrSettings>,
    /// The AS of the FRR instances (`bgp_AS`).
    frr_asn: u32,
    /// The VRFs last handed to the FRR task.
    frr_noted: Option<BTreeSet<String>>,
    /// A database changed since the last plan: plan again (else the last plan stands).
    db_changed: bool,
    /// The last pass's plan differs from the one before.
    plan_changed: bool,
    /// L3 EVPN (`dynamic_routing_evpn`), see [`crate::evpn`].
    evpn: crate::evpn::Evpn,
    /// Learned routes gone from their table, by router: when they went (see [`LEARN_SETTLE`]).
    held: BTreeMap<Uuid, BTreeMap<Learned, Instant>>,
    /// FRR is stopped (its daemons' sockets went away).
    frr_down: bool,
    /// The last FRR stop or restart.
    frr_event: Option<Instant>,
}

/// A learned route gone from its table stays in the NB this long before it is removed: zebra,
/// when it stops, deletes its routes from the kernel before its sockets go away, so an FRR
/// restart first looks like a withdrawal.
pub const LEARN_SETTLE: Duration = Duration::from_secs(5);
/// After an FRR stop or restart, the routes gone around it stay this long (BGP's default
/// graceful-restart time), for FRR to learn them again; while FRR is stopped, they stay.
pub const LEARN_GRACE: Duration = Duration::from_secs(120);

/// What `[ovn_route] dynamic_routing_frr` configures.
#[derive(Debug, Clone)]
struct FrrSettings {
    router_id: Option<std::net::Ipv4Addr>,
    neighbors: Vec<ovn_route_config::FrrNeighbor>,
}

fn knet(p: &ipnet::IpNet) -> ovn_route_kernel::IpNet {
    ovn_route_kernel::IpNet::new(p.addr(), p.prefix_len()).expect("a valid prefix")
}

fn pnet(p: &ovn_route_kernel::IpNet) -> Option<ipnet::IpNet> {
    ipnet::IpNet::new(p.addr(), p.prefix_len()).ok()
}

fn tally(report: &mut ApplyReport, what: &str, r: Result<ReconcileStats, ovn_route_kernel::Error>) {
    let s = match r {
        Ok(s) => s,
        Err(ovn_route_kernel::Error::Apply { stats, errors }) => {
            report
                .errors
                .extend(errors.iter().take(5).map(|e| format!("{what}: {e}")));
            stats
        }
        Err(e) => {
            report.errors.push(format!("{what}: {e}"));
            return;
        }
    };
    for (op, n) in [
        ("add", s.added),
        ("replace", s.replaced),
        ("delete", s.deleted),
    ] {
        if n > 0 {
            *report.counts.entry(("dynamic route", op)).or_default() += n;
            report.changes.push(format!("{what}: {op} {n} route(s)"));
        }
    }
}

impl DynamicRouting {
    /// Opens its netlink connection (inside a tokio runtime).
    pub fn new(dry_run: bool) -> Result<Self, ovn_route_kernel::Error> {
        Ok(DynamicRouting {
            rec: Reconciler::new()?,
            dry_run,
            plan: DynamicPlan::default(),
            applied: BTreeMap::new(),
            dirty: BTreeSet::new(),
            learned: BTreeMap::new(),
            inflight: BTreeMap::new(),
            vrfs: BTreeMap::new(),
            native_logged: false,
            frr: None,
            frr_asn: 0,
            frr_noted: None,
            db_changed: true,
            plan_changed: true,
            evpn: crate::evpn::Evpn::default(),
            held: BTreeMap::new(),
            frr_down: false,
            frr_event: None,
        })
    }

    /// Takes the FRR settings of the configuration (`bgp_AS`, `bgp_router_id`,
    /// `dynamic_routing_frr`, `dynamic_routing_frr_neighbors`).
    pub fn with_frr(mut self, cfg: &ovn_route_config::Config) -> Self {
        self.frr_asn = cfg.default.bgp_as;
        self.frr = cfg.ovn_route.dynamic_routing_frr.then(|| FrrSettings {
            router_id: cfg.default.bgp_router_id,
            neighbors: cfg.ovn_route.dynamic_routing_frr_neighbors.clone(),
        });
        self.evpn = crate::evpn::Evpn::from_config(cfg);
        self
    }

    /// The FRR instances wanted now: one per VRF of the routers advertised here with
    /// `dynamic_routing_frr`, none without (which removes ovn-route's marked instances).
    pub fn frr_intent(&self) -> DynamicIntent {
        let Some(f) = &self.frr else {
            return DynamicIntent {
                asn: self.frr_asn,
                ..DynamicIntent::default()
            };
        };
        let vrfs = self
            .frr_vrfs()
            .into_iter()
            .map(|vrf| {
                let n = f
                    .neighbors
                    .iter()
                    .filter(|n| n.vrf.as_deref().is_none_or(|v| v == vrf))
                    .map(|n| Neighbor {
                        peer: match &n.peer {
                            ovn_route_config::FrrPeer::Address(a) => Peer::Address(*a),
                            ovn_route_config::FrrPeer::Interface(i) => Peer::Interface(i.clone()),
                        },
                        remote_as: n.remote_as.clone(),
                    })
                    .collect();
                (vrf, n)
            })
            .collect();
        DynamicIntent {
            asn: self.frr_asn,
            router_id: f.router_id,
            vrfs,
            evpn: self.evpn.frr_vnis(),
        }
    }

    fn frr_vrfs(&self) -> BTreeSet<String> {
        match (&self.frr, self.plan.native) {
            (Some(_), false) => self.plan.routers.values().map(|r| r.vrf.clone()).collect(),
            _ => BTreeSet::new(),
        }
    }

    /// True (once) when the VRFs for FRR changed since the last call: FRR is due.
    pub fn take_frr_change(&mut self) -> bool {
        let now = self.frr_vrfs();
        let evpn = self.evpn.take_frr_change();
        if self.frr_noted.as_ref() == Some(&now) && !evpn {
            return false;
        }
        self.frr_noted = Some(now);
        true
    }

    /// A database the plan reads (NB, SB, Open_vSwitch) changed or reconnected: the next pass
    /// plans again. Without it, a pass triggered by route events alone reuses the last plan.
    pub fn note_db_change(&mut self) {
        self.db_changed = true;
    }

    /// FRR stopped (`stopped`) or (re)started: learned routes gone from the tables around it
    /// are kept (see [`LEARN_GRACE`]).
    pub fn note_frr_event(&mut self, stopped: bool) {
        self.frr_down = stopped;
        self.frr_event = Some(Instant::now());
    }

    /// Whether a learned route gone from its table at `since` still stays in the NB.
    fn holds(&self, since: Instant, now: Instant) -> bool {
        now < since + LEARN_SETTLE
            || self.frr_down
            || self
                .frr_event
                .is_some_and(|t| t + LEARN_SETTLE >= since && now < t + LEARN_GRACE)
    }

    /// When a learned route held after leaving its table is due for removal: a pass is needed
    /// then. `None`: nothing held (or held until FRR comes back).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.frr_down {
            return None;
        }
        let now = Instant::now();
        self.held
            .values()
            .flat_map(|h| h.values())
            .map(|since| {
                let mut due = *since + LEARN_SETTLE;
                if let Some(t) = self.frr_event.filter(|t| *t + LEARN_SETTLE >= *since) {
                    due = due.max(t + LEARN_GRACE);
                }
                due.max(now)
            })
            .min()
    }

    /// An NB change: like [`DynamicRouting::note_db_change`], unless it carries nothing but
    /// learned routes (the echo of our own transactions), which the plan does not read.
    pub fn note_nb_change(&mut self, cs: &ovsdb::ChangeSet, nb: &ovsdb::Replica) {
        if !learn::only_learned_routes(cs, nb) {
            self.db_changed = true;
        }
    }

    /// The tables of the routers advertised here (to watch).
    pub fn tables(&self) -> BTreeSet<u32> {
        self.plan.tables()
    }

    /// A route event: true when a pass is needed (a route of another protocol changed in a
    /// router's table, or one of ours changed under us).
    pub fn on_route_event(&mut self, table: u32, ev: &RouteEvent) -> bool {
        if !self.plan.tables().contains(&table) {
            return false;
        }
        if ev.protocol == PROTOCOL {
            let wanted = self
                .applied
                .get(&table)
                .is_some_and(|d| d.get(&ev.key).is_some());
            let contradicts = match ev.change {
                ovn_route_kernel::RouteChange::Deleted => wanted,
                _ => !wanted,
            };
            if contradicts {
                // Repaired by a full reconcile of that table.
                self.applied.remove(&table);
            }
            return contradicts;
        }
        self.dirty.insert(table);
        true
    }

    /// One pass: plan from the replicas, then VRFs, advertised routes, learned routes. `full`
    /// observes every table instead of applying the difference from the last pass.
    pub async fn pass(
        &mut self,
        nb: &Session,
        sb: Option<&Session>,
        ovs: &Session,
        me: &ChassisIdentity,
        full: bool,
    ) -> ApplyReport {
        let mut report = ApplyReport::default();
        if !full && !self.db_changed && !self.plan.native {
            // Only route events since the last pass: the plan stands (a table whose routes of
            // ours changed under us is repaired all the same).
            self.plan_changed = false;
            self.advertise_pass(false, &mut report).await;
            self.learn_pass(nb, me, false, &BTreeSet::new(), &mut report)
                .await;
            return report;
        }
        self.db_changed = false;
        let mapping = ovs.read(|o| {
            OpenVSwitch::all(o)
                .next()
                .and_then(|r| r.external_ids().get(OVS_PORT_MAPPING).map(str::to_string))
        });
        let t0 = std::time::Instant::now();
        let plan = nb.read(|nbr| match sb {
            Some(sb) => sb.read(|sbr| plan_dynamic(nbr, Some(sbr), me, mapping.as_deref())),
            None => plan_dynamic(nbr, None, me, mapping.as_deref()),
        });
        if plan.native {
            if !self.native_logged {
                tracing::warn!("the Southbound has Advertised_Route: OVN does dynamic routing itself; ovn-route stands aside");
                self.native_logged = true;
            }
            self.plan = plan;
            return report;
        }
        for p in plan
            .problems
            .iter()
            .filter(|p| full || !self.plan.problems.contains(p))
        {
            tracing::warn!(value = %p.value, source = %p.source, reason = %p.reason, "dynamic routing");
        }
        let new_tables: BTreeSet<u32> = plan
            .tables()
            .difference(&self.plan.tables())
            .copied()
            .collect();
        self.plan_changed = plan != self.plan;
        self.plan = plan;
        let t_plan = t0.elapsed();
        self.vrfs_pass(full, &mut report).await;
        (self.evpn)
            .pass(&self.rec, &self.plan, nb, self.dry_run, full, &mut report)
            .await;
        let t1 = std::time::Instant::now();
        self.advertise_pass(full, &mut report).await;
        let t2 = std::time::Instant::now();
        self.learn_pass(nb, me, full, &new_tables, &mut report)
            .await;
        tracing::debug!(
            plan_ms = t_plan.as_secs_f64() * 1e3,
            advertise_ms = (t2 - t1).as_secs_f64() * 1e3,
            learn_ms = t2.elapsed().as_secs_f64() * 1e3,
            plan_changed = self.plan_changed,
            "dynamic routing pass"
        );
        report
    }

    async fn vrfs_pass(&mut self, full: bool, report: &mut ApplyReport) {
        let wanted: BTreeMap<String, u32> = self
            .plan
            .routers
            .values()
            .filter(|r| r.maintain_vrf)
            .map(|r| (r.vrf.clone(), r.table))
            .collect();
        if !full && wanted == self.vrfs {
            return;
        }
        for (name, table) in &wanted {
            let existed = match self.rec.link(name).await {
                Ok(l) => l.is_some(),
                Err(e) => {
                    report.errors.push(format!("VRF {name}: {e}"));
                    continue;
                }
            };
            if self.dry_run {
                if !existed {
                    report
                        .changes
                        .push(format!("VRF {name}: create (table {table})"));
                }
                continue;
            }
            match self.rec.ensure_vrf(name, *table).await {
                Ok(_) if existed => {}
                Ok(_) => {
                    if let Ok(Some(l)) = self.rec.link(name).await {
                        if let Err(e) = self.rec.set_alias(&l, VRF_MARK).await {
                            report.errors.push(format!("VRF {name}: {e}"));
                        }
                    }
                    *report.counts.entry(("vrf", "add")).or_default() += 1;
                    report
                        .changes
                        .push(format!("VRF {name}: created (table {table})"));
                }
                Err(e) => report
                    .errors
                    .push(format!("VRF {name} (table {table}): {e}")),
            }
        }
        match self.rec.all_links().await {
            Ok(links) => {
                for l in links.iter().filter(|l| {
                    l.alias.as_deref() == Some(VRF_MARK)
                        && l.kind.as_deref() == Some("vrf")
                        && !wanted.contains_key(&l.name)
                }) {
                    if self.dry_run {
                        report.changes.push(format!("VRF {}: delete", l.name));
                        continue;
                    }
                    match self.rec.delete_marked_link(&l.name, VRF_MARK).await {
                        Ok(true) => {
                            *report.counts.entry(("vrf", "delete")).or_default() += 1;
                            report.changes.push(format!("VRF {}: deleted", l.name));
                        }
                        Ok(false) => {}
                        Err(e) => report.errors.push(format!("VRF {}: {e}", l.name)),
                    }
                }
            }
            Err(e) => report.errors.push(format!("links: {e}")),
        }
        self.vrfs = wanted;
    }

    /// The routes wanted per table (two routers may share one).
    fn desired_tables(&self) -> BTreeMap<u32, DesiredRoutes> {
        let mut out: BTreeMap<u32, DesiredRoutes> = BTreeMap::new();
        for r in self.plan.routers.values() {
            let d = out
                .entry(r.table)
                .or_insert_with(|| DesiredRoutes::new(r.table, PROTOCOL));
            for a in r.routes.values() {
                let p = knet(&a.prefix);
                let route = match a.nexthop {
                    Some(nh) => Route::via(p, nh, None),
                    None => Route::blackhole(p),
                }
                .with_metric(a.metric);
                if d.get(&route.key()).is_none() {
                    d.insert(route);
                }
            }
        }
        out
    }

    async fn advertise_pass(&mut self, full: bool, report: &mut ApplyReport) {
        // Nothing planned changed and every table is as last applied: nothing to do.
        if !full
            && !self.plan_changed
            && self.applied.len() == self.plan.tables().len()
            && self
                .plan
                .tables()
                .iter()
                .all(|t| self.applied.contains_key(t))
        {
            return;
        }
        let desired = self.desired_tables();
        let gone: Vec<u32> = self
            .applied
            .keys()
            .filter(|t| !desired.contains_key(t))
            .copied()
            .collect();
        if self.dry_run {
            for t in gone {
                let empty = DesiredRoutes::new(t, PROTOCOL);
                self.apply_table(&empty, true, None, report).await;
                self.applied.remove(&t);
            }
            for d in desired.values() {
                self.apply_table(d, full, None, report).await;
            }
            if full {
                self.applied.retain(|t, _| desired.contains_key(t));
            }
            return;
        }
        // The tables to observe, in one dump (one per table is quadratic with many routers).
        let observe: BTreeSet<u32> = gone
            .iter()
            .copied()
            .chain(
                desired
                    .keys()
                    .filter(|t| full || !self.applied.contains_key(t))
                    .copied(),
            )
            .collect();
        let mut observed = if observe.len() == 1 {
            let t = *observe.iter().next().expect("one table");
            match self.rec.observe_table(t).await {
                Ok(o) => BTreeMap::from([(t, o)]),
                Err(e) => {
                    report.errors.push(format!("table {t}: {e}"));
                    return;
                }
            }
        } else if observe.is_empty() {
            BTreeMap::new()
        } else {
            match self.rec.observe_tables(&observe).await {
                Ok(o) => o,
                Err(e) => {
                    report.errors.push(format!("dynamic-routing tables: {e}"));
                    return;
                }
            }
        };
        // Every table's difference, then all of them applied at once (one stream of requests
        // with the reconciler's concurrency, not one table after another).
        let mut jobs: Vec<(
            DesiredRoutes,
            ovn_route_kernel::RouteDiff,
            BTreeSet<RouteKey>,
        )> = vec![];
        let tables = gone
            .iter()
            .map(|t| DesiredRoutes::new(*t, PROTOCOL))
            .chain(desired.into_values());
        for d in tables {
            let (diff, foreign) = if observe.contains(&d.table) {
                let mut ours = Vec::new();
                let mut foreign = BTreeSet::new();
                for o in observed.remove(&d.table).unwrap_or_default() {
                    if o.protocol != d.protocol {
                        foreign.insert(o.key);
                        continue;
                    }
                    ours.push(o.route.unwrap_or_else(|| {
                        Route::blackhole(o.key.prefix).with_metric(o.key.metric)
                    }));
                }
                (ovn_route_kernel::diff_owned(&d, ours), foreign)
            } else {
                match self.applied.get(&d.table) {
                    Some(prev) => (d.diff_from(prev), BTreeSet::new()),
                    None => continue,
                }
            };
            if diff.is_empty() {
                self.applied.insert(d.table, d);
                continue;
            }
            jobs.push((d, diff, foreign));
        }
        if !jobs.is_empty() {
            let diffs: Vec<TableDiff<'_>> = jobs
                .iter()
                .map(|(d, diff, foreign)| TableDiff {
                    table: d.table,
                    protocol: PROTOCOL,
                    plan: diff,
                    foreign,
                })
                .collect();
            match self.rec.apply_many(&diffs).await {
                Ok(results) => {
                    drop(diffs);
                    for ((d, _, _), r) in jobs.into_iter().zip(results) {
                        let ok = r.is_ok();
                        tally(report, &format!("table {}", d.table), r);
                        if ok {
                            self.applied.insert(d.table, d);
                        } else {
                            self.applied.remove(&d.table);
                        }
                    }
                }
                Err(e) => {
                    drop(diffs);
                    report.errors.push(format!("dynamic-routing tables: {e}"));
                    for (d, _, _) in jobs {
                        self.applied.remove(&d.table);
                    }
                }
            }
        }
        let wanted = self.plan.tables();
        for t in gone {
            self.applied.remove(&t);
        }
        if full {
            self.applied.retain(|t, _| wanted.contains(t));
        }
    }

    /// Observe (or take `observed`), diff and apply one table, like [`Reconciler::reconcile`].
    async fn reconcile_observed(
        &self,
        d: &DesiredRoutes,
        observed: Vec<ovn_route_kernel::ObservedRoute>,
    ) -> Result<ReconcileStats, ovn_route_kernel::Error> {
        let mut ours = Vec::new();
        let mut foreign = BTreeSet::new();
        for o in observed {
            if o.protocol != d.protocol {
                foreign.insert(o.key);
                continue;
            }
            ours.push(
                o.route
                    .unwrap_or_else(|| Route::blackhole(o.key.prefix).with_metric(o.key.metric)),
            );
        }
        let plan = ovn_route_kernel::diff_owned(d, ours);
        if plan.is_empty() {
            return Ok(ReconcileStats {
                unchanged: plan.unchanged,
                ..Default::default()
            });
        }
        self.rec.apply(d.table, d.protocol, &plan, &foreign).await
    }

    async fn apply_table(
        &mut self,
        d: &DesiredRoutes,
        full: bool,
        observed: Option<Vec<ovn_route_kernel::ObservedRoute>>,
        report: &mut ApplyReport,
    ) {
        let what = format!("table {}", d.table);
        let prev = if full {
            None
        } else {
            self.applied.get(&d.table)
        };
        let result = match prev {
            Some(prev) => {
                let diff = d.diff_from(prev);
                if diff.is_empty() {
                    return;
                }
                if self.dry_run {
                    report.changes.push(format!(
                        "{what}: +{} ~{} -{} route(s)",
                        diff.to_add.len(),
                        diff.to_replace.len(),
                        diff.to_delete.len()
                    ));
                    return;
                }
                self.rec
                    .apply(d.table, PROTOCOL, &diff, &BTreeSet::new())
                    .await
            }
            None if self.dry_run => {
                match self.rec.observe(d.table, PROTOCOL).await {
                    Ok(have) => {
                        let diff = ovn_route_kernel::diff_owned(d, have);
                        if !diff.is_empty() {
                            report.changes.push(format!(
                                "{what}: +{} ~{} -{} route(s)",
                                diff.to_add.len(),
                                diff.to_replace.len(),
                                diff.to_delete.len()
                            ));
                        }
                    }
                    Err(e) => report.errors.push(format!("{what}: {e}")),
                }
                return;
            }
            None => match observed {
                Some(o) => self.reconcile_observed(d, o).await,
                None => self.rec.reconcile(d).await,
            },
        };
        let ok = result.is_ok();
        tally(report, &what, result);
        if ok {
            self.applied.insert(d.table, d.clone());
        } else {
            self.applied.remove(&d.table);
        }
    }

    async fn learn_pass(
        &mut self,
        nb: &Session,
        me: &ChassisIdentity,
        full: bool,
        new_tables: &BTreeSet<u32>,
        report: &mut ApplyReport,
    ) {
        self.learned
            .retain(|r, _| self.plan.routers.contains_key(r));
        self.held
            .retain(|r, _| self.plan.routers.get(r).is_some_and(|p| p.learning()));
        let now = Instant::now();
        let routers: Vec<_> = self.plan.routers.values().cloned().collect();
        let mut dumps: BTreeMap<u32, Vec<KernelRoute>> = BTreeMap::new();
        let mut due_routers = vec![];
        for r in &routers {
            if !r.learning() {
                self.learned.remove(&r.uuid);
                continue;
            }
            let due = full
                || self.dirty.contains(&r.table)
                || new_tables.contains(&r.table)
                || !self.learned.contains_key(&r.uuid);
            if due {
                due_routers.push(r);
            }
        }
        // One dump for every table due (one per table is quadratic with many routers).
        let t0 = std::time::Instant::now();
        let due_tables: BTreeSet<u32> = due_routers.iter().map(|r| r.table).collect();
        if !due_tables.is_empty() {
            match self.rec.observe_nexthops_tables(&due_tables).await {
                Ok(all) => {
                    for (table, routes) in all {
                        let k = routes
                            .into_iter()
                            .filter_map(|t| {
                                Some(KernelRoute {
                                    prefix: pnet(&t.prefix)?,
                                    protocol: t.protocol,
                                    nexthops: t
                                        .nexthops
                                        .into_iter()
                                        .map(|n| NextHop {
                                            gateway: n.gateway,
                                            dev: n.dev,
                                        })
                                        .collect(),
                                })
                            })
                            .collect();
                        dumps.insert(table, k);
                    }
                }
                Err(e) => report.errors.push(format!("dynamic-routing tables: {e}")),
            }
        }
        for r in due_routers {
            let Some(dump) = dumps.get(&r.table) else {
                continue;
            };
            let fresh = desired_learned(r, dump);
            if let Some(prev) = self.learned.get(&r.uuid) {
                let gone: Vec<Learned> = prev.difference(&fresh).cloned().collect();
                if !gone.is_empty() {
                    let h = self.held.entry(r.uuid).or_default();
                    for l in gone {
                        h.entry(l).or_insert(now);
                    }
                }
            }
            if let Some(h) = self.held.get_mut(&r.uuid) {
                h.retain(|l, _| !fresh.contains(l));
            }
            self.learned.insert(r.uuid, fresh);
        }
        self.dirty.clear();
        // Routes gone from a table stay in the NB while held (an FRR restart, see
        // `LEARN_SETTLE`), then go.
        let mut held = std::mem::take(&mut self.held);
        for h in held.values_mut() {
            h.retain(|_, since| self.holds(*since, now));
        }
        held.retain(|_, h| !h.is_empty());
        self.held = held;
        let merged;
        let desired = if self.held.is_empty() {
            &self.learned
        } else {
            let mut m = self.learned.clone();
            for (r, h) in &self.held {
                m.entry(*r).or_default().extend(h.keys().cloned());
            }
            merged = m;
            &merged
        };
        let t_dump = t0.elapsed();
        let changes = nb.read(|n| learn::nb_changes(n, &self.plan, &me.system_id, desired));
        tracing::debug!(
            tables = due_tables.len(),
            dump_ms = t_dump.as_secs_f64() * 1e3,
            diff_ms = (t0.elapsed() - t_dump).as_secs_f64() * 1e3,
            "learn: tables read"
        );
        // A router whose `static_routes` moved on since our last commit is read afresh.
        self.inflight.retain(|r, sr| {
            changes
                .iter()
                .any(|c| c.router == *r && c.static_routes == *sr)
        });
        let mut pending = vec![];
        for ch in changes {
            for s in &ch.shadowed {
                tracing::debug!(router = %ch.name, prefix = %s.prefix, "learned route not written: the router has a static route for the prefix");
            }
            if ch.delete.is_empty() && ch.add.is_empty() {
                continue;
            }
            if self.inflight.get(&ch.router) == Some(&ch.static_routes) {
                // Our last transaction on it is not in the replica yet.
                continue;
            }
            let what = format!(
                "router {}: learned routes +{} -{}",
                ch.name,
                ch.add.len(),
                ch.delete.len()
            );
            if self.dry_run {
                report.changes.push(what);
                continue;
            }
            pending.push((ch, what));
        }
        if pending.is_empty() {
            return;
        }
        // One transaction for every router (each router's part waits on its own
        // `static_routes` as read): one commit and one update instead of one per router.
        let mut ops = vec![];
        for (i, (ch, _)) in pending.iter().enumerate() {
            ops.extend(operations_named(ch, &me.system_id, &format!("r{i}_")));
        }
        let t_txn = std::time::Instant::now();
        let n_ops = ops.len();
        let result = nb.transact(ops).await;
        tracing::debug!(
            ops = n_ops,
            txn_ms = t_txn.elapsed().as_secs_f64() * 1e3,
            "learn: NB transaction"
        );
        match result {
            Ok(_) => {
                for (ch, what) in pending {
                    self.inflight.insert(ch.router, ch.static_routes.clone());
                    *report.counts.entry(("learned route", "add")).or_default() += ch.add.len();
                    *report
                        .counts
                        .entry(("learned route", "delete"))
                        .or_default() += ch.delete.len();
                    report.counts.retain(|_, n| *n > 0);
                    report.changes.push(what);
                }
            }
            Err(e) => {
                // A router changed under us (its `wait` failed): read again and retry.
                self.inflight.clear();
                report.errors.push(format!(
                    "learned routes of {} router(s): {e}",
                    pending.len()
                ));
            }
        }
    }

    /// The status of the routers advertised here.
    pub fn status(&self) -> DynamicStatus {
        let rej = |r: &Rejected| crate::status::RejectedEntry {
            value: r.value.clone(),
            source: r.source.clone(),
            reason: r.reason.clone(),
        };
        DynamicStatus {
            native: self.plan.native,
            routers: self
                .plan
                .routers
                .values()
                .map(|r| DynamicRouterEntry {
                    router: r.name.clone(),
                    table: r.table,
                    vrf: r.vrf.clone(),
                    maintain_vrf: r.maintain_vrf,
                    ports: r.bound_ports.iter().map(|p| p.name.clone()).collect(),
                    advertised: r
                        .routes
                        .values()
                        .map(|a| {
                            format!(
                                "{} metric {} ({}{}){}",
                                a.prefix,
                                a.metric,
                                a.source,
                                a.tracked
                                    .as_deref()
                                    .map(|t| format!(", tracked {t}"))
                                    .unwrap_or_default(),
                                a.nexthop.map(|n| format!(" via {n}")).unwrap_or_default()
                            )
                        })
                        .collect(),
                    learned: self
                        .learned
                        .get(&r.uuid)
                        .into_iter()
                        .flatten()
                        .map(|l| format!("{} via {} port {}", l.prefix, l.nexthop, l.output_port))
                        .collect(),
                })
                .collect(),
            problems: (self.plan.problems.iter())
                .chain(self.evpn.problems())
                .map(rej)
                .collect(),
        }
    }
}

/// The transaction for one router: a `wait` on its `static_routes` as read, the inserts of the
/// new routes and the mutation of `static_routes`.
pub fn operations(ch: &RouterChange, chassis: &str) -> Vec<Operation> {
    operations_named(ch, chassis, "")
}

/// [`operations`] with its row names prefixed by `prefix` (several routers in one transaction).
pub fn operations_named(ch: &RouterChange, chassis: &str, prefix: &str) -> Vec<Operation> {
    let cond = vec![Condition::uuid(ch.router)];
    let mut ops = vec![Operation::Wait {
        table: "Logical_Router".into(),
        conditions: cond.clone(),
        columns: vec!["static_routes".into()],
        rows: vec![RowData::from([(
            "static_routes".to_string(),
            Datum::set(ch.static_routes.iter().map(|u| Atom::Uuid(*u))),
        )])],
        until: WaitUntil::Equal,
        timeout_ms: Some(0),
    }];
    let mut named = vec![];
    for (i, l) in ch.add.iter().enumerate() {
        let name = format!("{prefix}learned{i}");
        ops.push(Operation::Insert {
            table: "Logical_Router_Static_Route".into(),
            row: RowData::from([
                (
                    "ip_prefix".to_string(),
                    Datum::from(Atom::string(l.prefix.to_string())),
                ),
                (
                    "nexthop".to_string(),
                    Datum::from(Atom::string(l.nexthop.to_string())),
                ),
                (
                    "output_port".to_string(),
                    Datum::from(Atom::string(&l.output_port)),
                ),
                (
                    "external_ids".to_string(),
                    Datum::map([
                        (Atom::string(learn::OWNER_KEY), Atom::string(learn::OWNER)),
                        (Atom::string(learn::CHASSIS_KEY), Atom::string(chassis)),
                    ]),
                ),
            ]),
            uuid_name: Some(name.clone()),
            uuid: None,
        });
        named.push(Atom::NamedUuid(name.into()));
    }
    if !ch.delete.is_empty() {
        ops.push(Operation::Mutate {
            table: "Logical_Router".into(),
            conditions: cond.clone(),
            mutations: vec![Mutation::delete(
                "static_routes",
                Datum::set(ch.delete.iter().map(|u| Atom::Uuid(*u))),
            )],
        });
    }
    if !named.is_empty() {
        ops.push(Operation::Mutate {
            table: "Logical_Router".into(),
            conditions: cond,
            mutations: vec![Mutation::insert("static_routes", Datum::set(named))],
        });
    }
    ops.push(Operation::Comment(format!(
        "ovn-route: routes learned on {chassis} for router {}",
        ch.name
    )));
    ops
}

/// Adds a dynamic-routing pass's report to the pass's.
pub fn merge(report: &mut ApplyReport, r: ApplyReport) {
    report.changes.extend(r.changes);
    report.errors.extend(r.errors);
    for (k, v) in r.counts {
        *report.counts.entry(k).or_default() += v;
    }
}

/// The agent's NB session: the tables of the exposure planner and the host routes, plus the
/// dynamic-routing planner's when `dynamic` is on.
pub fn nb_session(
    dynamic: bool,
    remotes: Vec<ovsdb::Remote>,
    ssl: Option<ovsdb::SslConfig>,
    host_routes: bool,
) -> Session {
    if !dynamic {
        return crate::host_routes::nb_session(remotes, ssl, host_routes);
    }
    let mut cfg = ovsdb::SessionConfig::new(remotes, "OVN_Northbound");
    cfg.tables = ovn_route_plan::dynamic::merge_selects(
        crate::host_routes::agent_nb_tables(host_routes),
        ovn_route_plan::dynamic::nb_tables(),
    );
    cfg.connect.ssl = ssl;
    Session::start(cfg)
}

/// The agent's SB session: the exposure planner's tables, plus the dynamic-routing planner's
/// when `dynamic` is on.
pub fn sb_session(
    dynamic: bool,
    remotes: Vec<ovsdb::Remote>,
    db: &str,
    ssl: Option<ovsdb::SslConfig>,
) -> Session {
    let mut cfg = ovsdb::SessionConfig::new(remotes, db);
    cfg.tables = ovn_route_plan::exposure::sb_tables();
    if dynamic {
        cfg.tables = ovn_route_plan::dynamic::merge_selects(
            cfg.tables,
            ovn_route_plan::dynamic::sb_tables(),
        );
    }
    cfg.connect.ssl = ssl;
    Session::start(cfg)
}

/// Applies the dynamic-routing FRR instances (in the FRR task, after the exposure block): `Ok`
/// with whether something changed, `Err` naming what FRR refused.
pub fn frr_apply_blocking(
    vtysh: &ovn_route_frr::Vtysh,
    intent: &DynamicIntent,
) -> Result<bool, String> {
    match vtysh.apply_dynamic(intent) {
        Ok(o) => {
            if !o.changes.is_empty() {
                tracing::info!(changes = ?o.changes, "FRR dynamic-routing instances applied");
            }
            Ok(!o.changes.is_empty())
        }
        Err(e) => {
            tracing::warn!(error = %e, "FRR dynamic-routing instances not applied");
            Err(format!("dynamic routing: {e}"))
        }
    }
}
