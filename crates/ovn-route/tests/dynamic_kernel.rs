//! Dynamic routing with real VRFs and FRR (kernel tier: this machine's kernel has no `vrf` link
//! type; scripts/kernel-tier.sh runs this in a VM). `dynamic-routing-maintain-vrf` makes the agent
//! create the router's VRF; the agent configures FRR's instance for it
//! (`dynamic_routing_frr`); an upstream FRR router learns the advertised routes (MED = metric)
//! and announces a prefix that the agent writes into the NB (and `ovn-trace` uses); then the
//! withdrawal, maintain-vrf off (our VRF deleted), a VRF made by someone else (kept), and dynamic
//! routing off (FRR instance removed, the operator's configuration untouched).
//!
//! Two chassis at the upstream peer: MED 100 from the chassis hosting the tracked port and 1000
//! from the other, local-only, and a gateway failover (`kernel_tier_dynamic_two_chassis_*`); a
//! learned route's NB row kept across an FRR restart (`kernel_tier_dynamic_learned_*`).

use std::path::Path;
use std::time::Duration;

use ovn_route_lab::dynamic::{dyn_chassis_addr, DynamicLab, DYN_CHASSIS_ADDR, DYN_UPSTREAM_ADDR};
use ovn_route_lab::{skip_unless_root, wait_until, Nat};

/// Generous: the VM emulates its CPU in software.
const WAIT: Duration = Duration::from_secs(120);
/// For convergence with two agents and three FRRs in the VM (applying an FRR instance alone took
/// 40 s there).
const WAIT_LONG: Duration = Duration::from_secs(420);
const VRF: &str = "ovnvrf1000";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ovn-route"))
}

fn check<T>(x: &DynamicLab, r: ovn_route_lab::Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}\n{}", x.dump()),
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

/// `ovn-route status --json` of chassis 0's agent (`Null` while it does not answer).
fn status(x: &DynamicLab) -> serde_json::Value {
    ovn_route_lab::run_with_timeout(
        std::process::Command::new(bin())
            .args(["status", "--json", "--socket"])
            .arg(x.status_socket(0)),
        Duration::from_secs(20),
    )
    .ok()
    .and_then(|t| serde_json::from_str(&t).ok())
    .unwrap_or_default()
}

/// Waits until the agent's status shows lr0 with `maintain_vrf` as given (the pass that saw the
/// option has then completed, VRF handling included).
fn wait_maintain_vrf(x: &DynamicLab, on: bool) {
    wait(x, &format!("status: maintain_vrf {on}"), |last| {
        let v = status(x);
        let r = &v["dynamic_routing"]["routers"][0];
        *last = format!("{r}");
        Ok((r["router"] == "lr0" && r["maintain_vrf"] == on).then_some(()))
    });
}

fn vrf_link(x: &DynamicLab) -> String {
    x.ip(0, &["-d", "link", "show", VRF]).unwrap_or_default()
}

fn set_maintain_vrf(x: &DynamicLab, on: bool) {
    let r = if on {
        x.lab.nbctl(&[
            "set",
            "Logical_Router_Port",
            "lr0-pub",
            "options:dynamic-routing-maintain-vrf=true",
        ])
    } else {
        x.lab.nbctl(&[
            "remove",
            "Logical_Router_Port",
            "lr0-pub",
            "options",
            "dynamic-routing-maintain-vrf",
        ])
    };
    check(x, r);
}

#[test]
#[ignore = "kernel tier: needs vrf/dummy, run by scripts/kernel-tier.sh"]
fn kernel_tier_dynamic_vrf_frr_learn_and_cleanup() {
    if skip_unless_root("kernel_tier_dynamic_vrf_frr_learn_and_cleanup") {
        return;
    }
    let mut x = DynamicLab::start(&[("dynamic-routing-redistribute", "connected,nat")]).unwrap();
    set_maintain_vrf(&x, true);
    x.start_bgp(0).unwrap();
    x.ovn_route_extra = format!(
        "dynamic_routing_frr = true\ndynamic_routing_frr_neighbors = {DYN_UPSTREAM_ADDR}@65000\n"
    );
    x.start_agent(0, bin()).unwrap();

    // maintain-vrf: the agent creates the VRF (table 1000, marked) on hv1, where the gateway
    // port is bound; the operator puts the uplink into it.
    check(&x, x.attach_link(VRF, WAIT));
    let link = vrf_link(&x);
    assert!(
        link.contains("vrf table 1000") && link.contains("ovn-route:dynamic-routing"),
        "{link}"
    );

    // The routes in the VRF's table: the networks (untracked: 1000) and the SNAT IP (tracked to
    // the gateway port, bound here: 100).
    let advertised = [
        "blackhole 10.0.0.0/24 metric 1000",
        "blackhole 172.16.0.0/24 metric 1000",
        "blackhole 172.16.0.1 metric 100",
    ];
    wait(&x, "table 1000 (proto 84)", |last| {
        let have = x.table_routes(0, "84")?;
        *last = format!("{have:?}");
        Ok((have == advertised).then_some(()))
    });

    // The agent's FRR instance for the VRF, and the upstream learning through it (MED = metric).
    let frr_conf = |x: &DynamicLab| {
        x.bgp
            .as_ref()
            .unwrap()
            .frr
            .vtysh(&["show running-config"])
            .unwrap_or_default()
    };
    wait(&x, "the agent's FRR instance for the VRF", |last| {
        *last = frr_conf(&x);
        Ok((last.contains(&format!("router bgp 64999 vrf {VRF}\n"))
            && last.contains("redistribute kernel route-map ovn-route-dynamic"))
        .then_some(()))
    });
    for (prefix, med) in [("172.16.0.1/32", 100), ("10.0.0.0/24", 1000)] {
        wait(&x, &format!("upstream path to {prefix}"), |last| {
            let p = x.upstream_path(prefix)?;
            *last = format!("{p:?}");
            Ok((p == Some((DYN_CHASSIS_ADDR.to_string(), med))).then_some(()))
        });
    }

    // Without a route, vm1's router has none to 203.0.113.0/24.
    let before = check(&x, x.trace_from_vm1("203.0.113.5"));
    assert!(!before.contains(DYN_UPSTREAM_ADDR), "{before}");

    // The upstream announces 203.0.113.0/24: FRR installs it in the VRF's table, the agent
    // writes it into the NB on lr0 (marked, learned on hv1), and OVN routes through it.
    check(&x, x.announce("203.0.113.0/24", true));
    let learned = format!("203.0.113.0/24 {DYN_UPSTREAM_ADDR} lr0-pub hv1");
    wait(&x, "the learned route in the NB", |last| {
        let have = x.nb_static_routes()?;
        *last = format!("{have:?}");
        Ok((have == [learned.clone()]).then_some(()))
    });
    let trace = wait(&x, "ovn-trace through the learned route", |last| {
        let t = x.trace_from_vm1("203.0.113.5")?;
        *last = t.clone();
        Ok(t.contains(DYN_UPSTREAM_ADDR).then_some(t))
    });
    assert!(trace.contains("lr0-pub"), "{trace}");

    // Withdrawn upstream: removed from the NB.
    check(&x, x.announce("203.0.113.0/24", false));
    wait(&x, "the learned route gone", |last| {
        let have = x.nb_static_routes()?;
        *last = format!("{have:?}");
        Ok(have.is_empty().then_some(()))
    });

    // Each redistribute type at the upstream peer (expected sets written from upstream's rules:
    // MED = metric, 100 when the tracked port is bound here, 1000 otherwise or untracked).
    check(
        &x,
        x.lab
            .nbctl(&["lr-route-add", "lr0", "192.168.50.0/24", "10.0.0.50"]),
    );
    check(
        &x,
        x.lab
            .lb_add("lb0", "172.16.0.100:80", &["10.0.0.11:8080"], Some("tcp")),
    );
    check(&x, x.lab.lr_lb_add("lr0", "lb0"));
    let all = [
        "10.0.0.0/24",
        "10.0.0.1/32",
        "10.0.0.11/32",
        "172.16.0.1/32",
        "172.16.0.100/32",
        "192.168.50.0/24",
    ];
    let cases: &[(&str, &[(&str, u64)])] = &[
        ("connected", &[("10.0.0.0/24", 1000)]),
        (
            "connected-as-host",
            &[
                ("10.0.0.1/32", 1000),
                ("10.0.0.11/32", 100),
                ("172.16.0.1/32", 100),
            ],
        ),
        ("static", &[("192.168.50.0/24", 1000)]),
        ("nat", &[("172.16.0.1/32", 100)]),
        ("lb", &[("172.16.0.100/32", 100)]),
        (
            "connected,nat",
            &[("10.0.0.0/24", 1000), ("172.16.0.1/32", 100)],
        ),
    ];
    for (redistribute, want) in cases {
        check(
            &x,
            x.lab.nbctl(&[
                "set",
                "Logical_Router",
                "lr0",
                &format!("options:dynamic-routing-redistribute=\"{redistribute}\""),
            ]),
        );
        wait(&x, &format!("upstream paths for {redistribute}"), |last| {
            let mut ok = true;
            let mut seen = vec![];
            for p in all {
                let have = x.upstream_path(p)?;
                let expect = want
                    .iter()
                    .find(|(w, _)| *w == p)
                    .map(|(_, med)| (DYN_CHASSIS_ADDR.to_string(), *med));
                ok &= have == expect;
                seen.push(format!("{p}: {have:?}"));
            }
            *last = seen.join(", ");
            Ok(ok.then_some(()))
        });
    }

    // FRR restart: the agent does not touch the table (no protocol-84 route deleted or added);
    // it re-applies its instance and the peer learns the routes again.
    let mon = check(&x, x.monitor_routes(0, WAIT));
    let r = x.bgp.as_mut().unwrap().frr.restart();
    check(&x, r);
    wait(
        &x,
        "the agent's FRR instance after the FRR restart",
        |last| {
            *last = frr_conf(&x);
            Ok(last
                .contains(&format!("router bgp 64999 vrf {VRF}\n"))
                .then_some(()))
        },
    );
    for (prefix, med) in [("172.16.0.1/32", 100), ("10.0.0.0/24", 1000)] {
        wait(
            &x,
            &format!("upstream path to {prefix} after the FRR restart"),
            |last| {
                let p = x.upstream_path(prefix)?;
                *last = format!("{p:?}");
                Ok((p == Some((DYN_CHASSIS_ADDR.to_string(), med))).then_some(()))
            },
        );
    }
    let flaps = mon.ovn_lines();
    assert!(
        flaps.is_empty(),
        "FRR restart: advertised routes changed: {flaps:?}\n{}",
        x.dump()
    );
    drop(mon);

    // maintain-vrf off: our VRF is deleted (the routes stay in table 1000).
    set_maintain_vrf(&x, false);
    wait(&x, "our VRF deleted", |last| {
        *last = vrf_link(&x);
        Ok(last.is_empty().then_some(()))
    });
    wait_maintain_vrf(&x, false);

    // A VRF made by someone else for the same table: used while maintain-vrf is on, never
    // deleted when it goes off.
    check(
        &x,
        x.ip(0, &["link", "add", VRF, "type", "vrf", "table", "1000"]),
    );
    check(&x, x.ip(0, &["link", "set", VRF, "up"]));
    set_maintain_vrf(&x, true);
    wait_maintain_vrf(&x, true);
    set_maintain_vrf(&x, false);
    wait_maintain_vrf(&x, false);
    let link = vrf_link(&x);
    assert!(
        link.contains("vrf table 1000") && !link.contains("ovn-route:dynamic-routing"),
        "the foreign VRF must stay, unmarked: {link}\n{}",
        x.dump()
    );

    // Dynamic routing off on the router: its routes and the FRR instance go; the operator's
    // default instance stays.
    check(
        &x,
        x.lab.nbctl(&[
            "remove",
            "Logical_Router",
            "lr0",
            "options",
            "dynamic-routing",
        ]),
    );
    wait(&x, "routes withdrawn from table 1000", |last| {
        let have = x.table_routes(0, "84")?;
        *last = format!("{have:?}");
        Ok(have.is_empty().then_some(()))
    });
    wait(&x, "the FRR instance removed", |last| {
        *last = frr_conf(&x);
        Ok(
            (!last.contains(&format!("vrf {VRF}")) && !last.contains("ovn-route-dynamic"))
                .then_some(()),
        )
    });
    let conf = frr_conf(&x);
    assert!(
        conf.contains("router bgp 64999\n")
            && conf.contains(&format!("bgp router-id {DYN_CHASSIS_ADDR}")),
        "{conf}"
    );
    for a in x.agents.iter_mut().flatten() {
        a.kill();
    }
}

fn nbctl(x: &DynamicLab, args: &[&str]) -> String {
    check(x, x.lab.nbctl(args))
}

/// The agents' FRR settings: the instance for the VRF peers with the upstream router.
fn frr_extra() -> String {
    format!(
        "dynamic_routing_frr = true\ndynamic_routing_frr_neighbors = {DYN_UPSTREAM_ADDR}@65000\n"
    )
}

/// Waits until the upstream router's paths for each prefix are exactly the given (chassis index,
/// MED) pairs (next hop: that chassis' address on the upstream segment).
fn wait_upstream_paths(x: &DynamicLab, what: &str, want: &[(&str, &[(usize, u64)])]) {
    let r = wait_until(&format!("upstream paths: {what}"), WAIT_LONG, |last| {
        let mut ok = true;
        let mut seen = vec![];
        for (prefix, paths) in want {
            let have = x.upstream_paths(prefix)?;
            let mut expect: Vec<(String, u64)> = paths
                .iter()
                .map(|(i, med)| (dyn_chassis_addr(*i), *med))
                .collect();
            expect.sort();
            ok &= have == expect;
            seen.push(format!("{prefix}: {have:?}"));
        }
        *last = seen.join(", ");
        Ok(ok.then_some(()))
    });
    check(x, r);
}

/// Two chassis, each with FRR peering with the same upstream router. A router is advertised only
/// where one of its distributed gateway ports is active (docs: "Which chassis advertises"), so for
/// both chassis to advertise lr0 it gets a second gateway port, lr0-pub2, bound on hv2 (lr0-pub
/// stays on hv1). Redistribute `nat`: the floating IPs of vm1 (172.16.0.50, hv1) and vm2
/// (172.16.0.51, hv2) are distributed NATs tracked to their VIF; the SNAT IP 172.16.0.1 (its
/// `gateway_port` lr0-pub, as a router with several gateway ports needs) is tracked to lr0-pub.
/// Metric (= MED at the upstream) 100 on the chassis where the tracked port is bound, 1000 on the
/// other; local-only drops the 1000 ones.
#[test]
#[ignore = "kernel tier: needs vrf/dummy, run by scripts/kernel-tier.sh"]
fn kernel_tier_dynamic_two_chassis_med_local_only_failover() {
    if skip_unless_root("kernel_tier_dynamic_two_chassis_med_local_only_failover") {
        return;
    }
    let mut x = DynamicLab::start(&[("dynamic-routing-redistribute", "nat")]).unwrap();
    {
        let lab = &x.lab;
        check(
            &x,
            lab.add_vif_port("private", "vm2", "00:00:00:00:00:02 10.0.0.12", "hv2"),
        );
        let fip1 =
            Nat::dnat_and_snat("172.16.0.50", "10.0.0.11").distributed("vm1", "00:00:00:00:aa:01");
        let fip2 =
            Nat::dnat_and_snat("172.16.0.51", "10.0.0.12").distributed("vm2", "00:00:00:00:aa:02");
        check(&x, lab.lr_nat_add("lr0", &fip1));
        check(&x, lab.lr_nat_add("lr0", &fip2));
        // The second distributed gateway port, on hv2.
        check(&x, lab.ls_add("public2"));
        check(
            &x,
            lab.lsp_add_localnet("public2", "ln-public2", "physnet1"),
        );
        check(
            &x,
            lab.connect_router(
                "lr0",
                "lr0-pub2",
                "00:00:00:00:ff:03",
                &["172.16.1.1/24"],
                "public2",
            ),
        );
        check(&x, lab.lrp_set_gateway_chassis("lr0-pub2", "hv2", 20));
    }
    let pub_uuid = nbctl(
        &x,
        &[
            "--bare",
            "--columns=_uuid",
            "find",
            "Logical_Router_Port",
            "name=lr0-pub",
        ],
    );
    for ip in ["172.16.0.1", "172.16.0.50", "172.16.0.51"] {
        let nat = nbctl(
            &x,
            &[
                "--bare",
                "--columns=_uuid",
                "find",
                "NAT",
                &format!("external_ip=\"{ip}\""),
            ],
        );
        nbctl(
            &x,
            &[
                "set",
                "NAT",
                nat.trim(),
                &format!("gateway_port={}", pub_uuid.trim()),
            ],
        );
    }
    for port in ["lr0-pub", "lr0-pub2"] {
        nbctl(
            &x,
            &[
                "set",
                "Logical_Router_Port",
                port,
                "options:dynamic-routing-maintain-vrf=true",
            ],
        );
    }
    for (port, chassis) in [
        ("vm2", "hv2"),
        ("cr-lr0-pub2", "hv2"),
        ("cr-lr0-pub", "hv1"),
    ] {
        check(&x, x.lab.wait_port_bound(port, chassis, WAIT_LONG));
    }
    x.start_bgp(0).unwrap();
    x.start_bgp(1).unwrap();
    x.ovn_route_extra = frr_extra();
    x.start_agent(0, bin()).unwrap();
    x.start_agent(1, bin()).unwrap();
    check(&x, x.attach_link_on(0, VRF, WAIT_LONG));
    check(&x, x.attach_link_on(1, VRF, WAIT_LONG));

    // Both chassis advertise lr0: each prefix from both, MED 100 from where its tracked port is
    // bound (hv1 = chassis 0: lr0-pub, vm1; hv2 = chassis 1: vm2), 1000 from the other.
    wait_upstream_paths(
        &x,
        "two gateway chassis",
        &[
            ("172.16.0.1/32", &[(0, 100), (1, 1000)]),
            ("172.16.0.50/32", &[(0, 100), (1, 1000)]),
            ("172.16.0.51/32", &[(0, 1000), (1, 100)]),
        ],
    );

    // local-only: each chassis installs (so FRR advertises) only the routes tracked to its own
    // ports.
    nbctl(
        &x,
        &[
            "set",
            "Logical_Router",
            "lr0",
            "options:dynamic-routing-redistribute-local-only=true",
        ],
    );
    wait_upstream_paths(
        &x,
        "local-only",
        &[
            ("172.16.0.1/32", &[(0, 100)]),
            ("172.16.0.50/32", &[(0, 100)]),
            ("172.16.0.51/32", &[(1, 100)]),
        ],
    );

    // Failover of lr0-pub to hv2: hv1 hosts no gateway port of lr0 any more, so it advertises
    // nothing (its routes, VRF and FRR instance go); hv2 hosts both. The SNAT IP follows lr0-pub
    // (100 from hv2); vm1's floating IP is tracked to a port on hv1, so local-only keeps it off.
    check(&x, x.lab.lrp_set_gateway_chassis("lr0-pub", "hv2", 30));
    check(&x, x.lab.lrp_del_gateway_chassis("lr0-pub", "hv1"));
    check(&x, x.lab.wait_port_bound("cr-lr0-pub", "hv2", WAIT_LONG));
    wait_upstream_paths(
        &x,
        "after the failover, local-only",
        &[
            ("172.16.0.1/32", &[(1, 100)]),
            ("172.16.0.50/32", &[]),
            ("172.16.0.51/32", &[(1, 100)]),
        ],
    );
    let r = wait_until("hv1 table 1000 emptied", WAIT_LONG, |last| {
        let have = x.table_routes(0, "84")?;
        *last = format!("{have:?}");
        Ok(have.is_empty().then_some(()))
    });
    check(&x, r);

    // local-only off: vm1's floating IP comes back from hv2 with 1000.
    nbctl(
        &x,
        &[
            "remove",
            "Logical_Router",
            "lr0",
            "options",
            "dynamic-routing-redistribute-local-only",
        ],
    );
    wait_upstream_paths(
        &x,
        "after the failover",
        &[
            ("172.16.0.1/32", &[(1, 100)]),
            ("172.16.0.50/32", &[(1, 1000)]),
            ("172.16.0.51/32", &[(1, 100)]),
        ],
    );
    for a in x.agents.iter_mut().flatten() {
        a.kill();
    }
}

/// A learned route survives an FRR restart: its NB row keeps its `_uuid` (never removed and
/// re-added) and no protocol-84 route of the table is deleted meanwhile.
#[test]
#[ignore = "kernel tier: needs vrf/dummy, run by scripts/kernel-tier.sh"]
fn kernel_tier_dynamic_learned_route_kept_across_frr_restart() {
    if skip_unless_root("kernel_tier_dynamic_learned_route_kept_across_frr_restart") {
        return;
    }
    let mut x = DynamicLab::start(&[("dynamic-routing-redistribute", "nat")]).unwrap();
    set_maintain_vrf(&x, true);
    x.start_bgp(0).unwrap();
    x.ovn_route_extra = frr_extra();
    x.start_agent(0, bin()).unwrap();
    check(&x, x.attach_link(VRF, WAIT));
    wait_upstream_paths(&x, "the SNAT IP", &[("172.16.0.1/32", &[(0, 100)])]);

    // The upstream announces a prefix: FRR installs it, the agent writes it into the NB.
    check(&x, x.announce("203.0.113.0/24", true));
    let row = wait(&x, "the learned route in the NB", |last| {
        let have = x.nb_learned_uuids()?;
        *last = format!("{have:?}");
        Ok(match have.as_slice() {
            [r] if r.starts_with(&format!("203.0.113.0/24 {DYN_UPSTREAM_ADDR} ")) => {
                Some(r.clone())
            }
            _ => None,
        })
    });
    let bgp_route = |x: &DynamicLab, prefix: &str| {
        x.table_routes(0, "bgp")
            .unwrap_or_default()
            .into_iter()
            .any(|r| {
                r.starts_with(&format!("{prefix} "))
                    && r.contains(&format!(" via {DYN_UPSTREAM_ADDR} "))
            })
    };
    wait(&x, "the learned route in table 1000", |last| {
        *last = format!("{:?}", x.table_routes(0, "bgp"));
        Ok(bgp_route(&x, "203.0.113.0/24").then_some(()))
    });
    let session = |x: &DynamicLab| {
        let p = x.upstream_peer(0).unwrap_or_default();
        (
            p["state"].as_str().unwrap_or("").to_string(),
            p["connectionsEstablished"].as_u64(),
            p["peerUptimeEstablishedEpoch"].as_u64(),
        )
    };
    let before = session(&x);
    assert_eq!(before.0, "Established", "{before:?}\n{}", x.dump());

    // FRR restart (bgpd and zebra stopped, then started).
    let mon = check(&x, x.monitor_routes(0, WAIT));
    let r = x.frr_mut(0).unwrap().restart();
    check(&x, r);
    wait(&x, "the upstream session re-established", |last| {
        let now = session(&x);
        *last = format!("{now:?} (before the restart: {before:?})");
        Ok((now.0 == "Established" && (now.1, now.2) != (before.1, before.2)).then_some(()))
    });
    wait(&x, "the learned route back in table 1000", |last| {
        *last = format!("{:?}", x.table_routes(0, "bgp"));
        Ok(bgp_route(&x, "203.0.113.0/24").then_some(()))
    });
    // Barrier: a prefix announced after the restart reaches the NB, so the agent has read the
    // table since FRR came back.
    check(&x, x.announce("198.51.100.0/24", true));
    let after = wait(&x, "a route learned after the restart", |last| {
        let have = x.nb_learned_uuids()?;
        *last = format!("{have:?}");
        Ok(have
            .iter()
            .any(|r| r.starts_with("198.51.100.0/24 "))
            .then_some(have))
    });
    let lines = mon.lines();
    let learned_events: Vec<&String> = lines.iter().filter(|l| l.contains("203.0.113.0")).collect();
    assert!(
        after.contains(&row),
        "the learned route's NB row was replaced across the FRR restart: before {row:?}, after \
         {after:?}; kernel events for it: {learned_events:?}\n{}",
        x.dump()
    );
    let deleted: Vec<String> = mon
        .ovn_lines()
        .into_iter()
        .filter(|l| l.starts_with("Deleted"))
        .collect();
    assert!(
        deleted.is_empty(),
        "FRR restart: protocol-84 routes deleted: {deleted:?}\n{}",
        x.dump()
    );
    drop(mon);
    for a in x.agents.iter_mut().flatten() {
        a.kill();
    }
}
