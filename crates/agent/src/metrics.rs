//! Prometheus metrics (`metrics_listen`), served at `/metrics` by a minimal HTTP/1.1 responder.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Label: a database (`nb`, `sb`, `ovs`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DbLabel {
    /// Database.
    pub db: String,
}

/// Label: what kind of exposed prefix.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Kind.
    pub kind: String,
}

/// Label: a reconcile's trigger and result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabel {
    /// `full` or `incremental`.
    pub mode: String,
    /// `ok` or `error`.
    pub result: String,
}

/// Label: a kernel/OVS/FRR change.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabel {
    /// `kernel_route`, `kernel_rule`, `neighbour`, `address`, `flow`, `frr`.
    pub object: String,
    /// `add`, `replace`, `delete`.
    pub op: String,
}

/// The agent's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// `ovn_route_exposed_prefixes{kind}`.
    pub exposed: Family<KindLabel, Gauge>,
    /// `ovn_route_rejected_values`.
    pub rejected: Gauge,
    /// `ovn_route_db_connected{db}`.
    pub db_connected: Family<DbLabel, Gauge>,
    /// `ovn_route_db_reconnects_total{db}`.
    pub db_connects: Family<DbLabel, Counter>,
    /// `ovn_route_reconciles_total{mode,result}`.
    pub reconciles: Family<ReconcileLabel, Counter>,
    /// `ovn_route_reconcile_duration_seconds`.
    pub reconcile_seconds: Histogram,
    /// `ovn_route_plan_duration_seconds`.
    pub plan_seconds: Histogram,
    /// `ovn_route_changes_total{object,op}`.
    pub changes: Family<ChangeLabel, Counter>,
    /// `ovn_route_frr_config_applied_total`.
    pub frr_applied: Counter,
    /// `ovn_route_plan_frozen`: 1 while a database is unreachable and the plan is kept as it was.
    pub frozen: Gauge,
}

fn buckets() -> impl Iterator<Item = f64> {
    [
        0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
    .into_iter()
}

impl Metrics {
    /// New metrics, registered in `registry` under the `ovn_route` prefix.
    pub fn register(registry: &mut Registry) -> Arc<Metrics> {
        let m = Metrics {
            exposed: Family::default(),
            rejected: Gauge::default(),
            db_connected: Family::default(),
            db_connects: Family::default(),
            reconciles: Family::default(),
            reconcile_seconds: Histogram::new(buckets()),
            plan_seconds: Histogram::new(buckets()),
            changes: Family::default(),
            frr_applied: Counter::default(),
            frozen: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("ovn_route");
        r.register(
            "exposed_prefixes",
            "Prefixes exposed by this chassis, by kind",
            m.exposed.clone(),
        );
        r.register(
            "rejected_values",
            "OVN values refused by the planner (bad or not allowed)",
            m.rejected.clone(),
        );
        r.register(
            "db_connected",
            "1 while the database connection is up and synced",
            m.db_connected.clone(),
        );
        r.register(
            "db_connects",
            "Database connections made",
            m.db_connects.clone(),
        );
        r.register(
            "reconciles",
            "Reconcile passes, by mode and result",
            m.reconciles.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Duration of reconcile passes (plan and apply)",
            m.reconcile_seconds.clone(),
        );
        r.register(
            "plan_duration_seconds",
            "Duration of plan computations",
            m.plan_seconds.clone(),
        );
        r.register(
            "changes",
            "Changes applied to the kernel, OVS and FRR",
            m.changes.clone(),
        );
        r.register(
            "frr_config_applied",
            "Times ovn-route's FRR block was (re)applied",
            m.frr_applied.clone(),
        );
        r.register(
            "plan_frozen",
            "1 while a database is unreachable and the last plan is kept",
            m.frozen.clone(),
        );
        Arc::new(m)
    }

    /// Counts `n` changes of `object` by `op`.
    pub fn count(&self, object: &str, op: &str, n: usize) {
        if n > 0 {
            self.changes
                .get_or_create(&ChangeLabel {
                    object: object.into(),
                    op: op.into(),
                })
                .inc_by(n as u64);
        }
    }
}

/// Serves `registry` on `addr` at `/metrics` until the task is dropped.
pub async fn serve(addr: SocketAddr, registry: Arc<Registry>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving Prometheus metrics at /metrics");
    loop {
        let (mut sock, _) = listener.accept().await?;
        let registry = registry.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            // Read the request head (we answer GET /metrics; the rest is ignored).
            while n < buf.len() {
                match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    sock.read(&mut buf[n..]),
                )
                .await
                {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(k)) => {
                        n += k;
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, ctype, body) = if path == "/metrics" || path.starts_with("/metrics?") {
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &registry) {
                    Ok(()) => (
                        "200 OK",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        body,
                    ),
                    Err(e) => (
                        "500 Internal Server Error",
                        "text/plain",
                        format!("encoding failed: {e}\n"),
                    ),
                }
            } else {
                ("404 Not Found", "text/plain", "try /metrics\n".to_string())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

/// The process' resident and peak resident memory in KiB (`VmRSS`, `VmHWM` of /proc/self/status),
/// for debug logs at the stages of a pass.
pub fn memory_kib() -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return (0, 0);
    };
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
