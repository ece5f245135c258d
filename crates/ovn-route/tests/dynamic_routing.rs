//! Dynamic routing driven by OVN's `dynamic-routing*` options, on the host (no VRF: the router's
//! table is an ordinary table id, and `ip route add ... proto bgp` stands in for FRR): the
//! advertised routes in the gateway chassis' table, learned routes written to the NB as marked
//! static routes and removed when withdrawn or when learning is turned off, operator routes
//! untouched, and the gateway moving to the other chassis.

use std::path::Path;
use std::time::Duration;

use ovn_route_lab::dynamic::DynamicLab;
use ovn_route_lab::{skip_unless_root, wait_until};

const WAIT: Duration = Duration::from_secs(45);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ovn-route"))
}

fn wait_table(x: &DynamicLab, i: usize, want: &[&str]) {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    let r = wait_until(
        &format!("hv{} table 1000 (proto ovn)", i + 1),
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
