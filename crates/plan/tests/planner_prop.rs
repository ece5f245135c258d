//! The incremental planner gives exactly the plan a full computation gives, after any sequence of
//! database changes: random small topologies (provider and tenant switches, VMs with good, bad and
//! duplicate addresses, routers with distributed gateways, gateway routers, floating IPs, load
//! balancers), then random single-parameter mutations applied as `update2` diffs, with and without
//! a Southbound database, under several configurations.

use std::collections::BTreeMap;

use ovn_route_plan::exposure::{plan_exposure, ExposureConfig, ExposurePlanner, TenantMethod};
use ovn_route_plan::ChassisIdentity;
use ovsdb::{ChangeSet, Replica};
use proptest::prelude::*;
use serde_json::{json, Map, Value as Json};

mod common;
use common::{kv, nb_schema, refs, sb_schema, set as strs};

const SWITCHES: usize = 5; // 0, 1: provider candidates; 2..5: tenant
const VMS: usize = 8;
const ROUTERS: usize = 3;
// Parameter layout.
const P_SW: usize = 0; // SWITCHES: exists
const P_LN: usize = P_SW + SWITCHES; // 2: localnet on switch 0/1: none, physnet1, physnet2
const P_VM: usize = P_LN + 2; // VMS x 4: switch, address, chassis, type
const P_LR: usize = P_VM + VMS * 4; // ROUTERS x 10
const LR_W: usize = 10;
const PARAMS: usize = P_LR + ROUTERS * LR_W;

const ADDRS: &[&str] = &[
    "00:00:00:00:00:01 172.16.0.10",
    "00:00:00:00:00:02 172.16.0.11 fd00::11",
    "00:00:00:00:00:03 10.0.1.5",
    "00:00:00:00:00:04 172.16.0.10",
    "00:00:00:00:00:05 10.0.1.999",
    "router",
    "00:00:00:00:00:06 2001:db8::6",
    "00:00:00:00:00:07 10.0.2.7",
];
const EXT_IPS: &[&str] = &[
    "172.16.0.100",
    "172.16.0.10",
    "0.0.0.0",
    "172.16.0.101",
    "bad",
];
const CHASSIS: &[&str] = &["hv1", "hv2", ""];

fn uuid(kind: u32, i: usize) -> String {
    format!("{kind:08x}-0000-0000-0000-{i:012}")
}
fn opt_str(s: Option<String>) -> Json {
    json!(["set", s.into_iter().collect::<Vec<_>>()])
}

type World = BTreeMap<String, BTreeMap<String, Json>>;

/// The databases a parameter vector describes (uuids are stable per object).
fn world(p: &[u8]) -> (World, World) {
    let mut nb: World = BTreeMap::new();
    let mut sb: World = BTreeMap::new();
    let put = |db: &mut World, t: &str, u: String, row: Json| {
        db.entry(t.to_string()).or_default().insert(u, row);
    };
    let mut ports: Vec<Vec<String>> = vec![vec![]; SWITCHES];
    let chassis = |v: u8| CHASSIS[v as usize % 3];
    for s in 0..2 {
        let net = match p[P_LN + s] % 3 {
            0 => continue,
            1 => "physnet1",
            _ => "physnet2",
        };
        let u = uuid(1, s);
        put(
            &mut nb,
            "Logical_Switch_Port",
            u.clone(),
            // physnet2's localnet is tagged: every exposure on it carries the VLAN.
            json!({"name": format!("ln{s}"), "type": "localnet",
            "addresses": strs(&["unknown"]), "options": kv(&[("network_name", net.to_string())]),
            "tag": if net == "physnet2" { json!(100) } else { json!(["set", []]) }}),
        );
        ports[s].push(u);
    }
    for v in 0..VMS {
        let q = &p[P_VM + v * 4..P_VM + v * 4 + 4];
        let sw = q[0] as usize % (SWITCHES + 1);
        if sw == SWITCHES {
            continue;
        }
        let ch = chassis(q[2]);
        let name = format!("vm{v}");
        let mut opts = vec![];
        if !ch.is_empty() {
            opts.push(("requested-chassis", ch.to_string()));
        }
        let ty = if q[3] % 4 == 2 { "virtual" } else { "" };
        if ty == "virtual" {
            opts.push(("virtual-ip", format!("172.16.0.{}", 50 + v)));
        }
        let enabled = if q[3] % 4 == 3 { vec![false] } else { vec![] };
        let u = uuid(2, v);
        put(
            &mut nb,
            "Logical_Switch_Port",
            u.clone(),
            json!({"name": name, "type": ty,
            "addresses": strs(&[ADDRS[q[1] as usize % ADDRS.len()]]), "options": kv(&opts),
            "enabled": json!(["set", enabled])}),
        );
        ports[sw].push(u);
        if !ch.is_empty() {
            put(
                &mut sb,
                "Port_Binding",
                uuid(3, v),
                json!({"logical_port": format!("vm{v}"),
                "chassis": ["set", [["uuid", uuid(4, if ch == "hv1" { 1 } else { 2 })]]]}),
            );
        }
    }
    for r in 0..ROUTERS {
        let q = &p[P_LR + r * LR_W..P_LR + (r + 1) * LR_W];
        if q[0].is_multiple_of(4) {
            continue;
        }
        let mut lr_ports = vec![];
        let mut lr_opts = vec![];
        // Gateway port: on switch 0, 1 or 2 (tenant), or none.
        let gw_sw = q[1] as usize % 4;
        if gw_sw < 3 {
            let gw = format!("lrp-gw{r}");
            let mut row = json!({"name": gw, "mac": format!("00:00:00:00:ff:{r:02}"),
                "networks": strs(&[&format!("172.16.0.{}/24", 1 + r), &format!("2001:db8:{r}::1/64")]),
                "gateway_chassis": ["set", []], "options": kv::<&str>(&[])});
            match q[2] % 3 {
                0 => row["gateway_chassis"] = refs(&[uuid(5, r)]),
                1 => lr_opts.push(("chassis", "hv1".to_string())),
                _ => {}
            }
            let host = chassis(q[3]);
            row["status"] = if host.is_empty() {
                kv::<&str>(&[])
            } else {
                kv(&[("hosting-chassis", host.to_string())])
            };
            put(&mut nb, "Logical_Router_Port", uuid(6, r), row);
            lr_ports.push(uuid(6, r));
            let rp = uuid(7, r);
            put(
                &mut nb,
                "Logical_Switch_Port",
                rp.clone(),
                json!({"name": format!("rp-gw{r}"), "type": "router",
                "addresses": strs(&["router"]), "options": kv(&[("router-port", gw.clone())])}),
            );
            ports[gw_sw].push(rp);
            if !host.is_empty() {
                put(
                    &mut sb,
                    "Port_Binding",
                    uuid(8, r),
                    json!({"logical_port": format!("cr-{gw}"),
                    "chassis": ["set", [["uuid", uuid(4, if host == "hv1" { 1 } else { 2 })]]]}),
                );
            }
        }
        // Internal port on a tenant switch 2..5, or none.
        let in_sw = 2 + q[4] as usize % 4;
        if in_sw < SWITCHES {
            let name = format!("lrp-in{r}");
            put(
                &mut nb,
                "Logical_Router_Port",
                uuid(9, r),
                json!({"name": name,
                "mac": format!("00:00:00:00:ee:{r:02}"),
                "networks": strs(&[&format!("10.0.{}.1/24", r + 1), &format!("fd00:{r}::1/64")])}),
            );
            lr_ports.push(uuid(9, r));
            let rp = uuid(10, r);
            put(
                &mut nb,
                "Logical_Switch_Port",
                rp.clone(),
                json!({"name": format!("rp-in{r}"), "type": "router",
                "addresses": strs(&["router"]), "options": kv(&[("router-port", name)])}),
            );
            ports[in_sw].push(rp);
        }
        let mut nats = vec![];
        for n in 0..2 {
            let (mode, ip) = (q[5 + 2 * n] % 4, q[6 + 2 * n]);
            let ext = EXT_IPS[ip as usize % EXT_IPS.len()];
            let vm = ip as usize % VMS;
            let row = match mode {
                0 => continue,
                1 => json!({"type": "dnat_and_snat", "external_ip": ext, "logical_ip": "10.0.1.5",
                    "logical_port": opt_str(None), "external_mac": opt_str(None)}),
                2 => json!({"type": "dnat_and_snat", "external_ip": ext, "logical_ip": "10.0.1.5",
                    "logical_port": opt_str(Some(format!("vm{vm}"))),
                    "external_mac": opt_str(Some("00:00:00:00:0f:01".to_string()))}),
                _ => {
                    json!({"type": "snat", "external_ip": ext, "logical_ip": format!("10.0.{}.0/24", r + 1),
                    "logical_port": opt_str(None), "external_mac": opt_str(None)})
                }
            };
            let u = uuid(11, r * 2 + n);
            put(&mut nb, "NAT", u.clone(), row);
            nats.push(u);
        }
        let mut lbs = vec![];
        if !q[9].is_multiple_of(3) {
            let vips = if q[9] % 3 == 1 {
                kv(&[("172.16.0.200:80", "10.0.1.5:80".to_string())])
            } else {
                kv(&[("[2001:db8::200]:80", "[fd00::11]:80".to_string())])
            };
            let u = uuid(12, r);
            put(
                &mut nb,
                "Load_Balancer",
                u.clone(),
                json!({"name": format!("lb{r}"), "vips": vips,
                "external_ids": kv(&[("neutron:vip_fip", "172.16.0.201".to_string())])}),
            );
            lbs.push(u);
        }
        put(
            &mut nb,
            "Logical_Router",
            uuid(13, r),
            json!({"name": format!("lr{r}"),
            "ports": refs(&lr_ports), "nat": refs(&nats), "load_balancer": refs(&lbs),
            "options": kv(&lr_opts)}),
        );
    }
    for (s, ports) in ports.iter().enumerate() {
        if !p[P_SW + s].is_multiple_of(4) || !ports.is_empty() {
            put(
                &mut nb,
                "Logical_Switch",
                uuid(14, s),
                json!({"name": format!("ls{s}"), "ports": refs(ports)}),
            );
        }
    }
    for (i, name) in ["hv1", "hv2"].iter().enumerate() {
        put(
            &mut sb,
            "Chassis",
            uuid(4, i + 1),
            json!({"name": name, "hostname": format!("host{}", i + 1)}),
        );
    }
    (nb, sb)
}

/// An `update2` modify diff of one column value.
fn diff(old: &Json, new: &Json) -> Option<Json> {
    if old == new {
        return None;
    }
    let items = |v: &Json| -> Vec<Json> { v[1].as_array().cloned().unwrap_or_default() };
    match (
        old.get(0).and_then(Json::as_str),
        new.get(0).and_then(Json::as_str),
    ) {
        (Some("set"), Some("set")) => {
            let (o, n) = (items(old), items(new));
            let mut d: Vec<Json> = o.iter().filter(|x| !n.contains(x)).cloned().collect();
            d.extend(n.iter().filter(|x| !o.contains(x)).cloned());
            Some(json!(["set", d]))
        }
        (Some("map"), Some("map")) => {
            let (o, n) = (items(old), items(new));
            let key = |p: &Json| p[0].clone();
            let mut d = vec![];
            for pair in &o {
                match n.iter().find(|q| key(q) == key(pair)) {
                    None => d.push(pair.clone()),
                    Some(q) if q != pair => d.push(q.clone()),
                    _ => {}
                }
            }
            for pair in &n {
                if !o.iter().any(|q| key(q) == key(pair)) {
                    d.push(pair.clone());
                }
            }
            Some(json!(["map", d]))
        }
        _ => Some(new.clone()),
    }
}

/// The `update2` message that turns database `old` into `new`.
fn update2(old: &World, new: &World) -> Json {
    let mut out = Map::new();
    let tables: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let empty = BTreeMap::new();
    for t in tables {
        let (o, n) = (old.get(t).unwrap_or(&empty), new.get(t).unwrap_or(&empty));
        let mut rows = Map::new();
        for (u, row) in n {
            match o.get(u) {
                None => {
                    rows.insert(u.clone(), json!({"insert": row}));
                }
                Some(prev) => {
                    let mut m = Map::new();
                    let cols: std::collections::BTreeSet<&String> = prev
                        .as_object()
                        .unwrap()
                        .keys()
                        .chain(row.as_object().unwrap().keys())
                        .collect();
                    for c in cols {
                        let (a, b) = (&prev[c.as_str()], &row[c.as_str()]);
                        let a = if a.is_null() {
                            default_like(b)
                        } else {
                            a.clone()
                        };
                        let b = if b.is_null() {
                            default_like(&a)
                        } else {
                            b.clone()
                        };
                        if let Some(d) = diff(&a, &b) {
                            m.insert(c.clone(), d);
                        }
                    }
                    if !m.is_empty() {
                        rows.insert(u.clone(), json!({"modify": m}));
                    }
                }
            }
        }
        for u in o.keys().filter(|u| !n.contains_key(*u)) {
            rows.insert(u.clone(), json!({"delete": null}));
        }
        if !rows.is_empty() {
            out.insert(t.clone(), Json::Object(rows));
        }
    }
    Json::Object(out)
}

/// The default value of a column shaped like `v` (a column one row sets and another omits).
fn default_like(v: &Json) -> Json {
    match v.get(0).and_then(Json::as_str) {
        Some("set") => json!(["set", []]),
        Some("map") => json!(["map", []]),
        _ => json!(""),
    }
}

fn me() -> ChassisIdentity {
    ChassisIdentity {
        system_id: "hv1".to_string(),
        hostname: Some("host1".to_string()),
        bridge_mappings: vec![("physnet1".to_string(), "br-ex".to_string())],
    }
}

fn configs() -> Vec<ExposureConfig> {
    vec![
        ExposureConfig::default(),
        ExposureConfig {
            expose_tenant_networks: true,
            tenant_method: TenantMethod::Host,
            ..Default::default()
        },
        ExposureConfig {
            expose_tenant_networks: true,
            tenant_method: TenantMethod::Subnet,
            require_snat_disabled_for_tenant_networks: true,
            ..Default::default()
        },
        ExposureConfig {
            expose_ipv6_gua_tenant_networks: true,
            allowed_prefixes: vec![
                "172.16.0.0/24".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
            ..Default::default()
        },
    ]
}

fn apply(r: &mut Replica, msg: &Json) -> ChangeSet {
    r.apply_json_updates2(msg).expect("a valid update2")
}

fn check(params: Vec<u8>, steps: Vec<(usize, u8)>) -> Result<(), TestCaseError> {
    let cfgs = configs();
    let mut nb = Replica::for_schema(&nb_schema(true), None);
    let mut sb = Replica::for_schema(&sb_schema(), None);
    let mut p = params;
    let (mut w_nb, mut w_sb) = world(&p);
    apply(&mut nb, &update2(&BTreeMap::new(), &w_nb));
    apply(&mut sb, &update2(&BTreeMap::new(), &w_sb));
    // (with SB?, config) -> planner
    let mut planners: Vec<(bool, usize, ExposurePlanner)> = vec![];
    for with_sb in [true, false] {
        for (i, c) in cfgs.iter().enumerate() {
            let mut pl = ExposurePlanner::new(me(), c.clone());
            pl.update(&nb, with_sb.then_some(&sb), [], []);
            planners.push((with_sb, i, pl));
        }
    }
    for (step, (i, v)) in steps.into_iter().enumerate() {
        p[i % PARAMS] = v;
        let (n_nb, n_sb) = world(&p);
        let cs_nb = apply(&mut nb, &update2(&w_nb, &n_nb));
        let cs_sb = apply(&mut sb, &update2(&w_sb, &n_sb));
        (w_nb, w_sb) = (n_nb, n_sb);
        for (with_sb, c, pl) in planners.iter_mut() {
            let sbr = with_sb.then_some(&sb);
            let sb_changes = if *with_sb { vec![&cs_sb] } else { vec![] };
            let before = pl.plan().clone();
            let delta = pl.update(&nb, sbr, [&cs_nb], sb_changes);
            let fresh = plan_exposure(&nb, sbr, &me(), &cfgs[*c]);
            prop_assert_eq!(
                pl.plan(),
                &fresh,
                "step {} (param {} = {}), with SB: {}, config {}",
                step,
                i % PARAMS,
                v,
                with_sb,
                c
            );
            // The delta names exactly the prefixes whose entry differs.
            for (k, e) in fresh.exposed.iter() {
                if before.exposed.get(k) != Some(e) {
                    prop_assert!(delta.changed.contains(k), "{} missing from the delta", k);
                }
            }
            for k in before.exposed.keys() {
                if !fresh.exposed.contains_key(k) {
                    prop_assert!(delta.changed.contains(k), "{} missing from the delta", k);
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn incremental_plan_equals_full_plan(
        params in prop::collection::vec(any::<u8>(), PARAMS),
        steps in prop::collection::vec((0..PARAMS, any::<u8>()), 1..30),
    ) {
        check(params, steps)?;
    }
}
