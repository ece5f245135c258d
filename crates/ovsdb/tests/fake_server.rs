//! Hostile and broken servers, faked in the test with tokio listeners and in-memory pipes: garbage,
//! oversized and truncated messages, silence (inactivity probe), and malformed rows. The client must
//! report an error, reconnect, never panic, and never buffer more than its message size limit.
//! These tests need no root and no OVS installation.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use common::{next_event, wait_for, wait_status, WAIT};
use ovsdb::framing::FrameDecoder;
use ovsdb::{ConnectOptions, Connection, Error, Event, Remote, Session, SessionConfig};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------------
// Panic detection: a panic in any thread of this test binary (for instance in a session's task,
// which tokio would otherwise swallow) is counted.

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Only panics off the test threads (tokio workers: the client's tasks and the fakes);
            // a failing assertion of one test must not fail the others.
            let name = std::thread::current().name().unwrap_or("").to_string();
            if name.contains("tokio") || name.is_empty() {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

fn assert_no_panic() {
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "something panicked (see the output above)"
    );
}

// ---------------------------------------------------------------------------------------------
// A TCP fake: every accepted connection is handed to `behave`; accepts are counted.

struct Fake {
    remote: String,
    accepts: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn fake<F, Fut>(behave: F) -> Fake
where
    F: Fn(tokio::net::TcpStream, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote = format!("tcp:{}", listener.local_addr().unwrap());
    let accepts = Arc::new(AtomicUsize::new(0));
    let task = {
        let accepts = accepts.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let n = accepts.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(behave(sock, n));
            }
        })
    };
    Fake {
        remote,
        accepts,
        task,
    }
}

fn session_config(remote: &str, max: usize, probe: Option<Duration>) -> SessionConfig {
    let mut cfg = SessionConfig::new(Remote::parse_list(remote).unwrap(), "Fake");
    cfg.backoff_min = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(100);
    cfg.connect.max_message_size = max;
    cfg.connect.probe_interval = probe;
    cfg
}

/// Reads and discards until the peer closes.
async fn drain(mut s: impl AsyncRead + Unpin) {
    let mut buf = [0u8; 4096];
    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Waits for at least `n` accepts, then checks that the session never got to monitoring and that
/// its last error contains every one of `needles`.
async fn retries_with_error(session: &Session, fake: &Fake, n: usize, needles: &[&str]) -> String {
    wait_for(&format!("{n} connection attempts"), || async {
        (fake.accepts.load(Ordering::SeqCst) >= n).then_some(())
    })
    .await;
    let st = session.status();
    assert_eq!(st.connects, 0, "{st:?}");
    let err = st.last_error.clone().expect("an error is reported");
    assert!(
        err.contains(&fake.remote),
        "the error names the remote: {err}"
    );
    for needle in needles {
        assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    }
    err
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_is_an_error_and_the_session_retries() {
    count_panics();
    let fake = fake(|mut s, _| async move {
        let _ = s.write_all(b"\x00\xffthis is not JSON\n").await;
        drain(s).await;
    })
    .await;
    let session = Session::start(session_config(&fake.remote, 1 << 20, None));
    let err = retries_with_error(&session, &fake, 3, &["protocol error", "0x00"]).await;
    eprintln!("garbage: {err}");
    assert_no_panic();
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_message_is_an_error_and_the_session_retries() {
    count_panics();
    let fake = fake(|mut s, _| async move {
        let _ = s.write_all(br#"{"id":1,"result":{"Database":{"#).await;
        let _ = s.shutdown().await;
    })
    .await;
    let session = Session::start(session_config(&fake.remote, 1 << 20, None));
    let err = retries_with_error(&session, &fake, 3, &["in the middle of a message"]).await;
    eprintln!("truncated: {err}");
    assert_no_panic();
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_message_is_refused_and_the_session_retries() {
    count_panics();
    const MAX: usize = 64 * 1024;
    let written = Arc::new(Mutex::new(Vec::new()));
    let fake = {
        let written = written.clone();
        fake(move |mut s, _| {
            let written = written.clone();
            async move {
                // An endless string; stops when the client hangs up (or after 64 MiB).
                let mut total = 0usize;
                if s.write_all(br#"{"id":1,"result":""#).await.is_ok() {
                    let chunk = vec![b'a'; 64 * 1024];
                    while total < 64 << 20 && s.write_all(&chunk).await.is_ok() {
                        total += chunk.len();
                    }
                }
                written.lock().unwrap().push(total);
            }
        })
        .await
    };
    let session = Session::start(session_config(&fake.remote, MAX, None));
    let err = retries_with_error(&session, &fake, 3, &["larger than the 65536-byte limit"]).await;
    eprintln!("oversized: {err}");
    // Every finished connection was hung up on long before the 64 MiB the fake would send (what it
    // managed to write is bounded by the limit plus socket buffers).
    wait_for("a finished fake connection", || async {
        (!written.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    for w in written.lock().unwrap().iter() {
        assert!(
            *w < 32 << 20,
            "the client kept reading {w} bytes of one message"
        );
    }
    assert_no_panic();
}

/// The size limit measured exactly, over an in-memory pipe with a small buffer: the client stops
/// reading as soon as the message under way passes the limit.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_message_reading_stops_at_the_limit() {
    count_panics();
    const MAX: usize = 64 * 1024;
    const PIPE: usize = 4096;
    let (client, mut server) = tokio::io::duplex(PIPE);
    let opts = ConnectOptions {
        max_message_size: MAX,
        probe_interval: None,
        ..ConnectOptions::default()
    };
    let (conn, _notes) = Connection::from_stream("fake:pipe".into(), Box::new(client), &opts);
    let writer = tokio::spawn(async move {
        let mut total = 0usize;
        let _ = server.write_all(br#"{"id":1,"result":""#).await;
        let chunk = [b'a'; 1024];
        // Blocks once the client stops reading; fails once it is gone.
        while total < 16 << 20 && server.write_all(&chunk).await.is_ok() {
            total += chunk.len();
        }
        total
    });
    let err = tokio::time::timeout(WAIT, conn.call("list_dbs", &json!([])))
        .await
        .expect("answered")
        .unwrap_err();
    assert!(
        matches!(&err, Error::Closed { reason, .. } if reason.contains("65536-byte limit")),
        "{err}"
    );
    drop(conn);
    let total = tokio::time::timeout(WAIT, writer).await.unwrap().unwrap();
    assert!(
        total <= MAX + 2 * PIPE + 1024,
        "the client consumed {total} bytes for a {MAX}-byte limit"
    );
    assert!(
        total >= MAX - PIPE,
        "the limit is the configured one: {total}"
    );
    assert_no_panic();
}

/// A complete message larger than the limit is refused even when it arrives in one piece.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_message_is_refused_even_when_it_arrives_whole() {
    count_panics();
    const MAX: usize = 1000;
    let (client, mut server) = tokio::io::duplex(1 << 20);
    let opts = ConnectOptions {
        max_message_size: MAX,
        probe_interval: None,
        ..ConnectOptions::default()
    };
    let (conn, _notes) = Connection::from_stream("fake:pipe".into(), Box::new(client), &opts);
    let big = format!(r#"{{"id":1,"result":"{}","error":null}}"#, "a".repeat(5000));
    server.write_all(big.as_bytes()).await.unwrap();
    let res = tokio::time::timeout(WAIT, conn.call("list_dbs", &json!([])))
        .await
        .expect("answered");
    match res {
        Err(Error::Closed { reason, .. }) if reason.contains("1000-byte limit") => {}
        other => panic!(
            "a {}-byte reply passed a {MAX}-byte limit: {other:?}",
            big.len()
        ),
    }
    // A message within the limit on a fresh connection is fine. The reply is written once the
    // request arrived: one written before could reach the client ahead of its call, as an
    // answer to nothing, and the call would then wait forever.
    let (client, mut server) = tokio::io::duplex(1 << 20);
    let (conn, _notes) = Connection::from_stream("fake:pipe".into(), Box::new(client), &opts);
    let call = tokio::spawn(async move { conn.list_dbs().await });
    let mut req = [0u8; 4096];
    let n = tokio::time::timeout(WAIT, server.read(&mut req))
        .await
        .expect("the request")
        .unwrap();
    assert!(n > 0);
    server
        .write_all(br#"{"id":1,"result":["OVN_Northbound"],"error":null}"#)
        .await
        .unwrap();
    let dbs = tokio::time::timeout(WAIT, call)
        .await
        .expect("answered")
        .unwrap()
        .unwrap();
    assert_eq!(dbs, vec!["OVN_Northbound".to_string()]);
    assert_no_panic();
}

/// Malformed JSON-RPC of every kind ends the connection with an error naming the problem; nothing
/// panics and the pending call is answered.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_messages_end_the_connection_cleanly() {
    count_panics();
    let cases: &[(&[u8], &str)] = &[
        (b"\x00garbage", "protocol error"),
        (b"  \n }", "protocol error"),
        (b"[1,2,3]", "JSON-RPC message must be an object"),
        (b"{\"result\":1}", "response without id"),
        (b"{\"id\":1,\"result\":[", "in the middle of a message"),
        (b"{\"id\":1,\"result\":\"\\", "in the middle of a message"),
        (b"{\"id\":1,\"method\":7}", "\"method\" is not a string"),
        (b"{\"id\":1,\"result\":tru}", "invalid message"),
        (b"{\"id\":1, \"result\": \"\xff\xfe\"}", "invalid message"),
    ];
    for (bytes, needle) in cases {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let opts = ConnectOptions {
            max_message_size: 1 << 16,
            probe_interval: None,
            ..ConnectOptions::default()
        };
        let (conn, _notes) = Connection::from_stream("fake:pipe".into(), Box::new(client), &opts);
        let params = json!([]);
        let call = conn.call("list_dbs", &params);
        let feed = async {
            server.write_all(bytes).await.unwrap();
            server.shutdown().await.unwrap();
        };
        let (res, ()) = tokio::time::timeout(WAIT, async { tokio::join!(call, feed) })
            .await
            .expect("answered");
        let text = String::from_utf8_lossy(bytes);
        match res {
            Err(Error::Closed { reason, .. }) => assert!(
                reason.contains(needle),
                "{text:?}: {reason:?} lacks {needle:?}"
            ),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    // An error reply is a clean RPC error; the connection goes on.
    let (client, server) = tokio::io::duplex(1 << 16);
    let (conn, _notes) = Connection::from_stream(
        "fake:pipe".into(),
        Box::new(client),
        &ConnectOptions::default(),
    );
    let replies = vec![
        json!({"result": null, "error": {"error": "unknown database", "details": "nope"}}),
        json!({"result": {}, "error": null}),
    ];
    tokio::spawn(answer_in_turn(server, replies));
    let e = conn.get_schema("X").await.unwrap_err();
    assert!(matches!(e, Error::NoSuchDatabase { .. }), "{e}");
    assert_eq!(conn.call("echo", &json!([])).await.unwrap(), json!({}));
    assert_no_panic();
}

/// Answers each request read from `s` with the next of `replies` (given the request's id).
async fn answer_in_turn(s: impl AsyncRead + AsyncWrite + Unpin, replies: Vec<Json>) {
    let (mut rd, mut wr) = tokio::io::split(s);
    let mut replies = replies.into_iter();
    let mut dec = FrameDecoder::new(1 << 20);
    let mut buf = [0u8; 4096];
    while let Ok(n) = rd.read(&mut buf).await {
        if n == 0 {
            return;
        }
        dec.extend(&buf[..n]);
        while let Ok(Some(frame)) = dec.next_frame() {
            let req: Json = serde_json::from_slice(&frame).unwrap();
            let Some(mut reply) = replies.next() else {
                return;
            };
            reply["id"] = req["id"].clone();
            let _ = wr.write_all(reply.to_string().as_bytes()).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Inactivity probe

/// A server that accepts and never answers while the session's first request is due: it may be
/// busy computing the reply (ovsdb-server answers nothing meanwhile, not even echo), so the session
/// keeps probing but does not drop the connection. A server that falls silent with nothing due is
/// dropped (tests/probe.rs).
#[tokio::test(flavor = "multi_thread")]
async fn silent_server_is_probed_but_kept_while_a_reply_is_due() {
    count_panics();
    let received = Arc::new(Mutex::new(Vec::<u8>::new()));
    let fake = {
        let received = received.clone();
        fake(move |mut s, _| {
            let received = received.clone();
            async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    received.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
        })
        .await
    };
    let probe = Duration::from_millis(200);
    let session = Session::start(session_config(&fake.remote, 1 << 20, Some(probe)));
    // Two echoes: the connection outlived the two intervals that end one with nothing due.
    wait_for("two echo probes", || async {
        let text = String::from_utf8_lossy(&received.lock().unwrap()).to_string();
        (text.matches(r#""method":"echo""#).count() >= 2).then_some(())
    })
    .await;
    let st = session.status();
    assert_eq!(st.connects, 0, "{st:?}");
    assert_eq!(st.last_error, None, "{st:?}");
    assert_eq!(fake.accepts.load(Ordering::SeqCst), 1);
    assert_no_panic();
}

/// At the connection level, timed, with nothing due: the connection closes after about two probe
/// intervals (never before), with a reason naming the probe.
#[tokio::test(flavor = "multi_thread")]
async fn connection_probe_timing() {
    count_panics();
    let fake = fake(|s, _| drain(s)).await;
    let probe = Duration::from_millis(200);
    let opts = ConnectOptions {
        probe_interval: Some(probe),
        ..ConnectOptions::default()
    };
    let (conn, _notes) = Connection::connect(&Remote::parse(&fake.remote).unwrap(), &opts)
        .await
        .unwrap();
    let start = Instant::now();
    let reason = wait_for("the probe to end the connection", || async {
        conn.close_reason()
    })
    .await;
    let elapsed = start.elapsed();
    assert!(reason.contains("inactivity probe"), "{reason}");
    assert!(
        elapsed >= probe * 2 - Duration::from_millis(20),
        "dropped after {elapsed:?}, before two probe intervals"
    );
    match conn.call("list_dbs", &json!([])).await {
        Err(Error::Closed { reason, .. }) => {
            assert!(reason.contains("inactivity probe"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_no_panic();
}

/// A quiet server that answers echo requests keeps the connection up.
#[tokio::test(flavor = "multi_thread")]
async fn quiet_but_live_server_is_kept() {
    count_panics();
    let echoes = Arc::new(AtomicUsize::new(0));
    let fake = {
        let echoes = echoes.clone();
        fake(move |s, _| {
            let echoes = echoes.clone();
            async move {
                let (mut rd, mut wr) = tokio::io::split(s);
                let mut dec = FrameDecoder::new(1 << 20);
                let mut buf = [0u8; 4096];
                while let Ok(n) = rd.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    dec.extend(&buf[..n]);
                    while let Ok(Some(frame)) = dec.next_frame() {
                        let req: Json = serde_json::from_slice(&frame).unwrap();
                        if req["method"] == "echo" {
                            echoes.fetch_add(1, Ordering::SeqCst);
                            let reply =
                                json!({"id": req["id"], "result": req["params"], "error": null});
                            let _ = wr.write_all(reply.to_string().as_bytes()).await;
                        }
                    }
                }
            }
        })
        .await
    };
    let probe = Duration::from_millis(200);
    let opts = ConnectOptions {
        probe_interval: Some(probe),
        ..ConnectOptions::default()
    };
    let (conn, _notes) = Connection::connect(&Remote::parse(&fake.remote).unwrap(), &opts)
        .await
        .unwrap();
    tokio::time::sleep(probe * 10).await;
    assert_eq!(conn.close_reason(), None, "a live server is not dropped");
    assert!(
        echoes.load(Ordering::SeqCst) >= 2,
        "probes were sent and answered"
    );
    assert_eq!(fake.accepts.load(Ordering::SeqCst), 1);
    assert_no_panic();
}

// ---------------------------------------------------------------------------------------------
// A scripted OVSDB server: answers the session's handshake, then sends hostile notifications.

const FAKE_SCHEMA: &str = r#"{"name":"Fake","version":"1.0.0","tables":{"T":{"columns":{
    "name":{"type":"string"},
    "n":{"type":{"key":"integer","min":0,"max":1}},
    "m":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}}}}}"#;

const ROW1: &str = "00000000-0000-0000-0000-000000000001";
const ROW2: &str = "00000000-0000-0000-0000-000000000002";

/// Serves the handshake: `_Server` monitor reply `server_rows`, the schema, a monitor reply with
/// row 1, then sends `after` (raw bytes, one message each).
async fn scripted(server_rows: Json, after: Vec<Vec<u8>>) -> Fake {
    let server_rows = Arc::new(server_rows);
    let after = Arc::new(after);
    fake(move |s, _| {
        let (server_rows, after) = (server_rows.clone(), after.clone());
        async move {
            let (mut rd, mut wr) = tokio::io::split(s);
            let mut dec = FrameDecoder::new(1 << 20);
            let mut buf = [0u8; 4096];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0 {
                    return;
                }
                dec.extend(&buf[..n]);
                while let Ok(Some(frame)) = dec.next_frame() {
                    let req: Json = serde_json::from_slice(&frame).unwrap();
                    let result = match req["method"].as_str().unwrap_or("") {
                        "monitor_cond" => (*server_rows).clone(),
                        "set_db_change_aware" => json!({}),
                        "get_schema" => serde_json::from_str(FAKE_SCHEMA).unwrap(),
                        "monitor_cond_since" => {
                            json!([false, "11111111-1111-1111-1111-111111111111",
                            {"T": {ROW1: {"initial": {"name": "one", "n": 1}}}}])
                        }
                        "echo" => req["params"].clone(),
                        "transact" => json!([{}]),
                        _ => json!({}),
                    };
                    let reply = json!({"id": req["id"], "result": result, "error": null});
                    let _ = reply_then(&mut wr, reply, &req, &after).await;
                }
            }
        }
    })
    .await
}

async fn reply_then(
    wr: &mut (impl AsyncWrite + Unpin),
    reply: Json,
    req: &Json,
    after: &[Vec<u8>],
) -> std::io::Result<()> {
    wr.write_all(reply.to_string().as_bytes()).await?;
    if req["method"] == "monitor_cond_since" {
        for m in after {
            wr.write_all(m).await?;
        }
    }
    Ok(())
}

fn update3(updates: Json) -> Vec<u8> {
    json!({"id": null, "method": "update3",
           "params": ["ovsdb-rs", "22222222-2222-2222-2222-222222222222", updates]})
    .to_string()
    .into_bytes()
}

async fn scripted_session(server_rows: Json, after: Vec<Vec<u8>>) -> (Fake, Session) {
    let fake = scripted(server_rows, after).await;
    let session = Session::start(session_config(&fake.remote, 1 << 20, None));
    (fake, session)
}

/// Malformed `_Server` rows (not objects, wrong types) must not panic the session.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_server_rows_do_not_panic_the_session() {
    count_panics();
    let server_update = |row: Json| {
        json!({"id": null, "method": "update2",
               "params": ["ovsdb-rs-server", {"Database": {ROW2: {"modify": row}}}]})
        .to_string()
        .into_bytes()
    };
    let (fake, session) = scripted_session(
        json!({"Database": {ROW2: {"initial": 5}}}),
        vec![
            server_update(json!({"name": "Fake", "model": "clustered", "leader": true})),
            server_update(json!({"index": "not a number", "connected": "yes"})),
            server_update(json!([1, 2])),
            update3(json!({"T": {ROW2: {"insert": {"name": "two"}}}})),
        ],
    )
    .await;
    let mut events = session.subscribe();
    wait_for("row 2 after the malformed _Server updates", || async {
        session
            .read(|r| r.table("T").is_some_and(|t| t.len() == 2))
            .then_some(())
    })
    .await;
    let st = session.status();
    assert!(st.connected, "{st:?}");
    assert_eq!(st.connects, 1, "{st:?}");
    next_event(&mut events, "Changed", |e| matches!(e, Event::Changed(_))).await;
    assert_eq!(fake.accepts.load(Ordering::SeqCst), 1);
    assert_no_panic();
}

/// Update notifications that do not fit the schema end the connection with an error naming the
/// problem; the session reconnects (full dump) and stays usable.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_updates_drop_the_connection_and_the_session_recovers() {
    count_panics();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            update3(json!({"T": {"not-a-uuid": {"insert": {}}}})),
            "not a UUID",
        ),
        (
            update3(json!({"T": {ROW2: {"insert": {"name": ["bag", []]}}}})),
            "bag",
        ),
        (
            update3(json!({"T": {ROW2: {"frobnicate": {}}}})),
            "frobnicate",
        ),
        (update3(json!({"T": {ROW2: {}}})), "empty row update"),
        (
            update3(json!({"T": [1, 2]})),
            "expected an object of row updates",
        ),
        (
            br#"{"id":null,"method":"update3","params":["ovsdb-rs","xyz",{}]}"#.to_vec(),
            "xyz",
        ),
        (
            br#"{"id":null,"method":"update3","params":[]}"#.to_vec(),
            "missing monitor id",
        ),
        (
            br#"{"id":null,"method":"update3"}"#.to_vec(),
            "invalid update3 notification",
        ),
        (
            br#"{"id":null,"method":"monitor_canceled","params":["ovsdb-rs"]}"#.to_vec(),
            "canceled",
        ),
    ];
    for (bytes, needle) in cases {
        let text = String::from_utf8_lossy(&bytes).to_string();
        let (fake, session) = scripted_session(json!({}), vec![bytes]).await;
        wait_for(&format!("a reconnect after {text}"), || async {
            (fake.accepts.load(Ordering::SeqCst) >= 2).then_some(())
        })
        .await;
        let st = wait_status(&session, "connected again", |s| {
            s.connects >= 2 && s.last_error.is_some()
        })
        .await;
        let err = st.last_error.clone().unwrap();
        assert!(err.contains(needle), "{text}: {err:?} lacks {needle:?}");
        // The replica is the server's content (row 1), whatever happened.
        assert_eq!(
            session.read(|r| r.table("T").map(|t| t.len())),
            Some(1),
            "{text}"
        );
    }
    assert_no_panic();
}
