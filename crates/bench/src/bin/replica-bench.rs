//! Replica benchmark: time from connect to a complete replica, peak RSS, and latency from a committed
//! one-row transaction to the subscriber's notification. Run against a server loaded with
//! `gen-nb` (see bench/replica-bench.sh and BENCHMARKS.md).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use ovsdb::{
    Atom, Condition, Connection, Datum, Event, Operation, Remote, Session, SessionConfig,
    TableSelect,
};

/// Counts heap bytes: live now and the peak, to tell data from allocator overhead.
struct Counting;

static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(now, Relaxed);
        std::alloc::System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE.fetch_sub(l.size(), std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        let now = LIVE.fetch_add(new, Relaxed) + new;
        PEAK.fetch_max(now, Relaxed);
        LIVE.fetch_sub(l.size(), Relaxed);
        std::alloc::System.realloc(p, l, new)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn heap_mib() -> (f64, f64) {
    use std::sync::atomic::Ordering::Relaxed;
    let m = |v: usize| v as f64 / (1 << 20) as f64;
    (m(LIVE.load(Relaxed)), m(PEAK.load(Relaxed)))
}

/// Measures ovn-route's OVSDB replica against a live server.
#[derive(Parser, Debug)]
struct Args {
    /// Server remote (e.g. unix:/tmp/x/nb.sock).
    #[arg(long, required_unless_present = "print_selection")]
    remote: Option<String>,
    /// Print the agent's column selection as `Table:c1,c2;Table2:...` (for raw-reader and the
    /// Python anchor, so that every tool loads the same columns) and exit.
    #[arg(long)]
    print_selection: bool,
    /// Database.
    #[arg(long, default_value = "OVN_Northbound")]
    database: String,
    /// `agent`: the columns ovn-route uses; `all`: every column of the tables below.
    #[arg(long, default_value = "agent")]
    columns: String,
    /// Tables for `--columns all` (comma-separated).
    #[arg(
        long,
        default_value = "Logical_Switch,Logical_Switch_Port,Logical_Router,Logical_Router_Port,NAT,Gateway_Chassis,Load_Balancer,NB_Global"
    )]
    tables: String,
    /// Number of one-row updates for the latency measurement.
    #[arg(long, default_value_t = 1000)]
    updates: usize,
    /// Rounds of (raw reader, then replica load), each raw read sending the replica's exact monitor
    /// request and only counting bytes: the server's own limit, measured right next to each load
    /// (ovsdb-server's time for the same request drifts over a run). 0: replica only.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// Sends the monitor request the session would send for `selection` and counts the reply's bytes.
async fn raw_read(
    remote: &Remote,
    db: &str,
    selection: &[TableSelect],
) -> Result<(Duration, usize)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (conn, _n) = Connection::connect(remote, &Default::default()).await?;
    let schema = conn.get_schema(db).await?;
    drop(conn);
    let mut reqs = serde_json::Map::new();
    for sel in selection {
        let Some(t) = schema.table(&sel.table) else {
            continue;
        };
        let cols: Vec<&String> = match &sel.columns {
            Some(c) => c.iter().filter(|c| t.columns.contains_key(*c)).collect(),
            None => t.columns.keys().collect(),
        };
        reqs.insert(sel.table.clone(), serde_json::json!([{"columns": cols}]));
    }
    let ovsdb::Remote::Unix(path) = remote else {
        bail!("the raw reader needs a unix: remote")
    };
    let msg = serde_json::json!({"id": 1, "method": "monitor_cond_since",
        "params": [db, "raw", reqs, "00000000-0000-0000-0000-000000000000"]});
    let t0 = Instant::now();
    let mut sock = tokio::net::UnixStream::connect(path).await?;
    sock.write_all(&serde_json::to_vec(&msg)?).await?;
    let mut scanner = ovsdb::framing::FrameScanner::new(usize::MAX);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            bail!("server closed the connection after {total} bytes");
        }
        total += n;
        if scanner
            .scan(&buf[..n])
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .is_some()
        {
            return Ok((t0.elapsed(), total));
        }
    }
}

fn vm_hwm_mib() -> f64 {
    status_mib("VmHWM:")
}

fn status_mib(key: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// A bare subscriber: monitors one row's `external_ids` on its own socket and reports when each
/// update message has fully arrived (bytes only, no parsing): the server's own notification latency.
async fn raw_subscriber(
    remote: &Remote,
    db: &str,
    row: ovsdb::Uuid,
) -> Result<tokio::sync::mpsc::UnboundedReceiver<Instant>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ovsdb::Remote::Unix(path) = remote else {
        bail!("the raw subscriber needs a unix: remote")
    };
    let mut sock = tokio::net::UnixStream::connect(path).await?;
    let msg = serde_json::json!({"id": 1, "method": "monitor_cond", "params": [db, "raw",
        {"Logical_Switch_Port": [{"columns": ["external_ids"],
            "where": [["_uuid", "==", ["uuid", row.to_string()]]]}]}]});
    sock.write_all(&serde_json::to_vec(&msg)?).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut scanner = ovsdb::framing::FrameScanner::new(usize::MAX);
    let mut buf = vec![0u8; 1 << 16];
    // The reply to the monitor request first.
    let mut replied = false;
    while !replied {
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            bail!("raw subscriber: server closed");
        }
        replied = scanner
            .scan(&buf[..n])
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .is_some();
    }
    tokio::spawn(async move {
        loop {
            let Ok(n) = sock.read(&mut buf).await else {
                return;
            };
            if n == 0 {
                return;
            }
            let now = Instant::now();
            let mut off = 0;
            while let Ok(Some(end)) = scanner.scan(&buf[off..n]) {
                off += end;
                let _ = tx.send(now);
            }
        }
    });
    Ok(rx)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let a = Args::parse();
    if a.print_selection {
        let sel =
            ovn_model::tables_for(&a.database).context("no agent selection for this database")?;
        let specs = ovn_route_bench::selection_specs(&sel);
        println!("{}", specs.join(";"));
        return Ok(());
    }
    let remotes = Remote::parse_list(a.remote.as_deref().unwrap_or_default())?;
    let mut cfg = SessionConfig::new(remotes.clone(), &a.database);
    cfg.tables = match a.columns.as_str() {
        "agent" => {
            ovn_model::tables_for(&a.database).context("no agent selection for this database")?
        }
        "all" => a.tables.split(',').map(TableSelect::all).collect(),
        other => bail!("--columns {other:?}: expected agent or all"),
    };
    // Rounds of raw read + replica load; the last replica is kept for the latency phase.
    let mut ratios = vec![];
    let mut kept = None;
    let mut first_hwm = None;
    for round in 1..=a.rounds.max(1) {
        drop(kept.take());
        let raw = if a.rounds > 0 {
            let (t, bytes) = raw_read(&remotes[0], &a.database, &cfg.tables).await?;
            println!(
                "round {round}: raw reader (same request): {:.1} MB in {:.3} s",
                bytes as f64 / 1e6,
                t.as_secs_f64()
            );
            Some(t)
        } else {
            None
        };
        let t0 = Instant::now();
        let session = Session::start(cfg.clone());
        let events = session.subscribe();
        session.wait_connected().await;
        let load = t0.elapsed();
        let rows = session.read(|r| r.row_count());
        let (live, peak) = heap_mib();
        first_hwm.get_or_insert(vm_hwm_mib());
        println!(
            "round {round}: replica ({}): {rows} rows complete in {:.3} s{}; RSS {:.0} MiB \
             (heap: {live:.0} MiB live, {peak:.0} MiB peak)",
            a.columns,
            load.as_secs_f64(),
            raw.map(|r| format!(" = {:.2} x raw", load.as_secs_f64() / r.as_secs_f64()))
                .unwrap_or_default(),
            status_mib("VmRSS:")
        );
        if let Some(r) = raw {
            ratios.push(load.as_secs_f64() / r.as_secs_f64());
        }
        kept = Some((session, events));
    }
    if !ratios.is_empty() {
        ratios.sort_by(f64::total_cmp);
        println!(
            "replica / raw reader: median {:.2} (min {:.2}, max {:.2}) over {} rounds; peak RSS of one load {:.0} MiB",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
            ratios.len(),
            first_hwm.unwrap_or_default()
        );
    }
    let (session, mut events) = kept.expect("at least one round");
    // Drain the initial change set.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), events.recv()).await {}

    // Latency: modify one LSP's external_ids per transaction on a second connection; a raw
    // subscriber watches the same row.
    let targets: Vec<ovsdb::Uuid> = session.read(|r| {
        r.table("Logical_Switch_Port")
            .map(|t| t.iter().take(1).map(|row| row.uuid).collect())
            .unwrap_or_default()
    });
    if targets.is_empty() || a.updates == 0 {
        return Ok(());
    }
    let (writer, _notes) = Connection::connect(&remotes[0], &Default::default()).await?;
    let mut raw = raw_subscriber(&remotes[0], &a.database, targets[0]).await?;
    let mut from_send = Vec::with_capacity(a.updates);
    let mut commit = Vec::with_capacity(a.updates);
    let mut after_commit = Vec::with_capacity(a.updates);
    let mut raw_after_commit = Vec::with_capacity(a.updates);
    for i in 0..a.updates {
        let uuid = targets[i % targets.len()];
        let op = Operation::Mutate {
            table: "Logical_Switch_Port".into(),
            conditions: vec![Condition::uuid(uuid)],
            mutations: vec![
                ovsdb::Mutation::delete(
                    "external_ids",
                    Datum::set([Atom::string("ovnr-bench:seq")]),
                ),
                ovsdb::Mutation::insert(
                    "external_ids",
                    Datum::map([(Atom::string("ovnr-bench:seq"), Atom::string(i.to_string()))]),
                ),
            ],
        };
        let ops = [op];
        let sent = Instant::now();
        let (committed, notified, raw_at) = tokio::join!(
            async {
                let r = writer.transact(&a.database, &ops).await;
                (Instant::now(), r)
            },
            async {
                loop {
                    match events.recv().await {
                        Some(Event::Changed(cs))
                            if cs.tables.contains_key("Logical_Switch_Port") =>
                        {
                            return Instant::now();
                        }
                        Some(_) => continue,
                        None => return Instant::now(),
                    }
                }
            },
            async { raw.recv().await.unwrap_or_else(Instant::now) }
        );
        let (committed, reply) = committed;
        raw_after_commit.push(raw_at.saturating_duration_since(committed));
        reply?;
        from_send.push(notified - sent);
        commit.push(committed - sent);
        after_commit.push(notified.saturating_duration_since(committed));
    }
    for (name, v) in [
        ("send -> subscriber notified", &mut from_send),
        ("send -> commit reply (server)", &mut commit),
        ("commit reply -> subscriber notified", &mut after_commit),
        (
            "commit reply -> raw subscriber's bytes in (reference)",
            &mut raw_after_commit,
        ),
    ] {
        v.sort();
        println!(
            "{name} over {} one-row transactions: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            a.updates,
            pct(v, 0.5),
            pct(v, 0.99),
            pct(v, 1.0)
        );
    }
    println!("peak RSS at end: {:.0} MiB", vm_hwm_mib());
    Ok(())
}
