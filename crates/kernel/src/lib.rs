//! The kernel reconciler of ovn-route: routes and policy rules over rtnetlink.
//!
//! Level-triggered: [`Reconciler::reconcile`] takes the desired routes of one table,
//! observes the table, and applies only the difference ([`diff`]). Ownership: every route we
//! create carries our protocol number, every rule our priority (and table); nothing without
//! the mark is changed or deleted, and routes of other protocols in the same table are left
//! alone. Never flap: a route whose next hop changes is replaced in place (`NLM_F_REPLACE`),
//! and a new reconciler adopts the routes a previous run left (no withdraw and re-add).
//! [`RouteWatch`] reports changes of a table so the agent can re-reconcile when someone
//! deletes one of our routes.

#![warn(missing_docs)]

mod error;
pub mod netns;
mod reconciler;
mod rules;
mod types;
mod watch;

pub use error::Error;
pub use reconciler::{ObservedRoute, ReconcileStats, Reconciler, DEFAULT_CONCURRENCY};
pub use rules::{diff_rules, DesiredRules, Family, Rule, RuleDiff, RuleSelector};
pub use types::{
    diff, DesiredRoutes, IpNet, IpNetError, Route, RouteDiff, RouteKey, RouteKind,
    IPV6_DEFAULT_METRIC,
};
pub use watch::{RouteChange, RouteEvent, RouteWatch};

/// The route protocol number ovn-route marks its routes with by default.
pub const DEFAULT_PROTOCOL: u8 = 201;
