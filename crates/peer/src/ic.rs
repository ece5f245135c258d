//! The I/O side of remote peering: reading the extra NB rows, one session per integration's
//! IC-NB, and turning a [`RemotePlan`] into transactions (IC-NB first, then the local NB).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ovsdb::{
    Atom, Condition, Datum, Event, Mutation, Operation, Remote, Replica, RowData, Session,
    SessionConfig, TableSelect, Uuid, WaitUntil,
};
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::apply::wait_router;
use crate::error::PeerError;
use crate::model::OWNER_KEY;
use crate::read;
use crate::remote::{
    gateway_priority, plan_remote, DesiredRemotePort, IcOp, IcView, Integration, NbOp, RemoteNb,
    RemotePlan, Switch, SwitchPort, TransitSwitch, IC_ROUTES_KEY, LINK_SUBNET6_KEY,
    REMOTE_OWNER_VALUE,
};
use crate::snapshot::Snapshot;

/// The `where` condition selecting rows that carry the remote peering mark.
fn marked_remote() -> Vec<serde_json::Value> {
    vec![serde_json::json!([
        "external_ids",
        "includes",
        ["map", [[OWNER_KEY, REMOTE_OWNER_VALUE]]]
    ])]
}

/// NB tables and columns remote peering reads besides [`read::tables`]: `NB_Global`; the name,
/// `other_config` and `ports` of every `Logical_Switch` (ovn-ic marks a transit switch's local
/// switch with `other_config:interconn-ts`, which an OVSDB condition cannot select on); and only
/// the `Logical_Switch_Port` and `Gateway_Chassis` rows carrying our mark (a server without
/// conditional monitoring sends every row; the planner filters on the mark anyway).
pub fn nb_tables() -> Vec<TableSelect> {
    let mut lsp = TableSelect::columns(
        "Logical_Switch_Port",
        &["name", "type", "options", "external_ids"],
    );
    lsp.conditions = Some(marked_remote());
    let mut gc = TableSelect::columns(
        "Gateway_Chassis",
        &["chassis_name", "priority", "external_ids"],
    );
    gc.conditions = Some(marked_remote());
    vec![
        TableSelect::columns("NB_Global", &["name", "options", "external_ids"]),
        TableSelect::columns("Logical_Switch", &["name", "other_config", "ports"]),
        lsp,
        gc,
    ]
}

fn map(d: Option<&Datum>) -> BTreeMap<String, String> {
    d.map(|d| {
        d.pairs()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
            .collect()
    })
    .unwrap_or_default()
}

fn string(d: Option<&Datum>) -> String {
    d.and_then(Datum::as_str).unwrap_or_default().to_string()
}

/// The extra NB rows of the replica.
pub fn remote_nb(r: &Replica) -> RemoteNb {
    let mut nb = RemoteNb::default();
    if let Some(row) = r.table("NB_Global").and_then(|t| t.iter().next()) {
        nb.global = row.uuid;
        nb.az = string(row.get("name"));
        nb.options = map(row.get("options"));
        nb.external_ids = map(row.get("external_ids"));
    }
    if let Some(t) = r.table("Logical_Switch") {
        for row in t.iter() {
            nb.switches.insert(
                row.uuid,
                Switch {
                    name: string(row.get("name")),
                    other_config: map(row.get("other_config")),
                    ports: row
                        .get("ports")
                        .map(|d| d.uuids().collect())
                        .unwrap_or_default(),
                },
            );
        }
    }
    if let Some(t) = r.table("Logical_Switch_Port") {
        for row in t.iter().filter(|row| {
            map(row.get("external_ids"))
                .get(OWNER_KEY)
                .map(String::as_str)
                == Some(REMOTE_OWNER_VALUE)
        }) {
            nb.switch_ports.insert(
                row.uuid,
                SwitchPort {
                    name: string(row.get("name")),
                    kind: string(row.get("type")),
                    options: map(row.get("options")),
                    external_ids: map(row.get("external_ids")),
                },
            );
        }
    }
    if let Some(t) = r.table("Gateway_Chassis") {
        for row in t.iter().filter(|row| {
            map(row.get("external_ids"))
                .get(OWNER_KEY)
                .map(String::as_str)
                == Some(REMOTE_OWNER_VALUE)
        }) {
            nb.gateway_chassis.insert(
                row.uuid,
                (
                    string(row.get("chassis_name")),
                    row.get("priority").and_then(Datum::as_i64).unwrap_or(0),
                ),
            );
        }
    }
    if let Some(t) = r.table("Logical_Router_Port") {
        for row in t.iter() {
            let gcs: BTreeSet<Uuid> = row
                .get("gateway_chassis")
                .map(|d| d.uuids().collect())
                .unwrap_or_default();
            if !gcs.is_empty() {
                nb.port_gateway_chassis.insert(row.uuid, gcs);
            }
        }
    }
    nb
}

/// The transit switches of an IC-NB replica.
pub fn transit_switches(r: &Replica) -> BTreeMap<Uuid, TransitSwitch> {
    r.table("Transit_Switch")
        .map(|t| {
            t.iter()
                .map(|row| {
                    (
                        row.uuid,
                        TransitSwitch {
                            name: string(row.get("name")),
                            external_ids: map(row.get("external_ids")),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// True when two integrations reach their IC-NB the same way (remotes and TLS files).
fn same_connection(a: &Integration, b: &Integration) -> bool {
    a.ic_nb == b.ic_nb
        && a.ssl_private_key == b.ssl_private_key
        && a.ssl_certificate == b.ssl_certificate
        && a.ssl_ca_cert == b.ssl_ca_cert
}

/// One session per integration's IC-NB, kept in line with the integrations stored in the NB.
/// Changes on any of them are reported on [`IcSessions::wake`]'s receiver.
#[derive(Debug)]
pub struct IcSessions {
    sessions: BTreeMap<String, (Integration, Session)>,
    wake_tx: mpsc::UnboundedSender<()>,
    /// Receives `()` whenever an IC-NB replica changes or connects.
    pub wake: mpsc::UnboundedReceiver<()>,
}

impl Default for IcSessions {
    fn default() -> Self {
        let (wake_tx, wake) = mpsc::unbounded_channel();
        IcSessions {
            sessions: BTreeMap::new(),
            wake_tx,
            wake,
        }
    }
}

/// The session settings of an IC-NB (transit switches only; the leader of a cluster), with TLS
/// when `ssl` is given (needed for `ssl:` remotes).
pub fn ic_session_config(remotes: Vec<Remote>, ssl: Option<ovsdb::SslConfig>) -> SessionConfig {
    let mut cfg = SessionConfig::new(remotes, "OVN_IC_Northbound");
    cfg.connect.ssl = ssl;
    cfg.tables = vec![TableSelect::columns(
        "Transit_Switch",
        &["name", "external_ids"],
    )];
    cfg.leader_only = true;
    cfg
}

impl IcSessions {
    /// Starts sessions for new or changed integrations of `nb` and stops the others.
    pub fn sync(&mut self, nb: &RemoteNb) {
        let wanted: BTreeMap<String, Integration> = nb
            .integrations()
            .into_iter()
            .filter_map(|(n, i)| Some((n, i.ok()?)))
            .collect();
        self.sessions
            .retain(|n, (i, _)| wanted.get(n).is_some_and(|w| same_connection(w, i)));
        for (name, integ) in wanted {
            if self.sessions.contains_key(&name) {
                continue;
            }
            let Ok(remotes) = Remote::parse_list(&integ.ic_nb) else {
                continue;
            };
            info!(integration = %name, ic_nb = %integ.ic_nb, "connecting to IC-NB");
            let session = Session::start(ic_session_config(remotes, integ.ssl()));
            let mut events = session.subscribe();
            let tx = self.wake_tx.clone();
            tokio::spawn(async move {
                while let Some(ev) = events.recv().await {
                    if matches!(ev, Event::Changed(_) | Event::Connected { .. })
                        && tx.send(()).is_err()
                    {
                        break;
                    }
                }
            });
            self.sessions.insert(name, (integ, session));
        }
    }

    /// Waits (at most `limit`) until every session is connected.
    pub async fn wait_connected(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            for (_, s) in self.sessions.values() {
                s.wait_connected().await;
            }
        })
        .await;
    }

    /// The view of every integration's IC-NB.
    pub fn views(&self) -> BTreeMap<String, IcView> {
        self.sessions
            .iter()
            .map(|(n, (i, s))| {
                let st = s.status();
                let v = if st.connected {
                    Ok(s.read(transit_switches))
                } else {
                    Err(format!(
                        "{} not reachable: {}",
                        i.ic_nb,
                        st.last_error.unwrap_or_else(|| "no answer yet".into())
                    ))
                };
                (n.clone(), v)
            })
            .collect()
    }

    /// The session of integration `name`.
    pub fn session(&self, name: &str) -> Option<&Session> {
        self.sessions.get(name).map(|(_, s)| s)
    }
}

/// Plans remote peering from the NB replica and the IC-NB replicas.
pub fn plan_from(nb: &Session, ics: &IcSessions) -> (Snapshot, RemoteNb, RemotePlan) {
    let (snap, rnb) = nb.read(|r| (read::snapshot(r), remote_nb(r)));
    let p = plan_remote(&snap, &rnb, &ics.views());
    (snap, rnb, p)
}

fn strings_map(m: &BTreeMap<String, String>) -> Datum {
    Datum::map(m.iter().map(|(k, v)| (Atom::string(k), Atom::string(v))))
}

/// The IC-NB transaction of `ops`: a `wait` that every transit switch still has the
/// `external_ids` read (so two writers never allocate the same link subnet), then the changes.
pub fn ic_transaction(view: &BTreeMap<Uuid, TransitSwitch>, ops: &[IcOp]) -> Vec<Operation> {
    let mut t = vec![Operation::Wait {
        table: "Transit_Switch".into(),
        conditions: vec![],
        columns: vec!["name".into(), "external_ids".into()],
        rows: view
            .values()
            .map(|ts| {
                RowData::from([
                    ("name".to_string(), Datum::from(Atom::string(&ts.name))),
                    ("external_ids".to_string(), strings_map(&ts.external_ids)),
                ])
            })
            .collect(),
        until: WaitUntil::Equal,
        timeout_ms: Some(0),
    }];
    for op in ops {
        t.push(match op {
            IcOp::CreateTs { name, external_ids } => Operation::Insert {
                table: "Transit_Switch".into(),
                row: RowData::from([
                    ("name".to_string(), Datum::from(Atom::string(name))),
                    ("external_ids".to_string(), strings_map(external_ids)),
                ]),
                uuid_name: None,
                uuid: None,
            },
            IcOp::Declare { uuid, key, value } => Operation::Mutate {
                table: "Transit_Switch".into(),
                conditions: vec![Condition::uuid(*uuid)],
                mutations: vec![
                    Mutation::delete("external_ids", Datum::set([Atom::string(key)])),
                    Mutation::insert(
                        "external_ids",
                        Datum::map([(Atom::string(key), Atom::string(value))]),
                    ),
                ],
            },
            IcOp::SetLinkSubnet6 { uuid, subnet } => Operation::Mutate {
                table: "Transit_Switch".into(),
                conditions: vec![Condition::uuid(*uuid)],
                mutations: vec![Mutation::insert(
                    "external_ids",
                    Datum::map([(Atom::string(LINK_SUBNET6_KEY), Atom::string(subnet))]),
                )],
            },
            IcOp::Withdraw { uuid, key } => Operation::Mutate {
                table: "Transit_Switch".into(),
                conditions: vec![Condition::uuid(*uuid)],
                mutations: vec![Mutation::delete(
                    "external_ids",
                    Datum::set([Atom::string(key)]),
                )],
            },
            IcOp::DeleteTs { uuid } => Operation::Delete {
                table: "Transit_Switch".into(),
                conditions: vec![Condition::uuid(*uuid)],
            },
        });
    }
    t.push(Operation::Comment("ovn-route remote peering".into()));
    t
}

fn wait_switch(nb: &RemoteNb, uuid: Uuid) -> Operation {
    let rows = nb
        .switches
        .get(&uuid)
        .map(|s| {
            vec![RowData::from([(
                "ports".to_string(),
                Datum::set(s.ports.iter().map(|u| Atom::Uuid(*u))),
            )])]
        })
        .unwrap_or_default();
    Operation::Wait {
        table: "Logical_Switch".into(),
        conditions: vec![Condition::uuid(uuid)],
        columns: vec!["ports".into()],
        rows,
        until: WaitUntil::Equal,
        timeout_ms: Some(0),
    }
}

fn create_ops(i: usize, w: &DesiredRemotePort, out: &mut Vec<Operation>) {
    let mut gcs = Vec::new();
    for (n, c) in w.gateway_chassis.iter().enumerate() {
        let name = format!("gc{i}_{n}");
        out.push(Operation::Insert {
            table: "Gateway_Chassis".into(),
            row: RowData::from([
                (
                    "name".to_string(),
                    Datum::from(Atom::string(format!("{}-{c}", w.lrp))),
                ),
                ("chassis_name".to_string(), Datum::from(Atom::string(c))),
                (
                    "priority".to_string(),
                    Datum::from(Atom::Integer(gateway_priority(n))),
                ),
                ("external_ids".to_string(), strings_map(&w.external_ids)),
            ]),
            uuid_name: Some(name.clone()),
            uuid: None,
        });
        gcs.push(Atom::NamedUuid(name.into()));
    }
    let lrp = format!("rlrp{i}");
    out.push(Operation::Insert {
        table: "Logical_Router_Port".into(),
        row: RowData::from([
            ("name".to_string(), Datum::from(Atom::string(&w.lrp))),
            ("mac".to_string(), Datum::from(Atom::string(&w.mac))),
            (
                "networks".to_string(),
                Datum::set(w.networks.iter().map(Atom::string)),
            ),
            ("gateway_chassis".to_string(), Datum::set(gcs)),
            ("external_ids".to_string(), strings_map(&w.external_ids)),
        ]),
        uuid_name: Some(lrp.clone()),
        uuid: None,
    });
    out.push(Operation::Mutate {
        table: "Logical_Router".into(),
        conditions: vec![Condition::uuid(w.router)],
        mutations: vec![Mutation::insert("ports", Atom::NamedUuid(lrp.into()))],
    });
    let lsp = format!("rlsp{i}");
    out.push(Operation::Insert {
        table: "Logical_Switch_Port".into(),
        row: RowData::from([
            ("name".to_string(), Datum::from(Atom::string(&w.lsp))),
            ("type".to_string(), Datum::from(Atom::string("router"))),
            (
                "addresses".to_string(),
                Datum::set([Atom::string("router")]),
            ),
            (
                "options".to_string(),
                Datum::map([(Atom::string("router-port"), Atom::string(&w.lrp))]),
            ),
            ("external_ids".to_string(), strings_map(&w.external_ids)),
        ]),
        uuid_name: Some(lsp.clone()),
        uuid: None,
    });
    out.push(Operation::Mutate {
        table: "Logical_Switch".into(),
        conditions: vec![Condition::uuid(w.switch)],
        mutations: vec![Mutation::insert("ports", Atom::NamedUuid(lsp.into()))],
    });
}

/// The local NB transaction of `ops`: an optional lock assertion, `wait`s on every router and
/// switch changed (their `ports` as read), then the changes. Our ports that exist in another
/// form come as [`NbOp::DeleteLrp`]/[`NbOp::DeleteLsp`] before the [`NbOp::Create`] replacing
/// them, in the same transaction.
pub fn nb_transaction(
    snap: &Snapshot,
    nb: &RemoteNb,
    lock: Option<&str>,
    ops: &[NbOp],
) -> Vec<Operation> {
    let mut t = Vec::new();
    if let Some(l) = lock {
        t.push(Operation::Assert(l.to_string()));
    }
    let mut routers = BTreeSet::new();
    let mut switches = BTreeSet::new();
    for op in ops {
        match op {
            NbOp::Create(w) => {
                routers.insert(w.router);
                switches.insert(w.switch);
            }
            NbOp::DeleteLrp { router, .. } => {
                routers.insert(*router);
            }
            NbOp::DeleteLsp { switch, .. } => {
                switches.insert(*switch);
            }
            NbOp::IcRoutes(_) => {}
        }
    }
    t.extend(routers.iter().map(|r| wait_router(snap, *r)));
    t.extend(switches.iter().map(|s| wait_switch(nb, *s)));
    for (i, op) in ops.iter().enumerate() {
        match op {
            NbOp::DeleteLrp { router, uuid } => {
                t.push(Operation::Mutate {
                    table: "Logical_Router".into(),
                    conditions: vec![Condition::uuid(*router)],
                    mutations: vec![Mutation::delete("ports", Atom::Uuid(*uuid))],
                });
            }
            NbOp::DeleteLsp { switch, uuid } => {
                t.push(Operation::Mutate {
                    table: "Logical_Switch".into(),
                    conditions: vec![Condition::uuid(*switch)],
                    mutations: vec![Mutation::delete("ports", Atom::Uuid(*uuid))],
                });
            }
            NbOp::Create(w) => {
                create_ops(i, w, &mut t);
            }
            NbOp::IcRoutes(on) => {
                let opts = [Atom::string("ic-route-adv"), Atom::string("ic-route-learn")];
                let cond = vec![Condition::uuid(nb.global)];
                t.push(Operation::Mutate {
                    table: "NB_Global".into(),
                    conditions: cond.clone(),
                    mutations: vec![
                        Mutation::delete("options", Datum::set(opts.clone())),
                        Mutation::delete("external_ids", Datum::set([Atom::string(IC_ROUTES_KEY)])),
                    ],
                });
                if *on {
                    t.push(Operation::Mutate {
                        table: "NB_Global".into(),
                        conditions: cond,
                        mutations: vec![
                            Mutation::insert(
                                "options",
                                Datum::map(opts.iter().map(|k| (k.clone(), Atom::string("true")))),
                            ),
                            Mutation::insert(
                                "external_ids",
                                Datum::map([(Atom::string(IC_ROUTES_KEY), Atom::string("true"))]),
                            ),
                        ],
                    });
                }
            }
        }
    }
    t.push(Operation::Comment("ovn-route remote peering".into()));
    t
}

/// What one remote reconcile step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteStep {
    /// Nothing to change.
    InSync,
    /// Changes were written (IC-NB and/or NB); plan again once the replicas show them.
    Applied,
}

/// Plans remote peering and writes one step: the IC-NB changes of every integration, else the
/// local NB changes (guarded by `wait`s and, with `lock`, the lock assertion).
pub async fn remote_step(
    nb: &Session,
    ics: &mut IcSessions,
    lock: Option<&str>,
) -> Result<RemoteStep, PeerError> {
    ics.sync(&nb.read(remote_nb));
    let (snap, rnb, p) = plan_from(nb, ics);
    let views = ics.views();
    let mut wrote = false;
    for (iname, ops) in &p.ic_ops {
        let (Some(session), Some(Ok(view))) = (ics.session(iname), views.get(iname)) else {
            continue;
        };
        debug!(integration = %iname, ?ops, "IC-NB operations");
        session
            .transact(ic_transaction(view, ops))
            .await
            .map_err(PeerError::from)?;
        info!(integration = %iname, ops = ops.len(), "IC-NB transit switches updated");
        wrote = true;
    }
    if !p.nb_ops.is_empty() {
        debug!(ops = ?p.nb_ops, "NB remote peering operations");
        nb.transact(nb_transaction(&snap, &rnb, lock, &p.nb_ops))
            .await
            .map_err(PeerError::from)?;
        info!(ops = p.nb_ops.len(), "remote peering ports updated");
        wrote = true;
    }
    Ok(if wrote {
        RemoteStep::Applied
    } else {
        RemoteStep::InSync
    })
}

/// Runs [`remote_step`] until in sync (at most `limit` long), waiting for the replicas to show
/// each change; for one-shot commands. Returns the final plan.
pub async fn remote_sync(
    nb: &Session,
    ics: &mut IcSessions,
    limit: Duration,
) -> Result<RemotePlan, PeerError> {
    let mut nb_events = nb.subscribe();
    let deadline = tokio::time::Instant::now() + limit;
    ics.sync(&nb.read(remote_nb));
    ics.wait_connected(limit).await;
    loop {
        match remote_step(nb, ics, None).await {
            Ok(RemoteStep::InSync) => break,
            Ok(RemoteStep::Applied) => {}
            Err(e) if e.is_conflict() || is_constraint(&e) => {}
            Err(e) => return Err(e),
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        // Give the replicas a moment to show what was written (or what a competitor wrote).
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            tokio::select! {
                _ = nb_events.recv() => {}
                _ = ics.wake.recv() => {}
            }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(plan_from(nb, ics).2)
}

/// True when the transaction failed on a uniqueness constraint (e.g. two writers inserting the
/// same transit switch): re-read and plan again.
pub fn is_constraint(e: &PeerError) -> bool {
    matches!(e, PeerError::Ovsdb(ovsdb::Error::Transaction { error, .. })
        if error == "constraint violation")
}
