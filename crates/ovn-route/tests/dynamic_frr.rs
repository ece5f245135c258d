//! The agent's FRR instances for dynamic routing (`dynamic_routing_frr`) against a real FRR, on
//! the host (no VRF device: FRR keeps the instance's configuration until the VRF appears; the
//! kernel tier covers the routing through it): the instance appears with its neighbor, an
//! operator's instance for another VRF and the default instance are left alone, and turning
//! dynamic routing off on the router removes exactly our instance and route-map.

use std::path::Path;
use std::time::Duration;

use ovn_route_lab::dynamic::{DynamicLab, DYN_UPSTREAM_ADDR};
use ovn_route_lab::{skip_unless_root, wait_until};

const WAIT: Duration = Duration::from_secs(45);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ovn-route"))
}

#[test]
fn frr_instance_follows_the_router_and_spares_the_operators() {
    if skip_unless_root("frr_instance_follows_the_router_and_spares_the_operators") {
        return;
    }
    let mut x = DynamicLab::start(&[("dynamic-routing-redistribute", "connected")]).unwrap();
    x.start_bgp(0).unwrap();
    let frr = |x: &DynamicLab, cmds: &[&str]| x.bgp.as_ref().unwrap().frr.vtysh(cmds).unwrap();
    // The operator's own instance for another VRF.
    frr(
        &x,
        &[
            "configure terminal",
            "router bgp 64999 vrf blue",
            "address-family ipv4 unicast",
            "redistribute connected",
            "end",
        ],
    );
    x.ovn_route_extra = format!(
        "dynamic_routing_frr = true\ndynamic_routing_frr_neighbors = {DYN_UPSTREAM_ADDR}@65000, other/192.0.2.9@65009\n"
    );
    x.start_agent(0, bin()).unwrap();
    let conf = |x: &DynamicLab| frr(x, &["show running-config"]);
    let r = wait_until("our FRR instance", WAIT, |last| {
        *last = conf(&x);
        Ok(last
            .contains("router bgp 64999 vrf ovnvrf1000\n")
            .then_some(()))
    });
    if let Err(e) = r {
        panic!("{e}\n{}", x.dump());
    }
    let c = conf(&x);
    for line in [
        " bgp router-id 172.16.0.20\n",
        " no bgp ebgp-requires-policy\n",
        &format!(" neighbor {DYN_UPSTREAM_ADDR} remote-as 65000\n"),
        "  redistribute kernel route-map ovn-route-dynamic\n",
        "route-map ovn-route-dynamic permit 10\n",
    ] {
        assert!(c.contains(line), "{line:?} missing in\n{c}");
    }
    assert!(!c.contains("192.0.2.9"), "{c}");
    x.lab
        .nbctl(&[
            "remove",
            "Logical_Router",
            "lr0",
            "options",
            "dynamic-routing",
        ])
        .unwrap();
    let r = wait_until("our FRR instance removed", WAIT, |last| {
        *last = conf(&x);
        Ok((!last.contains("ovnvrf1000") && !last.contains("ovn-route-dynamic")).then_some(()))
    });
    if let Err(e) = r {
        panic!("{e}\n{}", x.dump());
    }
    let c = conf(&x);
    assert!(
        c.contains("router bgp 64999 vrf blue\n") && c.contains("router bgp 64999\n"),
        "{c}"
    );
    let log = x.agents[0].as_ref().unwrap().log_tail(200);
    assert!(
        !log.contains("FRR dynamic-routing instances not applied"),
        "{log}"
    );
    for a in x.agents.iter_mut().flatten() {
        a.kill();
    }
}
