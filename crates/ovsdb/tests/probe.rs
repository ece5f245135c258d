//! The inactivity probe against busy and silent fake servers: a server that takes longer than two
//! probe intervals to compute a reply we wait for (like ovsdb-server computing the initial monitor
//! reply of a large database, answering nothing meanwhile, not even `echo`) is not dropped; a
//! silent server that owes us nothing still is; `unix:` remotes are not probed unless asked.
//! These tests need no root and no OVS installation.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{wait_for, wait_status, WAIT};
use ovsdb::framing::FrameDecoder;
use ovsdb::{ConnectOptions, Connection, Error, Remote, Session, SessionConfig};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Probe interval used throughout.
const PROBE: Duration = Duration::from_millis(200);
/// How long the busy fake holds its slow reply at least (five probe intervals).
const BUSY: Duration = Duration::from_secs(1);
/// Echoes the busy fake waits for before it answers: more than the one the probe sends before
/// it would drop a connection without a reply due.
const ECHOES_WHILE_BUSY: usize = 3;

const SCHEMA: &str = r#"{"name":"Fake","version":"1.0.0","tables":{"T":{"columns":{
    "name":{"type":"string"}}}}}"#;
const ROW1: &str = "00000000-0000-0000-0000-000000000001";

/// How a fake connection behaves.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Holds the reply to `slow` (a method name) until `BUSY` has passed and `ECHOES_WHILE_BUSY`
    /// echoes arrived meanwhile, answering nothing else in between (a busy, single-threaded
    /// server); answers everything promptly otherwise.
    Busy { slow: &'static str },
    /// Answers promptly until the monitor reply is sent, then reads and answers nothing.
    SilentAfterMonitor,
    /// Never answers anything.
    Silent,
}

/// What the fakes saw, shared with the test.
#[derive(Default)]
struct Seen {
    accepts: AtomicUsize,
    /// Echo requests that arrived while a slow reply was held, per connection.
    echoes_while_busy: Mutex<Vec<usize>>,
    /// Every request's method, in arrival order, over all connections.
    methods: Mutex<Vec<String>>,
}

fn reply_for(req: &Json) -> Json {
    let result = match req["method"].as_str().unwrap_or("") {
        "monitor_cond" => json!({}),
        "get_schema" => serde_json::from_str(SCHEMA).unwrap(),
        "monitor_cond_since" => json!([false, "11111111-1111-1111-1111-111111111111",
            {"T": {ROW1: {"initial": {"name": "one"}}}}]),
        "list_dbs" => json!(["Fake"]),
        "echo" => req["params"].clone(),
        _ => json!({}),
    };
    json!({"id": req["id"], "result": result, "error": null})
}

async fn send(wr: &mut (impl AsyncWrite + Unpin), msg: &Json) -> bool {
    wr.write_all(msg.to_string().as_bytes()).await.is_ok()
}

/// Serves one connection as `behaviour` says.
async fn serve(s: impl AsyncRead + AsyncWrite + Unpin, behaviour: Behaviour, seen: Arc<Seen>) {
    let (mut rd, mut wr) = tokio::io::split(s);
    let mut dec = FrameDecoder::new(1 << 20);
    let mut buf = [0u8; 4096];
    // The slow request being held: when it came, echoes since, requests queued behind it.
    let mut held: Option<(Json, Instant, usize, Vec<Json>)> = None;
    let mut silent = matches!(behaviour, Behaviour::Silent);
    loop {
        let read = tokio::time::timeout(Duration::from_millis(20), rd.read(&mut buf)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => dec.extend(&buf[..n]),
            Err(_) => {}
        }
        while let Ok(Some(frame)) = dec.next_frame() {
            let req: Json = serde_json::from_slice(&frame).unwrap();
            let method = req["method"].as_str().unwrap_or("").to_string();
            seen.methods.lock().unwrap().push(method.clone());
            if silent {
                continue;
            }
            if let Some((_, _, echoes, queued)) = held.as_mut() {
                if method == "echo" {
                    *echoes += 1;
                }
                queued.push(req);
                continue;
            }
            match behaviour {
                Behaviour::Busy { slow } if method == slow => {
                    held = Some((req, Instant::now(), 0, vec![]));
                    continue;
                }
                _ => {}
            }
            if !send(&mut wr, &reply_for(&req)).await {
                return;
            }
            if method == "monitor_cond_since" && matches!(behaviour, Behaviour::SilentAfterMonitor)
            {
                silent = true;
            }
        }
        // Done computing? Then the slow reply, then whatever queued behind it, in order.
        let done = held
            .as_ref()
            .is_some_and(|(_, t, e, _)| t.elapsed() >= BUSY && *e >= ECHOES_WHILE_BUSY);
        if done {
            let (req, _, echoes, queued) = held.take().unwrap();
            seen.echoes_while_busy.lock().unwrap().push(echoes);
            for r in std::iter::once(req).chain(queued) {
                if !send(&mut wr, &reply_for(&r)).await {
                    return;
                }
            }
        }
    }
}

/// A TCP fake serving every connection as `behaviour` says; aborted on drop.
struct Fake {
    remote: String,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tcp_fake(behaviour: Behaviour) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote = format!("tcp:{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let task = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                seen.accepts.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(sock, behaviour, seen.clone()));
            }
        })
    };
    Fake { remote, seen, task }
}

fn session_config(remote: &str) -> SessionConfig {
    let mut cfg = SessionConfig::new(Remote::parse_list(remote).unwrap(), "Fake");
    cfg.backoff_min = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(100);
    cfg.connect.probe_interval = Some(PROBE);
    cfg
}

fn probe_opts() -> ConnectOptions {
    ConnectOptions {
        probe_interval: Some(PROBE),
        ..ConnectOptions::default()
    }
}

/// The measured problem: the server needs longer than two probe intervals before the first byte
/// of the initial monitor reply. The session waits for it on its first connection, and once the
/// server answers echoes again the connection stays up.
#[tokio::test(flavor = "multi_thread")]
async fn slow_monitor_reply_does_not_cause_a_reconnect() {
    let fake = tcp_fake(Behaviour::Busy {
        slow: "monitor_cond_since",
    })
    .await;
    let session = Session::start(session_config(&fake.remote));
    let st = wait_status(&session, "the replica after the slow monitor reply", |s| {
        s.synced || s.connects > 0 || s.last_error.is_some()
    })
    .await;
    assert!(st.synced && st.connected, "{st:?}");
    assert_eq!(st.connects, 1, "{st:?}");
    assert_eq!(st.last_error, None, "{st:?}");
    assert_eq!(
        session.read(|r| r.table("T").map(|t| t.len())),
        Some(1),
        "the monitor reply's row"
    );
    let echoes = fake.seen.echoes_while_busy.lock().unwrap().clone();
    assert_eq!(echoes.len(), 1, "one slow reply was held: {echoes:?}");
    assert!(
        echoes[0] >= ECHOES_WHILE_BUSY,
        "the probe kept sending echoes while the reply was due: {echoes:?}"
    );
    // Quiet afterwards, answering echoes: kept.
    tokio::time::sleep(PROBE * 5).await;
    let st = session.status();
    assert!(st.connected, "{st:?}");
    assert_eq!(st.connects, 1, "{st:?}");
    assert_eq!(fake.seen.accepts.load(Ordering::SeqCst), 1);
}

/// Once the replica is current nothing of ours is pending: a server that then falls silent (not
/// even answering echo) is dropped by the probe and the session reconnects.
#[tokio::test(flavor = "multi_thread")]
async fn silent_server_with_nothing_pending_is_dropped() {
    let fake = tcp_fake(Behaviour::SilentAfterMonitor).await;
    let session = Session::start(session_config(&fake.remote));
    let st = wait_status(&session, "a reconnect after the probe", |s| {
        s.connects >= 2 && s.last_error.is_some()
    })
    .await;
    let err = st.last_error.clone().unwrap();
    assert!(err.contains("inactivity probe"), "{err}");
    assert!(fake.seen.accepts.load(Ordering::SeqCst) >= 2);
    let methods = fake.seen.methods.lock().unwrap().clone();
    let after_monitor = methods
        .iter()
        .skip_while(|m| *m != "monitor_cond_since")
        .skip(1)
        .take_while(|m| *m != "monitor_cond");
    assert!(
        after_monitor.clone().any(|m| m == "echo"),
        "an echo was sent before hanging up: {methods:?}"
    );
}

/// The same at the connection level, for any request: a reply that takes longer than two probe
/// intervals arrives, and the connection is kept.
#[tokio::test(flavor = "multi_thread")]
async fn call_waiting_for_a_slow_reply_keeps_the_connection() {
    let fake = tcp_fake(Behaviour::Busy { slow: "list_dbs" }).await;
    let (conn, _notes) = Connection::connect(&Remote::parse(&fake.remote).unwrap(), &probe_opts())
        .await
        .unwrap();
    let dbs = tokio::time::timeout(WAIT, conn.list_dbs())
        .await
        .expect("answered");
    assert_eq!(dbs.unwrap(), vec!["Fake".to_string()]);
    assert_eq!(conn.close_reason(), None);
    assert!(fake.seen.echoes_while_busy.lock().unwrap()[0] >= ECHOES_WHILE_BUSY);
}

/// A request nobody waits for any more (its caller gave up) does not keep a silent connection up.
#[tokio::test(flavor = "multi_thread")]
async fn abandoned_call_does_not_keep_a_silent_connection() {
    let fake = tcp_fake(Behaviour::Silent).await;
    let (conn, _notes) = Connection::connect(&Remote::parse(&fake.remote).unwrap(), &probe_opts())
        .await
        .unwrap();
    let gave_up = tokio::time::timeout(PROBE / 4, conn.list_dbs()).await;
    assert!(gave_up.is_err(), "the silent fake answered: {gave_up:?}");
    let reason = wait_for("the probe to drop the connection", || async {
        conn.close_reason()
    })
    .await;
    assert!(reason.contains("inactivity probe"), "{reason}");
    let err = conn.list_dbs().await.unwrap_err();
    assert!(matches!(err, Error::Closed { .. }), "{err}");
}

/// `unix:` remotes are not probed by default (as in OVS), only with `probe_unix`.
#[tokio::test(flavor = "multi_thread")]
async fn unix_remotes_are_probed_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let seen = Arc::new(Seen::default());
    let server = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                seen.accepts.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(sock, Behaviour::Silent, seen.clone()));
            }
        })
    };
    let remote = Remote::parse(&format!("unix:{}", path.display())).unwrap();
    let opts = probe_opts();
    assert_eq!(opts.probe_for(&remote), None);
    assert_eq!(
        opts.probe_for(&Remote::parse("tcp:127.0.0.1:6641").unwrap()),
        Some(PROBE)
    );
    assert_eq!(
        opts.probe_for(&Remote::parse("ssl:127.0.0.1:6641").unwrap()),
        Some(PROBE)
    );

    // Default: a silent unix server is kept, and no echo is sent.
    let (conn, _notes) = Connection::connect(&remote, &opts).await.unwrap();
    tokio::time::sleep(PROBE * 5).await;
    assert_eq!(conn.close_reason(), None, "a unix remote was probed");
    assert!(
        !seen.methods.lock().unwrap().iter().any(|m| m == "echo"),
        "an echo went to a unix remote"
    );
    drop(conn);

    // With probe_unix: probed and dropped like tcp.
    let opts = ConnectOptions {
        probe_unix: true,
        ..probe_opts()
    };
    assert_eq!(opts.probe_for(&remote), Some(PROBE));
    let (conn, _notes) = Connection::connect(&remote, &opts).await.unwrap();
    let reason = wait_for("the probe to drop the unix connection", || async {
        conn.close_reason()
    })
    .await;
    assert!(reason.contains("inactivity probe"), "{reason}");
    assert!(seen.methods.lock().unwrap().iter().any(|m| m == "echo"));
    server.abort();
}
