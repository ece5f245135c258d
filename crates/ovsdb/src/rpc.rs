//! One JSON-RPC connection to an OVSDB server: request/response matching, notifications, `echo` both
//! ways and the inactivity probe.
//!
//! Replies and notifications are handed out as [`RawJson`]: the bytes of the message and the range of
//! its `result` or `params`. The (possibly very large) initial monitor reply is parsed by the caller
//! straight into replica rows, without an intermediate JSON tree.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, trace, warn};

use crate::framing::{FrameDecoder, FrameError};
use crate::transport::{self, SslConfig};
use crate::{Error, Remote};

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// TLS files for `ssl:` remotes.
    pub ssl: Option<SslConfig>,
    /// Time allowed to establish the connection.
    pub connect_timeout: Duration,
    /// After this long without receiving anything, send an `echo`; after twice this long, drop the
    /// connection. `None` disables the probe.
    pub probe_interval: Option<Duration>,
    /// Largest message accepted from the server, in bytes.
    pub max_message_size: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            ssl: None,
            connect_timeout: Duration::from_secs(10),
            probe_interval: Some(Duration::from_secs(5)),
            max_message_size: 1 << 30,
        }
    }
}

/// The bytes of one message and the range of its payload (`result` or `params`).
#[derive(Clone)]
pub struct RawJson {
    buf: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl RawJson {
    /// The payload's JSON text.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }

    /// Parses the payload.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(self.bytes())
    }

    /// Parses the payload as a JSON tree.
    pub fn json(&self) -> Result<Json, serde_json::Error> {
        self.parse()
    }

    /// Size of the whole message in bytes.
    pub fn message_len(&self) -> usize {
        self.buf.len()
    }
}

impl std::fmt::Debug for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.bytes();
        let shown = &b[..b.len().min(200)];
        write!(f, "{}", String::from_utf8_lossy(shown))
    }
}

/// A notification (or unsolicited request) from the server.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The method, e.g. `update3`, `locked`, `stolen`, `monitor_canceled`.
    pub method: String,
    /// Its parameters.
    pub params: RawJson,
}

pub(crate) type Pending =
    Arc<Mutex<HashMap<u64, (String, oneshot::Sender<Result<RawJson, Error>>)>>>;

/// An open JSON-RPC connection. Dropping it closes the connection.
pub struct Connection {
    remote: String,
    out: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU64,
    closed: Arc<Mutex<Option<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    method: Option<String>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

fn range_of(buf: &[u8], raw: &RawValue) -> Range<usize> {
    let start = raw.get().as_ptr() as usize - buf.as_ptr() as usize;
    start..start + raw.get().len()
}

impl Connection {
    /// Connects to `remote` and starts the reader and writer tasks. Notifications are delivered on the
    /// returned receiver; it ends when the connection closes ([`Connection::close_reason`] says why).
    pub async fn connect(
        remote: &Remote,
        opts: &ConnectOptions,
    ) -> Result<(Connection, mpsc::UnboundedReceiver<Notification>), Error> {
        let stream = transport::connect(remote, opts.ssl.as_ref(), opts.connect_timeout).await?;
        Ok(Self::from_stream(remote.to_string(), stream, opts))
    }

    /// Wraps an already connected stream (used by tests and tools).
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

        let writer = {
            let closed = closed.clone();
            let remote = remote.clone();
            tokio::spawn(async move {
                while let Some(msg) = out_rx.recv().await {
                    if let Err(e) = wr.write_all(&msg).await {
                        let mut c = closed.lock().unwrap();
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

        let reader = {
            let remote = remote.clone();
            let pending = pending.clone();
            let closed = closed.clone();
            let out = out_tx.clone();
            let probe = opts.probe_interval;
            let max = opts.max_message_size;
            tokio::spawn(async move {
                let reason =
                    read_loop(&remote, &mut rd, &out, &pending, &note_tx, probe, max).await;
                debug!(%remote, %reason, "connection closed");
                closed.lock().unwrap().get_or_insert(reason.clone());
                let waiting: Vec<_> = pending.lock().unwrap().drain().collect();
                for (_, (_, tx)) in waiting {
                    let _ = tx.send(Err(Error::Closed {
                        remote: remote.clone(),
                        reason: reason.clone(),
                    }));
                }
                // Dropping note_tx ends the notification stream.
            })
        };

        (
            Connection {
                remote,
                out: out_tx,
                pending,
                next_id: AtomicU64::new(1),
                closed,
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
    pub async fn call_raw(&self, method: &str, params: &Json) -> Result<RawJson, Error> {
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

    /// Sends a request and parses its `result` as a JSON tree.
    pub async fn call(&self, method: &str, params: &Json) -> Result<Json, Error> {
        let raw = self.call_raw(method, params).await?;
        raw.json().map_err(|e| Error::Protocol {
            remote: self.remote.clone(),
            reason: format!("reply to {method} is not JSON: {e}"),
        })
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

/// Reads messages until the connection fails; returns why it ended.
async fn read_loop(
    remote: &str,
    rd: &mut (impl tokio::io::AsyncRead + Unpin),
    out: &mpsc::UnboundedSender<Vec<u8>>,
    pending: &Pending,
    notes: &mpsc::UnboundedSender<Notification>,
    probe: Option<Duration>,
    max: usize,
) -> String {
    let mut dec = FrameDecoder::new(max);
    let mut last_rx = Instant::now();
    let mut probe_sent = false;
    loop {
        // Hand out every complete message first.
        loop {
            match dec.next_frame() {
                Ok(Some(frame)) => {
                    if let Err(reason) = dispatch(remote, frame, out, pending, notes) {
                        return reason;
                    }
                }
                Ok(None) => break,
                Err(FrameError::TooLarge(limit)) => {
                    warn!(%remote, limit, "message too large; dropping the connection");
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
        let buf = dec.buffer();
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(256 * 1024);
        }
        let read = async { rd.read_buf(dec.buffer()).await };
        let res = match probe {
            Some(p) => {
                let deadline = last_rx + if probe_sent { p * 2 } else { p };
                match tokio::time::timeout_at(deadline.into(), read).await {
                    Ok(r) => r,
                    Err(_) if !probe_sent => {
                        let echo = serde_json::to_vec(
                            &serde_json::json!({"id": "echo", "method": "echo", "params": []}),
                        )
                        .unwrap();
                        let _ = out.send(echo);
                        probe_sent = true;
                        continue;
                    }
                    Err(_) => {
                        return format!(
                            "no message for {:.1} s (inactivity probe)",
                            (p * 2).as_secs_f64()
                        )
                    }
                }
            }
            None => read.await,
        };
        match res {
            Ok(0) => {
                return if dec.pending() > 0 {
                    "the server hung up in the middle of a message".into()
                } else {
                    "the server hung up".into()
                }
            }
            Ok(_) => {
                last_rx = Instant::now();
                probe_sent = false;
            }
            Err(e) => return format!("read failed: {}", transport::describe_io_error(&e)),
        }
    }
}

pub(crate) fn dispatch(
    remote: &str,
    frame: Vec<u8>,
    out: &mpsc::UnboundedSender<Vec<u8>>,
    pending: &Pending,
    notes: &mpsc::UnboundedSender<Notification>,
) -> Result<(), String> {
    let env: Envelope = serde_json::from_slice(&frame)
        .map_err(|e| format!("protocol error: message is not a JSON-RPC object: {e}"))?;
    let id_null = env.id.is_none_or(|i| i.get() == "null");
    if let Some(method) = env.method {
        if !id_null {
            // A request from the server: only "echo" is defined.
            let id: Json = serde_json::from_str(env.id.unwrap().get()).unwrap_or(Json::Null);
            let reply = if method == "echo" {
                let params: Json = env
                    .params
                    .and_then(|p| serde_json::from_str(p.get()).ok())
                    .unwrap_or(Json::Array(vec![]));
                serde_json::json!({"id": id, "result": params, "error": null})
            } else {
                serde_json::json!({"id": id, "result": null, "error": format!("unknown method {method}")})
            };
            let _ = out.send(serde_json::to_vec(&reply).unwrap());
            return Ok(());
        }
        let range = match env.params {
            Some(p) => range_of(&frame, p),
            None => 0..0,
        };
        let _ = notes.send(Notification {
            method,
            params: RawJson {
                buf: Arc::new(frame),
                range,
            },
        });
        return Ok(());
    }
    // A response.
    let Some(id_raw) = env.id else {
        return Err("protocol error: response without id".into());
    };
    let id = match id_raw.get().parse::<u64>() {
        Ok(id) => id,
        Err(_) => return Ok(()), // our echo probe ("echo") or an id we never sent
    };
    let Some((method, tx)) = pending.lock().unwrap().remove(&id) else {
        debug!(%remote, id, "reply to an unknown request");
        return Ok(());
    };
    let error = env.error.filter(|e| e.get() != "null");
    let res = if let Some(err) = error {
        let ej: Json = serde_json::from_str(err.get()).unwrap_or(Json::Null);
        Err(Error::rpc(remote, &method, &ej))
    } else {
        let range = env.result.map(|r| range_of(&frame, r)).unwrap_or(0..0);
        if range.is_empty() {
            Err(Error::Protocol {
                remote: remote.to_string(),
                reason: format!("reply to {method} has neither result nor error"),
            })
        } else {
            Ok(RawJson {
                buf: Arc::new(frame),
                range,
            })
        }
    };
    let _ = tx.send(res);
    Ok(())
}
