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
    // The IC-NB is reached over TLS (ovn-ic keeps its unix: socket).
    let x = IcLab::start_ssl(2).unwrap();
    let (az1, az2) = (x.az(1), x.az(2));
    let ic_nb = x.ic_nb_ssl_remote().unwrap();
    let ic_sb = x.ic_sb.unix_remote();
    let tls = x.pki.as_ref().unwrap().client();
    let (key, cert, ca) = (
        tls.private_key.display().to_string(),
        tls.certificate.display().to_string(),
        tls.ca_cert.display().to_string(),
    );
    // Both networks are dual-stack: the link gets IPv6 too.
    let v6 = [
        az1.add_ipv6_subnet().unwrap(),
        az2.add_ipv6_subnet().unwrap(),
    ];
    let create = |az: &Az, name: &str, files: [&str; 3]| {
        peer(
            az,
            &[
                "integration",
                "create",
                name,
                "--ic-nb",
                &ic_nb,
                "--ic-sb",
                &ic_sb,
                "--gateway-chassis",
                &az.chassis,
                "--link-pool6",
                "fd69:1::/120",
                "--ssl-private-key",
                files[0],
                "--ssl-certificate",
                files[1],
                "--ssl-ca-cert",
                files[2],
            ],
        )
    };
    // A missing TLS file is refused, naming the file; nothing is written.
    let e = create(az1, "ic1", [&key, &cert, "/nonexistent/ca.pem"]);
    assert!(!e.status.success());
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        err.contains("ssl_ca_cert") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );
    assert_eq!(ok(az1, &["integration", "list"]), "");
    // ssl: without the files: refused.
    let e = peer(
        az1,
        &[
            "integration",
            "create",
            "ic1",
            "--ic-nb",
            &ic_nb,
            "--ic-sb",
            &ic_sb,
        ],
    );
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("ssl_private_key"));
    for az in [az1, az2] {
        let out = create(az, "ic1", [&key, &cert, &ca]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let shown = ok(az, &["integration", "show", "ic1"]);
        assert!(shown.contains(&ic_nb) && shown.contains(&ca), "{shown}");
    }
    // integration set/unset: bad keys and values are named, nothing written.
    let before = ok(az1, &["integration", "show", "ic1"]);
    for (args, named) in [
        (vec!["set", "ic1", "colour=blue"], "\"colour\""),
        (vec!["set", "ic1", "link_prefix=abc"], "\"abc\""),
        (
            vec!["set", "ic1", "link_pool6=10.0.0.0/24"],
            "\"10.0.0.0/24\"",
        ),
        (
            vec!["set", "ic1", "ssl_certificate=/nonexistent/c.pem"],
            "/nonexistent/c.pem",
        ),
        (vec!["set", "ic1", "ic_nb=bogus:1"], "\"bogus:1\""),
        (vec!["unset", "ic1", "ic_nb"], "ic_nb"),
        (vec!["unset", "ic1", "ssl_ca_cert"], "ssl_ca_cert"),
        (vec!["set", "nope", "link_prefix=29"], "\"nope\""),
    ] {
        let mut a = vec!["integration"];
        a.extend(args.iter().copied());
        let e = peer(az1, &a);
        let err = String::from_utf8_lossy(&e.stderr);
        assert!(
            !e.status.success() && err.contains(named),
            "{args:?}: {err}"
        );
    }
    assert_eq!(ok(az1, &["integration", "show", "ic1"]), before);
    ok(
        az1,
        &[
            "integration",
            "set",
            "ic1",
            "link_prefix=29",
            "gateway_chassis=hv1,hvx",
        ],
    );
    let shown = ok(az1, &["integration", "show", "ic1"]);
    assert!(
        shown.contains("link_prefix: 29") && shown.contains("- hvx"),
        "{shown}"
    );
    ok(az1, &["integration", "unset", "ic1", "link_prefix"]);
    ok(
        az1,
        &[
            "integration",
            "set",
            "ic1",
            &format!("gateway_chassis={}", az1.chassis),
        ],
    );
    assert_eq!(ok(az1, &["integration", "show", "ic1"]), before);
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
    assert_eq!(lrp, "[\"169.254.100.1/30\", \"fd69:1::1/126\"]");
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
    // IPv6 subnets are learned across too, through the IPv6 link addresses.
    x.wait("AZ1 and AZ2 learn each other's IPv6 subnet", WAIT, |last| {
        let (r1, r2) = (az1.routes()?, az2.routes()?);
        *last = format!("lr1:\n{r1}\nlr2:\n{r2}");
        Ok(r1.contains(&v6[1]) && r2.contains(&v6[0]))
    })
    .unwrap();
    let r1 = az1.routes().unwrap();
    assert!(r1.contains("fd69:1::2"), "{r1}");
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

/// The IC-NB's transit switches: name -> external_ids (as `ovn-ic-nbctl` prints them).
fn transit_switch_ids(x: &IcLab) -> Vec<(String, String)> {
    x.transit_switches()
        .unwrap()
        .into_iter()
        .map(|t| {
            let ids = x
                .ic_nbctl(&["get", "Transit_Switch", &t, "external_ids"])
                .unwrap();
            (t, ids)
        })
        .collect()
}

/// Every remote peering object of an AZ's NB, one line each, sorted: marked router ports with
/// their networks and gateway chassis, marked switch ports, and the number of marked
/// `Gateway_Chassis` rows.
fn remote_objects(az: &Az) -> String {
    let find = |table: &str, cols: &str| {
        az.lab
            .nbctl(&[
                "--bare",
                "--format=csv",
                "--no-headings",
                &format!("--columns={cols}"),
                "find",
                table,
                "external_ids:\"ovn-route:owner\"=peering-remote",
            ])
            .unwrap()
    };
    let mut lines: Vec<String> = Vec::new();
    for l in find("Logical_Router_Port", "name,networks,mac").lines() {
        lines.push(format!("lrp {l}"));
    }
    // (ovn-ic adds options of its own, e.g. requested-tnl-key: only router-port is ours.)
    for l in find("Logical_Switch_Port", "name,type,addresses").lines() {
        let name = l.split(',').next().unwrap_or_default();
        let rp = az
            .lab
            .nbctl(&["get", "Logical_Switch_Port", name, "options:router-port"])
            .unwrap();
        lines.push(format!("lsp {l},router-port={}", rp.trim_matches('"')));
    }
    for l in find("Gateway_Chassis", "name,chassis_name,priority").lines() {
        lines.push(format!("gc {l}"));
    }
    lines.sort();
    lines.join("\n")
}

/// Two AZs create transit switches at the same moment (the same one, and one each): exactly
/// one transit switch per name, every link subnet distinct. Then a controller dies between its
/// IC-NB and its NB transaction (replayed with the library: the IC-NB step written, the NB step
/// not), leaving also a stale port of an older plan; two controllers restarted at once in that
/// AZ (and one in the other) end in exactly the state of an uninterrupted run.
#[test]
fn concurrent_transit_switches_and_restart_mid_reconcile() {
    if skip_unless_root("concurrent_transit_switches_and_restart_mid_reconcile") {
        return;
    }
    let x = IcLab::start(2).unwrap();
    let (az1, az2) = (x.az(1), x.az(2));
    let (ic_nb, ic_sb) = (x.ic_nb.unix_remote(), x.ic_sb.unix_remote());
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
    }
    let spawn = |az: &Az, args: &[&str]| {
        Command::new(bin())
            .arg("peer")
            .arg("--db")
            .arg(az.lab.nb_remote())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    for round in 1..=3 {
        let (shared, a, b) = (
            format!("s{round}"),
            format!("a{round}"),
            format!("b{round}"),
        );
        let children = vec![
            spawn(az1, &["create", "lr1", &shared, "ic1", "--type", "remote"]),
            spawn(az2, &["create", "lr2", &shared, "ic1", "--type", "remote"]),
            spawn(az1, &["create", "lr1", &a, "ic1", "--type", "remote"]),
            spawn(az2, &["create", "lr2", &b, "ic1", "--type", "remote"]),
        ];
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let ts = transit_switch_ids(&x);
    let names: Vec<&str> = ts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["ts-a1", "ts-a2", "ts-a3", "ts-b1", "ts-b2", "ts-b3", "ts-s1", "ts-s2", "ts-s3"]
    );
    let mut subnets: Vec<String> = ts
        .iter()
        .map(|(n, ids)| {
            ids.split(", ")
                .find_map(|kv| kv.strip_prefix("\"ovn-route:link-subnet\"="))
                .unwrap_or_else(|| panic!("{n}: {ids}"))
                .trim_matches(|c| c == '"' || c == '}')
                .to_string()
        })
        .collect();
    subnets.sort();
    subnets.dedup();
    assert_eq!(subnets.len(), 9, "link subnets not distinct: {ts:?}");
    for (n, ids) in &ts {
        let both = ids.contains("ovn-route:az:az1") && ids.contains("ovn-route:az:az2");
        assert_eq!(both, n.starts_with("ts-s"), "{n}: {ids}");
    }
    for p in ["s1", "s2", "s3"] {
        assert_eq!(status(az1, "lr1", p), "created");
        assert_eq!(status(az2, "lr2", p), "created");
    }
    // Clean up the rounds (AZ1's deletions leave AZ2's shared ports to its next reconcile).
    for r in 1..=3 {
        ok(az1, &["delete", "lr1", &format!("s{r}")]);
        ok(az1, &["delete", "lr1", &format!("a{r}")]);
        ok(az2, &["delete", "lr2", &format!("s{r}")]);
        ok(az2, &["delete", "lr2", &format!("b{r}")]);
    }
    x.wait("every transit switch deleted", WAIT, |last| {
        let t = x.transit_switches()?;
        *last = format!("{t:?}");
        Ok(t.is_empty())
    })
    .unwrap();

    // The reference: an uninterrupted run of peering "ref" (state recorded, then removed).
    // Then the same for "link": AZ1 declares (pending); AZ2's declaration is written raw and
    // its controller's first step replayed up to the IC-NB transaction only.
    ok(az1, &["create", "lr1", "link", "ic1", "--type", "remote"]);
    let decl = r#"{"type":"remote","target_integration":"ic1"}"#;
    az2.lab
        .nbctl(&[
            "set",
            "Logical_Router",
            "lr2",
            &format!(
                "external_ids:\"ovn-route:peer:link\"=\"{}\"",
                decl.replace('"', "\\\"")
            ),
        ])
        .unwrap();
    // A stale port of an older plan, marked as ours (its transit switch long gone).
    az2.lab
        .nbctl(&[
            "lrp-add",
            "lr2",
            "ovnr-lr2-ts-old",
            "0a:00:00:00:00:99",
            "169.254.100.250/30",
            "--",
            "set",
            "Logical_Router_Port",
            "ovnr-lr2-ts-old",
            "external_ids:\"ovn-route:owner\"=peering-remote",
            "external_ids:\"ovn-route:transit-switch\"=ts-old",
        ])
        .unwrap();
    ic_step_only(&az2.lab.nb_remote());
    let ids = transit_switch_ids(&x);
    assert_eq!(ids.len(), 1);
    assert!(
        ids[0].1.contains("ovn-route:az:az1") && ids[0].1.contains("ovn-route:az:az2"),
        "{ids:?}"
    );
    assert!(
        !remote_objects(az2).contains("ts-link"),
        "the NB step must not have run"
    );
    // Restart: two controllers at once in AZ2, one in AZ1.
    let log = |az: &Az, n: u32| az.lab.dir().join(format!("controller{n}.log"));
    let args = |az: &Az| {
        vec![
            "controller".to_string(),
            "--db".to_string(),
            az.lab.nb_remote(),
            "--period".to_string(),
            "1".to_string(),
        ]
    };
    let a2: Vec<String> = args(az2);
    let a2: Vec<&str> = a2.iter().map(String::as_str).collect();
    let a1: Vec<String> = args(az1);
    let a1: Vec<&str> = a1.iter().map(String::as_str).collect();
    let c2a = BackgroundProcess::start(bin(), &a2, &log(az2, 1)).unwrap();
    let c2b = BackgroundProcess::start(bin(), &a2, &log(az2, 2)).unwrap();
    let c1 = BackgroundProcess::start(bin(), &a1, &log(az1, 1)).unwrap();
    x.wait("both ports on the transit switch (IC-SB)", WAIT, |last| {
        let b = x.ic_port_bindings("ts-link")?;
        *last = format!("{b:?}\n{}\n{}", c2a.log_tail(5), c2b.log_tail(5));
        Ok(b == ["ovnr-az1-ts-link", "ovnr-az2-ts-link"])
    })
    .unwrap();
    x.wait("stale port removed", WAIT, |last| {
        *last = remote_objects(az2);
        Ok(!last.contains("ts-old"))
    })
    .unwrap();
    let mac = |az: &Az| {
        az.lab
            .nbctl(&[
                "get",
                "Logical_Router_Port",
                &format!("ovnr-{}-ts-link", az.net.router),
                "mac",
            ])
            .unwrap()
            .trim_matches('"')
            .to_string()
    };
    let expect = |az: &Az, i: u32| {
        let r = &az.net.router;
        let mut v = [
            format!("gc ovnr-{r}-ts-link-{},{},100", az.chassis, az.chassis),
            format!("lrp ovnr-{r}-ts-link,169.254.100.{i}/30,{}", mac(az)),
            format!(
                "lsp ovnr-{}-ts-link,router,router,router-port=ovnr-{r}-ts-link",
                az.name
            ),
        ];
        v.sort();
        v.join("\n")
    };
    assert_eq!(remote_objects(az1), expect(az1, 1));
    assert_eq!(remote_objects(az2), expect(az2, 2));
    let ids = transit_switch_ids(&x);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(
        ids[0].1,
        "{\"ovn-route:az:az1\"=declared, \"ovn-route:az:az2\"=declared, \
         \"ovn-route:link-subnet\"=\"169.254.100.0/30\", \"ovn-route:owner\"=peering-remote}"
    );
    assert_eq!(status(az2, "lr2", "link"), "created");
    drop((c1, c2a, c2b));
}

/// One controller step in the NB at `nb` cut short: the IC-NB transaction of its plan is
/// written, the NB transaction is not (as if the process died between the two).
fn ic_step_only(nb: &str) {
    use ovn_route_peer::controller::session_config;
    use ovn_route_peer::ic::{ic_transaction, plan_from, remote_nb, IcSessions};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = ovsdb::Session::start(session_config(ovsdb::Remote::parse_list(nb).unwrap()));
        s.wait_connected().await;
        let mut ics = IcSessions::default();
        ics.sync(&s.read(remote_nb));
        ics.wait_connected(WAIT).await;
        let (_, _, p) = plan_from(&s, &ics);
        let views = ics.views();
        let view = views["ic1"].as_ref().unwrap();
        let ops = p.ic_ops.get("ic1").unwrap_or_else(|| panic!("{p:?}"));
        // Both steps were due: this replays the first and "dies" before the second.
        assert!(!ops.is_empty() && !p.nb_ops.is_empty(), "{p:?}");
        ics.session("ic1")
            .unwrap()
            .transact(ic_transaction(view, ops))
            .await
            .unwrap();
    });
}
