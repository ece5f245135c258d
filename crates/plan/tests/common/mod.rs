//! Test schemas shared by the planner's tests.

use ovsdb::DatabaseSchema;
use serde_json::{json, Value as Json};

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

/// A minimal NB schema: only the columns the planner reads (so it also shows that columns the
/// server lacks, like `status` on OVN 23.03 when left out, read as absent).
pub fn nb_schema(with_status: bool) -> DatabaseSchema {
    let mut lrp = json!({
        "name": {"type": STR}, "mac": {"type": STR}, "networks": {"type": strs()},
        "gateway_chassis": {"type": uuids()}, "ha_chassis_group": {"type": opt("uuid")},
        "peer": {"type": opt("string")}, "options": {"type": map()},
        "external_ids": {"type": map()}, "enabled": {"type": opt("boolean")}});
    if with_status {
        lrp["status"] = json!({"type": map()});
    }
    DatabaseSchema::from_json(&json!({"name": "OVN_Northbound", "tables": {
        "Logical_Switch": {"columns": {"name": {"type": STR}, "ports": {"type": uuids()},
            "load_balancer": {"type": uuids()}, "other_config": {"type": map()}, "external_ids": {"type": map()}}},
        "Logical_Switch_Port": {"columns": {"name": {"type": STR}, "type": {"type": STR},
            "addresses": {"type": strs()}, "dynamic_addresses": {"type": opt("string")},
            "options": {"type": map()}, "external_ids": {"type": map()}, "up": {"type": opt("boolean")},
            "enabled": {"type": opt("boolean")}, "tag": {"type": opt("integer")}}},
        "Logical_Router": {"columns": {"name": {"type": STR}, "ports": {"type": uuids()},
            "nat": {"type": uuids()}, "load_balancer": {"type": uuids()},
            "load_balancer_group": {"type": uuids()}, "options": {"type": map()},
            "external_ids": {"type": map()}, "enabled": {"type": opt("boolean")}}},
        "Logical_Router_Port": {"columns": lrp},
        "NAT": {"columns": {"type": {"type": STR}, "external_ip": {"type": STR},
            "external_mac": {"type": opt("string")}, "logical_ip": {"type": STR},
            "logical_port": {"type": opt("string")}, "options": {"type": map()}, "external_ids": {"type": map()}}},
        "Load_Balancer": {"columns": {"name": {"type": STR}, "vips": {"type": map()},
            "protocol": {"type": opt("string")}, "options": {"type": map()}, "external_ids": {"type": map()}}},
        "Load_Balancer_Group": {"columns": {"name": {"type": STR}, "load_balancer": {"type": uuids()}}},
        "Gateway_Chassis": {"columns": {"name": {"type": STR}, "chassis_name": {"type": STR},
            "priority": {"type": opt("integer")}}}
    }}))
    .unwrap()
}

pub fn sb_schema() -> DatabaseSchema {
    DatabaseSchema::from_json(&json!({"name": "OVN_Southbound", "tables": {
        "Chassis": {"columns": {"name": {"type": STR}, "hostname": {"type": STR}}},
        "Port_Binding": {"columns": {"logical_port": {"type": STR}, "type": {"type": STR},
            "chassis": {"type": opt("uuid")}}}
    }}))
    .unwrap()
}

/// An OVSDB map value.
pub fn kv<V: AsRef<str>>(pairs: &[(&str, V)]) -> Json {
    json!([
        "map",
        pairs
            .iter()
            .map(|(k, v)| json!([k, v.as_ref()]))
            .collect::<Vec<_>>()
    ])
}

/// An OVSDB set of UUID references.
pub fn refs(u: &[String]) -> Json {
    json!([
        "set",
        u.iter().map(|u| json!(["uuid", u])).collect::<Vec<_>>()
    ])
}

/// An OVSDB set of strings.
pub fn set(s: &[&str]) -> Json {
    json!(["set", s])
}
