//! Errors of the kernel reconciler.

use crate::reconciler::ReconcileStats;

/// An error of the kernel reconciler; each names the object and the netlink error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The netlink socket could not be opened.
    #[error("cannot open the rtnetlink socket: {0}")]
    Connect(#[source] std::io::Error),
    /// A dump request failed.
    #[error("cannot dump {what} over rtnetlink: {source}")]
    Dump {
        /// What was dumped (links, routes, rules).
        what: &'static str,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// A route operation was refused by the kernel.
    #[error("{op} route {route} table {table}: {source}")]
    Route {
        /// add, replace or delete.
        op: &'static str,
        /// The route, in `ip route` syntax.
        route: String,
        /// The table.
        table: u32,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// A rule operation was refused by the kernel.
    #[error("{op} rule {rule}: {source}")]
    Rule {
        /// add or delete.
        op: &'static str,
        /// The rule, in `ip rule` syntax.
        rule: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// A route names a device that does not exist.
    #[error("route {route}: no device named {dev:?}")]
    UnknownDevice {
        /// The route.
        route: String,
        /// The missing device.
        dev: String,
    },
    /// A route cannot be expressed.
    #[error("route {route}: {reason}")]
    InvalidRoute {
        /// The route.
        route: String,
        /// Why.
        reason: &'static str,
    },
    /// Replacing our route would touch a route of another protocol with the same key.
    #[error("route {route} table {table}: a route of another protocol has the same prefix and metric; not replacing")]
    ForeignConflict {
        /// The route.
        route: String,
        /// The table.
        table: u32,
    },
    /// Some operations of an apply failed (the others were done).
    #[error("{} operation(s) failed (done: {stats:?}); first: {}", errors.len(), errors.first().map(|e| e.to_string()).unwrap_or_default())]
    Apply {
        /// What succeeded.
        stats: ReconcileStats,
        /// Every failure.
        errors: Vec<Error>,
    },
}
