//! Running `ovs-ofctl` against one Open vSwitch.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::dump::{parse_dump, DumpedFlow};
use crate::error::{Error, Result};
use crate::flow::Flow;

/// How long one `ovs-ofctl` invocation may take before it is killed.
pub const OFCTL_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run `ovs-ofctl`: the program, extra environment, OpenFlow versions, timeout, and how
/// each bridge is reached.
///
/// A bridge is reached by its name by default (`ovs-ofctl dump-flows br-ex`: `ovs-ofctl`
/// opens `<rundir>/br-ex.mgmt`, the rundir being `/run/openvswitch` or `$OVS_RUNDIR`, which
/// [`Ofctl::env`] can set), or through an explicit target per bridge ([`Ofctl::target`], e.g.
/// `unix:/run/openvswitch/br-ex.mgmt` or `tcp:127.0.0.1:6653`). Ports are always read and
/// given by OpenFlow port number: dumps use `--no-names` (see [`crate::normalize`] for why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ofctl {
    program: PathBuf,
    env: Vec<(String, String)>,
    protocols: Option<String>,
    timeout: Duration,
    targets: BTreeMap<String, String>,
}

impl Default for Ofctl {
    fn default() -> Self {
        Ofctl::new()
    }
}

impl Ofctl {
    /// `ovs-ofctl` from `PATH`, bridges by name, default OpenFlow versions, [`OFCTL_TIMEOUT`].
    pub fn new() -> Ofctl {
        Ofctl {
            program: PathBuf::from("ovs-ofctl"),
            env: Vec::new(),
            protocols: None,
            timeout: OFCTL_TIMEOUT,
            targets: BTreeMap::new(),
        }
    }

    /// Uses another `ovs-ofctl` binary.
    pub fn program(mut self, program: impl Into<PathBuf>) -> Ofctl {
        self.program = program.into();
        self
    }

    /// Sets an environment variable for every invocation (e.g. `OVS_RUNDIR`).
    pub fn env(mut self, key: &str, value: &str) -> Ofctl {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Sets several environment variables (see [`Ofctl::env`]).
    pub fn envs<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Ofctl {
        for (k, v) in vars {
            self = self.env(k.as_ref(), v.as_ref());
        }
        self
    }

    /// Passes `-O PROTOCOLS` (e.g. `OpenFlow13`, or `OpenFlow10,OpenFlow13`), for bridges whose
    /// `protocols` exclude `ovs-ofctl`'s default. Flows are then printed in that version's
    /// spelling; see [`crate::normalize`] for what is mapped back.
    pub fn protocols(mut self, protocols: &str) -> Ofctl {
        self.protocols = Some(protocols.to_string());
        self
    }

    /// Sets the timeout of one invocation.
    pub fn timeout(mut self, timeout: Duration) -> Ofctl {
        self.timeout = timeout;
        self
    }

    /// Reaches `bridge` through `target` (an `ovs-ofctl` switch argument such as
    /// `unix:/run/openvswitch/br-ex.mgmt`) instead of its name.
    pub fn target(mut self, bridge: &str, target: &str) -> Ofctl {
        self.targets.insert(bridge.to_string(), target.to_string());
        self
    }

    /// The switch argument for `bridge`: its explicit target, or its name.
    pub fn target_of(&self, bridge: &str) -> String {
        self.targets
            .get(bridge)
            .cloned()
            .unwrap_or_else(|| bridge.to_string())
    }

    /// Runs `ovs-ofctl [-O P] ARGS...`, feeding `input` on standard input, and returns its
    /// standard output; a non-zero exit is [`Error::Command`] with the command line and stderr.
    pub fn run(&self, args: &[&str], input: Option<&str>) -> Result<String> {
        let mut cmd = Command::new(&self.program);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(p) = &self.protocols {
            cmd.arg("-O").arg(p);
        }
        cmd.args(args);
        let command = self.describe(&cmd);
        tracing::debug!(%command, lines = input.map(|i| i.lines().count()), "ovs-ofctl");
        let (ok, status, stdout, stderr) = run_with_timeout(cmd, &command, input, self.timeout)?;
        if !ok {
            return Err(Error::Command {
                command,
                status,
                stderr: stderr.trim().to_string(),
                input: input.map(str::to_string),
            });
        }
        Ok(stdout)
    }

    /// The flows of `bridge` (`dump-flows --no-stats --no-names`), all of them or those
    /// `filter` selects (an `ovs-ofctl` flow filter, e.g. `cookie=0x3e7/-1`: a non-strict
    /// filter selects flows whose match is the same as or narrower than its).
    pub fn dump_flows(&self, bridge: &str, filter: Option<&str>) -> Result<Vec<DumpedFlow>> {
        let target = self.target_of(bridge);
        let mut args = vec!["--no-names", "--no-stats", "dump-flows", &target];
        if let Some(f) = filter {
            args.push(f);
        }
        let out = self.run(&args, None)?;
        parse_dump(&out).map_err(|source| Error::Parse {
            command: self.describe_args(&args),
            source,
        })
    }

    /// The flows of `bridge` whose cookie is exactly `cookie` (`cookie=C/-1`).
    pub fn dump_owned(&self, bridge: &str, cookie: u64) -> Result<Vec<Flow>> {
        let filter = format!("cookie={cookie:#x}/-1");
        Ok(self
            .dump_flows(bridge, Some(&filter))?
            .into_iter()
            .filter(|d| d.cookie == cookie)
            .map(|d| d.flow)
            .collect())
    }

    /// Adds (or, for a flow whose slot exists, replaces) `flows` marked with `cookie`, all in
    /// one `ovs-ofctl add-flows TARGET -`. `ovs-ofctl` reads every line before sending any, so
    /// a line it rejects (an unknown port) fails the whole batch.
    pub fn add_flows(&self, bridge: &str, cookie: u64, flows: &[Flow]) -> Result<()> {
        if flows.is_empty() {
            return Ok(());
        }
        let input = lines(flows.iter().map(|f| f.add_line(cookie)));
        let target = self.target_of(bridge);
        self.run(&["add-flows", &target, "-"], Some(&input))
            .map(drop)
    }

    /// Deletes the slots of `flows` only where the flow there has exactly `cookie`, in one
    /// `ovs-ofctl del-flows --strict TARGET -` (a missing flow is no error).
    pub fn del_flows_strict(&self, bridge: &str, cookie: u64, flows: &[Flow]) -> Result<()> {
        if flows.is_empty() {
            return Ok(());
        }
        let input = lines(flows.iter().map(|f| f.del_line(cookie)));
        let target = self.target_of(bridge);
        self.run(&["--strict", "del-flows", &target, "-"], Some(&input))
            .map(drop)
    }

    /// Deletes every flow of `bridge` whose cookie is exactly `cookie`, in every table.
    pub fn del_owned(&self, bridge: &str, cookie: u64) -> Result<()> {
        let target = self.target_of(bridge);
        let filter = format!("cookie={cookie:#x}/-1");
        self.run(&["del-flows", &target, &filter], None).map(drop)
    }

    /// The OpenFlow ports of `bridge` (`ovs-ofctl show`), the bridge's own (`LOCAL`) port
    /// included.
    pub fn ports(&self, bridge: &str) -> Result<Vec<OfPort>> {
        let target = self.target_of(bridge);
        let out = self.run(&["show", &target], None)?;
        Ok(parse_show_ports(&out))
    }

    /// The command line for error messages, environment overrides in front.
    fn describe(&self, cmd: &Command) -> String {
        let mut parts: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(OsStr::new(v))))
            .collect();
        parts.push(quote(cmd.get_program()));
        parts.extend(cmd.get_args().map(quote));
        parts.join(" ")
    }

    fn describe_args(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(&self.program);
        if let Some(p) = &self.protocols {
            cmd.arg("-O").arg(p);
        }
        cmd.args(args);
        self.describe(&cmd)
    }
}

/// Lines for `ovs-ofctl ... -`, each ending in a newline.
fn lines(lines: impl Iterator<Item = String>) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(&l);
        s.push('\n');
    }
    s
}

/// Longest port name OpenFlow carries (16 bytes with the terminating NUL); Open vSwitch shows
/// longer names cut to this length.
pub const OPENFLOW_PORT_NAME_MAX: usize = 15;

/// An OpenFlow port of a bridge, as `ovs-ofctl show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OfPort {
    /// Its OpenFlow port number (`Interface.ofport`); `None` for the bridge's `LOCAL` port.
    pub number: Option<u16>,
    /// Its name as OpenFlow carries it: at most [`OPENFLOW_PORT_NAME_MAX`] characters, so
    /// OVN's `patch-<localnet>-to-br-int` ports appear cut (and may share a name).
    pub name: String,
}

impl OfPort {
    /// True when `port` is this port's number, or its name (a name longer than OpenFlow's
    /// limit is compared on its first [`OPENFLOW_PORT_NAME_MAX`] bytes, as Open vSwitch cuts it).
    pub fn is(&self, port: &str) -> bool {
        if let Ok(n) = port.parse::<u16>() {
            return self.number == Some(n);
        }
        let cut = if port.len() > OPENFLOW_PORT_NAME_MAX
            && port.is_char_boundary(OPENFLOW_PORT_NAME_MAX)
        {
            &port[..OPENFLOW_PORT_NAME_MAX]
        } else {
            port
        };
        self.name == port || self.name == cut
    }
}

/// Ports from `ovs-ofctl show`: lines like ` 1(patch-provnet-1): addr:...` and
/// ` LOCAL(br-ex): addr:...`.
pub(crate) fn parse_show_ports(out: &str) -> Vec<OfPort> {
    out.lines()
        .filter(|l| l.starts_with(' '))
        .filter_map(|l| {
            let l = l.trim();
            let open = l.find('(')?;
            let number = match &l[..open] {
                "LOCAL" => None,
                n => Some(n.parse().ok()?),
            };
            let close = l.rfind("): addr:")?;
            (close > open).then(|| OfPort {
                number,
                name: l[open + 1..close].to_string(),
            })
        })
        .collect()
}

fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%^".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Output of a child's pipe, collected by a thread as it comes.
struct Collected {
    buf: Arc<Mutex<Vec<u8>>>,
    thread: thread::JoinHandle<()>,
}

impl Collected {
    /// What was read so far.
    fn snapshot(&self) -> String {
        let buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Everything, once the pipe is closed.
    fn finish(self) -> String {
        let Collected { buf, thread } = self;
        let _ = thread.join();
        let buf = buf.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// Starts collecting `r` in a thread.
fn pipe(r: Option<Box<dyn Read + Send>>) -> Collected {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buf);
    let thread = thread::spawn(move || {
        let Some(mut r) = r else { return };
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => sink
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&chunk[..n]),
            }
        }
    });
    Collected { buf, thread }
}

/// Runs `c` with `input` on its standard input; returns (success, status text, stdout,
/// stderr); kills it after `timeout`.
fn run_with_timeout(
    mut c: Command,
    command: &str,
    input: Option<&str>,
    timeout: Duration,
) -> Result<(bool, String, String, String)> {
    c.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|source| Error::Spawn {
        command: command.to_string(),
        source,
    })?;
    // Written from a thread: a large input must not block us while the child blocks writing
    // output we are not reading yet.
    let writer = match (child.stdin.take(), input) {
        (Some(mut stdin), Some(text)) => {
            let text = text.to_string();
            Some(thread::spawn(move || {
                let _ = stdin.write_all(text.as_bytes());
            }))
        }
        _ => None,
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
                // Not joined: a process the command left behind may hold the pipes open.
                return Err(Error::Timeout {
                    command: command.to_string(),
                    timeout,
                    stderr: err.snapshot().trim().to_string(),
                });
            }
            Ok(None) => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Spawn {
                    command: command.to_string(),
                    source,
                });
            }
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out.finish();
    let stderr = err.finish();
    Ok((status.success(), status.to_string(), stdout, stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ovs-ofctl show br-ex` on ovs-vswitchd 3.1.
    const SHOW: &str = "\
OFPT_FEATURES_REPLY (xid=0x2): dpid:0000d6d143838843
n_tables:254, n_buffers:0
capabilities: FLOW_STATS TABLE_STATS PORT_STATS QUEUE_STATS ARP_MATCH_IP
actions: output enqueue set_vlan_vid set_vlan_pcp strip_vlan mod_dl_src mod_dl_dst mod_nw_src mod_nw_dst mod_nw_tos mod_tp_src mod_tp_dst
 1(patch-provnet-1): addr:b2:6d:80:53:cb:17
     config:     0
     state:      0
     speed: 0 Mbps now, 0 Mbps max
 LOCAL(br-ex): addr:d6:d1:43:83:88:43
     config:     0
     state:      0
     speed: 0 Mbps now, 0 Mbps max
OFPT_GET_CONFIG_REPLY (xid=0x4): frags=normal miss_send_len=0
";

    /// `ovs-ofctl show br-ex` with OVN-style patch ports whose names share 15 characters.
    const SHOW_LONG: &str = "\
OFPT_FEATURES_REPLY (xid=0x2): dpid:0000e6997341bc43
 1(short1): addr:aa:55:aa:55:00:10
     config:     0
 2(patch-provnet-a): addr:e2:23:b5:29:84:c5
     config:     0
 3(patch-provnet-a): addr:ae:37:3a:c8:c8:89
     config:     0
 LOCAL(br-ex): addr:e6:99:73:41:bc:43
";

    #[test]
    fn show_ports() {
        let ports = parse_show_ports(SHOW);
        assert_eq!(
            ports,
            vec![
                OfPort {
                    number: Some(1),
                    name: "patch-provnet-1".into()
                },
                OfPort {
                    number: None,
                    name: "br-ex".into()
                }
            ]
        );
        assert!(ports[0].is("1") && ports[0].is("patch-provnet-1"));
        assert!(!ports[0].is("2") && !ports[0].is("patch-provnet-2"));
        let long = parse_show_ports(SHOW_LONG);
        assert_eq!(long.len(), 4);
        assert!(long[1].is("patch-provnet-aaaa-to-br-int"));
        assert!(
            long[2].is("patch-provnet-aaab-to-br-int"),
            "cut names are ambiguous"
        );
        assert!(long[2].is("3") && !long[1].is("3"));
    }

    #[test]
    fn targets_and_command_lines() {
        let o = Ofctl::new()
            .env("OVS_RUNDIR", "/tmp/x y")
            .protocols("OpenFlow13")
            .target("br-ex", "unix:/run/openvswitch/br-ex.mgmt");
        assert_eq!(o.target_of("br-ex"), "unix:/run/openvswitch/br-ex.mgmt");
        assert_eq!(o.target_of("br-vlan"), "br-vlan");
        assert_eq!(
            o.describe_args(&["dump-flows", "br-vlan", "cookie=0x3e7/-1"]),
            "OVS_RUNDIR='/tmp/x y' ovs-ofctl -O OpenFlow13 dump-flows br-vlan cookie=0x3e7/-1"
        );
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let o = Ofctl::new().program("/nonexistent/ovs-ofctl");
        let e = o.dump_owned("br-ex", 0x3e7).unwrap_err();
        assert!(matches!(e, Error::Spawn { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/ovs-ofctl"), "{e}");
    }

    #[test]
    fn failures_carry_command_stderr_and_input() {
        // `sh -c` stands in for ovs-ofctl: it echoes its input to stderr and fails.
        let o = Ofctl::new().program("sh");
        let e = o
            .run(&["-c", "cat >&2; exit 3"], Some("line one\n"))
            .unwrap_err();
        match &e {
            Error::Command {
                command,
                stderr,
                input,
                ..
            } => {
                assert_eq!(command, "sh -c 'cat >&2; exit 3'");
                assert_eq!(stderr, "line one");
                assert_eq!(input.as_deref(), Some("line one\n"));
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains("exit status: 3"), "{e}");
    }

    #[test]
    fn slow_commands_are_killed() {
        let o = Ofctl::new()
            .program("sh")
            .timeout(Duration::from_millis(200));
        let start = Instant::now();
        let e = o
            .run(&["-c", "echo waiting >&2; sleep 5"], None)
            .unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
