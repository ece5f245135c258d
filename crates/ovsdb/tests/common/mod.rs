//! Helpers shared by the acceptance tests: dumps of a real ovsdb-server through `ovsdb-client`,
//! a normalisation of RFC 7047 values written independently of the crate's own parser, and waits
//! with upper bounds.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use ovsdb::{Event, Remote, Session, SessionConfig, SessionStatus};
use serde_json::{Map, Value as Json};

/// Upper bound for every wait in these tests (never a performance expectation).
pub const WAIT: Duration = Duration::from_secs(30);

/// True (after printing why) when the test must be skipped because it needs root.
pub fn skip(test: &str) -> bool {
    ovn_route_lab::skip_unless_root(test)
}

/// The crate's TLS settings from the lab's.
pub fn ssl(c: &ovn_route_lab::SslConfig) -> ovsdb::SslConfig {
    ovsdb::SslConfig {
        private_key: c.private_key.clone(),
        certificate: c.certificate.clone(),
        ca_cert: c.ca_cert.clone(),
    }
}

/// A session config for `remotes` (comma-separated) with short back-off so tests move quickly.
pub fn config(remotes: &str, db: &str) -> SessionConfig {
    let mut cfg = SessionConfig::new(Remote::parse_list(remotes).unwrap(), db);
    cfg.backoff_min = Duration::from_millis(50);
    cfg.backoff_max = Duration::from_millis(500);
    cfg
}

/// Normalises one RFC 7047 value so that two notations of the same OVSDB value compare equal:
/// set elements and map pairs sorted (by their JSON text), one-element sets written bare.
/// Deliberately independent of `ovsdb::Datum`.
pub fn norm_value(v: &Json) -> Json {
    if let Json::Array(a) = v {
        if a.len() == 2 {
            match (a[0].as_str(), &a[1]) {
                (Some("set"), Json::Array(elems)) => {
                    let mut e: Vec<Json> = elems.iter().map(norm_value).collect();
                    e.sort_by_key(|x| x.to_string());
                    e.dedup();
                    return if e.len() == 1 {
                        e.pop().unwrap()
                    } else {
                        Json::Array(vec![Json::from("set"), Json::Array(e)])
                    };
                }
                (Some("map"), Json::Array(pairs)) => {
                    let mut p: Vec<Json> = pairs
                        .iter()
                        .map(|pair| match pair {
                            Json::Array(kv) if kv.len() == 2 => {
                                Json::Array(vec![norm_value(&kv[0]), norm_value(&kv[1])])
                            }
                            other => other.clone(),
                        })
                        .collect();
                    p.sort_by_key(|x| x[0].to_string());
                    return Json::Array(vec![Json::from("map"), Json::Array(p)]);
                }
                _ => {}
            }
        }
    }
    v.clone()
}

/// Normalises `{table: {uuid: {column: value}}}`: values normalised, `_uuid`/`_version` columns
/// dropped, empty tables dropped.
pub fn norm_db(db: &Json) -> BTreeMap<String, BTreeMap<String, BTreeMap<String, Json>>> {
    let mut out = BTreeMap::new();
    for (t, rows) in db.as_object().expect("db object") {
        let mut rs = BTreeMap::new();
        for (u, row) in rows.as_object().expect("rows object") {
            let cols: BTreeMap<String, Json> = row
                .as_object()
                .expect("row object")
                .iter()
                .filter(|(c, _)| *c != "_uuid" && *c != "_version")
                .map(|(c, v)| (c.clone(), norm_value(v)))
                .collect();
            rs.insert(u.clone(), cols);
        }
        if !rs.is_empty() {
            out.insert(t.clone(), rs);
        }
    }
    out
}

pub type NormDb = BTreeMap<String, BTreeMap<String, BTreeMap<String, Json>>>;

/// `ovsdb-client -f json dump REMOTE DB [TABLE]` converted from headings/data to
/// `{table: {uuid: {column: value}}}` (only `tables`, or all when empty).
pub fn dump(
    remote: &str,
    db: &str,
    tables: &[&str],
    ssl: Option<&ovn_route_lab::SslConfig>,
) -> Json {
    let mut cmd = Command::new("ovsdb-client");
    cmd.arg("--timeout=20").args(["-f", "json"]);
    if let Some(s) = ssl {
        cmd.args(s.args());
    }
    cmd.args(["dump", remote, db]);
    if tables.len() == 1 {
        cmd.arg(tables[0]);
    }
    let text =
        ovn_route_lab::run(&mut cmd).unwrap_or_else(|e| panic!("ovsdb-client dump failed: {e}"));
    let mut out = Map::new();
    for t in serde_json::Deserializer::from_str(&text).into_iter::<Json>() {
        let t = t.unwrap_or_else(|e| panic!("ovsdb-client printed invalid JSON: {e}\n{text}"));
        let caption = t["caption"].as_str().expect("caption");
        let name = caption
            .strip_suffix(" table")
            .unwrap_or(caption)
            .to_string();
        if !tables.is_empty() && !tables.contains(&name.as_str()) {
            continue;
        }
        let headings: Vec<&str> = t["headings"]
            .as_array()
            .expect("headings")
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        let uuid_col = headings
            .iter()
            .position(|h| *h == "_uuid")
            .expect("_uuid heading");
        let mut rows = Map::new();
        for row in t["data"].as_array().expect("data") {
            let row = row.as_array().unwrap();
            let uuid = row[uuid_col][1].as_str().unwrap().to_string();
            let cols: Map<String, Json> = headings
                .iter()
                .zip(row)
                .map(|(h, v)| (h.to_string(), v.clone()))
                .collect();
            rows.insert(uuid, Json::Object(cols));
        }
        out.insert(name, Json::Object(rows));
    }
    Json::Object(out)
}

/// The session's replica, normalised (only `tables`, or all when empty).
pub fn replica(session: &Session, tables: &[&str]) -> NormDb {
    let mut j = session.read(|r| r.to_json());
    if !tables.is_empty() {
        j.as_object_mut()
            .unwrap()
            .retain(|t, _| tables.contains(&t.as_str()));
    }
    norm_db(&j)
}

/// A readable description of how two normalised databases differ.
pub fn describe_diff(got: &NormDb, want: &NormDb) -> String {
    let mut out = String::new();
    let empty = BTreeMap::new();
    let tables: std::collections::BTreeSet<&String> = got.keys().chain(want.keys()).collect();
    for t in tables {
        let g = got.get(t).unwrap_or(&empty);
        let w = want.get(t).unwrap_or(&empty);
        let uuids: std::collections::BTreeSet<&String> = g.keys().chain(w.keys()).collect();
        for u in uuids {
            match (g.get(u), w.get(u)) {
                (Some(_), None) => out.push_str(&format!("  {t} {u}: only in replica\n")),
                (None, Some(_)) => out.push_str(&format!("  {t} {u}: missing from replica\n")),
                (Some(a), Some(b)) if a != b => {
                    for (c, bv) in b {
                        let av = a.get(c);
                        if av != Some(bv) {
                            out.push_str(&format!("  {t} {u} {c}: replica {av:?}, server {bv}\n"));
                        }
                    }
                    for c in a.keys().filter(|c| !b.contains_key(*c)) {
                        out.push_str(&format!("  {t} {u} {c}: only in replica\n"));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Waits (at most `WAIT`) until the session's replica equals `want`; panics with the difference.
pub async fn wait_replica_eq(session: &Session, tables: &[&str], want: &NormDb, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = replica(session, tables);
        if &got == want {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: replica still differs from the server after {WAIT:?}:\n{}\nstatus: {:?}",
                describe_diff(&got, want),
                session.status()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Dumps `remote` and waits until the replica equals it.
pub async fn assert_replica_matches(
    session: &Session,
    remote: &str,
    db: &str,
    tables: &[&str],
    what: &str,
) {
    let want = {
        let remote = remote.to_string();
        let db = db.to_string();
        let tables: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let t: Vec<&str> = tables.iter().map(String::as_str).collect();
            norm_db(&dump(&remote, &db, &t, None))
        })
        .await
        .unwrap()
    };
    wait_replica_eq(session, tables, &want, what).await;
}

/// Waits (at most `WAIT`) until the session status satisfies `f`.
pub async fn wait_status(
    session: &Session,
    what: &str,
    f: impl Fn(&SessionStatus) -> bool,
) -> SessionStatus {
    let mut w = session.watch_status();
    let res = match tokio::time::timeout(WAIT, w.wait_for(|s| f(s))).await {
        Ok(Ok(s)) => Some(s.clone()),
        _ => None,
    };
    res.unwrap_or_else(|| {
        panic!(
            "timed out waiting for {what}; status: {:?}",
            session.status()
        )
    })
}

/// Polls `f` (at most `WAIT`) until it returns `Some`.
pub async fn wait_for<T, F: Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Next event matching `f`, skipping others (at most `WAIT`).
pub async fn next_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    what: &str,
    mut f: impl FnMut(&Event) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) if f(&ev) => return ev,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("event stream ended while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// Runs a blocking closure (lab calls, child processes) off the async worker threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}
