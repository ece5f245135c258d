//! Acceptance of host routes (issue 5) on the lab: seed 002's Incus networks behind `incusbr0`,
//! real OVN, OVS and FRR; the chassis' kernel tables and the upstream router's BGP view are the
//! truth.

use std::path::Path;

use ovn_route_lab::incus::{delete_incus_network, IncusLab};
use ovn_route_lab::skip_unless_root;
use serde_json::Value as Json;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ovn-route"))
}

macro_rules! check {
    ($x:expr, $e:expr) => {
        if let Err(err) = $e {
            panic!("{err}\n{}", $x.dump());
        }
    };
}

/// The `routes` entries as (prefix, via, state, network origin).
fn entries(v: &Json) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = v["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["prefix"].as_str().unwrap_or("").to_string(),
                e["via"].as_str().unwrap_or("").to_string(),
                e["state"].as_str().unwrap_or("").to_string(),
                e["origin"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn status(x: &IncusLab, i: usize) -> Json {
    let out = std::process::Command::new(bin())
        .args(["status", "--json", "--socket"])
        .arg(&x.agents[i].as_ref().unwrap().status_socket)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Json::Null)
}

/// Waits until the exposure table (10) holds `route` on chassis `on` only (the gateway chassis):
/// what FRR is handed to advertise. (The upstream's view is not asserted: FRR 8.4's
/// `ip import-table` does not pass these via-routes to BGP in this lab; see docs/host-routes.md.)
fn wait_advertised_only(x: &IncusLab, route: &str, on: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
    loop {
        let t: Vec<String> = (0..2)
            .map(|i| {
                x.lab
                    .chassis(i)
                    .netns()
                    .ip(&["route", "show", "table", "10"])
                    .unwrap_or_default()
            })
            .collect();
        if (0..2).all(|i| t[i].contains(route) == (i == on)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{route} not in table 10 of hv{} only: {t:?}\n{}",
            on + 1,
            x.dump()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

const INFRA: &str = "10.190.10.0/24 via 10.220.0.100 dev incusbr0";
const KUBE: &str = "10.190.11.0/24 via 10.220.0.101 dev incusbr0";

#[test]
fn host_routes_follow_ovn_and_bgp_follows_the_gateway() {
    if skip_unless_root("host_routes_follow_ovn_and_bgp_follows_the_gateway") {
        return;
    }
    let mut x = IncusLab::start().expect("lab");
    for i in 0..2 {
        let cfg = x.agent_config(i, "advertise = true\n");
        x.start_agent(i, bin(), &cfg).unwrap();
    }
    // Both hosts are on the uplink: both get exactly the two routes.
    for i in 0..2 {
        check!(x, x.wait_host_routes(i, &[INFRA, KUBE]));
    }
    let v = x.routes_json(0, bin()).unwrap();
    assert_eq!(
        entries(&v),
        [
            (
                "10.190.10.0/24".into(),
                "10.220.0.100".into(),
                "installed".into(),
                "incus network id 2, project id 1".into()
            ),
            (
                "10.190.11.0/24".into(),
                "10.220.0.101".into(),
                "installed".into(),
                "incus network id 3, project id 1".into()
            ),
        ],
        "{v:#}"
    );
    // BGP: only the gateway chassis (hv1) advertises, with the uplink address as next hop.
    wait_advertised_only(&x, "10.190.10.0/24 via 10.220.0.100 dev incusbr0", 0);
    wait_advertised_only(&x, "10.190.11.0/24 via 10.220.0.101 dev incusbr0", 0);
    // The gateway of kubernetes moves to hv2: so does its advertisement.
    x.lab
        .lrp_set_gateway_chassis("incus-net3-lr-lrp-ext", "hv2", 30)
        .unwrap();
    wait_advertised_only(&x, "10.190.11.0/24 via 10.220.0.101 dev incusbr0", 1);
    wait_advertised_only(&x, "10.190.10.0/24 via 10.220.0.100 dev incusbr0", 0);

    // A foreign route for one prefix wins: ours goes, the foreign one stays, both report it.
    let ns = x.lab.chassis(0).netns();
    ns.ip(&[
        "route",
        "add",
        "10.190.11.0/24",
        "via",
        "10.220.0.101",
        "dev",
        "incusbr0",
        "proto",
        "static",
        "metric",
        "50",
    ])
    .unwrap();
    check!(x, x.wait_host_routes(0, &[INFRA]));
    let main = ns.ip(&["route", "show", "10.190.11.0/24"]).unwrap();
    assert!(main.contains("proto static"), "{main}");
    let v = x.routes_json(0, bin()).unwrap();
    assert!(
        entries(&v)
            .iter()
            .any(|e| e.0 == "10.190.11.0/24" && e.2 == "conflicting"),
        "{v:#}"
    );
    let st = status(&x, 0);
    assert!(
        st["host_routes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["prefix"] == "10.190.11.0/24" && e["state"] == "conflicting"),
        "{st:#}"
    );
    ns.ip(&[
        "route",
        "del",
        "10.190.11.0/24",
        "proto",
        "static",
        "metric",
        "50",
    ])
    .unwrap();
    check!(x, x.wait_host_routes(0, &[INFRA, KUBE]));

    // The uplink address of kubernetes changes: the next hop follows.
    x.lab
        .nbctl(&[
            "set",
            "Logical_Router_Port",
            "incus-net3-lr-lrp-ext",
            "networks=\"10.220.0.111/24\"",
        ])
        .unwrap();
    let kube2 = "10.190.11.0/24 via 10.220.0.111 dev incusbr0";
    check!(x, x.wait_host_routes(0, &[INFRA, kube2]));
    wait_advertised_only(&x, "10.190.11.0/24 via 10.220.0.111 dev incusbr0", 1);

    // Restart (SIGKILL): the routes stay, and the first pass of the new agent changes nothing.
    x.agent(0).kill();
    assert_eq!(
        x.host_routes(0).unwrap().lines().count(),
        2,
        "{}",
        x.host_routes(0).unwrap()
    );
    let before = x
        .lab
        .chassis(0)
        .netns()
        .ip(&["route", "show", "proto", "201"])
        .unwrap();
    x.agent(0).start().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
    let st = loop {
        let st = status(&x, 0);
        if st["last_reconcile"].is_object() {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no status after restart"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(st["last_reconcile"]["changes"], 0, "{st:#}\n{}", x.dump());
    assert_eq!(
        x.lab
            .chassis(0)
            .netns()
            .ip(&["route", "show", "proto", "201"])
            .unwrap(),
        before
    );

    // Delete a network: its route goes, and its advertisement.
    delete_incus_network(&x.lab, 2).unwrap();
    check!(x, x.wait_host_routes(0, &[kube2]));
    check!(x, x.wait_host_routes(1, &[kube2]));
    wait_advertised_only(&x, "10.190.10.0/24 via", 9);
}
