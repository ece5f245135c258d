//! `ovn-route db`: the operator's view of what the agent sees in an OVSDB database.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use ovsdb::{Event, Remote, Session, SessionConfig, SslConfig, TableSelect};
use serde_json::{json, Map, Value as Json};

/// `ovn-route db` subcommands.
#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Print a replica of a database as JSON after the initial load ({table: {uuid: {column: value}}},
    /// values in RFC 7047 notation); with --follow, then one JSON line per change.
    Dump(DumpArgs),
}

/// Arguments of `ovn-route db dump`.
#[derive(Args, Debug)]
pub struct DumpArgs {
    /// Remote: tcp:IP:PORT, ssl:IP:PORT or unix:PATH; a comma-separated list for a cluster.
    pub remote: String,
    /// Database name, e.g. OVN_Northbound, OVN_Southbound, Open_vSwitch.
    pub database: String,
    /// Tables to replicate (default: all; `agent` = the tables and columns ovn-route uses).
    pub tables: Vec<String>,
    /// Columns of a table: TABLE:COL1,COL2 (repeatable).
    #[arg(long = "columns", value_name = "TABLE:COLS")]
    pub columns: Vec<String>,
    /// After the initial dump, print one JSON line per change until interrupted.
    #[arg(long)]
    pub follow: bool,
    /// Talk only to the leader of a clustered database.
    #[arg(long)]
    pub leader_only: bool,
    /// Give up if the database is not loaded within this many seconds.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub timeout: f64,
    /// Largest message accepted from the server, in MiB.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub max_message_mib: usize,
    /// TLS private key for ssl: remotes (PEM), like ovsdb-client -p.
    #[arg(short = 'p', long, value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// TLS certificate (PEM), like ovsdb-client -c.
    #[arg(short = 'c', long, value_name = "FILE")]
    pub certificate: Option<PathBuf>,
    /// TLS CA certificate (PEM), like ovsdb-client -C.
    #[arg(short = 'C', long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// Runs a `db` subcommand.
pub async fn run(cmd: DbCommand) -> Result<()> {
    match cmd {
        DbCommand::Dump(a) => dump(a).await,
    }
}

/// Builds the table selection from positional tables and `--columns`.
fn selection(database: &str, tables: &[String], columns: &[String]) -> Result<Vec<TableSelect>> {
    let mut sel: Vec<TableSelect> = vec![];
    for t in tables {
        if t == "agent" {
            sel.extend(
                ovn_model::tables_for(database)
                    .ok_or_else(|| anyhow!("`agent` tables are defined for OVN_Northbound, OVN_Southbound and Open_vSwitch, not {database:?}"))?,
            );
        } else {
            sel.push(TableSelect::all(t));
        }
    }
    for c in columns {
        let (table, cols) = c
            .split_once(':')
            .ok_or_else(|| anyhow!("--columns {c:?}: expected TABLE:COL1,COL2"))?;
        let cols: Vec<String> = cols
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if table.is_empty() || cols.is_empty() {
            bail!("--columns {c:?}: expected TABLE:COL1,COL2");
        }
        match sel.iter_mut().find(|s| s.table == table) {
            Some(s) => s.columns = Some(cols),
            None => sel.push(TableSelect {
                table: table.to_string(),
                columns: Some(cols),
                conditions: None,
            }),
        }
    }
    Ok(sel)
}

fn ssl_config(a: &DumpArgs) -> Result<Option<SslConfig>> {
    match (&a.private_key, &a.certificate, &a.ca_cert) {
        (None, None, None) => Ok(None),
        (Some(k), Some(c), Some(ca)) => Ok(Some(SslConfig {
            private_key: k.clone(),
            certificate: c.clone(),
            ca_cert: ca.clone(),
        })),
        _ => bail!("TLS needs all three of --private-key, --certificate and --ca-cert"),
    }
}

async fn dump(a: DumpArgs) -> Result<()> {
    let remotes = Remote::parse_list(&a.remote)?;
    let mut cfg = SessionConfig::new(remotes, &a.database);
    cfg.tables = selection(&a.database, &a.tables, &a.columns)?;
    cfg.leader_only = a.leader_only;
    cfg.connect.ssl = ssl_config(&a)?;
    if cfg.connect.ssl.is_none() && cfg.remotes.iter().any(Remote::is_ssl) {
        bail!(
            "remote {} is ssl: but no --private-key/--certificate/--ca-cert were given",
            a.remote
        );
    }
    cfg.connect.max_message_size = a.max_message_mib.saturating_mul(1 << 20);
    let session = Session::start(cfg);
    let what = format!("{}: database {}", a.remote, a.database);
    crate::loaded::wait_loaded(&session, a.timeout, &what).await?;
    // The dump and the change stream that follows it are consistent: no change is lost or repeated.
    let (mut events, dump) = session.subscribe_with(|r| r.to_json());
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &dump)?;
    writeln!(out)?;
    out.flush()?;
    drop(out);
    if !a.follow {
        return Ok(());
    }
    loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { return Ok(()) };
                match ev {
                    Event::Changed(cs) => {
                        let line = session.read(|r| change_json(r, &cs));
                        let mut out = std::io::stdout().lock();
                        serde_json::to_writer(&mut out, &line)?;
                        writeln!(out)?;
                        out.flush()?;
                    }
                    Event::Connected { remote, resumed } => {
                        tracing::warn!(%remote, resumed, "connected");
                    }
                    Event::Disconnected { remote, reason } => {
                        tracing::warn!(%remote, %reason, "disconnected; the replica is kept until reconnected");
                    }
                    Event::Lock { .. } => {}
                }
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// One change set as `{table: {uuid: {"insert": row} | {"modify": {col: new}} | {"delete": null}}}`.
fn change_json(r: &ovsdb::Replica, cs: &ovsdb::ChangeSet) -> Json {
    let mut out = Map::new();
    for (tname, tc) in &cs.tables {
        let Some(t) = r.table(tname) else { continue };
        let mut rows = Map::new();
        for u in &tc.inserted {
            if let Some(row) = t.get(u) {
                rows.insert(u.to_string(), json!({"insert": row.to_json()}));
            }
        }
        for (u, cols, _) in &tc.modified {
            if let Some(row) = t.get(u) {
                let m: Map<String, Json> = cols
                    .iter()
                    .filter_map(|c| row.get(c).map(|d| (c.clone(), d.to_json())))
                    .collect();
                rows.insert(u.to_string(), json!({"modify": m}));
            }
        }
        for (u, _) in &tc.deleted {
            rows.insert(u.to_string(), json!({"delete": null}));
        }
        out.insert(tname.clone(), Json::Object(rows));
    }
    Json::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_flag_is_validated() {
        let e = selection("X", &[], &["Logical_Switch".into()]).unwrap_err();
        assert!(e.to_string().contains("\"Logical_Switch\""), "{e}");
        let s = selection("X", &["A".into()], &["A:x,y".into()]).unwrap();
        assert_eq!(s[0].columns.as_ref().unwrap(), &["x", "y"]);
        let e = selection("X", &["agent".into()], &[]).unwrap_err();
        assert!(e.to_string().contains("\"X\""), "{e}");
    }
}
