//! Acceptance of the exposure agent (issue 3) on the lab: real OVN, OVS and FRR; the upstream
//! router's view is the truth. Host tier: `vrf_mode = none` (this kernel has no VRF), IPv4.

use std::time::Duration;

use ovn_route_lab::{skip_unless_root, ExposureLab};

#[macro_use]
mod common;
use common::{bin, dump, status, wait_status, WAIT};

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
    for p in ovn_route_lab::DEMO_HOSTED_ON_HV1 {
        check!(x, x.wait_upstream_via(p, 0, WAIT));
    }
    // The wiring on hv1: the bridge's table, its rule, the gateway's neighbour, the flows.
    let hv1 = x.lab.chassis(0);
    let ns = hv1.netns();
    let t200 = ns.ip(&["route", "show", "table", "200"]).unwrap();
    assert!(
        t200.contains("172.16.0.10 dev br-ex proto 201 scope link"),
        "{t200}"
    );
    assert!(
        t200.contains("10.0.0.0/24 via 172.16.0.1 dev br-ex proto 201"),
        "{t200}"
    );
    let rules = ns.ip(&["rule", "show", "priority", "32000"]).unwrap();
    assert!(
        rules.contains("lookup 200 suppress_prefixlength 0"),
        "{rules}"
    );
    let neigh = ns
        .ip(&["neigh", "show", "dev", "br-ex", "nud", "permanent"])
        .unwrap();
    assert!(
        neigh.contains("172.16.0.1 lladdr 00:00:00:00:ff:02"),
        "{neigh}"
    );
    let flows = hv1
        .ofctl(&["dump-flows", "br-ex", "cookie=0x3e7/-1"])
        .unwrap();
    assert_eq!(flows.matches("priority=900").count(), 2, "{flows}");
    assert!(flows.contains("mod_dl_dst:"), "{flows}");
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
    // Everything gone: nothing of ours left in the kernel, OVS or upstream.
    x.lab.nbctl(&["lr-del", "lr0"]).unwrap();
    x.lab.nbctl(&["lsp-del", "vm-prov"]).unwrap();
    for p in ["172.16.0.10", "172.16.0.1", "10.0.0.0/24"] {
        check!(x, x.wait_upstream_gone(p, WAIT));
    }
    for i in 0..2 {
        let c = x.lab.chassis(i);
        let ns = c.netns();
        ovn_route_lab::wait_until("our state to be gone", WAIT, |last| {
            let mut left = String::new();
            for args in [
                &["route", "show", "table", "all", "proto", "201"][..],
                &["rule", "show", "priority", "32000"][..],
                &["neigh", "show", "proxy"][..],
            ] {
                left.push_str(&ns.ip(args)?);
            }
            let neigh = ns.ip(&["neigh", "show", "nud", "permanent"])?;
            left.push_str(&neigh.replace("172.16.0.77", ""));
            left.push_str(
                &c.ofctl(&["dump-flows", "br-ex", "cookie=0x3e7/-1"])?
                    .lines()
                    .skip(1)
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
            *last = left.clone();
            Ok(left.trim().is_empty().then_some(()))
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", dump(&mut x)));
    }
    for i in 0..2 {
        x.agent(i).check_alive().unwrap();
    }
}

/// The agent's status report from its socket.
/// Polls the upstream kernel routes to `prefixes` while `during` runs; returns the prefixes that
/// were missing at some point.
fn missing_during(ns: String, prefixes: &[&str], during: impl FnOnce()) -> Vec<String> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let want: Vec<String> = prefixes.iter().map(|s| s.to_string()).collect();
    let poller = std::thread::spawn(move || {
        let mut missing = std::collections::BTreeSet::new();
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            let out = std::process::Command::new("ip")
                .args(["-n", &ns, "route", "show"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            for p in &want {
                if !text.lines().any(|l| l.starts_with(&format!("{p} "))) {
                    missing.insert(p.clone());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        missing.into_iter().collect::<Vec<_>>()
    });
    during();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    poller.join().unwrap()
}

/// The upstream's session with chassis `i`: (state, sessions established so far, End-of-RIB
/// received for IPv4 unicast on the current session), from `show ip bgp neighbors ADDR json`.
fn upstream_session(x: &ExposureLab, i: usize) -> (String, u64, bool) {
    let addr = &x.bgp[i].address;
    let out = x
        .upstream
        .vtysh(&[&format!("show ip bgp neighbors {addr} json")])
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let n = &v[addr.as_str()];
    (
        n["bgpState"].as_str().unwrap_or("").to_string(),
        n["connectionsEstablished"].as_u64().unwrap_or(0),
        n["gracefulRestartInfo"]["endOfRibRecv"]["ipv4Unicast"].as_bool() == Some(true),
    )
}

/// Waits until the upstream has a session with chassis `i` newer than the `sessions`-th and has
/// received its End-of-RIB on it (after which the upstream drops whatever stayed stale).
fn wait_upstream_end_of_rib(x: &ExposureLab, i: usize, sessions: u64) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let s = upstream_session(x, i);
        if s.0 == "Established" && s.1 > sessions && s.2 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no End-of-RIB from the restarted FRR: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn metrics(x: &ExposureLab, i: usize, port: u16) -> String {
    let ns = x.lab.chassis(i).netns();
    ns.exec(&[
        "python3",
        "-c",
        &format!(
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics').read().decode())"
        ),
    ])
    .unwrap()
}

#[test]
fn exposure_no_flap_foreign_objects_and_bad_values() {
    if skip_unless_root("exposure_no_flap_foreign_objects_and_bad_values") {
        return;
    }
    let mut x = ExposureLab::start().expect("lab");
    let hv1 = x.lab.chassis(0).netns();
    // Foreign objects in the tables and on the bridge we use, placed beforehand (table 200 is
    // the first id the agent allocates for br-ex).
    hv1.ip(&[
        "route",
        "add",
        "198.51.100.7/32",
        "dev",
        "br-ex",
        "table",
        "200",
        "proto",
        "static",
    ])
    .unwrap();
    hv1.ip(&[
        "route",
        "add",
        "198.51.100.9/32",
        "dev",
        "br-ex",
        "table",
        "10",
        "proto",
        "static",
    ])
    .unwrap();
    hv1.ip(&[
        "rule",
        "add",
        "to",
        "198.51.100.8",
        "lookup",
        "200",
        "priority",
        "31000",
    ])
    .unwrap();
    hv1.ip(&[
        "neigh",
        "add",
        "172.16.0.77",
        "lladdr",
        "00:00:00:aa:bb:cc",
        "dev",
        "br-ex",
        "nud",
        "permanent",
    ])
    .unwrap();
    let foreign = |x: &ExposureLab| {
        let ns = x.lab.chassis(0).netns();
        (
            ns.ip(&["route", "show", "table", "200", "proto", "static"])
                .unwrap(),
            ns.ip(&["route", "show", "table", "10", "proto", "static"])
                .unwrap(),
            ns.ip(&["rule", "show", "priority", "31000"]).unwrap(),
            ns.ip(&["neigh", "show", "172.16.0.77", "dev", "br-ex"])
                .unwrap(),
        )
    };
    let before = foreign(&x);
    assert!(before.0.contains("198.51.100.7"), "{before:?}");

    let port = ovn_route_lab::free_port().unwrap();
    for i in 0..2 {
        let cfg = x.agent_config(i, "", &format!("metrics_listen = 127.0.0.1:{port}\n"));
        x.start_agent(i, bin(), &cfg).unwrap();
    }
    let hosted = ovn_route_lab::DEMO_HOSTED_ON_HV1;
    for p in hosted {
        check!(x, x.wait_upstream_via(p, 0, WAIT));
    }
    wait_status(&x, 0, "a first reconcile", |v| {
        !v["last_reconcile"].is_null()
    });
    let v0 = x.upstream_table_version().unwrap();

    // Status says what is exposed, where and why.
    let st = status(&x, 0);
    let fip = st["exposed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["prefix"] == "172.16.0.101/32")
        .unwrap_or_else(|| panic!("{st:#}"))
        .clone();
    assert_eq!(fip["kind"], "floating IP", "{fip:#}");
    assert!(fip["sources"].to_string().contains("NAT"), "{fip:#}");
    assert_eq!(st["chassis"], "hv1");
    assert!(
        st["databases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["connected"] == true),
        "{st:#}"
    );
    let m = metrics(&x, 0, port);
    assert!(
        m.contains("ovn_route_exposed_prefixes{kind=\"floating IP\"} 2"),
        "{m}"
    );
    assert!(m.contains("ovn_route_db_connected{db=\"nb\"} 1"), "{m}");

    // Agent SIGKILL and restart: nothing withdrawn, nothing re-added (the first pass adopts).
    let missing = missing_during(
        x.upstream.netns().name().to_string(),
        &["172.16.0.10", "10.0.0.0/24"],
        || {
            x.agent(0).kill();
            std::thread::sleep(Duration::from_secs(1));
            x.agent(0).start().unwrap();
            wait_status(&x, 0, "the restarted agent's first pass", |v| {
                !v["last_reconcile"].is_null()
            });
        },
    );
    assert!(
        missing.is_empty(),
        "withdrawn during the agent restart: {missing:?}"
    );
    let st = status(&x, 0);
    assert_eq!(st["last_reconcile"]["changes"], 0, "{st:#}");
    assert_eq!(x.upstream_table_version().unwrap(), v0, "{}", dump(&mut x));

    // NB ovsdb-server restart: the plan freezes, then resumes; nothing flaps.
    let missing = missing_during(
        x.upstream.netns().name().to_string(),
        &["172.16.0.10", "10.0.0.0/24"],
        || {
            x.lab.nb_mut().server_mut().unwrap().kill();
            wait_status(&x, 0, "the plan to freeze", |v| v["frozen"] == true);
            std::thread::sleep(Duration::from_secs(2));
            x.lab.nb_mut().server_mut().unwrap().restart().unwrap();
            wait_status(&x, 0, "the NB to be back", |v| {
                v["frozen"] == false
                    && v["databases"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|d| d["connected"] == true)
            });
        },
    );
    assert!(
        missing.is_empty(),
        "withdrawn during the NB restart: {missing:?}"
    );
    assert_eq!(x.upstream_table_version().unwrap(), v0, "{}", dump(&mut x));

    // FRR crash and restart on hv1 (its configuration file lacks our block): hitless. The
    // chassis' FRR is configured as docs/frr.md recommends (graceful restart with
    // `preserve-fw-state`, `coalesce-time 5000`): the upstream keeps every route (stale) while
    // FRR is down and after the new session comes up, the agent puts the block back within 5 s,
    // and the restarted bgpd sends its routes and End-of-RIB only after that. Nothing is
    // withdrawn, not even for a moment: the polled FIB never misses a route, and the upstream
    // BGP table version (bumped by every withdrawal and every addition) does not move.
    let sessions = upstream_session(&x, 0).1;
    eprintln!(
        "upstream before the FRR restart: table version {v0}, session with hv1 {:?}",
        upstream_session(&x, 0)
    );
    let ns = x.upstream.netns().name().to_string();
    let missing = missing_during(ns, &hosted, || {
        x.bgp[0].frr.kill();
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            !x.upstream_route("172.16.0.10").unwrap().is_empty(),
            "graceful restart keeps routes"
        );
        x.bgp[0].frr.restart().unwrap();
        let t0 = std::time::Instant::now();
        loop {
            let rc = x.bgp[0]
                .frr
                .vtysh(&["show running-config"])
                .unwrap_or_default();
            if rc.contains("ip import-table 10") && rc.contains("redistribute table 10") {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "FRR block not back within 5 s:\n{rc}\n{}",
                x.agents[0].as_ref().unwrap().log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("FRR block back {:?} after FRR started again", t0.elapsed());
        wait_upstream_end_of_rib(&x, 0, sessions);
    });
    assert!(
        missing.is_empty(),
        "withdrawn during the FRR restart: {missing:?}\n{}",
        dump(&mut x)
    );
    eprintln!(
        "upstream after: table version {}, session with hv1 {:?}",
        x.upstream_table_version().unwrap(),
        upstream_session(&x, 0)
    );
    assert_eq!(x.upstream_table_version().unwrap(), v0, "{}", dump(&mut x));
    let table = x.upstream.vtysh(&["show ip bgp json"]).unwrap();
    assert!(!table.contains("\"stale\""), "stale paths left: {table}");
    for p in hosted {
        check!(x, x.wait_upstream_via(p, 0, WAIT));
    }

    // Malformed NB values: logged, refused, never advertised.
    for (ext, logical) in [("0.0.0.0/0", "10.0.0.50"), ("172.16.0.300", "10.0.0.51")] {
        x.lab
            .nbctl(&[
                "--",
                "--id=@n",
                "create",
                "NAT",
                "type=dnat_and_snat",
                &format!("external_ip=\"{ext}\""),
                &format!("logical_ip={logical}"),
                "--",
                "add",
                "Logical_Router",
                "lr0",
                "nat",
                "@n",
            ])
            .unwrap();
    }
    x.lab
        .nbctl(&[
            "set",
            "Logical_Switch_Port",
            "vm-prov",
            "addresses=\"00:00:00:00:01:10 172.16.0.10 172.16.0.999\"",
        ])
        .unwrap();
    wait_status(&x, 0, "the bad values to be refused", |v| {
        let r = v["rejected"].to_string();
        r.contains("0.0.0.0/0") && r.contains("172.16.0.300") && r.contains("172.16.0.999")
    });
    let routes = x.upstream_bgp_routes().unwrap();
    assert!(
        routes
            .iter()
            .all(|(p, _)| p != "0.0.0.0/0" && !p.contains("300") && !p.contains("999")),
        "{routes:?}"
    );
    check!(x, x.wait_upstream_via("172.16.0.10", 0, WAIT));
    let log = x.agent(0).log_text();
    assert!(
        log.contains("172.16.0.300") && log.contains("not exposed"),
        "{log}"
    );

    // Foreign objects untouched throughout.
    assert_eq!(foreign(&x), before);
    for i in 0..2 {
        x.agent(i).check_alive().unwrap();
    }
}

#[test]
fn exposure_tenant_host_method_and_bad_networks() {
    if skip_unless_root("exposure_tenant_host_method_and_bad_networks") {
        return;
    }
    let mut x = ExposureLab::start().expect("lab");
    for i in 0..2 {
        let cfg = x.agent_config(i, "", "").replace(
            "advertisement_method_tenant_networks = subnet",
            "advertisement_method_tenant_networks = host",
        );
        x.start_agent(i, bin(), &cfg).unwrap();
    }
    // Tenant VMs one by one, through the gateway's chassis (hv1), wherever the VMs run; never
    // the subnet.
    for p in ["10.0.0.11", "10.0.0.12", "172.16.0.1", "172.16.0.200"] {
        check!(x, x.wait_upstream_via(p, 0, WAIT));
    }
    let routes = x.upstream_bgp_routes().unwrap();
    assert!(routes.iter().all(|(p, _)| p != "10.0.0.0/24"), "{routes:?}");
    // A new tenant VM appears; a deleted one goes.
    x.lab
        .add_vif_port("private", "vm3", "00:00:00:00:00:03 10.0.0.13", "hv2")
        .unwrap();
    check!(x, x.wait_upstream_via("10.0.0.13", 0, WAIT));
    x.lab.nbctl(&["lsp-del", "vm3"]).unwrap();
    check!(x, x.wait_upstream_gone("10.0.0.13", WAIT));

    // A malformed tenant network is refused (status names the row), the others stay.
    x.lab
        .nbctl(&[
            "set",
            "Logical_Router_Port",
            "lrp-priv",
            "networks=\"10.0.0.1/24\",\"fd00::1/64\",\"10.0.9.1/33\"",
        ])
        .unwrap();
    wait_status(&x, 0, "the bad network to be refused", |v| {
        v["rejected"].as_array().is_some_and(|r| {
            r.iter().any(|e| {
                e["value"] == "10.0.9.1/33"
                    && e["source"].as_str().is_some_and(|s| s.contains("lrp-priv"))
            })
        })
    });
    for p in ["10.0.0.11", "10.0.0.12"] {
        check!(x, x.wait_upstream_via(p, 0, WAIT));
    }
    for i in 0..2 {
        x.agent(i).check_alive().unwrap();
    }
}
