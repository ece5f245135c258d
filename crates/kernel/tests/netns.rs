//! Reconciler tests against a real kernel, each in its own scratch network namespace.
//! They need root (skipped otherwise).

use std::time::{Duration, Instant};

use ovn_route_kernel::netns::ScratchNetns;
use ovn_route_kernel::{
    DesiredRoutes, DesiredRules, Error, Family, ReconcileStats, Reconciler, Route, RouteChange,
    RouteWatch, RuleSelector,
};

const TABLE: u32 = 1000;
const PROTO: u8 = 201;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A namespace with `br-ex` (172.24.4.1/24, 2001:db8:4::1/64) up.
fn lab() -> Option<ScratchNetns> {
    if !is_root() {
        eprintln!("skipped: needs root");
        return None;
    }
    let ns = ScratchNetns::new().expect("netns");
    ns.ip(&["link", "add", "br-ex", "type", "bridge"]).unwrap();
    ns.ip(&["addr", "add", "172.24.4.1/24", "dev", "br-ex"])
        .unwrap();
    ns.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:4::1/64",
        "dev",
        "br-ex",
        "nodad",
    ])
    .unwrap();
    ns.ip(&["link", "set", "br-ex", "up"]).unwrap();
    Some(ns)
}

fn show(ns: &ScratchNetns, v6: bool) -> String {
    let fam = if v6 { "-6" } else { "-4" };
    ns.ip(&[fam, "route", "show", "table", "1000", "proto", "201"])
        .unwrap()
}

fn show_all(ns: &ScratchNetns, v6: bool) -> String {
    let fam = if v6 { "-6" } else { "-4" };
    ns.ip(&[fam, "route", "show", "table", "1000"]).unwrap()
}

fn desired(routes: &[Route]) -> DesiredRoutes {
    let mut d = DesiredRoutes::new(TABLE, PROTO);
    d.extend(routes.iter().cloned());
    d
}

fn r(s: &str) -> Route {
    Route::dev_link(s.parse().unwrap(), "br-ex")
}

fn via(p: &str, gw: &str) -> Route {
    Route::via(p.parse().unwrap(), gw.parse().unwrap(), Some("br-ex"))
}

fn stats(added: usize, replaced: usize, deleted: usize, unchanged: usize) -> ReconcileStats {
    ReconcileStats {
        added,
        replaced,
        deleted,
        unchanged,
    }
}

async fn reconcile(d: &DesiredRoutes) -> ReconcileStats {
    Reconciler::new().unwrap().reconcile(d).await.unwrap()
}

#[test]
fn adds_routes_and_is_idempotent() {
    let Some(ns) = lab() else { return };
    let d = desired(&[
        r("172.24.4.100/32"),
        via("10.10.0.0/24", "172.24.4.5"),
        Route::blackhole("192.0.2.0/24".parse().unwrap()),
    ]);
    let d2 = d.clone();
    let (s1, s2) = ns.block_on(move || async move {
        let rec = Reconciler::new().unwrap();
        (
            rec.reconcile(&d2).await.unwrap(),
            rec.reconcile(&d2).await.unwrap(),
        )
    });
    assert_eq!(s1, stats(3, 0, 0, 0));
    assert_eq!(s2, stats(0, 0, 0, 3));
    let out = show(&ns, false);
    assert!(out.contains("172.24.4.100 dev br-ex scope link"), "{out}");
    assert!(
        out.contains("10.10.0.0/24 via 172.24.4.5 dev br-ex"),
        "{out}"
    );
    assert!(out.contains("blackhole 192.0.2.0/24"), "{out}");
    // Observe sees exactly the desired routes.
    let obs = ns.block_on(|| async {
        Reconciler::new()
            .unwrap()
            .observe(TABLE, PROTO)
            .await
            .unwrap()
    });
    let mut want: Vec<Route> = d.routes().cloned().collect();
    let mut got = obs;
    want.sort();
    got.sort();
    assert_eq!(got, want);
}

#[test]
fn foreign_routes_are_untouched() {
    let Some(ns) = lab() else { return };
    // A foreign route of another protocol in the same table.
    ns.ip(&[
        "route",
        "add",
        "10.99.0.0/16",
        "via",
        "172.24.4.9",
        "table",
        "1000",
        "proto",
        "static",
    ])
    .unwrap();
    // Same prefix as one of ours, other protocol (another metric: the kernel keys IPv4
    // routes by prefix, tos and metric).
    ns.ip(&[
        "route",
        "add",
        "172.24.4.100/32",
        "dev",
        "br-ex",
        "table",
        "1000",
        "proto",
        "kernel",
        "metric",
        "50",
    ])
    .unwrap();
    // A foreign route in our protocol's other table stays too.
    ns.ip(&[
        "route",
        "add",
        "10.98.0.0/16",
        "dev",
        "br-ex",
        "table",
        "1001",
        "proto",
        "201",
    ])
    .unwrap();
    let before = show_all(&ns, false);
    let d = desired(&[r("172.24.4.100/32")]);
    let s = ns.block_on(move || async move { reconcile(&d).await });
    assert_eq!(s, stats(1, 0, 0, 0));
    // Now an empty desired set: deletes ours only.
    let s = ns.block_on(|| async { reconcile(&desired(&[])).await });
    assert_eq!(s, stats(0, 0, 1, 0));
    assert_eq!(show_all(&ns, false), before);
    assert!(before.contains("10.99.0.0/16 via 172.24.4.9 dev br-ex proto static"));
    assert!(before.contains("172.24.4.100 dev br-ex proto kernel scope link metric 50"));
    let other = ns.ip(&["route", "show", "table", "1001"]).unwrap();
    assert!(other.contains("10.98.0.0/16"), "{other}");
}

#[test]
fn add_over_a_foreign_route_with_the_same_key_fails_and_names_it() {
    let Some(ns) = lab() else { return };
    ns.ip(&[
        "route",
        "add",
        "172.24.4.100/32",
        "dev",
        "br-ex",
        "table",
        "1000",
        "proto",
        "static",
    ])
    .unwrap();
    let err = ns.block_on(|| async {
        Reconciler::new()
            .unwrap()
            .reconcile(&desired(&[r("172.24.4.100/32")]))
            .await
            .unwrap_err()
            .to_string()
    });
    assert!(
        err.contains("add route 172.24.4.100/32 dev br-ex scope link table 1000"),
        "{err}"
    );
    assert!(err.contains("File exists"), "{err}");
    assert!(show_all(&ns, false).contains("proto static"));
}

#[test]
fn next_hop_change_is_a_replace_without_gap() {
    let Some(ns) = lab() else { return };
    let before = desired(&[
        via("10.10.0.0/24", "172.24.4.5"),
        via("2001:db8:10::/64", "2001:db8:4::5"),
    ]);
    let after = desired(&[
        via("10.10.0.0/24", "172.24.4.6"),
        via("2001:db8:10::/64", "2001:db8:4::6"),
    ]);
    let s = ns.block_on(move || async move { reconcile(&before).await });
    assert_eq!(s, stats(2, 0, 0, 0));
    assert!(show(&ns, false).contains("via 172.24.4.5"));
    let (s, events) = ns.block_on(move || async move {
        let mut watch = RouteWatch::new(TABLE).unwrap();
        let s = reconcile(&after).await;
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while events.len() < 2 && Instant::now() < deadline {
            if let Ok(Some(ev)) =
                tokio::time::timeout(Duration::from_millis(200), watch.next()).await
            {
                events.push(ev);
            }
        }
        // Anything else queued.
        while let Some(ev) = watch.try_next() {
            events.push(ev);
        }
        (s, events)
    });
    assert_eq!(s, stats(0, 2, 0, 0));
    assert_eq!(events.len(), 2, "{events:?}");
    // The kernel announced replacements, never a deletion: the routes never went away.
    assert!(
        events.iter().all(|e| e.change == RouteChange::Replaced),
        "{events:?}"
    );
    let v4 = show(&ns, false);
    assert!(v4.contains("10.10.0.0/24 via 172.24.4.6 dev br-ex"), "{v4}");
    assert!(!v4.contains("172.24.4.5"), "{v4}");
    let v6 = show(&ns, true);
    assert!(
        v6.contains("2001:db8:10::/64 via 2001:db8:4::6 dev br-ex"),
        "{v6}"
    );
    assert!(!v6.contains("2001:db8:4::5"), "{v6}");
}

#[test]
fn stale_marked_routes_are_deleted() {
    let Some(ns) = lab() else { return };
    // Left over by an earlier run (marked 201) but no longer wanted.
    ns.ip(&[
        "route",
        "add",
        "172.24.4.200/32",
        "dev",
        "br-ex",
        "scope",
        "link",
        "table",
        "1000",
        "proto",
        "201",
    ])
    .unwrap();
    ns.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:4::200/128",
        "dev",
        "br-ex",
        "table",
        "1000",
        "proto",
        "201",
    ])
    .unwrap();
    let d = desired(&[r("172.24.4.100/32")]);
    let s = ns.block_on(move || async move { reconcile(&d).await });
    assert_eq!(s, stats(1, 0, 2, 0));
    assert!(!show(&ns, false).contains("172.24.4.200"));
    assert!(show(&ns, true).trim().is_empty());
}

#[test]
fn ipv6_routes() {
    let Some(ns) = lab() else { return };
    let d = desired(&[
        r("2001:db8:4::100/128"),
        via("2001:db8:20::/64", "2001:db8:4::5"),
        Route::blackhole("2001:db8:ff::/48".parse().unwrap()),
        r("2001:db8:4::101/128").with_metric(100),
    ]);
    let d2 = d.clone();
    let (s1, s2) = ns.block_on(move || async move {
        let rec = Reconciler::new().unwrap();
        (
            rec.reconcile(&d2).await.unwrap(),
            rec.reconcile(&d2).await.unwrap(),
        )
    });
    assert_eq!(s1, stats(4, 0, 0, 0));
    assert_eq!(s2, stats(0, 0, 0, 4));
    let out = show(&ns, true);
    assert!(
        out.contains("2001:db8:4::100 dev br-ex metric 1024"),
        "{out}"
    );
    assert!(
        out.contains("2001:db8:20::/64 via 2001:db8:4::5 dev br-ex"),
        "{out}"
    );
    assert!(out.contains("blackhole 2001:db8:ff::/48"), "{out}");
    assert!(
        out.contains("2001:db8:4::101 dev br-ex metric 100"),
        "{out}"
    );
}

#[test]
fn restart_adopts_existing_routes() {
    let Some(ns) = lab() else { return };
    let d = desired(&[
        r("172.24.4.100/32"),
        r("2001:db8:4::100/128"),
        via("10.10.0.0/24", "172.24.4.5"),
    ]);
    let d1 = d.clone();
    let s = ns.block_on(move || async move { reconcile(&d1).await });
    assert_eq!(s, stats(3, 0, 0, 0));
    // "Restart": a new process would open a new socket and build a new reconciler.
    let (s, events) = ns.block_on(move || async move {
        let mut watch = RouteWatch::new(TABLE).unwrap();
        let s = reconcile(&d).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut events = Vec::new();
        while let Some(ev) = watch.try_next() {
            events.push(ev);
        }
        (s, events)
    });
    assert_eq!(s, stats(0, 0, 0, 3));
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn watch_sees_external_deletion() {
    let Some(ns) = lab() else { return };
    let name = ns.name().to_string();
    let ev = ns.block_on(move || async move {
        let mut watch = RouteWatch::new(TABLE).unwrap();
        let d = desired(&[r("172.24.4.100/32")]);
        assert_eq!(reconcile(&d).await, stats(1, 0, 0, 0));
        // Our own add is reported too.
        let first = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.change, RouteChange::Added);
        // Someone deletes our route.
        ovn_route_kernel::netns::ip(&[
            "-n",
            &name,
            "route",
            "del",
            "172.24.4.100/32",
            "table",
            "1000",
        ])
        .unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .unwrap()
            .unwrap();
        // The agent re-reconciles and the route is back.
        assert_eq!(reconcile(&d).await, stats(1, 0, 0, 0));
        ev
    });
    assert_eq!(ev.change, RouteChange::Deleted);
    assert_eq!(ev.protocol, PROTO);
    assert_eq!(ev.key.prefix.to_string(), "172.24.4.100/32");
    assert!(show(&ns, false).contains("172.24.4.100"));
}

#[test]
fn unknown_device_error_names_the_route() {
    let Some(ns) = lab() else { return };
    let err = ns.block_on(|| async {
        Reconciler::new()
            .unwrap()
            .reconcile(&desired(&[Route::dev_link(
                "172.24.4.100/32".parse().unwrap(),
                "br-nope",
            )]))
            .await
            .unwrap_err()
    });
    assert!(matches!(err, Error::Apply { .. }), "{err}");
    assert!(
        err.to_string().contains("172.24.4.100/32 dev br-nope"),
        "{err}"
    );
}

#[test]
fn rules_per_ip_and_per_table() {
    let Some(ns) = lab() else { return };
    // Foreign rules: our table at another priority, and our priority for another table.
    ns.ip(&[
        "rule",
        "add",
        "to",
        "172.24.4.50",
        "lookup",
        "1000",
        "priority",
        "31000",
    ])
    .unwrap();
    ns.ip(&[
        "rule",
        "add",
        "to",
        "172.24.4.51",
        "lookup",
        "1001",
        "priority",
        "32000",
    ])
    .unwrap();
    // A stale rule of ours.
    ns.ip(&[
        "rule",
        "add",
        "to",
        "172.24.4.52",
        "lookup",
        "1000",
        "priority",
        "32000",
    ])
    .unwrap();
    let mut d = DesiredRules::new(TABLE, 32000);
    d.selectors
        .insert(RuleSelector::To("172.24.4.100/32".parse().unwrap()));
    d.selectors
        .insert(RuleSelector::To("2001:db8:4::100/128".parse().unwrap()));
    d.selectors.insert(RuleSelector::All {
        family: Family::V4,
        suppress_prefixlength: Some(0),
    });
    let d2 = d.clone();
    let (s1, s2, added, added_again) = ns.block_on(move || async move {
        let rec = Reconciler::new().unwrap();
        let s1 = rec.reconcile_rules(&d2).await.unwrap();
        let s2 = rec.reconcile_rules(&d2).await.unwrap();
        let sel = RuleSelector::To("172.24.4.101/32".parse().unwrap());
        let a = rec.ensure_rule(TABLE, 32001, sel).await.unwrap();
        let b = rec.ensure_rule(TABLE, 32001, sel).await.unwrap();
        (s1, s2, a, b)
    });
    assert_eq!(s1, stats(3, 0, 1, 0));
    assert_eq!(s2, stats(0, 0, 0, 3));
    assert!(added && !added_again);
    let v4 = ns.ip(&["rule", "show"]).unwrap();
    assert!(
        v4.contains("32000:\tfrom all to 172.24.4.100 lookup 1000"),
        "{v4}"
    );
    assert!(
        v4.contains("32000:\tfrom all lookup 1000 suppress_prefixlength 0"),
        "{v4}"
    );
    assert!(
        v4.contains("32001:\tfrom all to 172.24.4.101 lookup 1000"),
        "{v4}"
    );
    assert!(
        v4.contains("31000:\tfrom all to 172.24.4.50 lookup 1000"),
        "{v4}"
    );
    assert!(
        v4.contains("32000:\tfrom all to 172.24.4.51 lookup 1001"),
        "{v4}"
    );
    assert!(!v4.contains("172.24.4.52"), "{v4}");
    let v6 = ns.ip(&["-6", "rule", "show"]).unwrap();
    assert!(
        v6.contains("32000:\tfrom all to 2001:db8:4::100 lookup 1000"),
        "{v6}"
    );
}

/// A gateway moving to another device (a provider network becoming tagged: its routes move to
/// the VLAN device): the gateway's own route is replaced before the routes through it, or the
/// kernel finds the gateway unreachable through the new device.
#[test]
fn gateway_moving_to_another_device_replaces_its_own_route_first() {
    let Some(ns) = lab() else { return };
    for b in ["b1", "b2"] {
        ns.ip(&["link", "add", b, "type", "bridge"]).unwrap();
        ns.ip(&["link", "set", b, "up"]).unwrap();
    }
    let on = |dev: &str| {
        let mut d = DesiredRoutes::new(TABLE, PROTO);
        d.insert(Route::dev_link("172.16.0.1/32".parse().unwrap(), dev));
        for p in ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"] {
            d.insert(Route::via(
                p.parse().unwrap(),
                "172.16.0.1".parse().unwrap(),
                Some(dev),
            ));
        }
        d
    };
    let (a, b) = (on("b1"), on("b2"));
    let (s1, s2) = ns.block_on(move || async move {
        let rec = Reconciler::new().unwrap();
        (
            rec.reconcile(&a).await.unwrap(),
            rec.reconcile(&b).await.unwrap(),
        )
    });
    assert_eq!(s1, stats(4, 0, 0, 0));
    assert_eq!(s2, stats(0, 4, 0, 0));
    let out = show(&ns, false);
    assert!(
        out.contains("10.0.2.0/24 via 172.16.0.1 dev b2") && !out.contains("dev b1"),
        "{out}"
    );
}

/// Thousands of routes go through the batched socket (many requests per `send`); a route the
/// kernel refuses in the middle of a batch fails alone, named, and the others are applied.
#[test]
fn batched_apply_reports_each_refusal_alone() {
    let Some(ns) = lab() else { return };
    let mut routes: Vec<Route> = (0..3000u32)
        .map(|i| {
            let p = format!("10.{}.{}.0/24", 100 + i / 256, i % 256);
            Route::blackhole(p.parse().unwrap())
        })
        .collect();
    routes.insert(
        1500,
        Route::dev_link("172.24.9.0/24".parse().unwrap(), "br-nope"),
    );
    let apply = || {
        let want = desired(&routes);
        ns.block_on(|| async move {
            Reconciler::new()
                .unwrap()
                .reconcile(&want)
                .await
                .unwrap_err()
        })
    };
    let err = apply();
    let Error::Apply { stats, errors } = &err else {
        panic!("{err}");
    };
    assert_eq!(stats.added, 3000, "{err}");
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        err.to_string().contains("172.24.9.0/24 dev br-nope"),
        "{err}"
    );
    let shown = ns
        .ip(&["route", "show", "table", &TABLE.to_string()])
        .unwrap();
    assert_eq!(shown.lines().count(), 3000);
    // A second pass adopts them all and retries only the refused one.
    let err = apply();
    let Error::Apply { stats, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!((stats.added, stats.unchanged), (0, 3000), "{err}");
}
