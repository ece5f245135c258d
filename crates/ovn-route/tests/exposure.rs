//! Acceptance of the exposure agent (issue 3) on the lab: real OVN, OVS and FRR; the upstream
//! router's view is the truth. Host tier: `vrf_mode = none` (this kernel has no VRF), IPv4.

use std::path::Path;
use std::time::Duration;

use ovn_route_lab::{skip_unless_root, ExposureLab};

const WAIT: Duration = Duration::from_secs(45);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ovn-route"))
}

fn dump(x: &mut ExposureLab) -> String {
    let mut s = String::new();
    for i in 0..2 {
        if let Some(a) = x.agents[i].as_mut() {
            s.push_str(&format!("--- agent {i} log:\n{}\n", a.log_tail(60)));
        }
        let ns = x.lab.chassis(i).netns();
        s.push_str(&format!(
            "--- hv{} table 10:\n{}\n--- rules:\n{}\n",
            i + 1,
            ns.ip(&["route", "show", "table", "10"]).unwrap_or_default(),
            ns.ip(&["rule"]).unwrap_or_default()
        ));
    }
    s.push_str(&format!(
        "--- upstream:\n{}\n",
        x.upstream_bgp_table().unwrap_or_default()
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

#[test]
fn exposure_end_to_end_moves_and_withdrawals() {
    if skip_unless_root("exposure_end_to_end_moves_and_withdrawals") {
        return;
    }
    let mut x = ExposureLab::start().expect("lab");
    for i in 0..2 {
        let cfg = x.agent_config(i, "", "");
        x.start_agent(i, bin(), &cfg).unwrap();
    }
    // Everything hosted on hv1: provider VM, both FIPs (vm1 is on hv1; the centralized one
    // follows the gateway), the LB VIP, the gateway IP and the tenant subnet.
    for p in [
        "172.16.0.10",
        "172.16.0.101",
        "172.16.0.102",
        "172.16.0.200",
        "172.16.0.1",
        "10.0.0.0/24",
    ] {
        check!(x, x.wait_upstream_via(p, 0, WAIT));
    }
    eprintln!("{}", x.upstream_bgp_table().unwrap());
    // Exactly those: nothing else from the chassis.
    let routes = x.upstream_bgp_routes().unwrap();
    let mut got: Vec<&str> = routes
        .iter()
        .filter(|(p, _)| !p.starts_with("192.0.2."))
        .map(|(p, _)| p.as_str())
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "10.0.0.0/24",
            "172.16.0.1/32",
            "172.16.0.10/32",
            "172.16.0.101/32",
            "172.16.0.102/32",
            "172.16.0.200/32"
        ],
        "{}",
        dump(&mut x)
    );

    // The VM moves to hv2: its /32 follows.
    x.lab
        .chassis(0)
        .vsctl(&["del-port", "br-int", "vm-prov"])
        .unwrap();
    x.lab.chassis(1).add_vif("vm-prov-2", "vm-prov").unwrap();
    check!(x, x.wait_upstream_via("172.16.0.10", 1, WAIT));

    // The gateway moves to hv2: gateway IP, centralized FIP, VIP and tenant subnet follow.
    x.lab.lrp_set_gateway_chassis("lrp-pub", "hv2", 30).unwrap();
    for p in ["172.16.0.1", "172.16.0.102", "172.16.0.200", "10.0.0.0/24"] {
        check!(x, x.wait_upstream_via(p, 1, WAIT));
    }
    // The distributed FIP stays with vm1 on hv1.
    check!(x, x.wait_upstream_via("172.16.0.101", 0, WAIT));

    // Deletions: withdrawn, and nothing of ours left in the kernel tables.
    x.lab
        .nbctl(&["lr-nat-del", "lr0", "dnat_and_snat", "172.16.0.101"])
        .unwrap();
    x.lab.nbctl(&["lr-lb-del", "lr0", "lb0"]).unwrap();
    check!(x, x.wait_upstream_gone("172.16.0.101", WAIT));
    check!(x, x.wait_upstream_gone("172.16.0.200", WAIT));
    let t = x
        .lab
        .chassis(0)
        .netns()
        .ip(&["route", "show", "table", "10"])
        .unwrap();
    assert!(
        !t.contains("172.16.0.101") && !t.contains("172.16.0.200"),
        "{t}"
    );
    for i in 0..2 {
        x.agent(i).check_alive().unwrap();
    }
}
