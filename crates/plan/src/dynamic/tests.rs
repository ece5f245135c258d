//! Table-driven tests of the dynamic-routing planner. The expected sets are written by hand from
//! the upstream semantics (northd's advertised routes, ovn-controller's metrics and local-only).

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use ovsdb::{DatabaseSchema, Replica, Uuid};
use serde_json::{json, Map, Value as Json};

use super::learn::{desired_learned, learnable, nb_changes, KernelRoute, Learned, NextHop};
use super::*;

const STR: &str = "string";
fn map() -> Json {
    json!({"key": "string", "value": "string", "min": 0, "max": "unlimited"})
}
fn uuids() -> Json {
    json!({"key": "uuid", "min": 0, "max": "unlimited"})
}
fn strs() -> Json {
    json!({"key": "string", "min": 0, "max": "unlimited"})
}
fn opt(t: &str) -> Json {
    json!({"key": t, "min": 0, "max": 1})
}

fn nb_schema() -> DatabaseSchema {
    DatabaseSchema::from_json(&json!({"name": "OVN_Northbound", "tables": {
        "Logical_Switch": {"columns": {"name": {"type": STR}, "ports": {"type": uuids()}}},
        "Logical_Switch_Port": {"columns": {"name": {"type": STR}, "type": {"type": STR},
            "addresses": {"type": strs()}, "dynamic_addresses": {"type": opt("string")},
            "options": {"type": map()}}},
        "Logical_Router": {"columns": {"name": {"type": STR}, "ports": {"type": uuids()},
            "nat": {"type": uuids()}, "load_balancer": {"type": uuids()},
            "load_balancer_group": {"type": uuids()},
            "static_routes": {"type": uuids()}, "options": {"type": map()},
            "enabled": {"type": opt("boolean")}}},
        "Logical_Router_Port": {"columns": {"name": {"type": STR}, "networks": {"type": strs()},
            "gateway_chassis": {"type": uuids()}, "ha_chassis_group": {"type": opt("uuid")},
            "peer": {"type": opt("string")}, "options": {"type": map()}, "status": {"type": map()}}},
        "Logical_Router_Static_Route": {"columns": {"ip_prefix": {"type": STR},
            "nexthop": {"type": STR}, "output_port": {"type": opt("string")},
            "policy": {"type": opt("string")}, "route_table": {"type": STR},
            "external_ids": {"type": map()}}},
        "NAT": {"columns": {"type": {"type": STR}, "external_ip": {"type": STR},
            "external_mac": {"type": opt("string")}, "logical_port": {"type": opt("string")},
            "gateway_port": {"type": opt("uuid")}}},
        "Load_Balancer": {"columns": {"vips": {"type": map()}}},
        "Load_Balancer_Group": {"columns": {"load_balancer": {"type": uuids()}}},
        "Gateway_Chassis": {"columns": {"chassis_name": {"type": STR}}}
    }}))
    .unwrap()
}

fn sb_schema(native: bool) -> DatabaseSchema {
    let mut t = json!({
        "Chassis": {"columns": {"name": {"type": STR}}},
        "Port_Binding": {"columns": {"logical_port": {"type": STR}, "chassis": {"type": opt("uuid")}}},
        "Datapath_Binding": {"columns": {"tunnel_key": {"type": "integer"}, "external_ids": {"type": map()}}}
    });
    if native {
        t["Advertised_Route"] = json!({"columns": {"ip_prefix": {"type": STR}}});
    }
    DatabaseSchema::from_json(&json!({"name": "OVN_Southbound", "tables": t})).unwrap()
}

fn kv(pairs: &[(&str, &str)]) -> Json {
    json!([
        "map",
        pairs.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
    ])
}
fn set(v: &[&str]) -> Json {
    json!(["set", v])
}
fn refs(v: &[String]) -> Json {
    json!([
        "set",
        v.iter().map(|u| json!(["uuid", u])).collect::<Vec<_>>()
    ])
}

/// Rows as `update2` inserts.
#[derive(Default, Clone)]
struct Fx {
    nb: Map<String, Json>,
    sb: Map<String, Json>,
    n: u32,
}

impl Fx {
    fn row(db: &mut Map<String, Json>, n: &mut u32, table: &str, row: Json) -> String {
        *n += 1;
        let u = format!("00000000-0000-0000-0000-{:012}", *n);
        db.entry(table)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .unwrap()
            .insert(u.clone(), json!({"insert": row}));
        u
    }
    fn nb(&mut self, table: &str, row: Json) -> String {
        Self::row(&mut self.nb, &mut self.n, table, row)
    }
    fn sb(&mut self, table: &str, row: Json) -> String {
        Self::row(&mut self.sb, &mut self.n, table, row)
    }
    fn lsp(&mut self, name: &str, ty: &str, addrs: &[&str], options: &[(&str, &str)]) -> String {
        self.nb(
            "Logical_Switch_Port",
            json!({"name": name, "type": ty, "addresses": set(addrs), "options": kv(options)}),
        )
    }
    fn replicas(&self, native: bool) -> (Replica, Replica) {
        let mut nb = Replica::for_schema(&nb_schema(), None);
        nb.apply_json_updates2(&Json::Object(self.nb.clone()))
            .unwrap();
        let mut sb = Replica::for_schema(&sb_schema(native), None);
        sb.apply_json_updates2(&Json::Object(self.sb.clone()))
            .unwrap();
        (nb, sb)
    }
}

/// The topology: router lr0 (distributed gateway port lr0-pub on `public`, bound to hv1;
/// lr0-priv on `private` with vm1 on hv1, vm2 on hv2), its NATs, a load balancer and static
/// routes; a neighbour router lr1 on `public` with a NAT and a load balancer.
struct Topo {
    fx: Fx,
    lr0: String,
    lr0_pub: String,
    lr0_priv: String,
}

fn topo(lr0_opts: &[(&str, &str)], priv_opts: &[(&str, &str)]) -> Topo {
    let mut fx = Fx::default();
    let ln = fx.lsp(
        "ln-public",
        "localnet",
        &["unknown"],
        &[("network_name", "physnet1")],
    );
    let p0 = fx.lsp(
        "public-lr0",
        "router",
        &["router"],
        &[("router-port", "lr0-pub")],
    );
    let p1 = fx.lsp(
        "public-lr1",
        "router",
        &["router"],
        &[("router-port", "lr1-pub")],
    );
    fx.nb(
        "Logical_Switch",
        json!({"name": "public", "ports": refs(&[ln, p0, p1])}),
    );
    let vm1 = fx.lsp(
        "vm1",
        "",
        &["00:00:00:00:00:01 10.0.0.11 fd00::11"],
        &[("requested-chassis", "hv1")],
    );
    let vm2 = fx.lsp(
        "vm2",
        "",
        &["00:00:00:00:00:02 10.0.0.12"],
        &[("requested-chassis", "hv2")],
    );
    let pp = fx.lsp(
        "private-lr0",
        "router",
        &["router"],
        &[("router-port", "lr0-priv")],
    );
    fx.nb(
        "Logical_Switch",
        json!({"name": "private", "ports": refs(&[vm1, vm2, pp])}),
    );
    let gc = fx.nb("Gateway_Chassis", json!({"chassis_name": "hv1"}));
    let lr0_pub = fx.nb(
        "Logical_Router_Port",
        json!({"name": "lr0-pub", "networks": set(&["172.16.0.1/24"]), "gateway_chassis": refs(&[gc]),
               "status": kv(&[("hosting-chassis", "hv1")])}),
    );
    let lr0_priv = fx.nb(
        "Logical_Router_Port",
        json!({"name": "lr0-priv", "networks": set(&["10.0.0.1/24", "fd00::1/64"]), "options": kv(priv_opts)}),
    );
    let fip = fx.nb(
        "NAT",
        json!({"type": "dnat_and_snat", "external_ip": "172.16.0.100", "logical_port": "vm1",
               "external_mac": "00:00:00:00:01:00"}),
    );
    let snat = fx.nb("NAT", json!({"type": "snat", "external_ip": "172.16.0.1"}));
    let lb0 = fx.nb(
        "Load_Balancer",
        json!({"vips": kv(&[("172.16.0.200:80", "10.0.0.11:80")])}),
    );
    // A VIP that reaches lr0 through a load-balancer group only.
    let lb2 = fx.nb(
        "Load_Balancer",
        json!({"vips": kv(&[("172.16.0.202:80", "10.0.0.12:80")])}),
    );
    let lbg = fx.nb(
        "Load_Balancer_Group",
        json!({"load_balancer": refs(&[lb2])}),
    );
    let s1 = fx.nb(
        "Logical_Router_Static_Route",
        json!({"ip_prefix": "192.168.0.0/16", "nexthop": "172.16.0.254"}),
    );
    let s2 = fx.nb(
        "Logical_Router_Static_Route",
        json!({"ip_prefix": "10.99.0.0/16", "nexthop": "discard"}),
    );
    let s3 = fx.nb(
        "Logical_Router_Static_Route",
        json!({"ip_prefix": "10.98.0.0/16", "nexthop": "10.0.0.254", "output_port": "lr0-priv"}),
    );
    let lr0 = fx.nb(
        "Logical_Router",
        json!({"name": "lr0", "ports": refs(&[lr0_pub.clone(), lr0_priv.clone()]), "nat": refs(&[fip, snat]),
               "load_balancer": refs(&[lb0]), "load_balancer_group": refs(&[lbg]),
               "static_routes": refs(&[s1, s2, s3]), "options": kv(lr0_opts)}),
    );
    // The neighbour lr1 (no dynamic routing of its own).
    let lr1_pub = fx.nb(
        "Logical_Router_Port",
        json!({"name": "lr1-pub", "networks": set(&["172.16.0.2/24"])}),
    );
    let nat1 = fx.nb(
        "NAT",
        json!({"type": "dnat_and_snat", "external_ip": "172.16.0.150"}),
    );
    let lb1 = fx.nb(
        "Load_Balancer",
        json!({"vips": kv(&[("172.16.0.201:443", "10.1.0.5:443")])}),
    );
    fx.nb(
        "Logical_Router",
        json!({"name": "lr1", "ports": refs(&[lr1_pub]), "nat": refs(&[nat1]), "load_balancer": refs(&[lb1])}),
    );
    // SB: bindings and lr0's datapath (tunnel key 5).
    let hv1 = fx.sb("Chassis", json!({"name": "hv1"}));
    let hv2 = fx.sb("Chassis", json!({"name": "hv2"}));
    fx.sb(
        "Port_Binding",
        json!({"logical_port": "cr-lr0-pub", "chassis": ["uuid", hv1]}),
    );
    fx.sb(
        "Port_Binding",
        json!({"logical_port": "vm1", "chassis": ["uuid", hv1.clone()]}),
    );
    fx.sb(
        "Port_Binding",
        json!({"logical_port": "vm2", "chassis": ["uuid", hv2]}),
    );
    fx.sb(
        "Datapath_Binding",
        json!({"tunnel_key": 5, "external_ids": kv(&[("logical-router", lr0.as_str())])}),
    );
    Topo {
        fx,
        lr0,
        lr0_pub,
        lr0_priv,
    }
}

fn me(name: &str) -> ChassisIdentity {
    ChassisIdentity {
        system_id: name.into(),
        hostname: None,
        bridge_mappings: vec![],
    }
}

fn plan_of(t: &Topo, chassis: &str, with_sb: bool) -> DynamicPlan {
    let (nb, sb) = t.fx.replicas(false);
    plan_dynamic(&nb, with_sb.then_some(&sb), &me(chassis), None)
}

/// The advertised set as (prefix, metric, source) strings, sorted.
fn adv(p: &DynamicPlan) -> BTreeSet<String> {
    p.routers
        .values()
        .flat_map(|r| r.routes.values())
        .map(|a| format!("{} {} {}", a.prefix, a.metric, a.source))
        .collect()
}

fn set_of(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_redistribute_type_from_the_gateway_chassis() {
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        (
            "connected",
            &[
                "172.16.0.0/24 1000 connected",
                "10.0.0.0/24 1000 connected",
                "fd00::/64 1000 connected",
            ],
        ),
        (
            "connected-as-host",
            &[
                // public: lr0-pub (its DGP is here), lr1-pub (elsewhere); the localnet has none.
                "172.16.0.1/32 100 connected-as-host",
                "172.16.0.2/32 1000 connected-as-host",
                // private: vm1 here, vm2 on hv2, lr0-priv (distributed: not bound anywhere).
                "10.0.0.11/32 100 connected-as-host",
                "fd00::11/128 100 connected-as-host",
                "10.0.0.12/32 1000 connected-as-host",
                "10.0.0.1/32 1000 connected-as-host",
                "fd00::1/128 1000 connected-as-host",
            ],
        ),
        (
            "static",
            &["192.168.0.0/16 1000 static", "10.98.0.0/16 1000 static"],
        ),
        (
            "nat",
            &[
                // distributed FIP tracked to vm1 (here); SNAT tracked to the DGP (here);
                // the neighbour's NAT (lr1 has no gateway port: untracked).
                "172.16.0.100/32 100 nat",
                "172.16.0.1/32 100 nat",
                "172.16.0.150/32 1000 nat",
            ],
        ),
        (
            "lb",
            &[
                "172.16.0.200/32 100 lb",
                "172.16.0.201/32 1000 lb",
                "172.16.0.202/32 100 lb",
            ],
        ),
        (
            "static,bogus",
            &["192.168.0.0/16 1000 static", "10.98.0.0/16 1000 static"],
        ),
    ];
    for (redistribute, want) in cases {
        let t = topo(
            &[
                ("dynamic-routing", "true"),
                ("dynamic-routing-redistribute", redistribute),
            ],
            &[],
        );
        let p = plan_of(&t, "hv1", true);
        assert_eq!(adv(&p), set_of(want), "redistribute={redistribute:?}");
        let r = &p.routers[&t.lr0.parse::<Uuid>().unwrap()];
        assert_eq!((r.table, r.vrf.as_str()), (5, "ovnvrf5"));
        assert!(r.routes.values().all(|a| a.nexthop.is_none()), "blackholes");
        if redistribute.contains("bogus") {
            assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
            assert_eq!(p.problems[0].value, "bogus");
            assert_eq!(
                p.problems[0].source,
                "Logical_Router lr0 options:dynamic-routing-redistribute"
            );
        } else {
            assert!(p.problems.is_empty(), "{:?}", p.problems);
        }
        // The other chassis does not host the gateway: it advertises nothing for lr0.
        assert!(plan_of(&t, "hv2", true).routers.is_empty());
    }
}

#[test]
fn port_override_and_local_only() {
    // The router redistributes nothing; the private port asks for host routes, local only.
    let t = topo(
        &[("dynamic-routing", "true")],
        &[
            ("dynamic-routing-redistribute", "connected-as-host"),
            ("dynamic-routing-redistribute-local-only", "true"),
        ],
    );
    let p = plan_of(&t, "hv1", true);
    assert_eq!(
        adv(&p),
        set_of(&[
            "10.0.0.11/32 100 connected-as-host",
            "fd00::11/128 100 connected-as-host"
        ])
    );
    // Without local-only the remote-tracked ones come back at 1000.
    let t = topo(
        &[
            ("dynamic-routing", "true"),
            ("dynamic-routing-redistribute", "connected"),
        ],
        &[("dynamic-routing-redistribute", "connected-as-host")],
    );
    let p = plan_of(&t, "hv1", true);
    assert_eq!(
        adv(&p),
        set_of(&[
            "172.16.0.0/24 1000 connected",
            "10.0.0.11/32 100 connected-as-host",
            "fd00::11/128 100 connected-as-host",
            "10.0.0.12/32 1000 connected-as-host",
            "10.0.0.1/32 1000 connected-as-host",
            "fd00::1/128 1000 connected-as-host",
        ])
    );
}

#[test]
fn table_ids_vrf_names_and_next_hops() {
    type Case<'a> = (&'a [(&'a str, &'a str)], u32, &'a str, usize);
    let cases: &[Case<'_>] = &[
        (&[("dynamic-routing-vrf-id", "42")], 42, "ovnvrf42", 0),
        (&[("dynamic-routing-vrf-id", "254")], 5, "ovnvrf5", 1),
        (&[("dynamic-routing-vrf-id", "0")], 5, "ovnvrf5", 1),
        (&[("dynamic-routing-vrf-id", "4294967295")], 5, "ovnvrf5", 1),
        (&[("dynamic-routing-vrf-id", "4294967296")], 5, "ovnvrf5", 1),
        (&[("dynamic-routing-vrf-id", "ten")], 5, "ovnvrf5", 1),
        (&[("dynamic-routing-vrf-id", "300")], 300, "ovnvrf300", 0),
        (&[("dynamic-routing-vrf-name", "blue")], 5, "blue", 0),
        (
            &[("dynamic-routing-vrf-name", "fifteen-chars-x")],
            5,
            "fifteen-chars-x",
            0,
        ),
        (
            &[("dynamic-routing-vrf-name", "sixteen-chars-xx")],
            5,
            "ovnvrf5",
            1,
        ),
    ];
    for (extra, table, vrf, nproblems) in cases {
        let mut o = vec![
            ("dynamic-routing", "true"),
            ("dynamic-routing-redistribute", "connected"),
        ];
        o.extend_from_slice(extra);
        let t = topo(&o, &[]);
        let p = plan_of(&t, "hv1", true);
        let r = p.routers.values().next().expect("advertised");
        assert_eq!((r.table, r.vrf.as_str()), (*table, *vrf), "{extra:?}");
        assert_eq!(p.problems.len(), *nproblems, "{extra:?}: {:?}", p.problems);
        if *nproblems == 1 {
            assert!(p.problems[0]
                .source
                .starts_with("Logical_Router lr0 options:dynamic-routing-vrf-"));
        }
    }
    // Prefix next hops replace blackholes, per family; an invalid one is reported.
    let t = topo(
        &[
            ("dynamic-routing", "true"),
            ("dynamic-routing-redistribute", "connected"),
            ("dynamic-routing-v4-prefix-nexthop", "192.0.2.1"),
            ("dynamic-routing-v6-prefix-nexthop", "10.0.0.1"),
        ],
        &[],
    );
    let p = plan_of(&t, "hv1", true);
    let r = p.routers.values().next().unwrap();
    for a in r.routes.values() {
        let want = (!a.prefix.addr().is_ipv6()).then(|| "192.0.2.1".parse().unwrap());
        assert_eq!(a.nexthop, want, "{a:?}");
    }
    assert_eq!(p.problems.len(), 1);
    assert!(p.problems[0]
        .source
        .ends_with("dynamic-routing-v6-prefix-nexthop"));
}

#[test]
fn disabled_invalid_and_native() {
    // dynamic-routing=yes is not true: reported, nothing advertised, learned routes go.
    let t = topo(
        &[
            ("dynamic-routing", "yes"),
            ("dynamic-routing-redistribute", "connected"),
        ],
        &[],
    );
    let p = plan_of(&t, "hv1", true);
    assert!(p.routers.is_empty());
    assert!(p.learning_off.contains(&t.lr0.parse().unwrap()));
    assert_eq!(
        p.problems[0].source,
        "Logical_Router lr0 options:dynamic-routing"
    );
    // An OVN with Advertised_Route: stand aside.
    let t = topo(
        &[
            ("dynamic-routing", "true"),
            ("dynamic-routing-redistribute", "connected"),
        ],
        &[],
    );
    let (nb, sb) = t.fx.replicas(true);
    let p = plan_dynamic(&nb, Some(&sb), &me("hv1"), None);
    assert!(p.native && p.routers.is_empty());
}

#[test]
fn without_the_southbound() {
    // Location from hosting-chassis and requested-chassis; the table id needs vrf-id.
    let t = topo(
        &[
            ("dynamic-routing", "true"),
            ("dynamic-routing-redistribute", "nat"),
        ],
        &[],
    );
    let p = plan_of(&t, "hv1", false);
    assert!(p.routers.is_empty());
    assert!(
        p.problems[0].reason.contains("dynamic-routing-vrf-id"),
        "{:?}",
        p.problems
    );
    let t = topo(
        &[
            ("dynamic-routing", "true"),
            ("dynamic-routing-redistribute", "nat"),
            ("dynamic-routing-vrf-id", "1000"),
        ],
        &[],
    );
    let p = plan_of(&t, "hv1", false);
    assert_eq!(
        adv(&p),
        set_of(&[
            "172.16.0.100/32 100 nat",
            "172.16.0.1/32 100 nat",
            "172.16.0.150/32 1000 nat"
        ])
    );
    assert!(plan_of(&t, "hv2", false).routers.is_empty());
}

#[test]
fn gateway_router_advertises_untracked_vips() {
    let mut fx = Fx::default();
    let p = fx.nb(
        "Logical_Router_Port",
        json!({"name": "gw-up", "networks": set(&["198.51.100.2/24"])}),
    );
    let lb = fx.nb(
        "Load_Balancer",
        json!({"vips": kv(&[("[2001:db8::5]:80", "x"), ("198.51.100.9", "y")])}),
    );
    fx.nb(
        "Logical_Router",
        json!({"name": "gw", "ports": refs(&[p]), "load_balancer": refs(&[lb]),
               "options": kv(&[("chassis", "hv1"), ("dynamic-routing", "true"),
                               ("dynamic-routing-redistribute", "lb"), ("dynamic-routing-vrf-id", "77"),
                               ("dynamic-routing-vrf-name", "vrf-gw")])}),
    );
    let (nb, _) = fx.replicas(false);
    let p = plan_dynamic(&nb, None, &me("hv1"), None);
    assert_eq!(
        adv(&p),
        set_of(&["2001:db8::5/128 1000 lb", "198.51.100.9/32 1000 lb"])
    );
    let r = p.routers.values().next().unwrap();
    assert_eq!(
        (r.table, r.vrf.as_str(), r.bound_ports.len()),
        (77, "vrf-gw", 1)
    );
    assert!(plan_dynamic(&nb, None, &me("hv2"), None).routers.is_empty());
}

fn kroute(prefix: &str, protocol: u8, hops: &[(&str, &str)]) -> KernelRoute {
    KernelRoute {
        prefix: prefix.parse().unwrap(),
        protocol,
        nexthops: hops
            .iter()
            .map(|(g, d)| NextHop {
                gateway: (!g.is_empty()).then(|| g.parse().unwrap()),
                dev: (!d.is_empty()).then(|| d.to_string()),
            })
            .collect(),
    }
}

#[test]
fn what_is_learned() {
    let table = vec![
        kroute("203.0.113.0/24", 186, &[("172.16.0.254", "eth0")]),
        // ECMP: two next hops, two routes.
        kroute(
            "198.51.100.0/24",
            186,
            &[("172.16.0.253", "eth0"), ("172.16.0.252", "eth0")],
        ),
        kroute("192.0.2.0/24", PROTOCOL, &[("172.16.0.254", "eth0")]),
        kroute("192.0.3.0/24", 4, &[("172.16.0.254", "eth0")]),
        kroute("192.0.4.0/24", 3, &[("172.16.0.254", "eth0")]),
        kroute("169.254.1.0/24", 186, &[("172.16.0.254", "eth0")]),
        kroute("fe80::/64", 186, &[("fe80::1", "eth0")]),
        kroute("192.0.5.0/24", 186, &[("", "eth0")]),
        kroute("2001:db8:1::/48", 186, &[("fe80::1", "eth0")]),
    ];
    let learned: Vec<_> = table
        .iter()
        .filter(|r| learnable(r))
        .map(|r| r.prefix.to_string())
        .collect();
    assert_eq!(
        learned,
        ["203.0.113.0/24", "198.51.100.0/24", "2001:db8:1::/48"]
    );
    let t = topo(&[("dynamic-routing", "true")], &[]);
    let p = plan_of(&t, "hv1", true);
    let r = p.routers.values().next().unwrap();
    assert!(r.learning());
    let got = desired_learned(r, &table);
    let l = |p: &str, nh: &str| Learned {
        prefix: p.parse().unwrap(),
        nexthop: nh.parse().unwrap(),
        output_port: "lr0-pub".into(),
    };
    assert_eq!(
        got,
        BTreeSet::from([
            l("203.0.113.0/24", "172.16.0.254"),
            l("198.51.100.0/24", "172.16.0.253"),
            l("198.51.100.0/24", "172.16.0.252"),
            l("2001:db8:1::/48", "fe80::1"),
        ])
    );
    // With a port name mapped to another interface, nothing qualifies.
    let mut t = topo(&[("dynamic-routing", "true")], &[]);
    let pubrow = t.fx.nb.get_mut("Logical_Router_Port").unwrap()[&t.lr0_pub]["insert"]
        .as_object_mut()
        .unwrap()
        .clone();
    let mut row = pubrow;
    row.insert(
        "options".into(),
        kv(&[("dynamic-routing-port-name", "uplink")]),
    );
    t.fx.nb.get_mut("Logical_Router_Port").unwrap()[&t.lr0_pub] = json!({"insert": row});
    let (nb, sb) = t.fx.replicas(false);
    let p = plan_dynamic(&nb, Some(&sb), &me("hv1"), Some("uplink=eth9"));
    let r = p.routers.values().next().unwrap();
    assert_eq!(r.bound_ports[0].ifname.as_deref(), Some("eth9"));
    assert!(desired_learned(r, &table).is_empty());
    let p = plan_dynamic(&nb, Some(&sb), &me("hv1"), Some("uplink=eth0"));
    assert_eq!(
        desired_learned(p.routers.values().next().unwrap(), &table).len(),
        4
    );
    let _ = &t.lr0_priv;
}

/// Adds static routes to lr0 and returns their uuids.
fn add_statics(t: &mut Topo, rows: &[Json]) -> Vec<String> {
    let uuids: Vec<String> = rows
        .iter()
        .map(|r| t.fx.nb("Logical_Router_Static_Route", r.clone()))
        .collect();
    let lr = t.fx.nb.get_mut("Logical_Router").unwrap()[&t.lr0]["insert"]
        .as_object_mut()
        .unwrap();
    let mut all: Vec<String> = lr["static_routes"][1]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u[1].as_str().unwrap().to_string())
        .collect();
    all.extend(uuids.iter().cloned());
    lr.insert("static_routes".into(), refs(&all));
    uuids
}

fn marked(prefix: &str, nh: &str, chassis: &str) -> Json {
    json!({"ip_prefix": prefix, "nexthop": nh, "output_port": "lr0-pub",
           "external_ids": kv(&[("ovn-route:owner", "dynamic-routing"), ("ovn-route:chassis", chassis)])})
}

#[test]
fn nb_changes_touch_only_our_routes() {
    let mut t = topo(&[("dynamic-routing", "true")], &[]);
    let ids = add_statics(
        &mut t,
        &[
            // Operator's route with a prefix that is also learned: it shadows the learned one.
            json!({"ip_prefix": "203.0.113.0/24", "nexthop": "172.16.0.1"}),
            // OVN-IC's: never touched.
            json!({"ip_prefix": "10.200.0.0/16", "nexthop": "169.254.0.1",
                   "external_ids": kv(&[("ic-learned-route", "x")])}),
            // Ours from this chassis, still wanted.
            marked("198.51.100.0/24", "172.16.0.253", "hv1"),
            // Ours from this chassis, withdrawn.
            marked("100.64.0.0/10", "172.16.0.253", "hv1"),
            // Learned by hv2 when it was the gateway: replaced by ours.
            marked("198.51.100.0/24", "172.16.0.252", "hv2"),
        ],
    );
    let (nb, sb) = t.fx.replicas(false);
    let plan = plan_dynamic(&nb, Some(&sb), &me("hv1"), None);
    let r = plan.routers.values().next().unwrap();
    let table = vec![
        kroute("203.0.113.0/24", 186, &[("172.16.0.254", "eth0")]),
        kroute(
            "198.51.100.0/24",
            186,
            &[("172.16.0.253", "eth0"), ("172.16.0.252", "eth0")],
        ),
    ];
    let desired = BTreeMap::from([(r.uuid, desired_learned(r, &table))]);
    let ch = nb_changes(&nb, &plan, "hv1", &desired);
    assert_eq!(ch.len(), 1);
    let c = &ch[0];
    let u = |s: &String| s.parse::<Uuid>().unwrap();
    assert_eq!(c.delete, vec![u(&ids[3]), u(&ids[4])]);
    assert_eq!(c.add.len(), 1);
    assert_eq!(c.add[0].nexthop.to_string(), "172.16.0.252");
    assert_eq!(c.shadowed.len(), 1);
    assert_eq!(c.shadowed[0].prefix.to_string(), "203.0.113.0/24");
    assert_eq!(c.static_routes.len(), 8);

    // From hv2 (not the gateway): only hv2's own goes.
    let plan2 = plan_dynamic(&nb, Some(&sb), &me("hv2"), None);
    let ch = nb_changes(&nb, &plan2, "hv2", &BTreeMap::new());
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].delete, vec![u(&ids[4])]);
    assert!(ch[0].add.is_empty());

    // Two chassis advertise lr0 (a second gateway port, lr0-pub2, bound on hv2): hv2's routes
    // through lr0-pub2 are hv2's; one through a port lr0 no longer has is anyone's to remove.
    let mut t3 = topo(&[("dynamic-routing", "true")], &[]);
    let pub2 = t3.fx.nb(
        "Logical_Router_Port",
        json!({"name": "lr0-pub2", "networks": set(&["172.16.1.1/24"])}),
    );
    {
        let lr = t3.fx.nb.get_mut("Logical_Router").unwrap()[&t3.lr0]["insert"]
            .as_object_mut()
            .unwrap();
        let mut ports: Vec<String> = lr["ports"][1]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u[1].as_str().unwrap().to_string())
            .collect();
        ports.push(pub2);
        lr.insert("ports".into(), refs(&ports));
    }
    let through = |port: &str, chassis: &str| {
        let mut m = marked("192.0.2.0/24", "172.16.1.254", chassis);
        m["output_port"] = json!(port);
        m
    };
    let ids3 = add_statics(
        &mut t3,
        &[
            through("lr0-pub2", "hv2"),
            through("lr0-gone", "hv2"),
            through("lr0-pub", "hv2"),
        ],
    );
    let (nb, sb) = t3.fx.replicas(false);
    let plan = plan_dynamic(&nb, Some(&sb), &me("hv1"), None);
    let r = plan.routers.values().next().unwrap();
    let desired = BTreeMap::from([(r.uuid, BTreeSet::new())]);
    let ch = nb_changes(&nb, &plan, "hv1", &desired);
    assert_eq!(ch[0].delete, vec![u(&ids3[1]), u(&ids3[2])]);

    // Learning off on the router: every marked route goes, from any chassis.
    let mut t2 = topo(
        &[
            ("dynamic-routing", "true"),
            ("dynamic-routing-no-learning", "true"),
        ],
        &[],
    );
    let ids2 = add_statics(
        &mut t2,
        &[
            marked("198.51.100.0/24", "172.16.0.253", "hv1"),
            marked("100.64.0.0/10", "172.16.0.1", "hv2"),
        ],
    );
    let (nb, sb) = t2.fx.replicas(false);
    let plan = plan_dynamic(&nb, Some(&sb), &me("hv2"), None);
    let ch = nb_changes(&nb, &plan, "hv2", &BTreeMap::new());
    assert_eq!(ch[0].delete, vec![u(&ids2[0]), u(&ids2[1])]);
}

#[test]
fn merged_selection_keeps_every_column() {
    let a = crate::exposure::nb_tables();
    let m = merge_selects(a, nb_tables());
    let lr = m.iter().find(|t| t.table == "Logical_Router").unwrap();
    let cols = lr.columns.as_ref().unwrap();
    assert!(cols.contains(&"static_routes".to_string()) && cols.contains(&"enabled".to_string()));
    assert!(m.iter().any(|t| t.table == "Logical_Router_Static_Route"));
    let n = m.iter().filter(|t| t.table == "Logical_Router").count();
    assert_eq!(n, 1);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    const WORDS: [&str; 5] = ["connected", "connected-as-host", "static", "nat", "lb"];

    fn words(mask: u8) -> String {
        WORDS
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, w)| *w)
            .collect::<Vec<_>>()
            .join(",")
    }

    proptest! {
        /// For any mix of router and port options: metrics are 100 exactly for routes tracked
        /// to a port bound here, local-only never installs a remote-tracked route, link-local
        /// prefixes never appear, and the chassis without the gateway advertises nothing.
        #[test]
        fn invariants(rmask in 0u8..32, pmask in proptest::option::of(0u8..32),
                      r_local in any::<bool>(), p_local in proptest::option::of(any::<bool>())) {
            let mut ro = vec![("dynamic-routing", "true".to_string()),
                              ("dynamic-routing-redistribute", words(rmask))];
            if r_local { ro.push(("dynamic-routing-redistribute-local-only", "true".into())); }
            let mut po = vec![];
            if let Some(m) = pmask { po.push(("dynamic-routing-redistribute", words(m))); }
            if let Some(l) = p_local { po.push(("dynamic-routing-redistribute-local-only", l.to_string())); }
            let ro: Vec<(&str, &str)> = ro.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let po: Vec<(&str, &str)> = po.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let t = topo(&ro, &po);
            let (nb, sb) = t.fx.replicas(false);
            let hv1 = me("hv1");
            let topo_idx = super::super::topology::Topology::new(&nb, Some(&sb), &hv1);
            let p = plan_dynamic(&nb, Some(&sb), &me("hv1"), None);
            prop_assert!(p.problems.is_empty());
            for r in p.routers.values() {
                for a in r.routes.values() {
                    let local = a.tracked.as_deref().is_some_and(|t| topo_idx.is_local(t));
                    prop_assert_eq!(a.metric == METRIC_LOCAL, local);
                    let lo = if a.port == "lr0-priv" { p_local.unwrap_or(r_local) } else { r_local };
                    prop_assert!(!(lo && a.tracked.is_some() && !local), "{:?}", a);
                    prop_assert!(!super::super::topology::link_local(&a.prefix));
                    prop_assert_eq!(a.prefix, a.prefix.trunc());
                }
            }
            let empty = rmask == 0 && pmask.is_none_or(|m| m == 0);
            prop_assert_eq!(p.routers.values().all(|r| r.routes.is_empty()), empty || adv(&p).is_empty());
            prop_assert!(plan_dynamic(&nb, Some(&sb), &me("hv2"), None).routers.is_empty());
            let _: IpNet = "10.0.0.0/8".parse().unwrap();
        }
    }
}

/// Our own transaction's echo (marked static routes added to or removed from a router) needs
/// no new plan; anything else does.
#[test]
fn only_learned_routes_tells_our_echo_from_real_changes() {
    use super::learn::only_learned_routes;
    let t = topo(&[("dynamic-routing", "true")], &[]);
    let (mut nb, _) = t.fx.replicas(false);
    let lr0 = t.lr0.clone();
    let marked = "00000000-0000-0000-0000-000000009001";
    let foreign = "00000000-0000-0000-0000-000000009002";
    let ours = kv(&[
        ("ovn-route:owner", "dynamic-routing"),
        ("ovn-route:chassis", "hv1"),
    ]);
    let apply = |nb: &mut Replica, u: Json| nb.apply_json_updates2(&u).unwrap();

    // A learned route added to lr0.
    let cs = apply(
        &mut nb,
        json!({
            "Logical_Router_Static_Route": {marked: {"insert": {"ip_prefix": "198.51.100.0/24",
                "nexthop": "172.16.0.254", "output_port": "lr0-pub", "external_ids": ours}}},
            "Logical_Router": {lr0.as_str(): {"modify": {"static_routes": ["set", [["uuid", marked]]]}}},
        }),
    );
    assert!(only_learned_routes(&cs, &nb));
    // An operator's route added the same way.
    let cs = apply(
        &mut nb,
        json!({
            "Logical_Router_Static_Route": {foreign: {"insert": {"ip_prefix": "203.0.113.0/24",
                "nexthop": "172.16.0.254"}}},
            "Logical_Router": {lr0.as_str(): {"modify": {"static_routes": ["set", [["uuid", foreign]]]}}},
        }),
    );
    assert!(!only_learned_routes(&cs, &nb));
    // The learned route withdrawn.
    let cs = apply(
        &mut nb,
        json!({
            "Logical_Router_Static_Route": {marked: {"delete": null}},
            "Logical_Router": {lr0.as_str(): {"modify": {"static_routes": ["set", [["uuid", marked]]]}}},
        }),
    );
    assert!(only_learned_routes(&cs, &nb));
    // A router option, a NAT: plan again.
    let cs = apply(
        &mut nb,
        json!({"Logical_Router": {lr0.as_str(): {"modify": {"options": ["map", [["dynamic-routing-redistribute", "nat"]]]}}}}),
    );
    assert!(!only_learned_routes(&cs, &nb));
    let cs = apply(
        &mut nb,
        json!({"NAT": {"00000000-0000-0000-0000-000000009003": {"insert": {"type": "snat", "external_ip": "172.16.0.9"}}}}),
    );
    assert!(!only_learned_routes(&cs, &nb));
}
