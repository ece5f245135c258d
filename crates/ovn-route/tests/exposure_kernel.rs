//! Acceptance of the exposure agent with a VRF (kernel tier: this machine's kernel has no `vrf`
//! and `dummy` link types; scripts/kernel-tier.sh runs these in a VM). Real OVN, OVS and FRR on
//! the lab; the upstream router's view (IPv4 and IPv6) is the truth.
//!
//! One lab, one test (the VM is software-emulated): `vrf_mode = create` with
//! `advertise_method = routes` (and the provider network tagged, then untagged: VLAN devices),
//! then `addresses`, then the agent stopped, the exposed rows
//! deleted from the NB and the agent started again: nothing of ours may be left.

use std::time::Duration;

use ovn_route_lab::exposure_vrf::{VrfAdvertise, V6_PROVIDER_VM};
use ovn_route_lab::{skip_unless_root, wait_until, ExposureLab};

mod common;
use common::bin;

/// What the upstream learns in routes mode (tenant network as a subnet), IPv4 and IPv6.
const ROUTES_MODE_V4: &[&str] = &[
    "10.0.0.0/24",
    "172.16.0.1/32",
    "172.16.0.10/32",
    "172.16.0.101/32",
    "172.16.0.102/32",
    "172.16.0.11/32",
    "172.16.0.200/32",
];
const ROUTES_MODE_V6: &[&str] = &["2001:db8:ff::11/128", "2001:db8:ff::1/128", "fd00::/64"];

/// Generous: the VM emulates its CPU in software.
const WAIT: Duration = Duration::from_secs(120);

fn dump(x: &mut ExposureLab) -> String {
    let mut s = String::new();
    for i in 0..2 {
        if let Some(a) = x.agents[i].as_mut() {
            s.push_str(&format!("--- agent {i} log:\n{}\n", a.log_tail(60)));
        }
        let ns = x.lab.chassis(i).netns();
        let ip = |args: &[&str]| ns.ip(args).unwrap_or_else(|e| e.to_string());
        s.push_str(&format!(
            "--- hv{} links:\n{}--- table 10:\n{}{}--- bgp-nic:\n{}--- table 200:\n{}{}",
            i + 1,
            ip(&["-d", "-br", "link", "show"]),
            ip(&["route", "show", "table", "10"]),
            ip(&["-6", "route", "show", "table", "10"]),
            ip(&["addr", "show", "dev", "bgp-nic"]),
            ip(&["route", "show", "table", "200"]),
            ip(&["-6", "route", "show", "table", "200"]),
        ));
        s.push_str(&format!(
            "--- hv{} FRR:\n{}\n{}\n",
            i + 1,
            x.bgp[i]
                .frr
                .vtysh(&["show running-config"])
                .unwrap_or_default(),
            x.bgp[i]
                .frr
                .vtysh(&["show bgp vrf all summary"])
                .unwrap_or_default()
        ));
    }
    s.push_str(&format!(
        "--- upstream:\n{}\n{}\n",
        x.upstream_bgp_table().unwrap_or_default(),
        x.upstream_bgp6_table().unwrap_or_default()
    ));
    s
}

macro_rules! check {
    ($x:expr, $e:expr) => {
        if let Err(err) = $e {
            let d = dump(&mut $x);
            panic!("{err}\n{d}");
        }
    };
}

/// The prefixes the upstream learned from the chassis (not the links' own), IPv4 and IPv6,
/// each with its next hop, sorted.
/// (prefix, next hop) pairs.
type Routes = Vec<(String, String)>;

fn upstream_set(x: &ExposureLab) -> (Routes, Routes) {
    let mut v4: Vec<_> = x
        .upstream_bgp_routes()
        .unwrap()
        .into_iter()
        .filter(|(p, _)| !p.starts_with("192.0.2."))
        .collect();
    let mut v6: Vec<_> = x
        .upstream_bgp6_routes()
        .unwrap()
        .into_iter()
        .filter(|(p, _)| !p.starts_with("2001:db8:0:"))
        .collect();
    v4.sort();
    v6.sort();
    (v4, v6)
}

/// Waits until the upstream routes exactly `v4` and `v6` (prefixes), all via chassis hv1.
fn expect_upstream(x: &mut ExposureLab, v4: &[&str], v6: &[&str]) {
    for p in v4 {
        check!(*x, x.wait_upstream_via(p, 0, WAIT));
    }
    for p in v6 {
        check!(*x, x.wait_upstream6_via(p, 0, WAIT));
    }
    let (nh4, nh6) = (x.bgp[0].address.clone(), x.chassis_ipv6(0));
    let want = |ps: &[&str], nh: &str| {
        let mut w: Routes = ps.iter().map(|p| (p.to_string(), nh.to_string())).collect();
        w.sort();
        w
    };
    let (want4, want6) = (want(v4, &nh4), want(v6, &nh6));
    // Withdrawals of what is no longer exposed may still be under way: wait for the exact set.
    let r = wait_until("the upstream's exact set of routes", WAIT, |last| {
        let got = upstream_set(x);
        *last = format!("{got:?}");
        Ok((got.0 == want4 && got.1 == want6).then_some(()))
    });
    check!(*x, r);
}

/// Waits until chassis `i`'s agent reports a pass without errors and FRR's block configured
/// (`ovn-route status --json`).
fn expect_clean_status(x: &mut ExposureLab, i: usize) {
    let sock = x.agent_dir(i).join("status.sock");
    let r = wait_until(
        "a pass without errors in the agent's status",
        WAIT,
        |last| {
            // Bounded: the status is served by the agent's loop, and the client has no timeout.
            let out = ovn_route_lab::run_with_timeout(
                std::process::Command::new(bin())
                    .args(["status", "--json", "--socket"])
                    .arg(&sock),
                Duration::from_secs(20),
            );
            let v: serde_json::Value = match out {
                Ok(text) => serde_json::from_str(&text).unwrap_or_default(),
                Err(e) => {
                    *last = e.to_string();
                    return Ok(None);
                }
            };
            *last = format!("{v:#}");
            let pass = &v["last_reconcile"];
            Ok((!pass.is_null()
                && pass["errors"].as_array().is_some_and(|e| e.is_empty())
                && v["frr"]["configured"] == true
                && v["frr"]["last_error"].is_null())
            .then_some(()))
        },
    );
    check!(*x, r);
}

fn start_agents(x: &mut ExposureLab, advertise: VrfAdvertise) {
    for i in 0..2 {
        let cfg = x.agent_config_vrf(i, advertise, "");
        x.start_agent(i, bin(), &cfg).unwrap();
    }
}

fn stop_agents(x: &mut ExposureLab) {
    for i in 0..2 {
        x.agent(i).check_alive().unwrap();
        x.agent(i).stop();
    }
}

#[test]
#[ignore = "kernel tier: needs vrf/dummy, run by scripts/kernel-tier.sh"]
fn kernel_tier_exposure_vrf_routes_addresses_and_cleanup() {
    if skip_unless_root("kernel_tier_exposure_vrf_routes_addresses_and_cleanup") {
        return;
    }
    let mut x = ExposureLab::start().expect("lab");
    x.add_ipv6_provider_vm().expect("IPv6 provider VM");
    x.add_ipv6_peering(WAIT).expect("IPv6 BGP sessions");

    // 1. vrf_mode = create, advertise_method = routes: the agent creates the VRF and bgp-nic;
    // exposed prefixes are routes in the VRF's table (proto 201) that FRR leaks into the
    // default instance.
    start_agents(&mut x, VrfAdvertise::Routes);
    expect_upstream(&mut x, ROUTES_MODE_V4, ROUTES_MODE_V6);
    for i in 0..2 {
        expect_clean_status(&mut x, i);
    }
    let ns = x.lab.chassis(0).netns();
    let vrf = ns.ip(&["-d", "link", "show", "bgp-vrf"]).unwrap();
    assert!(vrf.contains("vrf table 10"), "{vrf}");
    let nic = ns.ip(&["-d", "link", "show", "bgp-nic"]).unwrap();
    assert!(
        nic.contains("master bgp-vrf") && nic.contains("dummy"),
        "{nic}"
    );
    let t4 = ns
        .ip(&["route", "show", "table", "10", "proto", "201"])
        .unwrap();
    let t6 = ns
        .ip(&["-6", "route", "show", "table", "10", "proto", "201"])
        .unwrap();
    assert!(t4.contains("172.16.0.10 dev bgp-nic"), "{t4}");
    assert!(t4.contains("10.0.0.0/24 dev bgp-nic"), "{t4}");
    assert!(t6.contains("fd00::/64 dev bgp-nic"), "{t6}");
    assert!(t6.contains("2001:db8:ff::11 dev bgp-nic"), "{t6}");
    let addrs = ns
        .ip(&["addr", "show", "dev", "bgp-nic", "scope", "global"])
        .unwrap();
    assert!(
        !addrs.contains("inet"),
        "no addresses in routes mode: {addrs}"
    );
    let frr = x.bgp[0].frr.vtysh(&["show running-config"]).unwrap();
    assert!(frr.contains("router bgp 64999 vrf bgp-vrf"), "{frr}");
    assert!(frr.contains("redistribute kernel"), "{frr}");

    // 1b. The provider network becomes tagged (localnet tag 100): the agents reach it through
    // br-ex.100, which they create with our alias mark, with proxy ARP on; the bridge table's
    // routes and the gateway's neighbour move onto it. A VLAN device someone else made on br-ex
    // stays untouched. Untagged again: our device goes and the routes come back to br-ex. What
    // the upstream learns never changes.
    for i in 0..2 {
        let ns = x.lab.chassis(i).netns();
        ns.ip(&[
            "link",
            "add",
            "link",
            "br-ex",
            "name",
            "br-ex.200",
            "type",
            "vlan",
            "id",
            "200",
        ])
        .unwrap();
    }
    // A chassis with nothing wired on the provider network (hv2 here) needs no VLAN device.
    let wired: Vec<bool> = (0..2)
        .map(|i| {
            x.lab
                .chassis(i)
                .netns()
                .ip(&["-4", "route", "show", "table", "all", "proto", "201"])
                .unwrap()
                .contains("dev br-ex ")
        })
        .collect();
    assert!(wired[0], "hv1 wires its exposures on br-ex");
    x.lab
        .nbctl(&["set", "logical_switch_port", "ln-public", "tag=100"])
        .unwrap();
    for i in (0..2).filter(|i| wired[*i]) {
        let ns = x.lab.chassis(i).netns();
        let r = wait_until("routes through br-ex.100", WAIT, |last| {
            let link = ns
                .ip(&["-d", "link", "show", "br-ex.100"])
                .unwrap_or_else(|e| e.to_string());
            let routes = ns
                .ip(&["-4", "route", "show", "table", "all", "proto", "201"])
                .unwrap_or_else(|e| e.to_string());
            *last = format!("{link}\n{routes}");
            let moved = routes.contains("dev br-ex.100")
                && !routes.contains("dev br-ex ")
                && (i != 0 || routes.contains("172.16.0.10 dev br-ex.100"));
            Ok(
                (link.contains("alias ovn-route") && link.contains("id 100") && moved)
                    .then_some(()),
            )
        });
        check!(x, r);
        let arp = ns
            .exec(&["cat", "/proc/sys/net/ipv4/conf/br-ex.100/proxy_arp"])
            .unwrap();
        assert_eq!(arp.trim(), "1", "proxy_arp on br-ex.100");
    }
    let ns = x.lab.chassis(0).netns();
    let neigh = ns
        .ip(&["neigh", "show", "dev", "br-ex.100", "nud", "permanent"])
        .unwrap();
    assert!(
        neigh.contains("172.16.0.1 lladdr"),
        "gateway neighbour: {neigh}"
    );
    expect_upstream(&mut x, ROUTES_MODE_V4, ROUTES_MODE_V6);
    x.lab
        .nbctl(&["clear", "logical_switch_port", "ln-public", "tag"])
        .unwrap();
    for (i, was) in wired.iter().copied().enumerate() {
        let ns = x.lab.chassis(i).netns();
        let r = wait_until("br-ex.100 gone, routes back on br-ex", WAIT, |last| {
            let links = ns
                .ip(&["-o", "link", "show"])
                .unwrap_or_else(|e| e.to_string());
            let routes = ns
                .ip(&["-4", "route", "show", "table", "all", "proto", "201"])
                .unwrap_or_else(|e| e.to_string());
            *last = format!("{links}\n{routes}");
            Ok((!links.contains("br-ex.100")
                && links.contains("br-ex.200")
                && !routes.contains("br-ex.100")
                && (!was || routes.contains("dev br-ex "))
                && (i != 0 || routes.contains("172.16.0.10 dev br-ex ")))
            .then_some(()))
        });
        check!(x, r);
        ns.ip(&["link", "del", "br-ex.200"]).unwrap();
    }
    for i in 0..2 {
        expect_clean_status(&mut x, i);
    }

    // 2. advertise_method = addresses (tenant networks as host prefixes, since `subnet` needs
    // routes): /32 and /128 on bgp-nic, `redistribute connected`; the restarted agent adopts the
    // VRF and turns the routes into addresses.
    stop_agents(&mut x);
    start_agents(&mut x, VrfAdvertise::Addresses);
    expect_upstream(
        &mut x,
        &[
            "10.0.0.11/32",
            "10.0.0.12/32",
            "172.16.0.1/32",
            "172.16.0.10/32",
            "172.16.0.101/32",
            "172.16.0.102/32",
            "172.16.0.11/32",
            "172.16.0.200/32",
        ],
        &["2001:db8:ff::11/128", "2001:db8:ff::1/128", "fd00::11/128"],
    );
    for i in 0..2 {
        expect_clean_status(&mut x, i);
    }
    let ns = x.lab.chassis(0).netns();
    let addrs = ns
        .ip(&["addr", "show", "dev", "bgp-nic", "scope", "global"])
        .unwrap();
    for a in [
        "inet 172.16.0.10/32",
        "inet 10.0.0.11/32",
        "inet6 2001:db8:ff::11/128",
        "inet6 fd00::11/128",
    ] {
        assert!(addrs.contains(a), "{a} in {addrs}");
    }
    for fam in ["-4", "-6"] {
        let t = ns
            .ip(&[fam, "route", "show", "table", "10", "proto", "201"])
            .unwrap();
        assert!(t.trim().is_empty(), "no routes of ours in table 10: {t}");
    }
    let frr = x.bgp[0].frr.vtysh(&["show running-config"]).unwrap();
    assert!(frr.contains("redistribute connected"), "{frr}");
    assert!(!frr.contains("redistribute kernel"), "{frr}");

    // 3. Agents stopped (SIGTERM leaves everything in place), everything exposed deleted from the
    // NB, agents started again: their first pass removes all of ours. The VRF and bgp-nic stay
    // (docs/agent.md: created only if missing, never deleted).
    stop_agents(&mut x);
    for args in [
        &["lr-del", "lr0"][..],
        &["lsp-del", "vm-prov"][..],
        &["lsp-del", V6_PROVIDER_VM][..],
    ] {
        x.lab.nbctl(args).unwrap();
    }
    start_agents(&mut x, VrfAdvertise::Addresses);
    expect_upstream(&mut x, &[], &[]);
    for i in 0..2 {
        let c = x.lab.chassis(i);
        let ns = c.netns();
        let r = wait_until("our state to be gone", WAIT, |last| {
            let mut left = String::new();
            for args in [
                &["-4", "route", "show", "table", "all", "proto", "201"][..],
                &["-6", "route", "show", "table", "all", "proto", "201"][..],
                &["-4", "rule", "show", "priority", "32000"][..],
                &["-6", "rule", "show", "priority", "32000"][..],
                &["neigh", "show", "proxy"][..],
                &["neigh", "show", "nud", "permanent"][..],
                &["addr", "show", "dev", "bgp-nic", "scope", "global"][..],
            ] {
                left.push_str(&ns.ip(args)?);
            }
            left.push_str(
                &c.ofctl(&["dump-flows", "br-ex", "cookie=0x3e7/-1"])?
                    .lines()
                    .skip(1)
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
            *last = left.clone();
            Ok(left.trim().is_empty().then_some(()))
        });
        for dev in ["bgp-vrf", "bgp-nic"] {
            ns.ip(&["link", "show", dev])
                .unwrap_or_else(|e| panic!("{dev} should stay: {e}"));
        }
        check!(x, r);
    }
    for i in 0..2 {
        expect_clean_status(&mut x, i);
        x.agent(i).check_alive().unwrap();
    }
}
