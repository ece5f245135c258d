//! Route change notifications for one table.
//!
//! ```no_run
//! # async fn run(rec: ovn_route_kernel::Reconciler, desired: ovn_route_kernel::DesiredRoutes)
//! # -> Result<(), ovn_route_kernel::Error> {
//! let mut watch = ovn_route_kernel::RouteWatch::new(desired.table)?;
//! rec.reconcile(&desired).await?;
//! while let Some(ev) = watch.next().await {
//!     // Someone (maybe we) changed the table: drain what is queued, then re-reconcile.
//!     // A reconcile that finds nothing to do makes no change, so this cannot loop.
//!     if ev.protocol == desired.protocol || ev.change == ovn_route_kernel::RouteChange::Deleted {
//!         while watch.try_next().is_some() {}
//!         rec.reconcile(&desired).await?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Subscribe before the first reconcile so that no change is missed in between. If the
//! notification socket overflows the kernel drops messages; the agent's periodic reconcile
//! (level-triggered) repairs whatever was missed.

use std::collections::HashMap;

use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_REPLACE};
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::{sys::SocketAddr, MulticastGroup};

use crate::reconciler::{parse_route, route_table};
use crate::types::{Route, RouteKey};
use crate::Error;

/// What happened to a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteChange {
    /// Created (`RTM_NEWROUTE` without `NLM_F_REPLACE`).
    Added,
    /// Replaced in place (`RTM_NEWROUTE` with `NLM_F_REPLACE`).
    Replaced,
    /// Removed (`RTM_DELROUTE`), by anyone, or with its device.
    Deleted,
}

/// One change of a route in the watched table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEvent {
    /// Added, replaced or deleted.
    pub change: RouteChange,
    /// The route's key.
    pub key: RouteKey,
    /// The route when ovn-route can model it (devices are named `if<index>`: notifications
    /// carry only the index).
    pub route: Option<Route>,
    /// The route's protocol number (ours or someone else's).
    pub protocol: u8,
}

/// What a route notification says: the change and the route; `None` for other messages.
pub(crate) fn route_change(
    msg: NetlinkMessage<RouteNetlinkMessage>,
) -> Option<(RouteChange, RouteMessage)> {
    let replace = msg.header.flags & NLM_F_REPLACE != 0;
    match msg.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) if replace => {
            Some((RouteChange::Replaced, r))
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => {
            Some((RouteChange::Added, r))
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(r)) => {
            Some((RouteChange::Deleted, r))
        }
        _ => None,
    }
}

/// A subscription to IPv4 and IPv6 route notifications, filtered to one table.
#[derive(Debug)]
pub struct RouteWatch {
    table: u32,
    rx: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    _handle: rtnetlink::Handle,
    names: HashMap<u32, String>,
}

impl RouteWatch {
    /// Subscribes to `RTNLGRP_IPV4_ROUTE` and `RTNLGRP_IPV6_ROUTE` in the current network
    /// namespace (spawns the socket task: call inside a tokio runtime).
    pub fn new(table: u32) -> Result<Self, Error> {
        let (mut conn, handle, rx) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Ipv4Route,
            MulticastGroup::Ipv6Route,
        ])
        .map_err(Error::Connect)?;
        // The kernel drops other tables' notifications (see [`crate::filter`]).
        let fd = std::os::fd::AsRawFd::as_raw_fd(conn.socket_mut());
        if let Err(e) = crate::filter::attach(fd, &crate::filter::only_table(table)) {
            tracing::warn!(table, error = %e, "route notifications unfiltered");
        }
        tokio::spawn(conn);
        Ok(RouteWatch {
            table,
            rx,
            _handle: handle,
            names: HashMap::new(),
        })
    }

    fn convert(&self, msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<RouteEvent> {
        let (change, r) = route_change(msg)?;
        if route_table(&r) != self.table {
            return None;
        }
        let o = parse_route(&r, &self.names)?;
        Some(RouteEvent {
            change,
            key: o.key,
            route: o.route,
            protocol: o.protocol,
        })
    }

    /// The next change in the table; `None` when the socket closed.
    pub async fn next(&mut self) -> Option<RouteEvent> {
        loop {
            let (msg, _) = self.rx.next().await?;
            if let Some(ev) = self.convert(msg) {
                return Some(ev);
            }
        }
    }

    /// A change already received, without waiting (to drain a burst before reconciling).
    pub fn try_next(&mut self) -> Option<RouteEvent> {
        while let Ok((msg, _)) = self.rx.try_recv() {
            if let Some(ev) = self.convert(msg) {
                return Some(ev);
            }
        }
        None
    }
}
