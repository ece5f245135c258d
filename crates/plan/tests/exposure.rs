//! The exposure plan, table-driven: one topology (provider network, tenant network behind a router
//! with a distributed gateway, VMs on two chassis, floating IPs, a load balancer, malformed values),
//! looked at from each chassis, with the location from the SB or from the NB only.

use std::collections::BTreeMap;

use ipnet::IpNet;
use ovn_route_plan::exposure::{plan_exposure, ExposureConfig, ExposurePlan, Kind, TenantMethod};
use ovn_route_plan::ChassisIdentity;
use ovsdb::Replica;
use serde_json::{json, Map, Value as Json};

mod common;
use common::{kv, nb_schema, refs, sb_schema, set};

/// Builds rows as `update2` inserts.
#[derive(Default)]
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
    fn lsp(
        &mut self,
        name: &str,
        ty: &str,
        addresses: &[&str],
        options: &[(&str, &str)],
    ) -> String {
        self.nb(
            "Logical_Switch_Port",
            json!({"name": name, "type": ty, "addresses": set(addresses), "options": kv(options)}),
        )
    }
}

/// The topology, with ports bound as `bindings` says (port -> chassis).
fn topology(with_status: bool) -> (Replica, Replica) {
    let mut fx = Fx::default();
    // Provider network `public` on physnet1.
    let ln = fx.lsp(
        "ln-public",
        "localnet",
        &["unknown"],
        &[("network_name", "physnet1")],
    );
    let vm_prov = fx.lsp(
        "vm-prov",
        "",
        &["00:00:00:00:01:10 172.16.0.10"],
        &[("requested-chassis", "hv1")],
    );
    let bad = fx.lsp(
        "bad",
        "",
        &["00:00:00:00:01:99 10.0.0.999"],
        &[("requested-chassis", "hv1")],
    );
    let pub_rp = fx.lsp(
        "public-lrp-pub",
        "router",
        &["router"],
        &[("router-port", "lrp-pub")],
    );
    fx.nb(
        "Logical_Switch",
        json!({"name": "public", "ports": refs(&[ln, vm_prov, bad, pub_rp])}),
    );
    // Tenant network `private`.
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
    let priv_rp = fx.lsp(
        "private-lrp-priv",
        "router",
        &["router"],
        &[("router-port", "lrp-priv")],
    );
    fx.nb(
        "Logical_Switch",
        json!({"name": "private", "ports": refs(&[vm1, vm2, priv_rp])}),
    );
    // Router lr0 with a distributed gateway port on `public`.
    let gc1 = fx.nb(
        "Gateway_Chassis",
        json!({"name": "lrp-pub-hv1", "chassis_name": "hv1", "priority": 20}),
    );
    let gc2 = fx.nb(
        "Gateway_Chassis",
        json!({"name": "lrp-pub-hv2", "chassis_name": "hv2", "priority": 10}),
    );
    let mut gw = json!({"name": "lrp-pub", "mac": "00:00:00:00:ff:02", "networks": set(&["172.16.0.1/24"]),
        "gateway_chassis": refs(&[gc1, gc2])});
    if with_status {
        gw["status"] = kv(&[("hosting-chassis", "hv1")]);
    }
    let lrp_pub = fx.nb("Logical_Router_Port", gw);
    let lrp_priv = fx.nb(
        "Logical_Router_Port",
        json!({"name": "lrp-priv", "mac": "00:00:00:00:ff:01",
        "networks": set(&["10.0.0.1/24", "fd00::1/64"])}),
    );
    let snat = fx.nb(
        "NAT",
        json!({"type": "snat", "external_ip": "172.16.0.1", "logical_ip": "10.0.0.0/24"}),
    );
    let fip_d = fx.nb(
        "NAT",
        json!({"type": "dnat_and_snat", "external_ip": "172.16.0.101", "logical_ip": "10.0.0.11",
        "logical_port": "vm1", "external_mac": "00:00:00:00:0f:01"}),
    );
    let fip_c = fx.nb(
        "NAT",
        json!({"type": "dnat_and_snat", "external_ip": "172.16.0.102", "logical_ip": "10.0.0.12"}),
    );
    let fip_bad = fx.nb(
        "NAT",
        json!({"type": "dnat_and_snat", "external_ip": "0.0.0.0", "logical_ip": "10.0.0.13"}),
    );
    let lb = fx.nb("Load_Balancer", json!({"name": "lb0",
        "vips": kv(&[("172.16.0.200:80", "10.0.0.11:8080,10.0.0.12:8080"), ("[2001:db8::200]:80", "[fd00::11]:80")])}));
    // A VIP that reaches lr0 through a load-balancer group only.
    let lb1 = fx.nb(
        "Load_Balancer",
        json!({"name": "lb1",
        "vips": kv(&[("172.16.0.201:443", "10.0.0.11:8443")])}),
    );
    let lbg = fx.nb(
        "Load_Balancer_Group",
        json!({"name": "g0", "load_balancer": refs(&[lb1])}),
    );
    fx.nb(
        "Logical_Router",
        json!({"name": "lr0", "ports": refs(&[lrp_pub, lrp_priv]),
        "nat": refs(&[snat, fip_d, fip_c, fip_bad]), "load_balancer": refs(&[lb]),
        "load_balancer_group": refs(&[lbg])}),
    );
    // Southbound: where the ports are bound.
    let hv1 = fx.sb("Chassis", json!({"name": "hv1", "hostname": "host1"}));
    let hv2 = fx.sb("Chassis", json!({"name": "hv2", "hostname": "host2"}));
    for (port, ch) in [
        ("vm-prov", &hv1),
        ("bad", &hv1),
        ("vm1", &hv1),
        ("vm2", &hv2),
        ("cr-lrp-pub", &hv1),
    ] {
        fx.sb(
            "Port_Binding",
            json!({"logical_port": port, "chassis": ["uuid", ch]}),
        );
    }
    let mut nb = Replica::for_schema(&nb_schema(with_status), None);
    nb.apply_json_updates2(&Json::Object(fx.nb)).unwrap();
    let mut sb = Replica::for_schema(&sb_schema(), None);
    sb.apply_json_updates2(&Json::Object(fx.sb)).unwrap();
    (nb, sb)
}

fn me(name: &str) -> ChassisIdentity {
    ChassisIdentity {
        system_id: name.into(),
        hostname: None,
        bridge_mappings: vec![("physnet1".into(), "br-ex".into())],
    }
}

/// The plan as `prefix -> kind`.
fn summary(p: &ExposurePlan) -> BTreeMap<String, Kind> {
    p.exposed
        .iter()
        .map(|(k, e)| (k.to_string(), e.kind))
        .collect()
}

fn expect(pairs: &[(&str, Kind)]) -> BTreeMap<String, Kind> {
    pairs.iter().map(|(p, k)| (p.to_string(), *k)).collect()
}

const HV1_DEFAULT: &[(&str, Kind)] = &[
    ("172.16.0.10/32", Kind::ProviderPort),
    ("172.16.0.1/32", Kind::GatewayIp),
    ("172.16.0.101/32", Kind::FloatingIp),
    ("172.16.0.102/32", Kind::FloatingIp),
    ("172.16.0.200/32", Kind::LoadBalancerVip),
    ("172.16.0.201/32", Kind::LoadBalancerVip),
    ("2001:db8::200/128", Kind::LoadBalancerVip),
];

#[test]
fn gateway_chassis_exposes_ports_fips_gateway_and_vips() {
    let (nb, sb) = topology(false);
    let plan = plan_exposure(&nb, Some(&sb), &me("hv1"), &ExposureConfig::default());
    assert_eq!(summary(&plan), expect(HV1_DEFAULT));
    let e = &plan.exposed[&"172.16.0.10/32".parse::<IpNet>().unwrap()];
    assert_eq!(&*e.bridge, "br-ex");
    assert_eq!(
        e.sources,
        vec![std::sync::Arc::from("Logical_Switch_Port vm-prov")]
    );
    let vip = &plan.exposed[&"172.16.0.200/32".parse::<IpNet>().unwrap()];
    assert_eq!(vip.gateway.as_ref().unwrap().mac, "00:00:00:00:ff:02");
    // Malformed values are refused, each naming its row.
    let rejected: Vec<(&str, &str)> = plan
        .rejected
        .iter()
        .map(|r| (r.value.as_str(), r.source.as_str()))
        .collect();
    assert!(
        rejected.contains(&("10.0.0.999", "Logical_Switch_Port bad")),
        "{rejected:?}"
    );
    assert!(
        rejected
            .iter()
            .any(|(v, s)| *v == "0.0.0.0/32" && s.starts_with("NAT ")),
        "{rejected:?}"
    );
}

#[test]
fn other_chassis_exposes_nothing_of_the_gateway_or_remote_ports() {
    let (nb, sb) = topology(false);
    let plan = plan_exposure(&nb, Some(&sb), &me("hv2"), &ExposureConfig::default());
    assert_eq!(summary(&plan), expect(&[]));
}

#[test]
fn distributed_fip_follows_its_port() {
    let (nb, sb) = topology(false);
    // hv3 maps the provider network but hosts nothing.
    let plan = plan_exposure(&nb, Some(&sb), &me("hv3"), &ExposureConfig::default());
    assert!(plan.exposed.is_empty());
    // A chassis without the provider network exposes nothing at all.
    let mut lonely = me("hv1");
    lonely.bridge_mappings.clear();
    assert!(
        plan_exposure(&nb, Some(&sb), &lonely, &ExposureConfig::default())
            .exposed
            .is_empty()
    );
}

#[test]
fn nb_only_location_gives_the_same_plan() {
    // Without the SB: requested-chassis for ports, status:hosting-chassis (23.09+) for gateways.
    let (nb, _) = topology(true);
    let plan = plan_exposure(&nb, None, &me("hv1"), &ExposureConfig::default());
    assert_eq!(summary(&plan), expect(HV1_DEFAULT));
    // On a schema without `status` (23.03) the gateway's location is unknown without the SB:
    // nothing that depends on it is exposed, and nothing breaks.
    let (nb, _) = topology(false);
    let plan = plan_exposure(&nb, None, &me("hv1"), &ExposureConfig::default());
    assert_eq!(
        summary(&plan),
        expect(&[
            ("172.16.0.10/32", Kind::ProviderPort),
            ("172.16.0.101/32", Kind::FloatingIp)
        ])
    );
}

#[test]
fn tenant_networks_subnet_and_host_methods() {
    let (nb, sb) = topology(false);
    let mut cfg = ExposureConfig {
        expose_tenant_networks: true,
        tenant_method: TenantMethod::Subnet,
        ..Default::default()
    };
    let plan = plan_exposure(&nb, Some(&sb), &me("hv1"), &cfg);
    let s = summary(&plan);
    assert_eq!(s.get("10.0.0.0/24"), Some(&Kind::TenantSubnet));
    let subnet = &plan.exposed[&"10.0.0.0/24".parse::<IpNet>().unwrap()];
    assert_eq!(
        subnet.gateway.as_ref().unwrap().ipv4,
        Some("172.16.0.1".parse().unwrap())
    );
    // fd00::/64 has no IPv6 gateway address to route through: refused with the reason.
    assert!(plan
        .rejected
        .iter()
        .any(|r| r.value == "fd00::1/64" && r.reason.contains("no address of this family")));

    cfg.tenant_method = TenantMethod::Host;
    let s = summary(&plan_exposure(&nb, Some(&sb), &me("hv1"), &cfg));
    assert_eq!(s.get("10.0.0.11/32"), Some(&Kind::TenantIp));
    assert_eq!(s.get("10.0.0.12/32"), Some(&Kind::TenantIp));
    assert_eq!(s.get("10.0.0.0/24"), None);

    // require_snat_disabled_for_tenant_networks: 10.0.0.0/24 is SNATed, so it is not exposed.
    cfg.require_snat_disabled_for_tenant_networks = true;
    let s = summary(&plan_exposure(&nb, Some(&sb), &me("hv1"), &cfg));
    assert_eq!(s.get("10.0.0.11/32"), None);

    // The other chassis never exposes tenant networks (the gateway is not there).
    cfg.require_snat_disabled_for_tenant_networks = false;
    assert!(plan_exposure(&nb, Some(&sb), &me("hv2"), &cfg)
        .exposed
        .is_empty());
}

#[test]
fn address_scopes_filter_tenant_subnets() {
    let (nb, sb) = topology(false);
    let cfg = ExposureConfig {
        expose_tenant_networks: true,
        tenant_method: TenantMethod::Subnet,
        address_scopes: vec!["scope-a".into()],
        ..Default::default()
    };
    // lrp-priv carries no address scope: not exposed.
    assert_eq!(
        summary(&plan_exposure(&nb, Some(&sb), &me("hv1"), &cfg)).get("10.0.0.0/24"),
        None
    );
}

#[test]
fn allowed_prefixes_limit_everything() {
    let (nb, sb) = topology(false);
    let cfg = ExposureConfig {
        allowed_prefixes: vec!["172.16.0.0/25".parse().unwrap()],
        ..Default::default()
    };
    let plan = plan_exposure(&nb, Some(&sb), &me("hv1"), &cfg);
    let s = summary(&plan);
    assert!(!s.contains_key("172.16.0.200/32") && !s.contains_key("2001:db8::200/128"));
    assert!(s.contains_key("172.16.0.10/32"));
    assert!(plan
        .rejected
        .iter()
        .any(|r| r.value == "172.16.0.200/32" && r.reason == "outside allowed_prefixes"));
}

#[test]
fn tagged_localnet_puts_its_vlan_on_every_exposure_of_the_network() {
    let mut fx = Fx::default();
    let ln = |fx: &mut Fx, sw: &str, tag: Option<i64>| {
        let mut row = json!({"name": format!("ln-{sw}"), "type": "localnet",
            "addresses": set(&["unknown"]), "options": kv(&[("network_name", "physnet1")])});
        if let Some(t) = tag {
            row["tag"] = json!(t);
        }
        fx.nb("Logical_Switch_Port", row)
    };
    for (sw, tag, ip) in [
        ("vlan100", Some(100), "172.16.100.10"),
        ("flat", None, "172.16.0.10"),
        ("tag0", Some(0), "172.16.9.10"),
    ] {
        let l = ln(&mut fx, sw, tag);
        let vm = fx.lsp(
            &format!("vm-{sw}"),
            "",
            &[&format!("00:00:00:00:01:10 {ip}")],
            &[("requested-chassis", "hv1")],
        );
        fx.nb(
            "Logical_Switch",
            json!({"name": sw, "ports": refs(&[l, vm])}),
        );
    }
    let mut nb = Replica::for_schema(&nb_schema(true), None);
    nb.apply_json_updates2(&Json::Object(fx.nb)).unwrap();
    let plan = plan_exposure(&nb, None, &me("hv1"), &ExposureConfig::default());
    let vlan = |ip: &str| plan.exposed[&ip.parse::<IpNet>().unwrap()].vlan;
    assert_eq!(vlan("172.16.100.10/32"), Some(100));
    assert_eq!(vlan("172.16.0.10/32"), None);
    // Tag 0 is OVN's "untagged".
    assert_eq!(vlan("172.16.9.10/32"), None);
}

/// A load balancer added to a router's load-balancer group reaches the plan through the
/// incremental planner (the group row is a dependency of the router's unit).
#[test]
fn load_balancer_group_change_is_planned_incrementally() {
    use ovn_route_plan::exposure::ExposurePlanner;
    let (mut nb, sb) = topology(false);
    let mut pl = ExposurePlanner::new(me("hv1"), ExposureConfig::default());
    pl.update(&nb, Some(&sb), [], []);
    assert_eq!(summary(pl.plan()), expect(HV1_DEFAULT));
    let group = nb
        .table("Load_Balancer_Group")
        .and_then(|t| t.iter().next().map(|r| r.uuid.to_string()))
        .unwrap();
    let lb2 = "00000000-0000-0000-0000-00000000a202";
    let cs = nb
        .apply_json_updates2(&json!({
            "Load_Balancer": {lb2: {"insert": {"name": "lb2",
                "vips": ["map", [["172.16.0.202:80", "10.0.0.12:80"]]]}}},
            "Load_Balancer_Group": {group.as_str(): {"modify": {"load_balancer": ["set", [["uuid", lb2]]]}}},
        }))
        .unwrap();
    pl.update(&nb, Some(&sb), [&cs], []);
    let mut want = expect(HV1_DEFAULT);
    want.insert("172.16.0.202/32".into(), Kind::LoadBalancerVip);
    assert_eq!(summary(pl.plan()), want);
}
