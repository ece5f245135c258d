//! FRR for dynamic routing (`[ovn_route] dynamic_routing_frr`): one BGP instance per router VRF
//! advertised on this chassis.
//!
//! # The blocks ovn-route owns
//!
//! For each VRF, the whole instance
//!
//! ```text
//! router bgp ASN vrf NAME
//!  bgp router-id ID                      (when known)
//!  no bgp ebgp-requires-policy
//!  neighbor PEER remote-as AS            (configured neighbors; `neighbor IF interface ...`)
//!  address-family ipv4 unicast
//!   redistribute kernel route-map ovn-route-dynamic
//!  exit-address-family
//!  address-family ipv6 unicast
//!   redistribute kernel route-map ovn-route-dynamic
//!   neighbor PEER activate               (IPv6 and interface neighbors)
//!  exit-address-family
//! exit
//! ```
//!
//! and the route-map `ovn-route-dynamic permit 10` it names.
//!
//! With L3 EVPN for a VRF ([`DynamicIntent::evpn`], `[ovn_route] dynamic_routing_evpn`), also, in
//! the instance before its `exit`,
//!
//! ```text
//!  address-family l2vpn evpn
//!   advertise ipv4 unicast
//!   advertise ipv6 unicast
//!  exit-address-family
//! ```
//!
//! and, after it, the VRF's L3 VNI `vrf NAME / vni N / exit-vrf`. The EVPN address family of a
//! marked instance marks the VRF's `vni` line as ovn-route's: a VRF whose VNI exists while our
//! instance has no EVPN address family is the operator's ([`DynamicPlan::foreign_vni`]: no EVPN
//! rendered, the VNI left alone). Removal undoes exactly this, the VNI first (FRR refuses to
//! remove an instance whose VRF still has an L3 VNI), then the address family (or the instance).
//! The default instance's EVPN peering (`address-family l2vpn evpn / neighbor X activate /
//! advertise-all-vni`) is the operator's and is never rendered. `redistribute kernel` in a VRF
//! advertises the kernel routes of the VRF's table: the agent's protocol-84 routes (zebra keeps
//! the route's metric as the MED). What the instance learns, zebra installs in the same table,
//! where the agent learns it into the NB. The route-map reference is the mark: an instance for the
//! VRF without it is the operator's and is never changed or removed, and an instance with it whose
//! VRF is no longer advertised here is removed whole, also after an agent restart.
//!
//! [`plan`] is pure (desired intent + `show running-config` text -> vtysh lines);
//! [`Vtysh::apply_dynamic`] reads, applies and checks.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use crate::error::{FrrError, Result};
use crate::vtysh::Vtysh;

/// The route-map that marks ovn-route's dynamic-routing instances (and lets everything through).
pub const MARK_ROUTE_MAP: &str = "ovn-route-dynamic";

/// At most this many command lines per `vtysh` invocation.
const BATCH_LINES: usize = 2000;

/// A BGP neighbor of the VRF instances.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peer {
    /// `neighbor ADDRESS remote-as AS`.
    Address(IpAddr),
    /// `neighbor IFNAME interface remote-as AS` (BGP unnumbered).
    Interface(String),
}

impl Peer {
    /// The word FRR uses for the neighbor (address or interface name).
    pub fn key(&self) -> String {
        match self {
            Peer::Address(a) => a.to_string(),
            Peer::Interface(i) => i.clone(),
        }
    }
}

/// One neighbor of an instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Neighbor {
    /// The peer.
    pub peer: Peer,
    /// `remote-as`: an AS number, `internal` or `external`.
    pub remote_as: String,
}

/// What ovn-route wants of FRR for dynamic routing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicIntent {
    /// The AS of the instances (`bgp_AS`).
    pub asn: u32,
    /// Their router id; `None`: [`Vtysh::apply_dynamic`] takes the default instance's, and
    /// without one FRR picks its own.
    pub router_id: Option<Ipv4Addr>,
    /// VRF name -> its neighbors.
    pub vrfs: BTreeMap<String, Vec<Neighbor>>,
    /// VRF name -> its L3 VNI: EVPN type-5 for these VRFs (names not in `vrfs` are ignored).
    pub evpn: BTreeMap<String, u32>,
}

/// The header of the EVPN address family.
pub const EVPN_AF: &str = "address-family l2vpn evpn";

/// The lines of the EVPN address family of a VRF instance (between its header and `exit`).
pub fn render_evpn_af() -> Vec<String> {
    vec![
        EVPN_AF.into(),
        "advertise ipv4 unicast".into(),
        "advertise ipv6 unicast".into(),
        "exit-address-family".into(),
    ]
}

/// The lines that remove the EVPN address family's lines from an instance of ours.
pub fn unrender_evpn_af(asn: u32, vrf: &str) -> Vec<String> {
    vec![
        format!("router bgp {asn} vrf {vrf}"),
        EVPN_AF.into(),
        "no advertise ipv4 unicast".into(),
        "no advertise ipv6 unicast".into(),
        "exit-address-family".into(),
        "exit".into(),
    ]
}

/// The lines that give `vrf` its L3 VNI (`vrf NAME / vni N / exit-vrf`).
pub fn render_vni(vrf: &str, vni: u32) -> Vec<String> {
    vec![
        format!("vrf {vrf}"),
        format!("vni {vni}"),
        "exit-vrf".into(),
    ]
}

/// The lines that remove the L3 VNI `vni` of `vrf`.
pub fn unrender_vni(vrf: &str, vni: u32) -> Vec<String> {
    vec![
        format!("vrf {vrf}"),
        format!("no vni {vni}"),
        "exit-vrf".into(),
    ]
}

/// The L3 VNIs of the `vrf NAME` blocks of `show running-config` text (`vni N`, with or without
/// `prefix-routes-only`).
pub fn parse_vnis(text: &str) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line == "!" {
            continue;
        }
        if !raw.starts_with(' ') {
            current = line
                .strip_prefix("vrf ")
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
                .filter(|v| !v.is_empty());
            continue;
        }
        if let (Some(vrf), Some(rest)) = (&current, line.strip_prefix("vni ")) {
            if let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse().ok()) {
                out.insert(vrf.clone(), n);
            }
        }
    }
    out
}

/// The lines of one instance, from its header to `exit` (without `configure terminal`).
pub fn render_instance(
    asn: u32,
    router_id: Option<Ipv4Addr>,
    vrf: &str,
    neighbors: &[Neighbor],
) -> Vec<String> {
    render_instance_with(asn, router_id, vrf, neighbors, false)
}

/// [`render_instance`], with the EVPN address family ([`render_evpn_af`]) when `evpn`.
pub fn render_instance_with(
    asn: u32,
    router_id: Option<Ipv4Addr>,
    vrf: &str,
    neighbors: &[Neighbor],
    evpn: bool,
) -> Vec<String> {
    let mut c = vec![format!("router bgp {asn} vrf {vrf}")];
    if let Some(id) = router_id {
        c.push(format!("bgp router-id {id}"));
    }
    c.push("no bgp ebgp-requires-policy".into());
    for n in neighbors {
        c.push(match &n.peer {
            Peer::Address(a) => format!("neighbor {a} remote-as {}", n.remote_as),
            Peer::Interface(i) => format!("neighbor {i} interface remote-as {}", n.remote_as),
        });
    }
    for af in ["ipv4", "ipv6"] {
        c.push(format!("address-family {af} unicast"));
        c.push(format!("redistribute kernel route-map {MARK_ROUTE_MAP}"));
        if af == "ipv6" {
            for n in neighbors {
                if !matches!(n.peer, Peer::Address(IpAddr::V4(_))) {
                    c.push(format!("neighbor {} activate", n.peer.key()));
                }
            }
        }
        c.push("exit-address-family".into());
    }
    if evpn {
        c.extend(render_evpn_af());
    }
    c.push("exit".into());
    c
}

/// The line that removes one instance whole.
pub fn unrender_instance(asn: u32, vrf: &str) -> String {
    format!("no router bgp {asn} vrf {vrf}")
}

/// One `router bgp` block of a running configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpInstance {
    /// Its AS.
    pub asn: u32,
    /// Its VRF (`None`: the default instance).
    pub vrf: Option<String>,
    /// Its lines: (address family header, line), trimmed; `None` outside address families.
    pub lines: BTreeSet<(Option<String>, String)>,
}

impl BgpInstance {
    /// Carries ovn-route's mark (the route-map reference).
    pub fn is_ours(&self) -> bool {
        let mark = format!("redistribute kernel route-map {MARK_ROUTE_MAP}");
        self.lines.iter().any(|(_, l)| *l == mark)
    }

    /// Has ovn-route's EVPN address family ([`render_evpn_af`]); in a marked instance, this marks
    /// the VRF's `vni` line as ovn-route's too.
    pub fn has_evpn(&self) -> bool {
        let af = Some(EVPN_AF.to_string());
        ["advertise ipv4 unicast", "advertise ipv6 unicast"]
            .iter()
            .any(|l| self.lines.contains(&(af.clone(), l.to_string())))
    }

    /// The neighbors it configures (their address or interface names).
    pub fn neighbor_keys(&self) -> BTreeSet<String> {
        self.lines
            .iter()
            .filter(|(af, _)| af.is_none())
            .filter_map(|(_, l)| {
                let rest = l.strip_prefix("neighbor ")?;
                let (key, rest) = rest.split_once(' ')?;
                (rest.starts_with("remote-as ") || rest.starts_with("interface remote-as "))
                    .then(|| key.to_string())
            })
            .collect()
    }
}

/// The `router bgp` blocks of `show running-config` text, and whether the route-map
/// [`MARK_ROUTE_MAP`] exists.
pub fn parse_running(text: &str) -> (Vec<BgpInstance>, bool) {
    let mut out: Vec<BgpInstance> = Vec::new();
    let mut current: Option<BgpInstance> = None;
    let mut af: Option<String> = None;
    let mut route_map = false;
    let rm_header = format!("route-map {MARK_ROUTE_MAP} ");
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line == "!" {
            continue;
        }
        let top = !raw.starts_with(' ');
        if top {
            out.extend(current.take());
            af = None;
            if line.starts_with(&rm_header) {
                route_map = true;
            }
            let Some(rest) = line.strip_prefix("router bgp ") else {
                continue;
            };
            let mut words = rest.split_whitespace();
            let Some(asn) = words.next().and_then(|a| a.parse().ok()) else {
                continue;
            };
            let vrf = match (words.next(), words.next()) {
                (None, _) => None,
                (Some("vrf"), Some(v)) => Some(v.to_string()),
                _ => continue, // a view
            };
            current = Some(BgpInstance {
                asn,
                vrf,
                lines: BTreeSet::new(),
            });
        } else if let Some(inst) = current.as_mut() {
            if line == "exit-address-family" {
                af = None;
            } else if line.starts_with("address-family ") {
                af = Some(line.to_string());
            } else {
                inst.lines.insert((af.clone(), line.to_string()));
            }
        }
    }
    out.extend(current);
    (out, route_map)
}

/// What [`plan`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicPlan {
    /// Configuration lines to send, without `configure terminal` / `end`; empty: in place.
    pub commands: Vec<String>,
    /// What differs, one entry per difference ("missing: ...", "stale: ...").
    pub changes: Vec<String>,
    /// VRFs whose instance the operator configured (unmarked): left alone.
    pub foreign: Vec<String>,
    /// VRFs wanted with EVPN whose L3 VNI the operator configured: no EVPN rendered for them,
    /// their VNI left alone.
    pub foreign_vni: Vec<String>,
}

/// The lines that bring the running configuration (`show running-config` text) to `intent`: for
/// each wanted VRF, its instance when any of its lines is missing (with `no neighbor` for
/// neighbors no longer configured, and the instance of another AS removed first); the removal of
/// each marked instance whose VRF is not wanted; the route-map while any instance is wanted, its
/// removal when none is left. Unmarked instances are never touched. With EVPN
/// ([`DynamicIntent::evpn`]), the EVPN address family and the VRF's `vni` line the same way (see
/// the module documentation for the order and the mark). Pure.
pub fn plan(intent: &DynamicIntent, running: &str) -> DynamicPlan {
    let (instances, route_map) = parse_running(running);
    let vnis = parse_vnis(running);
    let mut p = DynamicPlan::default();
    let by_vrf: BTreeMap<&str, &BgpInstance> = instances
        .iter()
        .filter_map(|i| Some((i.vrf.as_deref()?, i)))
        .collect();
    if !intent.vrfs.is_empty() && !route_map {
        p.changes
            .push(format!("missing: route-map {MARK_ROUTE_MAP}"));
        p.commands
            .push(format!("route-map {MARK_ROUTE_MAP} permit 10"));
        p.commands.push("exit".into());
    }
    for (vrf, neighbors) in &intent.vrfs {
        let have = by_vrf.get(vrf.as_str()).copied();
        if have.is_some_and(|h| !h.is_ours()) {
            p.foreign.push(vrf.clone());
            continue;
        }
        // EVPN: our VNI line is the one of a VRF whose marked instance has our address family.
        let ours_evpn = have.is_some_and(BgpInstance::has_evpn);
        let have_vni = vnis.get(vrf.as_str()).copied();
        let mut evpn = intent.evpn.get(vrf).copied();
        if evpn.is_some() && have_vni.is_some() && !ours_evpn {
            p.foreign_vni.push(vrf.clone());
            evpn = None;
        }
        let asn_changed = have.is_some_and(|h| h.asn != intent.asn);
        let drop_vni = match have_vni {
            Some(m) if ours_evpn && (evpn != Some(m) || asn_changed) => Some(m),
            _ => None,
        };
        if let Some(m) = drop_vni {
            p.changes.push(format!("stale: vrf {vrf} / vni {m}"));
            p.commands.extend(unrender_vni(vrf, m));
        }
        let want =
            render_instance_with(intent.asn, intent.router_id, vrf, neighbors, evpn.is_some());
        let mut pre = vec![];
        let missing: Vec<String> = match have {
            Some(h) if asn_changed => {
                pre.push(unrender_instance(h.asn, vrf));
                p.changes
                    .push(format!("stale: router bgp {} vrf {vrf}", h.asn));
                vec![format!("missing: {}", want[0])]
            }
            Some(h) => {
                let wanted_keys: BTreeSet<String> =
                    neighbors.iter().map(|n| n.peer.key()).collect();
                for k in h.neighbor_keys().difference(&wanted_keys) {
                    pre.push(format!("no neighbor {k}"));
                    p.changes.push(format!(
                        "stale: router bgp {} vrf {vrf} / neighbor {k}",
                        h.asn
                    ));
                }
                let mut af: Option<String> = None;
                let mut m = vec![];
                for l in &want[1..] {
                    if l == "exit-address-family" || l == "exit" {
                        af = None;
                    } else if l.starts_with("address-family ") {
                        af = Some(l.clone());
                    } else if !h.lines.contains(&(af.clone(), l.clone())) {
                        m.push(format!("missing: {} / {l}", want[0]));
                    }
                }
                m
            }
            None => vec![format!("missing: {}", want[0])],
        };
        if ours_evpn && evpn.is_none() && !asn_changed {
            p.changes.push(format!(
                "stale: router bgp {} vrf {vrf} / {EVPN_AF}",
                intent.asn
            ));
            p.commands.extend(unrender_evpn_af(intent.asn, vrf));
        }
        let reinstall = !missing.is_empty();
        if reinstall || !pre.is_empty() {
            p.changes.extend(missing);
            match (have, pre.first()) {
                (Some(_), Some(first)) if first.starts_with("no neighbor ") => {
                    p.commands.push(want[0].clone());
                    p.commands.extend(pre);
                    p.commands.push("exit".into());
                }
                _ => p.commands.extend(pre),
            }
            if reinstall {
                p.commands.extend(want);
            }
        }
        if let Some(n) = evpn {
            if drop_vni.is_some() || have_vni != Some(n) {
                p.changes.push(format!("missing: vrf {vrf} / vni {n}"));
                p.commands.extend(render_vni(vrf, n));
            }
        }
    }
    let mut left = 0;
    for i in instances.iter().filter(|i| i.is_ours()) {
        let Some(vrf) = i.vrf.as_deref() else {
            continue;
        };
        if intent.vrfs.contains_key(vrf) {
            left += 1;
            continue;
        }
        if let (true, Some(m)) = (i.has_evpn(), vnis.get(vrf)) {
            p.changes.push(format!("stale: vrf {vrf} / vni {m}"));
            p.commands.extend(unrender_vni(vrf, *m));
        }
        p.changes
            .push(format!("stale: router bgp {} vrf {vrf}", i.asn));
        p.commands.push(unrender_instance(i.asn, vrf));
    }
    if intent.vrfs.is_empty() && left == 0 && route_map {
        p.changes.push(format!("stale: route-map {MARK_ROUTE_MAP}"));
        p.commands.push(format!("no route-map {MARK_ROUTE_MAP}"));
    }
    p
}

/// What [`Vtysh::apply_dynamic`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicOutcome {
    /// The differences fixed (empty: everything was in place, nothing was sent).
    pub changes: Vec<String>,
    /// VRFs left to the operator's own instance.
    pub foreign: Vec<String>,
    /// VRFs whose L3 VNI is the operator's (no EVPN rendered for them).
    pub foreign_vni: Vec<String>,
}

impl Vtysh {
    /// Brings FRR's dynamic-routing instances to `intent` (see [`plan`]): reads the running
    /// configuration, sends only what differs (in batches), and checks that FRR took it. An intent
    /// without a router id takes the default instance's ([`Vtysh::router_id`]).
    pub fn apply_dynamic(&self, intent: &DynamicIntent) -> Result<DynamicOutcome> {
        let mut intent = intent.clone();
        if intent.asn == 0 {
            return Err(FrrError::InvalidIntent(
                "bgp_AS 0 is not a valid AS number".into(),
            ));
        }
        if intent.router_id.is_none() && !intent.vrfs.is_empty() {
            intent.router_id = self.router_id()?;
        }
        let p = plan(&intent, &self.running_config_text()?);
        for v in &p.foreign {
            tracing::warn!(vrf = %v, "FRR has an instance for this VRF that is not ovn-route's: left alone");
        }
        for v in &p.foreign_vni {
            tracing::warn!(vrf = %v, "FRR has an L3 VNI for this VRF that is not ovn-route's: no EVPN rendered for it");
        }
        if p.commands.is_empty() {
            return Ok(DynamicOutcome {
                changes: vec![],
                foreign: p.foreign,
                foreign_vni: p.foreign_vni,
            });
        }
        tracing::info!(changes = ?p.changes, "applying ovn-route's dynamic-routing FRR instances");
        for batch in batches(&p.commands) {
            let mut cmds = Vec::with_capacity(batch.len() + 2);
            cmds.push("configure terminal".to_string());
            cmds.extend(batch.iter().cloned());
            cmds.push("end".to_string());
            self.run(&cmds)?;
        }
        let still = plan(&intent, &self.running_config_text()?);
        if !still.commands.is_empty() {
            return Err(FrrError::InvalidIntent(format!(
                "FRR accepted the dynamic-routing instances but its running configuration still \
                 differs: {}",
                still.changes.join("; ")
            )));
        }
        Ok(DynamicOutcome {
            changes: p.changes,
            foreign: p.foreign,
            foreign_vni: p.foreign_vni,
        })
    }

    /// Removes every dynamic-routing instance of ovn-route's and the route-map (unmarked instances
    /// stay); idempotent.
    pub fn remove_dynamic(&self, asn: u32) -> Result<Vec<String>> {
        let intent = DynamicIntent {
            asn: asn.max(1),
            router_id: None,
            vrfs: BTreeMap::new(),
            evpn: BTreeMap::new(),
        };
        Ok(self.apply_dynamic(&intent)?.changes)
    }
}

/// Splits the command lines into batches of about [`BATCH_LINES`], only between top-level blocks
/// (after an `exit` or `exit-vrf` at block level or a `no router bgp` line).
fn batches(cmds: &[String]) -> Vec<&[String]> {
    let mut out = vec![];
    let mut start = 0;
    let mut depth_af = false;
    for (i, c) in cmds.iter().enumerate() {
        if c.starts_with("address-family ") {
            depth_af = true;
        } else if c == "exit-address-family" {
            depth_af = false;
        }
        let boundary =
            !depth_af && (c == "exit" || c == "exit-vrf" || c.starts_with("no router bgp "));
        if boundary && i + 1 - start >= BATCH_LINES {
            out.push(&cmds[start..=i]);
            start = i + 1;
        }
    }
    if start < cmds.len() {
        out.push(&cmds[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nb(a: &str, asn: &str) -> Neighbor {
        Neighbor {
            peer: match a.parse() {
                Ok(ip) => Peer::Address(ip),
                Err(_) => Peer::Interface(a.into()),
            },
            remote_as: asn.into(),
        }
    }

    fn intent(vrfs: &[(&str, Vec<Neighbor>)]) -> DynamicIntent {
        DynamicIntent {
            asn: 64999,
            router_id: Some(Ipv4Addr::new(192, 0, 2, 1)),
            vrfs: vrfs
                .iter()
                .map(|(v, n)| (v.to_string(), n.clone()))
                .collect(),
            evpn: BTreeMap::new(),
        }
    }

    /// What FRR 8.4 shows for the lines `render_instance` sends.
    fn running_of(i: &DynamicIntent, extra: &str) -> String {
        let mut s = String::from("frr version 8.4.4\n!\nrouter bgp 64999\n bgp router-id 192.0.2.1\n neighbor 10.0.0.2 remote-as 65000\nexit\n!\n");
        for (vrf, vni) in &i.evpn {
            s.push_str(&format!("vrf {vrf}\n vni {vni}\nexit-vrf\n!\n"));
        }
        for (vrf, n) in &i.vrfs {
            let mut indent = 1;
            let evpn = i.evpn.contains_key(vrf);
            for l in render_instance_with(i.asn, i.router_id, vrf, n, evpn) {
                if l == "exit" {
                    s.push_str("exit\n!\n");
                } else if l.starts_with("router bgp") {
                    s.push_str(&l);
                    s.push('\n');
                } else if l == "exit-address-family" {
                    s.push_str(" exit-address-family\n");
                    indent = 1;
                } else {
                    s.push_str(&" ".repeat(indent));
                    s.push_str(&l);
                    s.push('\n');
                    if l.starts_with("address-family") {
                        indent = 2;
                    }
                }
            }
        }
        if !i.vrfs.is_empty() {
            s.push_str("route-map ovn-route-dynamic permit 10\nexit\n!\n");
        }
        s.push_str(extra);
        s.push_str("end\n");
        s
    }

    #[test]
    fn renders_an_instance_with_neighbors() {
        let n = [
            nb("192.0.2.2", "65000"),
            nb("2001:db8::2", "65000"),
            nb("eth1", "external"),
        ];
        assert_eq!(
            render_instance(64999, Some(Ipv4Addr::new(192, 0, 2, 1)), "ovnvrf10", &n),
            [
                "router bgp 64999 vrf ovnvrf10",
                "bgp router-id 192.0.2.1",
                "no bgp ebgp-requires-policy",
                "neighbor 192.0.2.2 remote-as 65000",
                "neighbor 2001:db8::2 remote-as 65000",
                "neighbor eth1 interface remote-as external",
                "address-family ipv4 unicast",
                "redistribute kernel route-map ovn-route-dynamic",
                "exit-address-family",
                "address-family ipv6 unicast",
                "redistribute kernel route-map ovn-route-dynamic",
                "neighbor 2001:db8::2 activate",
                "neighbor eth1 activate",
                "exit-address-family",
                "exit",
            ]
        );
        assert_eq!(
            unrender_instance(64999, "ovnvrf10"),
            "no router bgp 64999 vrf ovnvrf10"
        );
    }

    #[test]
    fn empty_running_gets_route_map_and_instances() {
        let i = intent(&[("ovnvrf10", vec![]), ("ovnvrf11", vec![])]);
        let p = plan(&i, "frr version 8.4.4\n!\nend\n");
        assert_eq!(
            p.commands[..2],
            ["route-map ovn-route-dynamic permit 10", "exit"]
        );
        assert_eq!(
            p.commands
                .iter()
                .filter(|c| c.starts_with("router bgp"))
                .collect::<Vec<_>>(),
            [
                "router bgp 64999 vrf ovnvrf10",
                "router bgp 64999 vrf ovnvrf11"
            ]
        );
        assert_eq!(p.changes.len(), 3, "{:?}", p.changes);
        assert!(p.foreign.is_empty());
    }

    #[test]
    fn in_place_sends_nothing() {
        let i = intent(&[(
            "ovnvrf10",
            vec![nb("192.0.2.2", "65000"), nb("eth1", "external")],
        )]);
        let p = plan(&i, &running_of(&i, ""));
        assert_eq!(p, DynamicPlan::default());
    }

    #[test]
    fn stale_instances_and_neighbors_go_the_operators_stay() {
        let before = intent(&[
            (
                "ovnvrf10",
                vec![nb("192.0.2.2", "65000"), nb("192.0.2.6", "65000")],
            ),
            ("ovnvrf11", vec![]),
        ]);
        // The operator's own instance for ovnvrf12 and an unrelated VRF instance.
        let operator = "router bgp 64999 vrf ovnvrf12\n neighbor 198.51.100.1 remote-as 65001\n \
                        address-family ipv4 unicast\n  redistribute kernel\n exit-address-family\n\
                        exit\n!\nrouter bgp 64999 vrf blue\n address-family ipv4 unicast\n  \
                        redistribute connected\n exit-address-family\nexit\n!\n";
        let running = running_of(&before, operator);
        let after = intent(&[
            ("ovnvrf10", vec![nb("192.0.2.2", "65000")]),
            ("ovnvrf12", vec![]),
        ]);
        let p = plan(&after, &running);
        assert_eq!(p.foreign, ["ovnvrf12"]);
        assert_eq!(
            p.commands,
            [
                "router bgp 64999 vrf ovnvrf10",
                "no neighbor 192.0.2.6",
                "exit",
                "no router bgp 64999 vrf ovnvrf11",
            ]
        );
        assert!(!p
            .commands
            .iter()
            .any(|c| c.contains("ovnvrf12") || c.contains("blue")));
        // Nothing wanted: only our instances and the route-map go.
        let p = plan(&intent(&[]), &running);
        assert_eq!(
            p.commands,
            [
                "no router bgp 64999 vrf ovnvrf10",
                "no router bgp 64999 vrf ovnvrf11",
                "no route-map ovn-route-dynamic",
            ]
        );
        // ... and once they are gone, nothing more.
        let p = plan(&intent(&[]), &running_of(&intent(&[]), operator));
        assert_eq!(p, DynamicPlan::default());
    }

    #[test]
    fn a_changed_as_or_router_id_reinstalls() {
        let old = intent(&[("ovnvrf10", vec![])]);
        let running = running_of(&old, "");
        let mut new = old.clone();
        new.asn = 65010;
        let p = plan(&new, &running);
        assert_eq!(p.commands[0], "no router bgp 64999 vrf ovnvrf10");
        assert_eq!(p.commands[1], "router bgp 65010 vrf ovnvrf10");
        let mut new = old.clone();
        new.router_id = Some(Ipv4Addr::new(192, 0, 2, 9));
        let p = plan(&new, &running);
        assert_eq!(
            p.changes,
            ["missing: router bgp 64999 vrf ovnvrf10 / bgp router-id 192.0.2.9"]
        );
        assert_eq!(p.commands[0], "router bgp 64999 vrf ovnvrf10");
    }

    #[test]
    fn parses_instances_and_marks() {
        let i = intent(&[("ovnvrf10", vec![nb("eth1", "external")])]);
        let (inst, rm) = parse_running(&running_of(&i, ""));
        assert!(rm);
        assert_eq!(inst.len(), 2);
        assert!(!inst[0].is_ours() && inst[0].vrf.is_none());
        assert!(inst[1].is_ours());
        assert_eq!(inst[1].vrf.as_deref(), Some("ovnvrf10"));
        assert_eq!(
            inst[1].neighbor_keys(),
            BTreeSet::from(["eth1".to_string()])
        );
    }

    fn with_evpn(mut i: DynamicIntent, evpn: &[(&str, u32)]) -> DynamicIntent {
        i.evpn = evpn.iter().map(|(v, n)| (v.to_string(), *n)).collect();
        i
    }

    #[test]
    fn renders_evpn_af_and_vni() {
        let l = render_instance_with(64999, None, "ovnvrf10", &[], true);
        let tail: Vec<&str> = l[l.len() - 5..].iter().map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                "address-family l2vpn evpn",
                "advertise ipv4 unicast",
                "advertise ipv6 unicast",
                "exit-address-family",
                "exit"
            ]
        );
        assert_eq!(
            render_vni("ovnvrf10", 10),
            ["vrf ovnvrf10", "vni 10", "exit-vrf"]
        );
        assert_eq!(
            unrender_vni("ovnvrf10", 10),
            ["vrf ovnvrf10", "no vni 10", "exit-vrf"]
        );
        let text = "vrf a\n vni 5\nexit-vrf\n!\nvrf b\nexit-vrf\n!\nvrf c\n vni 7 prefix-routes-only\nexit-vrf\n";
        assert_eq!(
            parse_vnis(text),
            BTreeMap::from([("a".to_string(), 5), ("c".to_string(), 7)])
        );
    }

    #[test]
    fn evpn_new_instance_then_vni_and_in_place() {
        let i = with_evpn(
            intent(&[("ovnvrf10", vec![]), ("ovnvrf11", vec![])]),
            &[("ovnvrf10", 10)],
        );
        let p = plan(&i, "frr version 8.4.4\n!\nend\n");
        // The instance (with its address family), then the VNI.
        let header = p
            .commands
            .iter()
            .position(|c| c == "router bgp 64999 vrf ovnvrf10")
            .unwrap();
        let af = p.commands.iter().position(|c| c == EVPN_AF).unwrap();
        let vrf = p.commands.iter().position(|c| c == "vrf ovnvrf10").unwrap();
        assert!(header < af && af < vrf);
        assert_eq!(p.commands[vrf - 1], "exit");
        assert_eq!(
            p.commands[vrf..vrf + 3],
            ["vrf ovnvrf10", "vni 10", "exit-vrf"]
        );
        // Only one VRF has EVPN.
        assert_eq!(p.commands.iter().filter(|c| *c == EVPN_AF).count(), 1);
        assert!(p
            .changes
            .contains(&"missing: vrf ovnvrf10 / vni 10".to_string()));
        assert_eq!(plan(&i, &running_of(&i, "")), DynamicPlan::default());
    }

    #[test]
    fn evpn_added_to_an_existing_instance() {
        let before = intent(&[("ovnvrf10", vec![])]);
        let after = with_evpn(before.clone(), &[("ovnvrf10", 10)]);
        let p = plan(&after, &running_of(&before, ""));
        assert!(p.commands.contains(&"advertise ipv4 unicast".to_string()));
        assert_eq!(
            p.commands[p.commands.len() - 3..],
            ["vrf ovnvrf10", "vni 10", "exit-vrf"]
        );
    }

    #[test]
    fn evpn_off_removes_vni_then_af() {
        let on = with_evpn(intent(&[("ovnvrf10", vec![])]), &[("ovnvrf10", 10)]);
        let running = running_of(&on, "");
        let off = intent(&[("ovnvrf10", vec![])]);
        let p = plan(&off, &running);
        assert_eq!(
            p.commands,
            [
                "vrf ovnvrf10",
                "no vni 10",
                "exit-vrf",
                "router bgp 64999 vrf ovnvrf10",
                "address-family l2vpn evpn",
                "no advertise ipv4 unicast",
                "no advertise ipv6 unicast",
                "exit-address-family",
                "exit",
            ]
        );
        // The VRF no longer advertised: the VNI, then the instance, then the route-map.
        let p = plan(&intent(&[]), &running);
        assert_eq!(
            p.commands,
            [
                "vrf ovnvrf10",
                "no vni 10",
                "exit-vrf",
                "no router bgp 64999 vrf ovnvrf10",
                "no route-map ovn-route-dynamic",
            ]
        );
        // A changed VNI: the old one goes, the new one comes; the instance stays.
        let other = with_evpn(intent(&[("ovnvrf10", vec![])]), &[("ovnvrf10", 20)]);
        let p = plan(&other, &running);
        assert_eq!(
            p.commands,
            [
                "vrf ovnvrf10",
                "no vni 10",
                "exit-vrf",
                "vrf ovnvrf10",
                "vni 20",
                "exit-vrf"
            ]
        );
        // A changed AS: VNI off, instance replaced, VNI on again.
        let mut asn = on.clone();
        asn.asn = 65010;
        let p = plan(&asn, &running);
        assert_eq!(
            p.commands[..4],
            [
                "vrf ovnvrf10",
                "no vni 10",
                "exit-vrf",
                "no router bgp 64999 vrf ovnvrf10"
            ]
        );
        assert_eq!(
            p.commands[p.commands.len() - 3..],
            ["vrf ovnvrf10", "vni 10", "exit-vrf"]
        );
    }

    #[test]
    fn an_operators_vni_is_left_alone() {
        // The operator gave the VRF its VNI; our instance has no EVPN: nothing of EVPN rendered.
        let plain = intent(&[("ovnvrf10", vec![])]);
        let running = running_of(&plain, "vrf ovnvrf10\n vni 10\nexit-vrf\n!\n");
        let want = with_evpn(plain.clone(), &[("ovnvrf10", 10)]);
        let p = plan(&want, &running);
        assert_eq!(p.foreign_vni, ["ovnvrf10"]);
        assert!(p.commands.is_empty(), "{:?}", p.commands);
        // Without EVPN, and with the instance gone, the operator's VNI stays.
        let p = plan(&intent(&[]), &running);
        assert!(
            !p.commands.iter().any(|c| c.contains("vni")),
            "{:?}",
            p.commands
        );
    }

    #[test]
    fn batches_split_between_blocks() {
        let vrfs: Vec<(String, Vec<Neighbor>)> =
            (0..400).map(|n| (format!("v{n}"), vec![])).collect();
        let i = DynamicIntent {
            asn: 1,
            router_id: None,
            vrfs: vrfs.into_iter().collect(),
            evpn: BTreeMap::new(),
        };
        let p = plan(&i, "");
        let b = batches(&p.commands);
        assert!(b.len() > 1);
        assert_eq!(b.iter().map(|b| b.len()).sum::<usize>(), p.commands.len());
        for x in &b[..b.len() - 1] {
            assert_eq!(x.last().map(String::as_str), Some("exit"));
        }
        for x in &b[1..] {
            assert!(x[0].starts_with("router bgp 1 vrf "), "{:?}", x[0]);
        }
    }
}
