//! The rtnetlink side: observe, apply and reconcile routes and rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use futures::stream::{self, StreamExt};
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::Handle;

use crate::bulk::BulkSocket;
use crate::rules::{diff_rules, DesiredRules, Family, Rule, RuleDiff, RuleSelector};
use crate::types::{diff_owned, DesiredRoutes, IpNet, Route, RouteDiff, RouteKey, RouteKind};
use crate::Error;

/// How many requests are in flight at once while applying (each waits for its own ack).
pub const DEFAULT_CONCURRENCY: usize = 256;

/// What one reconcile did, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileStats {
    /// Routes (or rules) created.
    pub added: usize,
    /// Routes replaced in place (next hop, device, scope or type changed).
    pub replaced: usize,
    /// Routes (or rules) of ours deleted.
    pub deleted: usize,
    /// Routes (or rules) that already matched.
    pub unchanged: usize,
}

impl ReconcileStats {
    /// True when the reconcile changed nothing.
    pub fn is_noop(&self) -> bool {
        self.added == 0 && self.replaced == 0 && self.deleted == 0
    }
}

/// A route found in a table, with the protocol that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedRoute {
    /// The route (normalized); `None` when it is of a kind ovn-route does not model
    /// (multipath, unreachable, local...).
    pub route: Option<Route>,
    /// Its key (prefix and effective metric).
    pub key: RouteKey,
    /// Its protocol number.
    pub protocol: u8,
}

/// One table's diff for [`Reconciler::apply_many`].
#[derive(Debug, Clone, Copy)]
pub struct TableDiff<'a> {
    /// The table.
    pub table: u32,
    /// The protocol of the routes written.
    pub protocol: u8,
    /// What to change.
    pub plan: &'a RouteDiff,
    /// Keys held by routes of other protocols in the table (see [`Reconciler::apply`]).
    pub foreign: &'a BTreeSet<RouteKey>,
}

/// The kernel reconciler: one rtnetlink connection, used for any number of tables.
///
/// Create it inside a tokio runtime: [`Reconciler::new`] spawns the connection task.
#[derive(Debug, Clone)]
pub struct Reconciler {
    handle: Handle,
    concurrency: usize,
    /// Route changes in batches (see [`crate::bulk`]); `None` where it could not be opened.
    bulk: Option<BulkSocket>,
}

pub(crate) type Msg = NetlinkMessage<RouteNetlinkMessage>;

impl Reconciler {
    /// Opens a NETLINK_ROUTE socket in the current network namespace and spawns its task.
    pub fn new() -> Result<Self, Error> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(Error::Connect)?;
        tokio::spawn(conn);
        let bulk = match BulkSocket::new() {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(error = %e, "no batched netlink socket: one request at a time");
                None
            }
        };
        Ok(Reconciler {
            handle,
            concurrency: DEFAULT_CONCURRENCY,
            bulk,
        })
    }

    /// Sets how many requests may be in flight at once (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The underlying rtnetlink handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Sends a dump request and collects the answers (an error answer fails the dump).
    pub(crate) async fn dump(
        &self,
        what: &'static str,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<Msg>, Error> {
        self.dump_with(what, msg, Some).await
    }

    /// Sends a dump request and keeps what `keep` makes of each answer as it arrives (a dump of
    /// every route of a large host is mostly thrown away: holding it whole first would double the
    /// agent's memory for a moment).
    pub(crate) async fn dump_with<T>(
        &self,
        what: &'static str,
        msg: RouteNetlinkMessage,
        mut keep: impl FnMut(Msg) -> Option<T>,
    ) -> Result<Vec<T>, Error> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut handle = self.handle.clone();
        let mut resp = handle
            .request(req)
            .map_err(|source| Error::Dump { what, source })?;
        let mut out = Vec::new();
        while let Some(m) = resp.next().await {
            match m.payload {
                NetlinkPayload::Error(e) => {
                    return Err(Error::Dump {
                        what,
                        source: rtnetlink::Error::NetlinkError(e),
                    })
                }
                NetlinkPayload::InnerMessage(_) => out.extend(keep(m)),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Sends one request with `NLM_F_ACK` (and `flags`) and waits for its acknowledgement.
    pub(crate) async fn ack(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(), rtnetlink::Error> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        let mut handle = self.handle.clone();
        let mut resp = handle.request(req)?;
        while let Some(m) = resp.next().await {
            if let NetlinkPayload::Error(e) = m.payload {
                return Err(rtnetlink::Error::NetlinkError(e));
            }
        }
        Ok(())
    }

    /// Interface names by index, and the reverse.
    async fn links(&self) -> Result<(HashMap<u32, String>, HashMap<String, u32>), Error> {
        let msgs = self
            .dump(
                "links",
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
            )
            .await?;
        let mut by_index = HashMap::new();
        let mut by_name = HashMap::new();
        for m in msgs {
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) = m.payload {
                for a in &l.attributes {
                    if let LinkAttribute::IfName(n) = a {
                        by_index.insert(l.header.index, n.clone());
                        by_name.insert(n.clone(), l.header.index);
                    }
                }
            }
        }
        Ok((by_index, by_name))
    }

    /// The routes of each of `tables` (both families, all protocols, not cached clones), each made
    /// into a `T` by `parse` (given the interface names by index), from one dump per family;
    /// every table of `tables` has an entry, empty when it holds no route.
    pub(crate) async fn dump_tables<T>(
        &self,
        tables: &BTreeSet<u32>,
        parse: impl Fn(&RouteMessage, &HashMap<u32, String>) -> Option<T>,
    ) -> Result<BTreeMap<u32, Vec<T>>, Error> {
        let (names, _) = self.links().await?;
        let mut out: BTreeMap<u32, Vec<T>> = tables.iter().map(|t| (*t, Vec::new())).collect();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut m = RouteMessage::default();
            m.header.address_family = family;
            let routes = self
                .dump_with("routes", RouteNetlinkMessage::GetRoute(m), |m| {
                    match m.payload {
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r))
                            if tables.contains(&route_table(&r))
                                && !r.header.flags.contains(RouteFlags::Cloned) =>
                        {
                            Some((route_table(&r), parse(&r, &names)?))
                        }
                        _ => None,
                    }
                })
                .await?;
            for (t, r) in routes {
                out.entry(t).or_default().push(r);
            }
        }
        Ok(out)
    }

    /// Every route of `table` (both families, all protocols).
    pub async fn observe_table(&self, table: u32) -> Result<Vec<ObservedRoute>, Error> {
        let mut all = self
            .dump_tables(&BTreeSet::from([table]), parse_route)
            .await?;
        Ok(all.remove(&table).unwrap_or_default())
    }

    /// Our routes (protocol `protocol`) in `table`, both families.
    pub async fn observe(&self, table: u32, protocol: u8) -> Result<Vec<Route>, Error> {
        Ok(self
            .observe_table(table)
            .await?
            .into_iter()
            .filter(|o| o.protocol == protocol)
            .filter_map(|o| o.route)
            .collect())
    }

    /// Applies a diff to `table`: deletes first, then replacements (`NLM_F_REPLACE`, the route
    /// never disappears), then additions (`NLM_F_CREATE|NLM_F_EXCL`: a foreign route with the
    /// same key is an error, never overwritten). Every operation is attempted; failures are
    /// collected into [`Error::Apply`].
    ///
    /// `foreign` are keys held by routes of other protocols in the table: a replacement on such
    /// a key could hit the foreign route, so it is refused ([`Error::ForeignConflict`]).
    pub async fn apply(
        &self,
        table: u32,
        protocol: u8,
        plan: &RouteDiff,
        foreign: &BTreeSet<RouteKey>,
    ) -> Result<ReconcileStats, Error> {
        let diff = TableDiff {
            table,
            protocol,
            plan,
            foreign,
        };
        self.apply_many(std::slice::from_ref(&diff))
            .await?
            .pop()
            .expect("one result per diff")
    }

    /// [`Reconciler::apply`] for many tables at once: one link dump, and the operations of every
    /// table in one stream per phase (deletes, then replacements and additions of routes without
    /// a gateway, then those with one), with the reconciler's concurrency: many small tables
    /// cost about what one large table does. Returns one result per diff, in order; `Err` only
    /// when the links cannot be read (nothing was done).
    pub async fn apply_many(
        &self,
        diffs: &[TableDiff<'_>],
    ) -> Result<Vec<Result<ReconcileStats, Error>>, Error> {
        let (_, by_name) = self.links().await?;
        let by_name = &by_name;
        let mut stats: Vec<ReconcileStats> = diffs
            .iter()
            .map(|d| ReconcileStats {
                unchanged: d.plan.unchanged,
                ..Default::default()
            })
            .collect();
        let mut errors: Vec<Vec<Error>> = diffs.iter().map(|_| Vec::new()).collect();
        let dels = self
            .run_tagged(diffs.iter().enumerate().flat_map(|(i, d)| {
                d.plan.to_delete.iter().map(move |r| {
                    let msg = route_message(r, d.table, d.protocol, by_name, true);
                    (i, d.table, "delete", msg, 0, r)
                })
            }))
            .await;
        tally_tagged(dels, &mut stats, &mut errors, |s| &mut s.deleted);
        let via = |r: &&Route| matches!(r.kind, RouteKind::Unicast { via: Some(_), .. });
        for phase in [false, true] {
            let reps = self
                .run_tagged(diffs.iter().enumerate().flat_map(|(i, d)| {
                    d.plan
                        .to_replace
                        .iter()
                        .filter(move |r| via(r) == phase)
                        .map(move |r| {
                            let msg = if d.foreign.contains(&r.key()) {
                                Err(Error::ForeignConflict {
                                    route: r.to_string(),
                                    table: d.table,
                                })
                            } else {
                                route_message(r, d.table, d.protocol, by_name, false)
                            };
                            (i, d.table, "replace", msg, NLM_F_CREATE | NLM_F_REPLACE, r)
                        })
                }))
                .await;
            tally_tagged(reps, &mut stats, &mut errors, |s| &mut s.replaced);
            let adds = self
                .run_tagged(diffs.iter().enumerate().flat_map(|(i, d)| {
                    d.plan
                        .to_add
                        .iter()
                        .filter(move |r| via(r) == phase)
                        .map(move |r| {
                            let msg = route_message(r, d.table, d.protocol, by_name, false);
                            (i, d.table, "add", msg, NLM_F_CREATE | NLM_F_EXCL, r)
                        })
                }))
                .await;
            tally_tagged(adds, &mut stats, &mut errors, |s| &mut s.added);
        }
        Ok(stats
            .into_iter()
            .zip(errors)
            .map(|(stats, errors)| {
                if errors.is_empty() {
                    Ok(stats)
                } else {
                    Err(Error::Apply { stats, errors })
                }
            })
            .collect())
    }

    async fn run_tagged<'a>(
        &self,
        ops: impl Iterator<Item = RouteOp<'a>>,
    ) -> Vec<(usize, Result<(), Error>)> {
        if let Some(bulk) = &self.bulk {
            return Self::run_bulk(bulk, ops).await;
        }
        stream::iter(ops)
            .map(|(i, table, op, msg, flags, r)| async move {
                let res = async {
                    let nl = route_request(op, msg?);
                    self.ack(nl, flags)
                        .await
                        .map_err(|source| route_error(op, r, table, source))
                }
                .await;
                (i, res)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await
    }

    /// [`Reconciler::run_tagged`] through the batched socket, on a blocking thread.
    async fn run_bulk<'a>(
        bulk: &BulkSocket,
        ops: impl Iterator<Item = RouteOp<'a>>,
    ) -> Vec<(usize, Result<(), Error>)> {
        let mut out = Vec::new();
        let mut sent = Vec::new();
        let mut requests = Vec::new();
        for (i, table, op, msg, flags, r) in ops {
            match msg {
                Ok(msg) => {
                    requests.push((route_request(op, msg), flags));
                    sent.push((i, table, op, r));
                }
                Err(e) => out.push((i, Err(e))),
            }
        }
        if requests.is_empty() {
            return out;
        }
        let b = bulk.clone();
        // A panicked task answers nothing: every request then reads as failed.
        let outcomes = tokio::task::spawn_blocking(move || b.run(requests))
            .await
            .unwrap_or_default();
        let mut outcomes = outcomes.into_iter();
        for (i, table, op, r) in sent {
            let res = outcomes
                .next()
                .unwrap_or(Err(rtnetlink::Error::RequestFailed))
                .map_err(|source| route_error(op, r, table, source));
            out.push((i, res));
        }
        out
    }

    /// Observe, diff and apply for one table. Idempotent: a second run changes nothing, and a
    /// new reconciler started over routes left by a previous one adopts them (0 changes).
    pub async fn reconcile(&self, desired: &DesiredRoutes) -> Result<ReconcileStats, Error> {
        let all = self.observe_table(desired.table).await?;
        let mut ours = Vec::new();
        let mut foreign = BTreeSet::new();
        for o in all {
            if o.protocol == desired.protocol {
                match o.route {
                    Some(r) => ours.push(r),
                    // A route of ours we cannot model: only deleting it makes sense; make it a
                    // blackhole placeholder with the same key so the diff deletes or replaces it.
                    None => ours.push(Route {
                        prefix: o.key.prefix,
                        kind: RouteKind::Blackhole,
                        metric: Some(o.key.metric),
                    }),
                }
            } else {
                foreign.insert(o.key);
            }
        }
        let plan = diff_owned(desired, ours);
        tracing::debug!(
            table = desired.table,
            add = plan.to_add.len(),
            replace = plan.to_replace.len(),
            delete = plan.to_delete.len(),
            unchanged = plan.unchanged,
            "route plan"
        );
        if plan.is_empty() {
            return Ok(ReconcileStats {
                unchanged: plan.unchanged,
                ..Default::default()
            });
        }
        self.apply(desired.table, desired.protocol, &plan, &foreign)
            .await
    }

    /// Our rules: those with priority `priority` that look up `table`, both families.
    pub async fn observe_rules(&self, table: u32, priority: u32) -> Result<Vec<Rule>, Error> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut m = RuleMessage::default();
            m.header.family = family;
            for m in self.dump("rules", RouteNetlinkMessage::GetRule(m)).await? {
                if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRule(r)) = m.payload {
                    if let Some(rule) = parse_rule(&r) {
                        if rule.table == table && rule.priority == priority {
                            out.push(rule);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Observe, diff and apply our rules for one (table, priority).
    pub async fn reconcile_rules(&self, desired: &DesiredRules) -> Result<ReconcileStats, Error> {
        let observed = self.observe_rules(desired.table, desired.priority).await?;
        let plan = diff_rules(desired, &observed);
        self.apply_rules(&plan).await
    }

    /// Applies a rule diff: deletes first, then adds.
    pub async fn apply_rules(&self, plan: &RuleDiff) -> Result<ReconcileStats, Error> {
        let mut stats = ReconcileStats {
            unchanged: plan.unchanged,
            ..Default::default()
        };
        let mut errors = Vec::new();
        for r in &plan.to_delete {
            match self
                .ack(RouteNetlinkMessage::DelRule(rule_message(r)), 0)
                .await
            {
                Ok(()) => stats.deleted += 1,
                Err(source) => errors.push(Error::Rule {
                    op: "delete",
                    rule: r.to_string(),
                    source,
                }),
            }
        }
        for r in &plan.to_add {
            match self
                .ack(
                    RouteNetlinkMessage::NewRule(rule_message(r)),
                    NLM_F_CREATE | NLM_F_EXCL,
                )
                .await
            {
                Ok(()) => stats.added += 1,
                Err(source) => errors.push(Error::Rule {
                    op: "add",
                    rule: r.to_string(),
                    source,
                }),
            }
        }
        if errors.is_empty() {
            Ok(stats)
        } else {
            Err(Error::Apply { stats, errors })
        }
    }

    /// Makes sure one rule exists (adds it when missing; never deletes anything). Returns true
    /// when it was added.
    pub async fn ensure_rule(
        &self,
        table: u32,
        priority: u32,
        selector: RuleSelector,
    ) -> Result<bool, Error> {
        let rule = Rule {
            table,
            priority,
            selector,
        };
        if self.observe_rules(table, priority).await?.contains(&rule) {
            return Ok(false);
        }
        let plan = RuleDiff {
            to_add: vec![rule],
            ..Default::default()
        };
        self.apply_rules(&plan).await?;
        Ok(true)
    }
}

fn tally_tagged(
    results: Vec<(usize, Result<(), Error>)>,
    stats: &mut [ReconcileStats],
    errors: &mut [Vec<Error>],
    count: impl Fn(&mut ReconcileStats) -> &mut usize,
) {
    for (i, r) in results {
        match r {
            Ok(()) => *count(&mut stats[i]) += 1,
            Err(e) => errors[i].push(e),
        }
    }
}

/// The table of a route message (the `RTA_TABLE` attribute wins over the 8-bit header field).
pub(crate) fn route_table(r: &RouteMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(r.header.table as u32)
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Converts a kernel route message (any protocol) into an [`ObservedRoute`].
pub(crate) fn parse_route(r: &RouteMessage, names: &HashMap<u32, String>) -> Option<ObservedRoute> {
    let v6 = match r.header.address_family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let mut dst = None;
    let mut via = None;
    let mut oif = None;
    let mut metric = None;
    let mut multipath = false;
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = ip_of(d),
            RouteAttribute::Gateway(g) => via = ip_of(g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => metric = Some(*p),
            RouteAttribute::MultiPath(_) | RouteAttribute::Via(_) => multipath = true,
            _ => {}
        }
    }
    let dst = dst.unwrap_or(if v6 {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    });
    let prefix = IpNet::new(dst, r.header.destination_prefix_length).ok()?;
    let kind = match r.header.kind {
        RouteType::Unicast if !multipath => Some(RouteKind::Unicast {
            via,
            dev: oif.map(|i| names.get(&i).cloned().unwrap_or_else(|| format!("if{i}"))),
            scope_link: r.header.scope == RouteScope::Link,
        }),
        RouteType::BlackHole => Some(RouteKind::Blackhole),
        _ => None,
    };
    let route = kind.map(|kind| {
        Route {
            prefix,
            kind,
            metric,
        }
        .normalized()
    });
    let key = Route {
        prefix,
        kind: RouteKind::Blackhole,
        metric,
    }
    .key();
    Some(ObservedRoute {
        route,
        key,
        protocol: u8::from(r.header.protocol),
    })
}

/// Builds the netlink message for a route of ours (for delete: scope "nowhere", as `ip route
/// del` does, so the kernel matches any scope; the protocol is set, so the kernel only deletes
/// a route with our mark).
pub(crate) fn route_message(
    r: &Route,
    table: u32,
    protocol: u8,
    by_name: &HashMap<String, u32>,
    delete: bool,
) -> Result<RouteMessage, Error> {
    let v6 = r.prefix.is_ipv6();
    let mut m = RouteMessage::default();
    m.header.address_family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    m.header.destination_prefix_length = r.prefix.prefix_len();
    m.header.table = if table < 256 { table as u8 } else { 0 };
    m.header.protocol = RouteProtocol::from(protocol);
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes.push(RouteAttribute::Table(table));
    if r.prefix.prefix_len() > 0 {
        m.attributes
            .push(RouteAttribute::Destination(r.prefix.addr().into()));
    }
    match &r.kind {
        RouteKind::Blackhole => m.header.kind = RouteType::BlackHole,
        RouteKind::Unicast {
            via,
            dev,
            scope_link,
        } => {
            if *scope_link && !v6 {
                m.header.scope = RouteScope::Link;
            }
            if let Some(via) = via {
                if via.is_ipv6() != v6 {
                    return Err(Error::InvalidRoute {
                        route: r.to_string(),
                        reason: "the gateway is not of the prefix's family",
                    });
                }
                m.attributes.push(RouteAttribute::Gateway((*via).into()));
            }
            if let Some(dev) = dev {
                let idx = by_name.get(dev).ok_or_else(|| Error::UnknownDevice {
                    route: r.to_string(),
                    dev: dev.clone(),
                })?;
                m.attributes.push(RouteAttribute::Oif(*idx));
            } else if via.is_none() && !delete {
                return Err(Error::InvalidRoute {
                    route: r.to_string(),
                    reason: "a unicast route needs a gateway or a device",
                });
            }
        }
    }
    if delete {
        m.header.scope = RouteScope::NoWhere;
    }
    if let Some(metric) = r.metric {
        m.attributes.push(RouteAttribute::Priority(metric));
    }
    Ok(m)
}

fn family_of(f: Family) -> AddressFamily {
    match f {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    }
}

fn rule_message(r: &Rule) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = family_of(r.selector.family());
    m.header.table = if r.table < 256 { r.table as u8 } else { 0 };
    m.header.action = RuleAction::ToTable;
    m.attributes = vec![
        RuleAttribute::Priority(r.priority),
        RuleAttribute::Table(r.table),
    ];
    match r.selector {
        RuleSelector::To(net) => {
            m.header.dst_len = net.prefix_len();
            m.attributes.push(RuleAttribute::Destination(net.addr()));
        }
        RuleSelector::All {
            suppress_prefixlength,
            ..
        } => {
            if let Some(n) = suppress_prefixlength {
                m.attributes.push(RuleAttribute::SuppressPrefixLen(n));
            }
        }
    }
    m
}

/// Converts a kernel rule into a [`Rule`] when it has a shape ovn-route creates
/// (`to NET lookup T` or `lookup T [suppress_prefixlength N]`, nothing else).
fn parse_rule(r: &RuleMessage) -> Option<Rule> {
    if r.header.action != RuleAction::ToTable || r.header.src_len != 0 || r.header.tos != 0 {
        return None;
    }
    let family = match r.header.family {
        AddressFamily::Inet => Family::V4,
        AddressFamily::Inet6 => Family::V6,
        _ => return None,
    };
    let mut table = r.header.table as u32;
    let mut priority = 0;
    let mut dst = None;
    let mut suppress = None;
    for a in &r.attributes {
        match a {
            RuleAttribute::Table(t) => table = *t,
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Destination(d) => dst = Some(*d),
            // The kernel reports "no suppression" as u32::MAX (-1).
            RuleAttribute::SuppressPrefixLen(n) if *n != u32::MAX => suppress = Some(*n),
            RuleAttribute::Iifname(_)
            | RuleAttribute::Oifname(_)
            | RuleAttribute::FwMark(_)
            | RuleAttribute::Source(_)
            | RuleAttribute::Goto(_) => return None,
            _ => {}
        }
    }
    let selector = match dst {
        Some(d) => RuleSelector::To(IpNet::new(d, r.header.dst_len).ok()?),
        None => RuleSelector::All {
            family,
            suppress_prefixlength: suppress,
        },
    };
    Some(Rule {
        table,
        priority,
        selector,
    })
}

/// One route operation of [`Reconciler::apply_many`]: the diff's index, the table, the
/// operation's name, its message (or why there is none), its flags and the route.
type RouteOp<'a> = (
    usize,
    u32,
    &'static str,
    Result<RouteMessage, Error>,
    u16,
    &'a Route,
);

/// The request for a route operation (`delete`, else an addition or replacement).
fn route_request(op: &str, msg: RouteMessage) -> RouteNetlinkMessage {
    if op == "delete" {
        RouteNetlinkMessage::DelRoute(msg)
    } else {
        RouteNetlinkMessage::NewRoute(msg)
    }
}

/// The kernel's refusal of a route operation, naming the route.
fn route_error(op: &'static str, r: &Route, table: u32, source: rtnetlink::Error) -> Error {
    Error::Route {
        op,
        route: r.to_string(),
        table,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_roundtrip() {
        let mut by_name = HashMap::new();
        by_name.insert("br-ex".to_string(), 7u32);
        let names: HashMap<u32, String> = [(7u32, "br-ex".to_string())].into();
        for r in [
            Route::dev_link("10.0.0.1/32".parse().unwrap(), "br-ex"),
            Route::via(
                "10.1.0.0/24".parse().unwrap(),
                "172.24.4.10".parse().unwrap(),
                Some("br-ex"),
            )
            .with_metric(20),
            Route::blackhole("2001:db8::/64".parse().unwrap()),
            Route::dev_link("2001:db8::5/128".parse().unwrap(), "br-ex"),
        ] {
            let m = route_message(&r, 1000, 201, &by_name, false).unwrap();
            assert_eq!(route_table(&m), 1000);
            let o = parse_route(&m, &names).unwrap();
            assert_eq!(o.protocol, 201);
            assert_eq!(o.route.unwrap(), r.clone().normalized());
            assert_eq!(o.key, r.key());
        }
    }

    #[test]
    fn unknown_device_names_the_route() {
        let r = Route::dev_link("10.0.0.1/32".parse().unwrap(), "nope");
        let e = route_message(&r, 1000, 201, &HashMap::new(), false).unwrap_err();
        assert!(e.to_string().contains("10.0.0.1/32 dev nope"), "{e}");
    }

    #[test]
    fn rule_roundtrip() {
        for sel in [
            RuleSelector::To("172.24.4.5/32".parse().unwrap()),
            RuleSelector::To("2001:db8::5/128".parse().unwrap()),
            RuleSelector::All {
                family: Family::V4,
                suppress_prefixlength: Some(0),
            },
        ] {
            let r = Rule {
                table: 1000,
                priority: 32000,
                selector: sel,
            };
            assert_eq!(parse_rule(&rule_message(&r)), Some(r));
        }
    }
}
