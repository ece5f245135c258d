//! ovn-route's FRR block against real FRR 8.4 daemons in network namespaces (root only).

use std::time::{Duration, Instant};

use ovn_route_frr::{
    missing_lines, render, AddressFamilies, ApplyOutcome, ExposeMode, FrrIntent, FrrWatcher, Vtysh,
};
use ovn_route_lab::{connect, skip_unless_root, BgpConfig, FrrRouter, Netns};

const TIMEOUT: Duration = Duration::from_secs(60);

/// r1 (AS 65001, the chassis, runs ovn-route's block) peers with r2 (AS 65002, upstream).
fn two_routers() -> (FrrRouter, FrrRouter, ovn_route_lab::Veth) {
    let n1 = Netns::new("frr-r1").unwrap();
    let n2 = Netns::new("frr-r2").unwrap();
    let veth = connect(&n1, "v1", "192.0.2.1/30", &n2, "v2", "192.0.2.2/30").unwrap();
    let c1 = BgpConfig::new(65001, "10.0.0.1").neighbor("192.0.2.2", 65002);
    let c2 = BgpConfig::new(65002, "10.0.0.2").neighbor("192.0.2.1", 65001);
    let r1 = FrrRouter::start_in(n1, "r1", &c1.render()).unwrap();
    let r2 = FrrRouter::start_in(n2, "r2", &c2.render()).unwrap();
    (r1, r2, veth)
}

fn table_intent() -> FrrIntent {
    FrrIntent {
        asn: 65001,
        router_id: None,
        vrf: None,
        table_id: 10,
        families: AddressFamilies::IPV4,
        mode: ExposeMode::RoutesKernel,
    }
}

#[test]
fn table_mode_end_to_end_idempotent_and_reapplied_after_restart() {
    if skip_unless_root("table_mode_end_to_end_idempotent_and_reapplied_after_restart") {
        return;
    }
    let (mut r1, r2, _veth) = two_routers();
    // The exposure table with one route of ovn-route's (protocol 150) on the bgp-nic stand-in.
    r1.netns().add_bridge("bgp-nic", &[]).unwrap();
    r1.netns()
        .ip(&[
            "route",
            "add",
            "10.190.10.5/32",
            "dev",
            "bgp-nic",
            "table",
            "10",
            "proto",
            "150",
        ])
        .unwrap();
    let vtysh = Vtysh::new(r1.dir());
    let watcher = FrrWatcher::new(r1.dir()).unwrap();
    let intent = table_intent();

    // First apply installs the block; the running configuration shows it.
    let first = vtysh.apply(&intent).unwrap();
    assert!(matches!(first, ApplyOutcome::Changed(_)), "{first:?}");
    let text = vtysh.running_config_text().unwrap();
    assert!(text.contains("\nip import-table 10\n"), "{text}");
    assert!(text.contains("  redistribute table 10\n"), "{text}");
    assert!(
        text.contains("neighbor 192.0.2.2 remote-as 65002"),
        "operator's peer kept: {text}"
    );

    // Twice: nothing sent, and even forcing the raw commands again changes nothing.
    assert_eq!(vtysh.apply(&intent).unwrap(), ApplyOutcome::Unchanged);
    vtysh.run(&render(&intent)).unwrap();
    assert_eq!(vtysh.running_config_text().unwrap(), text);

    // End to end: the upstream peer learns the exposed /32.
    r1.wait_bgp_established("192.0.2.2", TIMEOUT).unwrap();
    let route = r2.wait_kernel_route("10.190.10.5", TIMEOUT).unwrap();
    assert!(route.contains("via 192.0.2.1"), "{route}");
    assert_eq!(
        vtysh.router_id().unwrap(),
        Some("10.0.0.1".parse().unwrap())
    );
    let summary = vtysh.bgp_summary().unwrap();
    assert_eq!(
        summary["ipv4Unicast"]["peers"]["192.0.2.2"]["state"], "Established",
        "{summary}"
    );

    // FRR restarts (its config file does not have our block): the watcher fires, we re-apply.
    assert!(watcher.try_recv().is_none(), "no event before the restart");
    let t0 = Instant::now();
    r1.restart().unwrap();
    let restarted_at = t0.elapsed();
    let ev = watcher
        .wait_restart(Duration::from_secs(10))
        .expect("watcher reports the restart");
    let detected = t0.elapsed();
    let outcome = vtysh
        .apply_when_ready(&intent, Duration::from_secs(10))
        .unwrap();
    let back = t0.elapsed();
    assert!(matches!(outcome, ApplyOutcome::Changed(_)), "{outcome:?}");
    assert!(missing_lines(&intent, &vtysh.running_config().unwrap()).is_empty());
    eprintln!(
        "FRR restart: daemons up after {restarted_at:?}, watcher event {ev:?} after {detected:?}, \
         block back after {back:?}"
    );
    assert!(back < Duration::from_secs(10), "block back after {back:?}");

    // The route flows again after the restart.
    r1.wait_bgp_established("192.0.2.2", TIMEOUT).unwrap();
    r2.wait_kernel_route("10.190.10.5", TIMEOUT).unwrap();

    // Cleanup removes exactly our lines (twice: idempotent).
    vtysh.remove(&intent).unwrap();
    vtysh.remove(&intent).unwrap();
    let after = vtysh.running_config_text().unwrap();
    assert!(!after.contains("import-table"), "{after}");
    assert!(!after.contains("redistribute table"), "{after}");
    assert!(
        after.contains("neighbor 192.0.2.2 remote-as 65002"),
        "{after}"
    );

    // r1's frr.conf lacks the settings for hitless restarts (docs/frr.md); with them (as FRR
    // 8.4 prints them in its running configuration) nothing is reported.
    assert_eq!(
        vtysh.hitless_restart_gaps(65001).unwrap(),
        [
            "bgp graceful-restart",
            "bgp graceful-restart preserve-fw-state",
            "coalesce-time 5000"
        ]
    );
    vtysh
        .run(&[
            "configure terminal",
            "router bgp 65001",
            "bgp graceful-restart",
            "bgp graceful-restart preserve-fw-state",
            "coalesce-time 5000",
            "end",
        ])
        .unwrap();
    assert_eq!(
        vtysh.hitless_restart_gaps(65001).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn vrf_block_is_configured_idempotent_and_removed() {
    if skip_unless_root("vrf_block_is_configured_idempotent_and_removed") {
        return;
    }
    // bgpd accepts a VRF instance before the kernel VRF exists: the configuration side runs on
    // this kernel; the routes flowing need the kernel tier (kernel_tier_frr_vrf_leak).
    let r1 = FrrRouter::start("frr-vrf", &BgpConfig::new(65001, "10.0.0.9").render()).unwrap();
    let vtysh = Vtysh::new(r1.dir());
    let mut intent = FrrIntent {
        asn: 65001,
        router_id: None,
        vrf: Some("bgp-vrf".into()),
        table_id: 10,
        families: AddressFamilies::BOTH,
        mode: ExposeMode::AddressesConnected,
    };
    assert!(matches!(
        vtysh.apply(&intent).unwrap(),
        ApplyOutcome::Changed(_)
    ));
    let text = vtysh.running_config_text().unwrap();
    for needle in [
        "router bgp 65001 vrf bgp-vrf\n bgp router-id 10.0.0.9\n",
        "  import vrf bgp-vrf\n",
        "  redistribute connected\n",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    assert_eq!(vtysh.apply(&intent).unwrap(), ApplyOutcome::Unchanged);
    assert_eq!(vtysh.running_config_text().unwrap(), text);

    // A changed intent converges (IPv6 off, routes mode).
    intent.families = AddressFamilies::IPV4;
    intent.mode = ExposeMode::RoutesKernel;
    vtysh.apply(&intent).unwrap();
    let text = vtysh.running_config_text().unwrap();
    assert!(text.contains("  redistribute kernel\n"), "{text}");
    assert!(!text.contains("redistribute connected"), "{text}");
    assert_eq!(text.matches("import vrf bgp-vrf").count(), 1, "{text}");

    // A wrong AS is FRR's error, named with the command.
    let mut wrong = intent.clone();
    wrong.asn = 65009;
    let e = vtysh.apply(&wrong).unwrap_err().to_string();
    eprintln!("wrong AS: {e}");
    assert!(e.contains("router bgp 65009"), "{e}");

    vtysh.remove(&intent).unwrap();
    let text = vtysh.running_config_text().unwrap();
    assert!(!text.contains("bgp-vrf"), "{text}");
    assert!(text.contains("router bgp 65001\n"), "{text}");
}

#[test]
#[ignore = "kernel tier: needs vrf/dummy, run by scripts/kernel-tier.sh"]
fn kernel_tier_frr_vrf_leak() {
    let n1 = Netns::new("frr-k1").unwrap();
    let n2 = Netns::new("frr-k2").unwrap();
    let _veth = connect(&n1, "v1", "192.0.2.1/30", &n2, "v2", "192.0.2.2/30").unwrap();
    n1.ip(&["link", "add", "bgp-vrf", "type", "vrf", "table", "10"])
        .unwrap();
    n1.ip(&["link", "set", "bgp-vrf", "up"]).unwrap();
    n1.ip(&["link", "add", "bgp-nic", "type", "dummy"]).unwrap();
    n1.ip(&["link", "set", "bgp-nic", "master", "bgp-vrf"])
        .unwrap();
    n1.ip(&["link", "set", "bgp-nic", "up"]).unwrap();
    let c1 = BgpConfig::new(65001, "10.0.0.1").neighbor("192.0.2.2", 65002);
    let c2 = BgpConfig::new(65002, "10.0.0.2").neighbor("192.0.2.1", 65001);
    let r1 = FrrRouter::start_in(n1, "k1", &c1.render()).unwrap();
    let r2 = FrrRouter::start_in(n2, "k2", &c2.render()).unwrap();
    let vtysh = Vtysh::new(r1.dir());

    // Routes mode: a route of ovn-route's (protocol 150) in the VRF's table.
    let mut intent = FrrIntent {
        asn: 65001,
        router_id: None,
        vrf: Some("bgp-vrf".into()),
        table_id: 10,
        families: AddressFamilies::BOTH,
        mode: ExposeMode::RoutesKernel,
    };
    vtysh.apply(&intent).unwrap();
    r1.netns()
        .ip(&[
            "route",
            "add",
            "10.190.10.7/32",
            "dev",
            "bgp-nic",
            "vrf",
            "bgp-vrf",
            "proto",
            "150",
        ])
        .unwrap();
    r1.wait_bgp_established("192.0.2.2", TIMEOUT).unwrap();
    r2.wait_kernel_route("10.190.10.7", TIMEOUT).unwrap();

    // Addresses mode: an address on bgp-nic.
    intent.mode = ExposeMode::AddressesConnected;
    vtysh.apply(&intent).unwrap();
    r1.netns()
        .ip(&["addr", "add", "10.190.10.8/32", "dev", "bgp-nic"])
        .unwrap();
    r2.wait_kernel_route("10.190.10.8", TIMEOUT).unwrap();
    eprintln!("{}", vtysh.running_config_text().unwrap());
}
