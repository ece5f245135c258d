//! The reconcilers' side of the agent: apply a [`HostPlan`] to the kernel, OVS and FRR.
//!
//! Two ways, both level-triggered and touching only what carries our marks:
//! * full: observe each object set (routes and rules of our tables, neighbours, addresses,
//!   flows), diff against the plan and apply the difference; used at start (adopting what a
//!   previous run left: nothing is withdrawn and re-added), periodically, and after someone else
//!   changed our objects;
//! * incremental: apply the difference between the previous plan and the new one, without
//!   observing (the fast path for an OVN change; a failure falls back to a full pass).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use ovn_route_config::VrfMode;
use ovn_route_kernel::{
    diff, diff_rules, DesiredAddresses, DesiredNeighbours, DesiredRoutes, DesiredRules, Neighbour,
    ReconcileStats, Reconciler,
};
use ovn_route_ovs::{DesiredFlows, Flow, Ofctl};

use crate::host::{BridgePlan, HostPlan, VlanPlan};

/// The alias the agent gives the devices it creates (VLAN devices on provider bridges): its
/// ownership mark, the only devices it ever deletes.
pub const LINK_MARK: &str = "ovn-route";

/// The neighbours wanted on one device.
#[derive(Clone, Copy, PartialEq, Eq)]
struct DevNeighbours<'a> {
    neighbours: &'a BTreeMap<std::net::IpAddr, [u8; 6]>,
    proxy_ndp: &'a BTreeSet<std::net::IpAddr>,
}

impl<'a> DevNeighbours<'a> {
    fn of_bridge(b: &'a BridgePlan) -> Self {
        DevNeighbours {
            neighbours: &b.neighbours,
            proxy_ndp: &b.proxy_ndp,
        }
    }
    fn of_vlan(v: &'a VlanPlan) -> Self {
        DevNeighbours {
            neighbours: &v.neighbours,
            proxy_ndp: &v.proxy_ndp,
        }
    }
}

static NO_NEIGHBOURS: BTreeMap<std::net::IpAddr, [u8; 6]> = BTreeMap::new();
static NO_PROXIES: BTreeSet<std::net::IpAddr> = BTreeSet::new();
const NONE_WANTED: DevNeighbours<'static> = DevNeighbours {
    neighbours: &NO_NEIGHBOURS,
    proxy_ndp: &NO_PROXIES,
};

/// The errors kept per reconcile of one object set (the rest are counted).
const MAX_ERRORS_EACH: usize = 5;

/// What a pass did.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// Changes made (or, in dry-run, that would be made), one line each.
    pub changes: Vec<String>,
    /// Errors, each naming the object.
    pub errors: Vec<String>,
    /// Counts for metrics: (object, op) -> n.
    pub counts: BTreeMap<(&'static str, &'static str), usize>,
}

impl ApplyReport {
    fn stats(&mut self, object: &'static str, what: &str, s: &ReconcileStats) {
        for (op, n) in [
            ("add", s.added),
            ("replace", s.replaced),
            ("delete", s.deleted),
        ] {
            if n > 0 {
                *self.counts.entry((object, op)).or_default() += n;
                self.changes.push(format!("{what}: {op} {n} {object}(s)"));
            }
        }
    }

    /// Records the outcome of one reconcile of `object`s (`what` names them in messages); an
    /// apply that partly failed counts what it did and keeps every error.
    fn record(
        &mut self,
        object: &'static str,
        what: &str,
        result: Result<ReconcileStats, ovn_route_kernel::Error>,
    ) {
        match result {
            Ok(s) => self.stats(object, what, &s),
            Err(ovn_route_kernel::Error::Apply { stats, errors }) => {
                self.stats(object, what, &stats);
                // One missing device fails every route through it: a few examples and a count
                // say as much as 50,000 lines.
                self.errors.extend(
                    errors
                        .iter()
                        .take(MAX_ERRORS_EACH)
                        .map(|e| format!("{what}: {e}")),
                );
                if errors.len() > MAX_ERRORS_EACH {
                    self.errors.push(format!(
                        "{what}: {} more {object} errors (the first {MAX_ERRORS_EACH} are above)",
                        errors.len() - MAX_ERRORS_EACH
                    ));
                }
            }
            Err(e) => self.errors.push(format!("{what}: {e}")),
        }
    }

    /// Number of changes.
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }
}

/// Kernel-side settings.
#[derive(Debug, Clone)]
pub struct KernelSettings {
    /// `vrf_mode`.
    pub vrf_mode: VrfMode,
    /// `bgp_vrf`.
    pub vrf: String,
    /// `bgp_nic`.
    pub nic: String,
    /// `bgp_vrf_table_id`.
    pub vrf_table: u32,
    /// `route_protocol` (routes and neighbours).
    pub protocol: u8,
    /// Do nothing, describe.
    pub dry_run: bool,
}

/// Applies host plans to the kernel.
pub struct KernelApplier {
    rec: Reconciler,
    s: KernelSettings,
}

fn describe_route_diff(table: u32, d: &ovn_route_kernel::RouteDiff, out: &mut Vec<String>) {
    for r in &d.to_delete {
        out.push(format!("table {table}: delete route {r}"));
    }
    for r in &d.to_replace {
        out.push(format!("table {table}: replace route {r}"));
    }
    for r in &d.to_add {
        out.push(format!("table {table}: add route {r}"));
    }
}

impl KernelApplier {
    /// A new applier (opens a netlink socket: call inside a tokio runtime).
    pub fn new(s: KernelSettings) -> Result<Self, ovn_route_kernel::Error> {
        Ok(KernelApplier {
            rec: Reconciler::new()?,
            s,
        })
    }

    /// The underlying reconciler.
    pub fn reconciler(&self) -> &Reconciler {
        &self.rec
    }

    /// Makes sure the VRF and `bgp_nic` exist (`vrf_mode = create`), or are there (`existing`).
    pub async fn ensure_devices(&self, report: &mut ApplyReport) -> Result<(), String> {
        match self.s.vrf_mode {
            VrfMode::None => Ok(()),
            VrfMode::Existing => {
                for (name, what) in [(&self.s.vrf, "bgp_vrf"), (&self.s.nic, "bgp_nic")] {
                    match self.rec.link(name).await {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            return Err(format!(
                            "vrf_mode = existing but {what} {name:?} does not exist: create it \
                             (systemd-networkd, ifupdown) or set vrf_mode = create"
                        ))
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(())
            }
            VrfMode::Create => {
                if self.s.dry_run {
                    for name in [&self.s.vrf, &self.s.nic] {
                        if matches!(self.rec.link(name).await, Ok(None)) {
                            report.changes.push(format!("create device {name}"));
                        }
                    }
                    return Ok(());
                }
                if self
                    .rec
                    .ensure_vrf(&self.s.vrf, self.s.vrf_table)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    report.changes.push(format!(
                        "VRF {} (table {}) created or set up",
                        self.s.vrf, self.s.vrf_table
                    ));
                }
                if self
                    .rec
                    .ensure_dummy(&self.s.nic, Some(&self.s.vrf))
                    .await
                    .map_err(|e| e.to_string())?
                {
                    report.changes.push(format!(
                        "{} created or set up in {}",
                        self.s.nic, self.s.vrf
                    ));
                }
                Ok(())
            }
        }
    }

    async fn routes(
        &self,
        what: &str,
        prev: Option<&DesiredRoutes>,
        next: &DesiredRoutes,
        report: &mut ApplyReport,
    ) {
        let result = match prev {
            Some(prev) if !self.s.dry_run => {
                let d = next.diff_from(prev);
                if d.is_empty() {
                    return;
                }
                self.rec
                    .apply(next.table, next.protocol, &d, &BTreeSet::new())
                    .await
            }
            _ if self.s.dry_run => {
                match self.rec.observe(next.table, next.protocol).await {
                    Ok(obs) => {
                        describe_route_diff(next.table, &diff(next, &obs), &mut report.changes)
                    }
                    Err(e) => report.errors.push(format!("{what}: {e}")),
                }
                return;
            }
            _ => self.rec.reconcile(next).await,
        };
        report.record("route", what, result);
    }

    async fn rules(
        &self,
        what: &str,
        prev: Option<&DesiredRules>,
        next: &DesiredRules,
        report: &mut ApplyReport,
    ) {
        let result = match prev {
            Some(prev) if !self.s.dry_run => {
                if prev == next {
                    return;
                }
                let old: Vec<_> = prev.rules().collect();
                let d = diff_rules(next, &old);
                self.rec.apply_rules(&d).await
            }
            _ if self.s.dry_run => {
                match self.rec.observe_rules(next.table, next.priority).await {
                    Ok(obs) => {
                        let d = diff_rules(next, &obs);
                        for r in &d.to_delete {
                            report.changes.push(format!("delete rule {r}"));
                        }
                        for r in &d.to_add {
                            report.changes.push(format!("add rule {r}"));
                        }
                    }
                    Err(e) => report.errors.push(format!("{what}: {e}")),
                }
                return;
            }
            _ => self.rec.reconcile_rules(next).await,
        };
        report.record("rule", what, result);
    }

    /// Applies `next`: incrementally against `prev` when given, else fully (observe and diff).
    pub async fn apply(&self, prev: Option<&HostPlan>, next: &HostPlan) -> ApplyReport {
        let mut report = ApplyReport::default();
        if prev.is_none() {
            if let Err(e) = self.ensure_devices(&mut report).await {
                report.errors.push(e);
            }
        }
        // Bridges first: the wiring is in place before FRR advertises.
        for (name, bp) in &next.bridges {
            let pb = prev.and_then(|p| p.bridges.get(name));
            self.bridge(name, pb, bp, &mut report).await;
        }
        let what = format!("exposure table {}", next.advertised.routes.table);
        self.routes(
            &what,
            prev.map(|p| &p.advertised.routes),
            &next.advertised.routes,
            &mut report,
        )
        .await;
        self.addresses(prev, next, &mut report).await;
        report
    }

    async fn bridge(
        &self,
        name: &str,
        prev: Option<&BridgePlan>,
        next: &BridgePlan,
        report: &mut ApplyReport,
    ) {
        let what = format!("{name} table {}", next.routes.table);
        // VLAN devices first: routes and neighbours use them.
        for (id, v) in &next.vlans {
            if prev.is_none_or(|p| !p.vlans.contains_key(id)) {
                self.vlan(name, *id, v, report).await;
            }
        }
        if next.in_use && prev.is_none_or(|p| !p.in_use) {
            self.sysctls(name, report);
        }
        // Neighbours before routes through them.
        let skip = !next.in_use && prev.is_some_and(|p| !p.in_use);
        if !skip {
            let p = prev.map(DevNeighbours::of_bridge);
            self.neighbours(name, p, DevNeighbours::of_bridge(next), report)
                .await;
        }
        for v in next.vlans.values() {
            let p = prev.map(|p| {
                p.vlans
                    .values()
                    .find(|pv| pv.name == v.name)
                    .map_or(NONE_WANTED, DevNeighbours::of_vlan)
            });
            self.neighbours(&v.name, p, DevNeighbours::of_vlan(v), report)
                .await;
        }
        self.routes(&what, prev.map(|p| &p.routes), &next.routes, report)
            .await;
        self.rules(&what, prev.map(|p| &p.rules), &next.rules, report)
            .await;
        self.stale_vlans(name, prev, next, report).await;
    }

    /// Makes sure the VLAN device of a tagged provider network exists (created with our mark when
    /// missing) with proxy ARP/NDP on.
    async fn vlan(&self, bridge: &str, id: u16, v: &VlanPlan, report: &mut ApplyReport) {
        if self.s.dry_run {
            match self.rec.link(&v.name).await {
                Ok(Some(_)) => {}
                Ok(None) => report.changes.push(format!(
                    "create VLAN device {} (VLAN {id} on {bridge})",
                    v.name
                )),
                Err(e) => report.errors.push(format!("VLAN device {}: {e}", v.name)),
            }
            return;
        }
        match self
            .rec
            .ensure_vlan(bridge, id, Some(&v.name), Some(LINK_MARK))
            .await
        {
            Ok(true) => {
                *report.counts.entry(("link", "add")).or_default() += 1;
                report.changes.push(format!(
                    "VLAN device {} (VLAN {id} on {bridge}) ready",
                    v.name
                ));
            }
            Ok(false) => {}
            Err(e) => {
                report.errors.push(format!("VLAN device {}: {e}", v.name));
                return;
            }
        }
        self.sysctls(&v.name, report);
    }

    /// VLAN devices no longer wanted on `bridge`: our neighbours on them go, and the devices we
    /// created are deleted (ones someone else made stay). A full pass looks at every VLAN device
    /// on the bridge; an incremental one at those the previous plan had.
    async fn stale_vlans(
        &self,
        bridge: &str,
        prev: Option<&BridgePlan>,
        next: &BridgePlan,
        report: &mut ApplyReport,
    ) {
        let wanted = |name: &str| next.vlans.values().any(|v| v.name == name);
        let stale: Vec<(String, bool)> = match prev {
            Some(p) => p
                .vlans
                .values()
                .filter(|v| !wanted(&v.name))
                .map(|v| (v.name.clone(), true))
                .collect(),
            None => match self.rec.vlans_on(bridge).await {
                Ok(links) => links
                    .into_iter()
                    .filter(|l| !wanted(&l.name))
                    .map(|l| {
                        let ours = l.alias.as_deref() == Some(LINK_MARK);
                        (l.name, ours)
                    })
                    .collect(),
                Err(e) => {
                    report.errors.push(format!("VLAN devices on {bridge}: {e}"));
                    return;
                }
            },
        };
        for (name, maybe_ours) in stale {
            if self.s.dry_run {
                match self.rec.link(&name).await {
                    Ok(Some(l)) if l.alias.as_deref() == Some(LINK_MARK) => {
                        report.changes.push(format!("delete VLAN device {name}"))
                    }
                    _ => {}
                }
                continue;
            }
            match self.rec.link(&name).await {
                Ok(Some(_)) => {}
                Ok(None) => continue,
                Err(e) => {
                    report.errors.push(format!("VLAN device {name}: {e}"));
                    continue;
                }
            }
            // Our neighbours first (the device may not be ours and then stays).
            self.neighbours(&name, None, NONE_WANTED, report).await;
            if !maybe_ours {
                continue;
            }
            match self.rec.delete_marked_link(&name, LINK_MARK).await {
                Ok(true) => {
                    *report.counts.entry(("link", "delete")).or_default() += 1;
                    report.changes.push(format!("deleted VLAN device {name}"));
                }
                Ok(false) => {}
                Err(e) => report.errors.push(format!("VLAN device {name}: {e}")),
            }
        }
    }

    fn sysctls(&self, dev: &str, report: &mut ApplyReport) {
        // Traffic from OVN to the host's gateway: answer ARP/NDP on the bridge for it.
        if self.s.dry_run {
            return;
        }
        let results = [
            ("proxy_arp", ovn_route_kernel::set_proxy_arp(dev, true)),
            ("proxy_ndp", ovn_route_kernel::set_proxy_ndp(dev, true)),
            (
                "ipv4 forwarding",
                ovn_route_kernel::set_ipv4_forwarding(None, true),
            ),
            (
                "ipv6 forwarding",
                ovn_route_kernel::set_ipv6_forwarding(true),
            ),
        ];
        for (what, r) in results {
            match r {
                Ok(false) => report.changes.push(format!("{dev}: {what} enabled")),
                Ok(true) => {}
                Err(e) => report.errors.push(format!("{dev}: {what}: {e}")),
            }
        }
    }

    async fn neighbours(
        &self,
        dev: &str,
        prev: Option<DevNeighbours<'_>>,
        next: DevNeighbours<'_>,
        report: &mut ApplyReport,
    ) {
        if prev == Some(next) {
            return;
        }
        let mut d = DesiredNeighbours::new(dev, self.s.protocol);
        for (ip, mac) in next.neighbours {
            d.entries
                .insert(Neighbour::Permanent { ip: *ip, mac: *mac });
        }
        for ip in next.proxy_ndp {
            d.entries.insert(Neighbour::Proxy { ip: *ip });
        }
        let what = format!("{dev} neighbours");
        if self.s.dry_run {
            match self.rec.observe_neighbours(dev, self.s.protocol).await {
                Ok(obs) => {
                    let diff = ovn_route_kernel::diff_neighbours(&d, &obs);
                    for n in &diff.to_delete {
                        report.changes.push(format!("{what}: delete {n:?}"));
                    }
                    for n in diff.to_add.iter().chain(&diff.to_replace) {
                        report.changes.push(format!("{what}: set {n:?}"));
                    }
                }
                Err(ovn_route_kernel::Error::NoSuchLink { .. }) => {}
                Err(e) => report.errors.push(format!("{what}: {e}")),
            }
            return;
        }
        report.record("neighbour", &what, self.rec.reconcile_neighbours(&d).await);
    }

    async fn addresses(&self, prev: Option<&HostPlan>, next: &HostPlan, report: &mut ApplyReport) {
        if self.s.vrf_mode == VrfMode::None {
            return;
        }
        let d = DesiredAddresses {
            dev: self.s.nic.clone(),
            addrs: next.advertised.addresses.clone(),
        };
        let what = format!("addresses on {}", self.s.nic);
        let result = match prev {
            Some(p) if !self.s.dry_run => {
                if p.advertised.addresses == next.advertised.addresses {
                    return;
                }
                let old: Vec<_> = p.advertised.addresses.iter().copied().collect();
                let diff = ovn_route_kernel::diff_addresses(&d, &old);
                self.rec.apply_addresses(&self.s.nic, &diff).await
            }
            _ if self.s.dry_run => {
                match self.rec.observe_addresses(&self.s.nic).await {
                    Ok(obs) => {
                        let diff = ovn_route_kernel::diff_addresses(&d, &obs);
                        for a in &diff.to_delete {
                            report.changes.push(format!("{what}: delete {a}"));
                        }
                        for a in &diff.to_add {
                            report.changes.push(format!("{what}: add {a}"));
                        }
                    }
                    Err(e) => report.errors.push(format!("{what}: {e}")),
                }
                return;
            }
            _ => self.rec.reconcile_addresses(&d).await,
        };
        report.record("address", &what, result);
    }
}

/// Applies the OpenFlow side of host plans with `ovs-ofctl` (blocking: run it off the async
/// threads).
#[derive(Debug, Clone)]
pub struct FlowApplier {
    /// The runner (bridges by name, in the OVS run directory of this host).
    pub ofctl: Ofctl,
    /// Our cookie.
    pub cookie: u64,
    /// Describe, change nothing.
    pub dry_run: bool,
}

/// One bridge's part of the plan that the flow applier needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeFlows {
    /// OpenFlow flows (the reconciler adds our cookie).
    pub flows: BTreeSet<Flow>,
    /// Whether anything is exposed through the bridge.
    pub in_use: bool,
    /// Whether Open vSwitch has the bridge.
    pub in_ovs: bool,
}

/// The flows of every bridge of `plan`.
pub fn flow_plans(plan: &HostPlan) -> BTreeMap<String, BridgeFlows> {
    plan.bridges
        .iter()
        .map(|(name, b)| {
            (
                name.clone(),
                BridgeFlows {
                    flows: b.flows.clone(),
                    in_use: b.in_use,
                    in_ovs: b.in_ovs,
                },
            )
        })
        .collect()
}

impl FlowApplier {
    /// Applies the flows of every bridge whose flows changed (or all, without `prev`).
    pub fn apply(
        &self,
        prev: Option<&BTreeMap<String, BridgeFlows>>,
        next: &BTreeMap<String, BridgeFlows>,
        report: &mut ApplyReport,
    ) {
        for (name, bp) in next {
            let old = prev.and_then(|p| p.get(name));
            if old.is_some_and(|o| o.flows == bp.flows) {
                continue;
            }
            // A bridge we never used and do not use: nothing of ours can be there. Nor on a bridge
            // Open vSwitch does not have (a kernel bridge): nothing to ask ovs-ofctl.
            if !bp.in_ovs
                || (bp.flows.is_empty() && !bp.in_use && old.is_some_and(|o| o.flows.is_empty()))
            {
                continue;
            }
            let desired = DesiredFlows::new(name, self.cookie).with(bp.flows.iter().cloned());
            let what = format!("{name} flows");
            if self.dry_run {
                match self.ofctl.dump_owned(name, self.cookie) {
                    Ok(obs) => {
                        let d = ovn_route_ovs::diff(&desired, obs.iter());
                        for f in &d.to_delete {
                            report.changes.push(format!("{what}: delete {f:?}"));
                        }
                        for f in d.to_add.iter().chain(&d.to_replace) {
                            report.changes.push(format!("{what}: set {f:?}"));
                        }
                    }
                    Err(e) => report.errors.push(format!("{what}: {e}")),
                }
                continue;
            }
            match ovn_route_ovs::reconcile(&self.ofctl, &desired) {
                Ok(s) => report.stats(
                    "flow",
                    &what,
                    &ReconcileStats {
                        added: s.added,
                        replaced: s.replaced,
                        deleted: s.deleted,
                        unchanged: s.unchanged,
                    },
                ),
                Err(e) => report.errors.push(format!("{what}: {e}")),
            }
        }
    }
}

/// A short description of how a prefix is wired on its bridge, for status.
pub fn wired_text(plan: &HostPlan, bridge: &str, prefix: &ovn_route_kernel::IpNet) -> String {
    let Some(bp) = plan.bridges.get(bridge) else {
        return "bridge not mapped".into();
    };
    let mut s = String::new();
    if let Some(r) = bp.routes.first_for(prefix) {
        let _ = write!(s, "table {}: {r}", bp.routes.table);
    }
    if bp.flows.is_empty() {
        s.push_str(" (no flows yet: patch port or bridge MAC unknown)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One missing device fails every route through it: the report keeps a few examples and a
    /// count, and still counts what succeeded.
    #[test]
    fn apply_errors_are_capped_with_a_count() {
        let errors: Vec<ovn_route_kernel::Error> = (0..8)
            .map(|i| ovn_route_kernel::Error::NoSuchLink {
                name: format!("br-ex.{i}"),
            })
            .collect();
        let stats = ReconcileStats {
            added: 2,
            ..Default::default()
        };
        let mut r = ApplyReport::default();
        r.record(
            "route",
            "table 200",
            Err(ovn_route_kernel::Error::Apply { stats, errors }),
        );
        assert_eq!(r.errors.len(), MAX_ERRORS_EACH + 1, "{:?}", r.errors);
        assert!(r.errors[0].starts_with("table 200: ") && r.errors[0].contains("br-ex.0"));
        assert_eq!(
            r.errors[MAX_ERRORS_EACH],
            "table 200: 3 more route errors (the first 5 are above)"
        );
        assert_eq!(r.total(), 2);
    }
}
