//! Standalone ovsdb-server instances and raft clusters of them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::error::{LabError, Result};
use crate::process::{run, Daemon, DaemonSpec, DAEMON_READY_TIMEOUT};
use crate::util::{free_port, lab_tempdir, path_str, wait_until};

/// How long a cluster may take to elect a leader and admit all members.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// Private key, certificate and CA certificate for an SSL endpoint (server or client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslConfig {
    /// PEM private key.
    pub private_key: PathBuf,
    /// PEM certificate matching `private_key`.
    pub certificate: PathBuf,
    /// PEM certificate of the CA the peer's certificate must be signed by.
    pub ca_cert: PathBuf,
}

impl SslConfig {
    /// The `--private-key=… --certificate=… --ca-cert=…` options understood by every OVS/OVN
    /// program (ovsdb-server, ovsdb-client, ovn-nbctl, ovn-controller, ...).
    pub fn args(&self) -> Vec<String> {
        vec![
            format!("--private-key={}", self.private_key.display()),
            format!("--certificate={}", self.certificate.display()),
            format!("--ca-cert={}", self.ca_cert.display()),
        ]
    }
}

/// Where an [`OvsdbServer`]'s database comes from.
#[derive(Debug, Clone)]
enum DbSource {
    Schema(PathBuf),
    Existing(PathBuf),
}

/// Options for starting an [`OvsdbServer`]; see [`OvsdbServer::builder`].
#[derive(Debug, Clone)]
pub struct OvsdbServerBuilder {
    source: DbSource,
    name: String,
    dir: Option<PathBuf>,
    tcp: bool,
    ssl: Option<SslConfig>,
    netns: Option<String>,
    extra_args: Vec<String>,
}

impl OvsdbServerBuilder {
    /// File stem for the db, socket, log, pid and control files (default "db").
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Directory for the files (default: a fresh temporary directory owned by the server).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Also listen on TCP on 127.0.0.1, on a port the kernel chooses (`ptcp:0:127.0.0.1`; see
    /// [`OvsdbServer::tcp_port`]).
    pub fn tcp(mut self, on: bool) -> Self {
        self.tcp = on;
        self
    }

    /// Also listen with SSL on 127.0.0.1, on a port the kernel chooses (`pssl:0:127.0.0.1`; see
    /// [`OvsdbServer::ssl_port`]), with these files.
    pub fn ssl(mut self, ssl: SslConfig) -> Self {
        self.ssl = Some(ssl);
        self
    }

    /// Runs the server inside a network namespace (by name).
    pub fn netns(mut self, netns: &str) -> Self {
        self.netns = Some(netns.to_string());
        self
    }

    /// Extra ovsdb-server command-line arguments (before the database file).
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_string());
        self
    }

    /// Creates the database if needed and starts the server; returns once its sockets accept
    /// connections.
    pub fn start(self) -> Result<OvsdbServer> {
        let (tmp, dir) = match &self.dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = lab_tempdir(&self.name)?;
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        crate::util::mkdir(&dir)?;
        let db_path = match &self.source {
            DbSource::Schema(schema) => {
                let db = dir.join(format!("{}.db", self.name));
                run(Command::new("ovsdb-tool")
                    .arg("create")
                    .arg(&db)
                    .arg(schema))?;
                db
            }
            DbSource::Existing(db) => db.clone(),
        };
        let db_name = run(Command::new("ovsdb-tool").arg("db-name").arg(&db_path))?;
        // The kernel picks the ports (no race with other processes between choosing a port and
        // binding it); they are read from the log. Its lines do not say which remote a port
        // belongs to, so at most one port-0 remote is on the command line and an SSL remote next
        // to a TCP one is added once the TCP port is known.
        let kinds: Vec<&str> = [
            self.tcp.then_some("ptcp"),
            self.ssl.as_ref().map(|_| "pssl"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut spec = server_spec(
            &format!("ovsdb-server {}", self.name),
            &dir,
            &self.name,
            &db_path,
            &kinds
                .first()
                .map(|k| passive(k, 0))
                .into_iter()
                .collect::<Vec<_>>(),
            self.ssl.as_ref(),
        );
        spec.netns = self.netns.clone();
        let db_arg = spec.args.pop().unwrap_or_default();
        spec.args.extend(self.extra_args.iter().cloned());
        spec.args.push(db_arg);
        let mut daemon = Daemon::start(spec)?;
        let ctl = dir.join(format!("{}.ctl", self.name));
        let mut ports = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let from = if i == 0 {
                daemon.launch_log_start()
            } else {
                let from = daemon.log_len();
                run(Command::new("ovs-appctl")
                    .arg("-t")
                    .arg(&ctl)
                    .args(["ovsdb-server/add-remote", &passive(kind, 0)]))?;
                from
            };
            ports.push(bound_port(&mut daemon, from)?);
        }
        pin_ports(&mut daemon, &kinds, &ports)?;
        let port_of = |kind: &str| kinds.iter().position(|k| *k == kind).map(|i| ports[i]);
        let (tcp_port, ssl_port) = (port_of("ptcp"), port_of("pssl"));
        Ok(OvsdbServer {
            daemon,
            sock: dir.join(format!("{}.sock", self.name)),
            ctl,
            dir,
            db_path,
            db_name,
            tcp_port,
            ssl_port,
            ssl: self.ssl,
            _tmp: tmp,
        })
    }
}

/// The passive remote `<kind>:<port>:127.0.0.1` (`kind` is "ptcp" or "pssl"; port 0 lets the
/// kernel choose).
fn passive(kind: &str, port: u16) -> String {
    format!("{kind}:{port}:127.0.0.1")
}

/// The port in an ovsdb-server log line about a listening socket whose port the kernel chose,
/// e.g. `2024-01-01T00:00:00.000Z|00002|socket_util|INFO|0:127.0.0.1: listening on port 34567`
/// for `--remote=ptcp:0:127.0.0.1` or `pssl:0:127.0.0.1` (the remote's kind is not part of it).
/// OVS's own test suite parses the same line (PARSE_LISTENING_PORT).
fn listening_port(line: &str) -> Option<u16> {
    let (_, port) = line.split_once("|0:127.0.0.1: listening on port ")?;
    port.trim().parse().ok()
}

/// Waits until ovsdb-server logs, from byte `from` of its log on, the port it bound for a
/// port-0 remote.
fn bound_port(daemon: &mut Daemon, from: u64) -> Result<u16> {
    daemon.wait_log(
        from,
        "\"0:127.0.0.1: listening on port <port>\"",
        DAEMON_READY_TIMEOUT,
        listening_port,
    )
}

/// After a start with port-0 remotes: puts the ports the server got (`ports[i]` for
/// `kinds[i]`) into its command line, so that restarts come back on the same ports, makes them
/// readiness conditions and checks that the server listens on them.
fn pin_ports(daemon: &mut Daemon, kinds: &[&str], ports: &[u16]) -> Result<()> {
    let spec = daemon.spec_mut();
    for (kind, port) in kinds.iter().zip(ports) {
        let arg = format!("--remote={}", passive(kind, *port));
        let port0 = format!("--remote={}", passive(kind, 0));
        match spec.args.iter_mut().find(|a| **a == port0) {
            Some(a) => *a = arg,
            // Added at run time: insert before the database file, the last argument.
            None => {
                let at = spec.args.len().saturating_sub(1);
                spec.args.insert(at, arg);
            }
        }
    }
    spec.ready_ports = ports.to_vec();
    daemon.wait_ready(DAEMON_READY_TIMEOUT)
}

/// The ovsdb-server command line shared by standalone servers and cluster members: pidfile, log
/// file, control socket and `punix:` remote under `dir`, named after `stem`. The database file is
/// the last argument.
fn server_spec(
    label: &str,
    dir: &Path,
    stem: &str,
    db: &Path,
    remotes: &[String],
    ssl: Option<&SslConfig>,
) -> DaemonSpec {
    let sock = dir.join(format!("{stem}.sock"));
    let ctl = dir.join(format!("{stem}.ctl"));
    let mut spec = DaemonSpec::new(label, "ovsdb-server", dir, stem).args([
        "--no-chdir".to_string(),
        format!("--pidfile={}", dir.join(format!("{stem}.pid")).display()),
        format!("--log-file={}", dir.join(format!("{stem}.log")).display()),
        format!("--unixctl={}", ctl.display()),
        format!("--remote=punix:{}", sock.display()),
    ]);
    spec.args
        .extend(remotes.iter().map(|r| format!("--remote={r}")));
    if let Some(ssl) = ssl {
        spec.args.extend(ssl.args());
    }
    spec.args.push(path_str(db));
    spec.ready_paths = vec![sock, ctl];
    spec
}

/// A running standalone `ovsdb-server` with a `punix:` remote and optional `ptcp:`/`pssl:`
/// remotes on 127.0.0.1; killed on drop.
#[derive(Debug)]
pub struct OvsdbServer {
    daemon: Daemon,
    dir: PathBuf,
    db_path: PathBuf,
    db_name: String,
    sock: PathBuf,
    ctl: PathBuf,
    tcp_port: Option<u16>,
    ssl_port: Option<u16>,
    ssl: Option<SslConfig>,
    _tmp: Option<TempDir>,
}

impl OvsdbServer {
    /// Options for a server whose database is created from `schema`.
    pub fn builder(schema: impl AsRef<Path>) -> OvsdbServerBuilder {
        OvsdbServerBuilder {
            source: DbSource::Schema(schema.as_ref().to_path_buf()),
            name: "db".into(),
            dir: None,
            tcp: false,
            ssl: None,
            netns: None,
            extra_args: Vec::new(),
        }
    }

    /// Options for a server on an existing database file (used in place).
    pub fn with_db(db_file: impl AsRef<Path>) -> OvsdbServerBuilder {
        let mut b = Self::builder("");
        b.source = DbSource::Existing(db_file.as_ref().to_path_buf());
        b
    }

    /// Starts a server for `schema` with only the `punix:` remote, in its own temp dir.
    pub fn start(schema: impl AsRef<Path>) -> Result<OvsdbServer> {
        Self::builder(schema).start()
    }

    /// `unix:<path>` of the server's socket.
    pub fn unix_remote(&self) -> String {
        format!("unix:{}", self.sock.display())
    }

    /// `tcp:127.0.0.1:<port>` if the server listens on TCP.
    pub fn tcp_remote(&self) -> Option<String> {
        self.tcp_port.map(|p| format!("tcp:127.0.0.1:{p}"))
    }

    /// `ssl:127.0.0.1:<port>` if the server listens with SSL.
    pub fn ssl_remote(&self) -> Option<String> {
        self.ssl_port.map(|p| format!("ssl:127.0.0.1:{p}"))
    }

    /// The TCP port, if any.
    pub fn tcp_port(&self) -> Option<u16> {
        self.tcp_port
    }

    /// The SSL port, if any.
    pub fn ssl_port(&self) -> Option<u16> {
        self.ssl_port
    }

    /// The server-side SSL files, if SSL is enabled.
    pub fn ssl_config(&self) -> Option<&SslConfig> {
        self.ssl.as_ref()
    }

    /// Name of the database (from its schema), e.g. "OVN_Northbound".
    pub fn db_name(&self) -> &str {
        &self.db_name
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// Directory with the server's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the unixctl socket (for `ovs-appctl -t`).
    pub fn ctl_path(&self) -> &Path {
        &self.ctl
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        self.daemon.log_path()
    }

    /// Process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.daemon.is_running()
    }

    /// Kills the server with SIGKILL (no cleanup, like a crash).
    pub fn kill(&mut self) {
        self.daemon.kill();
    }

    /// Stops the server gracefully (SIGTERM).
    pub fn stop(&mut self) {
        self.daemon.terminate();
    }

    /// Starts the server again on the same database file with the same remotes and ports
    /// (stopping it first if it runs). If a port was taken by another process in the meantime,
    /// this fails with a [`LabError::Io`] naming the port (kind `AddrInUse`) and the server is
    /// left stopped.
    pub fn restart(&mut self) -> Result<()> {
        self.daemon.launch()
    }

    /// Runs `ovs-appctl -t <ctl> ARGS...` against the server.
    pub fn appctl(&self, args: &[&str]) -> Result<String> {
        run(Command::new("ovs-appctl")
            .arg("-t")
            .arg(&self.ctl)
            .args(args))
    }

    /// Runs `ovsdb-client --timeout=20 ARGS...` (the arguments name the remote, e.g.
    /// `["list-dbs", &server.unix_remote()]`).
    pub fn client(&self, args: &[&str]) -> Result<String> {
        run(Command::new("ovsdb-client").arg("--timeout=20").args(args))
    }

    /// Returns an error quoting the server's log if it is not running.
    pub fn check_alive(&mut self) -> Result<()> {
        self.daemon.check_alive()
    }

    pub(crate) fn daemon(&self) -> &Daemon {
        &self.daemon
    }
}

/// Options for an [`OvsdbCluster`]; see [`OvsdbCluster::builder`].
#[derive(Debug, Clone)]
pub struct OvsdbClusterBuilder {
    schema: PathBuf,
    members: usize,
    name: String,
    dir: Option<PathBuf>,
    election_timer_ms: Option<u32>,
}

impl OvsdbClusterBuilder {
    /// Number of members (default 3).
    pub fn members(mut self, n: usize) -> Self {
        self.members = n;
        self
    }

    /// File stem of the members' files: `<name><i>.db` etc. (default "db").
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Directory for the files (default: a fresh temporary directory owned by the cluster).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Raft election timer in milliseconds (default: ovsdb's 1000).
    pub fn election_timer_ms(mut self, ms: u32) -> Self {
        self.election_timer_ms = Some(ms);
        self
    }

    /// Creates the cluster database files, starts every member and waits until all of them are
    /// cluster members and one is leader.
    pub fn start(self) -> Result<OvsdbCluster> {
        if self.members == 0 {
            return Err(LabError::Invalid(
                "a cluster needs at least one member".into(),
            ));
        }
        let (tmp, dir) = match &self.dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = lab_tempdir(&self.name)?;
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        crate::util::mkdir(&dir)?;
        let db_name = run(Command::new("ovsdb-tool")
            .arg("schema-name")
            .arg(&self.schema))?;
        // Raft addresses must be known before the databases are created, so these ports cannot
        // be left to the kernel; free_port reserves them against other processes.
        let mut raft = Vec::new();
        for _ in 0..self.members {
            raft.push(format!("tcp:127.0.0.1:{}", free_port()?));
        }
        let mut members = Vec::new();
        for (i, local) in raft.iter().enumerate() {
            let stem = format!("{}{i}", self.name);
            let db = dir.join(format!("{stem}.db"));
            let mut tool = Command::new("ovsdb-tool");
            if i == 0 {
                if let Some(ms) = self.election_timer_ms {
                    tool.arg(format!("--election-timer={ms}"));
                }
                tool.arg("create-cluster")
                    .arg(&db)
                    .arg(&self.schema)
                    .arg(local);
            } else {
                tool.arg("join-cluster")
                    .arg(&db)
                    .arg(&db_name)
                    .arg(local)
                    .args(&raft[..i]);
            }
            run(&mut tool)?;
            // The client port is chosen by the kernel and read from the log, like a standalone
            // server's.
            let spec = server_spec(
                &format!("ovsdb-server {stem} (cluster member {i})"),
                &dir,
                &stem,
                &db,
                &[passive("ptcp", 0)],
                None,
            );
            let mut daemon = Daemon::start(spec)?;
            let from = daemon.launch_log_start();
            let client_port = bound_port(&mut daemon, from)?;
            pin_ports(&mut daemon, &["ptcp"], &[client_port])?;
            members.push(Member {
                ctl: dir.join(format!("{stem}.ctl")),
                sock: dir.join(format!("{stem}.sock")),
                client_port,
                daemon,
            });
        }
        let cluster = OvsdbCluster {
            members,
            dir,
            db_name,
            _tmp: tmp,
        };
        cluster.wait_until_formed(CLUSTER_TIMEOUT)?;
        Ok(cluster)
    }
}

#[derive(Debug)]
struct Member {
    daemon: Daemon,
    ctl: PathBuf,
    sock: PathBuf,
    client_port: u16,
}

/// A raft-clustered database served by N `ovsdb-server`s with raft and client remotes on
/// distinct 127.0.0.1 ports; every member is killed on drop.
#[derive(Debug)]
pub struct OvsdbCluster {
    members: Vec<Member>,
    dir: PathBuf,
    db_name: String,
    _tmp: Option<TempDir>,
}

impl OvsdbCluster {
    /// Options for a cluster of `schema`'s database.
    pub fn builder(schema: impl AsRef<Path>) -> OvsdbClusterBuilder {
        OvsdbClusterBuilder {
            schema: schema.as_ref().to_path_buf(),
            members: 3,
            name: "db".into(),
            dir: None,
            election_timer_ms: None,
        }
    }

    /// Starts an `n`-member cluster of `schema` in its own temporary directory.
    pub fn start(schema: impl AsRef<Path>, n: usize) -> Result<OvsdbCluster> {
        Self::builder(schema).members(n).start()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a cluster has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Name of the clustered database, e.g. "OVN_Southbound".
    pub fn db_name(&self) -> &str {
        &self.db_name
    }

    /// Directory with the members' files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Client remotes of all members: `tcp:127.0.0.1:P1,tcp:127.0.0.1:P2,...`.
    pub fn remote(&self) -> String {
        (0..self.members.len())
            .map(|i| self.member_remote(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `unix:` sockets of all members, comma-separated. Unlike the `tcp:127.0.0.1` remotes these
    /// also work from inside other network namespaces (which have their own loopback).
    pub fn unix_remote(&self) -> String {
        (0..self.members.len())
            .map(|i| self.member_unix_remote(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `tcp:127.0.0.1:P` of member `i`.
    pub fn member_remote(&self, i: usize) -> String {
        format!("tcp:127.0.0.1:{}", self.members[i].client_port)
    }

    /// `unix:<path>` of member `i`.
    pub fn member_unix_remote(&self, i: usize) -> String {
        format!("unix:{}", self.members[i].sock.display())
    }

    /// Process id of member `i` while it runs.
    pub fn member_pid(&self, i: usize) -> Option<u32> {
        self.members[i].daemon.pid()
    }

    /// Log file of member `i`.
    pub fn member_log_path(&self, i: usize) -> &Path {
        self.members[i].daemon.log_path()
    }

    /// Whether member `i` is running.
    pub fn is_member_running(&mut self, i: usize) -> bool {
        self.member_mut(i)
            .map(|m| m.daemon.is_running())
            .unwrap_or(false)
    }

    fn member_mut(&mut self, i: usize) -> Result<&mut Member> {
        let n = self.members.len();
        self.members
            .get_mut(i)
            .ok_or_else(|| LabError::Invalid(format!("cluster member {i} out of range 0..{n}")))
    }

    /// Output of `ovs-appctl -t <ctl> cluster/status <db>` for member `i`.
    pub fn cluster_status(&self, i: usize) -> Result<String> {
        let m = self.members.get(i).ok_or_else(|| {
            LabError::Invalid(format!(
                "cluster member {i} out of range 0..{}",
                self.members.len()
            ))
        })?;
        run(Command::new("ovs-appctl")
            .arg("-t")
            .arg(&m.ctl)
            .args(["cluster/status", &self.db_name]))
    }

    /// Index of the member that currently reports `Role: leader`.
    pub fn leader(&self) -> Result<usize> {
        let mut seen = Vec::new();
        for i in 0..self.members.len() {
            if self.members[i].daemon.pid().is_none() {
                seen.push(format!("{i}: down"));
                continue;
            }
            match self.cluster_status(i) {
                Ok(s) if has_line(&s, "Role: leader") => return Ok(i),
                Ok(s) => seen.push(format!(
                    "{i}: {}",
                    s.lines()
                        .find(|l| l.starts_with("Role:"))
                        .unwrap_or("no role")
                )),
                Err(e) => seen.push(format!("{i}: {e}")),
            }
        }
        Err(LabError::Invalid(format!(
            "cluster {} has no leader ({})",
            self.db_name,
            seen.join("; ")
        )))
    }

    /// Polls until some running member is leader; returns its index.
    pub fn wait_for_leader(&self, timeout: Duration) -> Result<usize> {
        wait_until(
            &format!("a leader in cluster {}", self.db_name),
            timeout,
            |_| self.leader().map(Some),
        )
    }

    fn wait_until_formed(&self, timeout: Duration) -> Result<()> {
        wait_until(
            &format!(
                "all {} members of cluster {} to join",
                self.members.len(),
                self.db_name
            ),
            timeout,
            |last| {
                for i in 0..self.members.len() {
                    let s = self.cluster_status(i)?;
                    if !has_line(&s, "Status: cluster member") {
                        *last = format!("member {i}: {s}");
                        return Ok(None);
                    }
                }
                Ok(Some(()))
            },
        )?;
        self.wait_for_leader(timeout)?;
        Ok(())
    }

    /// Kills member `i` with SIGKILL.
    pub fn kill_member(&mut self, i: usize) -> Result<()> {
        self.member_mut(i)?.daemon.kill();
        Ok(())
    }

    /// Stops member `i` gracefully (SIGTERM).
    pub fn stop_member(&mut self, i: usize) -> Result<()> {
        self.member_mut(i)?.daemon.terminate();
        Ok(())
    }

    /// Starts member `i` again from its database file, on the same ports. If its client port
    /// was taken by another process in the meantime, this fails with a [`LabError::Io`] naming
    /// the port (kind `AddrInUse`) and the member is left stopped.
    pub fn restart_member(&mut self, i: usize) -> Result<()> {
        self.member_mut(i)?.daemon.launch()
    }

    /// Runs `ovs-appctl -t <ctl of member i> ARGS...`.
    pub fn member_appctl(&self, i: usize, args: &[&str]) -> Result<String> {
        let m = self
            .members
            .get(i)
            .ok_or_else(|| LabError::Invalid(format!("cluster member {i} out of range")))?;
        run(Command::new("ovs-appctl").arg("-t").arg(&m.ctl).args(args))
    }

    pub(crate) fn daemons(&self) -> impl Iterator<Item = &Daemon> {
        self.members.iter().map(|m| &m.daemon)
    }
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim() == line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_port_line() {
        assert_eq!(
            listening_port(
                "2026-01-01T00:00:00.000Z|00002|socket_util|INFO|0:127.0.0.1: listening on port \
                 35627"
            ),
            Some(35627)
        );
        assert_eq!(
            listening_port("2026-01-01T00:00:00.000Z|00003|ovsdb_server|INFO|ovsdb-server 3.1.0"),
            None
        );
        // A remote with a fixed port does not log the line; another address is not ours.
        assert_eq!(
            listening_port("...|socket_util|INFO|0:10.0.0.1: listening on port 1234"),
            None
        );
    }
}
