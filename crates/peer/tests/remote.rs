//! The pure remote planner: rendezvous on the transit switch, link subnet allocation, ports
//! only once mutual, withdrawal and deletion of the transit switch.

use std::collections::BTreeMap;

use ovn_route_peer::remote::{
    allocate, integration_key, link_address, plan_remote, IcOp, Integration, NbOp, RemoteNb,
    Switch, TransitSwitch, AZ_DECLARED_IPV6, AZ_KEY_PREFIX, LINK_SUBNET6_KEY, LINK_SUBNET_KEY,
    REMOTE_OWNER_VALUE,
};
use ovn_route_peer::snapshot::{Router, Snapshot};
use ovn_route_peer::{cidr::Cidr, DeclRef, Status};
use ovsdb::Uuid;

fn setup() -> (Snapshot, RemoteNb, Uuid) {
    let mut s = Snapshot::default();
    let r = Uuid::from_u64_pair(1, 1);
    let mut router = Router {
        name: "lr1".into(),
        ..Default::default()
    };
    router.external_ids.insert(
        "ovn-route:peer:link".into(),
        r#"{"type":"remote","target_integration":"ic1"}"#.into(),
    );
    s.routers.insert(r, router);
    let mut nb = RemoteNb {
        az: "az1".into(),
        ..Default::default()
    };
    let mut i = Integration::new("tcp:127.0.0.1:6645", "tcp:127.0.0.1:6646");
    i.gateway_chassis = vec!["hv1".into()];
    nb.external_ids.insert(integration_key("ic1"), i.to_json());
    (s, nb, r)
}

fn ts(azs: &[&str], subnet: &str) -> TransitSwitch {
    let mut t = TransitSwitch {
        name: "ts-link".into(),
        external_ids: BTreeMap::from([
            (
                "ovn-route:owner".to_string(),
                REMOTE_OWNER_VALUE.to_string(),
            ),
            (LINK_SUBNET_KEY.to_string(), subnet.to_string()),
        ]),
    };
    for a in azs {
        t.external_ids
            .insert(format!("{AZ_KEY_PREFIX}{a}"), "declared".into());
    }
    t
}

#[test]
fn one_side_is_pending_and_only_creates_the_rendezvous() {
    let (s, nb, r) = setup();
    // Another transit switch already uses the first /30 of the pool.
    let mut other = ts(&["az3", "az4"], "169.254.100.0/30");
    other.name = "ts-other".into();
    let view = BTreeMap::from([(Uuid::from_u64_pair(9, 9), other)]);
    let p = plan_remote(&s, &nb, &BTreeMap::from([("ic1".to_string(), Ok(view))]));
    assert_eq!(p.statuses[&DeclRef::new(r, "link")], Status::Pending);
    match &p.ic_ops["ic1"][..] {
        [IcOp::CreateTs { name, external_ids }] => {
            assert_eq!(name, "ts-link");
            assert_eq!(external_ids[LINK_SUBNET_KEY], "169.254.100.4/30");
            assert!(external_ids.contains_key("ovn-route:az:az1"));
        }
        other => panic!("{other:?}"),
    }
    assert!(p.nb_ops.is_empty());
    // The IC-NB unreachable: errored, nothing planned.
    let p = plan_remote(
        &s,
        &nb,
        &BTreeMap::from([("ic1".to_string(), Err("down".to_string()))]),
    );
    assert!(
        matches!(&p.statuses[&DeclRef::new(r, "link")], Status::Errored(m) if m.contains("down"))
    );
    assert!(p.ic_ops.is_empty() && p.nb_ops.is_empty());
}

#[test]
fn mutual_creates_ports_once_ovn_ic_made_the_switch() {
    let (s, mut nb, r) = setup();
    let tu = Uuid::from_u64_pair(7, 7);
    let ics = BTreeMap::from([(
        "ic1".to_string(),
        Ok(BTreeMap::from([(
            tu,
            ts(&["az1", "az2"], "169.254.100.8/30"),
        )])),
    )]);
    let p = plan_remote(&s, &nb, &ics);
    assert_eq!(p.statuses[&DeclRef::new(r, "link")], Status::Created);
    assert!(p.nb_ops.is_empty(), "no local switch yet: {:?}", p.nb_ops);
    let su = Uuid::from_u64_pair(8, 8);
    nb.switches.insert(
        su,
        Switch {
            name: "ts-link".into(),
            other_config: BTreeMap::from([("interconn-ts".to_string(), "ts-link".to_string())]),
            ports: Default::default(),
        },
    );
    let p = plan_remote(&s, &nb, &ics);
    let create = p
        .nb_ops
        .iter()
        .find_map(|o| match o {
            NbOp::Create(w) => Some(w),
            _ => None,
        })
        .expect("ports");
    assert_eq!(create.lrp, "ovnr-lr1-ts-link");
    assert_eq!(create.lsp, "ovnr-az1-ts-link");
    assert_eq!(create.networks, ["169.254.100.9/30"]);
    assert_eq!(create.gateway_chassis, ["hv1"]);
    assert!(p.nb_ops.contains(&NbOp::IcRoutes(true)));
    // A third AZ on the same transit switch: errored.
    let ics3 = BTreeMap::from([(
        "ic1".to_string(),
        Ok(BTreeMap::from([(
            tu,
            ts(&["az1", "az2", "az3"], "169.254.100.8/30"),
        )])),
    )]);
    let p = plan_remote(&s, &nb, &ics3);
    assert!(matches!(
        &p.statuses[&DeclRef::new(r, "link")],
        Status::Errored(_)
    ));
}

#[test]
fn without_the_declaration_we_withdraw_and_delete_the_empty_switch() {
    let (mut s, nb, r) = setup();
    s.routers.get_mut(&r).unwrap().external_ids.clear();
    let tu = Uuid::from_u64_pair(7, 7);
    let plan = |azs: &[&str]| {
        plan_remote(
            &s,
            &nb,
            &BTreeMap::from([(
                "ic1".to_string(),
                Ok(BTreeMap::from([(tu, ts(azs, "169.254.100.8/30"))])),
            )]),
        )
    };
    assert_eq!(
        plan(&["az1", "az2"]).ic_ops["ic1"],
        [IcOp::Withdraw {
            uuid: tu,
            key: "ovn-route:az:az1".into()
        }]
    );
    assert_eq!(plan(&["az1"]).ic_ops["ic1"], [IcOp::DeleteTs { uuid: tu }]);
    assert!(plan(&["az2"]).ic_ops.is_empty());
}

#[test]
fn allocation_skips_used_subnets_and_knows_when_the_pool_is_full() {
    let pool = Cidr::parse("10.9.0.0/29").unwrap();
    let a = allocate(&pool, 30, &[]).unwrap();
    assert_eq!(a.to_string(), "10.9.0.0/30");
    let b = allocate(&pool, 30, &[a]).unwrap();
    assert_eq!(b.to_string(), "10.9.0.4/30");
    assert!(allocate(&pool, 30, &[a, b]).is_none());
}

#[test]
fn ipv6_allocation_and_link_addresses() {
    let pool = Cidr::parse("fd69:1::/120").unwrap();
    let a = allocate(&pool, 126, &[]).unwrap();
    assert_eq!(a.to_string(), "fd69:1::/126");
    let b = allocate(&pool, 126, &[a]).unwrap();
    assert_eq!(b.to_string(), "fd69:1::4/126");
    assert_eq!(link_address(&b, 0).unwrap().to_string(), "fd69:1::5/126");
    assert_eq!(link_address(&b, 1).unwrap().to_string(), "fd69:1::6/126");
    // A /127 uses both addresses (RFC 6164); a /30 the two hosts.
    let c = Cidr::parse("fd69:1::8/127").unwrap();
    assert_eq!(link_address(&c, 0).unwrap().to_string(), "fd69:1::8/127");
    assert_eq!(link_address(&c, 1).unwrap().to_string(), "fd69:1::9/127");
    let d = Cidr::parse("169.254.100.4/30").unwrap();
    assert_eq!(link_address(&d, 1).unwrap().to_string(), "169.254.100.6/30");
    assert!(link_address(&Cidr::parse("10.0.0.0/32").unwrap(), 1).is_none());
    assert!(allocate(&Cidr::parse("fd69::/127").unwrap(), 126, &[]).is_none());
}

/// Adds an IPv6 subnet to `lr1` (its only own port).
fn with_ipv6(s: &mut Snapshot, r: Uuid) {
    let p = Uuid::from_u64_pair(2, 2);
    s.ports.insert(
        p,
        ovn_route_peer::snapshot::RouterPort {
            name: "lr1-int".into(),
            networks: vec!["10.0.1.1/24".into(), "fd00:1::1/64".into()],
            ..Default::default()
        },
    );
    s.routers.get_mut(&r).unwrap().ports.insert(p);
}

#[test]
fn dual_stack_link_only_when_both_networks_have_ipv6() {
    let (mut s, mut nb, r) = setup();
    with_ipv6(&mut s, r);
    let mut i = Integration::parse(&nb.external_ids[&integration_key("ic1")]).unwrap();
    i.link_pool6 = Some("fd69:1::/120".into());
    nb.external_ids.insert(integration_key("ic1"), i.to_json());
    // Creating the transit switch: both subnets, and our key says IPv6.
    let p = plan_remote(
        &s,
        &nb,
        &BTreeMap::from([("ic1".into(), Ok(BTreeMap::new()))]),
    );
    match &p.ic_ops["ic1"][..] {
        [IcOp::CreateTs { external_ids, .. }] => {
            assert_eq!(external_ids[LINK_SUBNET6_KEY], "fd69:1::/126");
            assert_eq!(external_ids["ovn-route:az:az1"], AZ_DECLARED_IPV6);
        }
        other => panic!("{other:?}"),
    }
    nb.switches.insert(
        Uuid::from_u64_pair(8, 8),
        Switch {
            name: "ts-link".into(),
            other_config: BTreeMap::from([("interconn-ts".to_string(), "ts-link".to_string())]),
            ports: Default::default(),
        },
    );
    let tu = Uuid::from_u64_pair(7, 7);
    let networks = |other_v6: bool, subnet6: Option<&str>| {
        let mut t = ts(&["az1", "az2"], "169.254.100.8/30");
        t.external_ids
            .insert("ovn-route:az:az1".into(), AZ_DECLARED_IPV6.into());
        if other_v6 {
            t.external_ids
                .insert("ovn-route:az:az2".into(), AZ_DECLARED_IPV6.into());
        }
        if let Some(s6) = subnet6 {
            t.external_ids.insert(LINK_SUBNET6_KEY.into(), s6.into());
        }
        let p = plan_remote(
            &s,
            &nb,
            &BTreeMap::from([("ic1".into(), Ok(BTreeMap::from([(tu, t)])))]),
        );
        let create = p.nb_ops.iter().find_map(|o| match o {
            NbOp::Create(w) => Some(w.networks.clone()),
            _ => None,
        });
        (
            create.unwrap(),
            p.ic_ops.get("ic1").cloned().unwrap_or_default(),
        )
    };
    let (n, ops) = networks(true, Some("fd69:1::4/126"));
    assert_eq!(n, ["169.254.100.9/30", "fd69:1::5/126"]);
    assert!(ops.is_empty(), "{ops:?}");
    // The other network has no IPv6: IPv4 only.
    assert_eq!(
        networks(false, Some("fd69:1::4/126")).0,
        ["169.254.100.9/30"]
    );
    // No IPv6 subnet recorded yet (made by an AZ without a pool6): we record one.
    let (n, ops) = networks(true, None);
    assert_eq!(n, ["169.254.100.9/30"]);
    assert_eq!(
        ops,
        [IcOp::SetLinkSubnet6 {
            uuid: tu,
            subnet: "fd69:1::/126".into()
        }]
    );
}

#[test]
fn integration_set_and_unset_name_the_bad_key_or_value() {
    let mut i = Integration::new("tcp:127.0.0.1:6645", "tcp:127.0.0.1:6646");
    let err = |r: Result<(), ovn_route_peer::ModelError>| r.unwrap_err().to_string();
    assert!(err(i.clone().set("colour", "blue")).contains("\"colour\""));
    assert!(err(i.clone().set("link_prefix", "x")).contains("\"x\""));
    assert!(err(i.clone().set("link_prefix", "16")).contains("169.254.100.0/24"));
    assert!(err(i.clone().set("link_pool6", "10.0.0.0/8")).contains("\"10.0.0.0/8\""));
    assert!(err(i.clone().set("link_prefix6", "129")).contains("129"));
    assert!(err(i.clone().set("ic_nb", "ssl:127.0.0.1:1")).contains("ssl_private_key"));
    assert!(err(i.clone().set("ssl_certificate", "/x")).contains("ssl_private_key"));
    assert!(err(i.clone().unset("ic_sb")).contains("ic_sb"));
    assert!(err(i.clone().unset("nope")).contains("\"nope\""));
    i.set("gateway_chassis", "gw1, gw2").unwrap();
    assert_eq!(i.gateway_chassis, ["gw1", "gw2"]);
    i.set("link_pool6", "fd69::/64").unwrap();
    i.set("link_prefix6", "127").unwrap();
    for (k, v) in [
        ("ssl_private_key", "/nonexistent/k.pem"),
        ("ssl_certificate", "/nonexistent/c.pem"),
    ] {
        // Incomplete TLS settings are refused until the third file is set.
        assert!(i.set(k, v).is_err());
        match k {
            "ssl_private_key" => i.ssl_private_key = Some(v.into()),
            _ => i.ssl_certificate = Some(v.into()),
        }
    }
    i.set("ssl_ca_cert", "/nonexistent/ca.pem").unwrap();
    assert!(i.ssl().is_some());
    let e = i.check_files().unwrap_err().to_string();
    assert!(
        e.contains("ssl_private_key") && e.contains("/nonexistent/k.pem"),
        "{e}"
    );
    // Round trip through the stored form; unset returns to the defaults.
    assert_eq!(Integration::parse(&i.to_json()).unwrap(), i);
    for k in ["link_pool6", "link_prefix6", "gateway_chassis"] {
        i.unset(k).unwrap();
    }
    assert_eq!(i.link_pool6, None);
    assert_eq!(i.link_prefix6, 126);
    assert!(i.gateway_chassis.is_empty());
}
