//! L3 EVPN (type-5) for the dynamic-routing VRFs (`[ovn_route] dynamic_routing_evpn`): the
//! kernel side, called from [`crate::dynamic`] right after its VRF pass.
//!
//! * VNI of a router advertised here: its `Logical_Router` option [`VNI_OPTION`] (1..16777215;
//!   an invalid value is a problem naming the router and the option, and the router gets no
//!   EVPN), else its table id. Routers sharing a VRF must agree on the VNI, and a VNI belongs to
//!   one VRF: conflicts are problems and the VRFs concerned get no EVPN.
//! * Devices per VRF with EVPN (FRR's L3VNI recipe): a bridge [`bridge_name`] (`br-<vni>`) in the
//!   VRF and a VXLAN device [`vxlan_name`] (`vxlan-<vni>`, local `evpn_local_ip`, dstport
//!   `evpn_udp_dstport`, nolearning) in the bridge, both up and marked with the alias
//!   [`EVPN_MARK`] when created here. Marked devices no longer wanted are deleted; unmarked
//!   devices of those names are used when they fit and reported otherwise, never deleted.
//! * FRR: [`Evpn::frr_vnis`] feeds [`ovn_route_frr::dynamic::DynamicIntent::evpn`].
//!
//! [`wanted_vnis`] and [`wanted_devices`] are pure; [`Evpn::pass`] does the I/O through the
//! kernel crate's [`Reconciler`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ovn_model::nb::LogicalRouter;
use ovn_route_kernel::{L3Vni, Reconciler, MAX_VNI};
use ovn_route_plan::dynamic::DynamicPlan;
use ovn_route_plan::exposure::Rejected;
use ovsdb::Session;

use crate::apply::ApplyReport;

/// The alias that marks the bridges and VXLAN devices ovn-route creates for EVPN.
pub const EVPN_MARK: &str = "ovn-route:evpn";

/// The `Logical_Router` option that sets the router's L3 VNI (ovn-route's own: upstream OVN has
/// no L3 VNI option; its `dynamic-routing-vni` is on `Logical_Switch`, for L2 EVPN).
pub const VNI_OPTION: &str = "ovn-route-evpn-vni";

/// The bridge of VNI `vni` (`br-<vni>`, at most 11 bytes).
pub fn bridge_name(vni: u32) -> String {
    format!("br-{vni}")
}

/// The VXLAN device of VNI `vni` (`vxlan-<vni>`, at most 14 bytes).
pub fn vxlan_name(vni: u32) -> String {
    format!("vxlan-{vni}")
}

/// One router advertised here, as [`wanted_vnis`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterVni {
    /// The router's name.
    pub router: String,
    /// Its VRF.
    pub vrf: String,
    /// Its table id.
    pub table: u32,
    /// Its [`VNI_OPTION`] value, when set.
    pub option: Option<String>,
}

/// The VNI of each VRF with EVPN, and the problems (invalid options, conflicts). Pure.
pub fn wanted_vnis(routers: &[RouterVni]) -> (BTreeMap<String, u32>, Vec<Rejected>) {
    let mut problems = vec![];
    // VRF -> (VNI -> routers).
    let mut by_vrf: BTreeMap<&str, BTreeMap<u32, Vec<&str>>> = BTreeMap::new();
    for r in routers {
        let vni = match &r.option {
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (1..=MAX_VNI).contains(&n) => n,
                _ => {
                    problems.push(Rejected {
                        value: v.clone(),
                        source: format!("Logical_Router {} options:{VNI_OPTION}", r.router),
                        reason: "not a VNI (1..16777215): no EVPN for this router".into(),
                    });
                    continue;
                }
            },
            None if r.table <= MAX_VNI => r.table,
            None => {
                problems.push(Rejected {
                    value: r.table.to_string(),
                    source: format!("Logical_Router {} (table id)", r.router),
                    reason: format!(
                        "the table id is above the largest VNI: set options:{VNI_OPTION}; no \
                         EVPN for this router"
                    ),
                });
                continue;
            }
        };
        by_vrf
            .entry(&r.vrf)
            .or_default()
            .entry(vni)
            .or_default()
            .push(&r.router);
    }
    let mut vnis: BTreeMap<String, u32> = BTreeMap::new();
    for (vrf, v) in &by_vrf {
        if v.len() > 1 {
            let all: Vec<String> = v
                .iter()
                .map(|(n, rs)| format!("{n} ({})", rs.join(", ")))
                .collect();
            problems.push(Rejected {
                value: all.join(", "),
                source: format!("VRF {vrf}"),
                reason: "the routers of this VRF ask for different VNIs: no EVPN for it".into(),
            });
            continue;
        }
        if let Some((n, _)) = v.iter().next() {
            vnis.insert(vrf.to_string(), *n);
        }
    }
    let mut by_vni: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (vrf, n) in &vnis {
        by_vni.entry(*n).or_default().push(vrf.clone());
    }
    for (n, vrfs) in by_vni.into_iter().filter(|(_, v)| v.len() > 1) {
        problems.push(Rejected {
            value: n.to_string(),
            source: format!("VRFs {}", vrfs.join(", ")),
            reason: "one VNI for several VRFs: no EVPN for them".into(),
        });
        for v in vrfs {
            vnis.remove(&v);
        }
    }
    (vnis, problems)
}

/// What `dynamic_routing_evpn` sets for the devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvpnSettings {
    /// `evpn_local_ip`.
    pub local: Ipv4Addr,
    /// `evpn_udp_dstport`.
    pub port: u16,
    /// `evpn_nic`, the VXLAN devices' underlay device.
    pub dev: Option<String>,
}

/// The devices of each VRF with EVPN. Pure.
pub fn wanted_devices(vnis: &BTreeMap<String, u32>, s: &EvpnSettings) -> Vec<L3Vni> {
    vnis.iter()
        .map(|(vrf, vni)| L3Vni {
            vrf: vrf.clone(),
            vni: *vni,
            bridge: bridge_name(*vni),
            vxlan: vxlan_name(*vni),
            local: s.local,
            port: s.port,
            dev: s.dev.clone(),
        })
        .collect()
}

/// The EVPN state between passes.
#[derive(Debug, Default)]
pub struct Evpn {
    /// `None`: EVPN off (marked devices are removed, FRR gets no VNI).
    settings: Option<EvpnSettings>,
    /// The VNIs of the last pass, by VRF.
    vnis: BTreeMap<String, u32>,
    /// The problems of the last pass.
    problems: Vec<Rejected>,
    /// The devices as last applied without error (`None`: not yet, or an error: try again).
    applied: Option<Vec<L3Vni>>,
    /// The VNIs last handed to FRR.
    noted: Option<BTreeMap<String, u32>>,
}

impl Evpn {
    /// From `[ovn_route] dynamic_routing_evpn` and `[DEFAULT] evpn_*` (off without an IPv4
    /// `evpn_local_ip`, which the configuration refuses anyway).
    pub fn from_config(cfg: &ovn_route_config::Config) -> Self {
        let settings = match (
            cfg.ovn_route.dynamic_routing_evpn,
            cfg.default.evpn_local_ip,
        ) {
            (true, Some(IpAddr::V4(local))) => Some(EvpnSettings {
                local,
                port: cfg.default.evpn_udp_dstport,
                dev: cfg.default.evpn_nic.clone(),
            }),
            _ => None,
        };
        Evpn {
            settings,
            ..Evpn::default()
        }
    }

    /// Whether EVPN is on.
    pub fn enabled(&self) -> bool {
        self.settings.is_some()
    }

    /// The VNI of each VRF for FRR (empty when EVPN is off).
    pub fn frr_vnis(&self) -> BTreeMap<String, u32> {
        if self.settings.is_none() {
            return BTreeMap::new();
        }
        self.vnis.clone()
    }

    /// True (once) when [`Evpn::frr_vnis`] changed since the last call.
    pub fn take_frr_change(&mut self) -> bool {
        let now = self.frr_vnis();
        if self.noted.as_ref() == Some(&now) {
            return false;
        }
        self.noted = Some(now);
        true
    }

    /// Invalid VNI options and conflicts of the last pass.
    pub fn problems(&self) -> &[Rejected] {
        &self.problems
    }

    /// One pass: the VNIs of the routers advertised here (`plan`, options from `nb`), then their
    /// devices, and the removal of marked devices no longer wanted. `full` checks every device
    /// even when nothing changed.
    pub async fn pass(
        &mut self,
        rec: &Reconciler,
        plan: &DynamicPlan,
        nb: &Session,
        dry_run: bool,
        full: bool,
        report: &mut ApplyReport,
    ) {
        let (vnis, problems) = match &self.settings {
            Some(_) if !plan.native => {
                let routers: Vec<RouterVni> = nb.read(|n| {
                    plan.routers
                        .values()
                        .map(|r| RouterVni {
                            router: r.name.clone(),
                            vrf: r.vrf.clone(),
                            table: r.table,
                            option: LogicalRouter::get(n, &r.uuid)
                                .and_then(|lr| lr.options().get(VNI_OPTION).map(str::to_string)),
                        })
                        .collect()
                });
                wanted_vnis(&routers)
            }
            _ => (BTreeMap::new(), vec![]),
        };
        for p in problems
            .iter()
            .filter(|p| full || !self.problems.contains(p))
        {
            tracing::warn!(value = %p.value, source = %p.source, reason = %p.reason, "EVPN");
        }
        self.problems = problems;
        self.vnis = vnis;
        let wanted = match &self.settings {
            Some(s) => wanted_devices(&self.vnis, s),
            None => vec![],
        };
        if !full && self.applied.as_ref() == Some(&wanted) {
            return;
        }
        let mut ok = true;
        for w in &wanted {
            let what = format!("EVPN VNI {} (VRF {})", w.vni, w.vrf);
            match rec.link(&w.vrf).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    // The VRF comes from maintain-vrf or the operator; retried on each pass.
                    report.errors.push(format!(
                        "{what}: no VRF device {}: devices not created",
                        w.vrf
                    ));
                    ok = false;
                    continue;
                }
                Err(e) => {
                    report.errors.push(format!("{what}: {e}"));
                    ok = false;
                    continue;
                }
            }
            if dry_run {
                for name in [&w.bridge, &w.vxlan] {
                    if let Ok(None) = rec.link(name).await {
                        report.changes.push(format!("{what}: create {name}"));
                    }
                }
                continue;
            }
            match rec.ensure_l3vni(w, EVPN_MARK).await {
                Ok(o) => {
                    for c in o.changes {
                        if c.starts_with("created ") {
                            *report.counts.entry(("evpn device", "add")).or_default() += 1;
                        }
                        report.changes.push(format!("{what}: {c}"));
                    }
                }
                Err(e) => {
                    report.errors.push(format!("{what}: {e}"));
                    ok = false;
                }
            }
        }
        let keep: BTreeSet<&str> = wanted
            .iter()
            .flat_map(|w| [w.bridge.as_str(), w.vxlan.as_str()])
            .collect();
        match rec.all_links().await {
            Ok(links) => {
                let mut stale: Vec<_> = links
                    .iter()
                    .filter(|l| {
                        l.alias.as_deref() == Some(EVPN_MARK)
                            && matches!(l.kind.as_deref(), Some("vxlan") | Some("bridge"))
                            && !keep.contains(l.name.as_str())
                    })
                    .collect();
                // The VXLAN devices before their bridges.
                stale.sort_by_key(|l| (l.kind.as_deref() != Some("vxlan"), l.name.clone()));
                for l in stale {
                    if dry_run {
                        report.changes.push(format!("EVPN: delete {}", l.name));
                        continue;
                    }
                    match rec.delete_marked_link(&l.name, EVPN_MARK).await {
                        Ok(true) => {
                            *report.counts.entry(("evpn device", "delete")).or_default() += 1;
                            report.changes.push(format!("EVPN: deleted {}", l.name));
                        }
                        Ok(false) => {}
                        Err(e) => {
                            report.errors.push(format!("EVPN: delete {}: {e}", l.name));
                            ok = false;
                        }
                    }
                }
            }
            Err(e) => {
                report.errors.push(format!("EVPN links: {e}"));
                ok = false;
            }
        }
        self.applied = (ok && !dry_run).then_some(wanted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(router: &str, vrf: &str, table: u32, option: Option<&str>) -> RouterVni {
        RouterVni {
            router: router.into(),
            vrf: vrf.into(),
            table,
            option: option.map(str::to_string),
        }
    }

    #[test]
    fn vni_from_option_else_table() {
        let (v, p) = wanted_vnis(&[
            r("lr0", "ovnvrf10", 10, None),
            r("lr1", "ovnvrf11", 11, Some("5000")),
        ]);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            v,
            BTreeMap::from([("ovnvrf10".to_string(), 10), ("ovnvrf11".to_string(), 5000)])
        );
    }

    #[test]
    fn invalid_options_name_the_router_and_option() {
        for bad in ["0", "16777216", "x", "-1", ""] {
            let (v, p) = wanted_vnis(&[
                r("lr0", "ovnvrf10", 10, Some(bad)),
                r("lr1", "ovnvrf11", 11, None),
            ]);
            assert_eq!(v, BTreeMap::from([("ovnvrf11".to_string(), 11)]), "{bad}");
            assert_eq!(p.len(), 1);
            assert_eq!(p[0].source, "Logical_Router lr0 options:ovn-route-evpn-vni");
            assert_eq!(p[0].value, bad);
        }
        let (v, p) = wanted_vnis(&[r("lr0", "big", 20_000_000, None)]);
        assert!(v.is_empty());
        assert!(p[0].reason.contains(VNI_OPTION), "{p:?}");
        // The largest VNI is fine.
        let (v, _) = wanted_vnis(&[r("lr0", "v", 1, Some("16777215"))]);
        assert_eq!(v["v"], MAX_VNI);
    }

    #[test]
    fn conflicts_get_no_evpn() {
        // Two routers in one VRF: the same VNI is fine, different ones are not.
        let (v, p) = wanted_vnis(&[
            r("lr0", "shared", 10, None),
            r("lr1", "shared", 10, Some("10")),
        ]);
        assert_eq!(v["shared"], 10);
        assert!(p.is_empty());
        let (v, p) = wanted_vnis(&[
            r("lr0", "shared", 10, None),
            r("lr1", "shared", 10, Some("11")),
        ]);
        assert!(v.is_empty());
        assert!(
            p[0].source.contains("shared") && p[0].value.contains("lr1"),
            "{p:?}"
        );
        // One VNI for two VRFs: neither.
        let (v, p) = wanted_vnis(&[
            r("lr0", "a", 10, Some("7")),
            r("lr1", "b", 11, Some("7")),
            r("lr2", "c", 12, None),
        ]);
        assert_eq!(v, BTreeMap::from([("c".to_string(), 12)]));
        assert_eq!(p[0].source, "VRFs a, b");
    }

    #[test]
    fn devices_per_vrf() {
        let s = EvpnSettings {
            local: Ipv4Addr::new(192, 0, 2, 1),
            port: 4789,
            dev: None,
        };
        let vnis = BTreeMap::from([("ovnvrf10".to_string(), 10), ("x".to_string(), MAX_VNI)]);
        let d = wanted_devices(&vnis, &s);
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0],
            L3Vni {
                vrf: "ovnvrf10".into(),
                vni: 10,
                bridge: "br-10".into(),
                vxlan: "vxlan-10".into(),
                local: s.local,
                port: 4789,
                dev: None,
            }
        );
        // The longest names fit the kernel's 15 bytes.
        assert_eq!(d[1].vxlan, "vxlan-16777215");
        assert!(d[1].vxlan.len() <= ovn_route_kernel::MAX_LINK_NAME);
        assert!(d[1].bridge.len() <= ovn_route_kernel::MAX_LINK_NAME);
        assert!(wanted_devices(&BTreeMap::new(), &s).is_empty());
    }

    #[test]
    fn off_without_the_option_or_an_ipv4_vtep() {
        let c = ovn_route_config::Config::default();
        assert!(!Evpn::from_config(&c).enabled());
        let mut c = ovn_route_config::Config::default();
        c.ovn_route.dynamic_routing_evpn = true;
        c.default.evpn_local_ip = Some("192.0.2.1".parse().unwrap());
        let mut e = Evpn::from_config(&c);
        assert!(e.enabled());
        e.vnis.insert("v".into(), 3);
        assert_eq!(e.frr_vnis()["v"], 3);
        assert!(e.take_frr_change());
        assert!(!e.take_frr_change());
    }
}
