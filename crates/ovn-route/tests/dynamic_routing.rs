//! Dynamic routing driven by OVN's `dynamic-routing*` options, on the host (no VRF: the router's
//! table is an ordinary table id, and `ip route add ... proto bgp` stands in for FRR): the
//! advertised routes in the gateway chassis' table, learned routes written to the NB as marked
//! static routes and removed when withdrawn or when learning is turned off, operator routes
//! untouched, and the gateway moving to the other chassis; the advertised set of each
//! redistribute type (written by hand from upstream's rules); metrics and local-only on two
//! chassis across a failover; agent and NB restarts without flaps.

use std::path::Path;
use std::time::Duration;

use ovn_route_lab::dynamic::DynamicLab;
use ovn_route_lab::{skip_unless_root, wait_until, Nat};

const WAIT: Duration = Duration::from_secs(45);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ovn-route"))
}

fn wait_table(x: &DynamicLab, i: usize, want: &[&str]) {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    let r = wait_until(
        &format!("hv{} table 1000 (proto ovn) = {want:?}", i + 1),
        WAIT,
        |last| {
            let have = x.table_routes(i, "84")?;
            *last = format!("{have:?}");
            Ok((have == want).then_some(()))
        },
    );
    if let Err(e) = r {
        panic!("{e}\n{}", x.dump());
    }
}

fn wait_nb(x: &DynamicLab, what: &str, want: &[&str]) {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    let r = wait_until(what, WAIT, |last| {
        let have = x.nb_static_routes()?;
        *last = format!("{have:?}");
        Ok((have == want).then_some(()))
    });
    if let Err(e) = r {
        panic!("{e}\n{}", x.dump());
    }
}

#[test]
fn advertises_learns_and_follows_the_gateway() {
    if skip_unless_root("advertises_learns_and_follows_the_gateway") {
        return;
    }
    let mut x = DynamicLab::start(&[("dynamic-routing-redistribute", "connected,nat")]).unwrap();
    // An operator route on the router, for a prefix that will also be announced upstream.
    x.lab
        .nbctl(&["lr-route-add", "lr0", "192.0.2.0/24", "172.16.0.250"])
        .unwrap();
    // A foreign route of another protocol in the table: never touched.
    x.ip(
        0,
        &[
            "route",
            "add",
            "blackhole",
            "10.250.0.0/16",
            "table",
            "1000",
            "proto",
            "static",
        ],
    )
    .unwrap();
    x.start_agent(0, bin()).unwrap();
    x.start_agent(1, bin()).unwrap();

    // Advertised on hv1 (the gateway): the networks (untracked: 1000) and the SNAT IP (tracked
    // to the gateway port, bound here: 100). Nothing on hv2.
    let advertised = [
        "blackhole 10.0.0.0/24 metric 1000",
        "blackhole 172.16.0.0/24 metric 1000",
        "blackhole 172.16.0.1 metric 100",
    ];
    wait_table(&x, 0, &advertised);
    assert!(x.table_routes(1, "84").unwrap().is_empty(), "{}", x.dump());

    // "FRR" installs routes in the table: one, an ECMP pair, one shadowed by the operator's
    // route, and ones that are never learned (static protocol, link-local, no next hop).
    let add = |args: &[&str]| {
        let mut a = vec!["route", "add", "table", "1000", "proto", "bgp"];
        a.extend_from_slice(args);
        x.ip(0, &a).unwrap();
    };
    add(&["203.0.113.0/24", "via", "172.16.0.254", "dev", "up0"]);
    add(&[
        "198.51.100.0/24",
        "nexthop",
        "via",
        "172.16.0.253",
        "dev",
        "up0",
        "nexthop",
        "via",
        "172.16.0.252",
        "dev",
        "up0",
    ]);
    add(&["192.0.2.0/24", "via", "172.16.0.254", "dev", "up0"]);
    add(&["169.254.7.0/24", "via", "172.16.0.254", "dev", "up0"]);
    add(&["100.64.0.0/10", "dev", "up0"]);
    x.ip(
        0,
        &[
            "route",
            "add",
            "100.65.0.0/16",
            "via",
            "172.16.0.254",
            "dev",
            "up0",
            "table",
            "1000",
            "proto",
            "static",
        ],
    )
    .unwrap();
    let learned = [
        "192.0.2.0/24 172.16.0.250 - -",
        "198.51.100.0/24 172.16.0.252 lr0-pub hv1",
        "198.51.100.0/24 172.16.0.253 lr0-pub hv1",
        "203.0.113.0/24 172.16.0.254 lr0-pub hv1",
    ];
    wait_nb(&x, "learned routes in the NB", &learned);

    // Withdrawn upstream: removed.
    x.ip(0, &["route", "del", "203.0.113.0/24", "table", "1000"])
        .unwrap();
    wait_nb(&x, "withdrawn route removed", &learned[..3]);

    // Learning off on the router: every learned route goes; the advertised ones stay.
    x.lab
        .nbctl(&[
            "set",
            "Logical_Router",
            "lr0",
            "options:dynamic-routing-no-learning=true",
        ])
        .unwrap();
    wait_nb(&x, "no-learning", &learned[..1]);
    wait_table(&x, 0, &advertised);
    x.lab
        .nbctl(&[
            "remove",
            "Logical_Router",
            "lr0",
            "options",
            "dynamic-routing-no-learning",
        ])
        .unwrap();
    wait_nb(&x, "learning back on", &learned[..3]);

    // The gateway moves to hv2: hv1 withdraws, hv2 advertises (the SNAT IP now tracked to a
    // port bound on hv2) and, having learned nothing, removes hv1's learned routes.
    x.lab.lrp_set_gateway_chassis("lr0-pub", "hv2", 30).unwrap();
    x.lab.lrp_del_gateway_chassis("lr0-pub", "hv1").unwrap();
    x.lab.wait_port_bound("cr-lr0-pub", "hv2", WAIT).unwrap();
    wait_table(&x, 1, &advertised);
    wait_table(&x, 0, &[]);
    wait_nb(&x, "learned routes gone with the gateway", &learned[..1]);

    // The foreign route in hv1's table is still there.
    let foreign = x.table_routes(0, "static").unwrap();
    assert!(
        foreign.iter().any(|l| l.contains("10.250.0.0/16")),
        "{foreign:?}\n{}",
        x.dump()
    );
    for a in x.agents.iter_mut().flatten() {
        a.kill();
    }
}

fn nbctl(x: &DynamicLab, args: &[&str]) {
    if let Err(e) = x.lab.nbctl(args) {
        panic!("{e}\n{}", x.dump());
    }
}

/// vm2 (10.0.0.12) on hv2, and distributed floating IPs for vm1 (172.16.0.50, tracked to vm1 on
/// hv1) and vm2 (172.16.0.51, tracked to vm2 on hv2).
fn add_floating_ips(x: &DynamicLab) {
    let lab = &x.lab;
    lab.add_vif_port("private", "vm2", "00:00:00:00:00:02 10.0.0.12", "hv2")
        .unwrap();
    let fip1 =
        Nat::dnat_and_snat("172.16.0.50", "10.0.0.11").distributed("vm1", "00:00:00:00:aa:01");
    let fip2 =
        Nat::dnat_and_snat("172.16.0.51", "10.0.0.12").distributed("vm2", "00:00:00:00:aa:02");
    lab.lr_nat_add("lr0", &fip1).unwrap();
    lab.lr_nat_add("lr0", &fip2).unwrap();
    lab.wait_port_bound("vm2", "hv2", WAIT).unwrap();
}

/// What the other redistribute types draw from: static routes on lr0 (one through lr0-priv, a
/// discard one, a src-ip one), a load balancer on lr0, and a neighbour on `public`: gateway
/// router lr1 (on hv2, port 172.16.0.2) with a floating IP and a load balancer of its own.
fn add_other_sources(x: &DynamicLab) {
    let lab = &x.lab;
    nbctl(x, &["lr-route-add", "lr0", "192.168.50.0/24", "10.0.0.50"]);
    nbctl(x, &["lr-route-add", "lr0", "192.168.60.0/24", "discard"]);
    nbctl(
        x,
        &[
            "--policy=src-ip",
            "lr-route-add",
            "lr0",
            "10.0.0.128/25",
            "172.16.0.254",
        ],
    );
    lab.lb_add("lb0", "172.16.0.100:80", &["10.0.0.11:8080"], Some("tcp"))
        .unwrap();
    lab.lr_lb_add("lr0", "lb0").unwrap();
    lab.lr_add("lr1").unwrap();
    nbctl(x, &["set", "Logical_Router", "lr1", "options:chassis=hv2"]);
    lab.connect_router(
        "lr1",
        "lr1-pub",
        "00:00:00:00:ff:03",
        &["172.16.0.2/24"],
        "public",
    )
    .unwrap();
    lab.lr_nat_add("lr1", &Nat::dnat_and_snat("172.16.0.60", "10.1.0.5"))
        .unwrap();
    lab.lb_add("lb1", "172.16.0.70:80", &["10.1.0.5:80"], Some("tcp"))
        .unwrap();
    lab.lr_lb_add("lr1", "lb1").unwrap();
    lab.wait_port_bound("lr1-pub", "hv2", WAIT).unwrap();
}

/// One redistribute setting and the routes hv1 (lr0's gateway chassis) installs for it.
struct Case {
    /// lr0's `dynamic-routing-redistribute`.
    router: &'static str,
    /// lr0-pub's own `dynamic-routing-redistribute` (replaces the router's for that port).
    pub_port: Option<&'static str>,
    want: &'static [&'static str],
}

/// Written from upstream's rules, not from the planner: metric 100 when the tracked port is
/// bound on hv1 (vm1, the gateway port lr0-pub), 1000 when it is bound elsewhere (vm2, lr1's
/// port on hv2) or for untracked routes (networks, static routes) and router ports bound
/// nowhere (lr0-priv).
const CASES: &[Case] = &[
    // The router ports' networks.
    Case {
        router: "connected",
        pub_port: None,
        want: &[
            "blackhole 10.0.0.0/24 metric 1000",
            "blackhole 172.16.0.0/24 metric 1000",
        ],
    },
    // Instead of the networks, a /32 per address on the attached switches: router ports
    // (lr0-priv, lr0-pub itself, lr1-pub) tracked to themselves, VIFs tracked to themselves;
    // the localnet port has none.
    Case {
        router: "connected-as-host",
        pub_port: None,
        want: &[
            "blackhole 10.0.0.1 metric 1000",
            "blackhole 10.0.0.11 metric 100",
            "blackhole 10.0.0.12 metric 1000",
            "blackhole 172.16.0.1 metric 100",
            "blackhole 172.16.0.2 metric 1000",
        ],
    },
    // The router's static routes, not discard, not src-ip: untracked.
    Case {
        router: "static",
        pub_port: None,
        want: &["blackhole 192.168.50.0/24 metric 1000"],
    },
    // NAT external IPs: the SNAT (tracked to the gateway port), the distributed floating IPs
    // (tracked to their VIFs), and the neighbour lr1's floating IP (on hv2).
    Case {
        router: "nat",
        pub_port: None,
        want: &[
            "blackhole 172.16.0.1 metric 100",
            "blackhole 172.16.0.50 metric 100",
            "blackhole 172.16.0.51 metric 1000",
            "blackhole 172.16.0.60 metric 1000",
        ],
    },
    // VIPs: lr0's (tracked to its gateway port) and the neighbour's (tracked to lr1-pub, hv2).
    Case {
        router: "lb",
        pub_port: None,
        want: &[
            "blackhole 172.16.0.100 metric 100",
            "blackhole 172.16.0.70 metric 1000",
        ],
    },
    // A port's setting replaces the router's: connected through lr0-priv only, nat through
    // lr0-pub (lr0's own NATs, and lr1's as lr1 is lr0-pub's neighbour).
    Case {
        router: "connected",
        pub_port: Some("nat"),
        want: &[
            "blackhole 10.0.0.0/24 metric 1000",
            "blackhole 172.16.0.1 metric 100",
            "blackhole 172.16.0.50 metric 100",
            "blackhole 172.16.0.51 metric 1000",
            "blackhole 172.16.0.60 metric 1000",
        ],
    },
];

#[test]
fn advertised_set_per_redistribute_type() {
    if skip_unless_root("advertised_set_per_redistribute_type") {
        return;
    }
    let mut x = DynamicLab::start(&[]).unwrap();
    add_floating_ips(&x);
    add_other_sources(&x);
    x.start_agent(0, bin()).unwrap();
    x.start_agent(1, bin()).unwrap();
    for c in CASES {
        nbctl(
            &x,
            &[
                "set",
                "Logical_Router",
                "lr0",
                &format!("options:dynamic-routing-redistribute=\"{}\"", c.router),
            ],
        );
        match c.pub_port {
            Some(p) => nbctl(
                &x,
                &[
                    "set",
                    "Logical_Router_Port",
                    "lr0-pub",
                    &format!("options:dynamic-routing-redistribute=\"{p}\""),
                ],
            ),
            None => nbctl(
                &x,
                &[
                    "remove",
                    "Logical_Router_Port",
                    "lr0-pub",
                    "options",
                    "dynamic-routing-redistribute",
                ],
            ),
        }
        eprintln!("case: router {:?}, lr0-pub {:?}", c.router, c.pub_port);
        wait_table(&x, 0, c.want);
        // Only the gateway chassis advertises.
        assert!(x.table_routes(1, "84").unwrap().is_empty(), "{}", x.dump());
    }
    for a in x.agents.iter_mut().flatten() {
        a.kill();
    }
}

#[test]
fn metrics_and_local_only_on_two_chassis_across_failover() {
    if skip_unless_root("metrics_and_local_only_on_two_chassis_across_failover") {
        return;
    }
    let mut x = DynamicLab::start(&[("dynamic-routing-redistribute", "nat")]).unwrap();
    add_floating_ips(&x);
    x.start_agent(0, bin()).unwrap();
    x.start_agent(1, bin()).unwrap();

    // Gateway on hv1: the SNAT IP (tracked to the gateway port) and vm1's floating IP are local
    // there (100), vm2's (on hv2) is not (1000).
    wait_table(
        &x,
        0,
        &[
            "blackhole 172.16.0.1 metric 100",
            "blackhole 172.16.0.50 metric 100",
            "blackhole 172.16.0.51 metric 1000",
        ],
    );
    wait_table(&x, 1, &[]);

    // local-only: the route tracked to a port on the other chassis is not installed.
    nbctl(
        &x,
        &[
            "set",
            "Logical_Router",
            "lr0",
            "options:dynamic-routing-redistribute-local-only=true",
        ],
    );
    wait_table(
        &x,
        0,
        &[
            "blackhole 172.16.0.1 metric 100",
            "blackhole 172.16.0.50 metric 100",
        ],
    );
    assert!(x.table_routes(1, "84").unwrap().is_empty(), "{}", x.dump());

    // Failover to hv2: hv1 withdraws everything; hv2 advertises, now vm2's floating IP local.
    x.lab.lrp_set_gateway_chassis("lr0-pub", "hv2", 30).unwrap();
    x.lab.lrp_del_gateway_chassis("lr0-pub", "hv1").unwrap();
    x.lab.wait_port_bound("cr-lr0-pub", "hv2", WAIT).unwrap();
    wait_table(
        &x,
        1,
        &[
            "blackhole 172.16.0.1 metric 100",
            "blackhole 172.16.0.51 metric 100",
        ],
    );
    wait_table(&x, 0, &[]);

    // local-only off: vm1's floating IP, now remote, comes back with 1000.
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
    wait_table(
        &x,
        1,
        &[
            "blackhole 172.16.0.1 metric 100",
            "blackhole 172.16.0.50 metric 1000",
            "blackhole 172.16.0.51 metric 100",
        ],
    );
    assert!(x.table_routes(0, "84").unwrap().is_empty(), "{}", x.dump());
    for a in x.agents.iter_mut().flatten() {
        a.kill();
    }
}

/// Routes "FRR" (proto bgp) puts into hv1's table.
fn learn(x: &DynamicLab, prefix: &str, via: &str) {
    let r = x.ip(
        0,
        &[
            "route", "add", prefix, "via", via, "dev", "up0", "table", "1000", "proto", "bgp",
        ],
    );
    if let Err(e) = r {
        panic!("{e}\n{}", x.dump());
    }
}

#[test]
fn restarts_of_agent_and_nb_do_not_flap() {
    if skip_unless_root("restarts_of_agent_and_nb_do_not_flap") {
        return;
    }
    let mut x = DynamicLab::start(&[("dynamic-routing-redistribute", "connected,nat")]).unwrap();
    x.start_agent(0, bin()).unwrap();
    let mut advertised = vec![
        "blackhole 10.0.0.0/24 metric 1000".to_string(),
        "blackhole 172.16.0.0/24 metric 1000".to_string(),
        "blackhole 172.16.0.1 metric 100".to_string(),
    ];
    let table = |x: &DynamicLab, want: &[String]| {
        let w: Vec<&str> = want.iter().map(String::as_str).collect();
        wait_table(x, 0, &w);
    };
    table(&x, &advertised);
    learn(&x, "203.0.113.0/24", "172.16.0.254");
    learn(&x, "198.51.100.0/24", "172.16.0.253");
    let mut learned = vec![
        "198.51.100.0/24 172.16.0.253 lr0-pub hv1".to_string(),
        "203.0.113.0/24 172.16.0.254 lr0-pub hv1".to_string(),
    ];
    let nb = |x: &DynamicLab, want: &mut Vec<String>| {
        want.sort();
        let w: Vec<&str> = want.iter().map(String::as_str).collect();
        wait_nb(x, "learned routes in the NB", &w);
    };
    nb(&x, &mut learned);
    let uuids = x.nb_learned_uuids().unwrap();
    assert_eq!(uuids.len(), 2, "{uuids:?}");

    for (round, what) in ["agent SIGKILL", "agent SIGTERM", "NB ovsdb-server"]
        .into_iter()
        .enumerate()
    {
        eprintln!("restart: {what}");
        let mon = x.monitor_routes(0, WAIT).unwrap();
        match round {
            0 => {
                x.agents[0].as_mut().unwrap().kill();
                x.start_agent(0, bin()).unwrap();
            }
            1 => {
                x.agents[0].as_mut().unwrap().stop();
                x.start_agent(0, bin()).unwrap();
            }
            _ => x.lab.nb_mut().server_mut().unwrap().restart().unwrap(),
        }
        // Barriers (no timing): a new NAT must be advertised and a new route learned, so the
        // restarted side has completed its first full passes both ways.
        let fip = format!("172.16.0.{}", 70 + round);
        x.lab
            .lr_nat_add(
                "lr0",
                &Nat::dnat_and_snat(&fip, &format!("10.0.0.{}", 20 + round)),
            )
            .unwrap();
        advertised.push(format!("blackhole {fip} metric 100"));
        advertised.sort();
        table(&x, &advertised);
        let p = format!("198.18.{round}.0/24");
        learn(&x, &p, "172.16.0.254");
        learned.push(format!("{p} 172.16.0.254 lr0-pub hv1"));
        nb(&x, &mut learned);

        // The monitor saw the barrier's route (so it does see protocol-84 routes of the table).
        let r = wait_until("the monitor to report the barrier route", WAIT, |last| {
            let l = mon.ovn_lines();
            *last = format!("{:?}", mon.lines());
            Ok(l.iter()
                .any(|l| l.contains(&format!("{fip} ")))
                .then_some(()))
        });
        if let Err(e) = r {
            panic!("{e}\n{}", x.dump());
        }
        // No protocol-84 route of table 1000 was deleted or re-added: the only notification is
        // the barrier's new route.
        let lines = mon.ovn_lines();
        let unexpected: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("Deleted") || !l.contains(&format!("{fip} ")))
            .collect();
        assert!(
            unexpected.is_empty(),
            "{what}: advertised routes flapped: {unexpected:?}\nall: {:?}\n{}",
            mon.lines(),
            x.dump()
        );
        // The learned rows are the same rows (not removed and re-added).
        let now = x.nb_learned_uuids().unwrap();
        for u in &uuids {
            assert!(
                now.contains(u),
                "{what}: learned route {u} re-created: now {now:?}\n{}",
                x.dump()
            );
        }
    }
    for a in x.agents.iter_mut().flatten() {
        a.kill();
    }
}

#[test]
fn static_redistribution_skips_learned_routes() {
    if skip_unless_root("static_redistribution_skips_learned_routes") {
        return;
    }
    let mut x = DynamicLab::start(&[("dynamic-routing-redistribute", "static")]).unwrap();
    nbctl(&x, &["lr-route-add", "lr0", "192.168.50.0/24", "10.0.0.50"]);
    x.start_agent(0, bin()).unwrap();
    wait_table(&x, 0, &["blackhole 192.168.50.0/24 metric 1000"]);
    learn(&x, "203.0.113.0/24", "172.16.0.254");
    wait_nb(
        &x,
        "the learned route in the NB",
        &[
            "192.168.50.0/24 10.0.0.50 - -",
            "203.0.113.0/24 172.16.0.254 lr0-pub hv1",
        ],
    );
    // Barrier: a second operator route is advertised, so the pass that saw the learned row is
    // done; the learned prefix must not be among the advertised routes.
    nbctl(&x, &["lr-route-add", "lr0", "192.168.51.0/24", "10.0.0.51"]);
    wait_table(
        &x,
        0,
        &[
            "blackhole 192.168.50.0/24 metric 1000",
            "blackhole 192.168.51.0/24 metric 1000",
        ],
    );
    for a in x.agents.iter_mut().flatten() {
        a.kill();
    }
}
