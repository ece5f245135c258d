//! Links, addresses, neighbours and sysctls against a real kernel, each test in its own scratch
//! network namespace. They need root (skipped otherwise).
//!
//! This machine's kernel has no `vrf`, `dummy` or `vlan` link types: the host tests use a
//! `bridge` as the stand-in device and check that creating the missing types fails cleanly
//! ([`Error::Unsupported`]). The tests that need them are named `kernel_tier_*`, are
//! `#[ignore]`d, and run in a VM with a stock kernel (scripts/kernel-tier.sh).

use std::collections::BTreeSet;

use ovn_route_kernel::netns::{self, ScratchNetns};
use ovn_route_kernel::{
    DesiredAddresses, DesiredNeighbours, Error, IpNet, Neighbour, ReconcileStats, Reconciler,
    Sysctl,
};

const PROTO: u8 = 201;
const MAC1: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC2: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A namespace with the bridge `dev` up (the stand-in for `bgp_nic` or a provider bridge).
fn lab(dev: &str) -> Option<ScratchNetns> {
    if !is_root() {
        eprintln!("skipped: needs root");
        return None;
    }
    let ns = ScratchNetns::new().expect("netns");
    ns.ip(&["link", "add", dev, "type", "bridge"]).unwrap();
    ns.ip(&["link", "set", dev, "up"]).unwrap();
    Some(ns)
}

fn stats(added: usize, replaced: usize, deleted: usize, unchanged: usize) -> ReconcileStats {
    ReconcileStats {
        added,
        replaced,
        deleted,
        unchanged,
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn perm(ip: &str, mac: [u8; 6]) -> Neighbour {
    Neighbour::Permanent {
        ip: ip.parse().unwrap(),
        mac,
    }
}

fn proxy(ip: &str) -> Neighbour {
    Neighbour::Proxy {
        ip: ip.parse().unwrap(),
    }
}

/// Runs `f` with a reconciler inside `ns`.
fn with_rec<R: Send + 'static, F>(
    ns: &ScratchNetns,
    f: impl FnOnce(Reconciler) -> F + Send + 'static,
) -> R
where
    F: std::future::Future<Output = R>,
{
    ns.block_on(move || async move { f(Reconciler::new().unwrap()).await })
}

/// True when `ip link add ... type KIND ARGS` works in `ns` (the probe device is removed).
fn kernel_has(ns: &ScratchNetns, kind: &str, args: &[&str]) -> bool {
    let mut cmd = vec!["link", "add", "probe0"];
    cmd.extend_from_slice(args);
    cmd.extend_from_slice(&["type", kind]);
    let ok = ns.ip(&cmd).is_ok();
    if ok {
        ns.ip(&["link", "del", "probe0"]).unwrap();
    }
    ok
}

// ---------------------------------------------------------------------------------- links

#[test]
fn link_lookup_reports_kind_mac_master_and_state() {
    let Some(ns) = lab("br-ex") else { return };
    ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"])
        .unwrap();
    ns.ip(&["link", "set", "va", "master", "br-ex"]).unwrap();
    ns.ip(&["link", "set", "br-ex", "address", "02:00:00:00:00:aa"])
        .unwrap();
    let (br, va, vb, none, up1, up2) = with_rec(&ns, |rec| async move {
        (
            rec.link("br-ex").await.unwrap().unwrap(),
            rec.link("va").await.unwrap().unwrap(),
            rec.link("vb").await.unwrap().unwrap(),
            rec.link("nope").await.unwrap(),
            rec.set_up("vb").await.unwrap(),
            rec.set_up("vb").await.unwrap(),
        )
    });
    assert_eq!(br.kind.as_deref(), Some("bridge"));
    assert_eq!(br.mac, Some([2, 0, 0, 0, 0, 0xaa]));
    assert_eq!(br.mac_string().as_deref(), Some("02:00:00:00:00:aa"));
    assert!(br.up);
    assert_eq!(br.master, None);
    assert_eq!(va.kind.as_deref(), Some("veth"));
    assert_eq!(va.master, Some(br.index));
    assert!(!va.up && !vb.up);
    assert_eq!(none, None);
    assert!(up1 && !up2, "set_up reports a change once");
    let out = ns.ip(&["link", "show", "vb"]).unwrap();
    assert!(out.contains(",UP"), "{out}");

    let e = with_rec(
        &ns,
        |rec| async move { rec.set_up("nope").await.unwrap_err() },
    );
    assert!(matches!(e, Error::NoSuchLink { .. }), "{e}");
    let e = with_rec(&ns, |rec| async move {
        rec.link("much-too-long-name").await.unwrap_err()
    });
    assert!(e.to_string().contains("at most 15 bytes"), "{e}");
}

/// On a kernel without vrf, dummy or vlan, creating them is a clean [`Error::Unsupported`]
/// that says what to configure instead; nothing is left behind.
#[test]
fn unsupported_link_types_fail_cleanly() {
    let Some(ns) = lab("eth1") else { return };
    if kernel_has(&ns, "vrf", &[]) || kernel_has(&ns, "dummy", &[]) {
        eprintln!("skipped: this kernel has vrf or dummy devices (see the kernel_tier_ tests)");
        return;
    }
    let (vrf, dummy, vlan) = with_rec(&ns, |rec| async move {
        (
            rec.ensure_vrf("bgp-vrf", 10).await.unwrap_err(),
            rec.ensure_dummy("bgp-nic", None).await.unwrap_err(),
            rec.ensure_vlan("eth1", 100, None, None).await,
        )
    });
    eprintln!("vrf: {vrf}\ndummy: {dummy}");
    assert!(
        matches!(&vrf, Error::Unsupported { kind: "vrf", name } if name == "bgp-vrf"),
        "{vrf:?}"
    );
    let msg = vrf.to_string();
    assert!(
        msg.contains("this kernel cannot create a vrf device"),
        "{msg}"
    );
    assert!(
        msg.contains("vrf_mode = none") && msg.contains("vrf_mode = existing"),
        "{msg}"
    );
    assert!(
        matches!(&dummy, Error::Unsupported { kind: "dummy", .. }),
        "{dummy:?}"
    );
    assert!(dummy.to_string().contains("vrf_mode = none"), "{dummy}");
    // This machine's kernel has no 8021q either; a kernel with it creates eth1.100.
    match vlan {
        Err(Error::Unsupported {
            kind: "vlan",
            ref name,
        }) => {
            assert_eq!(name, "eth1.100");
            eprintln!("vlan: {}", vlan.unwrap_err());
        }
        Ok(created) => assert!(created),
        Err(e) => panic!("vlan: {e:?}"),
    }
    let links = ns.ip(&["-o", "link", "show"]).unwrap();
    assert!(
        !links.contains("bgp-vrf") && !links.contains("bgp-nic"),
        "{links}"
    );
}

/// A device of another type with the name asked for is an error and stays as it is.
#[test]
fn ensure_never_modifies_a_device_of_another_type() {
    let Some(ns) = lab("br-ex") else { return };
    ns.ip(&["link", "add", "br-x", "type", "bridge"]).unwrap();
    let errs = with_rec(&ns, |rec| async move {
        vec![
            rec.ensure_vrf("br-ex", 10).await.unwrap_err(),
            rec.ensure_dummy("br-ex", None).await.unwrap_err(),
            rec.ensure_vlan("br-ex", 100, Some("br-x"), None)
                .await
                .unwrap_err(),
            rec.ensure_dummy("bgp-nic", Some("no-vrf"))
                .await
                .unwrap_err(),
            rec.ensure_vlan("no-parent", 100, None, None)
                .await
                .unwrap_err(),
            rec.ensure_vlan("br-ex", 0, None, None).await.unwrap_err(),
            rec.ensure_vrf("bgp-vrf", 0).await.unwrap_err(),
        ]
    });
    let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    eprintln!("{msgs:#?}");
    assert!(matches!(errs[0], Error::LinkMismatch { .. }));
    assert!(msgs[0].contains("link br-ex exists as bridge, not as vrf table 10"));
    assert!(msgs[1].contains("exists as bridge, not as dummy"));
    assert!(msgs[2].contains("link br-x exists as bridge, not as vlan id 100"));
    assert!(matches!(&errs[3], Error::NoSuchLink { name } if name == "no-vrf"));
    assert!(matches!(&errs[4], Error::NoSuchLink { name } if name == "no-parent"));
    assert!(msgs[5].contains("between 1 and 4094"));
    assert!(msgs[6].contains("table id other than 0"));
    let out = ns.ip(&["-d", "link", "show", "br-ex"]).unwrap();
    assert!(out.contains("bridge") && out.contains(",UP"), "{out}");
    // The failed ensure_dummy did not create bgp-nic.
    assert!(ns.ip(&["link", "show", "bgp-nic"]).is_err());
}

#[test]
#[ignore = "kernel tier: needs vrf/dummy, run by scripts/kernel-tier.sh"]
fn kernel_tier_ensure_vrf_dummy_vlan() {
    let Some(ns) = lab("eth1") else { return };
    let r = with_rec(&ns, |rec| async move {
        let created = [
            rec.ensure_vrf("bgp-vrf", 10).await.unwrap(),
            rec.ensure_vrf("bgp-vrf", 10).await.unwrap(),
            rec.ensure_dummy("bgp-nic", Some("bgp-vrf")).await.unwrap(),
            rec.ensure_dummy("bgp-nic", Some("bgp-vrf")).await.unwrap(),
            rec.ensure_vlan("eth1", 100, None, Some("ovn-route"))
                .await
                .unwrap(),
            rec.ensure_vlan("eth1", 100, None, Some("ovn-route"))
                .await
                .unwrap(),
        ];
        let vrf = rec.link("bgp-vrf").await.unwrap().unwrap();
        let nic = rec.link("bgp-nic").await.unwrap().unwrap();
        let vlan = rec.link("eth1.100").await.unwrap().unwrap();
        let eth1 = rec.link("eth1").await.unwrap().unwrap();
        let mismatch = rec.ensure_vrf("bgp-vrf", 20).await.unwrap_err();
        let vlan_mismatch = rec
            .ensure_vlan("eth1", 200, Some("eth1.100"), None)
            .await
            .unwrap_err();
        (created, vrf, nic, vlan, eth1, mismatch, vlan_mismatch)
    });
    let (created, vrf, nic, vlan, eth1, mismatch, vlan_mismatch) = r;
    assert_eq!(created, [true, false, true, false, true, false]);
    assert_eq!(vrf.kind.as_deref(), Some("vrf"));
    assert_eq!(vrf.vrf_table, Some(10));
    assert!(vrf.up);
    assert_eq!(nic.kind.as_deref(), Some("dummy"));
    assert_eq!(nic.master, Some(vrf.index));
    assert!(nic.up);
    assert!(nic.mac.is_some());
    assert_eq!(vlan.kind.as_deref(), Some("vlan"));
    assert_eq!((vlan.vlan_id, vlan.parent), (Some(100), Some(eth1.index)));
    assert!(vlan.up);
    let msg = mismatch.to_string();
    assert!(
        matches!(
            mismatch,
            Error::VrfTableMismatch {
                want: 20,
                have: 10,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("table 10") && msg.contains("table 20"),
        "{msg}"
    );
    assert!(
        vlan_mismatch.to_string().contains("exists as vlan id 100"),
        "{vlan_mismatch}"
    );
    let out = ns.ip(&["-d", "link", "show", "bgp-vrf"]).unwrap();
    assert!(
        out.contains("vrf table 10"),
        "the VRF was not modified: {out}"
    );

    // Down devices are set up again; a dummy enslaved elsewhere is moved back.
    ns.ip(&["link", "set", "bgp-vrf", "down"]).unwrap();
    ns.ip(&["link", "add", "other-vrf", "type", "vrf", "table", "11"])
        .unwrap();
    ns.ip(&["link", "set", "bgp-nic", "master", "other-vrf"])
        .unwrap();
    let (a, b, c) = with_rec(&ns, |rec| async move {
        (
            rec.ensure_vrf("bgp-vrf", 10).await.unwrap(),
            rec.ensure_dummy("bgp-nic", Some("bgp-vrf")).await.unwrap(),
            rec.ensure_dummy("bgp-nic", None).await.unwrap(),
        )
    });
    assert!(a && b && !c);
    let out = ns.ip(&["-d", "link", "show", "bgp-nic"]).unwrap();
    assert!(out.contains("master bgp-vrf"), "{out}");

    // The VLAN we created carries our mark; one made by someone else does not, and is never
    // deleted by us.
    ns.ip(&[
        "link", "add", "link", "eth1", "name", "eth1.200", "type", "vlan", "id", "200",
    ])
    .unwrap();
    let (alias, marked, del_foreign, del_ours, again) = with_rec(&ns, |rec| async move {
        let alias = rec.link("eth1.100").await.unwrap().unwrap().alias;
        let marked: Vec<String> = rec
            .marked_vlans_on("eth1", "ovn-route")
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        (
            alias,
            marked,
            rec.delete_marked_link("eth1.200", "ovn-route")
                .await
                .unwrap(),
            rec.delete_marked_link("eth1.100", "ovn-route")
                .await
                .unwrap(),
            rec.delete_marked_link("eth1.100", "ovn-route")
                .await
                .unwrap(),
        )
    });
    assert_eq!(alias.as_deref(), Some("ovn-route"));
    assert_eq!(marked, ["eth1.100"]);
    assert_eq!((del_foreign, del_ours, again), (false, true, false));
    let out = ns.ip(&["-o", "link", "show"]).unwrap();
    assert!(
        out.contains("eth1.200") && !out.contains("eth1.100"),
        "{out}"
    );
}

/// The ownership mark on links: only a link whose alias is the mark is ever deleted.
#[test]
fn only_links_with_our_mark_are_deleted() {
    let Some(ns) = lab("br-ours") else { return };
    ns.ip(&["link", "add", "br-theirs", "type", "bridge"])
        .unwrap();
    ns.ip(&["link", "set", "br-theirs", "alias", "someone-else"])
        .unwrap();
    let (theirs, ours, missing) = with_rec(&ns, |rec| async move {
        let l = rec.link("br-ours").await.unwrap().unwrap();
        rec.set_alias(&l, "ovn-route").await.unwrap();
        (
            rec.delete_marked_link("br-theirs", "ovn-route")
                .await
                .unwrap(),
            rec.delete_marked_link("br-ours", "ovn-route")
                .await
                .unwrap(),
            rec.delete_marked_link("nope", "ovn-route").await.unwrap(),
        )
    });
    assert_eq!((theirs, ours, missing), (false, true, false));
    let out = ns.ip(&["-o", "link", "show"]).unwrap();
    assert!(
        out.contains("br-theirs") && !out.contains("br-ours"),
        "{out}"
    );
}

// ------------------------------------------------------------------------------ addresses

fn addrs(list: &[&str]) -> DesiredAddresses {
    let mut d = DesiredAddresses::new("bgp-nic");
    d.addrs.extend(list.iter().map(|s| net(s)));
    d
}

#[test]
fn addresses_reconcile_only_global_host_addresses() {
    let Some(ns) = lab("bgp-nic") else { return };
    // Not ours: another prefix length, link scope, IPv6 link-local, an IPv6 /64.
    for a in [
        &["addr", "add", "192.0.2.1/24", "dev", "bgp-nic"][..],
        &[
            "addr",
            "add",
            "10.9.9.9/32",
            "dev",
            "bgp-nic",
            "scope",
            "link",
        ],
        &[
            "-6",
            "addr",
            "add",
            "fe80::99/128",
            "dev",
            "bgp-nic",
            "nodad",
        ],
        &[
            "-6",
            "addr",
            "add",
            "2001:db8:1::1/64",
            "dev",
            "bgp-nic",
            "nodad",
        ],
    ] {
        ns.ip(a).unwrap();
    }
    // Ours by the ownership rule (a global /32 on bgp_nic), not desired: deleted.
    ns.ip(&["addr", "add", "10.0.0.9/32", "dev", "bgp-nic"])
        .unwrap();
    let foreign = |ns: &ScratchNetns| {
        let out = ns.ip(&["addr", "show", "dev", "bgp-nic"]).unwrap();
        for a in [
            "192.0.2.1/24",
            "10.9.9.9/32",
            "fe80::99/128",
            "2001:db8:1::1/64",
        ] {
            assert!(out.contains(a), "{a} stays: {out}");
        }
        out
    };
    let d = addrs(&["10.0.0.1", "10.0.0.2", "2001:db8::1"]);
    let (s1, s2, observed) = with_rec(&ns, move |rec| async move {
        (
            rec.reconcile_addresses(&d).await.unwrap(),
            rec.reconcile_addresses(&d).await.unwrap(),
            rec.observe_addresses("bgp-nic").await.unwrap(),
        )
    });
    assert_eq!(s1, stats(3, 0, 1, 0));
    assert_eq!(s2, stats(0, 0, 0, 3));
    let observed: BTreeSet<IpNet> = observed.into_iter().collect();
    assert_eq!(
        observed,
        addrs(&["10.0.0.1", "10.0.0.2", "2001:db8::1"]).addrs
    );
    let out = foreign(&ns);
    assert!(out.contains("inet 10.0.0.1/32 scope global"), "{out}");
    let v6 = out
        .lines()
        .find(|l| l.contains("inet6 2001:db8::1/128 scope global"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(v6.contains("nodad") && !v6.contains("tentative"), "{v6}");
    assert!(!out.contains("10.0.0.9"), "{out}");

    let d = addrs(&["10.0.0.2"]);
    let s = with_rec(&ns, move |rec| async move {
        rec.reconcile_addresses(&d).await.unwrap()
    });
    assert_eq!(s, stats(0, 0, 2, 1));
    let s = with_rec(&ns, |rec| async move {
        rec.reconcile_addresses(&addrs(&[])).await.unwrap()
    });
    assert_eq!(s, stats(0, 0, 1, 0));
    let out = foreign(&ns);
    assert!(
        !out.contains("10.0.0.2") && !out.contains("2001:db8::1/128"),
        "{out}"
    );
}

#[test]
fn adding_an_existing_address_is_not_an_error() {
    let Some(ns) = lab("bgp-nic") else { return };
    ns.ip(&["addr", "add", "10.0.0.1/32", "dev", "bgp-nic"])
        .unwrap();
    let plan = ovn_route_kernel::AddressDiff {
        to_add: vec![net("10.0.0.1"), net("10.0.0.2")],
        to_delete: vec![net("10.0.0.77")],
        unchanged: 0,
    };
    let s = with_rec(&ns, move |rec| async move {
        rec.apply_addresses("bgp-nic", &plan).await.unwrap()
    });
    // 10.0.0.1 existed (unchanged), 10.0.0.77 was not there (nothing to delete).
    assert_eq!(s, stats(1, 0, 0, 1));
}

#[test]
fn address_errors() {
    let Some(ns) = lab("bgp-nic") else { return };
    let (bad, missing) = with_rec(&ns, |rec| async move {
        (
            rec.reconcile_addresses(&addrs(&["10.0.0.0/24"]))
                .await
                .unwrap_err(),
            rec.reconcile_addresses(&DesiredAddresses::new("nope"))
                .await
                .unwrap_err(),
        )
    });
    assert!(matches!(bad, Error::InvalidAddress { .. }), "{bad}");
    assert!(bad.to_string().contains("10.0.0.0/24 dev bgp-nic"), "{bad}");
    assert!(matches!(missing, Error::NoSuchLink { .. }), "{missing}");
}

#[test]
#[ignore = "kernel tier: needs vrf/dummy, run by scripts/kernel-tier.sh"]
fn kernel_tier_addresses_on_bgp_nic_in_vrf() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let ns = ScratchNetns::new().expect("netns");
    let s = with_rec(&ns, |rec| async move {
        rec.ensure_vrf("bgp-vrf", 10).await.unwrap();
        rec.ensure_dummy("bgp-nic", Some("bgp-vrf")).await.unwrap();
        rec.reconcile_addresses(&addrs(&["198.51.100.7", "2001:db8::7"]))
            .await
            .unwrap()
    });
    assert_eq!(s, stats(2, 0, 0, 0));
    // The addresses' local routes are in the VRF's table, not in main or local.
    let t10 = ns.ip(&["route", "show", "table", "10"]).unwrap();
    assert!(t10.contains("198.51.100.7 dev bgp-nic"), "{t10}");
    let t10v6 = ns.ip(&["-6", "route", "show", "table", "10"]).unwrap();
    assert!(t10v6.contains("2001:db8::7 dev bgp-nic"), "{t10v6}");
    let local = ns.ip(&["route", "show", "table", "local"]).unwrap();
    assert!(!local.contains("198.51.100.7"), "{local}");
    let s = with_rec(&ns, |rec| async move {
        rec.reconcile_addresses(&addrs(&["2001:db8::7"]))
            .await
            .unwrap()
    });
    assert_eq!(s, stats(0, 0, 1, 1));
}

// ----------------------------------------------------------------------------- neighbours

fn neighbours(entries: &[Neighbour]) -> DesiredNeighbours {
    let mut d = DesiredNeighbours::new("br-ex", PROTO);
    d.entries.extend(entries.iter().copied());
    d
}

async fn reconcile_n(rec: Reconciler, d: DesiredNeighbours) -> ReconcileStats {
    rec.reconcile_neighbours(&d).await.unwrap()
}

#[test]
fn neighbours_reconcile_with_protocol_mark() {
    let Some(ns) = lab("br-ex") else { return };
    // Foreign entries on the same device: a permanent neighbour and an NDP proxy without our
    // mark, and a permanent neighbour of another protocol.
    ns.ip(&[
        "neigh",
        "add",
        "172.24.4.50",
        "lladdr",
        "02:00:00:00:00:50",
        "dev",
        "br-ex",
        "nud",
        "permanent",
    ])
    .unwrap();
    ns.ip(&[
        "-6",
        "neigh",
        "add",
        "proxy",
        "2001:db8:4::50",
        "dev",
        "br-ex",
    ])
    .unwrap();
    ns.ip(&[
        "neigh",
        "add",
        "172.24.4.51",
        "lladdr",
        "02:00:00:00:00:51",
        "dev",
        "br-ex",
        "nud",
        "permanent",
        "protocol",
        "202",
    ])
    .unwrap();
    let show = |ns: &ScratchNetns| {
        let n = ns.ip(&["neigh", "show", "dev", "br-ex"]).unwrap();
        let p = ns.ip(&["neigh", "show", "proxy"]).unwrap();
        let p6 = ns.ip(&["-6", "neigh", "show", "proxy"]).unwrap();
        let all = format!("{n}{p}{p6}");
        assert!(
            all.contains("172.24.4.50 lladdr 02:00:00:00:00:50 PERMANENT"),
            "{all}"
        );
        assert!(
            all.contains("172.24.4.51 lladdr 02:00:00:00:00:51 PERMANENT proto 202"),
            "{all}"
        );
        assert!(all.contains("2001:db8:4::50 dev br-ex proxy"), "{all}");
        all
    };
    show(&ns);

    let d = neighbours(&[
        perm("172.24.4.10", MAC1),
        perm("2001:db8:4::10", MAC1),
        proxy("2001:db8:4::1"),
        proxy("172.24.4.20"),
    ]);
    let d2 = d.clone();
    let (s1, s2, observed) = with_rec(&ns, move |rec| async move {
        (
            rec.reconcile_neighbours(&d2).await.unwrap(),
            rec.reconcile_neighbours(&d2).await.unwrap(),
            rec.observe_neighbours("br-ex", PROTO).await.unwrap(),
        )
    });
    assert_eq!(s1, stats(4, 0, 0, 0));
    assert_eq!(s2, stats(0, 0, 0, 4));
    assert_eq!(observed.into_iter().collect::<BTreeSet<_>>(), d.entries);
    let all = show(&ns);
    assert!(
        all.contains("172.24.4.10 lladdr 02:00:00:00:00:01 PERMANENT proto 201"),
        "{all}"
    );
    assert!(
        all.contains("2001:db8:4::10 lladdr 02:00:00:00:00:01 PERMANENT proto 201"),
        "{all}"
    );
    assert!(
        all.contains("2001:db8:4::1 dev br-ex proxy proto 201"),
        "{all}"
    );
    assert!(
        all.contains("172.24.4.20 dev br-ex proxy proto 201"),
        "{all}"
    );

    // Another MAC: replaced in place; one entry less: deleted.
    let d = neighbours(&[
        perm("172.24.4.10", MAC2),
        perm("2001:db8:4::10", MAC1),
        proxy("2001:db8:4::1"),
    ]);
    let s = with_rec(&ns, move |rec| reconcile_n(rec, d));
    assert_eq!(s, stats(0, 1, 1, 2));
    let all = show(&ns);
    assert!(
        all.contains("172.24.4.10 lladdr 02:00:00:00:00:02 PERMANENT proto 201"),
        "{all}"
    );
    assert!(!all.contains("172.24.4.20"), "{all}");

    // Nothing wanted: ours go, the foreign entries stay.
    let s = with_rec(&ns, |rec| reconcile_n(rec, neighbours(&[])));
    assert_eq!(s, stats(0, 0, 3, 0));
    let all = show(&ns);
    assert!(!all.contains("proto 201"), "{all}");
}

#[test]
fn foreign_permanent_neighbours_are_not_replaced() {
    let Some(ns) = lab("br-ex") else { return };
    ns.ip(&[
        "neigh",
        "add",
        "172.24.4.50",
        "lladdr",
        "02:00:00:00:00:50",
        "dev",
        "br-ex",
        "nud",
        "permanent",
    ])
    .unwrap();
    ns.ip(&[
        "-6",
        "neigh",
        "add",
        "proxy",
        "2001:db8:4::50",
        "dev",
        "br-ex",
    ])
    .unwrap();
    // A foreign entry the kernel could have learned (stale): a cache entry, replaced by ours.
    ns.ip(&[
        "neigh",
        "add",
        "172.24.4.60",
        "lladdr",
        "02:00:00:00:00:60",
        "dev",
        "br-ex",
        "nud",
        "stale",
    ])
    .unwrap();
    let d = neighbours(&[
        perm("172.24.4.50", MAC1),
        proxy("2001:db8:4::50"),
        perm("172.24.4.60", MAC1),
    ]);
    let e = with_rec(&ns, move |rec| async move {
        rec.reconcile_neighbours(&d).await.unwrap_err()
    });
    eprintln!("{e}");
    let Error::Apply { stats: s, errors } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*s, stats(1, 0, 0, 0));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors
        .iter()
        .all(|e| matches!(e, Error::ForeignNeighbour { .. })));
    let msg = e.to_string();
    assert!(msg.contains("without our protocol mark"), "{msg}");
    let n = ns.ip(&["neigh", "show", "dev", "br-ex"]).unwrap();
    assert!(
        n.contains("172.24.4.50 lladdr 02:00:00:00:00:50 PERMANENT"),
        "{n}"
    );
    assert!(
        !n.contains("172.24.4.50 lladdr 02:00:00:00:00:50 PERMANENT proto"),
        "{n}"
    );
    assert!(
        n.contains("172.24.4.60 lladdr 02:00:00:00:00:01 PERMANENT proto 201"),
        "{n}"
    );
    let p = ns.ip(&["-6", "neigh", "show", "proxy"]).unwrap();
    assert!(p.contains("2001:db8:4::50 dev br-ex proxy"), "{p}");
    assert!(!p.contains("proto"), "{p}");
}

#[test]
fn neighbour_errors() {
    let Some(ns) = lab("br-ex") else { return };
    let (bad, missing) = with_rec(&ns, |rec| async move {
        let bad = neighbours(&[perm("172.24.4.10", MAC1), perm("172.24.4.10", MAC2)]);
        let mut missing = neighbours(&[]);
        missing.dev = "nope".into();
        (
            rec.reconcile_neighbours(&bad).await.unwrap_err(),
            rec.reconcile_neighbours(&missing).await.unwrap_err(),
        )
    });
    assert!(matches!(bad, Error::InvalidNeighbours { .. }), "{bad}");
    assert!(matches!(missing, Error::NoSuchLink { .. }), "{missing}");
}

// -------------------------------------------------------------------------------- sysctls

fn read_in(ns: &ScratchNetns, path: &str) -> String {
    netns::ip(&["netns", "exec", ns.name(), "cat", path])
        .unwrap()
        .trim()
        .to_string()
}

/// Writes from a thread that entered the namespace change that namespace only.
#[test]
fn sysctls_are_written_in_the_namespace_of_the_thread() {
    let Some(ns) = lab("br-ex") else { return };
    let ip_forward = "/proc/sys/net/ipv4/ip_forward";
    let v6_all = "/proc/sys/net/ipv6/conf/all/forwarding";
    let host = |p: &str| std::fs::read_to_string(p).unwrap().trim().to_string();
    let (host_v4, host_v6) = (host(ip_forward), host(v6_all));
    // The opposite of the host's values, so that a leak would show.
    let want_v4 = host_v4 == "0";
    let want_v6 = host_v6 == "0";
    let r = ns.run(move || {
        (
            ovn_route_kernel::set_proxy_arp("br-ex", true).unwrap(),
            ovn_route_kernel::set_proxy_arp("br-ex", true).unwrap(),
            ovn_route_kernel::set_proxy_ndp("br-ex", true).unwrap(),
            ovn_route_kernel::set_ipv4_forwarding(Some("br-ex"), true).unwrap(),
            ovn_route_kernel::set_ipv4_forwarding(None, want_v4).unwrap(),
            ovn_route_kernel::set_ipv6_forwarding(want_v6).unwrap(),
            Sysctl::ip_forward().read().unwrap(),
        )
    });
    // Restore the host if a write leaked, then fail.
    let leaked = (host(ip_forward) != host_v4, host(v6_all) != host_v6);
    if leaked.0 {
        std::fs::write(ip_forward, &host_v4).unwrap();
    }
    if leaked.1 {
        std::fs::write(v6_all, &host_v6).unwrap();
    }
    assert_eq!(leaked, (false, false), "a namespace write reached the host");
    let (arp1, arp2, ndp, _, _, _, v4_in_thread) = r;
    assert!(!arp1 && arp2, "previous values: 0, then 1");
    assert!(!ndp);
    assert_eq!(v4_in_thread, if want_v4 { "1" } else { "0" });
    let conf = |f: &str, name: &str| read_in(&ns, &format!("/proc/sys/net/{f}/conf/br-ex/{name}"));
    assert_eq!(conf("ipv4", "proxy_arp"), "1");
    assert_eq!(conf("ipv6", "proxy_ndp"), "1");
    assert_eq!(conf("ipv4", "forwarding"), "1");
    assert_eq!(read_in(&ns, ip_forward), if want_v4 { "1" } else { "0" });
    assert_eq!(read_in(&ns, v6_all), if want_v6 { "1" } else { "0" });

    // A device of the namespace does not exist outside it: the error names the path.
    if std::fs::metadata("/proc/sys/net/ipv4/conf/br-ex").is_err() {
        let e = ovn_route_kernel::set_proxy_arp("br-ex", true).unwrap_err();
        assert!(matches!(e, Error::Sysctl { op: "read", .. }), "{e}");
        assert!(
            e.to_string()
                .contains("/proc/sys/net/ipv4/conf/br-ex/proxy_arp"),
            "{e}"
        );
    }
}
