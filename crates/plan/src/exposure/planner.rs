//! The incremental exposure planner: the plan kept up to date from the rows each database update
//! changed, recomputing only the units (switch ports, routers) those rows reach.
//!
//! The plan is the union of its units' entries. A unit is recomputed from the replica whenever a
//! row or fact it read changes, so the result is always the one a full computation gives
//! ([`ExposurePlanner::rebuild`]); the property tests check exactly that.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ipnet::IpNet;
use ovn_model::nb::{
    LoadBalancer, LoadBalancerGroup, LogicalRouter, LogicalRouterPort, LogicalSwitch,
    LogicalSwitchPort, Nat,
};
use ovn_model::sb::{Chassis, PortBinding};
use ovsdb::{ChangeSet, Replica, Uuid};

use super::index::{Dep, Index, Touched};
use super::units::{self, Unit};
use super::{Exposure, ExposureConfig, ExposurePlan, Rejected};
use crate::ChassisIdentity;

/// A unit's key; switch ports come first when two units expose the same prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum UnitKey {
    Port(Uuid),
    Router(Uuid),
}

/// What an update changed in the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanDelta {
    /// The plan was recomputed from every row.
    pub rebuilt: bool,
    /// Prefixes that appeared, went away or changed (kind, bridge, gateway or sources).
    pub changed: BTreeSet<IpNet>,
    /// Rejections that were not in the plan before.
    pub new_rejections: Vec<Rejected>,
}

/// Beyond this share of the replica's rows in one batch, a rebuild is cheaper than following them.
const REBUILD_SHARE: usize = 4;

/// Keeps an [`ExposurePlan`] up to date with the databases.
#[derive(Debug)]
pub struct ExposurePlanner {
    me: ChassisIdentity,
    cfg: ExposureConfig,
    idx: Index,
    built: bool,
    ports: HashMap<Uuid, Unit>,
    routers: HashMap<Uuid, Unit>,
    /// Which router units read each fact (sorted; nearly always one).
    readers: HashMap<Dep, Vec<Uuid>>,
    /// Which units expose each prefix (sorted; nearly always one, so a vector at its exact size).
    contributors: HashMap<IpNet, Vec<UnitKey>>,
    /// Every unit's rejections, counted.
    rejections: BTreeMap<Rejected, usize>,
    plan: ExposurePlan,
}

impl ExposurePlanner {
    /// A planner for chassis `me`; the first update computes the whole plan.
    pub fn new(me: ChassisIdentity, cfg: ExposureConfig) -> Self {
        ExposurePlanner {
            idx: Index::new(&me, false),
            me,
            cfg,
            built: false,
            ports: HashMap::new(),
            routers: HashMap::new(),
            readers: HashMap::new(),
            contributors: HashMap::new(),
            rejections: BTreeMap::new(),
            plan: ExposurePlan::default(),
        }
    }

    /// The current plan.
    pub fn plan(&self) -> &ExposurePlan {
        &self.plan
    }

    /// The chassis planned for.
    pub fn identity(&self) -> &ChassisIdentity {
        &self.me
    }

    /// A new chassis identity (system-id, hostname or bridge mappings): the next update rebuilds.
    pub fn set_identity(&mut self, me: ChassisIdentity) {
        if me != self.me {
            self.me = me;
            self.built = false;
        }
    }

    /// Forgets everything indexed: the next update rebuilds (e.g. after a database reconnection
    /// that replaced the replica).
    pub fn invalidate(&mut self) {
        self.built = false;
    }

    /// Recomputes the plan from every row.
    pub fn rebuild(&mut self, nb: &Replica, sb: Option<&Replica>) -> PlanDelta {
        let old = std::mem::take(&mut self.plan);
        let old_rejected: BTreeSet<Rejected> = old.rejected.iter().cloned().collect();
        self.idx = Index::new(&self.me, sb.is_some());
        self.idx.build(nb, sb);
        self.ports.clear();
        self.routers.clear();
        self.readers.clear();
        self.contributors.clear();
        self.rejections.clear();
        self.built = true;

        let mut delta = PlanDelta {
            rebuilt: true,
            ..PlanDelta::default()
        };
        let mut touched = HashSet::new();
        let ports: Vec<Uuid> = self.idx.provider_ports().collect();
        for u in ports {
            let unit = units::provider_port(nb, &self.idx, &self.cfg, &u);
            self.replace(UnitKey::Port(u), unit, &mut touched, &mut delta);
        }
        let routers: Vec<Uuid> = LogicalRouter::all(nb).map(|r| r.uuid()).collect();
        for u in routers {
            let unit = units::router(nb, &self.idx, &self.cfg, &u);
            self.replace(UnitKey::Router(u), unit, &mut touched, &mut delta);
        }
        self.plan.exposed = touched
            .iter()
            .filter_map(|p| self.merged(p).map(|e| (*p, e)))
            .collect();
        self.plan.rejected = self.rejections.keys().cloned().collect();
        delta.new_rejections = self
            .plan
            .rejected
            .iter()
            .filter(|r| !old_rejected.contains(r))
            .cloned()
            .collect();
        for (p, e) in &old.exposed {
            if self.plan.exposed.get(p) != Some(e) {
                delta.changed.insert(*p);
            }
        }
        for (p, e) in &self.plan.exposed {
            if old.exposed.get(p) != Some(e) {
                delta.changed.insert(*p);
            }
        }
        delta
    }

    /// Brings the plan up to date with the rows `nb_changes` and `sb_changes` touched (the change
    /// sets of the updates applied to the replicas since the last call; the replicas as they are
    /// now are what counts). Rebuilds on the first call, after [`Self::set_identity`] or
    /// [`Self::invalidate`], when the Southbound comes or goes, and when a change reaches the
    /// provider networks or this chassis' SB record.
    pub fn update<'c>(
        &mut self,
        nb: &Replica,
        sb: Option<&Replica>,
        nb_changes: impl IntoIterator<Item = &'c ChangeSet>,
        sb_changes: impl IntoIterator<Item = &'c ChangeSet>,
    ) -> PlanDelta {
        if !self.built || self.idx.uses_sb() != sb.is_some() {
            return self.rebuild(nb, sb);
        }
        let mut rows: HashMap<&str, BTreeSet<Uuid>> = HashMap::new();
        let mut count = 0;
        for cs in nb_changes.into_iter().chain(sb_changes) {
            for (table, ch) in &cs.tables {
                count += ch.len();
                let set = rows.entry(table.as_str()).or_default();
                set.extend(ch.inserted.iter().copied());
                set.extend(ch.modified.iter().map(|m| m.0));
                set.extend(ch.deleted.iter().map(|d| d.0));
            }
        }
        let total = nb.row_count() + sb.map_or(0, Replica::row_count);
        if count > total / REBUILD_SHARE + 64 {
            return self.rebuild(nb, sb);
        }
        let empty = BTreeSet::new();
        let of = |t: &str| rows.get(t).unwrap_or(&empty);

        // The index first: switches (membership), then ports, router ports, bindings.
        let mut t = Touched::default();
        for u in of(LogicalSwitch::TABLE) {
            self.idx.switch_changed(nb, *u, &mut t);
        }
        for u in of(LogicalSwitchPort::TABLE) {
            self.idx.port_changed(nb, *u, &mut t);
        }
        for u in of(LogicalRouterPort::TABLE) {
            self.idx.lrp_changed(nb, *u, &mut t);
        }
        if let Some(sb) = sb {
            if !of(Chassis::TABLE).is_empty() && self.idx.chassis_changed(sb) {
                t.full = true;
            }
            for u in of(PortBinding::TABLE) {
                self.idx.binding_changed(sb, *u, &mut t);
            }
        }
        if t.full {
            return self.rebuild(nb, sb);
        }
        for table in [
            LogicalRouter::TABLE,
            Nat::TABLE,
            LoadBalancer::TABLE,
            LoadBalancerGroup::TABLE,
        ] {
            t.deps.extend(of(table).iter().map(|u| Dep::Row(*u)));
        }

        // The units those facts reach.
        let mut routers: BTreeSet<Uuid> = of(LogicalRouter::TABLE).clone();
        for d in &t.deps {
            if let Some(rs) = self.readers.get(d) {
                routers.extend(rs.iter().copied());
            }
        }
        let mut delta = PlanDelta::default();
        let mut touched = HashSet::new();
        let mut ports: Vec<Uuid> = t.ports.into_iter().collect();
        ports.sort();
        for u in ports {
            let unit = units::provider_port(nb, &self.idx, &self.cfg, &u);
            self.replace(UnitKey::Port(u), unit, &mut touched, &mut delta);
        }
        for u in routers {
            let unit = units::router(nb, &self.idx, &self.cfg, &u);
            self.replace(UnitKey::Router(u), unit, &mut touched, &mut delta);
        }

        // The merged entries of the prefixes they touched.
        for p in touched {
            let new = self.merged(&p);
            if self.plan.exposed.get(&p) != new.as_ref() {
                delta.changed.insert(p);
                match new {
                    Some(e) => self.plan.exposed.insert(p, e),
                    None => self.plan.exposed.remove(&p),
                };
            }
        }
        if self.plan.rejected.len() != self.rejections.len()
            || !self.plan.rejected.iter().eq(self.rejections.keys())
        {
            self.plan.rejected = self.rejections.keys().cloned().collect();
        }
        delta
    }

    /// Replaces a unit's contribution, noting the prefixes it touches.
    fn replace(
        &mut self,
        key: UnitKey,
        new: Option<Unit>,
        touched: &mut HashSet<IpNet>,
        delta: &mut PlanDelta,
    ) {
        let old = match key {
            UnitKey::Port(u) => self.ports.remove(&u),
            UnitKey::Router(u) => self.routers.remove(&u),
        };
        if let Some(old) = old {
            for e in &old.entries {
                touched.insert(e.prefix);
                if let Some(c) = self.contributors.get_mut(&e.prefix) {
                    c.retain(|k| *k != key);
                    if c.is_empty() {
                        self.contributors.remove(&e.prefix);
                    }
                }
            }
            for r in old.rejected {
                if let Some(n) = self.rejections.get_mut(&r) {
                    *n -= 1;
                    if *n == 0 {
                        self.rejections.remove(&r);
                    }
                }
            }
            if let UnitKey::Router(u) = key {
                for d in &old.deps {
                    if let Some(rs) = self.readers.get_mut(d) {
                        rs.retain(|r| *r != u);
                        if rs.is_empty() {
                            self.readers.remove(d);
                        }
                    }
                }
            }
        }
        let Some(new) = new else {
            return;
        };
        for e in &new.entries {
            touched.insert(e.prefix);
            let c = self.contributors.entry(e.prefix).or_default();
            if let Err(at) = c.binary_search(&key) {
                c.reserve_exact(1);
                c.insert(at, key);
            }
        }
        for r in &new.rejected {
            let n = self.rejections.entry(r.clone()).or_default();
            *n += 1;
            if *n == 1 && !delta.new_rejections.contains(r) {
                delta.new_rejections.push(r.clone());
            }
        }
        match key {
            UnitKey::Port(u) => {
                if !new.entries.is_empty() || !new.rejected.is_empty() {
                    self.ports.insert(u, new);
                }
            }
            UnitKey::Router(u) => {
                for d in &new.deps {
                    let rs = self.readers.entry(d.clone()).or_default();
                    if let Err(at) = rs.binary_search(&u) {
                        rs.reserve_exact(1);
                        rs.insert(at, u);
                    }
                }
                self.routers.insert(u, new);
            }
        }
    }

    /// The plan's entry for `prefix`: the first unit's kind, bridge and gateway, every unit's
    /// sources.
    fn merged(&self, prefix: &IpNet) -> Option<Exposure> {
        let mut out: Option<Exposure> = None;
        for key in self.contributors.get(prefix)? {
            let unit = match key {
                UnitKey::Port(u) => self.ports.get(u),
                UnitKey::Router(u) => self.routers.get(u),
            };
            for e in unit.into_iter().flat_map(|u| &u.entries) {
                if e.prefix != *prefix {
                    continue;
                }
                match &mut out {
                    None => {
                        out = Some(Exposure {
                            prefix: *prefix,
                            kind: e.kind,
                            bridge: e.bridge.clone(),
                            vlan: e.vlan,
                            gateway: e.gateway.clone(),
                            sources: vec![e.source.clone()],
                        })
                    }
                    Some(x) => {
                        if !x.sources.contains(&e.source) {
                            x.sources.push(e.source.clone());
                        }
                    }
                }
            }
        }
        out
    }
}
