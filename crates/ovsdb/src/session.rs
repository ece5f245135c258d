//! A long-lived session: keeps a [`Replica`] of one database current across reconnects and cluster
//! member changes, and carries transactions and locks.
//!
//! * Remotes are tried in random order; a failed round waits an exponentially growing, jittered delay.
//! * For clustered databases, `_Server.Database` is monitored: members that are disconnected from the
//!   cluster, stale (an older raft index than already seen), or not the leader when `leader_only` is
//!   set, are skipped; a member that turns bad while connected is left.
//! * `monitor_cond_since` with the last transaction id resumes without a full dump; servers without it
//!   get `monitor_cond`, then `monitor`. A full dump is diffed against the replica so that subscribers
//!   see only the real net change.
//! * While disconnected, the replica is kept as it was (frozen), never cleared.
//! * Writes: on a clustered database a follower forwards transactions to the leader (raft); with
//!   `leader_only` the session talks to the leader directly, which also makes locks cluster-wide.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::replica::{ChangeSet, Replica, TableLayout};
use crate::rpc::{ConnectOptions, Connection, Notification};
use crate::schema::DatabaseSchema;
use crate::stream::Payload;
use crate::value::Uuid;
use crate::{Error, Operation, Remote};

const MONITOR_ID: &str = "ovsdb-rs";
const SERVER_MONITOR_ID: &str = "ovsdb-rs-server";

/// Which tables and columns to replicate.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSelect {
    /// Table name. Tables the server's schema lacks are skipped (logged once per connection).
    pub table: String,
    /// Columns (`None`: all). Columns the server's schema lacks read as absent.
    pub columns: Option<Vec<String>>,
    /// `where` conditions in JSON (`None`: every row).
    pub conditions: Option<Vec<Json>>,
}

impl TableSelect {
    /// Every column and row of `table`.
    pub fn all(table: &str) -> Self {
        TableSelect {
            table: table.into(),
            columns: None,
            conditions: None,
        }
    }

    /// The given columns of every row of `table`.
    pub fn columns(table: &str, columns: &[&str]) -> Self {
        TableSelect {
            table: table.into(),
            columns: Some(columns.iter().map(|c| c.to_string()).collect()),
            conditions: None,
        }
    }
}

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The database's remotes (several for a cluster).
    pub remotes: Vec<Remote>,
    /// Database name, e.g. `OVN_Northbound`.
    pub database: String,
    /// What to replicate; empty: every table and column.
    pub tables: Vec<TableSelect>,
    /// Connection settings: TLS, limits and the inactivity probe (off for `unix:` remotes unless
    /// `probe_unix`; never drops a connection while a reply is due, e.g. the initial monitor reply).
    pub connect: ConnectOptions,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Talk only to the cluster leader.
    pub leader_only: bool,
}

impl SessionConfig {
    /// Defaults for `database` at `remotes`.
    pub fn new(remotes: Vec<Remote>, database: &str) -> Self {
        SessionConfig {
            remotes,
            database: database.into(),
            tables: vec![],
            connect: ConnectOptions::default(),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(8),
            leader_only: false,
        }
    }
}

/// Which monitor request the server accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorMethod {
    /// `monitor_cond_since` (update3; resumable).
    CondSince,
    /// `monitor_cond` (update2).
    Cond,
    /// `monitor` (RFC 7047 updates).
    Plain,
}

/// What a subscriber hears.
#[derive(Debug, Clone)]
pub enum Event {
    /// A connection is up and the replica is current; `resumed` when no full dump was needed.
    Connected {
        /// The remote.
        remote: String,
        /// True when `monitor_cond_since` found our last transaction.
        resumed: bool,
    },
    /// The connection was lost; the replica stays as it was until the next connection.
    Disconnected {
        /// The remote.
        remote: String,
        /// Why.
        reason: String,
    },
    /// Rows changed.
    Changed(Arc<ChangeSet>),
    /// A lock was granted or lost.
    Lock {
        /// Lock name.
        name: String,
        /// True when held.
        held: bool,
    },
}

/// The session's state, for status displays and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionStatus {
    /// Remote of the current connection.
    pub remote: Option<String>,
    /// True while connected and monitoring.
    pub connected: bool,
    /// True once the replica has been complete at least once.
    pub synced: bool,
    /// Method of the current monitor.
    pub method: Option<MonitorMethod>,
    /// Last transaction id seen (update3).
    pub last_txn_id: Option<Uuid>,
    /// Successful connections so far.
    pub connects: u64,
    /// Connections that resumed without a full dump.
    pub resumes: u64,
    /// Rows carried by the last monitor reply (0 for a resume with nothing new).
    pub last_reply_rows: usize,
    /// The last connection error.
    pub last_error: Option<String>,
}

enum Command {
    Transact(Vec<Operation>, oneshot::Sender<Result<Vec<Json>, Error>>),
    Lock(String, bool),
    Unlock(String),
}

struct Shared {
    replica: RwLock<Replica>,
    status: watch::Sender<SessionStatus>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Event>>>,
    locks: Mutex<HashMap<String, LockState>>,
}

/// A lock the application wants.
struct LockState {
    /// Ask with `steal` rather than `lock`.
    steal: bool,
    /// Whether it is held (what the application's receivers see).
    held: watch::Sender<bool>,
    /// Counts `locked`/`stolen` notifications and connection losses, so that a reply overtaken by
    /// one of them is not applied.
    epoch: u64,
}

impl Shared {
    /// Records whether a lock is held; tells subscribers when that changes.
    fn set_lock(&self, name: &str, held: bool) {
        let changed = self.locks.lock().unwrap().get(name).is_some_and(|l| {
            // send_if_modified stores the value even when no receiver is left.
            l.held
                .send_if_modified(|h| std::mem::replace(h, held) != held)
        });
        if changed {
            self.emit(Event::Lock {
                name: name.to_string(),
                held,
            });
        }
    }

    /// A connection ended: the server has released every lock it granted on it.
    fn release_all_locks(&self) {
        let names: Vec<String> = {
            let mut locks = self.locks.lock().unwrap();
            locks.values_mut().for_each(|l| l.epoch += 1);
            locks.keys().cloned().collect()
        };
        for name in names {
            self.set_lock(&name, false);
        }
    }

    fn emit(&self, ev: Event) {
        self.subscribers
            .lock()
            .unwrap()
            .retain(|s| s.send(ev.clone()).is_ok());
    }
}

/// A running session. Dropping it stops the session.
pub struct Session {
    shared: Arc<Shared>,
    cmd: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
    database: String,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Session({}, {:?})", self.database, self.status())
    }
}

impl Session {
    /// Starts a session in the background (call within a tokio runtime).
    pub fn start(cfg: SessionConfig) -> Session {
        let (status, _) = watch::channel(SessionStatus::default());
        let shared = Arc::new(Shared {
            replica: RwLock::new(Replica::default()),
            status,
            subscribers: Mutex::default(),
            locks: Mutex::default(),
        });
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let database = cfg.database.clone();
        let task = tokio::spawn(run(cfg, shared.clone(), cmd_rx));
        Session {
            shared,
            cmd: cmd_tx,
            task,
            database,
        }
    }

    /// Events from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Event> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.shared.subscribers.lock().unwrap().push(tx);
        rx
    }

    /// Reads the replica and subscribes atomically: the events received are exactly the changes
    /// made after what `f` saw (for a consistent snapshot followed by a change stream).
    pub fn subscribe_with<R>(
        &self,
        f: impl FnOnce(&Replica) -> R,
    ) -> (mpsc::UnboundedReceiver<Event>, R) {
        let r = self.shared.replica.read().unwrap();
        let rx = self.subscribe();
        (rx, f(&r))
    }

    /// Reads the replica.
    pub fn read<R>(&self, f: impl FnOnce(&Replica) -> R) -> R {
        f(&self.shared.replica.read().unwrap())
    }

    /// The current status.
    pub fn status(&self) -> SessionStatus {
        self.shared.status.borrow().clone()
    }

    /// A watch on the status.
    pub fn watch_status(&self) -> watch::Receiver<SessionStatus> {
        self.shared.status.subscribe()
    }

    /// Waits until the replica is complete (first connection done) and connected.
    pub async fn wait_connected(&self) {
        let mut w = self.watch_status();
        let _ = w.wait_for(|s| s.synced && s.connected).await;
    }

    /// Runs a transaction; while disconnected it waits for the next connection. An error names the
    /// failing operation.
    pub async fn transact(&self, ops: Vec<Operation>) -> Result<Vec<Json>, Error> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Command::Transact(ops, tx))
            .map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Asks for a lock (asked again after every reconnect); the receiver says whether it is held.
    /// It turns false as soon as the connection is lost (the server releases a client's locks with
    /// its connection) and true again once the lock is granted on the next one.
    pub fn lock(&self, name: &str) -> watch::Receiver<bool> {
        self.lock_inner(name, false)
    }

    /// Takes a lock even if another client holds it (also when this session already waits for it
    /// after [`Session::lock`]); the previous holder is told it lost the lock and stays in line for
    /// it. After a reconnect the lock is stolen again.
    pub fn steal(&self, name: &str) -> watch::Receiver<bool> {
        self.lock_inner(name, true)
    }

    fn lock_inner(&self, name: &str, steal: bool) -> watch::Receiver<bool> {
        let mut locks = self.shared.locks.lock().unwrap();
        let rx = match locks.get_mut(name) {
            Some(l) => {
                l.steal = steal;
                l.held.subscribe()
            }
            None => {
                let (held, rx) = watch::channel(false);
                locks.insert(
                    name.to_string(),
                    LockState {
                        steal,
                        held,
                        epoch: 0,
                    },
                );
                rx
            }
        };
        let _ = self.cmd.send(Command::Lock(name.to_string(), steal));
        rx
    }

    /// Releases a lock.
    pub fn unlock(&self, name: &str) {
        if let Some(l) = self.shared.locks.lock().unwrap().remove(name) {
            l.held.send_replace(false);
        }
        let _ = self.cmd.send(Command::Unlock(name.to_string()));
    }
}

/// Why serving one connection ended.
enum Ended {
    /// The session is being dropped.
    Shutdown,
    /// The connection failed or the member is unsuitable; `connected` when it had got as far as
    /// monitoring.
    Failed { reason: String, connected: bool },
}

async fn run(
    cfg: SessionConfig,
    shared: Arc<Shared>,
    mut cmd_rx: mpsc::UnboundedReceiver<Command>,
) {
    let mut backoff = cfg.backoff_min;
    let mut state = LoopState {
        max_index: 0,
        queued: VecDeque::new(),
    };
    loop {
        let mut order = cfg.remotes.clone();
        order.shuffle(&mut rand::thread_rng());
        for remote in &order {
            match serve(&cfg, remote, &shared, &mut cmd_rx, &mut state).await {
                Ended::Shutdown => return,
                Ended::Failed { reason, connected } => {
                    shared.status.send_modify(|s| {
                        s.connected = false;
                        s.last_error = Some(reason.clone());
                    });
                    if connected {
                        warn!(remote = %remote, db = %cfg.database, %reason, "OVSDB connection lost");
                        shared.release_all_locks();
                        shared.emit(Event::Disconnected {
                            remote: remote.to_string(),
                            reason: reason.clone(),
                        });
                        backoff = cfg.backoff_min;
                    } else {
                        info!(remote = %remote, db = %cfg.database, %reason, "OVSDB remote not usable");
                    }
                }
            }
        }
        let jitter: f64 = rand::thread_rng().gen_range(0.5..1.5);
        let delay = backoff.mul_f64(jitter);
        backoff = (backoff * 2).min(cfg.backoff_max);
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                c = cmd_rx.recv() => match c {
                    None => return,
                    Some(c) => state.queued.push_back(c),
                },
            }
        }
    }
}

struct LoopState {
    max_index: u64,
    queued: VecDeque<Command>,
}

fn failed(reason: impl ToString, connected: bool) -> Ended {
    Ended::Failed {
        reason: reason.to_string(),
        connected,
    }
}

/// Checks a `_Server.Database` row; returns why the member is unusable, if it is.
fn member_problem(row: &Json, leader_only: bool, max_index: &mut u64) -> Option<String> {
    let model = row
        .get("model")
        .and_then(Json::as_str)
        .unwrap_or("standalone");
    if model != "clustered" {
        return None;
    }
    if row.get("connected").and_then(Json::as_bool) == Some(false) {
        return Some("member is not connected to the cluster".into());
    }
    if leader_only && row.get("leader").and_then(Json::as_bool) != Some(true) {
        return Some("member is not the cluster leader".into());
    }
    if let Some(idx) = row.get("index").and_then(Json::as_i64) {
        let idx = idx as u64;
        if idx < *max_index {
            return Some(format!(
                "member is stale (raft index {idx}, already saw {})",
                *max_index
            ));
        }
        *max_index = idx;
    }
    None
}

/// Extracts the `Database` row for `db` from a `_Server` monitor reply or update2 notification.
fn server_row(updates: &Json, db: &str) -> Option<Json> {
    let rows = updates.get("Database")?.as_object()?;
    rows.values()
        .filter_map(|u| {
            u.get("initial")
                .or_else(|| u.get("insert"))
                .or_else(|| u.get("modify"))
        })
        // Only objects: a malformed row must not reach the merge in `on_notification`, whose
        // indexing would panic on a non-object.
        .filter(|r| r.is_object())
        .find(|r| r.get("name").and_then(Json::as_str).is_none_or(|n| n == db))
        .cloned()
}

async fn serve(
    cfg: &SessionConfig,
    remote: &Remote,
    shared: &Arc<Shared>,
    cmd_rx: &mut mpsc::UnboundedReceiver<Command>,
    state: &mut LoopState,
) -> Ended {
    let db = cfg.database.as_str();
    let (conn, mut notes) = match Connection::connect(remote, &cfg.connect).await {
        Ok(c) => c,
        Err(e) => return failed(e, false),
    };
    let conn = Arc::new(conn);

    // Cluster membership: monitor _Server.Database for our database.
    let mut server_known: Option<Json> = None;
    let req = json!(["_Server", SERVER_MONITOR_ID, {"Database": [{
        "columns": ["name", "model", "connected", "leader", "index"],
        "where": [["name", "==", db]]}]}]);
    match conn.call("monitor_cond", &req).await {
        Ok(reply) => {
            if let Some(row) = server_row(&reply, db) {
                if let Some(p) = member_problem(&row, cfg.leader_only, &mut state.max_index) {
                    return failed(format!("{remote}: {p}"), false);
                }
                server_known = Some(row);
            }
        }
        Err(Error::Rpc { .. }) => debug!(%remote, "no _Server database; cluster checks off"),
        Err(e) => return failed(e, false),
    }
    let _ = conn.call("set_db_change_aware", &json!([true])).await;

    let schema = match conn.get_schema(db).await {
        Ok(s) => s,
        Err(e) => return failed(e, false),
    };
    let layouts = layouts_for(cfg, &schema, remote);
    let by_name: HashMap<String, TableLayout> = layouts
        .iter()
        .map(|l| (l.name.clone(), l.clone()))
        .collect();

    let same_layout = {
        let r = shared.replica.read().unwrap();
        let cur = r.layouts();
        cur.len() == layouts.len() && layouts.iter().all(|l| cur.contains(l))
    };
    let last_txn = shared.status.borrow().last_txn_id.filter(|_| same_layout);

    // Monitor, falling back to older methods.
    let layouts_arc = Arc::new(by_name.clone());
    let since_req = monitor_requests(&layouts, cfg, true);
    let since_id = last_txn.unwrap_or_else(Uuid::nil).hyphenated().to_string();
    let mut method = MonitorMethod::CondSince;
    let mut reply = conn
        .monitor(
            method,
            &json!([db, MONITOR_ID, since_req, since_id]),
            layouts_arc.clone(),
            MONITOR_ID,
        )
        .await;
    if is_unknown_method(&reply) {
        method = MonitorMethod::Cond;
        reply = conn
            .monitor(
                method,
                &json!([db, MONITOR_ID, since_req]),
                layouts_arc.clone(),
                MONITOR_ID,
            )
            .await;
    }
    if is_unknown_method(&reply) {
        method = MonitorMethod::Plain;
        reply = conn
            .monitor(
                method,
                &json!([db, MONITOR_ID, monitor_requests(&layouts, cfg, false)]),
                layouts_arc,
                MONITOR_ID,
            )
            .await;
    }
    let (found, txn, updates) = match reply {
        Ok(u) => (u.found, u.txn, u.updates),
        Err(e) => return failed(e, false),
    };
    let rows: usize = updates.iter().map(|(_, r)| r.len()).sum();
    let resumed = found && same_layout;
    // Apply, publish the status and emit the events under the replica lock, so that a subscriber
    // registered with a snapshot (`subscribe_with`) sees exactly the changes after it.
    {
        let mut r = shared.replica.write().unwrap();
        let cs = if resumed {
            r.apply(updates)
        } else {
            r.replace(layouts.clone(), updates)
        };
        shared.status.send_modify(|s| {
            s.remote = Some(remote.to_string());
            s.connected = true;
            s.synced = true;
            s.method = Some(method);
            if method == MonitorMethod::CondSince {
                s.last_txn_id = txn.filter(|t| !t.is_nil());
            } else {
                s.last_txn_id = None;
            }
            s.connects += 1;
            if resumed {
                s.resumes += 1;
            }
            s.last_reply_rows = rows;
        });
        info!(%remote, db, ?method, resumed, rows, "OVSDB replica current");
        shared.emit(Event::Connected {
            remote: remote.to_string(),
            resumed,
        });
        if !cs.is_empty() {
            shared.emit(Event::Changed(Arc::new(cs)));
        }
    }

    // Locks held before the reconnect, then commands queued while disconnected.
    let mut locks = ConnLocks::start(&conn, shared);
    let wanted: Vec<(String, bool)> = shared
        .locks
        .lock()
        .unwrap()
        .iter()
        .map(|(n, l)| (n.clone(), l.steal))
        .collect();
    for (name, steal) in wanted {
        locks.request(&name, steal);
    }
    while let Some(c) = state.queued.pop_front() {
        handle_command(&conn, db, c, &mut locks);
    }

    loop {
        tokio::select! {
            n = notes.recv() => {
                let Some(n) = n else {
                    return failed(conn.close_reason().unwrap_or_else(|| "connection closed".into()), true);
                };
                if let Err(reason) = on_notification(n, shared, db, cfg.leader_only, state, &mut server_known) {
                    return failed(format!("{remote}: {reason}"), true);
                }
            }
            c = cmd_rx.recv() => match c {
                None => return Ended::Shutdown,
                Some(c) => handle_command(&conn, db, c, &mut locks),
            }
        }
    }
}

fn is_unknown_method<T>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(Error::Rpc { error, .. }) if error.contains("unknown method"))
}

fn layouts_for(cfg: &SessionConfig, schema: &DatabaseSchema, remote: &Remote) -> Vec<TableLayout> {
    if cfg.tables.is_empty() {
        return schema
            .tables
            .values()
            .map(|t| TableLayout::new(t, None).0)
            .collect();
    }
    let mut out = vec![];
    for sel in &cfg.tables {
        match schema.table(&sel.table) {
            None => {
                debug!(%remote, table = %sel.table, "table not in the server's schema; skipped")
            }
            Some(ts) => {
                let (layout, missing) = TableLayout::new(ts, sel.columns.as_deref());
                if !missing.is_empty() {
                    debug!(%remote, table = %sel.table, ?missing, "columns not in the server's schema read as absent");
                }
                out.push(layout);
            }
        }
    }
    out
}

fn monitor_requests(layouts: &[TableLayout], cfg: &SessionConfig, cond: bool) -> Json {
    let mut m = serde_json::Map::new();
    for l in layouts {
        let mut req = json!({"columns": l.columns});
        if cond {
            if let Some(c) = cfg
                .tables
                .iter()
                .find(|t| t.table == l.name)
                .and_then(|t| t.conditions.clone())
            {
                req["where"] = Json::Array(c);
            }
            m.insert(l.name.clone(), json!([req]));
        } else {
            m.insert(l.name.clone(), req);
        }
    }
    Json::Object(m)
}

fn handle_command(conn: &Arc<Connection>, db: &str, c: Command, locks: &mut ConnLocks) {
    match c {
        Command::Transact(ops, reply) => {
            let conn = conn.clone();
            let db = db.to_string();
            tokio::spawn(async move {
                let _ = reply.send(conn.transact(&db, &ops).await);
            });
        }
        Command::Lock(name, steal) => locks.request(&name, steal),
        Command::Unlock(name) => locks.unlock(&name),
    }
}

/// The lock requests of one connection. One task sends them in order, so that an `unlock` and a
/// following `lock` of the same name cannot overtake each other.
struct ConnLocks {
    tx: mpsc::UnboundedSender<LockOp>,
    /// Names requested on this connection and not unlocked since.
    requested: HashSet<String>,
}

enum LockOp {
    Request {
        name: String,
        steal: bool,
        /// OVSDB refuses a second request for a name until it is unlocked.
        unlock_first: bool,
    },
    Unlock(String),
}

impl ConnLocks {
    fn start(conn: &Arc<Connection>, shared: &Arc<Shared>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        // Ends when `tx` is dropped with the connection's serve loop.
        tokio::spawn(lock_requests(conn.clone(), shared.clone(), rx));
        ConnLocks {
            tx,
            requested: HashSet::new(),
        }
    }

    fn request(&mut self, name: &str, steal: bool) {
        let unlock_first = if self.requested.contains(name) {
            if !steal {
                return; // already held or waited for
            }
            true
        } else {
            self.requested.insert(name.to_string());
            false
        };
        let _ = self.tx.send(LockOp::Request {
            name: name.to_string(),
            steal,
            unlock_first,
        });
    }

    fn unlock(&mut self, name: &str) {
        if self.requested.remove(name) {
            let _ = self.tx.send(LockOp::Unlock(name.to_string()));
        }
    }
}

async fn lock_requests(
    conn: Arc<Connection>,
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<LockOp>,
) {
    while let Some(op) = rx.recv().await {
        match op {
            LockOp::Request {
                name,
                steal,
                unlock_first,
            } => {
                if unlock_first {
                    if let Err(e) = conn.call("unlock", &json!([name])).await {
                        warn!(lock = %name, error = %e, "unlock before steal failed");
                    }
                }
                let epoch = shared.locks.lock().unwrap().get(&name).map(|l| l.epoch);
                let method = if steal { "steal" } else { "lock" };
                match conn.call(method, &json!([name])).await {
                    Ok(r) => {
                        // {"locked": false} only means "queued": a "locked" notification will say
                        // when it is granted. A grant is applied unless a notification about this
                        // lock has been handled meanwhile (it is newer than this reply).
                        let granted = r.get("locked").and_then(Json::as_bool) == Some(true);
                        let current = shared.locks.lock().unwrap().get(&name).map(|l| l.epoch);
                        if granted && epoch.is_some() && current == epoch {
                            shared.set_lock(&name, true);
                        }
                    }
                    Err(e) => warn!(lock = %name, error = %e, "lock request failed"),
                }
            }
            LockOp::Unlock(name) => {
                if let Err(e) = conn.call("unlock", &json!([name])).await {
                    debug!(lock = %name, error = %e, "unlock failed");
                }
            }
        }
    }
}

fn on_notification(
    n: Notification,
    shared: &Shared,
    db: &str,
    leader_only: bool,
    state: &mut LoopState,
    server_known: &mut Option<Json>,
) -> Result<(), String> {
    match (n.method.as_str(), n.params) {
        ("update" | "update2" | "update3", Payload::Updates(u)) => {
            let mut r = shared.replica.write().unwrap();
            let cs = r.apply(u.updates);
            if let Some(t) = u.txn {
                shared.status.send_modify(|s| s.last_txn_id = Some(t));
            }
            if !cs.is_empty() {
                shared.emit(Event::Changed(Arc::new(cs)));
            }
        }
        ("update2", Payload::Json(params)) if params.get(0) == Some(&json!(SERVER_MONITOR_ID)) => {
            let updates = params.get(1).cloned().unwrap_or(Json::Null);
            if let Some(mut row) = server_row(&updates, db) {
                // Merge the modified columns into what we knew.
                if let (Some(known), Json::Object(m)) = (server_known.as_mut(), &mut row) {
                    for (k, v) in m.iter() {
                        known[k] = v.clone();
                    }
                    row = known.clone();
                }
                *server_known = Some(row.clone());
                if let Some(p) = member_problem(&row, leader_only, &mut state.max_index) {
                    return Err(p);
                }
            }
        }
        ("locked" | "stolen", Payload::Json(params)) => {
            let held = n.method == "locked";
            let name = params.get(0).and_then(Json::as_str).map(str::to_string);
            if let Some(name) = name {
                if let Some(l) = shared.locks.lock().unwrap().get_mut(&name) {
                    l.epoch += 1;
                }
                if !held {
                    warn!(lock = %name, "lock stolen by another client");
                }
                shared.set_lock(&name, held);
            }
        }
        (m @ ("update" | "update2" | "update3"), Payload::Json(params)) => match params.get(0) {
            Some(Json::String(id)) if id == MONITOR_ID => {
                return Err(format!("invalid {m} notification: lacks its table updates"))
            }
            // Another monitor's notification (not ours, not _Server): nothing to do.
            Some(Json::String(_)) => debug!(method = m, "update for another monitor ignored"),
            Some(_) => {
                return Err(format!(
                    "invalid {m} notification: monitor id is not a string"
                ))
            }
            None => return Err(format!("invalid {m} notification: missing monitor id")),
        },
        ("monitor_canceled", _) => {
            return Err("server canceled the monitor (database changed)".into())
        }
        (other, _) => debug!(method = other, "notification ignored"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fuzzing support: the session's handling of server messages, without a connection.

/// A session's message handling on its own, for [`crate::fuzzing`].
pub(crate) struct FuzzSession {
    shared: Shared,
    layouts: HashMap<String, TableLayout>,
    state: LoopState,
    server_known: Option<Json>,
    leader_only: bool,
}

impl FuzzSession {
    pub(crate) fn new(schema: &DatabaseSchema, leader_only: bool) -> Self {
        let layouts: Vec<TableLayout> = schema
            .tables
            .values()
            .map(|t| TableLayout::new(t, None).0)
            .collect();
        let (status, _) = watch::channel(SessionStatus::default());
        let shared = Shared {
            replica: RwLock::new(Replica::new(layouts.clone())),
            status,
            subscribers: Mutex::default(),
            locks: Mutex::default(),
        };
        let (held, _) = watch::channel(false);
        shared.locks.lock().unwrap().insert(
            "lock".into(),
            LockState {
                steal: false,
                held,
                epoch: 0,
            },
        );
        FuzzSession {
            shared,
            layouts: layouts.into_iter().map(|l| (l.name.clone(), l)).collect(),
            state: LoopState {
                max_index: 0,
                queued: VecDeque::new(),
            },
            server_known: None,
            leader_only,
        }
    }

    /// A notification, as the serve loop handles it.
    pub(crate) fn notification(&mut self, n: Notification) {
        let _ = on_notification(
            n,
            &self.shared,
            "Fuzz",
            self.leader_only,
            &mut self.state,
            &mut self.server_known,
        );
    }

    /// The layouts the fuzzed monitor uses.
    pub(crate) fn layouts(&self) -> &HashMap<String, TableLayout> {
        &self.layouts
    }

    /// A reply: monitor data is applied as updates (when found) or as a full dump; JSON is read as
    /// a `_Server` monitor reply.
    pub(crate) fn reply(&mut self, payload: Payload) {
        match payload {
            Payload::Updates(u) => {
                let mut r = self.shared.replica.write().unwrap();
                if u.found {
                    r.apply(u.updates);
                } else {
                    let layouts = self.layouts.values().cloned().collect();
                    r.replace(layouts, u.updates);
                }
            }
            Payload::Json(j) => {
                if let Some(row) = server_row(&j, "Fuzz") {
                    let _ = member_problem(&row, self.leader_only, &mut self.state.max_index);
                    self.server_known = Some(row);
                }
            }
        }
    }

    /// The replica as JSON (checks that whatever was applied can be written out).
    pub(crate) fn replica_json(&self) -> Json {
        self.shared.replica.read().unwrap().to_json()
    }
}
