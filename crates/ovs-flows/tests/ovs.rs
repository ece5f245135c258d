//! The flow reconciler against a real ovs-vswitchd (dummy datapath) of a lab chassis, with the
//! patch port ovn-controller creates on the provider bridge for a localnet port (root only).

use std::collections::BTreeSet;
use std::time::Duration;

use ovn_route_lab::{skip_unless_root, wait_until, ChassisSpec, Lab};
use ovn_route_ovs::{
    exposure_flows, patch_port_present, reconcile, remove_all, DesiredFlows, DumpedFlow, Error,
    Flow, Ofctl, DEFAULT_COOKIE,
};

const TIMEOUT: Duration = Duration::from_secs(30);
const BRIDGE: &str = "br-ex";
const MAC_A: [u8; 6] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01];
const MAC_B: [u8; 6] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x02];

/// A lab with one chassis whose provider bridge `br-ex` has OVN's patch port. Dropping it
/// stops every daemon and removes its directory, also when a test fails.
struct Bed {
    lab: Lab,
    /// The patch port ovn-controller created on br-ex (its OVSDB name).
    patch: String,
    /// Its OpenFlow port number.
    ofport: u16,
    /// Reaches bridges by name through the chassis' `OVS_RUNDIR`.
    ofctl: Ofctl,
}

impl Bed {
    fn start() -> Bed {
        let lab = Lab::builder()
            .chassis(ChassisSpec::new("hv1").bridge_mapping("physnet1", BRIDGE))
            .start()
            .expect("lab");
        lab.ls_add("public").unwrap();
        lab.lsp_add_localnet("public", "ln-public", "physnet1")
            .unwrap();
        lab.add_vif_port("public", "vm1", "00:00:00:00:00:01 172.16.0.10", "hv1")
            .unwrap();
        lab.wait_lsp_up("vm1", TIMEOUT).unwrap();
        let ch = lab.chassis(0);
        let patch = wait_until("patch port on br-ex", TIMEOUT, |last| {
            let ports = ch.vsctl(&["list-ports", BRIDGE])?;
            *last = ports.clone();
            Ok(ports
                .lines()
                .find(|p| p.starts_with("patch-"))
                .map(str::to_string))
        })
        .unwrap();
        // The port is in the database before ovs-vswitchd gives it an OpenFlow port number.
        let ofport = wait_until("patch port's ofport", TIMEOUT, |last| {
            let n = ch.vsctl(&["get", "Interface", &patch, "ofport"])?;
            *last = n.clone();
            Ok(n.trim().parse::<u16>().ok().filter(|n| *n > 0))
        })
        .unwrap();
        let ofctl = Ofctl::new().envs(ch.env());
        Bed {
            lab,
            patch,
            ofport,
            ofctl,
        }
    }

    fn ofctl_raw(&self, args: &[&str]) -> String {
        self.lab.chassis(0).ofctl(args).unwrap()
    }

    fn target(&self) -> String {
        self.lab.chassis(0).ofctl_target(BRIDGE)
    }

    /// Adds a flow with `ovs-ofctl add-flow` (as another program would).
    fn add_foreign(&self, flow: &str) {
        self.ofctl_raw(&["add-flow", &self.target(), flow]);
    }

    fn all(&self) -> Vec<DumpedFlow> {
        self.ofctl.dump_flows(BRIDGE, None).unwrap()
    }

    fn ours(&self) -> BTreeSet<Flow> {
        self.ofctl
            .dump_owned(BRIDGE, DEFAULT_COOKIE)
            .unwrap()
            .into_iter()
            .collect()
    }

    fn foreign(&self) -> BTreeSet<DumpedFlow> {
        self.all()
            .into_iter()
            .filter(|d| d.cookie != DEFAULT_COOKIE)
            .collect()
    }

    fn desired(&self, mac: [u8; 6]) -> DesiredFlows {
        DesiredFlows::new(BRIDGE, DEFAULT_COOKIE).with(exposure_flows(self.ofport, mac))
    }
}

#[test]
fn reconcile_adds_replaces_deletes_ours_and_leaves_foreign_flows_alone() {
    if skip_unless_root("reconcile_adds_replaces_deletes_ours_and_leaves_foreign_flows_alone") {
        return;
    }
    let bed = Bed::start();
    let p = bed.ofport;
    // By number, and by the OVSDB name (longer than OpenFlow's 15 characters).
    assert!(bed.patch.len() > 15, "{}", bed.patch);
    assert!(patch_port_present(&bed.ofctl, BRIDGE, &p.to_string()).unwrap());
    assert!(patch_port_present(&bed.ofctl, BRIDGE, &bed.patch).unwrap());
    assert!(!patch_port_present(&bed.ofctl, BRIDGE, "patch-nothing").unwrap());
    assert!(!patch_port_present(&bed.ofctl, BRIDGE, "4242").unwrap());

    // Other owners' flows, placed before we come: same priority (other match), same match
    // (other priority), and a cookie that contains ours in its low bits.
    bed.add_foreign("cookie=0x5,priority=900,ip,in_port=LOCAL,actions=drop");
    bed.add_foreign(&format!(
        "cookie=0x5,priority=899,ip,in_port={p},actions=drop"
    ));
    bed.add_foreign(&format!(
        "cookie=0x1000003e7,priority=901,ipv6,in_port={p},actions=NORMAL"
    ));
    let foreign = bed.foreign();
    assert_eq!(
        foreign.len(),
        4,
        "three of theirs and the default NORMAL flow: {foreign:?}"
    );

    // First reconcile adds both flows.
    let desired = bed.desired(MAC_A);
    let stats = reconcile(&bed.ofctl, &desired).unwrap();
    assert_eq!((stats.added, stats.replaced, stats.deleted), (2, 0, 0));
    assert_eq!(bed.ours(), desired.flows);
    assert_eq!(bed.foreign(), foreign);
    let text = bed.ofctl_raw(&["--no-names", "dump-flows", &bed.target()]);
    assert!(
        text.contains(&format!(
            "priority=900,ip,in_port={p} actions=mod_dl_dst:02:aa:bb:cc:dd:01,NORMAL"
        )),
        "{text}"
    );

    // Second: nothing to do.
    let stats = reconcile(&bed.ofctl, &desired).unwrap();
    assert!(stats.is_noop(), "{stats:?}");
    assert_eq!(stats.unchanged, 2);

    // A new MAC replaces both in place.
    let desired = bed.desired(MAC_B);
    let stats = reconcile(&bed.ofctl, &desired).unwrap();
    assert_eq!((stats.added, stats.replaced, stats.deleted), (0, 2, 0));
    assert_eq!(bed.ours(), desired.flows);
    assert_eq!(bed.foreign(), foreign);

    // Someone deletes one of ours and changes the other: both are restored.
    bed.ofctl_raw(&[
        "--strict",
        "del-flows",
        &bed.target(),
        &format!("priority=900,ip,in_port={p}"),
    ]);
    bed.ofctl_raw(&[
        "--strict",
        "mod-flows",
        &bed.target(),
        // With the cookie as a match (`/-1`) the flow keeps it; without, OpenFlow 1.0's modify
        // would give it cookie 0, making it somebody else's.
        &format!("cookie=0x3e7/-1,priority=900,ipv6,in_port={p},actions=drop"),
    ]);
    let stats = reconcile(&bed.ofctl, &desired).unwrap();
    assert_eq!((stats.added, stats.replaced, stats.deleted), (1, 1, 0));
    assert_eq!(bed.ours(), desired.flows);

    // Fewer desired flows: only ours go.
    let [v4, _] = exposure_flows(p, MAC_B);
    let only_v4 = DesiredFlows::new(BRIDGE, DEFAULT_COOKIE).with([v4.clone()]);
    let stats = reconcile(&bed.ofctl, &only_v4).unwrap();
    assert_eq!((stats.added, stats.replaced, stats.deleted), (0, 0, 1));
    assert_eq!(bed.ours(), BTreeSet::from([v4]));
    assert_eq!(bed.foreign(), foreign);
    let none = DesiredFlows::new(BRIDGE, DEFAULT_COOKIE);
    let stats = reconcile(&bed.ofctl, &none).unwrap();
    assert_eq!(stats.deleted, 1);
    assert!(bed.ours().is_empty());
    assert_eq!(bed.foreign(), foreign);

    // remove_all deletes ours only.
    reconcile(&bed.ofctl, &desired).unwrap();
    assert_eq!(remove_all(&bed.ofctl, BRIDGE, DEFAULT_COOKIE).unwrap(), 2);
    assert!(bed.ours().is_empty());
    assert_eq!(bed.foreign(), foreign);
    assert_eq!(remove_all(&bed.ofctl, BRIDGE, DEFAULT_COOKIE).unwrap(), 0);
    assert_eq!(bed.foreign(), foreign);
}

#[test]
fn a_foreign_flow_in_our_slot_is_never_replaced() {
    if skip_unless_root("a_foreign_flow_in_our_slot_is_never_replaced") {
        return;
    }
    let bed = Bed::start();
    let p = bed.ofport;
    // Same table, priority and match as our IPv6 flow: OpenFlow would let our add replace it.
    bed.add_foreign(&format!(
        "cookie=0x5,priority=900,ipv6,in_port={p},actions=drop"
    ));
    let foreign = bed.foreign();
    let desired = bed.desired(MAC_A);
    let [v4, v6] = exposure_flows(p, MAC_A);

    for round in 0..2 {
        match reconcile(&bed.ofctl, &desired) {
            Err(Error::ForeignConflict {
                bridge,
                conflicts,
                stats,
            }) => {
                assert_eq!(bridge, BRIDGE);
                assert_eq!(conflicts.len(), 1);
                assert_eq!(conflicts[0].desired, v6);
                assert_eq!(conflicts[0].theirs.cookie, 5);
                assert_eq!(conflicts[0].theirs.flow.actions, "drop");
                // The IPv4 flow is added the first time, then left alone.
                let expect = if round == 0 { (1, 0) } else { (0, 1) };
                assert_eq!((stats.added, stats.unchanged), expect, "round {round}");
            }
            other => panic!("round {round}: expected a conflict, got {other:?}"),
        }
        assert_eq!(bed.ours(), BTreeSet::from([v4.clone()]));
        assert_eq!(bed.foreign(), foreign);
    }

    // Once its owner removes it, our flow goes in.
    bed.ofctl_raw(&[
        "--strict",
        "del-flows",
        &bed.target(),
        &format!("cookie=0x5/-1,priority=900,ipv6,in_port={p}"),
    ]);
    let stats = reconcile(&bed.ofctl, &desired).unwrap();
    assert_eq!((stats.added, stats.unchanged), (1, 1));
    assert_eq!(bed.ours(), desired.flows);

    // Somebody rewrites our IPv4 flow without naming the cookie: OpenFlow 1.0's modify sets
    // the cookie to 0, so the flow is theirs now and is left to them.
    bed.ofctl_raw(&[
        "--strict",
        "mod-flows",
        &bed.target(),
        &format!("priority=900,ip,in_port={p},actions=drop"),
    ]);
    match reconcile(&bed.ofctl, &desired) {
        Err(Error::ForeignConflict { conflicts, .. }) => {
            assert_eq!(conflicts.len(), 1);
            assert_eq!(conflicts[0].desired, v4);
            assert_eq!(conflicts[0].theirs.cookie, 0);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(bed.ours(), BTreeSet::from([v6]));
}

#[test]
fn targets_versions_and_errors() {
    if skip_unless_root("targets_versions_and_errors") {
        return;
    }
    let bed = Bed::start();
    let p = bed.ofport;
    let desired = bed.desired(MAC_A);

    // An explicit management-socket target, without the chassis' environment.
    let by_socket = Ofctl::new().target(BRIDGE, &bed.target());
    let stats = reconcile(&by_socket, &desired).unwrap();
    assert_eq!(stats.added, 2);
    assert!(reconcile(&bed.ofctl, &desired).unwrap().is_noop());

    // A bridge restricted to OpenFlow 1.3: the default fails, `-O OpenFlow13` works and reads
    // the flows (printed as set_field) as unchanged.
    bed.lab
        .chassis(0)
        .vsctl(&["set", "bridge", BRIDGE, "protocols=OpenFlow13"])
        .unwrap();
    let e = reconcile(&bed.ofctl, &desired).unwrap_err();
    assert!(matches!(e, Error::Command { .. }), "{e}");
    let of13 = Ofctl::new()
        .envs(bed.lab.chassis(0).env())
        .protocols("OpenFlow13");
    let stats = reconcile(&of13, &desired).unwrap();
    assert!(stats.is_noop(), "{stats:?}");
    assert_eq!(stats.unchanged, 2);
    let changed = bed.desired(MAC_B);
    assert_eq!(reconcile(&of13, &changed).unwrap().replaced, 2);
    assert!(reconcile(&of13, &changed).unwrap().is_noop());
    bed.lab
        .chassis(0)
        .vsctl(&["clear", "bridge", BRIDGE, "protocols"])
        .unwrap();

    // A port given by (OpenFlow's cut) name is printed by number: reported, not rewritten
    // silently forever.
    let ports = bed.ofctl.ports(BRIDGE).unwrap();
    let cut = &ports.iter().find(|o| o.number == Some(p)).unwrap().name;
    assert_eq!(cut.as_str(), &bed.patch[..15]);
    let named = DesiredFlows::new(BRIDGE, DEFAULT_COOKIE)
        .with(exposure_flows(p, MAC_B))
        .with([Flow::new(
            800,
            "ip,in_port=LOCAL,nw_dst=192.0.2.0/24",
            &format!("output:{cut}"),
        )]);
    match reconcile(&bed.ofctl, &named) {
        Err(Error::NotConverged {
            missing,
            unexpected,
            ..
        }) => {
            assert_eq!(missing.len(), 1, "{missing:?}");
            assert_eq!(missing[0].actions, format!("output:{cut}"));
            assert_eq!(unexpected.len(), 1, "{unexpected:?}");
            assert_eq!(unexpected[0].actions, format!("output:{p}"));
        }
        other => panic!("expected NotConverged, got {other:?}"),
    }

    // A missing port: the error names the command and quotes ovs-ofctl's complaint.
    let missing_port = DesiredFlows::new(BRIDGE, DEFAULT_COOKIE).with([Flow::new(
        800,
        "ip,in_port=patch-nothing",
        "drop",
    )]);
    match reconcile(&bed.ofctl, &missing_port) {
        Err(Error::Command {
            command, stderr, ..
        }) => {
            assert!(command.contains("ovs-ofctl"), "{command}");
            assert!(stderr.contains("patch-nothing"), "{stderr}");
        }
        other => panic!("expected a command error, got {other:?}"),
    }

    // An unknown bridge.
    let e = reconcile(&bed.ofctl, &DesiredFlows::new("br-nope", DEFAULT_COOKIE)).unwrap_err();
    match &e {
        Error::Command {
            command, stderr, ..
        } => {
            assert!(command.contains("br-nope"), "{command}");
            assert!(stderr.contains("br-nope"), "{stderr}");
        }
        other => panic!("expected a command error, got {other:?}"),
    }

    assert_eq!(remove_all(&by_socket, BRIDGE, DEFAULT_COOKIE).unwrap(), 3);
    assert!(bed.ours().is_empty());
}
