//! Errors of the kernel reconciler.

use std::path::PathBuf;

use crate::reconciler::ReconcileStats;
use crate::types::IpNet;

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
    /// A link operation was refused by the kernel.
    #[error("{op} link {name}: {source}")]
    Link {
        /// get, create, set up, set master...
        op: &'static str,
        /// The link's name.
        name: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// No link has this name.
    #[error("no link named {name:?}")]
    NoSuchLink {
        /// The missing link.
        name: String,
    },
    /// The kernel has no such link type (`EOPNOTSUPP`, "Unknown device type"): not built in and
    /// no module to load.
    #[error("this kernel cannot create a {kind} device ({name}): it has no {kind} link type (not built in, module not loaded); {}", unsupported_hint(kind))]
    Unsupported {
        /// The link type (`vrf`, `dummy`, `vlan`).
        kind: &'static str,
        /// The link that was to be created.
        name: String,
    },
    /// A VRF of that name exists with another table; it is left alone.
    #[error(
        "VRF {name} exists with table {have}, not the configured table {want}; not modifying it"
    )]
    VrfTableMismatch {
        /// The VRF.
        name: String,
        /// The table asked for.
        want: u32,
        /// The VRF's table.
        have: u32,
    },
    /// A link of that name exists but is not the one asked for; it is left alone.
    #[error("link {name} exists as {have}, not as {want}; not modifying it")]
    LinkMismatch {
        /// The link.
        name: String,
        /// What was asked for (`vrf`, `dummy`, `vlan 100 on eth1`...).
        want: String,
        /// What it is.
        have: String,
    },
    /// A link name or parameter the kernel cannot take.
    #[error("link {name:?}: {reason}")]
    InvalidLink {
        /// The link.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// An address operation was refused by the kernel.
    #[error("{op} address {addr} dev {dev}: {source}")]
    Address {
        /// add or delete.
        op: &'static str,
        /// The address.
        addr: IpNet,
        /// The device.
        dev: String,
        /// The netlink error (boxed: keeps [`Error`] small).
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// A desired address the reconciler would not own (so could never delete).
    #[error("address {addr} dev {dev}: {reason}")]
    InvalidAddress {
        /// The address.
        addr: IpNet,
        /// The device.
        dev: String,
        /// Why.
        reason: &'static str,
    },
    /// A neighbour operation was refused by the kernel.
    #[error("{op} neighbour {entry} dev {dev}: {source}")]
    Neighbour {
        /// add, replace or delete.
        op: &'static str,
        /// The entry, in `ip neigh` syntax.
        entry: String,
        /// The device.
        dev: String,
        /// The netlink error (boxed: keeps [`Error`] small).
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// A neighbour entry without our protocol mark holds the IP; it is left alone.
    #[error("neighbour {entry} dev {dev}: an entry without our protocol mark holds the address ({foreign}); not replacing it")]
    ForeignNeighbour {
        /// Our entry.
        entry: String,
        /// The device.
        dev: String,
        /// The foreign entry.
        foreign: String,
    },
    /// The desired neighbours contradict each other.
    #[error("neighbours dev {dev}: {reason}")]
    InvalidNeighbours {
        /// The device.
        dev: String,
        /// Why.
        reason: String,
    },
    /// A sysctl could not be read or written.
    #[error("{op} {}: {source}", path.display())]
    Sysctl {
        /// read or write.
        op: &'static str,
        /// The file under `/proc/sys`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
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

/// What to do when the kernel lacks a link type, by type.
fn unsupported_hint(kind: &str) -> &'static str {
    match kind {
        "vrf" | "dummy" => {
            "set vrf_mode = none (no VRF device: FRR imports the table) or vrf_mode = existing \
             (the VRF and bgp_nic are created by other means)"
        }
        "vlan" => "load the 8021q module or create the VLAN device by other means",
        _ => "create the device by other means",
    }
}
