//! Property test against a real OVN_Northbound ovsdb-server: random sequences of typed
//! insert/update/mutate/delete transactions (through `Session::transact` or a separate
//! `Connection::transact`) and a few `ovn-nbctl` commands. After every step the session's replica
//! must equal a fresh `ovsdb-client dump` of the whole database, and the session must have reported
//! exactly the net change of the step as one `Event::Changed` (inserted, deleted and modified rows,
//! the changed columns, and the old values).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use ovn_route_lab::{OvsdbServer, NB_SCHEMA};
use ovsdb::{
    Atom, ChangeSet, Condition, ConnectOptions, Connection, Datum, Event, Mutation, Operation,
    Remote, RowData, Session, Uuid,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value as Json;

const DB: &str = "OVN_Northbound";

static STEPS: AtomicUsize = AtomicUsize::new(0);
static CHANGED_STEPS: AtomicUsize = AtomicUsize::new(0);
static CHANGED_ROWS: AtomicUsize = AtomicUsize::new(0);
static NBCTL_OK: AtomicUsize = AtomicUsize::new(0);

// ---------------------------------------------------------------------------------------------
// Steps

#[derive(Debug, Clone, Copy)]
enum MapCol {
    OtherConfig,
    ExternalIds,
}

impl MapCol {
    fn name(self) -> &'static str {
        match self {
            MapCol::OtherConfig => "other_config",
            MapCol::ExternalIds => "external_ids",
        }
    }
}

type Pairs = Vec<(String, String)>;

#[derive(Debug, Clone)]
struct PortInit {
    addresses: Vec<String>,
    options: Pairs,
    tag: Option<i64>,
    tag_request: Option<i64>,
    enabled: Option<bool>,
    up: Option<bool>,
}

/// Column changes of an `update` on a port; `None` leaves the column alone, `Some(None)` clears
/// an optional column.
#[derive(Debug, Clone)]
struct PortSet {
    addresses: Option<Vec<String>>,
    options: Option<Pairs>,
    tag: Option<Option<i64>>,
    tag_request: Option<Option<i64>>,
    enabled: Option<Option<bool>>,
    up: Option<Option<bool>>,
    type_: Option<String>,
}

#[derive(Debug, Clone)]
enum Nbctl {
    LsAdd(u8),
    LspAdd {
        sw: usize,
        addresses: Vec<String>,
    },
    LsDel(usize),
    SetOtherConfig {
        sw: usize,
        key: String,
        value: String,
    },
    ClearTagRequest(usize),
}

#[derive(Debug, Clone)]
enum Step {
    AddSwitch {
        name: u8,
        other_config: Pairs,
        external_ids: Pairs,
    },
    DelSwitch(usize),
    SetSwitchMap {
        sw: usize,
        col: MapCol,
        map: Pairs,
    },
    MutateSwitchMap {
        sw: usize,
        col: MapCol,
        insert: Pairs,
        delete: Vec<String>,
    },
    AddPorts {
        sw: usize,
        ports: Vec<PortInit>,
    },
    DelPort(usize),
    UpdatePort {
        port: usize,
        set: PortSet,
    },
    MutatePort {
        port: usize,
        add: Vec<String>,
        del: Vec<String>,
        add_options: Pairs,
        del_options: Vec<String>,
    },
    PutAddressSet {
        name: u8,
        addresses: Vec<String>,
        external_ids: Pairs,
    },
    MutateAddressSet {
        name: u8,
        add: Vec<String>,
        del: Vec<String>,
    },
    DelAddressSet(u8),
    AddLb {
        vips: Pairs,
        protocol: Option<&'static str>,
        attach_to: Option<usize>,
    },
    UpdateLb {
        lb: usize,
        vips: Option<Pairs>,
        protocol: Option<Option<&'static str>>,
    },
    MutateLb {
        lb: usize,
        add: Pairs,
        del: Vec<String>,
    },
    DelLb(usize),
    /// Insert and delete a row in the same transaction: no net change at all.
    Transient,
    Nbctl(Nbctl),
}

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a",
        "b",
        "c",
        "10.0.0.1",
        "00:00:00:00:00:01 10.0.0.2",
        "router",
        "dynamic",
        "x y",
        "quote\"back\\slash",
        "ünïcødé",
        "",
    ])
    .prop_map(str::to_string)
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["k1", "k2", "k3", "k4", "requested-chassis", "a b"])
        .prop_map(str::to_string)
}

fn pairs() -> impl Strategy<Value = Pairs> {
    prop::collection::vec((key(), word()), 0..5)
}

fn words() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(word(), 0..6)
}

fn vips() -> impl Strategy<Value = Pairs> {
    let vip = prop::sample::select(vec![
        "10.0.0.10:80",
        "10.0.0.11:443",
        "[fd00::1]:80",
        "172.16.0.1",
    ]);
    let backends = prop::sample::select(vec!["10.0.1.1:8080", "10.0.1.1:8080,10.0.1.2:8080", ""]);
    prop::collection::vec((vip, backends), 0..4).prop_map(|v| {
        v.into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    })
}

fn protocol() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec!["tcp", "udp", "sctp"]))
}

fn port_init() -> impl Strategy<Value = PortInit> {
    (
        words(),
        pairs(),
        prop::option::of(1i64..=4095),
        prop::option::of(0i64..=4095),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(addresses, options, tag, tag_request, enabled, up)| PortInit {
                addresses,
                options,
                tag,
                tag_request,
                enabled,
                up,
            },
        )
}

fn port_set() -> impl Strategy<Value = PortSet> {
    (
        prop::option::of(words()),
        prop::option::of(pairs()),
        prop::option::of(prop::option::of(1i64..=4095)),
        prop::option::of(prop::option::of(0i64..=4095)),
        prop::option::of(prop::option::of(any::<bool>())),
        prop::option::of(prop::option::of(any::<bool>())),
        prop::option::of(
            prop::sample::select(vec!["", "router", "localnet", "localport"])
                .prop_map(str::to_string),
        ),
    )
        .prop_map(
            |(addresses, options, tag, tag_request, enabled, up, type_)| PortSet {
                addresses,
                options,
                tag,
                tag_request,
                enabled,
                up,
                type_,
            },
        )
}

fn map_col() -> impl Strategy<Value = MapCol> {
    prop_oneof![Just(MapCol::OtherConfig), Just(MapCol::ExternalIds)]
}

fn nbctl() -> impl Strategy<Value = Nbctl> {
    prop_oneof![
        (0u8..4).prop_map(Nbctl::LsAdd),
        (
            any::<usize>(),
            prop::collection::vec(
                prop::sample::select(vec!["00:00:00:00:00:aa 10.0.0.5", "unknown", "router"])
                    .prop_map(str::to_string),
                0..3
            )
        )
            .prop_map(|(sw, addresses)| Nbctl::LspAdd { sw, addresses }),
        any::<usize>().prop_map(Nbctl::LsDel),
        (
            any::<usize>(),
            prop::sample::select(vec!["k1", "k2"]),
            prop::sample::select(vec!["v1", "v2"])
        )
            .prop_map(|(sw, k, v)| Nbctl::SetOtherConfig {
                sw,
                key: k.into(),
                value: v.into()
            }),
        any::<usize>().prop_map(Nbctl::ClearTagRequest),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..4, pairs(), pairs()).prop_map(|(name, other_config, external_ids)| Step::AddSwitch { name, other_config, external_ids }),
        1 => any::<usize>().prop_map(Step::DelSwitch),
        2 => (any::<usize>(), map_col(), pairs()).prop_map(|(sw, col, map)| Step::SetSwitchMap { sw, col, map }),
        2 => (any::<usize>(), map_col(), pairs(), prop::collection::vec(key(), 0..3))
            .prop_map(|(sw, col, insert, delete)| Step::MutateSwitchMap { sw, col, insert, delete }),
        3 => (any::<usize>(), prop::collection::vec(port_init(), 1..4)).prop_map(|(sw, ports)| Step::AddPorts { sw, ports }),
        1 => any::<usize>().prop_map(Step::DelPort),
        3 => (any::<usize>(), port_set()).prop_map(|(port, set)| Step::UpdatePort { port, set }),
        2 => (any::<usize>(), words(), words(), pairs(), prop::collection::vec(key(), 0..3))
            .prop_map(|(port, add, del, add_options, del_options)| Step::MutatePort { port, add, del, add_options, del_options }),
        2 => (0u8..3, words(), pairs()).prop_map(|(name, addresses, external_ids)| Step::PutAddressSet { name, addresses, external_ids }),
        2 => (0u8..3, words(), words()).prop_map(|(name, add, del)| Step::MutateAddressSet { name, add, del }),
        1 => (0u8..3).prop_map(Step::DelAddressSet),
        2 => (vips(), protocol(), prop::option::of(any::<usize>())).prop_map(|(vips, protocol, attach_to)| Step::AddLb { vips, protocol, attach_to }),
        2 => (any::<usize>(), prop::option::of(vips()), prop::option::of(protocol())).prop_map(|(lb, vips, protocol)| Step::UpdateLb { lb, vips, protocol }),
        1 => (any::<usize>(), vips(), prop::collection::vec(prop::sample::select(vec!["10.0.0.10:80", "172.16.0.1"]).prop_map(str::to_string), 0..2))
            .prop_map(|(lb, add, del)| Step::MutateLb { lb, add, del }),
        1 => any::<usize>().prop_map(Step::DelLb),
        1 => Just(Step::Transient),
        2 => nbctl().prop_map(Step::Nbctl),
    ]
}

// ---------------------------------------------------------------------------------------------
// Turning steps into transactions against the current state

fn s(v: &str) -> Atom {
    Atom::string(v)
}

fn str_set(v: &[String]) -> Datum {
    Datum::set(v.iter().map(|x| s(x)))
}

fn str_map(p: &Pairs) -> Datum {
    Datum::map(p.iter().map(|(k, v)| (s(k), s(v))))
}

fn opt<T: Into<Atom> + Clone>(v: &Option<T>) -> Datum {
    Datum::set(v.iter().cloned().map(Into::into))
}

fn row(cols: Vec<(&str, Datum)>) -> RowData {
    cols.into_iter().map(|(c, d)| (c.to_string(), d)).collect()
}

/// UUIDs of a table's rows, sorted by (name, uuid) so that picks are stable within a run.
fn uuids(session: &Session, table: &str) -> Vec<Uuid> {
    session.read(|r| {
        let mut v: Vec<(String, Uuid)> = r
            .table(table)
            .map(|t| {
                t.iter()
                    .map(|row| {
                        (
                            row.get("name")
                                .and_then(Datum::as_str)
                                .unwrap_or("")
                                .to_string(),
                            row.uuid,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v.into_iter().map(|(_, u)| u).collect()
    })
}

fn pick(v: &[Uuid], i: usize) -> Option<Uuid> {
    (!v.is_empty()).then(|| v[i % v.len()])
}

/// The switch whose `ports` holds `port`.
fn owner_of(session: &Session, port: Uuid) -> Option<Uuid> {
    session.read(|r| {
        r.table("Logical_Switch")?
            .iter()
            .find(|ls| {
                ls.get("ports")
                    .is_some_and(|p| p.uuids().any(|u| u == port))
            })
            .map(|ls| ls.uuid)
    })
}

fn address_set_uuid(session: &Session, name: &str) -> Option<Uuid> {
    session.read(|r| {
        r.table("Address_Set")?
            .iter()
            .find(|row| row.get("name").and_then(Datum::as_str) == Some(name))
            .map(|row| row.uuid)
    })
}

enum Action {
    Nothing,
    Transact(Vec<Operation>),
    Nbctl(Vec<String>),
}

struct Counter(u64);
impl Counter {
    fn next(&mut self, prefix: &str) -> String {
        self.0 += 1;
        format!("{prefix}{}", self.0)
    }
}

fn plan(step: &Step, session: &Session, seq: &mut Counter) -> Action {
    let switches = uuids(session, "Logical_Switch");
    let ports = uuids(session, "Logical_Switch_Port");
    let lbs = uuids(session, "Load_Balancer");
    let by_uuid = |u: Uuid| vec![Condition::uuid(u)];
    match step {
        Step::AddSwitch {
            name,
            other_config,
            external_ids,
        } => Action::Transact(vec![Operation::Insert {
            table: "Logical_Switch".into(),
            row: row(vec![
                ("name", s(&format!("sw{name}")).into()),
                ("other_config", str_map(other_config)),
                ("external_ids", str_map(external_ids)),
            ]),
            uuid_name: None,
            uuid: None,
        }]),
        Step::DelSwitch(i) => match pick(&switches, *i) {
            None => Action::Nothing,
            Some(u) => Action::Transact(vec![Operation::Delete {
                table: "Logical_Switch".into(),
                conditions: by_uuid(u),
            }]),
        },
        Step::SetSwitchMap { sw, col, map } => match pick(&switches, *sw) {
            None => Action::Nothing,
            Some(u) => Action::Transact(vec![Operation::Update {
                table: "Logical_Switch".into(),
                conditions: by_uuid(u),
                row: row(vec![(col.name(), str_map(map))]),
            }]),
        },
        Step::MutateSwitchMap {
            sw,
            col,
            insert,
            delete,
        } => match pick(&switches, *sw) {
            None => Action::Nothing,
            Some(u) => Action::Transact(vec![Operation::Mutate {
                table: "Logical_Switch".into(),
                conditions: by_uuid(u),
                mutations: vec![
                    Mutation::delete(col.name(), str_set(delete)),
                    Mutation::insert(col.name(), str_map(insert)),
                ],
            }]),
        },
        Step::AddPorts { sw, ports: inits } => {
            let mut ops = vec![];
            let sw_cond = match pick(&switches, *sw) {
                Some(u) => by_uuid(u),
                None => {
                    ops.push(Operation::Insert {
                        table: "Logical_Switch".into(),
                        row: row(vec![("name", s("sw-auto").into())]),
                        uuid_name: Some("sw".into()),
                        uuid: None,
                    });
                    vec![Condition::eq("_uuid", Atom::NamedUuid("sw".into()))]
                }
            };
            let mut refs = vec![];
            for (k, p) in inits.iter().enumerate() {
                let uuid_name = format!("p{k}");
                ops.push(Operation::Insert {
                    table: "Logical_Switch_Port".into(),
                    row: row(vec![
                        ("name", s(&seq.next("lsp")).into()),
                        ("addresses", str_set(&p.addresses)),
                        ("options", str_map(&p.options)),
                        ("tag", opt(&p.tag)),
                        ("tag_request", opt(&p.tag_request)),
                        ("enabled", opt(&p.enabled)),
                        ("up", opt(&p.up)),
                    ]),
                    uuid_name: Some(uuid_name.clone()),
                    uuid: None,
                });
                refs.push(Atom::NamedUuid(uuid_name.into()));
            }
            ops.push(Operation::Mutate {
                table: "Logical_Switch".into(),
                conditions: sw_cond,
                mutations: vec![Mutation::insert("ports", Datum::set(refs))],
            });
            Action::Transact(ops)
        }
        Step::DelPort(i) => match pick(&ports, *i) {
            None => Action::Nothing,
            // Ports are not root rows: dropping the last reference garbage-collects them.
            Some(p) => match owner_of(session, p) {
                None => Action::Nothing,
                Some(sw) => Action::Transact(vec![Operation::Mutate {
                    table: "Logical_Switch".into(),
                    conditions: by_uuid(sw),
                    mutations: vec![Mutation::delete("ports", Atom::Uuid(p))],
                }]),
            },
        },
        Step::UpdatePort { port, set } => match pick(&ports, *port) {
            None => Action::Nothing,
            Some(p) => {
                let mut cols = vec![];
                if let Some(a) = &set.addresses {
                    cols.push(("addresses", str_set(a)));
                }
                if let Some(o) = &set.options {
                    cols.push(("options", str_map(o)));
                }
                if let Some(t) = &set.tag {
                    cols.push(("tag", opt(t)));
                }
                if let Some(t) = &set.tag_request {
                    cols.push(("tag_request", opt(t)));
                }
                if let Some(e) = &set.enabled {
                    cols.push(("enabled", opt(e)));
                }
                if let Some(u) = &set.up {
                    cols.push(("up", opt(u)));
                }
                if let Some(t) = &set.type_ {
                    cols.push(("type", s(t).into()));
                }
                Action::Transact(vec![Operation::Update {
                    table: "Logical_Switch_Port".into(),
                    conditions: by_uuid(p),
                    row: row(cols),
                }])
            }
        },
        Step::MutatePort {
            port,
            add,
            del,
            add_options,
            del_options,
        } => match pick(&ports, *port) {
            None => Action::Nothing,
            Some(p) => Action::Transact(vec![Operation::Mutate {
                table: "Logical_Switch_Port".into(),
                conditions: by_uuid(p),
                mutations: vec![
                    Mutation::delete("addresses", str_set(del)),
                    Mutation::insert("addresses", str_set(add)),
                    Mutation::delete("options", str_set(del_options)),
                    Mutation::insert("options", str_map(add_options)),
                ],
            }]),
        },
        Step::PutAddressSet {
            name,
            addresses,
            external_ids,
        } => {
            let name = format!("as{name}");
            let cols = row(vec![
                ("name", s(&name).into()),
                ("addresses", str_set(addresses)),
                ("external_ids", str_map(external_ids)),
            ]);
            Action::Transact(vec![match address_set_uuid(session, &name) {
                Some(u) => Operation::Update {
                    table: "Address_Set".into(),
                    conditions: by_uuid(u),
                    row: cols,
                },
                None => Operation::Insert {
                    table: "Address_Set".into(),
                    row: cols,
                    uuid_name: None,
                    uuid: None,
                },
            }])
        }
        Step::MutateAddressSet { name, add, del } => Action::Transact(vec![Operation::Mutate {
            table: "Address_Set".into(),
            conditions: vec![Condition::eq("name", s(&format!("as{name}")))],
            mutations: vec![
                Mutation::delete("addresses", str_set(del)),
                Mutation::insert("addresses", str_set(add)),
            ],
        }]),
        Step::DelAddressSet(name) => Action::Transact(vec![Operation::Delete {
            table: "Address_Set".into(),
            conditions: vec![Condition::eq("name", s(&format!("as{name}")))],
        }]),
        Step::AddLb {
            vips,
            protocol,
            attach_to,
        } => {
            let mut ops = vec![Operation::Insert {
                table: "Load_Balancer".into(),
                row: row(vec![
                    ("name", s(&seq.next("lb")).into()),
                    ("vips", str_map(vips)),
                    ("protocol", opt(&protocol.map(s))),
                ]),
                uuid_name: Some("lb".into()),
                uuid: None,
            }];
            // Logical_Switch.load_balancer is a weak reference: deleting the LB later modifies the switch.
            if let Some(sw) = attach_to.and_then(|i| pick(&switches, i)) {
                ops.push(Operation::Mutate {
                    table: "Logical_Switch".into(),
                    conditions: by_uuid(sw),
                    mutations: vec![Mutation::insert(
                        "load_balancer",
                        Atom::NamedUuid("lb".into()),
                    )],
                });
            }
            Action::Transact(ops)
        }
        Step::UpdateLb { lb, vips, protocol } => match pick(&lbs, *lb) {
            None => Action::Nothing,
            Some(u) => {
                let mut cols = vec![];
                if let Some(v) = vips {
                    cols.push(("vips", str_map(v)));
                }
                if let Some(p) = protocol {
                    cols.push(("protocol", opt(&p.map(s))));
                }
                Action::Transact(vec![Operation::Update {
                    table: "Load_Balancer".into(),
                    conditions: by_uuid(u),
                    row: row(cols),
                }])
            }
        },
        Step::MutateLb { lb, add, del } => match pick(&lbs, *lb) {
            None => Action::Nothing,
            Some(u) => Action::Transact(vec![Operation::Mutate {
                table: "Load_Balancer".into(),
                conditions: by_uuid(u),
                mutations: vec![
                    Mutation::delete("vips", str_set(del)),
                    Mutation::insert("vips", str_map(add)),
                ],
            }]),
        },
        Step::DelLb(i) => match pick(&lbs, *i) {
            None => Action::Nothing,
            Some(u) => Action::Transact(vec![Operation::Delete {
                table: "Load_Balancer".into(),
                conditions: by_uuid(u),
            }]),
        },
        Step::Transient => {
            let name = seq.next("transient");
            Action::Transact(vec![
                Operation::Insert {
                    table: "Address_Set".into(),
                    row: row(vec![
                        ("name", s(&name).into()),
                        ("addresses", str_set(&["x".into()])),
                    ]),
                    uuid_name: None,
                    uuid: None,
                },
                Operation::Delete {
                    table: "Address_Set".into(),
                    conditions: vec![Condition::eq("name", s(&name))],
                },
            ])
        }
        Step::Nbctl(c) => {
            let args: Vec<String> = match c {
                Nbctl::LsAdd(n) => vec!["ls-add".into(), format!("nbsw{n}-{}", seq.next(""))],
                Nbctl::LspAdd { sw, addresses } => match pick(&switches, *sw) {
                    None => return Action::Nothing,
                    Some(u) => {
                        let p = seq.next("nblsp");
                        let mut a = vec![
                            "lsp-add".into(),
                            u.to_string(),
                            p.clone(),
                            "--".into(),
                            "lsp-set-addresses".into(),
                            p,
                        ];
                        a.extend(addresses.iter().cloned());
                        a
                    }
                },
                Nbctl::LsDel(i) => match pick(&switches, *i) {
                    None => return Action::Nothing,
                    Some(u) => vec!["ls-del".into(), u.to_string()],
                },
                Nbctl::SetOtherConfig { sw, key, value } => match pick(&switches, *sw) {
                    None => return Action::Nothing,
                    Some(u) => vec![
                        "set".into(),
                        "Logical_Switch".into(),
                        u.to_string(),
                        format!("other_config:{key}={value}"),
                    ],
                },
                Nbctl::ClearTagRequest(i) => match pick(&ports, *i) {
                    None => return Action::Nothing,
                    Some(u) => vec![
                        "clear".into(),
                        "Logical_Switch_Port".into(),
                        u.to_string(),
                        "tag_request".into(),
                    ],
                },
            };
            Action::Nbctl(args)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checking the reported change set against the real difference

type Rows = BTreeMap<String, BTreeMap<String, Json>>;

#[derive(Debug, Default, PartialEq)]
struct Expected {
    inserted: BTreeSet<String>,
    deleted: BTreeMap<String, BTreeMap<String, Json>>,
    /// uuid -> (changed columns, old row)
    modified: BTreeMap<String, (BTreeSet<String>, BTreeMap<String, Json>)>,
}

fn expected_changes(before: &NormDb, after: &NormDb) -> BTreeMap<String, Expected> {
    let empty = Rows::new();
    let mut out = BTreeMap::new();
    let tables: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for t in tables {
        let b = before.get(t).unwrap_or(&empty);
        let a = after.get(t).unwrap_or(&empty);
        let mut e = Expected::default();
        for (u, old) in b {
            match a.get(u) {
                None => {
                    e.deleted.insert(u.clone(), old.clone());
                }
                Some(new) if new != old => {
                    let cols = new
                        .keys()
                        .filter(|c| new.get(*c) != old.get(*c))
                        .cloned()
                        .collect();
                    e.modified.insert(u.clone(), (cols, old.clone()));
                }
                Some(_) => {}
            }
        }
        e.inserted = a.keys().filter(|u| !b.contains_key(*u)).cloned().collect();
        if e != Expected::default() {
            out.insert(t.clone(), e);
        }
    }
    out
}

fn reported_changes(session: &Session, cs: &ChangeSet) -> BTreeMap<String, Expected> {
    let layouts: BTreeMap<String, Vec<String>> = session.read(|r| {
        r.tables()
            .map(|(n, t)| (n.to_string(), t.layout().columns.clone()))
            .collect()
    });
    let old_row = |t: &str, r: &ovsdb::Row| -> BTreeMap<String, Json> {
        layouts[t]
            .iter()
            .zip(r.values())
            .map(|(c, d)| (c.clone(), norm_value(&d.to_json())))
            .collect()
    };
    let mut out = BTreeMap::new();
    for (t, tc) in &cs.tables {
        let e = Expected {
            inserted: tc.inserted.iter().map(|u| u.to_string()).collect(),
            deleted: tc
                .deleted
                .iter()
                .map(|(u, r)| (u.to_string(), old_row(t, r)))
                .collect(),
            modified: tc
                .modified
                .iter()
                .map(|(u, cols, r)| {
                    (
                        u.to_string(),
                        (cols.iter().cloned().collect(), old_row(t, r)),
                    )
                })
                .collect(),
        };
        if e != Expected::default() {
            out.insert(t.clone(), e);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------

struct Ctx {
    server: OvsdbServer,
    session: Session,
    conn: Connection,
    events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    seq: Counter,
    nbctl_ok: usize,
    nbctl_failed: usize,
}

async fn run_case(steps: Vec<(Step, bool)>) -> Result<(), TestCaseError> {
    let server = blocking(|| OvsdbServer::start(NB_SCHEMA).expect("start ovsdb-server")).await;
    let remote = server.unix_remote();
    let session = Session::start(config(&remote, DB));
    tokio::time::timeout(WAIT, session.wait_connected())
        .await
        .expect("session connects");
    // From here on, every change event is a change made after this point.
    let (events, ()) = session.subscribe_with(|_| ());
    let (conn, _notes) =
        Connection::connect(&Remote::parse(&remote).unwrap(), &ConnectOptions::default())
            .await
            .expect("connection");
    let mut ctx = Ctx {
        server,
        session,
        conn,
        events,
        seq: Counter(0),
        nbctl_ok: 0,
        nbctl_failed: 0,
    };
    for (i, (step, via_conn)) in steps.iter().enumerate() {
        let what = format!(
            "step {i} {step:?} (via {})",
            if *via_conn { "Connection" } else { "Session" }
        );
        let before = replica(&ctx.session, &[]);
        match plan(step, &ctx.session, &mut ctx.seq) {
            Action::Nothing => {}
            Action::Transact(ops) => {
                let res = if *via_conn {
                    ctx.conn.transact(DB, &ops).await
                } else {
                    ctx.session.transact(ops.clone()).await
                };
                if let Err(e) = res {
                    return Err(TestCaseError::fail(format!(
                        "{what}: transaction failed: {e}"
                    )));
                }
            }
            Action::Nbctl(args) => {
                let db = format!("--db={remote}");
                let out = blocking(move || {
                    ovn_route_lab::run(
                        std::process::Command::new("ovn-nbctl")
                            .arg(db)
                            .arg("--timeout=20")
                            .args(&args),
                    )
                })
                .await;
                match out {
                    Ok(_) => {
                        ctx.nbctl_ok += 1;
                        NBCTL_OK.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("{what}: ovn-nbctl failed (accepted): {e}");
                        ctx.nbctl_failed += 1;
                    }
                }
            }
        }
        let want = {
            let remote = remote.clone();
            blocking(move || norm_db(&dump(&remote, DB, &[], None))).await
        };
        wait_replica_eq(&ctx.session, &[], &want, &what).await;

        // Exactly the net change, reported once.
        let expected = expected_changes(&before, &want);
        STEPS.fetch_add(1, Ordering::Relaxed);
        if !expected.is_empty() {
            CHANGED_STEPS.fetch_add(1, Ordering::Relaxed);
            let n: usize = expected
                .values()
                .map(|e| e.inserted.len() + e.deleted.len() + e.modified.len())
                .sum();
            CHANGED_ROWS.fetch_add(n, Ordering::Relaxed);
            let ev = next_event(&mut ctx.events, &format!("{what}: Changed"), |e| {
                matches!(e, Event::Changed(_))
            })
            .await;
            let Event::Changed(cs) = ev else {
                unreachable!()
            };
            let got = reported_changes(&ctx.session, &cs);
            prop_assert_eq!(
                &got,
                &expected,
                "{}: reported change set differs from the real change",
                what
            );
        }
        while let Ok(ev) = ctx.events.try_recv() {
            if let Event::Changed(cs) = ev {
                let cs: Arc<ChangeSet> = cs;
                return Err(TestCaseError::fail(format!(
                    "{what}: unexpected extra change set {cs:?}"
                )));
            }
        }
    }
    let st = ctx.session.status();
    prop_assert_eq!(st.connects, 1, "no reconnect expected: {:?}", st);
    if ctx.nbctl_failed > 0 {
        eprintln!(
            "ovn-nbctl: {} ok, {} failed",
            ctx.nbctl_ok, ctx.nbctl_failed
        );
    }
    drop(ctx.server);
    Ok(())
}

#[test]
fn replica_equals_server_after_random_transactions() {
    if skip("replica_equals_server_after_random_transactions") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        // PROPTEST_CASES=N for a longer run.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(32),
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = prop::collection::vec((step(), any::<bool>()), 1..=16);
    let result = runner.run(&strategy, |steps| rt.block_on(run_case(steps)));
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "{} steps checked, {} of them changed {} rows in all; {} ovn-nbctl commands succeeded",
        STEPS.load(Ordering::Relaxed),
        CHANGED_STEPS.load(Ordering::Relaxed),
        CHANGED_ROWS.load(Ordering::Relaxed),
        NBCTL_OK.load(Ordering::Relaxed)
    );
}

/// A fixed sequence that surely covers the tricky value transitions: optional columns set, changed
/// and cleared; sets and maps grown, shrunk and emptied; garbage collection of ports; weak
/// references dropped by a delete; a transaction without net change.
#[tokio::test(flavor = "multi_thread")]
async fn replica_follows_fixed_edge_cases() {
    if skip("replica_follows_fixed_edge_cases") {
        return;
    }
    let port = |tag: Option<i64>, enabled: Option<bool>| PortInit {
        addresses: vec!["a".into(), "b".into(), "c".into()],
        options: vec![("k1".into(), "v".into()), ("k2".into(), "w".into())],
        tag,
        tag_request: Some(0),
        enabled,
        up: Some(false),
    };
    let set = |f: &dyn Fn(&mut PortSet)| {
        let mut p = PortSet {
            addresses: None,
            options: None,
            tag: None,
            tag_request: None,
            enabled: None,
            up: None,
            type_: None,
        };
        f(&mut p);
        p
    };
    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Pairs>()
    };
    let steps = vec![
        Step::AddSwitch {
            name: 0,
            other_config: pairs(&[("k1", "a"), ("k2", "b")]),
            external_ids: vec![],
        },
        Step::AddPorts {
            sw: 0,
            ports: vec![port(Some(5), Some(true)), port(None, None)],
        },
        Step::UpdatePort {
            port: 0,
            set: set(&|p| p.tag = Some(Some(6))),
        },
        Step::UpdatePort {
            port: 0,
            set: set(&|p| p.tag = Some(None)),
        },
        Step::UpdatePort {
            port: 0,
            set: set(&|p| p.tag = Some(Some(7))),
        },
        Step::UpdatePort {
            port: 0,
            set: set(&|p| p.enabled = Some(Some(false))),
        },
        Step::UpdatePort {
            port: 0,
            set: set(&|p| p.enabled = Some(None)),
        },
        Step::UpdatePort {
            port: 0,
            set: set(&|p| p.tag_request = Some(Some(4095))),
        },
        Step::UpdatePort {
            port: 1,
            set: set(&|p| p.addresses = Some(vec!["c".into()])),
        },
        Step::UpdatePort {
            port: 1,
            set: set(&|p| p.addresses = Some(vec!["d".into()])),
        },
        Step::UpdatePort {
            port: 1,
            set: set(&|p| p.addresses = Some(vec![])),
        },
        Step::UpdatePort {
            port: 1,
            set: set(&|p| p.options = Some(pairs(&[("k1", "changed")]))),
        },
        Step::UpdatePort {
            port: 1,
            set: set(&|p| p.options = Some(vec![])),
        },
        Step::MutatePort {
            port: 1,
            add: vec!["x".into(), "y".into()],
            del: vec![],
            add_options: pairs(&[("k3", "z")]),
            del_options: vec![],
        },
        Step::MutatePort {
            port: 1,
            add: vec![],
            del: vec!["x".into(), "y".into()],
            add_options: vec![],
            del_options: vec!["k3".into()],
        },
        Step::SetSwitchMap {
            sw: 0,
            col: MapCol::OtherConfig,
            map: pairs(&[("k1", "a"), ("k2", "changed"), ("k3", "new")]),
        },
        Step::MutateSwitchMap {
            sw: 0,
            col: MapCol::OtherConfig,
            insert: vec![],
            delete: vec!["k1".into(), "k2".into(), "k3".into()],
        },
        Step::AddLb {
            vips: pairs(&[("10.0.0.10:80", "10.0.1.1:8080")]),
            protocol: Some("udp"),
            attach_to: Some(0),
        },
        Step::UpdateLb {
            lb: 0,
            vips: Some(vec![]),
            protocol: Some(None),
        },
        Step::DelLb(0),
        Step::Transient,
        Step::Nbctl(Nbctl::ClearTagRequest(0)),
        Step::DelPort(0),
        Step::DelSwitch(0),
    ];
    run_case(steps.into_iter().map(|s| (s, false)).collect())
        .await
        .unwrap();
}
