//! What `ovn-route status` shows: the agent publishes a [`StatusReport`] after every reconcile and
//! serves it as JSON on a Unix socket (`status_socket`), one report per connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// One database connection.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DbStatus {
    /// `nb`, `sb` or `ovs`.
    pub db: String,
    /// The remotes configured.
    pub remotes: Vec<String>,
    /// The remote of the current connection.
    pub remote: Option<String>,
    /// Connected and monitoring.
    pub connected: bool,
    /// The replica has been complete at least once.
    pub synced: bool,
    /// Connections made.
    pub connects: u64,
    /// The last connection error.
    pub last_error: Option<String>,
}

/// One exposed prefix.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ExposedEntry {
    /// The prefix.
    pub prefix: String,
    /// Why it is exposed (kind).
    pub kind: String,
    /// The provider bridge its traffic enters OVN through.
    pub bridge: String,
    /// The VLAN of its provider network, when tagged (traffic goes through `<bridge>.<vlan>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// The router gateway port it goes through, if any.
    pub gateway: Option<String>,
    /// The OVN rows behind it.
    pub sources: Vec<String>,
    /// How FRR gets it (`route table 10 dev bgp-nic`, `address on bgp-nic`).
    pub advertised: String,
    /// How traffic reaches OVN (`table 200: ... `).
    pub wired: String,
}

/// A refused value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RejectedEntry {
    /// The value.
    pub value: String,
    /// The row it came from.
    pub source: String,
    /// Why.
    pub reason: String,
}

/// The last reconcile pass.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReconcileInfo {
    /// When it ended (seconds since the epoch).
    pub at: u64,
    /// `full` or `incremental`.
    pub mode: String,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// Changes made (added + replaced + deleted, all objects).
    pub changes: usize,
    /// Errors met (each names the object).
    pub errors: Vec<String>,
}

/// FRR as the agent sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FrrStatus {
    /// The vtysh socket directory.
    pub vty_socket: String,
    /// Whether ovn-route's block is in FRR's running configuration.
    pub configured: bool,
    /// The last error talking to FRR.
    pub last_error: Option<String>,
    /// BGP peers: (peer, state, prefixes sent) from `show bgp summary json`.
    pub peers: Vec<(String, String, u64)>,
}

/// The agent's whole status.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StatusReport {
    /// This chassis (`system-id`).
    pub chassis: String,
    /// Its host name, if known.
    pub hostname: Option<String>,
    /// ovn-route's version.
    pub version: String,
    /// Agent start (seconds since the epoch).
    pub started_at: u64,
    /// The database connections.
    pub databases: Vec<DbStatus>,
    /// True while a database is unreachable: the plan is kept as it was, nothing is withdrawn.
    pub frozen: bool,
    /// The last reconcile.
    pub last_reconcile: Option<ReconcileInfo>,
    /// Exposed prefixes.
    pub exposed: Vec<ExposedEntry>,
    /// Refused values.
    pub rejected: Vec<RejectedEntry>,
    /// FRR.
    pub frr: FrrStatus,
    /// Host routes (`[host_routes]`), with their state in the kernel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_routes: Vec<crate::host_routes::HostRouteEntry>,
    /// Dynamic routing (`[ovn_route] dynamic_routing`), when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_routing: Option<crate::dynamic::DynamicStatus>,
}

/// A request for a status report: the agent answers on the channel between two passes.
pub type StatusRequest = oneshot::Sender<Arc<StatusReport>>;

/// Serves status on `path` (replacing a stale socket file) until dropped: each connection asks
/// the agent for a fresh report through `requests`.
pub async fn serve(
    path: PathBuf,
    requests: mpsc::UnboundedSender<StatusRequest>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        // A live agent answers; a stale file from a killed one is replaced.
        if UnixStream::connect(&path).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{}: another agent is serving status here", path.display()),
            ));
        }
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
    loop {
        let (mut sock, _) = listener.accept().await?;
        let (tx, rx) = oneshot::channel();
        if requests.send(tx).is_err() {
            return Ok(()); // the agent is stopping
        }
        tokio::spawn(async move {
            let Ok(report) = rx.await else {
                return;
            };
            if let Ok(mut text) = serde_json::to_vec(&*report) {
                text.push(b'\n');
                let _ = sock.write_all(&text).await;
            }
            let _ = sock.shutdown().await;
        });
    }
}

/// How long `ovn-route status` waits for the agent's answer.
pub const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads one report from an agent's status socket.
pub async fn fetch(path: &Path) -> std::io::Result<StatusReport> {
    fetch_within(path, FETCH_TIMEOUT).await
}

/// [`fetch`], waiting at most `limit` for the answer.
pub async fn fetch_within(
    path: &Path,
    limit: std::time::Duration,
) -> std::io::Result<StatusReport> {
    let mut sock = UnixStream::connect(path).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "{}: {e} (is `ovn-route agent` running, with this status_socket?)",
                path.display()
            ),
        )
    })?;
    let mut buf = Vec::new();
    // The agent answers between two passes; a pass takes milliseconds to seconds.
    tokio::time::timeout(limit, sock.read_to_end(&mut buf))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "{}: the agent did not answer within {:.1} s (is it stuck? see its log)",
                    path.display(),
                    limit.as_secs_f64()
                ),
            )
        })??;
    serde_json::from_slice(&buf).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: not a status report: {e}", path.display()),
        )
    })
}

/// Renders a report for people.
pub fn render(r: &StatusReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "chassis {}{} (ovn-route {})",
        r.chassis,
        r.hostname
            .as_deref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default(),
        r.version
    );
    for d in &r.databases {
        let _ = writeln!(
            s,
            "  {:<3} {:<12} {} ({} connection{}){}",
            d.db,
            if d.connected {
                "connected"
            } else {
                "DISCONNECTED"
            },
            d.remote.as_deref().unwrap_or(&d.remotes.join(",")),
            d.connects,
            if d.connects == 1 { "" } else { "s" },
            d.last_error
                .as_deref()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default()
        );
    }
    if r.frozen {
        let _ = writeln!(
            s,
            "  plan FROZEN: a database is unreachable; nothing is withdrawn until it is back"
        );
    }
    if let Some(l) = &r.last_reconcile {
        let _ = writeln!(
            s,
            "  last reconcile: {} pass, {:.1} ms, {} change(s), {} error(s)",
            l.mode,
            l.duration_ms,
            l.changes,
            l.errors.len()
        );
        for e in &l.errors {
            let _ = writeln!(s, "    error: {e}");
        }
    }
    let _ = writeln!(
        s,
        "  FRR ({}): {}{}",
        r.frr.vty_socket,
        if r.frr.configured {
            "block configured"
        } else {
            "block NOT configured"
        },
        r.frr
            .last_error
            .as_deref()
            .map(|e| format!(", last error: {e}"))
            .unwrap_or_default()
    );
    for (peer, state, sent) in &r.frr.peers {
        let _ = writeln!(s, "    peer {peer}: {state}, {sent} prefixes sent");
    }
    let _ = writeln!(s, "exposed ({}):", r.exposed.len());
    for e in &r.exposed {
        let _ = writeln!(
            s,
            "  {:<22} {:<17} via {}{}{}",
            e.prefix,
            e.kind,
            e.bridge,
            e.vlan.map(|v| format!(" VLAN {v}")).unwrap_or_default(),
            e.gateway
                .as_deref()
                .map(|g| format!(" gateway {g}"))
                .unwrap_or_default()
        );
        let _ = writeln!(s, "      why: {}", e.sources.join("; "));
        let _ = writeln!(s, "      advertised: {}; wired: {}", e.advertised, e.wired);
    }
    if !r.host_routes.is_empty() {
        let _ = writeln!(s, "host routes ({}):", r.host_routes.len());
        for line in crate::host_routes::render(&r.host_routes).lines() {
            let _ = writeln!(s, "  {line}");
        }
    }
    if let Some(d) = &r.dynamic_routing {
        s.push_str(&crate::dynamic::render(d));
    }
    if !r.rejected.is_empty() {
        let _ = writeln!(s, "refused ({}):", r.rejected.len());
        for x in &r.rejected {
            let _ = writeln!(s, "  {:?} from {}: {}", x.value, x.source, x.reason);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_status_socket_that_never_answers_times_out_naming_it() {
        let dir = std::env::temp_dir().join(format!("ovnr-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("status.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        // Accepts and says nothing, like an agent whose loop is stuck.
        let held = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            drop(sock);
        });
        let err = fetch_within(&path, std::time::Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        let text = err.to_string();
        assert!(
            text.contains(&path.display().to_string()) && text.contains("did not answer"),
            "{text}"
        );
        held.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
