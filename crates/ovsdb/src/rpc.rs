//! One JSON-RPC connection to an OVSDB server: request/response matching, notifications, `echo` both
//! ways and the inactivity probe.
//!
//! The inactivity probe: after one interval without receiving anything an `echo` is sent, after two
//! the connection is dropped. As in OVS it is off for `unix:` remotes (a local server that exits
//! closes the socket). And it never drops a connection while a reply to one of our requests is
//! still awaited: a busy ovsdb-server answers nothing, not even `echo`, while it computes a large
//! reply (the initial monitor reply of a 246 MB database takes it about 10 s before the first byte).
//! Meanwhile an `echo` still goes out every interval, so a TCP peer that is gone (reset) still fails
//! the connection, and a server silent for 24 intervals (at least 120 s) is left even then.
//!
//! Two tasks and a thread per connection: the writer task sends requests; the reader task receives
//! bytes, runs the inactivity probe and a [`FrameScanner`] (size limit, garbage, clean close), and
//! passes the bytes on through a bounded channel to the parser thread, which deserializes each message
//! while it arrives ([`crate::stream`]): the main monitor's data straight into rows, anything else into
//! JSON. No message is ever held whole, and parsing overlaps the transfer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, trace, warn};

use crate::framing::{FrameError, FrameScanner};
use crate::session::MonitorMethod;
use crate::stream::{self, Message, Payload, SharedContext, Updates};
use crate::transport::{self, SslConfig};
use crate::{Error, Remote, TableLayout};

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// TLS files for `ssl:` remotes.
    pub ssl: Option<SslConfig>,
    /// Time allowed to establish the connection.
    pub connect_timeout: Duration,
    /// After this long without receiving anything, send an `echo`; after twice this long, drop the
    /// connection, unless a reply to one of our requests is still due (the server is busy computing
    /// it: the connection is kept and probed again). `None` disables the probe. Applies to `tcp:` and
    /// `ssl:` remotes, and to `unix:` ones only with [`ConnectOptions::probe_unix`].
    pub probe_interval: Option<Duration>,
    /// Probe `unix:` remotes too. Off by default, as in OVS: a local server that exits closes the
    /// socket, and a busy one must not be dropped.
    pub probe_unix: bool,
    /// Largest message accepted from the server, in bytes.
    pub max_message_size: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            ssl: None,
            connect_timeout: Duration::from_secs(10),
            probe_interval: Some(Duration::from_secs(5)),
            probe_unix: false,
            max_message_size: 1 << 30,
        }
    }
}

impl ConnectOptions {
    /// The probe interval used for `remote`: none for `unix:` remotes unless
    /// [`ConnectOptions::probe_unix`] is set.
    pub fn probe_for(&self, remote: &Remote) -> Option<Duration> {
        match remote {
            Remote::Unix(_) if !self.probe_unix => None,
            _ => self.probe_interval,
        }
    }
}

/// A notification (or unsolicited request) from the server.
#[derive(Debug)]
pub struct Notification {
    /// The method, e.g. `update3`, `locked`, `stolen`, `monitor_canceled`.
    pub method: String,
    /// Its parameters.
    pub params: Payload,
}

pub(crate) type Pending =
    Arc<Mutex<HashMap<u64, (String, oneshot::Sender<Result<Payload, Error>>)>>>;

/// An open JSON-RPC connection. Dropping it closes the connection.
pub struct Connection {
    remote: String,
    out: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU64,
    closed: Arc<Mutex<Option<String>>>,
    ctx: SharedContext,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Connection {
    /// Connects to `remote` and starts the reader and writer tasks. Notifications are delivered on the
    /// returned receiver; it ends when the connection closes ([`Connection::close_reason`] says why).
    /// The inactivity probe runs as [`ConnectOptions::probe_for`] says for this remote.
    pub async fn connect(
        remote: &Remote,
        opts: &ConnectOptions,
    ) -> Result<(Connection, mpsc::UnboundedReceiver<Notification>), Error> {
        let stream = transport::connect(remote, opts.ssl.as_ref(), opts.connect_timeout).await?;
        let opts = ConnectOptions {
            probe_interval: opts.probe_for(remote),
            ..opts.clone()
        };
        Ok(Self::from_stream(remote.to_string(), stream, &opts))
    }

    /// Wraps an already connected stream (used by tests and tools); `opts.probe_interval` applies
    /// as given, whatever the stream is.
    pub fn from_stream(
        remote: String,
        stream: Box<dyn transport::Stream>,
        opts: &ConnectOptions,
    ) -> (Connection, mpsc::UnboundedReceiver<Notification>) {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let (note_tx, note_rx) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let closed: Arc<Mutex<Option<String>>> = Arc::default();
        let ctx: SharedContext = Arc::default();

        // Why each side stopped; the parser thread, always the last to stop, settles `closed` with
        // the most precise reason: its own error, else the reader's, else the writer's.
        let read_reason: Arc<Mutex<Option<String>>> = Arc::default();
        let write_reason: Arc<Mutex<Option<String>>> = Arc::default();

        let writer = {
            let write_reason = write_reason.clone();
            let remote = remote.clone();
            tokio::spawn(async move {
                while let Some(msg) = out_rx.recv().await {
                    if let Err(e) = wr.write_all(&msg).await {
                        let mut c = write_reason.lock().unwrap();
                        c.get_or_insert_with(|| {
                            format!("write failed: {}", transport::describe_io_error(&e))
                        });
                        debug!(%remote, error = %e, "write failed");
                        break;
                    }
                }
                let _ = wr.shutdown().await;
            })
        };

        // The parser thread: bytes in, messages dispatched. It ends when the reader task drops the
        // chunk sender (end of stream) or on a protocol error.
        let (chunk_tx, chunk_rx) = mpsc::channel::<Vec<u8>>(16);
        {
            let read_reason = read_reason.clone();
            let write_reason = write_reason.clone();
            let remote = remote.clone();
            let pending = pending.clone();
            let closed = closed.clone();
            let out = out_tx.clone();
            let ctx = ctx.clone();
            let closed_spawn = closed.clone();
            let spawned = std::thread::Builder::new()
                .name("ovsdb-parser".into())
                .spawn(move || {
                    let reader = ChunkReader { rx: chunk_rx };
                    let res = stream::read_messages(reader, &ctx, |m| {
                        dispatch(&remote, m, &out, &pending, &note_tx)
                    });
                    let reason = match res {
                        Err(reason) => reason,
                        Ok(()) => read_reason
                            .lock()
                            .unwrap()
                            .clone()
                            .or_else(|| write_reason.lock().unwrap().clone())
                            .unwrap_or_else(|| "connection closed".into()),
                    };
                    debug!(%remote, %reason, "connection closed");
                    let reason = closed.lock().unwrap().get_or_insert(reason).clone();
                    fail_pending(&remote, &pending, &reason);
                    drop(note_tx);
                });
            if let Err(e) = spawned {
                closed_spawn
                    .lock()
                    .unwrap()
                    .get_or_insert(format!("cannot start the parser thread: {e}"));
            }
        }

        let reader = {
            let out = out_tx.clone();
            let probe = opts.probe_interval.map(|interval| Probe {
                interval,
                pending: pending.clone(),
                remote: remote.clone(),
            });
            let max = opts.max_message_size;
            tokio::spawn(async move {
                let reason = read_loop(&mut rd, &chunk_tx, &out, probe, max).await;
                *read_reason.lock().unwrap() = Some(reason);
                // The parser finishes what it received, then settles the reason.
                drop(chunk_tx);
            })
        };

        (
            Connection {
                remote,
                out: out_tx,
                pending,
                next_id: AtomicU64::new(1),
                closed,
                ctx,
                tasks: vec![reader, writer],
            },
            note_rx,
        )
    }

    /// The remote this connection goes to.
    pub fn remote(&self) -> &str {
        &self.remote
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.closed.lock().unwrap().clone()
    }

    /// Sends a request and waits for its reply's `result`.
    pub async fn call_payload(&self, method: &str, params: &Json) -> Result<Payload, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Some(reason) = self.close_reason() {
            return Err(Error::Closed {
                remote: self.remote.clone(),
                reason,
            });
        }
        self.pending
            .lock()
            .unwrap()
            .insert(id, (method.to_string(), tx));
        let msg =
            serde_json::to_vec(&serde_json::json!({"id": id, "method": method, "params": params}))
                .expect("requests serialize");
        trace!(remote = %self.remote, method, id, "request");
        if self.out.send(msg).is_err() {
            self.pending.lock().unwrap().remove(&id);
            return Err(Error::Closed {
                remote: self.remote.clone(),
                reason: self.close_reason().unwrap_or_default(),
            });
        }
        rx.await.unwrap_or_else(|_| {
            Err(Error::Closed {
                remote: self.remote.clone(),
                reason: self.close_reason().unwrap_or_default(),
            })
        })
    }

    /// Sends a request and returns its `result` as JSON.
    pub async fn call(&self, method: &str, params: &Json) -> Result<Json, Error> {
        match self.call_payload(method, params).await? {
            Payload::Json(j) => Ok(j),
            Payload::Updates(_) => Err(Error::Protocol {
                remote: self.remote.clone(),
                reason: format!("reply to {method} looks like monitor data"),
            }),
        }
    }

    /// Sends the main monitor request (`monitor_cond_since`, `monitor_cond` or `monitor`, with
    /// `params`): its reply and the later update notifications for `monitor_id` are parsed straight
    /// into rows of `layouts` while they arrive. Only one request may be outstanding meanwhile.
    pub(crate) async fn monitor(
        &self,
        method: MonitorMethod,
        params: &Json,
        layouts: Arc<HashMap<String, TableLayout>>,
        monitor_id: &str,
    ) -> Result<Updates, Error> {
        {
            let mut c = self.ctx.lock().unwrap();
            c.layouts = layouts;
            c.monitor_id = Some(monitor_id.to_string());
            c.expect_reply = Some(method);
        }
        let name = match method {
            MonitorMethod::CondSince => "monitor_cond_since",
            MonitorMethod::Cond => "monitor_cond",
            MonitorMethod::Plain => "monitor",
        };
        let reply = self.call_payload(name, params).await;
        self.ctx.lock().unwrap().expect_reply = None;
        match reply? {
            Payload::Updates(u) => Ok(u),
            Payload::Json(j) => {
                let mut text = j.to_string();
                text.truncate(200);
                Err(Error::Protocol {
                    remote: self.remote.clone(),
                    reason: format!("invalid {name} reply: {text}"),
                })
            }
        }
    }

    /// `list_dbs`: the databases the server holds.
    pub async fn list_dbs(&self) -> Result<Vec<String>, Error> {
        let j = self.call("list_dbs", &serde_json::json!([])).await?;
        serde_json::from_value(j).map_err(|e| Error::Protocol {
            remote: self.remote.clone(),
            reason: format!("list_dbs reply: {e}"),
        })
    }

    /// `get_schema` for `db`.
    pub async fn get_schema(&self, db: &str) -> Result<crate::DatabaseSchema, Error> {
        match self.call("get_schema", &serde_json::json!([db])).await {
            Ok(j) => crate::DatabaseSchema::from_json(&j),
            Err(Error::Rpc { error, .. }) if error == "unknown database" => {
                Err(Error::NoSuchDatabase {
                    remote: self.remote.clone(),
                    db: db.to_string(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// `transact` on `db`; an operation's error becomes [`Error::Transaction`] naming its index.
    pub async fn transact(&self, db: &str, ops: &[crate::Operation]) -> Result<Vec<Json>, Error> {
        let mut params = vec![Json::String(db.to_string())];
        params.extend(ops.iter().map(crate::Operation::to_json));
        let j = self.call("transact", &Json::Array(params)).await?;
        crate::transact::check_results(&self.remote, j, ops.len())
    }
}

fn fail_pending(remote: &str, pending: &Pending, reason: &str) {
    let waiting: Vec<_> = pending.lock().unwrap().drain().collect();
    for (_, (_, tx)) in waiting {
        let _ = tx.send(Err(Error::Closed {
            remote: remote.to_string(),
            reason: reason.to_string(),
        }));
    }
}

/// Feeds the parser thread from the chunks the reader task received.
struct ChunkReader {
    rx: mpsc::Receiver<Vec<u8>>,
}

impl stream::ByteSource for ChunkReader {
    fn append_to(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        match self.rx.blocking_recv() {
            Some(chunk) => {
                let n = chunk.len();
                if buf.is_empty() {
                    *buf = chunk;
                } else {
                    buf.extend_from_slice(&chunk);
                }
                Ok(n)
            }
            None => Ok(0),
        }
    }
}

/// How long a connection that owes us a reply may stay silent: the server may be busy computing a
/// large reply, but a member that died mid-request must not hold the session forever (the
/// session then fails over to another remote).
fn busy_limit(interval: Duration) -> Duration {
    (interval * 24).max(Duration::from_secs(120))
}

/// The inactivity probe's settings and what it needs to know about the connection.
struct Probe {
    interval: Duration,
    /// Our requests; one that someone still waits for keeps a silent connection up.
    pending: Pending,
    remote: String,
}

impl Probe {
    /// The method of a request of ours whose reply is due and still awaited, if any.
    fn awaited_reply(&self) -> Option<String> {
        self.pending
            .lock()
            .unwrap()
            .values()
            .find(|(_, tx)| !tx.is_closed())
            .map(|(method, _)| method.clone())
    }
}

/// Receives bytes until the connection fails and passes them to the parser; returns why it ended.
async fn read_loop(
    rd: &mut (impl tokio::io::AsyncRead + Unpin),
    chunks: &mpsc::Sender<Vec<u8>>,
    out: &mpsc::UnboundedSender<Vec<u8>>,
    probe: Option<Probe>,
    max: usize,
) -> String {
    let mut scanner = FrameScanner::new(max);
    let mut last_rx = Instant::now();
    // Echoes sent since the last bytes arrived; the next deadline is one interval after the last.
    let mut echoes: u32 = 0;
    loop {
        let mut buf = Vec::with_capacity(256 * 1024);
        let read = rd.read_buf(&mut buf);
        let res = match &probe {
            Some(p) => {
                let deadline = last_rx + p.interval * (echoes + 1);
                match tokio::time::timeout_at(deadline.into(), read).await {
                    Ok(r) => r,
                    Err(_) => {
                        if echoes > 0 {
                            let silent = last_rx.elapsed();
                            let Some(method) = p.awaited_reply() else {
                                return format!(
                                    "no message for {:.1} s (inactivity probe)",
                                    silent.as_secs_f64()
                                );
                            };
                            // A dead cluster member also owes us replies: not forever.
                            if silent >= busy_limit(p.interval) {
                                return format!(
                                    "no message for {:.1} s while the reply to {method} was due \
                                     (inactivity probe)",
                                    silent.as_secs_f64()
                                );
                            }
                            // The server owes us a reply and is busy computing it (ovsdb-server
                            // answers nothing meanwhile, not even echo): keep waiting.
                            if echoes == 1 {
                                info!(remote = %p.remote, method = %method,
                                    silent_s = last_rx.elapsed().as_secs(),
                                    "server silent while a reply is due; waiting for it");
                            }
                        }
                        let echo = serde_json::to_vec(
                            &serde_json::json!({"id": "echo", "method": "echo", "params": []}),
                        )
                        .unwrap();
                        let _ = out.send(echo);
                        echoes = echoes.saturating_add(1);
                        continue;
                    }
                }
            }
            None => read.await,
        };
        match res {
            Ok(0) => {
                return if scanner.in_message() {
                    "the server hung up in the middle of a message".into()
                } else {
                    "the server hung up".into()
                }
            }
            Ok(_) => {
                last_rx = Instant::now();
                echoes = 0;
            }
            Err(e) => return format!("read failed: {}", transport::describe_io_error(&e)),
        }
        // Check the bytes before the parser sees them: the limit and the message boundaries.
        let mut off = 0;
        loop {
            match scanner.scan(&buf[off..]) {
                Ok(Some(end)) => off += end,
                Ok(None) => break,
                Err(FrameError::TooLarge(limit)) => {
                    warn!(limit, "message too large; dropping the connection");
                    // The reason ends up in `Error::Closed`, which names the remote already.
                    return format!("message larger than the {limit}-byte limit");
                }
                Err(FrameError::Garbage(b)) => {
                    return format!(
                        "protocol error: byte 0x{b:02x} cannot start a JSON-RPC message"
                    );
                }
            }
        }
        if chunks.send(buf).await.is_err() {
            return "the message parser stopped".into();
        }
    }
}

/// Hands one parsed message to whoever waits for it.
pub(crate) fn dispatch(
    remote: &str,
    m: Message,
    out: &mpsc::UnboundedSender<Vec<u8>>,
    pending: &Pending,
    notes: &mpsc::UnboundedSender<Notification>,
) -> Result<(), String> {
    let id_null = m.id.as_ref().is_none_or(Json::is_null);
    if let Some(method) = m.method {
        if !id_null {
            // A request from the server: only "echo" is defined.
            let id = m.id.unwrap_or(Json::Null);
            let reply = if method == "echo" {
                let params = m
                    .params
                    .and_then(Payload::into_json)
                    .unwrap_or(Json::Array(vec![]));
                serde_json::json!({"id": id, "result": params, "error": null})
            } else {
                serde_json::json!({"id": id, "result": null, "error": format!("unknown method {method}")})
            };
            let _ = out.send(serde_json::to_vec(&reply).unwrap());
            return Ok(());
        }
        let _ = notes.send(Notification {
            method,
            params: m.params.unwrap_or(Payload::Json(Json::Null)),
        });
        return Ok(());
    }
    // A response.
    let Some(id) = m.id else {
        return Err("protocol error: response without id".into());
    };
    let Some(id) = id.as_u64() else {
        return Ok(()); // our echo probe ("echo") or an id we never sent
    };
    let Some((method, tx)) = pending.lock().unwrap().remove(&id) else {
        debug!(%remote, id, "reply to an unknown request");
        return Ok(());
    };
    let res = match (m.error.filter(|e| !e.is_null()), m.result) {
        (Some(err), _) => Err(Error::rpc(remote, &method, &err)),
        (None, Some(result)) => Ok(result),
        (None, None) => Err(Error::Protocol {
            remote: remote.to_string(),
            reason: format!("reply to {method} has neither result nor error"),
        }),
    };
    let _ = tx.send(res);
    Ok(())
}
