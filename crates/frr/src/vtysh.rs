//! Running `vtysh` against one FRR instance.

use std::io::Read as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{FrrError, Result};
use crate::intent::{render, unrender, FrrIntent};
use crate::running::{missing_lines, RunningConfig};

/// Where Debian's FRR puts its vty sockets (and pid files).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/frr";

/// How long one `vtysh` invocation may take before it is killed.
pub const VTYSH_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`Vtysh::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The block was already in place: nothing was sent to FRR.
    Unchanged,
    /// The block was (re)installed; these differences were fixed (see [`missing_lines`]).
    Changed(Vec<String>),
}

/// `vtysh` for the FRR whose vty sockets are in `socket_dir` (`vtysh --vty_socket DIR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vtysh {
    /// Directory of FRR's vty sockets (`zebra.vty`, `bgpd.vty`); the agent's `--vty_socket`.
    pub socket_dir: PathBuf,
    /// The `vtysh` program.
    pub binary: PathBuf,
    /// Timeout of one invocation.
    pub timeout: Duration,
}

impl Default for Vtysh {
    fn default() -> Self {
        Vtysh::new(DEFAULT_SOCKET_DIR)
    }
}

impl Vtysh {
    /// `vtysh` (from `PATH`) for the sockets in `socket_dir`, with [`VTYSH_TIMEOUT`].
    pub fn new(socket_dir: impl Into<PathBuf>) -> Vtysh {
        Vtysh {
            socket_dir: socket_dir.into(),
            binary: PathBuf::from("vtysh"),
            timeout: VTYSH_TIMEOUT,
        }
    }

    /// The socket directory.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// Runs `vtysh --vty_socket DIR -c CMD1 -c CMD2 ...` and returns its standard output. A
    /// non-zero exit, or (for configuration batches, which print nothing on success) a `%` line
    /// such as `% Unknown command: ...`, is an error naming the command line and FRR's output.
    pub fn run<S: AsRef<str>>(&self, cmds: &[S]) -> Result<String> {
        let mut c = Command::new(&self.binary);
        c.arg("--vty_socket").arg(&self.socket_dir);
        for cmd in cmds {
            c.arg("-c").arg(cmd.as_ref());
        }
        let command = describe(&self.binary, &self.socket_dir, cmds);
        tracing::debug!(%command, "vtysh");
        let (ok, status, stdout, stderr) = run_with_timeout(c, &command, self.timeout)?;
        let configuring = cmds
            .first()
            .is_some_and(|c| c.as_ref() == "configure terminal");
        let complaint = configuring
            && stdout
                .lines()
                .chain(stderr.lines())
                .any(|l| l.trim_start().starts_with('%'));
        if !ok || complaint {
            let output = [stdout.trim(), stderr.trim()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("\n");
            return Err(FrrError::Command {
                command,
                status,
                output,
            });
        }
        Ok(stdout)
    }

    /// `show running-config`, as text.
    pub fn running_config_text(&self) -> Result<String> {
        self.run(&["show running-config"])
    }

    /// `show running-config`, parsed.
    pub fn running_config(&self) -> Result<RunningConfig> {
        Ok(RunningConfig::parse(&self.running_config_text()?))
    }

    /// Runs a `show ... json` command and parses its output (empty output reads as `{}`).
    pub fn show_json(&self, cmd: &str) -> Result<serde_json::Value> {
        let out = self.run(&[cmd])?;
        if out.trim().is_empty() {
            return Ok(serde_json::Value::Object(Default::default()));
        }
        serde_json::from_str(&out).map_err(|e| FrrError::Parse {
            command: describe(&self.binary, &self.socket_dir, &[cmd]),
            detail: format!("{e}: {}", truncate(&out)),
        })
    }

    /// `show bgp summary json` (the default instance: peers, their states, the router id); `{}`
    /// when bgpd has no instance or no peer.
    pub fn bgp_summary(&self) -> Result<serde_json::Value> {
        self.show_json("show bgp summary json")
    }

    /// The router id of the default BGP instance: from `show bgp summary json` (any address
    /// family's `routerId`), else the `bgp router-id` line of `router bgp ASN` in the running
    /// configuration; `None` when FRR shows neither (no peers and no configured id).
    pub fn router_id(&self) -> Result<Option<Ipv4Addr>> {
        let summary = self.bgp_summary()?;
        let from_summary = summary
            .get("routerId")
            .into_iter()
            .chain(summary.as_object().into_iter().flat_map(|o| o.values()))
            .filter_map(|v| v.get("routerId").or(Some(v)).and_then(|v| v.as_str()))
            .find_map(|s| s.parse::<Ipv4Addr>().ok());
        if from_summary.is_some() {
            return Ok(from_summary);
        }
        let text = self.running_config_text()?;
        let header = text
            .lines()
            .find(|l| l.starts_with("router bgp ") && !l.contains(" vrf "));
        Ok(header
            .and_then(|h| RunningConfig::parse(&text).router_id(h))
            .and_then(|s| s.parse().ok()))
    }

    /// What the default instance `router bgp ASN` lacks of the settings that make an FRR restart
    /// hitless ([`RunningConfig::hitless_restart_gaps`]; the operator's to add, never ovn-route's).
    pub fn hitless_restart_gaps(&self, asn: u32) -> Result<Vec<String>> {
        Ok(self.running_config()?.hitless_restart_gaps(asn))
    }

    /// Installs ovn-route's block for `intent` (see [`render`]), idempotently: reads the running
    /// configuration first and sends nothing when the block is already in place. A VRF intent
    /// without a router id takes the default instance's ([`Vtysh::router_id`]). Checks the result
    /// and fails, naming the lines, if FRR did not take them.
    pub fn apply(&self, intent: &FrrIntent) -> Result<ApplyOutcome> {
        intent.validate()?;
        let mut intent = intent.clone();
        if intent.vrf.is_some() && intent.router_id.is_none() {
            intent.router_id = self.router_id()?;
        }
        let missing = missing_lines(&intent, &self.running_config()?);
        if missing.is_empty() {
            return Ok(ApplyOutcome::Unchanged);
        }
        tracing::info!(?missing, "applying ovn-route's FRR block");
        self.run(&render(&intent))?;
        let still = missing_lines(&intent, &self.running_config()?);
        if !still.is_empty() {
            return Err(FrrError::Parse {
                command: describe(&self.binary, &self.socket_dir, &render(&intent)),
                detail: format!(
                    "FRR accepted the commands but its running configuration still differs: {}",
                    still.join("; ")
                ),
            });
        }
        Ok(ApplyOutcome::Changed(missing))
    }

    /// Whether a daemon's vty socket (`zebra.vty`, `bgpd.vty`) is in the socket directory: a
    /// cheap test that FRR may answer, made before spawning `vtysh` at all.
    pub fn sockets_present(&self) -> bool {
        ["zebra.vty", "bgpd.vty"]
            .iter()
            .any(|s| self.socket_dir.join(s).exists())
    }

    /// [`Vtysh::apply`], retried until it succeeds or `timeout` passes (for use right after FRR
    /// (re)started, while its daemons come up); returns the last error. Retries start at 100 ms
    /// and double up to 1 s, and no `vtysh` is spawned while no daemon socket exists: with FRR
    /// stopped, the wait costs no CPU (spawning `vtysh` ten times a second took a third of
    /// the agent's CPU time while it started).
    pub fn apply_when_ready(&self, intent: &FrrIntent, timeout: Duration) -> Result<ApplyOutcome> {
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(100);
        loop {
            let r = if self.sockets_present() || Instant::now() >= deadline {
                self.apply(intent)
            } else {
                Err(FrrError::NotRunning(self.socket_dir.clone()))
            };
            match r {
                Ok(o) => return Ok(o),
                Err(e @ FrrError::InvalidIntent(_)) => return Err(e),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(e) => {
                    tracing::debug!("FRR not ready yet: {e}");
                    let left = deadline.saturating_duration_since(Instant::now());
                    thread::sleep(delay.min(left));
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Removes ovn-route's block (see [`unrender`]); idempotent.
    pub fn remove(&self, intent: &FrrIntent) -> Result<()> {
        self.run(&unrender(intent)).map(|_| ())
    }
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn describe<S: AsRef<str>>(binary: &Path, dir: &Path, cmds: &[S]) -> String {
    let mut s = format!(
        "{} --vty_socket {}",
        quote(&binary.to_string_lossy()),
        quote(&dir.to_string_lossy())
    );
    for c in cmds {
        s.push_str(" -c ");
        s.push_str(&quote(c.as_ref()));
    }
    s
}

fn truncate(s: &str) -> String {
    const MAX: usize = 2000;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

/// Runs `c`, returns (success, status text, stdout, stderr); kills it after `timeout`.
fn run_with_timeout(
    mut c: Command,
    command: &str,
    timeout: Duration,
) -> Result<(bool, String, String, String)> {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|source| FrrError::Spawn {
        command: command.to_string(),
        source,
    })?;
    let pipe = |r: Option<Box<dyn std::io::Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = pipe(child.stdout.take().map(|p| Box::new(p) as _));
    let err = pipe(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FrrError::Timeout {
                    command: command.to_string(),
                    timeout_ms: timeout.as_millis(),
                });
            }
            Ok(None) => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(source) => {
                return Err(FrrError::Spawn {
                    command: command.to_string(),
                    source,
                })
            }
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok((status.success(), status.to_string(), stdout, stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_commands_for_errors() {
        let d = describe(
            Path::new("vtysh"),
            Path::new("/run/frr"),
            &["configure terminal", "router bgp 1"],
        );
        assert_eq!(
            d,
            "vtysh --vty_socket /run/frr -c 'configure terminal' -c 'router bgp 1'"
        );
    }

    /// With no daemon socket, the wait spawns no `vtysh` until its deadline (once, for the
    /// error it reports).
    #[test]
    fn no_vtysh_while_no_daemon_socket_exists() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ovnr-vtysh-wait-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let calls = dir.join("calls");
        let script = dir.join("vtysh");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho x >> {}\nexit 1\n", calls.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut v = Vtysh::new(&dir);
        v.binary = script;
        assert!(!v.sockets_present());
        let intent = FrrIntent {
            asn: 64999,
            router_id: Some(std::net::Ipv4Addr::new(192, 0, 2, 1)),
            vrf: None,
            table_id: 10,
            families: crate::intent::AddressFamilies::IPV4,
            mode: crate::intent::ExposeMode::RoutesKernel,
        };
        let e = v
            .apply_when_ready(&intent, Duration::from_millis(700))
            .unwrap_err();
        let n = std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .count();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(matches!(e, FrrError::Command { .. }), "{e}");
        assert_eq!(n, 1, "vtysh runs once, at the deadline");
    }

    #[test]
    fn missing_binary_is_a_spawn_error() {
        let mut v = Vtysh::new("/nonexistent");
        v.binary = "/nonexistent/vtysh".into();
        let e = v.run(&["show version"]).unwrap_err();
        assert!(matches!(e, FrrError::Spawn { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/vtysh"), "{e}");
    }
}
