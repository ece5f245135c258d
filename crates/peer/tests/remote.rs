//! The pure remote planner: rendezvous on the transit switch, link subnet allocation, ports
//! only once mutual, withdrawal and deletion of the transit switch.

use std::collections::BTreeMap;

use ovn_route_peer::remote::{
    allocate, integration_key, plan_remote, IcOp, Integration, NbOp, RemoteNb, Switch,
    TransitSwitch, AZ_KEY_PREFIX, LINK_SUBNET_KEY, REMOTE_OWNER_VALUE,
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
