//! The kernel side of ovn-route over rtnetlink: routes and policy rules, plus the links,
//! addresses, neighbour entries and sysctls the agent owns.
//!
//! Level-triggered: [`Reconciler::reconcile`] takes the desired routes of one table,
//! observes the table, and applies only the difference ([`diff`]). Ownership: every route we
//! create carries our protocol number, every rule our priority (and table); nothing without
//! the mark is changed or deleted, and routes of other protocols in the same table are left
//! alone. Never flap: a route whose next hop changes is replaced in place (`NLM_F_REPLACE`),
//! and a new reconciler adopts the routes a previous run left (no withdraw and re-add).
//! [`RouteWatch`] reports changes of a table so the agent can re-reconcile when someone
//! deletes one of our routes.
//!
//! The other kernel state the agent owns, in the same style (on [`Reconciler`], one handle):
//! - links: [`Reconciler::link`] looks a device up ([`Link`]); `ensure_vrf`, `ensure_dummy`,
//!   `ensure_vlan`, `set_up` create what is missing and never modify a device that differs
//!   ([`Error::Unsupported`] when the kernel lacks the link type).
//! - addresses: [`Reconciler::reconcile_addresses`] keeps the global host addresses (/32,
//!   /128) of one device (`bgp_nic`) equal to a [`DesiredAddresses`]; other addresses stay.
//! - neighbours: [`Reconciler::reconcile_neighbours`] keeps the permanent and proxy entries
//!   marked with our protocol (`NDA_PROTOCOL`) on one device equal to a [`DesiredNeighbours`].
//! - sysctls: [`set_proxy_arp`], [`set_proxy_ndp`], [`set_ipv4_forwarding`],
//!   [`set_ipv6_forwarding`] ([`Sysctl`]) write `/proc/sys` of the calling thread's namespace.

#![warn(missing_docs)]

mod addresses;
mod bulk;
mod error;
mod filter;
mod links;
mod neighbours;
pub mod netns;
mod nexthops;
mod reconciler;
mod rules;
mod sysctl;
mod tables_watch;
mod types;
mod vxlan;
mod watch;

pub use addresses::{diff_addresses, is_owned_address, AddressDiff, DesiredAddresses};
pub use error::Error;
pub use links::{format_mac, vlan_name, Link, MAX_LINK_NAME};
pub use neighbours::{
    diff_neighbours, DesiredNeighbours, Neighbour, NeighbourDiff, ObservedNeighbour,
};
pub use nexthops::{TableNextHop, TableRoute};
pub use reconciler::{ObservedRoute, ReconcileStats, Reconciler, TableDiff, DEFAULT_CONCURRENCY};
pub use rules::{diff_rules, DesiredRules, Family, Rule, RuleDiff, RuleSelector};
pub use sysctl::{set_ipv4_forwarding, set_ipv6_forwarding, set_proxy_arp, set_proxy_ndp, Sysctl};
pub use tables_watch::{TablesChange, TablesWatch, WatchedTables};
pub use types::{
    diff, diff_owned, DesiredRoutes, IpNet, IpNetError, Route, RouteDiff, RouteKey, RouteKind,
    IPV6_DEFAULT_METRIC,
};
pub use vxlan::{L3Vni, L3VniOutcome, VxlanLink, MAX_VNI};
pub use watch::{RouteChange, RouteEvent, RouteWatch};

/// The route protocol number ovn-route marks its routes with by default.
pub const DEFAULT_PROTOCOL: u8 = 201;
