//! raw-reader: the server's own limit for an initial monitor load.
//!
//! Connects to an ovsdb-server unix socket, sends exactly one `monitor_cond_since` (or `monitor_cond`)
//! request for a column selection and only counts bytes until the reply's JSON object is complete
//! (brace/bracket depth tracked outside strings, escapes handled). Nothing is parsed except the
//! reply's top-level skeleton (`{"id":..,"result":<elided>,"error":..}`) to check it is our reply
//! and not an error. Prints elapsed seconds (connect to complete), time to first byte, bytes and the
//! process' peak RSS (VmHWM).
//!
//! The schema used to expand `--columns all` (and to drop columns this server's schema lacks) comes
//! from `get_schema` on a separate, untimed connection, or from `--schema FILE`.
//!
//! Example:
//!   raw-reader --socket /tmp/x/nb.sock --tables Logical_Switch_Port,Logical_Switch --columns all
//!   raw-reader --socket /tmp/x/nb.sock --method monitor_cond \
//!       --columns 'Logical_Switch:name,ports;Logical_Switch_Port:name,addresses'

use clap::Parser;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Count the bytes of one OVSDB monitor reply (server-side reference figure)")]
struct Args {
    /// Unix socket of the ovsdb-server (`unix:` prefix accepted).
    #[arg(long)]
    socket: String,
    /// Database name.
    #[arg(long, default_value = "OVN_Northbound")]
    db: String,
    /// Tables to monitor, comma-separated (tables named in --columns are added).
    #[arg(long, value_delimiter = ',')]
    tables: Vec<String>,
    /// `all` (every schema column of each table), or `Table:c1,c2` specs separated by `;` or
    /// given as repeated flags. A table without a spec gets all its columns. Columns the server's
    /// schema lacks are dropped with a warning.
    #[arg(long, default_value = "all")]
    columns: Vec<String>,
    /// `monitor_cond_since` or `monitor_cond`.
    #[arg(long, default_value = "monitor_cond_since")]
    method: String,
    /// Read the schema from this .ovsschema file instead of `get_schema`.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Run this many times, each on a fresh connection (the server caches a monitor's initial
    /// JSON while a monitor with the same selection exists, so only concurrent runs would share it).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// The server's pid: its CPU time during each run is reported (and the CPU time the rest of the
    /// machine used meanwhile, which tells whether the figure was taken on a quiet machine).
    #[arg(long)]
    server_pid: Option<u32>,
    /// A label printed with the results.
    #[arg(long, default_value = "")]
    label: String,
    /// Print one JSON object per run instead of key=value text.
    #[arg(long)]
    json: bool,
}

/// Tracks where a JSON text value ends, and keeps its top-level skeleton: the bytes at depth 1 with
/// every nested value replaced by `0`.
#[derive(Default)]
struct Scanner {
    depth: u32,
    in_str: bool,
    esc: bool,
    skeleton: Vec<u8>,
}

impl Scanner {
    /// Feeds bytes; returns the offset just past the end of the top-level value, if it ends here.
    fn feed(&mut self, buf: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            if self.in_str {
                if self.esc {
                    self.esc = false;
                } else if b == b'\\' {
                    self.esc = true;
                } else if b == b'"' {
                    self.in_str = false;
                } else if self.depth > 1 {
                    // Fast path: skip plain string bytes of nested values.
                    if let Some(off) = buf[i..].iter().position(|&c| c == b'"' || c == b'\\') {
                        i += off;
                        continue;
                    }
                    return None;
                }
                if self.depth == 1 {
                    self.skeleton.push(b);
                }
                i += 1;
                continue;
            }
            match b {
                b'"' => {
                    self.in_str = true;
                    if self.depth == 1 {
                        self.skeleton.push(b);
                    }
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    match self.depth {
                        1 => self.skeleton.push(b),
                        2 => self.skeleton.push(b'0'),
                        _ => {}
                    }
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.skeleton.push(b);
                        return Some(i + 1);
                    }
                }
                _ => {
                    if self.depth == 1 {
                        self.skeleton.push(b);
                    }
                }
            }
            i += 1;
        }
        None
    }
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process, in clock ticks (USER_HZ, 100 on Linux).
fn proc_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Busy ticks of the whole machine (all CPUs): user + nice + system + irq + softirq + steal.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    Some(f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7)?)
}

#[derive(Clone, Copy)]
struct CpuSample {
    machine: Option<u64>,
    server: Option<u64>,
    me: Option<u64>,
}

impl CpuSample {
    fn take(server_pid: Option<u32>) -> CpuSample {
        CpuSample {
            machine: machine_busy_ticks(),
            server: server_pid.and_then(|p| proc_ticks(&p.to_string())),
            me: proc_ticks("self"),
        }
    }

    /// (server CPU s, this reader's CPU s, everything else's CPU s) between two samples.
    fn since(&self, before: &CpuSample) -> (Option<f64>, Option<f64>, Option<f64>) {
        let d = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?));
        let server = d(self.server, before.server);
        let me = d(self.me, before.me);
        let other = d(self.machine, before.machine).map(|m| {
            m.saturating_sub(server.unwrap_or(0))
                .saturating_sub(me.unwrap_or(0))
        });
        let s = |t: Option<u64>| t.map(|t| t as f64 / 100.0);
        (
            s(server),
            s(me),
            if server.is_some() { s(other) } else { None },
        )
    }
}

fn socket_path(s: &str) -> &str {
    s.strip_prefix("unix:").unwrap_or(s)
}

/// One small request/response on its own connection (for get_schema).
fn rpc(socket: &str, method: &str, params: Value) -> anyhow::Result<Value> {
    let mut s = UnixStream::connect(socket)?;
    s.write_all(&serde_json::to_vec(
        &json!({"method": method, "params": params, "id": 0}),
    )?)?;
    let de = serde_json::Deserializer::from_reader(std::io::BufReader::new(s));
    for msg in de.into_iter::<Value>() {
        let msg = msg?;
        if msg.get("method").is_some() {
            continue;
        }
        anyhow::ensure!(msg["error"].is_null(), "{method}: {}", msg["error"]);
        return Ok(msg["result"].clone());
    }
    anyhow::bail!("{method}: connection closed")
}

/// Table -> columns to monitor.
fn selection(args: &Args, schema: &Value) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let tables = schema["tables"]
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("schema has no tables"))?;
    let mut specs: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
    for t in &args.tables {
        if !t.is_empty() {
            specs.insert(t.clone(), None);
        }
    }
    for spec in args.columns.iter().flat_map(|c| c.split([';', ' '])) {
        let spec = spec.trim();
        if spec.is_empty() || spec == "all" {
            continue;
        }
        let (t, cols) = spec.split_once(':').ok_or_else(|| {
            anyhow::anyhow!("--columns: expected Table:c1,c2 or all, got {spec:?}")
        })?;
        let cols = cols
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        specs.insert(t.to_string(), Some(cols));
    }
    anyhow::ensure!(
        !specs.is_empty(),
        "no tables: give --tables or --columns Table:c1,c2"
    );
    let mut out = BTreeMap::new();
    for (t, cols) in specs {
        let Some(ts) = tables.get(&t) else {
            anyhow::bail!("table {t} is not in the schema");
        };
        let all: Vec<String> = ts["columns"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let cols = match cols {
            None => all,
            Some(cols) => {
                let mut keep = Vec::new();
                for c in cols {
                    if all.contains(&c) {
                        keep.push(c);
                    } else {
                        eprintln!("raw-reader: {t}.{c} is not in this schema; dropped");
                    }
                }
                keep
            }
        };
        out.insert(t, cols);
    }
    Ok(out)
}

struct Run {
    elapsed_s: f64,
    ttfb_s: f64,
    bytes: u64,
    reply_bytes: u64,
    messages: u64,
}

fn run_once(args: &Args, sel: &BTreeMap<String, Vec<String>>) -> anyhow::Result<Run> {
    let mut reqs = Map::new();
    for (t, cols) in sel {
        reqs.insert(t.clone(), json!([{"columns": cols}]));
    }
    let params = match args.method.as_str() {
        "monitor_cond_since" => {
            json!([args.db, null, reqs, "00000000-0000-0000-0000-000000000000"])
        }
        "monitor_cond" => json!([args.db, null, reqs]),
        m => anyhow::bail!("--method: monitor_cond_since or monitor_cond, not {m}"),
    };
    let req = serde_json::to_vec(&json!({"method": args.method, "params": params, "id": 1}))?;

    let t0 = Instant::now();
    let mut s = UnixStream::connect(socket_path(&args.socket))?;
    s.write_all(&req)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut sc = Scanner::default();
    let mut ttfb = None;
    let mut bytes = 0u64;
    let mut msg_bytes = 0u64;
    let mut messages = 0u64;
    let mut head: Vec<u8> = Vec::new(); // first bytes of the current message, for error reports
    loop {
        let n = s.read(&mut buf)?;
        anyhow::ensure!(n > 0, "connection closed after {bytes} bytes");
        ttfb.get_or_insert_with(|| t0.elapsed());
        bytes += n as u64;
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            // Skip whitespace between messages.
            if sc.depth == 0 && !sc.in_str {
                let ws = chunk.iter().take_while(|b| b.is_ascii_whitespace()).count();
                chunk = &chunk[ws..];
                if chunk.is_empty() {
                    break;
                }
            }
            if head.len() < 4096 {
                head.extend_from_slice(&chunk[..chunk.len().min(4096 - head.len())]);
            }
            match sc.feed(chunk) {
                None => {
                    msg_bytes += chunk.len() as u64;
                    chunk = &[];
                }
                Some(end) => {
                    msg_bytes += end as u64;
                    chunk = &chunk[end..];
                    messages += 1;
                    let skel: Value = serde_json::from_slice(&sc.skeleton).map_err(|e| {
                        anyhow::anyhow!(
                            "bad message skeleton {:?}: {e}",
                            String::from_utf8_lossy(&sc.skeleton)
                        )
                    })?;
                    if skel["method"] == json!("echo") {
                        // Answer probes; the echo params are small, so `head` holds the whole message.
                        let m: Value = serde_json::from_slice(&head).unwrap_or(Value::Null);
                        s.write_all(&serde_json::to_vec(
                            &json!({"id": m["id"], "result": m["params"], "error": null}),
                        )?)?;
                    } else if skel["id"] == json!(1) && skel.get("method").is_none() {
                        anyhow::ensure!(
                            skel["error"].is_null(),
                            "server error: {}",
                            String::from_utf8_lossy(&head)
                        );
                        return Ok(Run {
                            elapsed_s: t0.elapsed().as_secs_f64(),
                            ttfb_s: ttfb.unwrap_or_default().as_secs_f64(),
                            bytes,
                            reply_bytes: msg_bytes,
                            messages,
                        });
                    }
                    sc = Scanner::default();
                    head.clear();
                    msg_bytes = 0;
                }
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let schema = match &args.schema {
        Some(p) => serde_json::from_slice(&std::fs::read(p)?)?,
        None => rpc(socket_path(&args.socket), "get_schema", json!([args.db]))?,
    };
    let sel = selection(&args, &schema)?;
    let ncols: usize = sel.values().map(Vec::len).sum();
    for i in 0..args.repeat.max(1) {
        let before = CpuSample::take(args.server_pid);
        let r = run_once(&args, &sel)?;
        let (server_cpu, reader_cpu, other_cpu) = CpuSample::take(args.server_pid).since(&before);
        let rss = vm_hwm_kib();
        if args.json {
            println!(
                "{}",
                json!({
                    "tool": "raw-reader", "label": args.label, "method": args.method, "run": i + 1,
                    "tables": sel.len(), "columns": ncols, "elapsed_s": r.elapsed_s, "ttfb_s": r.ttfb_s,
                    "bytes": r.bytes, "reply_bytes": r.reply_bytes, "messages": r.messages,
                    "peak_rss_kib": rss, "server_cpu_s": server_cpu, "reader_cpu_s": reader_cpu,
                    "other_cpu_s": other_cpu,
                })
            );
        } else {
            println!(
                "raw-reader label={} method={} run={} tables={} columns={} elapsed_s={:.3} ttfb_s={:.3} bytes={} \
                 reply_bytes={} mb={:.1} peak_rss_kib={} peak_rss_mib={:.1} server_cpu_s={} reader_cpu_s={} \
                 other_cpu_s={}",
                if args.label.is_empty() { "-" } else { &args.label },
                args.method,
                i + 1,
                sel.len(),
                ncols,
                r.elapsed_s,
                r.ttfb_s,
                r.bytes,
                r.reply_bytes,
                r.bytes as f64 / 1e6,
                rss,
                rss as f64 / 1024.0,
                opt(server_cpu),
                opt(reader_cpu),
                opt(other_cpu),
            );
        }
    }
    Ok(())
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

#[cfg(test)]
mod tests {
    use super::Scanner;

    fn ends(parts: &[&str]) -> Option<(usize, usize, String)> {
        let mut sc = Scanner::default();
        for (k, p) in parts.iter().enumerate() {
            if let Some(end) = sc.feed(p.as_bytes()) {
                return Some((k, end, String::from_utf8(sc.skeleton).unwrap()));
            }
        }
        None
    }

    #[test]
    fn whole_object() {
        let s =
            r#"{"id":1,"result":[false,"x",{"T":{"u":{"initial":{"a":"}]{\"\\"}}}}],"error":null}"#;
        let (k, end, skel) = ends(&[s]).unwrap();
        assert_eq!((k, end), (0, s.len()));
        assert_eq!(skel, r#"{"id":1,"result":0,"error":null}"#);
        let v: serde_json::Value = serde_json::from_str(&skel).unwrap();
        assert_eq!(v["id"], 1);
    }

    #[test]
    fn split_everywhere() {
        let s = r#"{"method":"update3","params":["x\\\"}",{"a":[1,{"b":"\\"}]}],"id":null}"#;
        for cut in 0..s.len() {
            let (a, b) = s.split_at(cut);
            let (k, end, skel) = ends(&[a, b]).unwrap();
            assert_eq!(
                if k == 0 { end } else { a.len() + end },
                s.len(),
                "cut {cut}"
            );
            assert_eq!(
                skel, r#"{"method":"update3","params":0,"id":null}"#,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn trailing_bytes_not_consumed() {
        let mut sc = Scanner::default();
        assert_eq!(sc.feed(br#"{"a":"}"}{"b":1}"#), Some(9));
    }
}
