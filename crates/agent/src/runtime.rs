//! The agent's event loop: database sessions, plan, apply; level-triggered.
//!
//! Every NB, SB and Open_vSwitch change and every change of our kernel tables that contradicts the
//! plan wakes the loop; queued wake-ups are coalesced, the plan is brought up to date from the rows
//! the databases changed (the [`ExposurePlanner`] recomputes only the ports and routers they
//! reach) and the difference applied. A full pass (rebuild the plan, observe and diff everything)
//! runs at start, every `reconcile_interval`, after an apply error and when someone else touched
//! our objects. FRR is configured by a task of its own (an FRR that does not answer never holds up
//! the kernel), and the status report is built when the status socket asks for one. While a
//! database is unreachable the plan is frozen: nothing is withdrawn until it is back and says so.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ovn_route_config::Config;
use ovn_route_frr::{AddressFamilies, ExposeMode, FrrIntent, Vtysh};
use ovn_route_kernel::RouteWatch;
use ovn_route_plan::exposure::{ExposureConfig, ExposurePlanner, PlanDelta, TenantMethod};
use ovn_route_plan::ChassisIdentity;
use ovsdb::{ChangeSet, Event, Remote, Session, SessionConfig, SslConfig};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;

use crate::apply::{
    flow_plans, wired_text, ApplyReport, FlowApplier, KernelApplier, KernelSettings,
};
use crate::facts::{bridge_facts, ovs_remotes};
use crate::host::{knet, plan_host, HostPlan, HostSettings};
use crate::metrics::{DbLabel, KindLabel, Metrics, ReconcileLabel};
use crate::status::{
    DbStatus, ExposedEntry, FrrStatus, ReconcileInfo, RejectedEntry, StatusReport, StatusRequest,
};
use crate::tables::TableRegistry;

/// How the agent runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Reconcile once and exit.
    pub once: bool,
    /// Print the changes, make none.
    pub dry_run: bool,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The local Open_vSwitch database did not answer in time.
    #[error("the local Open_vSwitch database ({remote}) did not answer within {secs} s (ovsdb_connection, ovsdb_connection_timeout)")]
    OvsTimeout {
        /// The remote.
        remote: String,
        /// The timeout.
        secs: u64,
    },
    /// An OVN database did not answer in time (`--once`).
    #[error("the {db} database ({remotes}) did not answer within {secs} s")]
    DbTimeout {
        /// `NB` or `SB`.
        db: &'static str,
        /// Remotes.
        remotes: String,
        /// Timeout.
        secs: u64,
    },
    /// The chassis identity could not be read.
    #[error("chassis identity: {0}")]
    Identity(#[from] ovn_route_plan::IdentityError),
    /// No NB remote anywhere.
    #[error("no Northbound database: set [ovn] ovn_nb_connection, or external_ids:ovn-nb-remote in the local Open_vSwitch database")]
    NoNb,
    /// A remote in Open_vSwitch external_ids does not parse.
    #[error("Open_vSwitch external_ids:{key} = {value:?}: {reason}")]
    BadRemote {
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
    /// Netlink.
    #[error("kernel: {0}")]
    Kernel(#[from] ovn_route_kernel::Error),
    /// The devices the configuration asks for cannot exist here.
    #[error("{0}")]
    Devices(String),
    /// A routing table could not be named.
    #[error("{0}")]
    Table(#[from] crate::tables::TableError),
    /// FRR settings.
    #[error("FRR: {0}")]
    Frr(#[from] ovn_route_frr::FrrError),
    /// Host routes settings.
    #[error("{0}")]
    HostRoutes(#[from] crate::host_routes::HostRoutesError),
}

/// What woke the loop.
#[derive(Debug)]
enum Wake {
    Db(&'static str, Event),
    Kernel(u32, ovn_route_kernel::RouteEvent),
    FrrRestart,
    /// FRR's daemons stopped (their sockets went away).
    FrrStopped,
    /// A learned route held after leaving its table is due (dynamic routing).
    LearnHold,
    FrrCheck,
    /// The FRR task finished an apply.
    FrrDone(FrrResult),
    /// `show bgp summary json`, read by the FRR task.
    FrrPeers(Vec<(String, String, u64)>),
    Status(StatusRequest),
    /// A pass failed: try again in full.
    Retry,
    Full,
}

/// How long after a failed pass the next (full) one runs.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Change sets held while a database is away; beyond this the plan is rebuilt when it is back.
const MAX_PENDING: usize = 10_000;

/// The outcome of one FRR apply: `Ok(true)` when something was changed.
type FrrResult = Result<bool, String>;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn ssl(
    key: &Option<std::path::PathBuf>,
    cert: &Option<std::path::PathBuf>,
    ca: &Option<std::path::PathBuf>,
) -> Option<SslConfig> {
    match (key, cert, ca) {
        (Some(k), Some(c), Some(a)) => Some(SslConfig {
            private_key: k.clone(),
            certificate: c.clone(),
            ca_cert: a.clone(),
        }),
        _ => None,
    }
}

fn start_session(remotes: Vec<Remote>, db: &str, ssl: Option<SslConfig>) -> Session {
    let mut cfg = SessionConfig::new(remotes, db);
    // The NB and SB: only what the planner reads.
    cfg.tables = match db {
        "OVN_Northbound" => ovn_route_plan::exposure::nb_tables(),
        "OVN_Southbound" => ovn_route_plan::exposure::sb_tables(),
        _ => ovn_model::tables_for(db).unwrap_or_default(),
    };
    cfg.connect.ssl = ssl;
    Session::start(cfg)
}

fn forward(name: &'static str, s: &Session, tx: &mpsc::UnboundedSender<Wake>) {
    let mut rx = s.subscribe();
    let tx = tx.clone();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if tx.send(Wake::Db(name, ev)).is_err() {
                break;
            }
        }
    });
}

fn remotes_from(key: &'static str, value: &str) -> Result<Vec<Remote>, AgentError> {
    Remote::parse_list(value).map_err(|e| AgentError::BadRemote {
        key,
        value: value.to_string(),
        reason: e.to_string(),
    })
}

/// The exposure options of the configuration.
pub fn exposure_config(cfg: &Config) -> ExposureConfig {
    let d = &cfg.default;
    ExposureConfig {
        expose_tenant_networks: d.expose_tenant_networks,
        tenant_method: match d.advertisement_method_tenant_networks {
            ovn_route_config::TenantAdvertisement::Host => TenantMethod::Host,
            ovn_route_config::TenantAdvertisement::Subnet => TenantMethod::Subnet,
        },
        require_snat_disabled_for_tenant_networks: d.require_snat_disabled_for_tenant_networks,
        expose_ipv6_gua_tenant_networks: d.expose_ipv6_gua_tenant_networks,
        address_scopes: d.address_scopes.clone(),
        allowed_prefixes: cfg
            .ovn_route
            .allowed_prefixes
            .iter()
            .filter_map(|p| ipnet::IpNet::new(p.addr(), p.prefix_len()).ok())
            .collect(),
    }
}

/// The host-plan settings of the configuration.
pub fn host_settings(cfg: &Config) -> HostSettings {
    HostSettings {
        advertise: cfg.ovn_route.advertise_method,
        vrf_mode: cfg.ovn_route.vrf_mode,
        bgp_nic: cfg.default.bgp_nic.clone(),
        vrf_table: cfg.default.bgp_vrf_table_id,
        protocol: cfg.ovn_route.route_protocol,
        rule_method: cfg.ovn_route.rule_method,
        rule_priority: cfg.ovn_route.rule_priority,
    }
}

/// The FRR block for the configuration.
pub fn frr_intent(cfg: &Config) -> FrrIntent {
    let vrf = match cfg.ovn_route.vrf_mode {
        ovn_route_config::VrfMode::None => None,
        _ => Some(cfg.default.bgp_vrf.clone()),
    };
    FrrIntent {
        asn: cfg.default.bgp_as,
        router_id: cfg.default.bgp_router_id,
        families: if vrf.is_some() {
            AddressFamilies::BOTH
        } else {
            AddressFamilies {
                ipv4: true,
                ipv6: false,
            }
        },
        vrf,
        table_id: cfg.default.bgp_vrf_table_id,
        mode: match cfg.ovn_route.advertise_method {
            ovn_route_config::AdvertiseMethod::Routes => ExposeMode::RoutesKernel,
            ovn_route_config::AdvertiseMethod::Addresses => ExposeMode::AddressesConnected,
        },
    }
}

/// The agent's state between passes.
struct State {
    cfg: Config,
    opts: RunOptions,
    ovs: Session,
    nb: Session,
    sb: Option<Session>,
    nb_remotes: Vec<String>,
    sb_remotes: Vec<String>,
    tables: TableRegistry,
    /// Provider bridges' table ids (read from the registry once, then as allocated).
    table_ids: BTreeMap<String, u32>,
    host_cfg: HostSettings,
    kernel: KernelApplier,
    flows: FlowApplier,
    /// Provider bridges' MACs as the kernel has them (preferred over OVS `mac_in_use`).
    kernel_macs: BTreeMap<String, [u8; 6]>,
    vtysh: Vtysh,
    intent: FrrIntent,
    metrics: Arc<Metrics>,
    /// The exposure plan, kept up to date from the databases' change sets.
    planner: ExposurePlanner,
    /// Change sets received since the last plan.
    pending_nb: Vec<Arc<ChangeSet>>,
    pending_sb: Vec<Arc<ChangeSet>>,
    /// The host plan last applied (the frozen plan while a database is away); the exposure plan
    /// behind it is `planner.plan()`.
    applied: Option<HostPlan>,
    frr_configured: bool,
    /// Whether the "gateways cannot be located" warning was given (no SB, NB before 23.09).
    location_warned: bool,
    frr_error: Option<String>,
    frr_peers: Vec<(String, String, u64)>,
    last: Option<ReconcileInfo>,
    started_at: u64,
    /// `[host_routes]`, when enabled.
    host_routes: Option<crate::host_routes::HostRoutes>,
    /// Dynamic routing (`[ovn_route] dynamic_routing`), when enabled.
    dynamic: Option<crate::dynamic::DynamicRouting>,
}

impl State {
    fn dbs_ready(&self) -> bool {
        let ok = |s: &Session| {
            let st = s.status();
            st.connected && st.synced
        };
        ok(&self.ovs) && ok(&self.nb) && self.sb.as_ref().is_none_or(ok)
    }

    /// Makes the next plan a rebuild from every row (the change sets held are not needed then).
    fn plan_from_every_row(&mut self) {
        self.planner.invalidate();
        self.pending_nb.clear();
        self.pending_sb.clear();
    }

    /// Computes the plans from the replicas.
    fn compute(&mut self) -> Result<(PlanDelta, HostPlan), AgentError> {
        let t0 = Instant::now();
        let identity = self.ovs.read(ChassisIdentity::from_ovs)?;
        if &identity != self.planner.identity() {
            tracing::info!(?identity, "chassis identity changed");
            self.planner.set_identity(identity);
        }
        let names: Vec<String> = self
            .planner
            .identity()
            .bridge_mappings
            .iter()
            .map(|(_, b)| b.clone())
            .collect();
        let mut facts = self.ovs.read(|o| bridge_facts(o, &names));
        // Bridges no longer mapped keep their (empty) plan so our state on them is removed:
        // `table_ids` starts with every table ovn-route ever named here.
        for name in self.table_ids.keys() {
            facts.entry(name.clone()).or_default();
        }
        for (name, f) in facts.iter_mut() {
            if let Some(mac) = self.kernel_macs.get(name) {
                f.mac = Some(*mac);
            }
            let id = match self.table_ids.get(name) {
                Some(id) => *id,
                None => {
                    let id = self.tables.table_for(name)?;
                    self.table_ids.insert(name.clone(), id);
                    id
                }
            };
            f.table = id;
        }
        if self.sb.is_none() && !self.location_warned {
            self.location_warned = true;
            let located = self.nb.read(|n| {
                n.table("Logical_Router_Port")
                    .is_some_and(|t| t.layout().column_index("status").is_some())
            });
            if !located {
                tracing::warn!(
                    "no Southbound database, and this Northbound has no Logical_Router_Port \
                     status column (OVN before 23.09): gateway ports cannot be located, so no \
                     gateway IP, load-balancer VIP, centralized floating IP or tenant network is \
                     exposed; give ovn_sb_connection (or southbound = auto with ovn-remote set)"
                );
            }
        }
        let nb_changes = std::mem::take(&mut self.pending_nb);
        let sb_changes = std::mem::take(&mut self.pending_sb);
        let rss_before_kib = if tracing::enabled!(tracing::Level::DEBUG) {
            crate::metrics::memory_kib().0
        } else {
            0
        };
        let planner = &mut self.planner;
        let delta = match &self.sb {
            Some(sb) => sb.read(|s| {
                self.nb.read(|n| {
                    planner.update(
                        n,
                        Some(s),
                        nb_changes.iter().map(|c| &**c),
                        sb_changes.iter().map(|c| &**c),
                    )
                })
            }),
            None => self
                .nb
                .read(|n| planner.update(n, None, nb_changes.iter().map(|c| &**c), [])),
        };
        let t1 = Instant::now();
        let host = plan_host(self.planner.plan(), &facts, &self.host_cfg);
        if tracing::enabled!(tracing::Level::DEBUG) {
            let (rss_kib, peak_kib) = crate::metrics::memory_kib();
            tracing::debug!(
                exposure_ms = (t1 - t0).as_secs_f64() * 1e3,
                host_ms = t1.elapsed().as_secs_f64() * 1e3,
                rebuilt = delta.rebuilt,
                changed = delta.changed.len(),
                rss_before_kib,
                rss_kib,
                peak_kib,
                "planned"
            );
        }
        self.metrics
            .plan_seconds
            .observe(t0.elapsed().as_secs_f64());
        Ok((delta, host))
    }

    /// Whether a kernel route event contradicts the applied plan.
    fn diverges(&self, table: u32, ev: &ovn_route_kernel::RouteEvent) -> bool {
        use ovn_route_kernel::RouteChange;
        if ev.protocol != self.cfg.ovn_route.route_protocol {
            return false;
        }
        let Some(h) = &self.applied else {
            return false;
        };
        let desired = std::iter::once(&h.advertised.routes)
            .chain(h.bridges.values().map(|b| &b.routes))
            .find(|d| d.table == table);
        let Some(d) = desired else {
            return false;
        };
        let wanted = d.get(&ev.key).is_some();
        match ev.change {
            RouteChange::Deleted => wanted,
            RouteChange::Added | RouteChange::Replaced => !wanted,
        }
    }

    fn log_new_rejections(delta: &PlanDelta) {
        for r in &delta.new_rejections {
            tracing::warn!(value = %r.value, source = %r.source, reason = %r.reason, "not exposed");
        }
    }

    /// Applies the FRR block and waits for the outcome (`--once`; the daemon uses the FRR task).
    async fn frr_apply(&mut self) {
        if self.opts.dry_run {
            return;
        }
        let (vtysh, intent) = (self.vtysh.clone(), self.intent.clone());
        let dynamic = self.dynamic.as_ref().map(|d| d.frr_intent());
        let r = tokio::task::spawn_blocking(move || frr_apply_all(&vtysh, &intent, dynamic))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        self.frr_result(r);
    }

    /// Records the outcome of an FRR apply.
    fn frr_result(&mut self, r: FrrResult) {
        match r {
            Ok(changed) => {
                if changed {
                    self.metrics.frr_applied.inc();
                }
                self.frr_configured = true;
                self.frr_error = None;
            }
            Err(e) => {
                self.frr_configured = false;
                self.frr_error = Some(e);
            }
        }
    }

    /// Reads the chassis' MACs of the provider bridges from the kernel.
    async fn refresh_macs(&mut self) {
        let bridges: Vec<String> = (self.planner.identity().bridge_mappings.iter())
            .map(|(_, b)| b.clone())
            .collect();
        for bridge in bridges {
            if let Ok(Some(link)) = self.kernel.reconciler().link(&bridge).await {
                if let Some(mac) = link.mac {
                    self.kernel_macs.insert(bridge, mac);
                }
            }
        }
    }

    /// Host routes: replans from the NB and the host's networks, and adds their BGP routes.
    async fn plan_host_routes(&mut self, host: &mut HostPlan) {
        let Some(hr) = &mut self.host_routes else {
            return;
        };
        match crate::host_routes::observe_host(self.kernel.reconciler()).await {
            Ok(nets) => self.nb.read(|n| hr.update(n, &nets)),
            Err(e) => tracing::warn!(error = %e, "host routes: cannot read the host's networks"),
        }
        let frr_failed = self.frr_error.is_some();
        hr.advertise_into(self.planner.plan(), &mut host.advertised.routes, frr_failed);
    }

    /// One pass. `full`: rebuild the plan and observe everything; else apply the difference from
    /// the last plan.
    async fn pass(&mut self, full: bool) -> ApplyReport {
        let t0 = Instant::now();
        let ready = self.dbs_ready();
        if full || self.kernel_macs.is_empty() {
            self.refresh_macs().await;
        }
        self.metrics
            .frozen
            .set(i64::from(!ready && self.applied.is_some()));
        if full {
            self.plan_from_every_row();
        }
        // A full pass observes instead of diffing against the last plan: free that plan before
        // the new one is built (on a large chassis, two plans and a kernel dump are the agent's
        // peak memory); a full pass logs every problem anyway. Without the databases the last
        // plan is what a full pass re-asserts, so it stays.
        if full && ready {
            self.applied = None;
        }
        let next = if ready {
            match self.compute() {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(error = %e, "cannot plan; keeping the last plan");
                    None
                }
            }
        } else {
            None
        };
        let mut report = ApplyReport::default();
        let (host, prev_host) = match (next, self.applied.take()) {
            (Some((delta, h)), prev) => {
                Self::log_new_rejections(&delta);
                (h, prev)
            }
            (None, Some(applied)) if !full => {
                // Frozen and nothing to repair: the last plan stays as applied.
                self.applied = Some(applied);
                self.publish_health();
                return report;
            }
            (None, Some(h)) => {
                // Frozen: re-assert the last plan (a full pass) but withdraw nothing new.
                (h, None)
            }
            (None, None) => {
                // Never planned and a database is not there: adopt what exists, touch nothing.
                return report;
            }
        };
        for p in &host.problems {
            if full || prev_host.as_ref().is_none_or(|h| !h.problems.contains(p)) {
                tracing::warn!(value = %p.value, source = %p.source, reason = %p.reason, "not wired");
            }
        }
        let mut host = host;
        if ready {
            self.plan_host_routes(&mut host).await;
        }
        let prev_host = if full { None } else { prev_host };
        let prev = prev_host.as_ref();
        let t_kernel = Instant::now();
        report = self.kernel.apply(prev, &host).await;
        if let (Some(hr), true) = (&mut self.host_routes, ready) {
            hr.apply(self.kernel.reconciler(), self.opts.dry_run, &mut report)
                .await;
        }
        if let (Some(d), true) = (&mut self.dynamic, ready) {
            let me = self.planner.identity();
            let r = d
                .pass(&self.nb, self.sb.as_ref(), &self.ovs, me, full)
                .await;
            crate::dynamic::merge(&mut report, r);
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            let (rss_kib, peak_kib) = crate::metrics::memory_kib();
            tracing::debug!(
                kernel_ms = t_kernel.elapsed().as_secs_f64() * 1e3,
                rss_kib,
                peak_kib,
                "kernel applied"
            );
        }
        let next_flows = flow_plans(&host);
        let prev_flows = prev.map(flow_plans);
        if prev_flows.as_ref() != Some(&next_flows) {
            let flows = self.flows.clone();
            match tokio::task::spawn_blocking(move || {
                let mut r = ApplyReport::default();
                flows.apply(prev_flows.as_ref(), &next_flows, &mut r);
                r
            })
            .await
            {
                Ok(r) => {
                    report.changes.extend(r.changes);
                    report.errors.extend(r.errors);
                    for (k, v) in r.counts {
                        *report.counts.entry(k).or_default() += v;
                    }
                }
                Err(e) => report.errors.push(format!("flows: {e}")),
            }
        }
        let mode = if prev.is_none() {
            "full"
        } else {
            "incremental"
        };
        let dur = t0.elapsed();
        for ((obj, op), n) in &report.counts {
            self.metrics.count(obj, op, *n);
        }
        self.metrics
            .reconciles
            .get_or_create(&ReconcileLabel {
                mode: mode.into(),
                result: if report.errors.is_empty() {
                    "ok"
                } else {
                    "error"
                }
                .into(),
            })
            .inc();
        self.metrics.reconcile_seconds.observe(dur.as_secs_f64());
        let exposure = self.planner.plan();
        let mut kinds: BTreeMap<_, i64> = BTreeMap::new();
        for e in exposure.exposed.values() {
            *kinds.entry(e.kind).or_default() += 1;
        }
        self.metrics.exposed.clear();
        for (kind, n) in kinds {
            self.metrics
                .exposed
                .get_or_create(&KindLabel {
                    kind: kind.to_string(),
                })
                .set(n);
        }
        self.metrics.rejected.set(exposure.rejected.len() as i64);
        if !report.changes.is_empty() {
            tracing::info!(
                mode,
                changes = report.total(),
                ms = dur.as_secs_f64() * 1e3,
                "reconciled"
            );
            for c in &report.changes {
                tracing::debug!("{c}");
            }
        }
        for e in &report.errors {
            tracing::error!("{e}");
        }
        self.last = Some(ReconcileInfo {
            at: now_secs(),
            mode: mode.into(),
            duration_ms: dur.as_secs_f64() * 1e3,
            changes: report.total(),
            errors: report.errors.clone(),
        });
        self.applied = Some(host);
        self.publish_health();
        report
    }

    fn db_status(name: &str, s: &Session, remotes: &[String]) -> DbStatus {
        let st = s.status();
        DbStatus {
            db: name.into(),
            remotes: remotes.to_vec(),
            remote: st.remote,
            connected: st.connected,
            synced: st.synced,
            connects: st.connects,
            last_error: st.last_error,
        }
    }

    /// The databases' state, for the metrics and the status report.
    fn db_statuses(&self) -> Vec<DbStatus> {
        let mut dbs = vec![
            Self::db_status(
                "ovs",
                &self.ovs,
                &[self.cfg.default.ovsdb_connection.to_string()],
            ),
            Self::db_status("nb", &self.nb, &self.nb_remotes),
        ];
        if let Some(sb) = &self.sb {
            dbs.push(Self::db_status("sb", sb, &self.sb_remotes));
        }
        dbs
    }

    /// Updates the databases' connection metrics.
    fn publish_health(&self) {
        for d in &self.db_statuses() {
            self.metrics
                .db_connected
                .get_or_create(&DbLabel { db: d.db.clone() })
                .set(i64::from(d.connected && d.synced));
        }
    }

    /// The status report: what is exposed, where and why, as last applied.
    fn report(&self) -> StatusReport {
        let dbs = self.db_statuses();
        let mut exposed = vec![];
        let mut rejected = vec![];
        if let Some(h) = &self.applied {
            let e = self.planner.plan();
            let addresses =
                self.cfg.ovn_route.advertise_method == ovn_route_config::AdvertiseMethod::Addresses;
            for x in e.exposed.values() {
                let k = knet(&x.prefix);
                let advertised = if addresses && h.advertised.addresses.contains(&k) {
                    format!("address on {}", self.cfg.default.bgp_nic)
                } else {
                    match h.advertised.routes.first_for(&k) {
                        Some(r) => format!("table {}: {r}", h.advertised.routes.table),
                        None if k.is_ipv6()
                            && self.cfg.ovn_route.vrf_mode == ovn_route_config::VrfMode::None =>
                        {
                            "not advertised (vrf_mode = none: FRR imports IPv4 tables only)".into()
                        }
                        None => "not advertised".into(),
                    }
                };
                exposed.push(ExposedEntry {
                    prefix: x.prefix.to_string(),
                    kind: x.kind.to_string(),
                    bridge: x.bridge.to_string(),
                    vlan: x.vlan,
                    gateway: x.gateway.as_ref().map(|g| g.port.clone()),
                    sources: x.sources.iter().map(|s| s.to_string()).collect(),
                    advertised,
                    wired: wired_text(h, &x.bridge, &k),
                });
            }
            rejected = e
                .rejected
                .iter()
                .map(|r| RejectedEntry {
                    value: r.value.clone(),
                    source: r.source.clone(),
                    reason: r.reason.clone(),
                })
                .collect();
        }
        if let Some(hr) = &self.host_routes {
            rejected.extend(hr.plan().rejected.iter().map(|r| RejectedEntry {
                value: r.value.clone(),
                source: r.source.clone(),
                reason: format!("host route: {}", r.reason),
            }));
        }
        StatusReport {
            host_routes: (self.host_routes.as_ref())
                .map(|h| h.entries().to_vec())
                .unwrap_or_default(),
            dynamic_routing: self.dynamic.as_ref().map(|d| d.status()),
            chassis: self.planner.identity().system_id.clone(),
            hostname: self.planner.identity().hostname.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: self.started_at,
            frozen: !self.dbs_ready() && self.applied.is_some(),
            databases: dbs,
            last_reconcile: self.last.clone(),
            exposed,
            rejected,
            frr: FrrStatus {
                vty_socket: self.vtysh.socket_dir().display().to_string(),
                configured: self.frr_configured,
                last_error: self.frr_error.clone(),
                peers: self.frr_peers.clone(),
            },
        }
    }
}

/// Applies the FRR block, then (with dynamic routing) the dynamic-routing instances.
fn frr_apply_all(
    vtysh: &Vtysh,
    intent: &FrrIntent,
    dynamic: Option<ovn_route_frr::dynamic::DynamicIntent>,
) -> FrrResult {
    let block = frr_apply_blocking(vtysh, intent);
    // The dynamic-routing instances do not depend on the block: applied either way.
    match (
        block,
        dynamic.map(|d| crate::dynamic::frr_apply_blocking(vtysh, &d)),
    ) {
        (Ok(a), None) => Ok(a),
        (Ok(a), Some(Ok(b))) => Ok(a || b),
        (Err(e), None | Some(Ok(_))) | (Ok(_), Some(Err(e))) => Err(e),
        (Err(a), Some(Err(b))) => Err(format!("{a}; {b}")),
    }
}

/// Applies the FRR block, waiting up to 10 s for FRR to answer; `Ok(true)` when it changed
/// something.
fn frr_apply_blocking(vtysh: &Vtysh, intent: &FrrIntent) -> FrrResult {
    match vtysh.apply_when_ready(intent, Duration::from_secs(10)) {
        Ok(outcome) => {
            let changed = !matches!(outcome, ovn_route_frr::ApplyOutcome::Unchanged);
            if changed {
                tracing::info!(?outcome, "FRR block applied");
                // Said at each (re)apply, i.e. at start and after each FRR restart.
                match vtysh.hitless_restart_gaps(intent.asn) {
                    Ok(gaps) if !gaps.is_empty() => tracing::warn!(
                        missing = ?gaps,
                        "FRR restarts will withdraw routes at the peers: add these lines to \
                         `router bgp {}` (docs/frr.md)",
                        intent.asn
                    ),
                    _ => {}
                }
            }
            Ok(changed)
        }
        Err(e) => {
            tracing::warn!(error = %e, "FRR block not applied");
            Err(e.to_string())
        }
    }
}

/// The peers of `show bgp summary json` (all address families): (peer, state, prefixes sent).
pub fn summary_peers(v: &serde_json::Value) -> Vec<(String, String, u64)> {
    let mut out: BTreeMap<String, (String, u64)> = BTreeMap::new();
    if let Some(afs) = v.as_object() {
        for af in afs.values() {
            if let Some(peers) = af.get("peers").and_then(|p| p.as_object()) {
                for (name, p) in peers {
                    let state = p
                        .get("state")
                        .and_then(|s| s.as_str())
                        .unwrap_or("?")
                        .to_string();
                    let sent = p.get("pfxSnt").and_then(|n| n.as_u64()).unwrap_or(0);
                    let e = out.entry(name.clone()).or_insert((state, 0));
                    e.1 += sent;
                }
            }
        }
    }
    out.into_iter().map(|(k, (s, n))| (k, s, n)).collect()
}

/// Waits for a session to be connected and synced, at most `limit`.
async fn wait(s: &Session, limit: Duration) -> bool {
    tokio::time::timeout(limit, s.wait_connected())
        .await
        .is_ok()
}

/// Runs the agent until SIGTERM/SIGINT (or one pass with `--once`). Returns whether the host
/// state matched the plan at the end (for `--once`: 0 exit code).
pub async fn run(cfg: Config, opts: RunOptions) -> Result<bool, AgentError> {
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let started_at = now_secs();
    let ovs_timeout = cfg.default.ovsdb_connection_timeout;
    let ovs = start_session(
        vec![cfg.default.ovsdb_connection.clone()],
        "Open_vSwitch",
        None,
    );
    if !wait(&ovs, ovs_timeout).await {
        return Err(AgentError::OvsTimeout {
            remote: cfg.default.ovsdb_connection.to_string(),
            secs: ovs_timeout.as_secs(),
        });
    }
    let identity = ovs.read(ChassisIdentity::from_ovs)?;
    let from_ovs = ovs.read(ovs_remotes);
    tracing::info!(chassis = %identity.system_id, mappings = ?identity.bridge_mappings, "chassis identity");

    let o = &cfg.ovn;
    let nb_remotes = if !o.ovn_nb_connection.is_empty() {
        o.ovn_nb_connection.clone()
    } else if let Some(v) = &from_ovs.nb {
        remotes_from("ovn-nb-remote", v)?
    } else {
        return Err(AgentError::NoNb);
    };
    let sb_remotes = if cfg.ovn_route.southbound == ovn_route_config::Southbound::Off {
        vec![]
    } else if !o.ovn_sb_connection.is_empty() {
        o.ovn_sb_connection.clone()
    } else if let Some(v) = &from_ovs.sb {
        remotes_from("ovn-remote", v)?
    } else {
        vec![]
    };
    let nb = crate::dynamic::nb_session(
        cfg.ovn_route.dynamic_routing,
        nb_remotes.clone(),
        ssl(
            &o.ovn_nb_private_key,
            &o.ovn_nb_certificate,
            &o.ovn_nb_ca_cert,
        ),
        cfg.host_routes.enabled,
    );
    let sb = (!sb_remotes.is_empty()).then(|| {
        crate::dynamic::sb_session(
            cfg.ovn_route.dynamic_routing,
            sb_remotes.clone(),
            "OVN_Southbound",
            ssl(
                &o.ovn_sb_private_key,
                &o.ovn_sb_certificate,
                &o.ovn_sb_ca_cert,
            ),
        )
    });
    if sb.is_none() {
        tracing::info!("no Southbound database: port locations from NB requested-chassis and hosting-chassis (OVN 23.09+)");
    }
    if cfg.ovn_route.peering_controller && !opts.once {
        // Network peering controller: its own NB session (leader only), active only while it
        // holds the NB lock, so one agent of the cluster works at a time.
        let mut pcfg = ovn_route_peer::controller::session_config(nb_remotes.clone());
        pcfg.connect.ssl = ssl(
            &o.ovn_nb_private_key,
            &o.ovn_nb_certificate,
            &o.ovn_nb_ca_cert,
        );
        tokio::spawn(async move {
            let session = Session::start(pcfg);
            let ccfg = ovn_route_peer::controller::ControllerConfig::default();
            if let Err(e) =
                ovn_route_peer::controller::run(&session, &ccfg, std::future::pending()).await
            {
                tracing::error!(error = %e, "peering controller stopped");
            }
        });
    }

    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let registry = Arc::new(registry);
    if let (Some(addr), false) = (cfg.ovn_route.metrics_listen, opts.once) {
        let r = registry.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(addr, r).await {
                tracing::error!(%addr, error = %e, "metrics endpoint failed");
            }
        });
    }
    let (status_tx, mut status_rx) = mpsc::unbounded_channel::<StatusRequest>();
    if let (Some(path), false) = (cfg.ovn_route.status_socket.clone(), opts.once) {
        tokio::spawn(async move {
            if let Err(e) = crate::status::serve(path.clone(), status_tx).await {
                tracing::error!(path = %path.display(), error = %e, "status socket failed");
            }
        });
    }

    let kernel = KernelApplier::new(KernelSettings {
        vrf_mode: cfg.ovn_route.vrf_mode,
        vrf: cfg.default.bgp_vrf.clone(),
        nic: cfg.default.bgp_nic.clone(),
        vrf_table: cfg.default.bgp_vrf_table_id,
        protocol: cfg.ovn_route.route_protocol,
        dry_run: opts.dry_run,
    })?;
    // Devices first: a kernel without VRF support is a start-up error naming the setting.
    if !opts.dry_run {
        let mut r = ApplyReport::default();
        kernel
            .ensure_devices(&mut r)
            .await
            .map_err(AgentError::Devices)?;
    }
    let intent = frr_intent(&cfg);
    intent.validate()?;
    let vtysh = Vtysh::new(&cfg.ovn_route.frr_vty_socket);
    let host_routes = match cfg.host_routes.enabled {
        true => Some(crate::host_routes::HostRoutesSettings::from_config(&cfg)?),
        false => None,
    };
    let host_table = host_routes.as_ref().map(|h| h.table);
    let dynamic = match cfg.ovn_route.dynamic_routing {
        true => Some(crate::dynamic::DynamicRouting::new(opts.dry_run)?.with_frr(&cfg)),
        false => None,
    };
    let mut tables = TableRegistry::new(
        &cfg.ovn_route.iproute2_dir,
        &[cfg.default.bgp_vrf_table_id, host_table.unwrap_or(254)],
    );
    if opts.dry_run {
        tables = tables.read_only();
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    forward("ovs", &ovs, &tx);
    forward("nb", &nb, &tx);
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(r) = status_rx.recv().await {
                if tx.send(Wake::Status(r)).is_err() {
                    break;
                }
            }
        });
    }
    if let Some(sb) = &sb {
        forward("sb", sb, &tx);
    }

    let st_cookie = cfg.ovn_route.flow_cookie;
    let exposure_cfg = exposure_config(&cfg);
    let host_cfg = host_settings(&cfg);
    let mut st = State {
        cfg,
        opts,
        ovs,
        nb,
        sb,
        nb_remotes: nb_remotes.iter().map(|r| r.to_string()).collect(),
        sb_remotes: sb_remotes.iter().map(|r| r.to_string()).collect(),
        table_ids: tables.ours(),
        tables,
        host_cfg,
        kernel,
        flows: FlowApplier {
            ofctl: ovn_route_ovs::Ofctl::new(),
            cookie: st_cookie,
            dry_run: opts.dry_run,
        },
        kernel_macs: BTreeMap::new(),
        vtysh,
        intent,
        metrics,
        applied: None,
        planner: ExposurePlanner::new(identity, exposure_cfg),
        pending_nb: vec![],
        pending_sb: vec![],
        frr_configured: false,
        location_warned: false,
        frr_error: None,
        frr_peers: vec![],
        last: None,
        started_at,
        host_routes: host_routes.map(crate::host_routes::HostRoutes::new),
        dynamic,
    };

    let db_timeout = st.cfg.default.ovsdb_connection_timeout;
    if opts.once {
        for (db, s, remotes) in [
            ("NB", Some(&st.nb), &st.nb_remotes),
            ("SB", st.sb.as_ref(), &st.sb_remotes),
        ] {
            if let Some(s) = s {
                if !wait(s, db_timeout).await {
                    return Err(AgentError::DbTimeout {
                        db,
                        remotes: remotes.join(","),
                        secs: db_timeout.as_secs(),
                    });
                }
            }
        }
        let r = st.pass(true).await;
        if opts.dry_run {
            for c in &r.changes {
                println!("{c}");
            }
            return Ok(r.changes.is_empty() && r.errors.is_empty());
        }
        st.frr_apply().await;
        // Converged when a second full pass finds nothing to do.
        let again = st.pass(true).await;
        return Ok(r.errors.is_empty()
            && again.total() == 0
            && again.errors.is_empty()
            && st.frr_error.is_none());
    }

    // Kernel watches on our tables (the exposure table and every bridge table).
    let watch_tx = tx.clone();
    let mut watched: Vec<u32> = vec![];
    // The dynamic-routing tables, watched through one socket.
    let dyn_tables: ovn_route_kernel::WatchedTables = Default::default();
    let mut dyn_watching = false;
    let spawn_watch = |table: u32, watched: &mut Vec<u32>| {
        if watched.contains(&table) {
            return;
        }
        watched.push(table);
        match RouteWatch::new(table) {
            Ok(mut w) => {
                let tx = watch_tx.clone();
                tokio::spawn(async move {
                    while let Some(ev) = w.next().await {
                        if tx.send(Wake::Kernel(table, ev)).is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => tracing::warn!(table, error = %e, "cannot watch the table"),
        }
    };
    spawn_watch(st.cfg.default.bgp_vrf_table_id, &mut watched);
    if let Some(t) = host_table {
        // Address changes (connected routes in main) and the host routes' own table.
        spawn_watch(crate::host_routes::MAIN_TABLE, &mut watched);
        spawn_watch(t, &mut watched);
    }

    // FRR restarts (inotify on the vty sockets), on a thread of its own.
    match ovn_route_frr::FrrWatcher::new(st.vtysh.socket_dir()) {
        Ok(w) => {
            let tx = tx.clone();
            std::thread::Builder::new()
                .name("frr-watch".into())
                .spawn(move || loop {
                    if let Some(ev) = w.recv_timeout(Duration::from_secs(3600)) {
                        tracing::info!(?ev, "FRR event");
                        let wake = match ev {
                            ovn_route_frr::FrrEvent::Stopped { .. } => Wake::FrrStopped,
                            _ => Wake::FrrRestart,
                        };
                        if tx.send(wake).is_err() {
                            break;
                        }
                    }
                })
                .ok();
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch FRR restarts; relying on the periodic check")
        }
    }
    {
        let tx = tx.clone();
        let full = st.cfg.default.reconcile_interval;
        let frr = st.cfg.default.frr_reconcile_interval;
        tokio::spawn(async move {
            let mut a = tokio::time::interval(full);
            let mut b = tokio::time::interval(frr);
            a.tick().await;
            loop {
                let w = tokio::select! {
                    _ = a.tick() => Wake::Full,
                    _ = b.tick() => Wake::FrrCheck,
                };
                if tx.send(w).is_err() {
                    break;
                }
            }
        });
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    let mut full = true;
    let mut replan = true;
    let mut frr_due = true;
    let mut frr_running = false;
    let mut retry_pending = false;
    st.publish_health();
    loop {
        // Apply what the wake-ups asked for.
        if replan && (st.dbs_ready() || st.applied.is_some()) {
            let r = st.pass(full).await;
            replan = false;
            full = false;
            if !r.errors.is_empty() && !retry_pending {
                // Try again, in full, soon (not at once: the cause may need a moment).
                retry_pending = true;
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(RETRY_AFTER).await;
                    let _ = tx.send(Wake::Retry);
                });
            }
            if let Some(h) = &st.applied {
                let tables: Vec<u32> = h.bridges.values().map(|b| b.routes.table).collect();
                for t in tables {
                    spawn_watch(t, &mut watched);
                }
            }
            if let Some(d) = &st.dynamic {
                // A router's table newly advertised here: watch it (one socket for all of
                // them), then dump it again (a full pass), so that nothing installed in between
                // is missed.
                let tables = d.tables();
                let new = match dyn_tables.write() {
                    Ok(mut w) => {
                        let new = tables.difference(&w).next().is_some();
                        *w = tables;
                        new
                    }
                    Err(_) => false,
                };
                if !dyn_watching && new {
                    dyn_watching = true;
                    match ovn_route_kernel::TablesWatch::ignoring_additions_of(
                        dyn_tables.clone(),
                        ovn_route_plan::dynamic::PROTOCOL,
                    ) {
                        Ok(mut w) => {
                            let tx = watch_tx.clone();
                            tokio::spawn(async move {
                                while let Some(c) = w.next_change().await {
                                    let wake = match c {
                                        ovn_route_kernel::TablesChange::Route(table, ev) => {
                                            Wake::Kernel(table, ev)
                                        }
                                        // Notifications lost: read every table again.
                                        ovn_route_kernel::TablesChange::Overrun => Wake::Full,
                                    };
                                    if tx.send(wake).is_err() {
                                        break;
                                    }
                                }
                            });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot watch the dynamic-routing tables")
                        }
                    }
                }
                if new {
                    let _ = tx.send(Wake::Full);
                }
            }
            if st.dynamic.as_mut().is_some_and(|d| d.take_frr_change()) {
                frr_due = true;
            }
        }
        // FRR in a task of its own: an FRR that does not answer never holds up the kernel.
        if frr_due && !frr_running && !st.opts.dry_run {
            frr_due = false;
            frr_running = true;
            let (vtysh, intent, tx) = (st.vtysh.clone(), st.intent.clone(), tx.clone());
            let dynamic = st.dynamic.as_ref().map(|d| d.frr_intent());
            tokio::task::spawn_blocking(move || {
                let _ = tx.send(Wake::FrrDone(frr_apply_all(&vtysh, &intent, dynamic)));
            });
        }
        let hold = st.dynamic.as_ref().and_then(|d| d.next_deadline());
        let first = tokio::select! {
            w = rx.recv() => w,
            _ = tokio::time::sleep_until(hold.unwrap_or_else(Instant::now).into()), if hold.is_some() => {
                Some(Wake::LearnHold)
            }
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
        };
        let Some(first) = first else {
            tracing::info!("stopping; everything exposed stays in place");
            return Ok(true);
        };
        // Coalesce what is queued.
        let mut wakes = vec![first];
        while let Ok(w) = rx.try_recv() {
            wakes.push(w);
        }
        for w in wakes {
            match (&w, st.dynamic.as_mut()) {
                (Wake::Db("nb", Event::Changed(cs)), Some(d)) => {
                    st.nb.read(|n| d.note_nb_change(cs, n));
                }
                (Wake::Db(..), Some(d)) => d.note_db_change(),
                _ => {}
            }
            match w {
                Wake::Db(db, Event::Connected { remote, resumed }) => {
                    tracing::info!(db, %remote, resumed, "database connected");
                    st.metrics
                        .db_connects
                        .get_or_create(&DbLabel { db: db.into() })
                        .inc();
                    if db != "ovs" {
                        // The replica may have been replaced: plan from every row.
                        st.plan_from_every_row();
                    }
                    replan = true;
                }
                Wake::Db(db, Event::Disconnected { remote, reason }) => {
                    tracing::warn!(db, %remote, %reason, "database connection lost; plan frozen until it is back");
                    replan = true;
                }
                Wake::Db(db, Event::Changed(cs)) => {
                    match db {
                        "nb" => st.pending_nb.push(cs),
                        "sb" => st.pending_sb.push(cs),
                        _ => {}
                    }
                    if st.pending_nb.len() + st.pending_sb.len() > MAX_PENDING {
                        // A long freeze: cheaper to plan from every row when it ends.
                        st.plan_from_every_row();
                    }
                    replan = true;
                }
                Wake::Db(..) => {}
                Wake::Kernel(table, ev) => {
                    // A change of one of our tables that does not match the plan (one of our
                    // routes deleted by someone else, or a route with our mark we do not want):
                    // a full pass repairs it. Our own changes match the plan and cost nothing.
                    if st.diverges(table, &ev) {
                        tracing::info!(table, route = %ev.key.prefix, change = ?ev.change, "our table changed under us; repairing");
                        full = true;
                        replan = true;
                    } else if st
                        .dynamic
                        .as_mut()
                        .is_some_and(|d| d.on_route_event(table, &ev))
                    {
                        replan = true;
                    }
                    if st
                        .host_routes
                        .as_ref()
                        .is_some_and(|h| h.concerns(table, &ev))
                    {
                        replan = true;
                    }
                }
                Wake::FrrRestart => {
                    frr_due = true;
                    if let Some(d) = st.dynamic.as_mut() {
                        d.note_frr_event(false);
                    }
                }
                Wake::FrrStopped => {
                    if let Some(d) = st.dynamic.as_mut() {
                        d.note_frr_event(true);
                    }
                }
                Wake::LearnHold => replan = true,
                Wake::FrrCheck => {
                    frr_due = true;
                    let (vtysh, tx) = (st.vtysh.clone(), tx.clone());
                    tokio::task::spawn_blocking(move || {
                        if let Ok(v) = vtysh.bgp_summary() {
                            let _ = tx.send(Wake::FrrPeers(summary_peers(&v)));
                        }
                    });
                }
                Wake::FrrDone(r) => {
                    frr_running = false;
                    let failed = st.frr_error.is_some();
                    st.frr_result(r);
                    // Host routes left to FRR's copy come back while FRR fails, and go again.
                    if st.host_routes.is_some() && failed != st.frr_error.is_some() {
                        replan = true;
                    }
                }
                Wake::FrrPeers(p) => st.frr_peers = p,
                Wake::Status(reply) => {
                    let _ = reply.send(Arc::new(st.report()));
                }
                Wake::Retry => {
                    retry_pending = false;
                    full = true;
                    replan = true;
                }
                Wake::Full => {
                    full = true;
                    replan = true;
                }
            }
        }
    }
}
