//! The exposure scenario: the demo topology on two chassis, each with a kernel stand-in for its
//! provider bridge and its own FRR, both peering with an upstream FRR router; and ovn-route
//! agents (the binary under test) running inside the chassis' namespaces.
//!
//! ```text
//!            upstream (AS 65000)
//!   192.0.2.2/30 |        | 192.0.2.6/30
//!   192.0.2.1/30 |        | 192.0.2.5/30
//!        hv1 (AS 64999)  hv2 (AS 64999)     each: br-ex (kernel bridge), FRR, ovn-route agent
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::chassis::ChassisSpec;
use crate::error::{LabError, Result};
use crate::frr::{BgpConfig, FrrRouter};
use crate::lab::{Lab, Nat};
use crate::netns::{connect, Netns, Veth};
use crate::util::{lab_tempdir, wait_until};

const WAIT: Duration = Duration::from_secs(30);

/// What chassis `hv1` exposes in the demo topology: the provider VM, the distributed and the
/// centralized floating IP, the load-balancer VIP, the gateway IP and the tenant subnet.
pub const DEMO_HOSTED_ON_HV1: [&str; 6] = [
    "172.16.0.10",
    "172.16.0.101",
    "172.16.0.102",
    "172.16.0.200",
    "172.16.0.1",
    "10.0.0.0/24",
];

/// The AS of the chassis.
pub const CHASSIS_AS: u32 = 64999;
/// The AS of the upstream router.
pub const UPSTREAM_AS: u32 = 65000;

/// Builds the demo topology on `lab` (chassis `hv1` and `hv2`, provider network `physnet1` on
/// `br-ex`): switch `public` (provider, 172.16.0.0/24) with VM `vm-prov` on hv1; switch `private`
/// (10.0.0.0/24, fd00::/64) behind router `lr0`, whose gateway port `lrp-pub` prefers hv1; VMs
/// `vm1` (hv1) and `vm2` (hv2); an SNAT, a distributed floating IP 172.16.0.101 for vm1, a
/// centralized one 172.16.0.102 for vm2, and load balancer `lb0` with VIP 172.16.0.200 on lr0.
pub fn demo_topology(lab: &Lab) -> Result<()> {
    lab.ls_add("public")?;
    lab.lsp_add_localnet("public", "ln-public", "physnet1")?;
    lab.add_vif_port("public", "vm-prov", "00:00:00:00:01:10 172.16.0.10", "hv1")?;
    lab.ls_add("private")?;
    lab.lr_add("lr0")?;
    lab.connect_router(
        "lr0",
        "lrp-priv",
        "00:00:00:00:ff:01",
        &["10.0.0.1/24", "fd00::1/64"],
        "private",
    )?;
    lab.connect_router(
        "lr0",
        "lrp-pub",
        "00:00:00:00:ff:02",
        &["172.16.0.1/24", "2001:db8:ff::1/64"],
        "public",
    )?;
    lab.lrp_set_gateway_chassis("lrp-pub", "hv1", 20)?;
    lab.lrp_set_gateway_chassis("lrp-pub", "hv2", 10)?;
    lab.add_vif_port(
        "private",
        "vm1",
        "00:00:00:00:00:01 10.0.0.11 fd00::11",
        "hv1",
    )?;
    lab.add_vif_port("private", "vm2", "00:00:00:00:00:02 10.0.0.12", "hv2")?;
    lab.lr_nat_add("lr0", &Nat::snat("172.16.0.1", "10.0.0.0/24"))?;
    lab.lr_nat_add(
        "lr0",
        &Nat::dnat_and_snat("172.16.0.101", "10.0.0.11").distributed("vm1", "00:00:00:00:0f:01"),
    )?;
    lab.lr_nat_add("lr0", &Nat::dnat_and_snat("172.16.0.102", "10.0.0.12"))?;
    lab.lb_add(
        "lb0",
        "172.16.0.200:80",
        &["10.0.0.11:8080", "10.0.0.12:8080"],
        Some("tcp"),
    )?;
    lab.lr_lb_add("lr0", "lb0")?;
    lab.wait_port_bound("cr-lrp-pub", "hv1", WAIT)?;
    for p in ["vm-prov", "vm1", "vm2"] {
        lab.wait_lsp_up(p, WAIT)?;
    }
    Ok(())
}

/// A running `ovn-route agent` inside a chassis namespace; killed on drop.
#[derive(Debug)]
pub struct AgentProcess {
    child: Option<Child>,
    cmd: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its status socket.
    pub status_socket: PathBuf,
}

impl AgentProcess {
    /// Writes `config` to `dir/agent.conf` and starts `binary agent` with it in chassis `c`'s
    /// namespace (log `dir/agent.log`, `RUST_LOG` from `OVNR_AGENT_LOG`, default
    /// `info,ovn_route_agent=debug`).
    pub fn start_in(
        c: &crate::chassis::Chassis,
        dir: &Path,
        binary: &Path,
        config: &str,
    ) -> Result<AgentProcess> {
        std::fs::create_dir_all(dir).map_err(|e| LabError::io("mkdir", e))?;
        let path = dir.join("agent.conf");
        std::fs::write(&path, config).map_err(|e| LabError::io("write agent.conf", e))?;
        let mut env = c.env();
        env.push((
            "RUST_LOG".into(),
            std::env::var("OVNR_AGENT_LOG").unwrap_or_else(|_| "info,ovn_route_agent=debug".into()),
        ));
        let mut a = AgentProcess {
            child: None,
            cmd: vec![
                "ip".into(),
                "netns".into(),
                "exec".into(),
                c.netns().name().into(),
                binary.display().to_string(),
                "agent".into(),
                "--config".into(),
                path.display().to_string(),
            ],
            env,
            log: dir.join("agent.log"),
            config: path,
            status_socket: dir.join("status.sock"),
        };
        a.spawn()?;
        Ok(a)
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| LabError::io(format!("open {}", self.log.display()), e))?;
        let err = log
            .try_clone()
            .map_err(|e| LabError::io("clone log file", e))?;
        let child = Command::new(&self.cmd[0])
            .args(&self.cmd[1..])
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| LabError::io(format!("spawn {}", self.cmd.join(" ")), e))?;
        self.child = Some(child);
        Ok(())
    }

    /// Starts it again after [`AgentProcess::kill`] or [`AgentProcess::stop`].
    pub fn start(&mut self) -> Result<()> {
        if self.child.is_none() {
            self.spawn()?;
        }
        Ok(())
    }

    /// SIGKILL (no chance to clean anything) and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and reap.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            crate::process::signal(c.id(), libc::SIGTERM);
            let _ = c.wait();
        }
    }

    /// Whether it is still running (an exit is reported with the log's tail).
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(c) = &mut self.child {
            if let Ok(Some(status)) = c.try_wait() {
                self.child = None;
                return Err(LabError::Invalid(format!(
                    "ovn-route agent exited ({status}); log tail:\n{}",
                    self.log_tail(40)
                )));
            }
        }
        Ok(())
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The whole log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One chassis' BGP side: its FRR and the link to the upstream router.
#[derive(Debug)]
pub struct ChassisBgp {
    /// The chassis' FRR (in the chassis namespace).
    pub frr: FrrRouter,
    /// Its address on the link to the upstream router (the BGP next hop upstream sees).
    pub address: String,
    /// The upstream router's address on that link.
    pub upstream_address: String,
    _veth: Veth,
}

/// The whole exposure scenario.
#[derive(Debug)]
pub struct ExposureLab {
    /// Agents, by chassis index (started with [`ExposureLab::start_agent`]).
    pub agents: Vec<Option<AgentProcess>>,
    /// Per chassis, its FRR and uplink.
    pub bgp: Vec<ChassisBgp>,
    /// The upstream router: its view is the truth.
    pub upstream: FrrRouter,
    /// The OVN lab (chassis hv1, hv2).
    pub lab: Lab,
    tmp: TempDir,
}

impl ExposureLab {
    /// Starts OVN with two chassis, the demo topology, the kernel stand-ins for `br-ex`, FRR on
    /// each chassis and the upstream router with established sessions.
    pub fn start() -> Result<ExposureLab> {
        let lab = Lab::builder()
            .chassis(ChassisSpec::new("hv1").bridge_mapping("physnet1", "br-ex"))
            .chassis(ChassisSpec::new("hv2").bridge_mapping("physnet1", "br-ex"))
            .wire(true)
            .start()?;
        demo_topology(&lab)?;
        Self::around(lab)
    }

    /// Adds the BGP side to a running lab whose chassis map `physnet1` to `br-ex`.
    pub fn around(lab: Lab) -> Result<ExposureLab> {
        let tmp = lab_tempdir("exposure")?;
        let n = lab.chassis_list().len();
        // Graceful restart on both sides: an FRR restart on a chassis keeps its routes upstream.
        let mut up = BgpConfig::new(UPSTREAM_AS, "192.0.2.254").line("bgp graceful-restart");
        for i in 0..n {
            up = up.neighbor(&format!("192.0.2.{}", 4 * i + 1), CHASSIS_AS);
        }
        let upstream = FrrRouter::start("upstream", &up.render())?;
        let mut bgp = Vec::new();
        for i in 0..n {
            let c = lab.chassis(i);
            let ns = c.netns();
            ns.add_bridge("br-ex", &[])?;
            let address = format!("192.0.2.{}", 4 * i + 1);
            let upstream_address = format!("192.0.2.{}", 4 * i + 2);
            let veth = connect(
                ns,
                "up0",
                &format!("{address}/30"),
                upstream.netns(),
                &format!("to-{}", c.name()),
                &format!("{upstream_address}/30"),
            )?;
            // The operator's FRR as docs/frr.md recommends: an FRR restart withdraws nothing
            // upstream (the F bit keeps the stale routes past the new session's OPEN; the
            // initial updates and End-of-RIB wait 5 s, by when the agent's block is back).
            let conf = BgpConfig::new(CHASSIS_AS, &address)
                .neighbor(&upstream_address, UPSTREAM_AS)
                .line("bgp graceful-restart")
                .line("bgp graceful-restart preserve-fw-state")
                .line("coalesce-time 5000");
            let frr = FrrRouter::start_in(Netns::shared(ns), c.name(), &conf.render())?;
            bgp.push(ChassisBgp {
                frr,
                address,
                upstream_address,
                _veth: veth,
            });
        }
        for b in &bgp {
            upstream.wait_bgp_established(&b.address, WAIT)?;
        }
        Ok(ExposureLab {
            agents: (0..n).map(|_| None).collect(),
            bgp,
            upstream,
            lab,
            tmp,
        })
    }

    /// The agent configuration for chassis `i` (`vrf_mode = none`: routes in table 10, which FRR
    /// imports), with `extra` lines appended to `[ovn_route]` / other sections as given.
    pub fn agent_config(&self, i: usize, extra_default: &str, extra_ovn_route: &str) -> String {
        let c = self.lab.chassis(i);
        let dir = self.tmp.path().join(c.name());
        let mut s = String::new();
        let _ = writeln!(s, "[DEFAULT]");
        let _ = writeln!(s, "bgp_AS = {CHASSIS_AS}");
        let _ = writeln!(s, "ovsdb_connection = {}", c.ovs_remote());
        let _ = writeln!(s, "ovsdb_connection_timeout = 30");
        let _ = writeln!(s, "expose_tenant_networks = true");
        let _ = writeln!(s, "advertisement_method_tenant_networks = subnet");
        let _ = writeln!(s, "bgp_vrf_table_id = 10");
        let _ = writeln!(s, "reconcile_interval = 30");
        s.push_str(extra_default);
        let _ = writeln!(s, "[ovn]");
        let _ = writeln!(s, "ovn_nb_connection = {}", self.lab.nb().unix_remote());
        let _ = writeln!(s, "ovn_sb_connection = {}", self.lab.sb().unix_remote());
        let _ = writeln!(s, "[ovn_route]");
        let _ = writeln!(s, "vrf_mode = none");
        let _ = writeln!(s, "frr_vty_socket = {}", self.bgp[i].frr.dir().display());
        let _ = writeln!(s, "status_socket = {}", dir.join("status.sock").display());
        let _ = writeln!(s, "iproute2_dir = {}", dir.join("iproute2").display());
        s.push_str(extra_ovn_route);
        s
    }

    /// [`ExposureLab::agent_config`] without a Southbound database: no `ovn_sb_connection`, and
    /// `southbound = off` so that the agent does not take ovn-controller's `ovn-remote` either
    /// (port locations then come from the Northbound only).
    pub fn agent_config_without_sb(
        &self,
        i: usize,
        extra_default: &str,
        extra_ovn_route: &str,
    ) -> String {
        let extra = format!("southbound = off\n{extra_ovn_route}");
        let mut s: String = self
            .agent_config(i, extra_default, &extra)
            .lines()
            .filter(|l| !l.trim_start().starts_with("ovn_sb_connection"))
            .collect::<Vec<_>>()
            .join("\n");
        s.push('\n');
        s
    }

    /// Starts `binary agent --config ...` in chassis `i`'s namespace with `config` (see
    /// [`ExposureLab::agent_config`]).
    pub fn start_agent(&mut self, i: usize, binary: &Path, config: &str) -> Result<()> {
        let c = self.lab.chassis(i);
        let dir = self.tmp.path().join(c.name());
        self.agents[i] = Some(AgentProcess::start_in(c, &dir, binary, config)?);
        Ok(())
    }

    /// The agent of chassis `i`.
    pub fn agent(&mut self, i: usize) -> &mut AgentProcess {
        self.agents[i].as_mut().expect("agent started")
    }

    /// The upstream router's route to `prefix` (`ip route show PREFIX`), or empty.
    pub fn upstream_route(&self, prefix: &str) -> Result<String> {
        Ok(self
            .upstream
            .netns()
            .ip(&["route", "show", prefix])?
            .trim()
            .to_string())
    }

    /// Waits until the upstream router routes `prefix` via chassis `i`.
    pub fn wait_upstream_via(&self, prefix: &str, i: usize, timeout: Duration) -> Result<()> {
        let want = format!("via {} ", self.bgp[i].address);
        wait_until(
            &format!(
                "upstream route to {prefix} via {}",
                self.lab.chassis(i).name()
            ),
            timeout,
            |last| {
                let r = self.upstream_route(prefix)?;
                *last = format!("`ip route show {prefix}`: {r:?}");
                Ok((r.contains(&want) && r.contains("proto bgp")).then_some(()))
            },
        )
    }

    /// Waits until the upstream router has no route to `prefix`.
    pub fn wait_upstream_gone(&self, prefix: &str, timeout: Duration) -> Result<()> {
        wait_until(
            &format!("upstream route to {prefix} withdrawn"),
            timeout,
            |last| {
                let r = self.upstream_route(prefix)?;
                *last = format!("`ip route show {prefix}`: {r:?}");
                Ok(r.is_empty().then_some(()))
            },
        )
    }

    /// The upstream router's BGP table as text (`show ip bgp`).
    pub fn upstream_bgp_table(&self) -> Result<String> {
        self.upstream.vtysh(&["show ip bgp"])
    }

    /// The upstream BGP routes: prefix -> (next hop, "uptime" text), from `show ip bgp json`.
    pub fn upstream_bgp_routes(&self) -> Result<Vec<(String, String)>> {
        self.upstream_best_paths("show ip bgp json")
    }

    /// The upstream's best paths from a `show ... json` BGP table: (prefix, next hop).
    pub(crate) fn upstream_best_paths(&self, command: &str) -> Result<Vec<(String, String)>> {
        let out = self.upstream.vtysh(&[command])?;
        let v: serde_json::Value = serde_json::from_str(&out)
            .map_err(|e| LabError::Invalid(format!("bad JSON from vtysh ({e}): {out}")))?;
        let mut res = Vec::new();
        if let Some(routes) = v["routes"].as_object() {
            for (prefix, paths) in routes {
                for p in paths.as_array().into_iter().flatten() {
                    if p["bestpath"].as_bool() == Some(true) {
                        let nh = p["nexthops"][0]["ip"].as_str().unwrap_or("").to_string();
                        res.push((prefix.clone(), nh));
                    }
                }
            }
        }
        Ok(res)
    }

    /// The upstream BGP table's version (`show ip bgp json` `tableVersion`): it changes with
    /// every route added, changed or withdrawn.
    pub fn upstream_table_version(&self) -> Result<u64> {
        let out = self.upstream.vtysh(&["show ip bgp json"])?;
        let v: serde_json::Value = serde_json::from_str(&out)
            .map_err(|e| LabError::Invalid(format!("bad JSON from vtysh ({e}): {out}")))?;
        Ok(v["tableVersion"].as_u64().unwrap_or(0))
    }

    /// The scratch directory of chassis `i`'s agent.
    pub fn agent_dir(&self, i: usize) -> PathBuf {
        self.tmp.path().join(self.lab.chassis(i).name())
    }
}

impl Drop for ExposureLab {
    fn drop(&mut self) {
        for a in self.agents.iter_mut().flatten() {
            a.kill();
        }
    }
}
