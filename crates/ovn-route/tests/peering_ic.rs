//! Remote peering through OVN Interconnection against real OVN: two availability zones (each
//! its own NB, SB, northd, ovn-ic and interconnection gateway chassis) sharing one IC-NB/IC-SB.
//! Both sides declare the peering; the transit switch, the ports on it, the routes ovn-ic learns
//! across and `ovn-trace` towards AZ2 are checked; deleting one side removes its objects and
//! leaves the other pending; deleting both removes the transit switch. Torn down on drop.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use ovn_route_lab::interconnect::{Az, IcLab};
use ovn_route_lab::peering::BackgroundProcess;
use ovn_route_lab::skip_unless_root;

const PENDING: &str = "pending (complete the mutual peering on the target network)\n";
const WAIT: Duration = Duration::from_secs(60);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ovn-route"))
}

fn peer(az: &Az, args: &[&str]) -> Output {
    Command::new(bin())
        .env("RUST_BACKTRACE", "0")
        .arg("peer")
        .arg("--db")
        .arg(az.lab.nb_remote())
        .args(args)
        .output()
        .unwrap()
}

fn ok(az: &Az, args: &[&str]) -> String {
    let out = peer(az, args);
    assert!(
        out.status.success(),
        "ovn-route peer {args:?} in {}: {}",
        az.name,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn status(az: &Az, network: &str, name: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&ok(az, &["list", network, "--format", "json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| e["status"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

fn router_ports(az: &Az) -> String {
    az.lab.nbctl(&["lrp-list", &az.net.router]).unwrap()
}

#[test]
fn remote_peering_through_interconnection() {
    if skip_unless_root("remote_peering_through_interconnection") {
        return;
    }
    let x = IcLab::start(2).unwrap();
    let (az1, az2) = (x.az(1), x.az(2));
    let ic_nb = x.ic_nb.unix_remote();
    let ic_sb = x.ic_sb.unix_remote();
    for az in [az1, az2] {
        ok(
            az,
            &[
                "integration",
                "create",
                "ic1",
                "--ic-nb",
                &ic_nb,
                "--ic-sb",
                &ic_sb,
                "--gateway-chassis",
                &az.chassis,
            ],
        );
        assert!(ok(az, &["integration", "show", "ic1"]).contains(&ic_nb));
    }
    // Unknown integration: refused, nothing written.
    let e = peer(az1, &["create", "lr1", "x", "nope", "--type", "remote"]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("\"nope\""));

    // AZ1 declares: pending; the transit switch is the rendezvous, no port yet.
    assert_eq!(
        ok(az1, &["create", "lr1", "link12", "ic1", "--type", "remote"]),
        PENDING
    );
    assert_eq!(x.transit_switches().unwrap(), ["ts-link12"]);
    assert!(!router_ports(az1).contains("ovnr-"));
    assert_eq!(status(az1, "lr1", "link12"), "pending");

    // AZ2 declares back: created.
    assert_eq!(
        ok(az2, &["create", "lr2", "link12", "ic1", "--type", "remote"]),
        "created\n"
    );
    // Controllers (one per AZ) finish what the commands did not (AZ1's side).
    let c1 = BackgroundProcess::start(
        bin(),
        &["controller", "--db", &az1.lab.nb_remote(), "--period", "1"],
        &az1.lab.dir().join("controller.log"),
    )
    .unwrap();
    let c2 = BackgroundProcess::start(
        bin(),
        &["controller", "--db", &az2.lab.nb_remote(), "--period", "1"],
        &az2.lab.dir().join("controller.log"),
    )
    .unwrap();
    x.wait(
        "ports of both AZs on the transit switch (IC-SB)",
        WAIT,
        |last| {
            let b = x.ic_port_bindings("ts-link12")?;
            *last = format!("{b:?}\naz1 controller: {}", c1.log_tail(10));
            Ok(b == ["ovnr-az1-ts-link12", "ovnr-az2-ts-link12"])
        },
    )
    .unwrap();
    assert_eq!(status(az1, "lr1", "link12"), "created");
    assert!(router_ports(az1).contains("ovnr-lr1-ts-link12"));
    assert!(router_ports(az2).contains("ovnr-lr2-ts-link12"));
    let lrp = az1
        .lab
        .nbctl(&[
            "get",
            "Logical_Router_Port",
            "ovnr-lr1-ts-link12",
            "networks",
        ])
        .unwrap();
    assert_eq!(lrp, "[\"169.254.100.1/30\"]");
    for az in [az1, az2] {
        let opts = az.lab.nbctl(&["get", "NB_Global", ".", "options"]).unwrap();
        assert!(opts.contains("ic-route-adv=\"true\""), "{opts}");
        assert!(opts.contains("ic-route-learn=\"true\""), "{opts}");
    }
    // Routes learned across through ovn-ic.
    x.wait(
        "AZ1 learns 10.0.2.0/24, AZ2 learns 10.0.1.0/24",
        WAIT,
        |last| {
            let (r1, r2) = (az1.routes()?, az2.routes()?);
            *last = format!("lr1:\n{r1}\nlr2:\n{r2}");
            Ok(r1.contains("10.0.2.0/24") && r2.contains("10.0.1.0/24"))
        },
    )
    .unwrap();
    let r1 = az1.routes().unwrap();
    assert!(
        r1.contains("169.254.100.2") && r1.contains("(learned)"),
        "{r1}"
    );
    // ovn-trace in AZ1 reaches the transit switch towards AZ2's port.
    let t = az1.trace_to(&az2.net.vm_ip).unwrap();
    assert!(t.contains("outport = \"ovnr-lr1-ts-link12\""), "{t}");
    assert!(t.contains("ts-link12"), "{t}");
    assert!(t.contains("ovnr-az2-ts-link12"), "{t}");

    // AZ1 deletes its side: its objects go, AZ2 returns to pending, the transit switch stays.
    ok(az1, &["delete", "lr1", "link12"]);
    assert!(!router_ports(az1).contains("ovnr-"));
    x.wait("AZ2 pending and its ports gone", WAIT, |last| {
        let p = router_ports(az2);
        *last = p.clone();
        Ok(!p.contains("ovnr-") && status(az2, "lr2", "link12") == "pending")
    })
    .unwrap();
    assert_eq!(x.transit_switches().unwrap(), ["ts-link12"]);
    x.wait("no port left on the transit switch", WAIT, |last| {
        let b = x.ic_port_bindings("ts-link12")?;
        *last = format!("{b:?}");
        Ok(b.is_empty())
    })
    .unwrap();

    // AZ2 deletes too: nobody declares it and no port is left: the transit switch goes.
    ok(az2, &["delete", "lr2", "link12"]);
    x.wait("transit switch deleted", WAIT, |last| {
        let t = x.transit_switches()?;
        *last = format!("{t:?}");
        Ok(t.is_empty())
    })
    .unwrap();
    for az in [az1, az2] {
        ok(az, &["integration", "delete", "ic1"]);
        assert_eq!(ok(az, &["integration", "list"]), "");
    }
    drop(c1);
    drop(c2);
}
