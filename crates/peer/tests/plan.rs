//! The planner and the diff: statuses, the objects of created relationships, and the Incus
//! defects (several pending peers aimed at one network, delete unlinking every peer).

use std::collections::BTreeMap;

use ovn_route_peer::model::{NETWORK_KEY, PROJECT_KEY};
use ovn_route_peer::plan::{port_name, DeclRef};
use ovn_route_peer::snapshot::is_marked;
use ovn_route_peer::{
    diff, plan, simulate, Declaration, Op, Router, RouterPort, Snapshot, StaticRoute, Status,
};
use ovsdb::Uuid;
use proptest::prelude::*;

fn uuid(n: u64) -> Uuid {
    Uuid::from_u64_pair(n, n)
}

/// Adds network `i` (router `lr<i>`, optional project and label) with an internal port on
/// `subnets` and a gateway port with a default route through it.
fn add_net(
    s: &mut Snapshot,
    i: u64,
    project: Option<&str>,
    label: Option<&str>,
    subnets: &[&str],
) -> Uuid {
    let ru = uuid(i);
    let (int, ext, def) = (uuid(1000 + i), uuid(2000 + i), uuid(3000 + i));
    s.ports.insert(
        int,
        RouterPort {
            name: format!("lr{i}-int"),
            mac: "00:00:00:00:00:01".into(),
            networks: subnets.iter().map(|x| x.to_string()).collect(),
            ..Default::default()
        },
    );
    s.ports.insert(
        ext,
        RouterPort {
            name: format!("lr{i}-ext"),
            mac: "00:00:00:00:00:02".into(),
            networks: vec![format!("172.16.0.{}/24", i + 1)],
            gateway: true,
            ..Default::default()
        },
    );
    s.routes.insert(
        def,
        StaticRoute {
            ip_prefix: "0.0.0.0/0".into(),
            nexthop: "172.16.0.254".into(),
            output_port: None,
            external_ids: BTreeMap::new(),
        },
    );
    let mut ext_ids = BTreeMap::new();
    if let Some(p) = project {
        ext_ids.insert(PROJECT_KEY.to_string(), p.to_string());
    }
    if let Some(l) = label {
        ext_ids.insert(NETWORK_KEY.to_string(), l.to_string());
    }
    s.routers.insert(
        ru,
        Router {
            name: format!("lr{i}"),
            external_ids: ext_ids,
            options: BTreeMap::new(),
            ports: [int, ext].into(),
            static_routes: [def].into(),
        },
    );
    ru
}

fn declare(s: &mut Snapshot, router: Uuid, name: &str, project: &str, network: &str) {
    s.routers
        .get_mut(&router)
        .unwrap()
        .set_declaration(name, &Declaration::local(project, network));
}

fn undeclare(s: &mut Snapshot, router: Uuid, name: &str) {
    assert!(s.routers.get_mut(&router).unwrap().remove_declaration(name));
}

/// Plans, applies the diff in memory, and checks the result is a fixed point.
fn converge(s: &Snapshot) -> Snapshot {
    let p = plan(s);
    let after = simulate(s, &diff(s, &p));
    assert_eq!(diff(&after, &plan(&after)), vec![], "not a fixed point");
    after
}

fn two_nets() -> (Snapshot, Uuid, Uuid) {
    let mut s = Snapshot::default();
    let a = add_net(&mut s, 1, None, None, &["10.0.1.1/24", "fd00:1::1/64"]);
    let b = add_net(
        &mut s,
        2,
        None,
        Some("blue"),
        &["10.0.2.1/24", "fd00:2::1/64"],
    );
    (s, a, b)
}

#[test]
fn mutual_peering_creates_one_pair_and_routes() {
    let (mut s, a, b) = two_nets();
    declare(&mut s, a, "to-blue", "default", "blue");
    let p = plan(&s);
    assert_eq!(p.status(a, "to-blue"), Some(&Status::Pending));
    assert!(p.ports.is_empty() && p.routes.is_empty());

    declare(&mut s, b, "to-lr1", "default", "lr1");
    let p = plan(&s);
    assert_eq!(p.status(a, "to-blue"), Some(&Status::Created));
    assert_eq!(p.status(b, "to-lr1"), Some(&Status::Created));
    assert_eq!(p.ports.len(), 2);
    let pa = p.ports.iter().find(|x| x.router == a).unwrap();
    let pb = p.ports.iter().find(|x| x.router == b).unwrap();
    assert_eq!(pa.name, port_name("lr1", "to-blue"));
    assert_eq!(pa.peer, pb.name);
    assert_eq!(pb.peer, pa.name);
    assert_eq!(pa.networks, ["10.0.1.1/32", "fd00:1::1/128"]);
    assert_eq!(pb.networks, ["10.0.2.1/32", "fd00:2::1/128"]);
    assert_ne!(pa.mac, pb.mac);
    let ra: Vec<_> = p
        .routes
        .iter()
        .filter(|r| r.router == a)
        .map(|r| {
            (
                r.ip_prefix.as_str(),
                r.nexthop.as_str(),
                r.output_port.as_str(),
            )
        })
        .collect();
    assert_eq!(
        ra,
        [
            ("10.0.2.0/24", "10.0.2.1", pa.name.as_str()),
            ("fd00:2::/64", "fd00:2::1", pa.name.as_str())
        ]
    );
    // The uplink network (gateway port) is not a subnet of either network.
    assert!(!p.routes.iter().any(|r| r.ip_prefix.starts_with("172.16.")));
    for o in p.ports.iter().map(|x| &x.external_ids) {
        assert!(is_marked(o));
    }
    let after = converge(&s);
    // Unmarked rows are untouched.
    for (u, port) in &s.ports {
        assert_eq!(after.ports.get(u), Some(port));
    }
    assert_eq!(after.ports.len(), s.ports.len() + 2);
    assert_eq!(after.routes.len(), s.routes.len() + 4);
}

#[test]
fn missing_target_other_project_and_not_mutual_look_the_same() {
    let mut s = Snapshot::default();
    let a = add_net(&mut s, 1, None, None, &["10.0.1.1/24"]);
    let b = add_net(&mut s, 2, Some("p2"), None, &["10.0.2.1/24"]);
    // Not yet mutual (b exists in p2, has not declared back).
    declare(&mut s, a, "x", "p2", "lr2");
    let not_mutual = plan(&s).status(a, "x").cloned().unwrap();
    // Target in another project (lr2 exists, but not in `default`).
    undeclare(&mut s, a, "x");
    declare(&mut s, a, "x", "default", "lr2");
    let wrong_project = plan(&s).status(a, "x").cloned().unwrap();
    // Missing target.
    undeclare(&mut s, a, "x");
    declare(&mut s, a, "x", "p2", "nope");
    let missing = plan(&s).status(a, "x").cloned().unwrap();
    assert_eq!(not_mutual, Status::Pending);
    assert_eq!(wrong_project, not_mutual);
    assert_eq!(missing, not_mutual);
    assert_eq!(not_mutual.message(), missing.message());
    // And b naming a's wrong project keeps both pending.
    undeclare(&mut s, a, "x");
    declare(&mut s, a, "x", "p2", "lr2");
    declare(&mut s, b, "y", "p2", "lr1");
    let p = plan(&s);
    assert_eq!(p.status(a, "x"), Some(&Status::Pending));
    assert_eq!(p.status(b, "y"), Some(&Status::Pending));
    // Cross-project, both right: created.
    undeclare(&mut s, b, "y");
    declare(&mut s, b, "y", "default", "lr1");
    assert_eq!(plan(&s).status(a, "x"), Some(&Status::Created));
}

#[test]
fn several_pending_peers_aimed_at_one_network_are_fine() {
    let mut s = Snapshot::default();
    let a = add_net(&mut s, 1, None, None, &["10.0.1.1/24"]);
    let b = add_net(&mut s, 2, None, None, &["10.0.2.1/24"]);
    let c = add_net(&mut s, 3, None, None, &["10.0.3.1/24"]);
    let d = add_net(&mut s, 4, None, None, &["10.0.4.1/24"]);
    declare(&mut s, b, "to-a", "default", "lr1");
    declare(&mut s, c, "to-a", "default", "lr1");
    declare(&mut s, d, "to-a", "default", "lr1");
    let p = plan(&s);
    for r in [b, c, d] {
        assert_eq!(p.status(r, "to-a"), Some(&Status::Pending));
    }
    declare(&mut s, a, "to-c", "default", "lr3");
    let p = plan(&s);
    assert_eq!(p.status(a, "to-c"), Some(&Status::Created));
    assert_eq!(p.status(c, "to-a"), Some(&Status::Created));
    assert_eq!(p.status(b, "to-a"), Some(&Status::Pending));
    assert_eq!(p.status(d, "to-a"), Some(&Status::Pending));
    assert_eq!(p.ports.len(), 2);
}

#[test]
fn deleting_one_side_only_affects_its_partner() {
    let mut s = Snapshot::default();
    let a = add_net(&mut s, 1, None, None, &["10.0.1.1/24"]);
    let b = add_net(&mut s, 2, None, None, &["10.0.2.1/24"]);
    let c = add_net(&mut s, 3, None, None, &["10.0.3.1/24"]);
    let d = add_net(&mut s, 4, None, None, &["10.0.4.1/24"]);
    declare(&mut s, a, "to-b", "default", "lr2");
    declare(&mut s, b, "to-a", "default", "lr1");
    declare(&mut s, a, "to-c", "default", "lr3");
    declare(&mut s, c, "to-a", "default", "lr1");
    declare(&mut s, d, "to-a", "default", "lr1");
    let s1 = converge(&s);
    assert_eq!(plan(&s1).ports.len(), 4);
    undeclare(&mut s, b, "to-a");
    let mut s2 = s1.clone();
    undeclare(&mut s2, b, "to-a");
    let p = plan(&s2);
    let ops = diff(&s2, &p);
    assert!(ops
        .iter()
        .all(|o| matches!(o, Op::DeletePort { .. } | Op::DeleteRoute { .. })));
    assert_eq!(ops.len(), 2 + 2);
    assert_eq!(p.status(a, "to-b"), Some(&Status::Pending));
    assert_eq!(p.status(a, "to-c"), Some(&Status::Created));
    assert_eq!(p.status(c, "to-a"), Some(&Status::Created));
    assert_eq!(p.status(d, "to-a"), Some(&Status::Pending));
    let s3 = converge(&s2);
    let names: Vec<_> = s3
        .ports
        .values()
        .filter(|x| is_marked(&x.external_ids))
        .map(|x| x.name.clone())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&port_name("lr1", "to-c")));
}

#[test]
fn errors_bad_declarations_and_overlap() {
    let mut s = Snapshot::default();
    let a = add_net(&mut s, 1, None, None, &["10.0.1.1/24"]);
    let b = add_net(&mut s, 2, None, None, &["10.0.0.1/16"]);
    let r = s.routers.get_mut(&a).unwrap();
    r.external_ids
        .insert("ovn-route:peer:bad name".into(), "{}".into());
    r.external_ids
        .insert("ovn-route:peer:junk".into(), "not json".into());
    r.external_ids.insert(
        "ovn-route:peer:rem".into(),
        r#"{"type":"remote","target_integration":"ic"}"#.into(),
    );
    declare(&mut s, a, "self", "default", "lr1");
    declare(&mut s, a, "to-b", "default", "lr2");
    declare(&mut s, b, "to-a", "default", "lr1");
    let p = plan(&s);
    let st = |n: &str| p.status(a, n).unwrap().clone();
    assert!(matches!(st("bad name"), Status::Errored(m) if m.contains("\"bad name\"")));
    assert!(matches!(st("junk"), Status::Errored(_)));
    assert_eq!(st("rem"), Status::Pending); // planned by remote::plan_remote
    assert!(matches!(st("self"), Status::Errored(_)));
    assert!(matches!(st("to-b"), Status::Errored(m) if m.contains("overlap")));
    assert_eq!(p.status(b, "to-a"), p.status(a, "to-b"));
    assert!(p.ports.is_empty());
    // Two peers with the same target on one network: both errored, nothing matched.
    let mut s = Snapshot::default();
    let a = add_net(&mut s, 1, None, None, &["10.0.1.1/24"]);
    let b = add_net(&mut s, 2, None, None, &["10.0.2.1/24"]);
    declare(&mut s, a, "x", "default", "lr2");
    declare(&mut s, a, "y", "default", "lr2");
    declare(&mut s, b, "z", "default", "lr1");
    let p = plan(&s);
    assert!(matches!(p.status(a, "x"), Some(Status::Errored(_))));
    assert_eq!(p.status(b, "z"), Some(&Status::Pending));
}

#[test]
fn unmarked_objects_are_never_touched_and_drift_is_repaired() {
    let (mut s, a, b) = two_nets();
    declare(&mut s, a, "p", "default", "lr2");
    declare(&mut s, b, "p", "default", "lr1");
    let mut s1 = converge(&s);
    // Someone changes one of our ports and deletes one of our routes; an unmarked route to the
    // same prefix is added by hand.
    let (pu, _) = s1
        .ports
        .iter()
        .find(|(_, x)| is_marked(&x.external_ids))
        .map(|(u, x)| (*u, x.clone()))
        .unwrap();
    s1.ports.get_mut(&pu).unwrap().networks = vec!["192.0.2.1/32".into()];
    let ru = *s1.routers[&a]
        .static_routes
        .iter()
        .find(|u| is_marked(&s1.routes[u].external_ids))
        .unwrap();
    s1.routers.get_mut(&a).unwrap().static_routes.remove(&ru);
    s1.routes.remove(&ru);
    let hand = uuid(9999);
    s1.routes.insert(
        hand,
        StaticRoute {
            ip_prefix: "10.0.2.0/24".into(),
            nexthop: "172.16.0.254".into(),
            output_port: None,
            external_ids: BTreeMap::new(),
        },
    );
    s1.routers.get_mut(&a).unwrap().static_routes.insert(hand);
    let ops = diff(&s1, &plan(&s1));
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert!(ops
        .iter()
        .any(|o| matches!(o, Op::UpdatePort { uuid, .. } if *uuid == pu)));
    let s2 = converge(&s1);
    assert_eq!(s2.routes[&hand], s1.routes[&hand]);
}

// ----- properties -----

#[derive(Debug, Clone)]
struct Scenario {
    /// Per network: project index (0 = default), has label.
    nets: Vec<(usize, bool)>,
    /// Declarations: (from, name index, target project index, target net index, by label).
    decls: Vec<(usize, usize, usize, usize, bool)>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (2usize..6).prop_flat_map(|n| {
        (
            proptest::collection::vec((0usize..2, any::<bool>()), n),
            proptest::collection::vec((0..n, 0usize..3, 0usize..2, 0..n, any::<bool>()), 0..12),
        )
            .prop_map(|(nets, decls)| Scenario { nets, decls })
    })
}

const PROJECTS: [&str; 2] = ["default", "p2"];

fn build(sc: &Scenario) -> (Snapshot, Vec<Uuid>) {
    let mut s = Snapshot::default();
    let mut routers = Vec::new();
    for (i, (proj, label)) in sc.nets.iter().enumerate() {
        let i = i as u64 + 1;
        let sub = format!("10.{i}.0.1/16");
        let l = format!("net{i}");
        routers.push(add_net(
            &mut s,
            i,
            (*proj == 1).then_some(PROJECTS[1]),
            label.then_some(l.as_str()),
            &[sub.as_str()],
        ));
    }
    for (from, name, tp, tn, by_label) in &sc.decls {
        // One spelling per network (its label when it has one), so that no network has two
        // live declarations aimed at the same network under two names.
        let _ = by_label;
        let target = if sc.nets[*tn].1 {
            format!("net{}", tn + 1)
        } else {
            format!("lr{}", tn + 1)
        };
        declare(
            &mut s,
            routers[*from],
            &format!("peer{name}"),
            PROJECTS[*tp],
            &target,
        );
    }
    (s, routers)
}

proptest! {
    #[test]
    fn mutuality_is_symmetric_and_one_pair_per_relationship(sc in scenario()) {
        let (s, _) = build(&sc);
        let p = plan(&s);
        prop_assert_eq!(p.ports.len(), 2 * p.relationships.len());
        for rel in &p.relationships {
            prop_assert_eq!(p.statuses.get(&rel.a), Some(&Status::Created));
            prop_assert_eq!(p.statuses.get(&rel.b), Some(&Status::Created));
            prop_assert_eq!(p.partners.get(&rel.a), Some(&rel.b));
            prop_assert_eq!(p.partners.get(&rel.b), Some(&rel.a));
        }
        for (d, st) in &p.statuses {
            if *st == Status::Created {
                let e = &p.partners[d];
                prop_assert_eq!(&p.partners[e], d);
                prop_assert_ne!(d.router, e.router);
            } else {
                prop_assert!(!p.partners.contains_key(d));
            }
        }
        let mut names: Vec<_> = p.ports.iter().map(|x| &x.name).collect();
        names.sort();
        names.dedup();
        prop_assert_eq!(names.len(), p.ports.len());
        for port in &p.ports {
            prop_assert!(p.ports.iter().any(|o| o.name == port.peer && o.peer == port.name));
        }
        converge(&s);
    }

    #[test]
    fn deleting_a_declaration_only_affects_its_partner(sc in scenario(), pick in any::<prop::sample::Index>()) {
        let (s, _) = build(&sc);
        let before = plan(&s);
        let decls: Vec<DeclRef> = before.statuses.keys().cloned().collect();
        prop_assume!(!decls.is_empty());
        let gone = pick.get(&decls).clone();
        // A declaration in an ambiguous or duplicated situation changes its neighbours by
        // design; the property is about pending and created ones.
        let st = before.statuses[&gone].clone();
        prop_assume!(st == Status::Created || st == Status::Pending);
        let partner = before.partners.get(&gone).cloned();
        let s1 = converge(&s);
        let mut s2 = s1.clone();
        undeclare(&mut s2, gone.router, &gone.name);
        let after = plan(&s2);
        for (d, st) in &before.statuses {
            if *d == gone { continue; }
            if Some(d) == partner.as_ref() {
                prop_assert_eq!(after.statuses.get(d), Some(&Status::Pending));
            } else {
                prop_assert_eq!(after.statuses.get(d), Some(st), "{} changed", d);
            }
        }
        // Only objects of the removed relationship go; nothing is created or updated.
        for op in diff(&s2, &after) {
            let Op::DeletePort { uuid, .. } = &op else {
                if let Op::DeleteRoute { uuid, .. } = &op {
                    let e = &s2.routes[uuid].external_ids;
                    let own = DeclRef::new(op.router(), &e["ovn-route:peering"]);
                    prop_assert!(own == gone || Some(&own) == partner.as_ref());
                    continue;
                }
                return Err(TestCaseError::fail(format!("unexpected {op:?}")));
            };
            let e = &s2.ports[uuid].external_ids;
            let own = DeclRef::new(op.router(), &e["ovn-route:peering"]);
            prop_assert!(own == gone || Some(&own) == partner.as_ref());
        }
    }
}
