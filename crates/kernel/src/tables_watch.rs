//! Route change notifications for a changing set of tables through one socket (the dynamic
//! routing agent watches one table per logical router: a [`crate::RouteWatch`] each would make
//! the kernel copy every notification to every socket).

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_REPLACE};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::{sys::SocketAddr, MulticastGroup};

use crate::reconciler::{parse_route, route_table};
use crate::{Error, RouteChange, RouteEvent};

/// The tables a [`TablesWatch`] reports; change it at any time.
pub type WatchedTables = Arc<RwLock<BTreeSet<u32>>>;

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
        let (conn, handle, rx) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Ipv4Route,
            MulticastGroup::Ipv6Route,
        ])
        .map_err(Error::Connect)?;
        tokio::spawn(conn);
        Ok(TablesWatch {
            tables,
            rx,
            _handle: handle,
        })
    }

    /// The next change in one of the tables, with its table; `None` when the socket closed.
    pub async fn next(&mut self) -> Option<(u32, RouteEvent)> {
        loop {
            let (msg, _) = self.rx.next().await?;
            let replace = msg.header.flags & NLM_F_REPLACE != 0;
            let (change, r) = match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) if replace => {
                    (RouteChange::Replaced, r)
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => {
                    (RouteChange::Added, r)
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(r)) => {
                    (RouteChange::Deleted, r)
                }
                _ => continue,
            };
            let table = route_table(&r);
            let wanted = self.tables.read().is_ok_and(|t| t.contains(&table));
            if !wanted {
                continue;
            }
            let Some(o) = parse_route(&r, &Default::default()) else {
                continue;
            };
            return Some((
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
