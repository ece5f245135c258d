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
/// what FRR is handed to advertise (`on` out of range: on none).
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

/// The example output of `ovn-route routes` in docs/host-routes.md (the indented lines after
/// `$ ovn-route routes`).
fn doc_example() -> String {
    let doc = include_str!("../../../docs/host-routes.md");
    let mut lines = doc.lines().skip_while(|l| l.trim() != "$ ovn-route routes");
    lines
        .next()
        .expect("docs/host-routes.md: no `$ ovn-route routes` example");
    let mut out = String::new();
    for l in lines.take_while(|l| l.starts_with("    ")) {
        out.push_str(&l[4..]);
        out.push('\n');
    }
    out
}

/// `prefix via <uplink> dev incusbr0 proto <proto>` as [`IncusLab::main_routes`] shows it.
fn main_route(prefix: &str, via: &str, proto: &str) -> String {
    format!("{prefix} via {via} dev incusbr0 proto {proto}")
}

/// The IPv6 uplink addresses of infra and kubernetes.
const V6: [Option<&str>; 2] = [Some("fd42:220::100"), Some("fd42:220::101")];
const INFRA: &str = "10.190.10.0/24 via 10.220.0.100 dev incusbr0";
const KUBE: &str = "10.190.11.0/24 via 10.220.0.101 dev incusbr0";
const INFRA_NET: &str = "10.190.10.0/24";
const KUBE_NET: &str = "10.190.11.0/24";
const INFRA_NET6: &str = "fd42:10::/64";
const KUBE_NET6: &str = "fd42:11::/64";

/// Both chassis' main-table routes to the OVN subnets and the upstream's BGP view, at once:
/// `gw[k]` is the gateway chassis of network `k` (infra, kubernetes), `via[k]` its IPv4 uplink
/// address and `via6[k]` its IPv6 one (`None`: the network is gone). The gateway chassis reaches
/// the IPv4 subnet through FRR's copy of the route it advertises (`proto zebra`), every other
/// chassis through the agent's host route (`proto 201`); the upstream learns the subnet from the
/// gateway chassis only, next hop = the uplink address. IPv6 subnets are not advertised
/// (`vrf_mode = none`): every chassis has the agent's route.
fn check_picture(x: &IncusLab, gw: [usize; 2], via: [Option<&str>; 2], via6: [Option<&str>; 2]) {
    for i in 0..2 {
        check_picture_of(x, i, gw, via, via6);
    }
    check_upstream(x, gw, via);
}

/// The upstream's part of [`check_picture`]: each IPv4 subnet learned from its gateway chassis
/// only, next hop = the uplink address (or withdrawn).
fn check_upstream(x: &IncusLab, gw: [usize; 2], via: [Option<&str>; 2]) {
    let nets = [INFRA_NET, KUBE_NET];
    for k in 0..2 {
        match via[k] {
            Some(v) => check!(x, x.wait_upstream_only(nets[k], gw[k], v)),
            None => check!(x, x.wait_upstream_none(nets[k])),
        }
    }
}

/// Chassis `i`'s part of [`check_picture`]: its main-table routes to the OVN subnets.
fn check_picture_of(
    x: &IncusLab,
    i: usize,
    gw: [usize; 2],
    via: [Option<&str>; 2],
    via6: [Option<&str>; 2],
) {
    let nets = [INFRA_NET, KUBE_NET];
    let nets6 = [INFRA_NET6, KUBE_NET6];
    let want: Vec<String> = (0..2)
        .filter_map(|k| {
            let proto = if gw[k] == i { "zebra" } else { "201" };
            via[k].map(|v| main_route(nets[k], v, proto))
        })
        .chain((0..2).filter_map(|k| via6[k].map(|v| main_route(nets6[k], v, "201"))))
        .collect();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    check!(x, x.wait_main_routes(i, &want));
}

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
    // Both hosts are on the uplink and reach both networks; hv1 is the gateway of both, so it
    // advertises both (table 10) and reaches them through FRR's copy; hv2 has our two routes.
    check!(x, x.wait_host_routes(1, &[INFRA, KUBE]));
    check!(x, x.wait_host_routes(0, &[]));
    wait_advertised_only(&x, INFRA, 0);
    wait_advertised_only(&x, KUBE, 0);
    check_picture(&x, [0, 0], [Some("10.220.0.100"), Some("10.220.0.101")], V6);
    for i in 0..2 {
        let v = x.routes_json(i, bin()).unwrap();
        assert_eq!(
            entries(&v),
            [
                (
                    INFRA_NET.into(),
                    "10.220.0.100".into(),
                    "installed".into(),
                    "incus network id 2, project id 1".into()
                ),
                (
                    KUBE_NET.into(),
                    "10.220.0.101".into(),
                    "installed".into(),
                    "incus network id 3, project id 1".into()
                ),
                (
                    INFRA_NET6.into(),
                    "fd42:220::100".into(),
                    "installed".into(),
                    "incus network id 2, project id 1".into()
                ),
                (
                    KUBE_NET6.into(),
                    "fd42:220::101".into(),
                    "installed".into(),
                    "incus network id 3, project id 1".into()
                ),
            ],
            "hv{}: {v:#}",
            i + 1
        );
    }

    // `ovn-route routes` draws seed 002's picture: hv2's output is the example in the docs, and
    // hv1's differs only in saying that its IPv4 routes are FRR's copies.
    let want = doc_example();
    let (code, text) = x.routes_text(1, bin()).unwrap();
    assert_eq!((code, text.as_str()), (0, want.as_str()), "{text}");
    let (code, text) = x.routes_text(0, bin()).unwrap();
    let frr: String = want
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("10.190.") {
                format!("{l} (by FRR from the exposure table)\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_eq!((code, text.as_str()), (0, frr.as_str()), "{text}");

    // include/exclude on hv2 (not a gateway: its routes are all the agent's), agent restarted
    // with each: by name pattern and by prefix, only the networks named go; include limits to
    // the listed ones; exclude wins. hv1 and the upstream do not change.
    let infra6 = main_route(INFRA_NET6, "fd42:220::100", "201");
    let kube6 = main_route(KUBE_NET6, "fd42:220::101", "201");
    let infra4 = main_route(INFRA_NET, "10.220.0.100", "201");
    let kube4 = main_route(KUBE_NET, "10.220.0.101", "201");
    let cases: [(&str, Vec<&str>); 5] = [
        ("exclude = incus-net3-*\n", vec![&infra4, &infra6]),
        (
            "exclude = fd42:10::/64, 10.190.11.0/24\n",
            vec![&infra4, &kube6],
        ),
        ("include = 2\n", vec![&infra4, &infra6]),
        ("include = 10.190.0.0/16\n", vec![&infra4, &kube4]),
        (
            "include = incus-net3-lr\nexclude = 10.190.11.0/24\n",
            vec![&kube6],
        ),
    ];
    for (options, want) in &cases {
        let cfg = x.agent_config(1, &format!("advertise = true\n{options}"));
        x.start_agent(1, bin(), &cfg).unwrap();
        check!(x, x.wait_main_routes(1, want));
        check_picture_of(
            &x,
            0,
            [0, 0],
            [Some("10.220.0.100"), Some("10.220.0.101")],
            V6,
        );
        check_upstream(&x, [0, 0], [Some("10.220.0.100"), Some("10.220.0.101")]);
    }
    let cfg = x.agent_config(1, "advertise = true\n");
    x.start_agent(1, bin(), &cfg).unwrap();
    check_picture(&x, [0, 0], [Some("10.220.0.100"), Some("10.220.0.101")], V6);

    // The gateway of kubernetes moves to hv2: its advertisement and FRR's copy move, hv1 gets our
    // route back; infra does not change.
    x.lab
        .lrp_set_gateway_chassis("incus-net3-lr-lrp-ext", "hv2", 30)
        .unwrap();
    wait_advertised_only(&x, KUBE, 1);
    wait_advertised_only(&x, INFRA, 0);
    check_picture(&x, [0, 1], [Some("10.220.0.100"), Some("10.220.0.101")], V6);

    // A foreign route for one prefix wins: ours goes, the foreign one stays, both report it.
    let ns = x.lab.chassis(0).netns();
    ns.ip(&[
        "route",
        "add",
        KUBE_NET,
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
    check!(
        x,
        x.wait_main_routes(
            0,
            &[
                &main_route(INFRA_NET, "10.220.0.100", "zebra"),
                &main_route(KUBE_NET, "10.220.0.101", "static"),
                &infra6,
                &kube6,
            ]
        )
    );
    let v = x.routes_json(0, bin()).unwrap();
    assert!(
        entries(&v)
            .iter()
            .any(|e| e.0 == KUBE_NET && e.2 == "conflicting"),
        "{v:#}"
    );
    let st = status(&x, 0);
    assert!(
        st["host_routes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["prefix"] == KUBE_NET && e["state"] == "conflicting"),
        "{st:#}"
    );
    ns.ip(&["route", "del", KUBE_NET, "proto", "static", "metric", "50"])
        .unwrap();
    check_picture(&x, [0, 1], [Some("10.220.0.100"), Some("10.220.0.101")], V6);

    // The uplink address of kubernetes changes: the next hop follows, on both hosts and upstream.
    x.lab
        .nbctl(&[
            "set",
            "Logical_Router_Port",
            "incus-net3-lr-lrp-ext",
            "networks=\"10.220.0.111/24\",\"fd42:220::111/64\"",
        ])
        .unwrap();
    let kube2 = "10.190.11.0/24 via 10.220.0.111 dev incusbr0";
    wait_advertised_only(&x, kube2, 1);
    check_picture(
        &x,
        [0, 1],
        [Some("10.220.0.100"), Some("10.220.0.111")],
        [Some("fd42:220::100"), Some("fd42:220::111")],
    );

    // Restart (SIGKILL): the routes stay, and the first pass of the new agent changes nothing.
    x.agent(0).kill();
    let before = x.main_routes(0).unwrap();
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
    assert_eq!(x.main_routes(0).unwrap(), before);

    // Delete a network: its routes go everywhere, and its advertisement; kubernetes stays.
    delete_incus_network(&x.lab, 2).unwrap();
    wait_advertised_only(&x, "10.190.10.0/24 via", 9);
    check_picture(
        &x,
        [0, 1],
        [None, Some("10.220.0.111")],
        [None, Some("fd42:220::111")],
    );
}

/// `include`/`exclude` values that are not patterns are refused at start, naming the file, the
/// line, the option and the value (`agent --check-config`, and `routes --config`); globs and
/// prefixes with zero host bits are accepted.
#[test]
fn bad_include_or_exclude_is_refused_naming_file_line_option_and_value() {
    let d = tempfile::tempdir().unwrap();
    let conf = |body: &str| {
        let p = d.path().join("agent.conf");
        let head = format!(
            "[ovn_route]\niproute2_dir = {}\n[host_routes]\nenabled = true\n",
            d.path().join("iproute2").display()
        );
        std::fs::write(&p, format!("{head}{body}")).unwrap();
        p
    };
    let run = |args: &[&str], p: &Path| {
        let o = std::process::Command::new(bin())
            .args(args)
            .arg(p)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.code(), text)
    };
    let p = conf("include = incus-net*, 10.190.0.0/16, fd42:10::/64\nexclude = web, fd00::/8\n");
    let (code, text) = run(&["agent", "--check-config", "--config"], &p);
    assert_eq!(code, Some(0), "{text}");
    for (body, line, option, value, why) in [
        (
            "exclude = incus-net3-*, 10.190.11.1/24\n",
            5,
            "exclude",
            "incus-net3-*, 10.190.11.1/24",
            "did you mean 10.190.11.0/24",
        ),
        (
            "advertise = false\ninclude = 10.190.10/24\n",
            6,
            "include",
            "10.190.10/24",
            "not a CIDR",
        ),
        (
            "include = fd42:10::/129\n",
            5,
            "include",
            "fd42:10::/129",
            "prefix length",
        ),
    ] {
        let p = conf(body);
        let want = format!("{}:{line}: [host_routes] {option} = {value:?}", p.display());
        let (code, text) = run(&["agent", "--check-config", "--config"], &p);
        assert_eq!(code, Some(2), "{text}");
        assert!(text.contains(&want) && text.contains(why), "{want}: {text}");
        let (code, text) = run(
            &["routes", "--db", "unix:/nonexistent.sock", "--config"],
            &p,
        );
        assert_ne!(code, Some(0), "{text}");
        assert!(text.contains(&want), "{want}: {text}");
    }
}
