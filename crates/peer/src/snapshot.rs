//! The part of the NB the planner reads, as plain values (built from a replica by
//! [`crate::read::snapshot`], or by hand in tests).

use std::collections::{BTreeMap, BTreeSet};

use ovsdb::Uuid;

use crate::model::{
    Declaration, DEFAULT_PROJECT, NETWORK_KEY, OWNER_KEY, OWNER_VALUE, PEER_KEY_PREFIX, PROJECT_KEY,
};

/// A `Logical_Router` row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Router {
    /// `name`.
    pub name: String,
    /// `external_ids` (labels and declarations live here).
    pub external_ids: BTreeMap<String, String>,
    /// `options`.
    pub options: BTreeMap<String, String>,
    /// `ports`.
    pub ports: BTreeSet<Uuid>,
    /// `static_routes`.
    pub static_routes: BTreeSet<Uuid>,
}

impl Router {
    /// The network's project ([`PROJECT_KEY`], or `default`).
    pub fn project(&self) -> &str {
        self.external_ids
            .get(PROJECT_KEY)
            .map(String::as_str)
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_PROJECT)
    }

    /// The network's short name ([`NETWORK_KEY`]), if it has one.
    pub fn short_name(&self) -> Option<&str> {
        self.external_ids
            .get(NETWORK_KEY)
            .map(String::as_str)
            .filter(|n| !n.is_empty())
    }

    /// The name users see: the short name, or the router's name.
    pub fn network_name(&self) -> &str {
        self.short_name().unwrap_or(&self.name)
    }

    /// True when `(project, network)` names this router: same project, and the router's name or
    /// its short name equals `network`.
    pub fn answers_to(&self, project: &str, network: &str) -> bool {
        self.project() == project && (self.name == network || self.short_name() == Some(network))
    }

    /// The raw declarations stored on this router: (peer name, stored value).
    pub fn raw_declarations(&self) -> impl Iterator<Item = (&str, &str)> {
        self.external_ids
            .range(PEER_KEY_PREFIX.to_string()..)
            .take_while(|(k, _)| k.starts_with(PEER_KEY_PREFIX))
            .map(|(k, v)| (&k[PEER_KEY_PREFIX.len()..], v.as_str()))
    }

    /// The declaration called `name`, parsed (`None` when absent, an error when unreadable).
    pub fn declaration(&self, name: &str) -> Option<Result<Declaration, crate::ModelError>> {
        self.external_ids
            .get(&crate::model::peer_key(name))
            .map(|v| Declaration::parse(v))
    }
}

/// A `Logical_Router_Port` row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterPort {
    /// `name`.
    pub name: String,
    /// `mac`.
    pub mac: String,
    /// `networks`, e.g. `10.0.0.1/24`.
    pub networks: Vec<String>,
    /// `peer`.
    pub peer: Option<String>,
    /// True when `gateway_chassis` is not empty or `ha_chassis_group` is set.
    pub gateway: bool,
    /// `options`.
    pub options: BTreeMap<String, String>,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
}

/// A `Logical_Router_Static_Route` row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticRoute {
    /// `ip_prefix`.
    pub ip_prefix: String,
    /// `nexthop`.
    pub nexthop: String,
    /// `output_port`.
    pub output_port: Option<String>,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
}

/// True when `external_ids` carry the peering mark.
pub fn is_marked(external_ids: &BTreeMap<String, String>) -> bool {
    external_ids.get(OWNER_KEY).map(String::as_str) == Some(OWNER_VALUE)
}

/// The NB rows the planner reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// `Logical_Router` by UUID.
    pub routers: BTreeMap<Uuid, Router>,
    /// `Logical_Router_Port` by UUID.
    pub ports: BTreeMap<Uuid, RouterPort>,
    /// `Logical_Router_Static_Route` by UUID.
    pub routes: BTreeMap<Uuid, StaticRoute>,
}

impl Snapshot {
    /// Routers that answer to `(project, network)` (see [`Router::answers_to`]).
    pub fn find_network(&self, project: &str, network: &str) -> Vec<Uuid> {
        self.routers
            .iter()
            .filter(|(_, r)| r.answers_to(project, network))
            .map(|(u, _)| *u)
            .collect()
    }
}

impl Router {
    /// Stores declaration `name` (as the NB would after our transaction).
    pub fn set_declaration(&mut self, name: &str, decl: &Declaration) {
        self.external_ids
            .insert(crate::model::peer_key(name), decl.to_json());
    }

    /// Removes declaration `name`; true when it was there.
    pub fn remove_declaration(&mut self, name: &str) -> bool {
        self.external_ids
            .remove(&crate::model::peer_key(name))
            .is_some()
    }
}
