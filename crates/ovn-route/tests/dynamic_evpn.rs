//! L3 EVPN (type-5) for the dynamic-routing VRFs (`dynamic_routing_evpn`), with real VRF, bridge
//! and VXLAN devices and FRR (kernel tier: scripts/kernel-tier.sh runs this in a VM).
//!
//! The agent on hv1 creates lr0's VRF (maintain-vrf), `br-<vni>` in it and `vxlan-<vni>` in the
//! bridge (marked `ovn-route:evpn`), and renders the VRF's `vni` and the instance's `l2vpn evpn`
//! address family. The operator's part (default instance: EVPN peering with the upstream over
//! the underlay link, `advertise-all-vni`) is configured here by hand, as is the upstream's VRF
//! with the same VNI. The upstream's VRF table gets lr0's prefixes via the chassis' VTEP
//! (onlink). Then a VNI change onto a bridge made by someone else (used, kept), and EVPN off
//! (our devices and FRR lines gone, the foreign bridge and the operator's lines kept).

use std::path::Path;
use std::time::Duration;

use ovn_route_lab::dynamic::DYN_UPSTREAM_AS;
use ovn_route_lab::dynamic::{DynamicLab, DYN_CHASSIS_ADDR, DYN_CHASSIS_AS, DYN_UPSTREAM_ADDR};
use ovn_route_lab::evpn;
use ovn_route_lab::{skip_unless_root, wait_until};

/// Generous: the VM emulates its CPU in software.
const WAIT: Duration = Duration::from_secs(180);
const VRF: &str = "ovnvrf1000";
const VNI: u32 = 5000;
const UP_VRF: &str = "vrf-up";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ovn-route"))
}

fn check<T>(x: &DynamicLab, r: ovn_route_lab::Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}\n{}", dump(x)),
    }
}

fn wait<T>(
    x: &DynamicLab,
    what: &str,
    mut probe: impl FnMut(&mut String) -> ovn_route_lab::Result<Option<T>>,
) -> T {
    let r = wait_until(what, WAIT, |last| probe(last));
    check(x, r)
}

fn dump(x: &DynamicLab) -> String {
    let mut s = x.dump();
    if let Some(b) = &x.bgp {
        s.push_str(&format!(
            "--- chassis EVPN:\n{}\n{}\n--- upstream EVPN:\n{}\n{}\n{}\n",
            b.frr.vtysh(&["show evpn vni detail"]).unwrap_or_default(),
            evpn::prefix_routes(&b.frr).unwrap_or_default(),
            b.upstream
                .vtysh(&["show running-config"])
                .unwrap_or_default(),
            evpn::prefix_routes(&b.upstream).unwrap_or_default(),
            b.upstream
                .netns()
                .ip(&["route", "show", "vrf", UP_VRF])
                .unwrap_or_default(),
        ));
    }
    s
}

fn chassis_frr(x: &DynamicLab) -> String {
    x.bgp
        .as_ref()
        .unwrap()
        .frr
        .vtysh(&["show running-config"])
        .unwrap_or_default()
}

/// `ip -d link show NAME` in hv1 (empty when there is none).
fn link(x: &DynamicLab, name: &str) -> String {
    x.ip(0, &["-d", "link", "show", name]).unwrap_or_default()
}

fn extra(evpn_on: bool) -> String {
    format!(
        "dynamic_routing_frr = true\ndynamic_routing_evpn = {evpn_on}\n\
         [DEFAULT]\nevpn_local_ip = {DYN_CHASSIS_ADDR}\n"
    )
}

#[test]
#[ignore = "kernel tier: needs vrf/dummy, run by scripts/kernel-tier.sh"]
fn kernel_tier_evpn_type5_devices_frr_and_cleanup() {
    if skip_unless_root("kernel_tier_evpn_type5_devices_frr_and_cleanup") {
        return;
    }
    let mut x = DynamicLab::start(&[
        ("dynamic-routing-redistribute", "connected,nat"),
        ("ovn-route-evpn-vni", &VNI.to_string()),
    ])
    .unwrap();
    check(
        &x,
        x.lab.nbctl(&[
            "set",
            "Logical_Router_Port",
            "lr0-pub",
            "options:dynamic-routing-maintain-vrf=true",
        ]),
    );
    x.start_bgp(0).unwrap();
    // The underlay: dyn0 (chassis, 172.16.0.20 = the VTEP) <-> the upstream (172.16.0.254),
    // both in their default VRF (a host route: the lab's up0 has the same network). The
    // operator's EVPN peering in the chassis' default instance.
    check(
        &x,
        x.ip(
            0,
            &[
                "route",
                "add",
                &format!("{DYN_UPSTREAM_ADDR}/32"),
                "dev",
                "dyn0",
            ],
        ),
    );
    {
        let b = x.bgp.as_ref().unwrap();
        check(
            &x,
            evpn::default_instance_evpn(&b.frr, DYN_CHASSIS_AS, DYN_UPSTREAM_ADDR, DYN_UPSTREAM_AS),
        );
        // The upstream: its own VRF with the same VNI (devices made by hand), EVPN peering,
        // and the chassis' auto-derived route target imported (eBGP: the ASes differ).
        check(
            &x,
            evpn::make_l3vni(b.upstream.netns(), UP_VRF, 77, VNI, DYN_UPSTREAM_ADDR),
        );
        check(
            &x,
            evpn::default_instance_evpn(
                &b.upstream,
                DYN_UPSTREAM_AS,
                DYN_CHASSIS_ADDR,
                DYN_CHASSIS_AS,
            ),
        );
        check(
            &x,
            evpn::upstream_vrf_evpn(
                &b.upstream,
                DYN_UPSTREAM_AS,
                UP_VRF,
                VNI,
                &format!("{DYN_CHASSIS_AS}:{VNI}"),
            ),
        );
    }
    x.ovn_route_extra = extra(true);
    x.start_agent(0, bin()).unwrap();

    // The devices: br-5000 in the VRF, vxlan-5000 (id, local, dstport, nolearning) in the
    // bridge, both up and marked.
    let br = format!("br-{VNI}");
    let vx = format!("vxlan-{VNI}");
    wait(&x, "the agent's EVPN devices", |last| {
        let (b, v) = (link(&x, &br), link(&x, &vx));
        *last = format!("{b}\n{v}");
        Ok((b.contains(&format!("master {VRF}"))
            && b.contains("ovn-route:evpn")
            && b.contains(",UP")
            && v.contains(&format!("master {br}"))
            && v.contains(&format!("vxlan id {VNI} local {DYN_CHASSIS_ADDR}"))
            && v.contains("dstport 4789")
            && v.contains("nolearning")
            && v.contains("ovn-route:evpn")
            && v.contains(",UP"))
        .then_some(()))
    });
    assert!(
        link(&x, &br).contains("addrgenmode none"),
        "{}",
        link(&x, &br)
    );

    // FRR: the VRF's VNI and the instance's EVPN address family; the operator's default
    // instance as configured.
    wait(&x, "the agent's EVPN lines in FRR", |last| {
        *last = chassis_frr(&x);
        Ok((last.contains(&format!("vrf {VRF}\n vni {VNI}\nexit-vrf"))
            && last.contains(
                " address-family l2vpn evpn\n  advertise ipv4 unicast\n  advertise ipv6 unicast\n",
            ))
        .then_some(()))
    });

    // The upstream learns lr0's prefixes as type-5 routes and installs them in its VRF via the
    // chassis' VTEP.
    wait(&x, "type-5 routes at the upstream", |last| {
        let b = x.bgp.as_ref().unwrap();
        let r = evpn::prefix_routes(&b.upstream)?;
        *last = r.clone();
        Ok(
            (r.contains("[5]:[0]:[24]:[10.0.0.0]") && r.contains("[5]:[0]:[32]:[172.16.0.1]"))
                .then_some(()),
        )
    });
    wait(&x, "the upstream VRF's routes via the VTEP", |last| {
        let b = x.bgp.as_ref().unwrap();
        let r = b.upstream.netns().ip(&["route", "show", "vrf", UP_VRF])?;
        *last = r.clone();
        Ok(r.lines()
            .any(|l| {
                l.starts_with("10.0.0.0/24")
                    && l.contains(&format!("via {DYN_CHASSIS_ADDR} dev br-{VNI}"))
                    && l.contains("onlink")
            })
            .then_some(()))
    });

    // A bridge of someone else's (unmarked) for VNI 6000, in the VRF: the VNI change uses it,
    // creates vxlan-6000 and deletes our br-5000 / vxlan-5000.
    check(&x, x.ip(0, &["link", "add", "br-6000", "type", "bridge"]));
    check(
        &x,
        x.ip(0, &["link", "set", "br-6000", "master", VRF, "up"]),
    );
    check(
        &x,
        x.lab.nbctl(&[
            "set",
            "Logical_Router",
            "lr0",
            "options:ovn-route-evpn-vni=6000",
        ]),
    );
    wait(&x, "VNI 6000 devices, 5000 gone", |last| {
        let (b, v) = (link(&x, "br-6000"), link(&x, "vxlan-6000"));
        *last = format!("{b}\n{v}\n{}", link(&x, &br));
        Ok((v.contains("master br-6000")
            && v.contains("vxlan id 6000")
            && v.contains("ovn-route:evpn")
            && !b.contains("ovn-route:evpn")
            && link(&x, &br).is_empty()
            && link(&x, &vx).is_empty())
        .then_some(()))
    });
    wait(&x, "FRR with VNI 6000", |last| {
        *last = chassis_frr(&x);
        Ok((last.contains(&format!("vrf {VRF}\n vni 6000\nexit-vrf"))
            && !last.contains(&format!("vni {VNI}")))
        .then_some(()))
    });

    // An invalid VNI option: reported, naming the router and the option; no EVPN for lr0.
    check(
        &x,
        x.lab.nbctl(&[
            "set",
            "Logical_Router",
            "lr0",
            "options:ovn-route-evpn-vni=0",
        ]),
    );
    wait(
        &x,
        "the invalid VNI reported and the devices gone",
        |last| {
            let log = x.agents[0].as_ref().unwrap().log_tail(200);
            *last = format!("{}\n{log}", link(&x, "vxlan-6000"));
            Ok(
                (log.contains("Logical_Router lr0 options:ovn-route-evpn-vni")
                    && link(&x, "vxlan-6000").is_empty())
                .then_some(()),
            )
        },
    );
    check(
        &x,
        x.lab.nbctl(&[
            "set",
            "Logical_Router",
            "lr0",
            "options:ovn-route-evpn-vni=6000",
        ]),
    );
    wait(&x, "vxlan-6000 again", |last| {
        *last = link(&x, "vxlan-6000");
        Ok(last.contains("master br-6000").then_some(()))
    });

    // EVPN off (agent restarted with dynamic_routing_evpn = false): our VXLAN device and FRR
    // lines go; the foreign bridge, the agent's instance and the operator's lines stay.
    x.agents[0].as_mut().unwrap().stop();
    x.ovn_route_extra = extra(false);
    x.start_agent(0, bin()).unwrap();
    wait(&x, "EVPN devices and FRR lines removed", |last| {
        let conf = chassis_frr(&x);
        *last = format!("{conf}\n{}", link(&x, "vxlan-6000"));
        Ok((link(&x, "vxlan-6000").is_empty()
            && !conf.contains(" vni 6000")
            && !conf.contains("  advertise ipv4 unicast")
            && conf.contains(&format!("router bgp {DYN_CHASSIS_AS} vrf {VRF}\n")))
        .then_some(()))
    });
    let conf = chassis_frr(&x);
    assert!(conf.contains("  advertise-all-vni"), "{conf}");
    assert!(
        conf.contains(&format!("  neighbor {DYN_UPSTREAM_ADDR} activate")),
        "{conf}"
    );
    let b = link(&x, "br-6000");
    assert!(
        b.contains(&format!("master {VRF}")) && !b.contains("ovn-route:evpn"),
        "{b}"
    );
}
