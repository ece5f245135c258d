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

/// Measures ovn-route's OVSDB replica against a live server.
#[derive(Parser, Debug)]
struct Args {
    /// Server remote (e.g. unix:/tmp/x/nb.sock).
    #[arg(long)]
    remote: String,
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let a = Args::parse();
    let remotes = Remote::parse_list(&a.remote)?;
    let mut cfg = SessionConfig::new(remotes.clone(), &a.database);
    cfg.tables = match a.columns.as_str() {
        "agent" => {
            ovn_model::tables_for(&a.database).context("no agent selection for this database")?
        }
        "all" => a.tables.split(',').map(TableSelect::all).collect(),
        other => bail!("--columns {other:?}: expected agent or all"),
    };
    let t0 = Instant::now();
    let session = Session::start(cfg);
    let mut events = session.subscribe();
    session.wait_connected().await;
    let load = t0.elapsed();
    let rows = session.read(|r| r.row_count());
    let hwm_load = vm_hwm_mib();
    println!(
        "replica ({}): {rows} rows complete in {:.3} s, peak RSS {:.0} MiB, RSS after load {:.0} MiB",
        a.columns,
        load.as_secs_f64(),
        hwm_load,
        status_mib("VmRSS:")
    );
    // Drain the initial change set.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), events.recv()).await {}

    // Latency: modify one LSP's external_ids per transaction on a second connection.
    let targets: Vec<ovsdb::Uuid> = session.read(|r| {
        r.table("Logical_Switch_Port")
            .map(|t| {
                t.iter()
                    .take(a.updates.max(1))
                    .map(|row| row.uuid)
                    .collect()
            })
            .unwrap_or_default()
    });
    if targets.is_empty() || a.updates == 0 {
        return Ok(());
    }
    let (writer, _notes) = Connection::connect(&remotes[0], &Default::default()).await?;
    let mut from_send = Vec::with_capacity(a.updates);
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
        let sent = Instant::now();
        let ops = [op];
        let (reply, notified) = tokio::join!(writer.transact(&a.database, &ops), async {
            loop {
                match events.recv().await {
                    Some(Event::Changed(cs)) if cs.tables.contains_key("Logical_Switch_Port") => {
                        return Instant::now();
                    }
                    Some(_) => continue,
                    None => return Instant::now(),
                }
            }
        });
        reply?;
        from_send.push(notified - sent);
    }
    from_send.sort();
    println!(
        "notification latency over {} one-row transactions (send -> subscriber): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        a.updates,
        pct(&from_send, 0.5),
        pct(&from_send, 0.99),
        pct(&from_send, 1.0)
    );
    println!("peak RSS at end: {:.0} MiB", vm_hwm_mib());
    Ok(())
}
