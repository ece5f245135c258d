//! FRR routers (zebra + bgpd) in their own network namespaces.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::error::{LabError, Result};
use crate::netns::Netns;
use crate::process::{run, write_file, Daemon, DaemonSpec};
use crate::util::{lab_tempdir, path_str, wait_until};

/// Directory of the FRR daemons on Debian.
pub const FRR_LIBEXEC: &str = "/usr/lib/frr";

/// A small generator for `bgpd` configuration files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpConfig {
    /// Local AS number.
    pub asn: u32,
    /// BGP router id (an IPv4 address).
    pub router_id: String,
    /// `(neighbor address, remote AS)` pairs.
    pub neighbors: Vec<(String, u32)>,
    /// Adds `redistribute connected` to the IPv4 unicast address family.
    pub redistribute_connected: bool,
    /// Extra lines appended inside `router bgp`.
    pub extra: Vec<String>,
}

impl BgpConfig {
    /// A config for AS `asn` with router id `router_id` and no neighbours.
    pub fn new(asn: u32, router_id: &str) -> Self {
        BgpConfig {
            asn,
            router_id: router_id.to_string(),
            neighbors: Vec::new(),
            redistribute_connected: false,
            extra: Vec::new(),
        }
    }

    /// Adds an eBGP/iBGP neighbour.
    pub fn neighbor(mut self, address: &str, remote_as: u32) -> Self {
        self.neighbors.push((address.to_string(), remote_as));
        self
    }

    /// Redistributes connected routes into BGP.
    pub fn redistribute_connected(mut self) -> Self {
        self.redistribute_connected = true;
        self
    }

    /// Appends a raw line inside `router bgp`.
    pub fn line(mut self, line: &str) -> Self {
        self.extra.push(line.to_string());
        self
    }

    /// The configuration text (`no bgp ebgp-requires-policy`, so eBGP routes flow without
    /// route maps).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "router bgp {}", self.asn);
        let _ = writeln!(s, " bgp router-id {}", self.router_id);
        let _ = writeln!(s, " no bgp ebgp-requires-policy");
        let _ = writeln!(s, " no bgp network import-check");
        for (addr, asn) in &self.neighbors {
            let _ = writeln!(s, " neighbor {addr} remote-as {asn}");
            let _ = writeln!(s, " neighbor {addr} timers 3 9");
            let _ = writeln!(s, " neighbor {addr} timers connect 1");
        }
        for l in &self.extra {
            let _ = writeln!(s, " {l}");
        }
        if self.redistribute_connected {
            let _ = writeln!(s, " address-family ipv4 unicast");
            let _ = writeln!(s, "  redistribute connected");
            let _ = writeln!(s, " exit-address-family");
        }
        s.push_str("exit\n");
        s
    }
}

/// An FRR router: `zebra` and `bgpd` running in their own network namespace with their own vty
/// socket directory (owned by user `frr`). Stopped, and the namespace deleted, on drop.
#[derive(Debug)]
pub struct FrrRouter {
    bgpd: Daemon,
    zebra: Daemon,
    netns: Netns,
    name: String,
    dir: PathBuf,
    _tmp: TempDir,
}

impl FrrRouter {
    /// Creates a namespace for router `name` and starts zebra and bgpd with `bgpd_conf`
    /// (e.g. from [`BgpConfig::render`]).
    pub fn start(name: &str, bgpd_conf: &str) -> Result<FrrRouter> {
        let netns = Netns::new(name)?;
        Self::start_in(netns, name, bgpd_conf)
    }

    /// Starts zebra and bgpd inside an existing namespace, which the router then owns.
    pub fn start_in(netns: Netns, name: &str, bgpd_conf: &str) -> Result<FrrRouter> {
        let tmp = lab_tempdir(&format!("frr-{name}"))?;
        let dir = tmp.path().to_path_buf();
        write_file(&dir.join("zebra.conf"), &format!("hostname {name}\n"))?;
        write_file(
            &dir.join("bgpd.conf"),
            &format!("hostname {name}\n{bgpd_conf}"),
        )?;
        run(Command::new("chown").args(["-R", "frr:frr"]).arg(&dir))?;
        let zebra = Daemon::start(frr_spec(name, "zebra", &dir, netns.name(), &[]))?;
        let bgpd = Daemon::start(frr_spec(name, "bgpd", &dir, netns.name(), &[]))?;
        Ok(FrrRouter {
            bgpd,
            zebra,
            netns,
            name: name.to_string(),
            dir,
            _tmp: tmp,
        })
    }

    /// The router's name (also its FRR hostname).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The router's namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Directory with the config files, vty sockets, pid files and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `vtysh --vty_socket <dir> -c CMD...` and returns its output.
    pub fn vtysh(&self, cmds: &[&str]) -> Result<String> {
        let mut c = Command::new("vtysh");
        c.arg("--vty_socket").arg(&self.dir);
        for cmd in cmds {
            c.args(["-c", cmd]);
        }
        run(&mut c)
    }

    /// `show ip bgp summary json`, parsed.
    pub fn bgp_summary(&self) -> Result<serde_json::Value> {
        let out = self.vtysh(&["show ip bgp summary json"])?;
        serde_json::from_str(&out)
            .map_err(|e| LabError::Invalid(format!("bad JSON from vtysh ({e}): {out}")))
    }

    /// Waits until the BGP session with `peer` is Established.
    pub fn wait_bgp_established(&self, peer: &str, timeout: Duration) -> Result<()> {
        wait_until(
            &format!("BGP session of {} with {peer} to be Established", self.name),
            timeout,
            |last| {
                let v = self.bgp_summary()?;
                let state = v["ipv4Unicast"]["peers"][peer]["state"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_string();
                *last = format!("state {state}");
                Ok((state == "Established").then_some(()))
            },
        )
    }

    /// Waits until the kernel routing table of the router's namespace has a route to `prefix`
    /// (as `ip route show <prefix>` prints it, e.g. "10.190.10.5"); returns the route line.
    pub fn wait_kernel_route(&self, prefix: &str, timeout: Duration) -> Result<String> {
        wait_until(
            &format!("route to {prefix} in the kernel of {}", self.name),
            timeout,
            |last| {
                let r = self.netns.ip(&["route", "show", prefix])?;
                *last = format!("`ip route show {prefix}`: {r:?}");
                Ok((!r.trim().is_empty()).then_some(r))
            },
        )
    }

    /// Stops bgpd and zebra and starts them again with the same configuration.
    pub fn restart(&mut self) -> Result<()> {
        self.bgpd.terminate();
        self.zebra.terminate();
        self.zebra.launch()?;
        self.bgpd.launch()
    }

    /// Kills bgpd and zebra with SIGKILL.
    pub fn kill(&mut self) {
        self.bgpd.kill();
        self.zebra.kill();
    }

    /// Checks that both daemons run; the error quotes the log of the one that died.
    pub fn check_alive(&mut self) -> Result<()> {
        self.zebra.check_alive()?;
        self.bgpd.check_alive()
    }

    /// Process ids of (zebra, bgpd) while they run.
    pub fn pids(&self) -> (Option<u32>, Option<u32>) {
        (self.zebra.pid(), self.bgpd.pid())
    }
}

impl Drop for FrrRouter {
    fn drop(&mut self) {
        self.bgpd.send_term();
        self.zebra.send_term();
        // Fields drop next: bgpd and zebra are reaped, then the namespace is deleted.
    }
}

fn frr_spec(router: &str, daemon: &str, dir: &Path, netns: &str, extra: &[&str]) -> DaemonSpec {
    let d = path_str(dir);
    let mut spec = DaemonSpec::new(
        format!("{router}/{daemon}"),
        &format!("{FRR_LIBEXEC}/{daemon}"),
        dir,
        daemon,
    )
    .args([
        "-i".to_string(),
        format!("{d}/{daemon}.pid"),
        "-z".to_string(),
        format!("{d}/zserv.api"),
        "--vty_socket".to_string(),
        d.clone(),
        "-u".to_string(),
        "frr".to_string(),
        "-g".to_string(),
        "frr".to_string(),
        "-P".to_string(),
        "0".to_string(),
        "-f".to_string(),
        format!("{d}/{daemon}.conf"),
        "--log".to_string(),
        format!("file:{d}/{daemon}.log"),
    ])
    .args(extra.iter().copied());
    spec.netns = Some(netns.to_string());
    spec.ready_paths = vec![dir.join(format!("{daemon}.vty"))];
    if daemon == "zebra" {
        spec.ready_paths.push(dir.join("zserv.api"));
    }
    spec
}
