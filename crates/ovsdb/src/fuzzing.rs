//! Fuzzing entry point (not part of the API): the cargo-fuzz target `decode` in `fuzz/` and the
//! `fuzz_decode` test run [`fuzz_decode`] on arbitrary bytes.
//!
//! It takes the path a server's bytes take through the client: frame splitting with a small size
//! limit, JSON-RPC envelope parsing and dispatch (replies, notifications, echo requests), then the
//! session's handling of every message (monitor replies of each method parsed into a replica and
//! applied as updates and as a full dump, `update`/`update2`/`update3` notifications, `_Server`
//! rows, lock notifications), with a fixed small schema. It must never panic, whatever the input.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{mpsc, oneshot};

use crate::framing::FrameScanner;
use crate::rpc::{dispatch, Pending};
use crate::schema::DatabaseSchema;
use crate::session::{FuzzSession, MonitorMethod};
use crate::stream::{read_messages, ParseContext, ReadSource};

/// The size limit of the scanner (small, so that the limit is reached often).
pub const MAX_MESSAGE: usize = 4096;

/// The monitor id the fuzzed main monitor uses.
pub const MONITOR_ID: &str = "ovsdb-rs";

/// The schema the fuzzed updates are parsed against: every kind of column.
pub const SCHEMA: &str = r#"{"name": "Fuzz", "version": "1.0.0", "tables": {
  "T": {"columns": {
    "s": {"type": "string"},
    "i": {"type": {"key": "integer", "min": 0, "max": 1}},
    "r": {"type": "real"},
    "b": {"type": {"key": "boolean", "min": 0, "max": "unlimited"}},
    "u": {"type": {"key": {"type": "uuid", "refTable": "T"}, "min": 0, "max": "unlimited"}},
    "m": {"type": {"key": "string", "value": "integer", "min": 0, "max": "unlimited"}},
    "e": {"type": {"key": {"type": "string", "enum": ["set", ["a", "b"]]}, "min": 1, "max": 1}}},
    "isRoot": true},
  "U": {"columns": {"name": {"type": "string"}}}}}"#;

fn schema() -> &'static DatabaseSchema {
    static S: OnceLock<DatabaseSchema> = OnceLock::new();
    S.get_or_init(|| DatabaseSchema::from_json(&serde_json::from_str(SCHEMA).unwrap()).unwrap())
}

/// Reads a slice in pieces of a fixed size, as a socket would deliver it.
struct Pieces<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl std::io::Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Runs `data` through the client's decoding. The first byte chooses the read size (1 to 32 bytes),
/// which monitor reply is awaited (none, `monitor_cond_since`, `monitor_cond`, `monitor`) and whether
/// the session is `leader_only`; the rest is the byte stream from the server.
pub fn fuzz_decode(data: &[u8]) {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 32) + 1;
    let expect = match (first >> 5) & 3 {
        0 => None,
        1 => Some(MonitorMethod::CondSince),
        2 => Some(MonitorMethod::Cond),
        _ => Some(MonitorMethod::Plain),
    };
    // The reader task drops the connection where the scanner objects; the parser sees the bytes
    // before that point only.
    let mut scanner = FrameScanner::new(MAX_MESSAGE);
    let mut accepted = 0;
    while accepted < stream.len() {
        let piece = &stream[accepted..(accepted + chunk).min(stream.len())];
        let mut off = 0;
        let ok = loop {
            match scanner.scan(&piece[off..]) {
                Ok(Some(end)) => off += end,
                Ok(None) => break true,
                Err(_) => break false,
            }
        };
        if !ok {
            break;
        }
        accepted += piece.len();
    }
    let stream = &stream[..accepted];

    let mut session = FuzzSession::new(schema(), first & 0x80 != 0);
    let ctx = Arc::new(Mutex::new(ParseContext {
        layouts: Arc::new(session.layouts().clone()),
        monitor_id: Some(MONITOR_ID.to_string()),
        expect_reply: expect,
    }));
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let (note_tx, mut note_rx) = mpsc::unbounded_channel();
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let _ = read_messages(
        ReadSource(Pieces {
            data: stream,
            chunk,
        }),
        &ctx,
        |m| {
            // Requests 1 and 2 are always waiting for their reply.
            let (tx1, mut rx1) = oneshot::channel();
            let (tx2, mut rx2) = oneshot::channel();
            {
                let mut p = pending.lock().unwrap();
                p.insert(1, ("monitor_cond_since".into(), tx1));
                p.insert(2, ("lock".into(), tx2));
            }
            dispatch("fuzz", m, &out_tx, &pending, &note_tx)?;
            for rx in [&mut rx1, &mut rx2] {
                if let Ok(Ok(reply)) = rx.try_recv() {
                    session.reply(reply);
                }
            }
            while let Ok(n) = note_rx.try_recv() {
                session.notification(n);
            }
            while let Ok(answer) = out_rx.try_recv() {
                // Answers to the server's requests must be valid JSON.
                serde_json::from_slice::<serde_json::Value>(&answer).expect("answers are JSON");
            }
            Ok(())
        },
    );
    let _ = session.replica_json();
}

/// Parses one `monitor_cond_since` reply message from `reader` as the client does, against every
/// table of `schema`; returns the number of row updates (for parse-speed measurements).
#[doc(hidden)]
pub fn parse_reply(reader: impl std::io::Read, schema: &DatabaseSchema) -> usize {
    let layouts: HashMap<String, crate::TableLayout> = schema
        .tables
        .values()
        .map(|t| {
            let l = crate::TableLayout::new(t, None).0;
            (l.name.clone(), l)
        })
        .collect();
    let ctx = Arc::new(Mutex::new(ParseContext {
        layouts: Arc::new(layouts),
        monitor_id: Some(MONITOR_ID.to_string()),
        expect_reply: Some(MonitorMethod::CondSince),
    }));
    let mut rows = 0;
    let _ = read_messages(ReadSource(reader), &ctx, |m| {
        if let Some(crate::Payload::Updates(u)) = m.result {
            rows += u.rows();
        }
        Ok(())
    });
    rows
}
