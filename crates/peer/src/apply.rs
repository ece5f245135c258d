//! Turns a diff into OVSDB transactions. Every transaction starts with `wait` operations (timeout
//! 0: assertions) on the `Logical_Router` rows it depends on — the routers it changes and their
//! partners — comparing `external_ids` (the declarations), `ports` and `static_routes` with the
//! values the plan was made from. If another client changed one of them in between (for example
//! it created the other side of the same relationship at the same moment), the transaction fails
//! as a whole, and the caller re-reads and plans again: two racing clients end with exactly one
//! pair of ports.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ovsdb::{
    Atom, Condition, Datum, Event, Mutation, Operation, RowData, Session, Uuid, WaitUntil,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{debug, info};

use crate::diff::{diff, Op};
use crate::error::PeerError;
use crate::model::{peer_key, PEER_KEY_PREFIX};
use crate::plan::{plan, DesiredPort, DesiredRoute, Plan};
use crate::read;
use crate::snapshot::{Router, Snapshot};

/// How many times a change is planned again after its transaction lost a race.
pub const MAX_ATTEMPTS: u32 = 20;

/// How long to wait for the replica to show a competing change before planning again anyway.
const CHANGE_WAIT: Duration = Duration::from_secs(2);

fn strings_map(m: &BTreeMap<String, String>) -> Datum {
    Datum::map(m.iter().map(|(k, v)| (Atom::string(k), Atom::string(v))))
}

fn uuid_set(s: &BTreeSet<Uuid>) -> Datum {
    Datum::set(s.iter().map(|u| Atom::Uuid(*u)))
}

/// The `wait` that fails unless router `uuid` still has the `external_ids`, `ports` and
/// `static_routes` it has in `snap` (or is absent from `snap`: then it must not exist).
pub fn wait_router(snap: &Snapshot, uuid: Uuid) -> Operation {
    let rows = snap
        .routers
        .get(&uuid)
        .map(|r| {
            vec![RowData::from([
                ("external_ids".to_string(), strings_map(&r.external_ids)),
                ("ports".to_string(), uuid_set(&r.ports)),
                ("static_routes".to_string(), uuid_set(&r.static_routes)),
            ])]
        })
        .unwrap_or_default();
    Operation::Wait {
        table: "Logical_Router".into(),
        conditions: vec![Condition::uuid(uuid)],
        columns: vec![
            "external_ids".into(),
            "ports".into(),
            "static_routes".into(),
        ],
        rows,
        until: WaitUntil::Equal,
        timeout_ms: Some(0),
    }
}

fn port_row(p: &DesiredPort, with_name: bool) -> RowData {
    let mut row = RowData::from([
        ("mac".to_string(), Datum::from(Atom::string(&p.mac))),
        (
            "networks".to_string(),
            Datum::set(p.networks.iter().map(Atom::string)),
        ),
        ("peer".to_string(), Datum::from(Atom::string(&p.peer))),
        ("external_ids".to_string(), strings_map(&p.external_ids)),
    ]);
    if with_name {
        row.insert("name".into(), Atom::string(&p.name).into());
    }
    row
}

fn route_row(r: &DesiredRoute) -> RowData {
    RowData::from([
        (
            "ip_prefix".to_string(),
            Datum::from(Atom::string(&r.ip_prefix)),
        ),
        ("nexthop".to_string(), Datum::from(Atom::string(&r.nexthop))),
        (
            "output_port".to_string(),
            Datum::from(Atom::string(&r.output_port)),
        ),
        ("external_ids".to_string(), strings_map(&r.external_ids)),
    ])
}

fn mutate_router(router: Uuid, mutation: Mutation) -> Operation {
    Operation::Mutate {
        table: "Logical_Router".into(),
        conditions: vec![Condition::uuid(router)],
        mutations: vec![mutation],
    }
}

/// The transaction operations of `ops` (no waits).
pub fn operations(ops: &[Op]) -> Vec<Operation> {
    let mut out = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::DeletePort { router, uuid } => {
                out.push(mutate_router(
                    *router,
                    Mutation::delete("ports", Atom::Uuid(*uuid)),
                ));
                out.push(Operation::Delete {
                    table: "Logical_Router_Port".into(),
                    conditions: vec![Condition::uuid(*uuid)],
                });
            }
            Op::DeleteRoute { router, uuid } => {
                out.push(mutate_router(
                    *router,
                    Mutation::delete("static_routes", Atom::Uuid(*uuid)),
                ));
                out.push(Operation::Delete {
                    table: "Logical_Router_Static_Route".into(),
                    conditions: vec![Condition::uuid(*uuid)],
                });
            }
            Op::UpdatePort { uuid, port } => out.push(Operation::Update {
                table: "Logical_Router_Port".into(),
                conditions: vec![Condition::uuid(*uuid)],
                row: port_row(port, false),
            }),
            Op::UpdateRoute { uuid, route } => out.push(Operation::Update {
                table: "Logical_Router_Static_Route".into(),
                conditions: vec![Condition::uuid(*uuid)],
                row: route_row(route),
            }),
            Op::CreatePort(p) => {
                let name = format!("peerport{i}");
                out.push(Operation::Insert {
                    table: "Logical_Router_Port".into(),
                    row: port_row(p, true),
                    uuid_name: Some(name.clone()),
                    uuid: None,
                });
                out.push(mutate_router(
                    p.router,
                    Mutation::insert("ports", Atom::NamedUuid(name.into())),
                ));
            }
            Op::CreateRoute(r) => {
                let name = format!("peerroute{i}");
                out.push(Operation::Insert {
                    table: "Logical_Router_Static_Route".into(),
                    row: route_row(r),
                    uuid_name: Some(name.clone()),
                    uuid: None,
                });
                out.push(mutate_router(
                    r.router,
                    Mutation::insert("static_routes", Atom::NamedUuid(name.into())),
                ));
            }
        }
    }
    out
}

/// The routers a group of operations depends on: the routers it changes and their partners.
pub fn depends_on(snap: &Snapshot, ops: &[Op]) -> BTreeSet<Uuid> {
    ops.iter()
        .flat_map(|o| [Some(o.router()), o.partner_router(snap)])
        .flatten()
        .collect()
}

/// Splits operations into independent units, one per relationship (the sorted pair of routers
/// involved), so that both sides of a relationship always change in one transaction.
pub fn group(snap: &Snapshot, ops: Vec<Op>) -> Vec<Vec<Op>> {
    let mut groups: BTreeMap<(Uuid, Uuid), Vec<Op>> = BTreeMap::new();
    for op in ops {
        let a = op.router();
        let b = op.partner_router(snap).unwrap_or(a);
        groups.entry((a.min(b), a.max(b))).or_default().push(op);
    }
    groups.into_values().collect()
}

/// A whole transaction: an optional lock assertion, the waits on `watch`, `pre` (e.g. a
/// declaration change), then `ops`.
pub fn transaction(
    snap: &Snapshot,
    watch: &BTreeSet<Uuid>,
    lock: Option<&str>,
    pre: Vec<Operation>,
    ops: &[Op],
) -> Vec<Operation> {
    let mut t = Vec::new();
    if let Some(l) = lock {
        t.push(Operation::Assert(l.to_string()));
    }
    t.extend(watch.iter().map(|u| wait_router(snap, *u)));
    t.extend(pre);
    t.extend(operations(ops));
    t.push(Operation::Comment("ovn-route peering".into()));
    t
}

/// Waits until the replica reports a change (or a short while passes): after a lost race, the
/// winner's change is then usually visible.
pub async fn wait_for_change(events: &mut UnboundedReceiver<Event>) {
    let _ = tokio::time::timeout(CHANGE_WAIT, async {
        while let Some(ev) = events.recv().await {
            if matches!(ev, Event::Changed(_) | Event::Connected { .. }) {
                return;
            }
        }
    })
    .await;
}

/// Forgets the events received so far (they are older than the next read).
pub fn drain(events: &mut UnboundedReceiver<Event>) {
    while events.try_recv().is_ok() {}
}

fn declarations_equal(a: &Router, b: &Router) -> bool {
    a.raw_declarations().eq(b.raw_declarations())
}

/// The mutation of router `uuid`'s declarations from `before` to `after` (other keys untouched).
fn declaration_ops(uuid: Uuid, before: &Router, after: &Router) -> Vec<Operation> {
    let decls = |r: &Router| -> BTreeMap<String, String> {
        r.raw_declarations()
            .map(|(n, v)| (peer_key(n), v.to_string()))
            .collect()
    };
    let (b, a) = (decls(before), decls(after));
    let gone: Vec<Atom> = b
        .iter()
        .filter(|(k, v)| a.get(*k) != Some(*v))
        .map(|(k, _)| Atom::string(k))
        .collect();
    let new: Vec<(Atom, Atom)> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, v)| (Atom::string(k), Atom::string(v)))
        .collect();
    debug_assert!(a
        .keys()
        .chain(b.keys())
        .all(|k| k.starts_with(PEER_KEY_PREFIX)));
    let mut mutations = Vec::new();
    if !gone.is_empty() {
        mutations.push(Mutation::delete("external_ids", Datum::set(gone)));
    }
    if !new.is_empty() {
        mutations.push(Mutation::insert("external_ids", Datum::map(new)));
    }
    if mutations.is_empty() {
        return vec![];
    }
    vec![Operation::Mutate {
        table: "Logical_Router".into(),
        conditions: vec![Condition::uuid(uuid)],
        mutations,
    }]
}

/// Changes the declarations of router `router` with `edit` and, in the same transaction, makes
/// the OVN objects of every relationship of that router match (the other routers are left to the
/// controller). `edit` sees the router as just read and may refuse (its error is returned, nothing
/// is written). Lost races are retried from a fresh read. Returns `edit`'s value and the plan
/// of the NB as written.
pub async fn edit_network<T>(
    session: &Session,
    events: &mut UnboundedReceiver<Event>,
    router: Uuid,
    mut edit: impl FnMut(&Snapshot, &mut Router) -> Result<T, PeerError>,
) -> Result<(T, Plan), PeerError> {
    for attempt in 1..=MAX_ATTEMPTS {
        drain(events);
        let snap = session.read(read::snapshot);
        let before = snap
            .routers
            .get(&router)
            .cloned()
            .ok_or_else(|| PeerError::Invalid("the network's router was deleted".into()))?;
        let mut edited = snap.clone();
        let value = {
            let r = edited.routers.get_mut(&router).expect("present");
            edit(&snap, r)?
        };
        let after = edited.routers[&router].clone();
        let p = plan(&edited);
        let ops: Vec<Op> = diff(&edited, &p)
            .into_iter()
            .filter(|o| o.router() == router || o.partner_router(&edited) == Some(router))
            .collect();
        // Depend on this router, on every router its declarations could name, and on the
        // routers the operations change.
        let mut watch = depends_on(&edited, &ops);
        watch.insert(router);
        for (_, raw) in after.raw_declarations() {
            if let Some((tp, tn)) = crate::Declaration::parse(raw)
                .ok()
                .as_ref()
                .and_then(|d| d.local_target())
            {
                watch.extend(snap.find_network(tp, tn));
            }
        }
        let pre = declaration_ops(router, &before, &after);
        let txn = transaction(&snap, &watch, None, pre, &ops);
        match session.transact(txn).await.map_err(PeerError::from) {
            Ok(_) => {
                info!(router = %before.name, ops = ops.len(), attempt, "peering change written");
                // Read-your-writes for the next call on this session: wait (briefly) until the
                // replica shows the new declarations.
                let seen = |s: &Session| {
                    s.read(|r| {
                        read::snapshot(r)
                            .routers
                            .get(&router)
                            .is_some_and(|now| declarations_equal(now, &after))
                    })
                };
                let _ = tokio::time::timeout(CHANGE_WAIT, async {
                    while !seen(session) {
                        if events.recv().await.is_none() {
                            return;
                        }
                    }
                })
                .await;
                return Ok((value, p));
            }
            Err(e) if e.is_conflict() => {
                debug!(attempt, "the NB changed under us; planning again");
                wait_for_change(events).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(PeerError::Contention {
        attempts: MAX_ATTEMPTS,
    })
}

/// What one reconcile step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The NB matches the plan.
    InSync {
        /// Created relationships.
        relationships: usize,
    },
    /// One relationship's operations were written; more may remain.
    Applied {
        /// Operations written.
        ops: usize,
        /// Groups still to write (planned from the same read).
        remaining: usize,
    },
}

/// Plans from the replica and writes the first independent group of operations (one
/// relationship, both sides) in one transaction guarded by `wait`s and, with `lock`, by an
/// assertion that this client holds the lock. A group the NB refuses for another reason than a
/// lost race is logged and skipped, so that one bad relationship does not hold up the others.
pub async fn reconcile_step(session: &Session, lock: Option<&str>) -> Result<Step, PeerError> {
    let snap = session.read(read::snapshot);
    let p = plan(&snap);
    let ops = diff(&snap, &p);
    if ops.is_empty() {
        return Ok(Step::InSync {
            relationships: p.relationships.len(),
        });
    }
    let groups = group(&snap, ops);
    let total = groups.len();
    let mut first_error = None;
    for (i, g) in groups.into_iter().enumerate() {
        let watch = depends_on(&snap, &g);
        for op in &g {
            debug!(?op, "peering operation");
        }
        match session
            .transact(transaction(&snap, &watch, lock, vec![], &g))
            .await
            .map_err(PeerError::from)
        {
            Ok(_) => {
                return Ok(Step::Applied {
                    ops: g.len(),
                    remaining: total - i - 1,
                })
            }
            Err(e) if e.is_conflict() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, routers = ?watch, "peering transaction refused; skipping it for now");
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.expect("at least one group failed"))
}
