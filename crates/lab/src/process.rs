//! Running commands with a timeout, and supervising long-running daemons.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::util::tail_file;

/// How long a one-shot command (ovn-nbctl, ovs-vsctl, ip, vtysh, ...) may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a daemon may take to create its sockets (generous: in the kernel-tier VM, under
/// load, zebra once took over 20 s).
pub(crate) const DAEMON_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Renders a command line for error messages, quoting arguments that need it.
pub fn describe(cmd: &Command) -> String {
    let mut out = quote(cmd.get_program());
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&quote(arg));
    }
    out
}

fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%^[]{}".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` with [`COMMAND_TIMEOUT`] and returns its standard output with trailing whitespace
/// removed; a non-zero exit becomes [`LabError::Command`].
pub fn run(cmd: &mut Command) -> Result<String> {
    run_with_timeout(cmd, COMMAND_TIMEOUT)
}

/// Like [`run`] with an explicit timeout; a command still running after `timeout` is killed and
/// reported as [`LabError::CommandTimeout`].
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<String> {
    let command = describe(cmd);
    tracing::debug!(%command, "running");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("OVN_NB_DAEMON")
        .env_remove("OVN_SB_DAEMON");
    let mut child = cmd.spawn().map_err(|source| LabError::Spawn {
        command: command.clone(),
        source,
    })?;
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(timeout) {
        Ok(status) => status.map_err(|source| LabError::Spawn {
            command: command.clone(),
            source,
        })?,
        Err(_) => {
            signal(pid, libc::SIGKILL);
            let _ = rx.recv_timeout(Duration::from_secs(5));
            let stderr = stderr
                .recv_timeout(Duration::from_millis(200))
                .unwrap_or_default();
            return Err(LabError::CommandTimeout {
                command,
                timeout,
                stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
            });
        }
    };
    // A grandchild that inherited the pipes could keep them open; do not wait forever for EOF.
    let out = stdout
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    let err = stderr
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    let out = String::from_utf8_lossy(&out).trim_end().to_string();
    if status.success() {
        Ok(out)
    } else {
        Err(LabError::Command {
            command,
            status: status.to_string(),
            stdout: out,
            stderr: String::from_utf8_lossy(&err).trim().to_string(),
        })
    }
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

/// TCP ports on which process `pid` itself holds a socket in LISTEN state (read from
/// `/proc/<pid>/net/tcp{,6}` of its network namespace, keeping only the sockets whose inode is
/// one of its open file descriptors, so a port taken by another process does not count).
fn listening_ports(pid: u32) -> Vec<u16> {
    let mut inodes = HashSet::new();
    if let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            if let Ok(target) = fs::read_link(fd.path()) {
                let target = target.to_string_lossy();
                if let Some(inode) = target
                    .strip_prefix("socket:[")
                    .and_then(|t| t.strip_suffix(']'))
                {
                    inodes.insert(inode.to_string());
                }
            }
        }
    }
    let mut ports = Vec::new();
    for file in ["tcp", "tcp6"] {
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/net/{file}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() > 9 && fields[3] == "0A" && inodes.contains(fields[9]) {
                if let Some((_, port)) = fields[1].rsplit_once(':') {
                    if let Ok(p) = u16::from_str_radix(port, 16) {
                        ports.push(p);
                    }
                }
            }
        }
    }
    ports
}

/// If `log` (what a daemon logged since its start) reports that listening on one of `ports`
/// failed (ovsdb-server: `ptcp:34567:127.0.0.1: listen failed: Address already in use`), returns
/// that port and the log line.
fn listen_failure<'a>(log: &'a str, ports: &[u16]) -> Option<(u16, &'a str)> {
    log.lines().find_map(|line| {
        let (head, _) = line.split_once(": listen failed")?;
        // head is "<timestamp>|<seq>|<module>|ERR|ptcp:<port>:<host>".
        let remote = head.rsplit('|').next()?;
        let port = remote.split(':').nth(1)?.parse::<u16>().ok()?;
        ports.contains(&port).then_some((port, line))
    })
}

/// Sends `sig` to process `pid`, ignoring errors (the process may already be gone).
pub(crate) fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        if pid > 0 {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }
}

/// What to start and how to know that it is ready.
#[derive(Debug, Clone)]
pub(crate) struct DaemonSpec {
    /// Short label used in errors, e.g. "hv1/ovs-vswitchd".
    pub name: String,
    /// Program to run.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Network namespace to run it in (through `ip netns exec`).
    pub netns: Option<String>,
    /// The daemon's own log file (for error reports).
    pub log: PathBuf,
    /// Where its standard output and error go.
    pub output: PathBuf,
    /// Files (sockets) that exist once it is ready; removed before every start. The text
    /// `{pid}` in a path stands for the process id (for daemons without `--unixctl`).
    pub ready_paths: Vec<PathBuf>,
    /// TCP ports it listens on once it is ready (checked in its own network namespace through
    /// `/proc/<pid>/net/tcp`, without connecting; only its own sockets count). If its log
    /// reports that listening on one of them failed, starting fails at once.
    pub ready_ports: Vec<u16>,
}

impl DaemonSpec {
    /// A spec with no environment, namespace or readiness condition.
    pub fn new(name: impl Into<String>, program: &str, dir: &Path, stem: &str) -> Self {
        DaemonSpec {
            name: name.into(),
            program: program.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            netns: None,
            log: dir.join(format!("{stem}.log")),
            output: dir.join(format!("{stem}.out")),
            ready_paths: Vec::new(),
            ready_ports: Vec::new(),
        }
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    fn command(&self) -> Command {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, &self.program]);
                c
            }
            None => Command::new(&self.program),
        };
        cmd.args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }
}

/// A supervised daemon process running in the foreground as our child; killed on drop.
#[derive(Debug)]
pub(crate) struct Daemon {
    spec: DaemonSpec,
    child: Option<Child>,
    /// Length of the log file when the running instance was started: what it logged starts
    /// there (the log is appended to across restarts).
    log_start: u64,
}

impl Daemon {
    /// Starts the daemon and waits until it is ready.
    pub fn start(spec: DaemonSpec) -> Result<Daemon> {
        let mut d = Daemon {
            spec,
            child: None,
            log_start: 0,
        };
        d.launch()?;
        Ok(d)
    }

    /// (Re)starts the process (stopping any running instance first) and waits until it is ready.
    pub fn launch(&mut self) -> Result<()> {
        self.terminate();
        for p in self.ready_paths() {
            let _ = fs::remove_file(p);
        }
        let mut cmd = self.spec.command();
        let command = describe(&cmd);
        tracing::debug!(%command, "starting daemon");
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.output)
            .map_err(|e| LabError::io(format!("open {}", self.spec.output.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| LabError::io("dup output file", e))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        self.log_start = self.log_len();
        let child = cmd
            .spawn()
            .map_err(|source| LabError::Spawn { command, source })?;
        self.child = Some(child);
        self.wait_ready(DAEMON_READY_TIMEOUT)
    }

    /// The spec, for changing the command line or readiness conditions of later (re)starts.
    pub fn spec_mut(&mut self) -> &mut DaemonSpec {
        &mut self.spec
    }

    /// Length of the log file when the running instance was started (see [`Daemon::wait_log`]).
    pub fn launch_log_start(&self) -> u64 {
        self.log_start
    }

    /// Current length of the daemon's log file (0 if it does not exist yet).
    pub fn log_len(&self) -> u64 {
        fs::metadata(&self.spec.log).map(|m| m.len()).unwrap_or(0)
    }

    /// The complete lines the daemon's log file got from byte offset `from` on.
    fn log_lines_from(&self, from: u64) -> String {
        let read = || -> io::Result<String> {
            let mut f = fs::File::open(&self.spec.log)?;
            f.seek(SeekFrom::Start(from))?;
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)?;
            // A line still being written is left for the next look.
            let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            bytes.truncate(complete);
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        read().unwrap_or_default()
    }

    /// Polls the daemon's log from byte offset `from` (see [`Daemon::log_len`]) until `parse`
    /// returns `Some` for a complete line, or the daemon exits, or `timeout` passes; errors name
    /// `what` and the log file and quote its tail.
    pub fn wait_log<T>(
        &mut self,
        from: u64,
        what: &str,
        timeout: Duration,
        mut parse: impl FnMut(&str) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(v) = self.log_lines_from(from).lines().find_map(&mut parse) {
                return Ok(v);
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                return Err(LabError::WaitTimeout {
                    what: format!(
                        "daemon {} to log {what} in {}",
                        self.spec.name,
                        self.spec.log.display()
                    ),
                    timeout,
                    last: self.log_tail(),
                });
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Waits until the running instance is ready (see [`DaemonSpec`]'s `ready_paths` and
    /// `ready_ports`).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            self.check_alive()?;
            let paths_ok = self.ready_paths().iter().all(|p| p.exists());
            let ports_ok = paths_ok && {
                let listening = self.pid().map(listening_ports).unwrap_or_default();
                self.spec.ready_ports.iter().all(|p| listening.contains(p))
            };
            if paths_ok && ports_ok {
                return Ok(());
            }
            if !self.spec.ready_ports.is_empty() {
                let log = self.log_lines_from(self.log_start);
                if let Some((port, line)) = listen_failure(&log, &self.spec.ready_ports) {
                    let kind = if line.contains("Address already in use") {
                        io::ErrorKind::AddrInUse
                    } else {
                        io::ErrorKind::Other
                    };
                    let err = LabError::io(
                        format!(
                            "daemon {} could not listen on port {port} (taken by another process \
                             since the port was chosen?); log {}",
                            self.spec.name,
                            self.spec.log.display()
                        ),
                        io::Error::new(kind, line.trim().to_string()),
                    );
                    self.terminate();
                    return Err(err);
                }
            }
            if Instant::now() >= deadline {
                return Err(LabError::WaitTimeout {
                    what: format!(
                        "daemon {} to become ready (paths {:?}, ports {:?})",
                        self.spec.name, self.spec.ready_paths, self.spec.ready_ports
                    ),
                    timeout,
                    last: self.log_tail(),
                });
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// The readiness paths with `{pid}` replaced by the current process id.
    fn ready_paths(&self) -> Vec<PathBuf> {
        let pid = self.pid().map(|p| p.to_string()).unwrap_or_default();
        self.spec
            .ready_paths
            .iter()
            .map(|p| PathBuf::from(p.to_string_lossy().replace("{pid}", &pid)))
            .collect()
    }

    /// Returns an error naming the daemon and quoting its log if it is not running.
    pub fn check_alive(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            return Err(self.exited("not started / killed".into()));
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.child = None;
                Err(self.exited(status.to_string()))
            }
            Err(e) => Err(self.exited(format!("wait failed: {e}"))),
        }
    }

    fn exited(&self, status: String) -> LabError {
        LabError::DaemonExited {
            name: self.spec.name.clone(),
            command: describe(&self.spec.command()),
            status,
            log: self.spec.log.clone(),
            log_tail: self.log_tail(),
        }
    }

    fn log_tail(&self) -> String {
        let mut s = tail_file(&self.spec.log, 15);
        let out = tail_file(&self.spec.output, 10);
        if !out.is_empty() {
            s.push_str("\n[stdout/stderr]\n");
            s.push_str(&out);
        }
        s
    }

    /// Process id of the running instance.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The daemon's log file.
    pub fn log_path(&self) -> &Path {
        &self.spec.log
    }

    /// Sends SIGTERM without waiting (used to stop many daemons in parallel).
    pub fn send_term(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, libc::SIGTERM);
        }
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within a few seconds; reaps it.
    pub fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut pause = Duration::from_millis(1);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Writes a whole file (used for configuration files).
pub(crate) fn write_file(path: &Path, contents: &str) -> Result<()> {
    fs::write(path, contents).map_err(|e| LabError::io(format!("write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_listen_failures_of_given_ports() {
        let log = "\
2026-01-01T00:00:00.742Z|00002|socket_util|ERR|45081:127.0.0.1: bind: Address already in use
2026-01-01T00:00:00.742Z|00003|ovsdb_jsonrpc_server|ERR|pssl:47745:127.0.0.1: listen failed: \
Address already in use
2026-01-01T00:00:00.743Z|00005|ovsdb_jsonrpc_server|ERR|ptcp:45081:127.0.0.1: listen failed: \
Address already in use
";
        let (port, line) = listen_failure(log, &[45081]).unwrap();
        assert_eq!(port, 45081);
        assert!(
            line.contains("ptcp:45081:127.0.0.1: listen failed"),
            "{line}"
        );
        assert_eq!(listen_failure(log, &[47745]).map(|f| f.0), Some(47745));
        assert_eq!(listen_failure(log, &[1234]), None);
    }

    #[test]
    fn listening_ports_are_only_the_process_own() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(listening_ports(std::process::id()).contains(&port));
        // pid 1 shares the network namespace here but not the socket.
        assert!(!listening_ports(1).contains(&port));
    }
}
