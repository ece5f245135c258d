//! The NB tables and columns peering monitors, and the replica -> [`Snapshot`] conversion.

use std::collections::BTreeMap;

use ovsdb::{Datum, Replica, RowRef, TableSelect};

use crate::snapshot::{Router, RouterPort, Snapshot, StaticRoute};

/// `Logical_Router` columns read.
pub const ROUTER_COLUMNS: &[&str] = &["name", "external_ids", "options", "ports", "static_routes"];
/// `Logical_Router_Port` columns read.
pub const PORT_COLUMNS: &[&str] = &[
    "name",
    "mac",
    "networks",
    "peer",
    "gateway_chassis",
    "ha_chassis_group",
    "options",
    "external_ids",
];
/// `Logical_Router_Static_Route` columns read.
pub const ROUTE_COLUMNS: &[&str] = &["ip_prefix", "nexthop", "output_port", "external_ids"];

/// The monitor selection of a peering session on the NB.
pub fn tables() -> Vec<TableSelect> {
    vec![
        TableSelect::columns("Logical_Router", ROUTER_COLUMNS),
        TableSelect::columns("Logical_Router_Port", PORT_COLUMNS),
        TableSelect::columns("Logical_Router_Static_Route", ROUTE_COLUMNS),
    ]
    .into_iter()
    .chain(crate::ic::nb_tables())
    .collect()
}

fn string(row: &RowRef<'_>, col: &str) -> String {
    row.get(col)
        .and_then(Datum::as_str)
        .unwrap_or_default()
        .to_string()
}

fn opt_string(row: &RowRef<'_>, col: &str) -> Option<String> {
    row.get(col)
        .and_then(|d| d.atoms().first())
        .and_then(|a| a.as_str())
        .map(str::to_string)
}

fn map(row: &RowRef<'_>, col: &str) -> BTreeMap<String, String> {
    row.get(col)
        .map(|d| {
            d.pairs()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn non_empty(row: &RowRef<'_>, col: &str) -> bool {
    row.get(col).is_some_and(|d| !d.is_empty())
}

/// The rows of the replica the planner reads.
pub fn snapshot(r: &Replica) -> Snapshot {
    let mut s = Snapshot::default();
    if let Some(t) = r.table("Logical_Router") {
        for row in t.iter() {
            s.routers.insert(
                row.uuid,
                Router {
                    name: string(&row, "name"),
                    external_ids: map(&row, "external_ids"),
                    options: map(&row, "options"),
                    ports: row
                        .get("ports")
                        .map(|d| d.uuids().collect())
                        .unwrap_or_default(),
                    static_routes: row
                        .get("static_routes")
                        .map(|d| d.uuids().collect())
                        .unwrap_or_default(),
                },
            );
        }
    }
    if let Some(t) = r.table("Logical_Router_Port") {
        for row in t.iter() {
            s.ports.insert(
                row.uuid,
                RouterPort {
                    name: string(&row, "name"),
                    mac: string(&row, "mac"),
                    networks: row
                        .get("networks")
                        .map(|d| d.strs().map(str::to_string).collect())
                        .unwrap_or_default(),
                    peer: opt_string(&row, "peer"),
                    gateway: non_empty(&row, "gateway_chassis")
                        || non_empty(&row, "ha_chassis_group"),
                    options: map(&row, "options"),
                    external_ids: map(&row, "external_ids"),
                },
            );
        }
    }
    if let Some(t) = r.table("Logical_Router_Static_Route") {
        for row in t.iter() {
            s.routes.insert(
                row.uuid,
                StaticRoute {
                    ip_prefix: string(&row, "ip_prefix"),
                    nexthop: string(&row, "nexthop"),
                    output_port: opt_string(&row, "output_port"),
                    external_ids: map(&row, "external_ids"),
                },
            );
        }
    }
    s
}
