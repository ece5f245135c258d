//! The exposure agent without a Southbound database (`[ovn_route] southbound = off`, no
//! `ovn_sb_connection`) on the lab: real OVN 23.03, OVS and FRR; the upstream router's view is the
//! truth. Without the SB, switch ports are located by NB `options:requested-chassis` and gateway
//! ports by `Logical_Router_Port.status:hosting-chassis`, which OVN writes from 23.09 on.
//!
//! - With the stock 23.03 NB schema (no `status` column) only what requested-chassis locates is
//!   exposed: the provider VM and the distributed floating IP; the gateway IP, the load-balancer
//!   VIP, the centralized floating IP and the tenant subnet cannot be located.
//! - With the NB converted to the 23.03 schema plus `Logical_Router_Port.status` and the test
//!   writing `status:hosting-chassis` (as northd 23.09 would), those follow hosting-chassis.

use std::path::PathBuf;
use std::process::Command;

use ovn_route_lab::{skip_unless_root, ExposureLab};

#[macro_use]
mod common;
use common::{bin, dump, try_status, wait_status, WAIT};
use serde_json::{json, Value as Json};

/// The prefixes the agent's status says it exposes, sorted.
fn exposed(st: &Json) -> Vec<String> {
    let mut v: Vec<String> = st["exposed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["prefix"].as_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

/// The upstream router's BGP prefixes learned from the chassis (the links left out), sorted.
fn upstream_prefixes(x: &ExposureLab) -> Vec<String> {
    let mut got: Vec<String> = x
        .upstream_bgp_routes()
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| !p.starts_with("192.0.2."))
        .collect();
    got.sort();
    got
}

/// Locates the demo's VIF ports in the NB, where they are bound (ovn-controller honours it too).
fn set_requested_chassis(x: &ExposureLab) {
    for (port, chassis) in [("vm-prov", "hv1"), ("vm1", "hv1"), ("vm2", "hv2")] {
        x.lab
            .nbctl(&[
                "set",
                "Logical_Switch_Port",
                port,
                &format!("options:requested-chassis={chassis}"),
            ])
            .unwrap();
    }
}

/// Starts both agents without a Southbound database and waits for their first pass.
fn start_agents_without_sb(x: &mut ExposureLab) {
    for i in 0..2 {
        let cfg = x.agent_config_without_sb(i, "", "");
        assert!(
            !cfg.contains("ovn_sb_connection") && cfg.contains("southbound = off"),
            "{cfg}"
        );
        x.start_agent(i, bin(), &cfg).unwrap();
    }
    for i in 0..2 {
        let st = wait_status(x, i, "a first reconcile", |v| {
            !v["last_reconcile"].is_null()
        });
        let dbs: Vec<&str> = st["databases"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["db"].as_str())
            .collect();
        assert!(!dbs.contains(&"sb"), "a Southbound connection: {st:#}");
        assert!(dbs.contains(&"nb"), "{st:#}");
    }
}

/// Converts the running NB to the installed (23.03) schema plus `Logical_Router_Port.status`
/// (a map of strings, as in OVN 23.09), online with `ovsdb-client convert`.
fn add_lrp_status_column(x: &ExposureLab) {
    let text = std::fs::read_to_string(ovn_route_lab::NB_SCHEMA).unwrap();
    let mut schema: Json = serde_json::from_str(&text).unwrap();
    let cols = &mut schema["tables"]["Logical_Router_Port"]["columns"];
    assert!(
        cols.is_object() && cols.get("status").is_none(),
        "expected the 23.03 schema without Logical_Router_Port.status"
    );
    cols["status"] =
        json!({"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}});
    schema.as_object_mut().unwrap().remove("cksum");
    let path: PathBuf = x.lab.dir().join("ovn-nb-with-lrp-status.ovsschema");
    std::fs::write(&path, schema.to_string()).unwrap();
    let remote = x.lab.nb().unix_remote();
    ovn_route_lab::run(Command::new("ovsdb-client").args([
        "--timeout=20",
        "convert",
        &remote,
        path.to_str().unwrap(),
    ]))
    .unwrap();
    let cols = ovn_route_lab::run(Command::new("ovsdb-client").args([
        "--timeout=20",
        "list-columns",
        &remote,
        "OVN_Northbound",
        "Logical_Router_Port",
    ]))
    .unwrap();
    assert!(cols.contains("status"), "{cols}");
}

/// Writes `status:hosting-chassis` of router port `lrp` (ovn-nbctl 23.03 does not know the
/// column, so through `ovsdb-client transact`).
fn set_hosting_chassis(x: &ExposureLab, lrp: &str, chassis: &str) {
    let txn = json!(["OVN_Northbound", {
        "op": "update",
        "table": "Logical_Router_Port",
        "where": [["name", "==", lrp]],
        "row": {"status": ["map", [["hosting-chassis", chassis]]]}
    }]);
    let out = ovn_route_lab::run(Command::new("ovsdb-client").args([
        "--timeout=20",
        "transact",
        &x.lab.nb().unix_remote(),
        &txn.to_string(),
    ]))
    .unwrap();
    assert!(out.contains("\"count\":1"), "{out}");
}

#[test]
fn without_sb_on_2303_only_requested_chassis_ports_are_exposed() {
    if skip_unless_root("without_sb_on_2303_only_requested_chassis_ports_are_exposed") {
        return;
    }
    let mut x = ExposureLab::start().expect("lab");
    set_requested_chassis(&x);
    start_agents_without_sb(&mut x);
    // Located by requested-chassis: the provider VM and vm1's distributed floating IP (hv1).
    for p in ["172.16.0.10", "172.16.0.101"] {
        check!(x, x.wait_upstream_via(p, 0, WAIT));
    }
    // Both agents have planned: hv1 exposes exactly those, hv2 nothing (the gateway, and with it
    // the VIP, the centralized FIP and the tenant subnet, cannot be located on 23.03).
    let want = ["172.16.0.10/32", "172.16.0.101/32"];
    let st = wait_status(&x, 0, "hv1's plan", |v| exposed(v).len() >= 2);
    assert_eq!(exposed(&st), want, "{st:#}");
    let st = status_now(&x, 1);
    assert_eq!(exposed(&st), Vec::<String>::new(), "{st:#}");
    for i in 0..2 {
        let log = x.agent(i).log_text();
        assert!(
            log.contains("gateway ports cannot be located"),
            "agent {i} did not warn:\n{log}"
        );
    }
    eprintln!("{}", x.upstream_bgp_table().unwrap());
    assert_eq!(upstream_prefixes(&x), want, "{}", dump(&mut x));
    for p in ["172.16.0.1", "172.16.0.102", "172.16.0.200", "10.0.0.0/24"] {
        assert_eq!(x.upstream_route(p).unwrap(), "", "{p}\n{}", dump(&mut x));
    }

    // requested-chassis moves the VM to hv2: its /32 follows; the FIP stays with vm1 on hv1.
    x.lab
        .chassis(0)
        .vsctl(&["del-port", "br-int", "vm-prov"])
        .unwrap();
    x.lab
        .nbctl(&[
            "set",
            "Logical_Switch_Port",
            "vm-prov",
            "options:requested-chassis=hv2",
        ])
        .unwrap();
    x.lab.chassis(1).add_vif("vm-prov-2", "vm-prov").unwrap();
    check!(x, x.wait_upstream_via("172.16.0.10", 1, WAIT));
    check!(x, x.wait_upstream_via("172.16.0.101", 0, WAIT));
    for i in 0..2 {
        x.agent(i).check_alive().unwrap();
    }
}

#[test]
fn without_sb_gateway_follows_hosting_chassis() {
    if skip_unless_root("without_sb_gateway_follows_hosting_chassis") {
        return;
    }
    let mut x = ExposureLab::start().expect("lab");
    add_lrp_status_column(&x);
    set_requested_chassis(&x);
    // What northd 23.09 would write: the gateway is bound to hv1.
    set_hosting_chassis(&x, "lrp-pub", "hv1");
    start_agents_without_sb(&mut x);
    for p in ovn_route_lab::DEMO_HOSTED_ON_HV1 {
        check!(x, x.wait_upstream_via(p, 0, WAIT));
    }
    let want = [
        "10.0.0.0/24",
        "172.16.0.1/32",
        "172.16.0.10/32",
        "172.16.0.101/32",
        "172.16.0.102/32",
        "172.16.0.200/32",
    ];
    // The status also lists the IPv6 gateway IP and tenant subnet (wired; with vrf_mode none FRR
    // 8.4 advertises IPv4 only).
    let mut want_status: Vec<&str> = want.to_vec();
    want_status.extend(["2001:db8:ff::1/128", "fd00::/64"]);
    let st = wait_status(&x, 0, "hv1's plan", |v| {
        exposed(v).len() >= want_status.len()
    });
    assert_eq!(exposed(&st), want_status, "{st:#}");
    assert_eq!(exposed(&status_now(&x, 1)), Vec::<String>::new());
    assert!(
        !x.agent(0)
            .log_text()
            .contains("gateway ports cannot be located"),
        "warned although the NB has the status column"
    );
    eprintln!("{}", x.upstream_bgp_table().unwrap());
    assert_eq!(upstream_prefixes(&x), want, "{}", dump(&mut x));

    // The gateway fails over to hv2 (northd 23.09 would move hosting-chassis with it): gateway
    // IP, centralized FIP, VIP and tenant subnet follow; the distributed FIP and the provider VM
    // stay on hv1.
    x.lab.lrp_set_gateway_chassis("lrp-pub", "hv2", 30).unwrap();
    set_hosting_chassis(&x, "lrp-pub", "hv2");
    for p in ["172.16.0.1", "172.16.0.102", "172.16.0.200", "10.0.0.0/24"] {
        check!(x, x.wait_upstream_via(p, 1, WAIT));
    }
    for p in ["172.16.0.10", "172.16.0.101"] {
        check!(x, x.wait_upstream_via(p, 0, WAIT));
    }
    let st = wait_status(&x, 0, "hv1 to let the gateway go", |v| {
        exposed(v).len() == 2
    });
    assert_eq!(exposed(&st), ["172.16.0.10/32", "172.16.0.101/32"]);
    // And back by hosting-chassis alone (the SB still binds the gateway to hv2; the agent
    // does not read it).
    set_hosting_chassis(&x, "lrp-pub", "hv1");
    for p in ["172.16.0.1", "172.16.0.102", "172.16.0.200", "10.0.0.0/24"] {
        check!(x, x.wait_upstream_via(p, 0, WAIT));
    }
    for i in 0..2 {
        x.agent(i).check_alive().unwrap();
    }
}

fn status_now(x: &ExposureLab, i: usize) -> Json {
    try_status(x, i).unwrap_or_else(|e| panic!("ovn-route status: {e}"))
}
