//! The topology facts the plan's units read (which switches are provider networks, which switch
//! each port and router port is on, what is bound here), kept up to date row by row: a changed row
//! is compared with what the index remembers of it, never with the change set's old values, so
//! change sets may arrive late or merged.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ovn_model::nb::{LogicalRouterPort, LogicalSwitch, LogicalSwitchPort};
use ovn_model::sb::{Chassis, PortBinding};
use ovsdb::{Replica, Uuid};

use crate::ChassisIdentity;

/// Something a router unit read, whose change must recompute it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Dep {
    /// A Northbound row (router port, NAT, load balancer, switch, switch port, the router itself).
    Row(Uuid),
    /// Whether the logical port of this name is bound here.
    Bound(Arc<str>),
    /// Which switch the router port of this name attaches to.
    LrpSwitch(Arc<str>),
}

/// Which rows say where a logical port is: router ports (`hosting-chassis`, without SB) or SB
/// port bindings.
#[derive(Debug, Clone, Copy)]
enum Located {
    RouterPort,
    Binding,
}

/// A provider network as this chassis reaches it: the mapped bridge, and the VLAN of a tagged
/// localnet port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Provider {
    pub bridge: Arc<str>,
    pub vlan: Option<u16>,
}

/// A localnet port's provider network.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalnetFacts {
    /// `options:network_name`.
    network: String,
    /// `tag` (the provider network's VLAN).
    tag: Option<i64>,
}

/// What the index remembers of one switch port (every port of the NB: kept small).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortFacts {
    name: Arc<str>,
    /// Set for a localnet port.
    localnet: Option<Box<LocalnetFacts>>,
    /// `options:router-port` of a router-type port.
    router_port: Option<Arc<str>>,
    /// Bound here by `options:requested-chassis` (used without a Southbound database).
    requested_here: bool,
}

/// What a batch of changed rows did to the index.
#[derive(Debug, Default)]
pub(super) struct Touched {
    /// The change reaches the provider networks or this chassis' SB identity: rebuild everything.
    pub full: bool,
    /// Switch ports whose unit must be recomputed.
    pub ports: HashSet<Uuid>,
    /// Facts that changed (for the router units that read them).
    pub deps: HashSet<Dep>,
    /// Record nothing (building the index from scratch: every unit is computed anyway).
    pub quiet: bool,
}

impl Touched {
    fn dep(&mut self, d: Dep) {
        if !self.quiet {
            self.deps.insert(d);
        }
    }

    fn port(&mut self, u: Uuid) {
        if !self.quiet {
            self.ports.insert(u);
        }
    }
}

/// The topology index.
#[derive(Debug, Default)]
pub(super) struct Index {
    system_id: String,
    /// The names this chassis goes by in `requested-chassis` and `hosting-chassis`.
    names: Vec<String>,
    /// Provider network name -> bridge.
    mappings: HashMap<String, Arc<str>>,
    uses_sb: bool,
    /// Provider switches: switch -> bridge and VLAN.
    provider: HashMap<Uuid, Provider>,
    /// Each switch's ports, as last indexed.
    switch_ports: HashMap<Uuid, Vec<Uuid>>,
    /// Switch of each switch port.
    switch_of_port: HashMap<Uuid, Uuid>,
    ports: HashMap<Uuid, PortFacts>,
    port_by_name: HashMap<Arc<str>, Uuid>,
    /// Router port name -> the switch it attaches to (through a router-type switch port).
    switch_of_lrp: HashMap<Arc<str>, Uuid>,
    /// Without SB: router ports whose `status:hosting-chassis` is this chassis (uuid -> name).
    lrp_here: HashMap<Uuid, String>,
    /// With SB: this chassis' Chassis rows.
    mine: HashSet<Uuid>,
    /// With SB: port bindings on this chassis (uuid -> logical port).
    binding_here: HashMap<Uuid, String>,
    /// Logical port names bound here (a count: two rows may name the same port for a moment).
    bound: HashMap<String, u32>,
}

impl Index {
    /// An empty index for chassis `me`.
    pub fn new(me: &ChassisIdentity, uses_sb: bool) -> Self {
        Index {
            system_id: me.system_id.clone(),
            names: std::iter::once(me.system_id.clone())
                .chain(me.hostname.clone())
                .collect(),
            mappings: me
                .bridge_mappings
                .iter()
                .map(|(net, br)| (net.clone(), Arc::from(br.as_str())))
                .collect(),
            uses_sb,
            ..Index::default()
        }
    }

    /// Indexes every row.
    pub fn build(&mut self, nb: &Replica, sb: Option<&Replica>) {
        let mut t = Touched {
            quiet: true,
            ..Touched::default()
        };
        let switches: Vec<Uuid> = LogicalSwitch::all(nb).map(|s| s.uuid()).collect();
        for u in switches {
            self.switch_changed(nb, u, &mut t);
        }
        let ports: Vec<Uuid> = LogicalSwitchPort::all(nb).map(|p| p.uuid()).collect();
        for u in ports {
            self.port_changed(nb, u, &mut t);
        }
        // Provider networks, now that every port's switch is known.
        for (u, f) in &self.ports {
            if let (Some(ln), Some(sw)) = (&f.localnet, self.switch_of_port.get(u)) {
                if let Some(br) = self.mappings.get(&ln.network) {
                    self.provider.entry(*sw).or_insert_with(|| Provider {
                        bridge: br.clone(),
                        vlan: ln
                            .tag
                            .and_then(|t| u16::try_from(t).ok())
                            .filter(|t| *t != 0),
                    });
                }
            }
        }
        match sb {
            Some(sb) => {
                self.mine = my_chassis(sb, &self.system_id);
                let bindings: Vec<Uuid> = PortBinding::all(sb).map(|b| b.uuid()).collect();
                for u in bindings {
                    self.binding_changed(sb, u, &mut t);
                }
            }
            None => {
                let lrps: Vec<Uuid> = LogicalRouterPort::all(nb).map(|p| p.uuid()).collect();
                for u in lrps {
                    self.lrp_changed(nb, u, &mut t);
                }
            }
        }
    }

    /// The chassis' system-id.
    pub fn system_id(&self) -> &str {
        &self.system_id
    }

    /// Whether the index was built with a Southbound database.
    pub fn uses_sb(&self) -> bool {
        self.uses_sb
    }

    /// True when logical port `name` (a switch port, or `cr-<lrp>`) is bound to this chassis.
    pub fn is_here(&self, name: &str) -> bool {
        if self.bound.contains_key(name) {
            return true;
        }
        // Without the SB, the gateway's location is the router port's hosting-chassis.
        !self.uses_sb
            && name
                .strip_prefix("cr-")
                .is_some_and(|lrp| self.bound.contains_key(lrp))
    }

    /// The provider bridge of the switch that port `uuid` is on.
    pub fn provider_of_port(&self, uuid: &Uuid) -> Option<&Provider> {
        self.switch_of_port
            .get(uuid)
            .and_then(|sw| self.provider.get(sw))
    }

    /// The switch router port `lrp` attaches to.
    pub fn switch_of_lrp(&self, lrp: &str) -> Option<Uuid> {
        self.switch_of_lrp.get(lrp).copied()
    }

    /// The provider bridge of the switch router port `lrp` attaches to.
    pub fn provider_of_lrp(&self, lrp: &str) -> Option<&Provider> {
        self.switch_of_lrp
            .get(lrp)
            .and_then(|sw| self.provider.get(sw))
    }

    /// Every switch port on a provider network.
    pub fn provider_ports(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.switch_of_port
            .iter()
            .filter(|(_, sw)| self.provider.contains_key(sw))
            .map(|(p, _)| *p)
    }

    fn bind(&mut self, name: &str, t: &mut Touched) {
        let n = self.bound.entry(name.to_string()).or_default();
        *n += 1;
        if *n == 1 {
            self.bound_changed(name, t);
        }
    }

    fn unbind(&mut self, name: &str, t: &mut Touched) {
        if let Some(n) = self.bound.get_mut(name) {
            *n -= 1;
            if *n == 0 {
                self.bound.remove(name);
                self.bound_changed(name, t);
            }
        }
    }

    fn bound_changed(&self, name: &str, t: &mut Touched) {
        if t.quiet {
            return;
        }
        t.dep(Dep::Bound(Arc::from(name)));
        if !self.uses_sb {
            t.dep(Dep::Bound(Arc::from(format!("cr-{name}"))));
        }
        if let Some(p) = self.port_by_name.get(name) {
            t.port(*p);
        }
    }

    /// Switch `u` changed: re-index its ports.
    pub fn switch_changed(&mut self, nb: &Replica, u: Uuid, t: &mut Touched) {
        t.dep(Dep::Row(u));
        let old = self.switch_ports.remove(&u).unwrap_or_default();
        let row = LogicalSwitch::get(nb, &u);
        if row.is_none() && self.provider.contains_key(&u) {
            t.full = true; // a provider network went away
        }
        let new: Vec<Uuid> = row.map(|s| s.ports().collect()).unwrap_or_default();
        let new_set: HashSet<Uuid> = new.iter().copied().collect();
        let old_set: HashSet<Uuid> = old.iter().copied().collect();
        for p in old.iter().filter(|p| !new_set.contains(p)) {
            if self.switch_of_port.get(p) == Some(&u) {
                self.switch_of_port.remove(p);
            }
            self.membership_changed(*p, t);
        }
        for p in new.iter().filter(|p| !old_set.contains(p)) {
            self.switch_of_port.insert(*p, u);
            self.membership_changed(*p, t);
        }
        if row.is_some() {
            self.switch_ports.insert(u, new);
        }
    }

    /// Port `p` joined or left a switch.
    fn membership_changed(&mut self, p: Uuid, t: &mut Touched) {
        t.port(p);
        t.dep(Dep::Row(p));
        let Some(f) = self.ports.get(&p) else {
            return; // not indexed yet: its own change follows
        };
        if f.localnet.is_some() {
            t.full = true;
        }
        if let Some(lrp) = f.router_port.clone() {
            match self.switch_of_port.get(&p) {
                Some(sw) => self.switch_of_lrp.insert(lrp.clone(), *sw),
                None => self.switch_of_lrp.remove(&lrp),
            };
            t.dep(Dep::LrpSwitch(lrp));
        }
    }

    /// Switch port `u` changed (or appeared, or went away).
    pub fn port_changed(&mut self, nb: &Replica, u: Uuid, t: &mut Touched) {
        t.port(u);
        t.dep(Dep::Row(u));
        let old = self.ports.remove(&u);
        let new = LogicalSwitchPort::get(nb, &u).map(|lsp| {
            let opts = lsp.options();
            PortFacts {
                name: Arc::from(lsp.name()),
                localnet: (lsp.port_type() == "localnet").then(|| {
                    Box::new(LocalnetFacts {
                        network: opts.get("network_name").unwrap_or_default().to_string(),
                        tag: lsp.tag(),
                    })
                }),
                router_port: (lsp.port_type() == "router")
                    .then(|| opts.get("router-port").map(Arc::from))
                    .flatten(),
                requested_here: !self.uses_sb
                    && opts.get("requested-chassis").is_some_and(|c| {
                        c.split(',')
                            .any(|c| self.names.iter().any(|n| n == c.trim()))
                    }),
            }
        });
        if old.as_ref() == new.as_ref() {
            if let Some(f) = new {
                self.ports.insert(u, f);
            }
            return;
        }
        if old.as_ref().is_some_and(|f| f.localnet.is_some())
            || new.as_ref().is_some_and(|f| f.localnet.is_some())
        {
            t.full = true;
        }
        if let Some(f) = &old {
            if self.port_by_name.get(&f.name) == Some(&u) {
                self.port_by_name.remove(&f.name);
            }
            if let Some(lrp) = &f.router_port {
                if self.switch_of_lrp.get(lrp) == self.switch_of_port.get(&u) {
                    self.switch_of_lrp.remove(lrp);
                }
                t.dep(Dep::LrpSwitch(lrp.clone()));
            }
            if f.requested_here {
                self.unbind(&f.name, t);
            }
        }
        if let Some(f) = &new {
            self.port_by_name.insert(f.name.clone(), u);
            if let Some(lrp) = &f.router_port {
                if let Some(sw) = self.switch_of_port.get(&u) {
                    self.switch_of_lrp.insert(lrp.clone(), *sw);
                }
                t.dep(Dep::LrpSwitch(lrp.clone()));
            }
            if f.requested_here {
                self.bind(&f.name, t);
            }
        }
        if let Some(f) = new {
            self.ports.insert(u, f);
        }
    }

    /// Router port `u` changed: its hosting-chassis (without SB).
    pub fn lrp_changed(&mut self, nb: &Replica, u: Uuid, t: &mut Touched) {
        t.dep(Dep::Row(u));
        if self.uses_sb {
            return;
        }
        let new = LogicalRouterPort::get(nb, &u)
            .filter(|lrp| {
                lrp.status()
                    .get("hosting-chassis")
                    .is_some_and(|c| self.names.iter().any(|n| n == c))
            })
            .map(|lrp| lrp.name().to_string());
        self.locate(Located::RouterPort, u, new, t);
    }

    /// Row `u` (of the kind `which`) now puts logical port `new` here, or nothing.
    fn locate(&mut self, which: Located, u: Uuid, new: Option<String>, t: &mut Touched) {
        let map = match which {
            Located::RouterPort => &mut self.lrp_here,
            Located::Binding => &mut self.binding_here,
        };
        let old = map.remove(&u);
        if old == new {
            if let Some(n) = new {
                map.insert(u, n);
            }
            return;
        }
        if let Some(n) = old {
            self.unbind(&n, t);
        }
        if let Some(n) = new {
            self.bind(&n, t);
            match which {
                Located::RouterPort => self.lrp_here.insert(u, n),
                Located::Binding => self.binding_here.insert(u, n),
            };
        }
    }

    /// The SB Chassis table changed; true when this chassis' rows changed (rebuild).
    pub fn chassis_changed(&self, sb: &Replica) -> bool {
        my_chassis(sb, &self.system_id) != self.mine
    }

    /// SB Port_Binding `u` changed.
    pub fn binding_changed(&mut self, sb: &Replica, u: Uuid, t: &mut Touched) {
        let new = PortBinding::get(sb, &u)
            .filter(|pb| pb.chassis().is_some_and(|c| self.mine.contains(&c)))
            .map(|pb| pb.logical_port().to_string());
        self.locate(Located::Binding, u, new, t);
    }
}

fn my_chassis(sb: &Replica, system_id: &str) -> HashSet<Uuid> {
    Chassis::all(sb)
        .filter(|c| c.name() == system_id)
        .map(|c| c.uuid())
        .collect()
}
