//! Pure route types and the route diff (no I/O).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Default kernel metric of an IPv6 route added without one.
pub const IPV6_DEFAULT_METRIC: u32 = 1024;

/// An IPv4 or IPv6 network: an address with its host bits cleared and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix_len: u8,
}

/// Why a text or an address/length pair is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    /// The prefix length is larger than the address family allows.
    #[error("prefix length {prefix_len} is too long for {addr} (max {max})")]
    PrefixTooLong {
        /// The address given.
        addr: IpAddr,
        /// The prefix length given.
        prefix_len: u8,
        /// The family's maximum.
        max: u8,
    },
    /// The text is not `ADDR` or `ADDR/LEN`.
    #[error("{0:?} is not an IP network (ADDR or ADDR/LEN)")]
    Syntax(String),
}

impl IpNet {
    /// The network of `addr` with `prefix_len` bits; host bits are cleared.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, IpNetError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(IpNetError::PrefixTooLong {
                addr,
                prefix_len,
                max,
            });
        }
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = if prefix_len == 0 {
                    0
                } else {
                    u32::MAX << (32 - prefix_len)
                };
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = if prefix_len == 0 {
                    0
                } else {
                    u128::MAX << (128 - prefix_len)
                };
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Ok(IpNet { addr, prefix_len })
    }

    /// A host network (/32 or /128) for `addr`.
    pub fn host(addr: IpAddr) -> Self {
        let prefix_len = if addr.is_ipv4() { 32 } else { 128 };
        IpNet { addr, prefix_len }
    }

    /// The network address (host bits are zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// True for an IPv6 network.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || IpNetError::Syntax(s.to_string());
        match s.split_once('/') {
            None => Ok(IpNet::host(s.parse().map_err(|_| syntax())?)),
            Some((a, l)) => IpNet::new(
                a.parse().map_err(|_| syntax())?,
                l.parse().map_err(|_| syntax())?,
            ),
        }
    }
}

/// What a route does with the packets it matches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    /// Forward: through a gateway and/or out of a device.
    Unicast {
        /// The gateway, of the same family as the prefix.
        via: Option<IpAddr>,
        /// The output device by name.
        dev: Option<String>,
        /// `scope link` (IPv4 only: the kernel ignores the scope of IPv6 routes).
        scope_link: bool,
    },
    /// Drop silently.
    Blackhole,
}

/// One route of a table (the table and the protocol are those of its [`DesiredRoutes`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    /// The destination.
    pub prefix: IpNet,
    /// Unicast or blackhole.
    pub kind: RouteKind,
    /// The metric (`metric`/`priority`); `None` is the kernel default (0 for IPv4, 1024 for IPv6).
    pub metric: Option<u32>,
}

/// The identity of a route in a kernel table: the kernel keeps one route per prefix and metric
/// (and TOS/source, which ovn-route never sets), so a route with another next hop under the
/// same key is a replacement, not a second route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteKey {
    /// The destination.
    pub prefix: IpNet,
    /// The effective metric (the kernel default when none was given).
    pub metric: u32,
}

impl Route {
    /// `prefix dev DEV scope link` (how exposed IPs are routed onto a provider bridge).
    pub fn dev_link(prefix: IpNet, dev: &str) -> Self {
        Route {
            prefix,
            kind: RouteKind::Unicast {
                via: None,
                dev: Some(dev.to_string()),
                scope_link: !prefix.is_ipv6(),
            },
            metric: None,
        }
    }

    /// `prefix via GW [dev DEV]`.
    pub fn via(prefix: IpNet, gateway: IpAddr, dev: Option<&str>) -> Self {
        Route {
            prefix,
            kind: RouteKind::Unicast {
                via: Some(gateway),
                dev: dev.map(str::to_string),
                scope_link: false,
            },
            metric: None,
        }
    }

    /// `blackhole prefix`.
    pub fn blackhole(prefix: IpNet) -> Self {
        Route {
            prefix,
            kind: RouteKind::Blackhole,
            metric: None,
        }
    }

    /// The same route with the given metric.
    pub fn with_metric(mut self, metric: u32) -> Self {
        self.metric = Some(metric);
        self.normalized()
    }

    /// The kernel's identity of this route.
    pub fn key(&self) -> RouteKey {
        let default = if self.prefix.is_ipv6() {
            IPV6_DEFAULT_METRIC
        } else {
            0
        };
        RouteKey {
            prefix: self.prefix,
            metric: self.metric.unwrap_or(default),
        }
    }

    /// The canonical form, as the kernel reports it back: an explicit default metric becomes
    /// `None`, and IPv6 routes have no link scope (the kernel ignores it). Desired and observed
    /// routes are compared in this form.
    pub fn normalized(mut self) -> Self {
        let default = if self.prefix.is_ipv6() {
            IPV6_DEFAULT_METRIC
        } else {
            0
        };
        if self.metric == Some(default) {
            self.metric = None;
        }
        if self.prefix.is_ipv6() {
            if let RouteKind::Unicast { scope_link, .. } = &mut self.kind {
                *scope_link = false;
            }
        }
        self
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            RouteKind::Blackhole => write!(f, "blackhole {}", self.prefix)?,
            RouteKind::Unicast {
                via,
                dev,
                scope_link,
            } => {
                write!(f, "{}", self.prefix)?;
                if let Some(via) = via {
                    write!(f, " via {via}")?;
                }
                if let Some(dev) = dev {
                    write!(f, " dev {dev}")?;
                }
                if *scope_link {
                    write!(f, " scope link")?;
                }
            }
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        Ok(())
    }
}

/// The routes ovn-route wants in one kernel table, all marked with one protocol number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DesiredRoutes {
    /// The routing table id (any u32 but 0).
    pub table: u32,
    /// Our route protocol number (the ownership mark; ovn-route uses 201 by default, outside the range FRR flushes at start).
    pub protocol: u8,
    routes: BTreeMap<RouteKey, Route>,
}

impl DesiredRoutes {
    /// An empty desired state for `table`, marked with `protocol`.
    pub fn new(table: u32, protocol: u8) -> Self {
        DesiredRoutes {
            table,
            protocol,
            routes: BTreeMap::new(),
        }
    }

    /// Adds a route (normalized). A route with the same [`RouteKey`] is replaced and returned:
    /// the kernel cannot hold both.
    pub fn insert(&mut self, route: Route) -> Option<Route> {
        let route = route.normalized();
        self.routes.insert(route.key(), route)
    }

    /// Removes the route with this key.
    pub fn remove(&mut self, key: &RouteKey) -> Option<Route> {
        self.routes.remove(key)
    }

    /// The routes, in key order.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.values()
    }

    /// The route with this key, if wanted.
    pub fn get(&self, key: &RouteKey) -> Option<&Route> {
        self.routes.get(key)
    }

    /// The wanted route to `prefix` with the lowest metric (keyed lookup, not a scan).
    pub fn first_for(&self, prefix: &IpNet) -> Option<&Route> {
        let lo = RouteKey {
            prefix: *prefix,
            metric: 0,
        };
        self.routes
            .range(lo..)
            .next()
            .filter(|(k, _)| k.prefix == *prefix)
            .map(|(_, r)| r)
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when no route is wanted (the reconcile then deletes every route we own in the table).
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// What turns `prev` (routes applied earlier, trusted to be in the kernel) into `self`: one
    /// ordered walk over both, nothing cloned but the routes that change.
    pub fn diff_from(&self, prev: &DesiredRoutes) -> RouteDiff {
        use std::cmp::Ordering;
        let mut out = RouteDiff::default();
        let mut old = prev.routes.iter().peekable();
        let mut new = self.routes.iter().peekable();
        loop {
            match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some((_, o)), None) => {
                    out.to_delete.push((*o).clone());
                    old.next();
                }
                (None, Some((_, n))) => {
                    out.to_add.push((*n).clone());
                    new.next();
                }
                (Some((ko, o)), Some((kn, n))) => match ko.cmp(kn) {
                    Ordering::Less => {
                        out.to_delete.push((*o).clone());
                        old.next();
                    }
                    Ordering::Greater => {
                        out.to_add.push((*n).clone());
                        new.next();
                    }
                    Ordering::Equal => {
                        if o == n {
                            out.unchanged += 1;
                        } else {
                            out.to_replace.push((*n).clone());
                        }
                        old.next();
                        new.next();
                    }
                },
            }
        }
        out
    }
}

impl Extend<Route> for DesiredRoutes {
    fn extend<T: IntoIterator<Item = Route>>(&mut self, iter: T) {
        for r in iter {
            self.insert(r);
        }
    }
}

/// The difference between the desired and the observed routes of one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteDiff {
    /// Routes to create (no route of ours has their key).
    pub to_add: Vec<Route>,
    /// Routes of ours whose key stays but whose content changes: replaced in place
    /// (`NLM_F_REPLACE`), never withdrawn.
    pub to_replace: Vec<Route>,
    /// Routes of ours that are not wanted any more.
    pub to_delete: Vec<Route>,
    /// How many observed routes already match.
    pub unchanged: usize,
}

impl RouteDiff {
    /// True when nothing is to be done.
    pub fn is_empty(&self) -> bool {
        self.to_add.is_empty() && self.to_replace.is_empty() && self.to_delete.is_empty()
    }
}

/// Computes what turns `observed` (our routes in the table) into `desired`.
///
/// Observed routes are normalized first. When several observed routes share a key (which the
/// kernel allows for IPv4 aliases), the first matching one is kept and the others are deleted.
pub fn diff<'a>(
    desired: &DesiredRoutes,
    observed: impl IntoIterator<Item = &'a Route>,
) -> RouteDiff {
    diff_owned(desired, observed.into_iter().cloned().collect())
}

/// [`diff`] over routes the caller owns (no copy of them is made).
pub fn diff_owned(desired: &DesiredRoutes, observed: Vec<Route>) -> RouteDiff {
    // One sorted walk over both sides (the observed routes of a large table are many: no map
    // of them, no per-key vectors).
    let mut out = RouteDiff::default();
    let mut have: Vec<Route> = observed.into_iter().map(Route::normalized).collect();
    have.sort_by_key(Route::key); // stable: routes of one key keep their order
    let mut have = have.into_iter().peekable();
    let mut group: Vec<Route> = Vec::new();
    for (key, want) in &desired.routes {
        while let Some(h) = have.next_if(|h| h.key() < *key) {
            out.to_delete.push(h);
        }
        group.clear();
        while let Some(h) = have.next_if(|h| h.key() == *key) {
            group.push(h);
        }
        if group.is_empty() {
            out.to_add.push(want.clone());
        } else if let Some(pos) = group.iter().position(|h| h == want) {
            out.unchanged += 1;
            out.to_delete.extend(
                group
                    .drain(..)
                    .enumerate()
                    .filter(|(i, _)| *i != pos)
                    .map(|(_, h)| h),
            );
        } else {
            out.to_replace.push(want.clone());
            out.to_delete.extend(group.drain(..).skip(1));
        }
    }
    out.to_delete.extend(have);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipnet_parses_and_masks() {
        assert_eq!(net("10.1.2.3/24").to_string(), "10.1.2.0/24");
        assert_eq!(net("10.1.2.3").to_string(), "10.1.2.3/32");
        assert_eq!(net("2001:db8::1/64").to_string(), "2001:db8::/64");
        assert_eq!(net("0.0.0.0/0").prefix_len(), 0);
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("x/3".parse::<IpNet>().is_err());
    }

    #[test]
    fn normalization_drops_defaults() {
        let r = Route::dev_link(net("2001:db8::1/128"), "br-ex").with_metric(1024);
        assert_eq!(r.metric, None);
        assert!(matches!(
            r.kind,
            RouteKind::Unicast {
                scope_link: false,
                ..
            }
        ));
        let r4 = Route::dev_link(net("10.0.0.1/32"), "br-ex").with_metric(0);
        assert_eq!(r4.metric, None);
        assert_eq!(r4.key().metric, 0);
        assert_eq!(r.key().metric, 1024);
    }

    #[test]
    fn empty_diff_when_equal() {
        let mut d = DesiredRoutes::new(1000, 201);
        let a = Route::dev_link(net("10.0.0.1/32"), "br-ex");
        let b = Route::via(net("10.1.0.0/24"), ip("172.24.4.10"), Some("br-ex"));
        d.extend([a.clone(), b.clone()]);
        let diff = diff(&d, &[b, a]);
        assert!(diff.is_empty());
        assert_eq!(diff.unchanged, 2);
    }

    #[test]
    fn adds_deletes_and_replaces() {
        let mut d = DesiredRoutes::new(1000, 201);
        let keep = Route::dev_link(net("10.0.0.1/32"), "br-ex");
        let new = Route::dev_link(net("10.0.0.2/32"), "br-ex");
        let moved = Route::via(net("10.1.0.0/24"), ip("172.24.4.11"), Some("br-ex"));
        d.extend([keep.clone(), new.clone(), moved.clone()]);
        let old_moved = Route::via(net("10.1.0.0/24"), ip("172.24.4.10"), Some("br-ex"));
        let stale = Route::blackhole(net("192.0.2.0/24"));
        let diff = diff(&d, &[keep, old_moved, stale.clone()]);
        assert_eq!(diff.to_add, vec![new]);
        assert_eq!(diff.to_replace, vec![moved]);
        assert_eq!(diff.to_delete, vec![stale]);
        assert_eq!(diff.unchanged, 1);
    }

    #[test]
    fn metric_is_part_of_the_key() {
        let mut d = DesiredRoutes::new(1000, 201);
        let m10 = Route::dev_link(net("10.0.0.1/32"), "br-ex").with_metric(10);
        d.insert(m10.clone());
        let m0 = Route::dev_link(net("10.0.0.1/32"), "br-ex");
        let diff = diff(&d, std::slice::from_ref(&m0));
        assert_eq!(diff.to_add, vec![m10]);
        assert_eq!(diff.to_delete, vec![m0]);
        assert!(diff.to_replace.is_empty());
    }

    #[test]
    fn ipv6_observed_default_metric_matches() {
        let mut d = DesiredRoutes::new(1000, 201);
        d.insert(Route::dev_link(net("2001:db8::5/128"), "br-ex"));
        // As the kernel reports it: metric 1024 explicit.
        let obs = Route::dev_link(net("2001:db8::5/128"), "br-ex");
        let obs = Route {
            metric: Some(1024),
            ..obs
        };
        assert!(diff(&d, &[obs]).is_empty());
    }

    #[test]
    fn duplicate_observed_keys_keep_one() {
        let mut d = DesiredRoutes::new(1000, 201);
        let a = Route::dev_link(net("10.0.0.1/32"), "br-ex");
        d.insert(a.clone());
        let other = Route::dev_link(net("10.0.0.1/32"), "eth0");
        let diff = diff(&d, &[other.clone(), a]);
        assert_eq!(diff.unchanged, 1);
        assert_eq!(diff.to_delete, vec![other]);
    }

    #[test]
    fn empty_desired_deletes_all() {
        let d = DesiredRoutes::new(1000, 201);
        let a = Route::blackhole(net("10.0.0.0/8"));
        let diff = diff(&d, std::slice::from_ref(&a));
        assert_eq!(diff.to_delete, vec![a]);
    }

    #[test]
    fn insert_same_key_replaces() {
        let mut d = DesiredRoutes::new(1000, 201);
        assert!(d.insert(Route::blackhole(net("10.0.0.0/8"))).is_none());
        assert!(d
            .insert(Route::dev_link(net("10.0.0.0/8"), "br-ex"))
            .is_some());
        assert_eq!(d.len(), 1);
    }
}
