//! Reconnects against real servers: a standalone ovsdb-server killed and restarted, and a 3-member
//! raft cluster whose members (including the leader) are killed under a running session.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ovn_route_lab::{OvsdbCluster, OvsdbServer, NB_SCHEMA};
use ovsdb::{
    Atom, ChangeSet, Condition, ConnectOptions, Connection, Datum, Event, Operation, Remote,
    Session,
};

const DB: &str = "OVN_Northbound";
const TABLES: &[&str] = &[
    "Logical_Switch",
    "Logical_Switch_Port",
    "Address_Set",
    "NB_Global",
];

fn switch(name: &str, n_ports: usize) -> Vec<Operation> {
    let mut ops = vec![];
    let mut refs = vec![];
    for p in 0..n_ports {
        let uuid_name = format!("p{p}");
        ops.push(Operation::Insert {
            table: "Logical_Switch_Port".into(),
            row: [
                (
                    "name".to_string(),
                    Datum::from(Atom::string(format!("{name}-p{p}"))),
                ),
                (
                    "addresses".to_string(),
                    Datum::set([Atom::string("router"), Atom::string(format!("10.0.0.{p}"))]),
                ),
            ]
            .into(),
            uuid_name: Some(uuid_name.clone()),
            uuid: None,
        });
        refs.push(Atom::NamedUuid(uuid_name.into()));
    }
    ops.push(Operation::Insert {
        table: "Logical_Switch".into(),
        row: [
            ("name".to_string(), Datum::from(Atom::string(name))),
            ("ports".to_string(), Datum::set(refs)),
            (
                "external_ids".to_string(),
                Datum::map([(Atom::string("owner"), Atom::string("test"))]),
            ),
        ]
        .into(),
        uuid_name: None,
        uuid: None,
    });
    ops
}

fn set_other_config(name: &str, key: &str, value: &str) -> Vec<Operation> {
    vec![Operation::Update {
        table: "Logical_Switch".into(),
        conditions: vec![Condition::eq("name", Atom::string(name))],
        row: [(
            "other_config".to_string(),
            Datum::map([(Atom::string(key), Atom::string(value))]),
        )]
        .into(),
    }]
}

fn only_row_modified(cs: &ChangeSet, table: &str, column: &str) {
    assert_eq!(cs.tables.len(), 1, "one table changed: {cs:?}");
    let tc = &cs.tables[table];
    assert!(tc.inserted.is_empty() && tc.deleted.is_empty(), "{cs:?}");
    assert_eq!(tc.modified.len(), 1, "{cs:?}");
    assert_eq!(tc.modified[0].1, vec![column.to_string()], "{cs:?}");
}

/// No `Changed` event is waiting; other events are returned.
fn no_change_pending(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    what: &str,
) -> Vec<Event> {
    let mut other = vec![];
    while let Ok(ev) = rx.try_recv() {
        if let Event::Changed(cs) = &ev {
            panic!("{what}: spurious change set {cs:?}");
        }
        other.push(ev);
    }
    other
}

fn member_of(cluster: &OvsdbCluster, remote: &str) -> usize {
    (0..cluster.len())
        .find(|&i| cluster.member_remote(i) == remote)
        .unwrap_or_else(|| panic!("{remote} is not a member of {}", cluster.remote()))
}

/// Waits until every running member (except `skip`) serves exactly the replica's content.
async fn members_caught_up(cluster: &OvsdbCluster, session: &Session, skip: &[usize]) {
    for i in (0..cluster.len()).filter(|i| !skip.contains(i)) {
        let remote = cluster.member_remote(i);
        let want = replica(session, TABLES);
        wait_for(&format!("member {i} to catch up"), || {
            let remote = remote.clone();
            let want = want.clone();
            async move {
                (blocking(move || norm_db(&dump(&remote, DB, TABLES, None))).await == want)
                    .then_some(())
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn standalone_restart_reports_only_the_net_change() {
    if skip("standalone_restart_reports_only_the_net_change") {
        return;
    }
    let server = blocking(|| OvsdbServer::start(NB_SCHEMA).unwrap()).await;
    let remote = server.unix_remote();
    let session = Session::start(config(&remote, DB));
    tokio::time::timeout(WAIT, session.wait_connected())
        .await
        .unwrap();
    for (i, n) in [(0, 3), (1, 0), (2, 5)] {
        session
            .transact(switch(&format!("sw{i}"), n))
            .await
            .unwrap();
    }
    assert_replica_matches(&session, &remote, DB, &[], "before the crash").await;
    let rows = session.read(|r| r.row_count());
    assert_eq!(rows, 3 + 8);

    let mut events = session.subscribe();
    let st0 = session.status();
    assert_eq!(st0.connects, 1);

    // Crash: the session notices, keeps its replica while the server is down.
    let mut server = blocking(move || {
        let mut s = server;
        s.kill();
        s
    })
    .await;
    wait_status(&session, "the disconnect", |s| !s.connected).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // a few failed reconnects
    assert_eq!(
        session.read(|r| r.row_count()),
        rows,
        "replica kept while the server is down"
    );
    assert!(session.status().last_error.is_some());

    // Restart from the same file: a full dump, diffed against the replica: nothing changed.
    server = blocking(move || {
        server.restart().unwrap();
        server
    })
    .await;
    let st1 = wait_status(&session, "the reconnect", |s| {
        s.connected && s.connects > st0.connects
    })
    .await;
    assert_eq!(st1.connects, 2);
    assert_eq!(
        st1.resumes, 0,
        "a restarted standalone server has no transaction history"
    );
    assert_eq!(st1.last_reply_rows, rows, "full dump");
    next_event(&mut events, "Disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    let ev = next_event(&mut events, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    assert!(
        matches!(ev, Event::Connected { resumed: false, .. }),
        "{ev:?}"
    );
    // (A spurious change set would also be caught below: it would come before the expected one.)
    no_change_pending(&mut events, "after the restart");
    assert_replica_matches(&session, &remote, DB, &[], "after the restart").await;

    // A change made while the server is down (ovsdb-tool on its file): the full dump after the
    // restart is reported as exactly that change.
    server = blocking(move || {
        server.kill();
        server
    })
    .await;
    wait_status(&session, "the second disconnect", |s| !s.connected).await;
    let db_path = server.db_path().to_path_buf();
    blocking(move || {
        let txn = serde_json::json!(["OVN_Northbound",
            {"op": "update", "table": "Logical_Switch", "where": [["name", "==", "sw0"]],
             "row": {"external_ids": ["map", [["offline", "yes"]]]}},
            {"op": "delete", "table": "Logical_Switch", "where": [["name", "==", "sw1"]]},
            {"op": "insert", "table": "Address_Set",
             "row": {"name": "offline", "addresses": ["set", ["10.1.1.1", "10.1.1.2"]]}}]);
        ovn_route_lab::run(
            std::process::Command::new("ovsdb-tool")
                .arg("transact")
                .arg(&db_path)
                .arg(txn.to_string()),
        )
        .unwrap()
    })
    .await;
    server = blocking(move || {
        server.restart().unwrap();
        server
    })
    .await;
    let st2 = wait_status(&session, "the third connection", |s| {
        s.connected && s.connects > st1.connects
    })
    .await;
    assert_eq!(st2.last_reply_rows, rows - 1 + 1, "full dump");
    let Event::Changed(cs) =
        next_event(&mut events, "Changed", |e| matches!(e, Event::Changed(_))).await
    else {
        unreachable!()
    };
    assert_eq!(cs.tables.len(), 2, "{cs:?}");
    let ls = &cs.tables["Logical_Switch"];
    assert!(ls.inserted.is_empty(), "{cs:?}");
    assert_eq!(ls.deleted.len(), 1, "{cs:?}");
    assert_eq!(ls.modified.len(), 1, "{cs:?}");
    assert_eq!(ls.modified[0].1, vec!["external_ids".to_string()], "{cs:?}");
    let sets = &cs.tables["Address_Set"];
    assert_eq!(
        (sets.inserted.len(), sets.modified.len(), sets.deleted.len()),
        (1, 0, 0)
    );
    assert_replica_matches(&session, &remote, DB, &[], "after the offline change").await;

    // One real change: exactly one modified row.
    session
        .transact(set_other_config("sw2", "k", "v"))
        .await
        .unwrap();
    let Event::Changed(cs) =
        next_event(&mut events, "Changed", |e| matches!(e, Event::Changed(_))).await
    else {
        unreachable!()
    };
    only_row_modified(&cs, "Logical_Switch", "other_config");
    assert_replica_matches(&session, &remote, DB, &[], "after the change").await;
    no_change_pending(&mut events, "after the change");
    drop(session);
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_member_kill_resumes_without_full_dump() {
    if skip("cluster_member_kill_resumes_without_full_dump") {
        return;
    }
    let mut cluster = blocking(|| OvsdbCluster::start(NB_SCHEMA, 3).unwrap()).await;
    let session = Session::start(config(&cluster.remote(), DB));
    tokio::time::timeout(WAIT, session.wait_connected())
        .await
        .unwrap();
    for i in 0..4 {
        session
            .transact(switch(&format!("sw{i}"), i))
            .await
            .unwrap();
    }
    let st0 = session.status();
    let connected_to = st0.remote.clone().unwrap();
    assert_replica_matches(&session, &connected_to, DB, TABLES, "before the kill").await;
    members_caught_up(&cluster, &session, &[]).await;
    let st0 = session.status();
    assert!(
        st0.last_txn_id.is_some(),
        "clustered servers give transaction ids: {st0:?}"
    );
    let rows = session.read(|r| r.row_count());

    let mut events = session.subscribe();
    let victim = member_of(&cluster, &connected_to);
    tokio::task::block_in_place(|| cluster.kill_member(victim).unwrap());

    let st1 = wait_status(&session, "a reconnect to another member", |s| {
        s.connected && s.connects > st0.connects
    })
    .await;
    assert_ne!(
        st1.remote.as_deref(),
        Some(connected_to.as_str()),
        "{st1:?}"
    );
    assert_eq!(
        st1.resumes,
        st0.resumes + 1,
        "monitor_cond_since resumed: {st1:?}"
    );
    assert_eq!(st1.last_reply_rows, 0, "no full dump: {st1:?}");
    assert_eq!(session.read(|r| r.row_count()), rows);
    next_event(&mut events, "Disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    let ev = next_event(&mut events, "Connected", |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    assert!(
        matches!(ev, Event::Connected { resumed: true, .. }),
        "{ev:?}"
    );
    no_change_pending(&mut events, "after the resume");
    let now = st1.remote.unwrap();
    assert_replica_matches(&session, &now, DB, TABLES, "after the resume").await;

    // Writes go on (forwarded to the leader if this member follows).
    session
        .transact(set_other_config("sw2", "after", "resume"))
        .await
        .unwrap();
    let Event::Changed(cs) =
        next_event(&mut events, "Changed", |e| matches!(e, Event::Changed(_))).await
    else {
        unreachable!()
    };
    only_row_modified(&cs, "Logical_Switch", "other_config");
    assert_replica_matches(&session, &now, DB, TABLES, "after a write").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_resume_after_member_restart_carries_only_missed_rows() {
    if skip("cluster_resume_after_member_restart_carries_only_missed_rows") {
        return;
    }
    let mut cluster = blocking(|| OvsdbCluster::start(NB_SCHEMA, 3).unwrap()).await;
    // The session may only use member 0.
    let m0 = cluster.member_remote(0);
    let session = Session::start(config(&m0, DB));
    tokio::time::timeout(WAIT, session.wait_connected())
        .await
        .unwrap();
    for i in 0..3 {
        session
            .transact(switch(&format!("sw{i}"), 2))
            .await
            .unwrap();
    }
    assert_replica_matches(&session, &m0, DB, TABLES, "before").await;
    members_caught_up(&cluster, &session, &[]).await;
    let st0 = session.status();
    let mut events = session.subscribe();

    tokio::task::block_in_place(|| cluster.kill_member(0).unwrap());
    wait_status(&session, "the disconnect", |s| !s.connected).await;
    // Meanwhile, through member 1: one switch changed, one added (with one port).
    let m1 = Remote::parse(&cluster.member_remote(1)).unwrap();
    let (conn, _notes) = Connection::connect(&m1, &ConnectOptions::default())
        .await
        .unwrap();
    let mut ops = set_other_config("sw0", "while", "down");
    ops.extend(switch("sw-new", 1));
    wait_for("a write through member 1", || {
        let ops = ops.clone();
        let conn = &conn;
        async move { conn.transact(DB, &ops).await.ok() }
    })
    .await;
    tokio::task::block_in_place(|| cluster.restart_member(0).unwrap());

    let st1 = wait_status(&session, "the reconnect", |s| {
        s.connected && s.connects > st0.connects
    })
    .await;
    assert_eq!(st1.resumes, st0.resumes + 1, "resumed: {st1:?}");
    // Member 0 may answer before or after it has caught up with the cluster: the missed rows come
    // in the monitor reply or as notifications right after, never as a full dump.
    assert!(
        st1.last_reply_rows <= 3,
        "only the rows changed meanwhile: {st1:?}"
    );
    let authoritative = cluster.member_remote(1);
    assert_replica_matches(&session, &authoritative, DB, TABLES, "after the resume").await;
    // The change sets since the reconnect add up to exactly the missed rows.
    let expected: BTreeMap<String, (usize, usize, usize)> = [
        ("Logical_Switch".to_string(), (1, 1, 0)),
        ("Logical_Switch_Port".to_string(), (1, 0, 0)),
    ]
    .into();
    let mut changes = BTreeMap::<String, (usize, usize, usize)>::new();
    let mut connected = 0;
    while changes != expected {
        match tokio::time::timeout(WAIT, events.recv()).await {
            Ok(Some(Event::Changed(cs))) => {
                for (t, tc) in &cs.tables {
                    let e = changes.entry(t.clone()).or_default();
                    e.0 += tc.inserted.len();
                    e.1 += tc.modified.len();
                    e.2 += tc.deleted.len();
                }
            }
            Ok(Some(Event::Connected { .. })) => connected += 1,
            Ok(Some(_)) => {}
            _ => panic!("change sets since the reconnect: {changes:?}, expected {expected:?}"),
        }
    }
    assert_eq!(connected, 1, "one reconnect");
    no_change_pending(&mut events, "after the missed rows");
    assert_replica_matches(&session, &m0, DB, TABLES, "member 0 after the resume").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_leader_kill_keeps_replica_and_writes_continue() {
    if skip("cluster_leader_kill_keeps_replica_and_writes_continue") {
        return;
    }
    let mut cluster = blocking(|| OvsdbCluster::start(NB_SCHEMA, 3).unwrap()).await;
    let any = Arc::new(Session::start(config(&cluster.remote(), DB)));
    let mut cfg = config(&cluster.remote(), DB);
    cfg.leader_only = true;
    let leader_only = Arc::new(Session::start(cfg));
    // Every remote the leader_only session is ever connected to.
    let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let watcher = {
        let mut w = leader_only.watch_status();
        let seen = seen.clone();
        tokio::spawn(async move {
            loop {
                let st = w.borrow_and_update().clone();
                if let (true, Some(r)) = (st.connected, st.remote) {
                    seen.lock().unwrap().insert(r);
                }
                if w.changed().await.is_err() {
                    break;
                }
            }
        })
    };
    for s in [&any, &leader_only] {
        tokio::time::timeout(WAIT, s.wait_connected())
            .await
            .unwrap();
    }
    for i in 0..5 {
        any.transact(switch(&format!("sw{i}"), 2)).await.unwrap();
    }
    let leader = tokio::task::block_in_place(|| cluster.leader().unwrap());
    let leader_remote = cluster.member_remote(leader);
    assert_eq!(
        leader_only.status().remote.as_deref(),
        Some(leader_remote.as_str()),
        "leader_only talks to the leader"
    );
    for s in [&any, &leader_only] {
        assert_replica_matches(s, &leader_remote, DB, TABLES, "before the leader dies").await;
    }
    members_caught_up(&cluster, &any, &[]).await;
    let rows = any.read(|r| r.row_count());
    let st0 = leader_only.status();

    // Sample both replicas while the leader dies and the sessions move.
    let stop = Arc::new(AtomicBool::new(false));
    let min_rows = Arc::new(AtomicUsize::new(usize::MAX));
    let sampler = {
        let (stop, min_rows, a, b) = (
            stop.clone(),
            min_rows.clone(),
            any.clone(),
            leader_only.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = a.read(|r| r.row_count()).min(b.read(|r| r.row_count()));
                min_rows.fetch_min(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    tokio::task::block_in_place(|| cluster.kill_member(leader).unwrap());
    wait_status(
        &leader_only,
        "leader_only session to leave the dead leader",
        |s| s.connects > st0.connects || !s.connected,
    )
    .await;
    let new_leader = tokio::task::block_in_place(|| cluster.wait_for_leader(WAIT).unwrap());
    assert_ne!(new_leader, leader);
    let new_leader_remote = cluster.member_remote(new_leader);
    let st1 = wait_status(&leader_only, "leader_only session on the new leader", |s| {
        s.connected && s.remote.as_deref() == Some(new_leader_remote.as_str())
    })
    .await;
    assert!(
        st1.resumes > st0.resumes,
        "resumed on the new leader: {st1:?}"
    );
    assert_eq!(st1.last_reply_rows, 0, "no full dump: {st1:?}");
    tokio::time::timeout(WAIT, any.wait_connected())
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    assert_eq!(
        min_rows.load(Ordering::Relaxed),
        rows,
        "the replicas were never cleared while reconnecting"
    );

    // Writes through both sessions succeed after the election.
    any.transact(switch("after-any", 1)).await.unwrap();
    leader_only
        .transact(switch("after-leader-only", 0))
        .await
        .unwrap();
    let surviving = cluster.member_remote((0..3).find(|&i| i != leader).unwrap());
    for s in [&any, &leader_only] {
        assert_replica_matches(s, &surviving, DB, TABLES, "after the election").await;
        assert_eq!(s.read(|r| r.row_count()), rows + 3);
    }
    watcher.abort();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [leader_remote, new_leader_remote].into(),
        "the leader_only session was only ever connected to leaders"
    );
}
