//! Dynamic routing with real VRFs and FRR (kernel tier: this machine's kernel has no `vrf` link
//! type; scripts/kernel-tier.sh runs this in a VM). `dynamic-routing-maintain-vrf` makes the agent
//! create the router's VRF; the agent configures FRR's instance for it
//! (`dynamic_routing_frr`); an upstream FRR router learns the advertised routes (MED = metric)
//! and announces a prefix that the agent writes into the NB (and `ovn-trace` uses); then the
//! withdrawal, maintain-vrf off (our VRF deleted), a VRF made by someone else (kept), and dynamic
//! routing off (FRR instance removed, the operator's configuration untouched).

use std::path::Path;
use std::time::Duration;

use ovn_route_lab::dynamic::{DynamicLab, DYN_CHASSIS_ADDR, DYN_UPSTREAM_ADDR};
use ovn_route_lab::{skip_unless_root, wait_until};

/// Generous: the VM emulates its CPU in software.
const WAIT: Duration = Duration::from_secs(120);
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
