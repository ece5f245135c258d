//! Route change notifications for a changing set of tables through one socket (the dynamic
//! routing agent watches one table per logical router: a [`crate::RouteWatch`] each would make
//! the kernel copy every notification to every socket).

use std::collections::BTreeSet;
use std::os::fd::AsRawFd;
use std::sync::{Arc, RwLock};

use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::{sys::SocketAddr, MulticastGroup};

use crate::reconciler::{parse_route, route_table};
use crate::{Error, RouteEvent};

/// The tables a [`TablesWatch`] reports; change it at any time.
pub type WatchedTables = Arc<RwLock<BTreeSet<u32>>>;

/// The receive buffer asked for (a burst of 10,000 routes is ~1.5 MB of notifications).
const RX_BUFFER: libc::c_int = 16 << 20;

/// What a [`TablesWatch`] reports.
#[derive(Debug, Clone)]
pub enum TablesChange {
    /// A route changed in this table.
    Route(u32, RouteEvent),
    /// The socket overflowed: notifications were lost.
    Overrun,
}

/// Sets the socket's receive buffer to `size` (`SO_RCVBUFFORCE` as root, else `SO_RCVBUF`,
/// capped by `net.core.rmem_max`); best effort.
fn grow_rx_buffer(fd: std::os::fd::RawFd, size: libc::c_int) {
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let p = &size as *const libc::c_int as *const libc::c_void;
    // SAFETY: `fd` is an open socket and `p` points to a c_int of `len` bytes.
    let forced = unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, p, len) };
    if forced != 0 {
        // SAFETY: as above.
        unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, p, len) };
    }
}

/// A subscription to IPv4 and IPv6 route notifications, filtered to the tables of a shared set.
#[derive(Debug)]
pub struct TablesWatch {
    tables: WatchedTables,
    rx: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    _handle: rtnetlink::Handle,
}

impl TablesWatch {
    /// Subscribes in the current network namespace (spawns the socket task: call inside a tokio
    /// runtime); reports changes in the tables `tables` holds when they arrive.
    pub fn new(tables: WatchedTables) -> Result<Self, Error> {
        Self::subscribe(tables, None)
    }

    /// [`TablesWatch::new`] for a writer of routes of protocol `own`: the kernel drops the
    /// notifications of routes of that protocol added or replaced (the writer's own, by the
    /// ownership mark) before they are queued; their deletions still arrive. Someone else adding
    /// a route with that protocol goes unnoticed until the next full pass.
    pub fn ignoring_additions_of(tables: WatchedTables, own: u8) -> Result<Self, Error> {
        Self::subscribe(tables, Some(own))
    }

    fn subscribe(tables: WatchedTables, own: Option<u8>) -> Result<Self, Error> {
        let (conn, handle, rx) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Ipv4Route,
            MulticastGroup::Ipv6Route,
        ])
        .map_err(Error::Connect)?;
        let mut conn = conn;
        let fd = conn.socket_mut().as_raw_fd();
        grow_rx_buffer(fd, RX_BUFFER);
        if let Some(p) = own {
            if let Err(e) = crate::filter::attach(fd, &crate::filter::drop_new_routes_of(p)) {
                tracing::warn!(error = %e, "route notifications unfiltered");
            }
        }
        tokio::spawn(conn);
        Ok(TablesWatch {
            tables,
            rx,
            _handle: handle,
        })
    }

    /// The next change in one of the tables, with its table; `None` when the socket closed.
    /// Lost notifications (socket overrun) are skipped: see [`TablesWatch::next_change`].
    pub async fn next(&mut self) -> Option<(u32, RouteEvent)> {
        loop {
            if let TablesChange::Route(t, ev) = self.next_change().await? {
                return Some((t, ev));
            }
        }
    }

    /// The next change in one of the tables, or [`TablesChange::Overrun`] when the kernel
    /// dropped notifications (the tables must be read again); `None` when the socket closed.
    pub async fn next_change(&mut self) -> Option<TablesChange> {
        loop {
            let (msg, _) = self.rx.next().await?;
            if let NetlinkPayload::Overrun(_) = msg.payload {
                return Some(TablesChange::Overrun);
            }
            let Some((change, r)) = crate::watch::route_change(msg) else {
                continue;
            };
            let table = route_table(&r);
            let wanted = self.tables.read().is_ok_and(|t| t.contains(&table));
            if !wanted {
                continue;
            }
            let Some(o) = parse_route(&r, &Default::default()) else {
                continue;
            };
            return Some(TablesChange::Route(
                table,
                RouteEvent {
                    change,
                    key: o.key,
                    route: o.route,
                    protocol: o.protocol,
                },
            ));
        }
    }
}
