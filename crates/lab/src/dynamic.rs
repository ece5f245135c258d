//! The dynamic-routing scenario: OVN with two chassis (hv1, hv2), a router `lr0` with
//! `dynamic-routing` options, its distributed gateway port `lr0-pub` on hv1, and `ovn-route
//! agent` (`dynamic_routing = true`) in each chassis namespace. The router's table is an
//! ordinary table id (`dynamic-routing-vrf-id`), so this runs without VRF support: a plain
//! `ip route add ... table N proto bgp` stands in for FRR on the learning side.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::frr::{BgpConfig, FrrRouter};
use crate::netns::{connect, Netns, Veth};
use crate::process::run;
use crate::util::{lab_tempdir, wait_until};
use crate::{ChassisSpec, Lab, LabError, Nat, Result};

/// The chassis' AS in [`DynamicBgp`].
pub const DYN_CHASSIS_AS: u32 = 64999;
/// The upstream router's AS in [`DynamicBgp`].
pub const DYN_UPSTREAM_AS: u32 = 65000;
/// The first chassis' address on the link to the upstream router (in the router's VRF); chassis
/// `i` has [`dyn_chassis_addr`]`(i)`.
pub const DYN_CHASSIS_ADDR: &str = "172.16.0.20";
/// The upstream router's address on that link.
pub const DYN_UPSTREAM_ADDR: &str = "172.16.0.254";
/// The chassis end of that link.
pub const DYN_LINK: &str = "dyn0";
/// The upstream router's bridge: the L2 segment every chassis' [`DYN_LINK`] is joined to.
const DYN_UPSTREAM_BRIDGE: &str = "br-up";

/// Chassis `i`'s address on the link to the upstream router (`172.16.0.20` + `i`).
pub fn dyn_chassis_addr(i: usize) -> String {
    format!("172.16.0.{}", 20 + i)
}

/// The BGP side of the dynamic-routing scenario (kernel tier): FRR on one or more chassis (the
/// agent configures its VRF instance) and an upstream FRR router. Each chassis is joined to the
/// upstream's bridge (one L2 segment, 172.16.0.0/24) by a veth whose chassis end ([`DYN_LINK`],
/// [`dyn_chassis_addr`]) the operator puts into the router's VRF ([`DynamicLab::attach_link_on`]).
#[derive(Debug)]
pub struct DynamicBgp {
    /// The chassis index of the first [`DynamicLab::start_bgp`].
    pub chassis: usize,
    /// That chassis' FRR (in the chassis namespace; its default instance is the operator's).
    pub frr: FrrRouter,
    /// FRR of the chassis started after the first, with their index ([`DynamicLab::frr`]).
    pub more: Vec<(usize, FrrRouter)>,
    /// The upstream router.
    pub upstream: FrrRouter,
    _veths: Vec<Veth>,
}

/// The router's table on each chassis.
pub const DYN_TABLE: u32 = 1000;

/// A running `ovn-route agent`; killed on drop.
#[derive(Debug)]
pub struct DynAgent {
    child: Option<Child>,
    log: PathBuf,
}

impl DynAgent {
    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        crate::util::tail_file(&self.log, n)
    }

    /// SIGTERM (an orderly stop, as `systemctl restart` does) and reap; SIGKILL if it has not
    /// exited after 30 s (a hang, not a timing check: the caller sees it in the log).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            crate::process::signal(c.id(), libc::SIGTERM);
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while matches!(c.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for DynAgent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `ip -o monitor route` in a chassis namespace, its output in a file; killed on drop.
#[derive(Debug)]
pub struct RouteMonitor {
    child: Option<Child>,
    out: PathBuf,
}

impl RouteMonitor {
    /// Every notification line so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The notifications so far of protocol-84 routes in table [`DYN_TABLE`] (`Deleted ...` for
    /// removals).
    pub fn ovn_lines(&self) -> Vec<String> {
        let t = format!("table {DYN_TABLE} ");
        self.lines()
            .into_iter()
            .filter(|l| {
                let l = format!("{l} ");
                l.contains(&t) && (l.contains(" proto 84 ") || l.contains(" proto ovn "))
            })
            .collect()
    }

    /// Kills `ip monitor`.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RouteMonitor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The scenario.
#[derive(Debug)]
pub struct DynamicLab {
    /// Agents by chassis index.
    pub agents: Vec<Option<DynAgent>>,
    /// FRR on chassis and an upstream router ([`DynamicLab::start_bgp`]).
    pub bgp: Option<DynamicBgp>,
    /// Lines appended to `[ovn_route]` of every agent configuration.
    pub ovn_route_extra: String,
    /// The OVN lab.
    pub lab: Lab,
    tmp: TempDir,
}

impl DynamicLab {
    /// Starts OVN, the topology (`lr0` with `extra_router_options` added to
    /// `dynamic-routing=true`, `dynamic-routing-vrf-id=1000`), and a bridge `up0` in each chassis
    /// namespace (the stand-in for the uplink that learned routes point through).
    pub fn start(extra_router_options: &[(&str, &str)]) -> Result<DynamicLab> {
        let lab = Lab::builder()
            .chassis(ChassisSpec::new("hv1").bridge_mapping("physnet1", "br-ex"))
            .chassis(ChassisSpec::new("hv2").bridge_mapping("physnet1", "br-ex"))
            .start()?;
        lab.lr_add("lr0")?;
        let mut args = vec![
            "set".to_string(),
            "Logical_Router".into(),
            "lr0".into(),
            "options:dynamic-routing=true".into(),
            format!("options:dynamic-routing-vrf-id={DYN_TABLE}"),
        ];
        for (k, v) in extra_router_options {
            args.push(format!("options:{k}=\"{v}\""));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        lab.nbctl(&args)?;
        lab.ls_add("public")?;
        lab.lsp_add_localnet("public", "ln-public", "physnet1")?;
        lab.connect_router(
            "lr0",
            "lr0-pub",
            "00:00:00:00:ff:02",
            &["172.16.0.1/24"],
            "public",
        )?;
        lab.lrp_set_gateway_chassis("lr0-pub", "hv1", 20)?;
        lab.ls_add("private")?;
        lab.connect_router(
            "lr0",
            "lr0-priv",
            "00:00:00:00:ff:01",
            &["10.0.0.1/24"],
            "private",
        )?;
        lab.add_vif_port("private", "vm1", "00:00:00:00:00:01 10.0.0.11", "hv1")?;
        lab.lr_nat_add("lr0", &Nat::snat("172.16.0.1", "10.0.0.0/24"))?;
        lab.wait_port_bound("cr-lr0-pub", "hv1", Duration::from_secs(30))?;
        for c in lab.chassis_list() {
            c.netns().add_bridge("up0", &["172.16.0.10/24"])?;
            // The kernel side of the provider bridge, for the exposure part of the agent.
            c.netns().add_bridge("br-ex", &[])?;
        }
        let n = lab.chassis_list().len();
        Ok(DynamicLab {
            agents: (0..n).map(|_| None).collect(),
            bgp: None,
            ovn_route_extra: String::new(),
            lab,
            tmp: lab_tempdir("dynamic")?,
        })
    }

    /// The agent configuration of chassis `i`.
    pub fn agent_config(&self, i: usize) -> String {
        let c = self.lab.chassis(i);
        let dir = self.tmp.path().join(c.name());
        let mut s = String::new();
        let _ = writeln!(s, "[DEFAULT]");
        let _ = writeln!(s, "bgp_AS = {DYN_CHASSIS_AS}");
        let _ = writeln!(s, "ovsdb_connection = {}", c.ovs_remote());
        let _ = writeln!(s, "ovsdb_connection_timeout = 30");
        let _ = writeln!(s, "reconcile_interval = 30");
        let _ = writeln!(s, "[ovn]");
        let _ = writeln!(s, "ovn_nb_connection = {}", self.lab.nb().unix_remote());
        let _ = writeln!(s, "ovn_sb_connection = {}", self.lab.sb().unix_remote());
        let _ = writeln!(s, "[ovn_route]");
        let _ = writeln!(s, "vrf_mode = none");
        let _ = writeln!(s, "dynamic_routing = true");
        let frr = match self.frr(i) {
            Some(f) => f.dir().to_path_buf(),
            None => dir.join("no-frr"),
        };
        let _ = writeln!(s, "frr_vty_socket = {}", frr.display());
        let _ = writeln!(s, "status_socket = {}", dir.join("status.sock").display());
        let _ = writeln!(s, "iproute2_dir = {}", dir.join("iproute2").display());
        s.push_str(&self.ovn_route_extra);
        s
    }

    /// The status socket of chassis `i`'s agent.
    pub fn status_socket(&self, i: usize) -> PathBuf {
        let c = self.lab.chassis(i);
        self.tmp.path().join(c.name()).join("status.sock")
    }

    /// Starts FRR in chassis `i`'s namespace (default instance `router bgp 64999`, router id
    /// [`dyn_chassis_addr`]`(i)`, no neighbor: the VRF instance is the agent's) and joins the
    /// chassis to the upstream router by a veth (`dyn0` in the chassis, not yet in any VRF). The
    /// first call also starts the upstream router (AS 65000, address [`DYN_UPSTREAM_ADDR`] on its
    /// bridge, announcing what [`DynamicLab::announce`] adds); each call adds the chassis as its
    /// neighbor. Call it once per chassis.
    pub fn start_bgp(&mut self, i: usize) -> Result<()> {
        if self.frr(i).is_some() {
            return Err(LabError::Invalid(format!("start_bgp({i}) twice")));
        }
        let addr = dyn_chassis_addr(i);
        let up_dev = format!("to-{}", self.lab.chassis(i).name());
        let mut new_upstream = None;
        if self.bgp.is_none() {
            let up =
                BgpConfig::new(DYN_UPSTREAM_AS, DYN_UPSTREAM_ADDR).neighbor(&addr, DYN_CHASSIS_AS);
            let upstream = FrrRouter::start("dynup", &up.render())?;
            upstream
                .netns()
                .add_bridge(DYN_UPSTREAM_BRIDGE, &[&format!("{DYN_UPSTREAM_ADDR}/24")])?;
            new_upstream = Some(upstream);
        }
        let upstream = match &new_upstream {
            Some(u) => u,
            None => &self.bgp()?.upstream,
        };
        if new_upstream.is_none() {
            let header = format!("router bgp {DYN_UPSTREAM_AS}");
            upstream.vtysh(&[
                "configure terminal",
                &header,
                &format!("neighbor {addr} remote-as {DYN_CHASSIS_AS}"),
                &format!("neighbor {addr} timers 3 9"),
                &format!("neighbor {addr} timers connect 1"),
                "end",
            ])?;
        }
        let c = self.lab.chassis(i);
        let veth = connect(
            c.netns(),
            DYN_LINK,
            &format!("{addr}/24"),
            upstream.netns(),
            &up_dev,
            "",
        )?;
        (upstream.netns()).ip(&["link", "set", &up_dev, "master", DYN_UPSTREAM_BRIDGE])?;
        upstream.netns().ip(&["link", "set", &up_dev, "up"])?;
        let conf = BgpConfig::new(DYN_CHASSIS_AS, &addr);
        let frr = FrrRouter::start_in(Netns::shared(c.netns()), c.name(), &conf.render())?;
        match (self.bgp.as_mut(), new_upstream) {
            (_, Some(upstream)) => {
                self.bgp = Some(DynamicBgp {
                    chassis: i,
                    frr,
                    more: vec![],
                    upstream,
                    _veths: vec![veth],
                })
            }
            (Some(b), None) => {
                b.more.push((i, frr));
                b._veths.push(veth);
            }
            (None, None) => unreachable!("the upstream exists"),
        }
        Ok(())
    }

    fn bgp(&self) -> Result<&DynamicBgp> {
        self.bgp
            .as_ref()
            .ok_or_else(|| LabError::Invalid("start_bgp first".into()))
    }

    /// Chassis `i`'s FRR, if [`DynamicLab::start_bgp`] started it.
    pub fn frr(&self, i: usize) -> Option<&FrrRouter> {
        let b = self.bgp.as_ref()?;
        if b.chassis == i {
            return Some(&b.frr);
        }
        b.more.iter().find(|(c, _)| *c == i).map(|(_, f)| f)
    }

    /// Chassis `i`'s FRR, mutable (to restart or kill it).
    pub fn frr_mut(&mut self, i: usize) -> Option<&mut FrrRouter> {
        let b = self.bgp.as_mut()?;
        if b.chassis == i {
            return Some(&mut b.frr);
        }
        b.more.iter_mut().find(|(c, _)| *c == i).map(|(_, f)| f)
    }

    /// The upstream router ([`DynamicLab::start_bgp`] first).
    pub fn upstream(&self) -> Result<&FrrRouter> {
        Ok(&self.bgp()?.upstream)
    }

    /// Waits for the VRF `vrf` in the first BGP chassis (made by the agent) and puts [`DYN_LINK`]
    /// into it ([`DynamicLab::attach_link_on`]).
    pub fn attach_link(&self, vrf: &str, timeout: Duration) -> Result<()> {
        self.attach_link_on(self.bgp()?.chassis, vrf, timeout)
    }

    /// Waits for the VRF `vrf` in chassis `i` (made by the agent) and puts [`DYN_LINK`] into it,
    /// as the operator does (its address stays; its routes move to the VRF's table).
    pub fn attach_link_on(&self, i: usize, vrf: &str, timeout: Duration) -> Result<()> {
        if self.frr(i).is_none() {
            return Err(LabError::Invalid(format!("start_bgp({i}) first")));
        }
        let ns = self.lab.chassis(i).netns();
        wait_until(&format!("VRF {vrf} on chassis {i}"), timeout, |last| {
            let out = ns.ip(&["-d", "link", "show", vrf]).unwrap_or_default();
            *last = out.clone();
            Ok(out.contains(" vrf table ").then_some(()))
        })?;
        ns.ip(&["link", "set", DYN_LINK, "master", vrf])?;
        ns.ip(&["link", "set", DYN_LINK, "up"])?;
        Ok(())
    }

    /// The upstream router's view of its session with chassis `i` (the peer's entry of `show ip
    /// bgp summary json`: `state`, `connectionsEstablished`, ...; `Null` without one).
    pub fn upstream_peer(&self, i: usize) -> Result<serde_json::Value> {
        let v = self.bgp()?.upstream.bgp_summary()?;
        Ok(v["ipv4Unicast"]["peers"][dyn_chassis_addr(i).as_str()].clone())
    }

    /// The upstream router announces (`network PREFIX`) or, with `on` false, withdraws `prefix`.
    pub fn announce(&self, prefix: &str, on: bool) -> Result<()> {
        let b = self.bgp()?;
        let net = format!("{}network {prefix}", if on { "" } else { "no " });
        let header = format!("router bgp {DYN_UPSTREAM_AS}");
        b.upstream.vtysh(&[
            "configure terminal",
            &header,
            "address-family ipv4 unicast",
            &net,
            "end",
        ])?;
        Ok(())
    }

    /// The upstream router's BGP path for `prefix` (`show ip bgp PREFIX json`): (next hop, MED)
    /// of its best path, `None` without one.
    pub fn upstream_path(&self, prefix: &str) -> Result<Option<(String, u64)>> {
        let b = self.bgp()?;
        let out = b.upstream.vtysh(&[&format!("show ip bgp {prefix} json")])?;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let paths = v["paths"].as_array().cloned().unwrap_or_default();
        Ok(paths
            .iter()
            .find(|p| p["bestpath"]["overall"] == true)
            .or(paths.first())
            .map(|p| {
                (
                    p["nexthops"][0]["ip"].as_str().unwrap_or("?").to_string(),
                    p["metric"].as_u64().unwrap_or(0),
                )
            }))
    }

    /// Every BGP path of the upstream router for `prefix` (`show ip bgp PREFIX json`): (next
    /// hop, MED) of each, sorted; empty without one.
    pub fn upstream_paths(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let b = self.bgp()?;
        let out = b.upstream.vtysh(&[&format!("show ip bgp {prefix} json")])?;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let mut paths: Vec<(String, u64)> = (v["paths"].as_array().cloned().unwrap_or_default())
            .iter()
            .map(|p| {
                (
                    p["nexthops"][0]["ip"].as_str().unwrap_or("?").to_string(),
                    p["metric"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        paths.sort();
        Ok(paths)
    }

    /// `ovn-trace` of an ICMP echo from `vm1` (10.0.0.11 on `private`) to `dst` (after
    /// `--wait=hv sync`).
    pub fn trace_from_vm1(&self, dst: &str) -> Result<String> {
        self.lab.sync_hv()?;
        let flow = format!(
            "inport == \"vm1\" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:ff:01 \
             && ip4.src == 10.0.0.11 && ip4.dst == {dst} && ip.ttl == 64 && icmp4.type == 8"
        );
        run(Command::new("ovn-trace")
            .arg(format!("--db={}", self.lab.sb_remote()))
            .arg("private")
            .arg(flow))
    }

    /// Starts the agent of chassis `i` (`binary` is `ovn-route`).
    pub fn start_agent(&mut self, i: usize, binary: &Path) -> Result<()> {
        let c = self.lab.chassis(i);
        let dir = self.tmp.path().join(c.name());
        std::fs::create_dir_all(dir.join("iproute2")).map_err(|e| LabError::io("mkdir", e))?;
        let conf = dir.join("agent.conf");
        std::fs::write(&conf, self.agent_config(i)).map_err(|e| LabError::io("write", e))?;
        let log = dir.join("agent.log");
        let out = std::fs::File::create(&log).map_err(|e| LabError::io("create log", e))?;
        let err = out.try_clone().map_err(|e| LabError::io("clone log", e))?;
        let child = Command::new("ip")
            .args(["netns", "exec", c.netns().name()])
            .arg(binary)
            .args(["agent", "--config"])
            .arg(&conf)
            .envs(c.env())
            .env("RUST_LOG", "info,ovn_route_agent=debug")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| LabError::io("spawn ovn-route agent", e))?;
        self.agents[i] = Some(DynAgent {
            child: Some(child),
            log,
        });
        Ok(())
    }

    /// Starts `ip -o monitor route` in chassis `i`'s namespace and returns once it listens: a
    /// marker route (table [`DYN_TABLE`] + 1, added and deleted here) has shown up in its output.
    pub fn monitor_routes(&self, i: usize, timeout: Duration) -> Result<RouteMonitor> {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = self.tmp.path().join(format!("monitor-{i}-{n}.log"));
        let f = std::fs::File::create(&out).map_err(|e| LabError::io("create monitor log", e))?;
        let child = self
            .lab
            .chassis(i)
            .netns()
            .command("ip")
            .args(["-o", "monitor", "route"])
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| LabError::io("spawn ip monitor", e))?;
        let m = RouteMonitor {
            child: Some(child),
            out,
        };
        let marker = format!("192.0.2.{}", 200 + n % 50);
        let table = (DYN_TABLE + 1).to_string();
        wait_until("ip monitor listening", timeout, |last| {
            let _ = self.ip(i, &["route", "del", "blackhole", &marker, "table", &table]);
            self.ip(i, &["route", "add", "blackhole", &marker, "table", &table])?;
            let lines = m.lines();
            *last = format!("{lines:?}");
            Ok(lines.iter().any(|l| l.contains(&marker)).then_some(()))
        })?;
        self.ip(i, &["route", "del", "blackhole", &marker, "table", &table])?;
        Ok(m)
    }

    /// The marked (learned) static routes of the NB: `PREFIX NEXTHOP _UUID`, sorted.
    pub fn nb_learned_uuids(&self) -> Result<Vec<String>> {
        let out = self.lab.nbctl(&[
            "--format=csv",
            "--data=bare",
            "--no-headings",
            "--columns=_uuid,ip_prefix,nexthop,external_ids",
            "list",
            "Logical_Router_Static_Route",
        ])?;
        let mut v: Vec<String> = out
            .lines()
            .filter(|l| l.contains("ovn-route:owner=dynamic-routing"))
            .map(|l| {
                let c: Vec<&str> = l.splitn(4, ',').collect();
                format!(
                    "{} {} {}",
                    c.get(1).copied().unwrap_or(""),
                    c.get(2).copied().unwrap_or(""),
                    c[0]
                )
            })
            .collect();
        v.sort();
        Ok(v)
    }

    /// `ip route show table 1000 proto PROTO` in chassis `i` (sorted lines).
    pub fn table_routes(&self, i: usize, proto: &str) -> Result<Vec<String>> {
        let t = DYN_TABLE.to_string();
        // A table without routes of a family does not exist for `ip`: empty.
        let out = (self.lab.chassis(i).netns())
            .ip(&["route", "show", "table", &t, "proto", proto])
            .unwrap_or_default();
        let out6 = (self.lab.chassis(i).netns())
            .ip(&["-6", "route", "show", "table", &t, "proto", proto])
            .unwrap_or_default();
        let mut v: Vec<String> = out
            .lines()
            .chain(out6.lines())
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        v.sort();
        Ok(v)
    }

    /// `ip route ...` in chassis `i`.
    pub fn ip(&self, i: usize, args: &[&str]) -> Result<String> {
        self.lab.chassis(i).netns().ip(args)
    }

    /// The static routes of the NB: `PREFIX NEXTHOP OUTPUT_PORT MARK-CHASSIS` (the last word is
    /// `-` for a route without our mark), sorted.
    pub fn nb_static_routes(&self) -> Result<Vec<String>> {
        let out = self.lab.nbctl(&[
            "--format=csv",
            "--data=bare",
            "--no-headings",
            "--columns=ip_prefix,nexthop,output_port,external_ids",
            "list",
            "Logical_Router_Static_Route",
        ])?;
        let mut v = vec![];
        for line in out.lines().filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = line.splitn(4, ',').collect();
            let ids = cols.get(3).copied().unwrap_or("");
            let mark = if ids.contains("ovn-route:owner=dynamic-routing") {
                ids.split(' ')
                    .find_map(|kv| kv.trim_matches('"').strip_prefix("ovn-route:chassis="))
                    .unwrap_or("?")
                    .to_string()
            } else {
                "-".to_string()
            };
            let port = cols.get(2).copied().unwrap_or("");
            v.push(format!(
                "{} {} {} {}",
                cols[0],
                cols.get(1).copied().unwrap_or(""),
                if port.is_empty() { "-" } else { port },
                mark
            ));
        }
        v.sort();
        Ok(v)
    }

    /// What to look at when a test fails.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for (i, a) in self.agents.iter().enumerate() {
            if let Some(a) = a {
                let _ = writeln!(s, "--- agent {i} log:\n{}", a.log_tail(60));
            }
            let t = DYN_TABLE.to_string();
            let _ = writeln!(
                s,
                "--- hv{} table {t}:\n{}",
                i + 1,
                self.ip(i, &["route", "show", "table", &t])
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(s, "--- NB static routes:\n{:?}", self.nb_static_routes());
        if let Some(b) = &self.bgp {
            let mut frrs = vec![(b.chassis, &b.frr)];
            frrs.extend(b.more.iter().map(|(i, f)| (*i, f)));
            for (i, f) in frrs {
                let ns = self.lab.chassis(i).netns();
                let _ = writeln!(
                    s,
                    "--- hv{} links:\n{}--- hv{} FRR:\n{}\n{}",
                    i + 1,
                    ns.ip(&["-d", "-br", "link", "show"]).unwrap_or_default(),
                    i + 1,
                    f.vtysh(&["show running-config"]).unwrap_or_default(),
                    f.vtysh(&["show bgp vrf all summary"]).unwrap_or_default(),
                );
            }
            let _ = writeln!(
                s,
                "--- upstream:\n{}\n{}",
                b.upstream.vtysh(&["show ip bgp"]).unwrap_or_default(),
                b.upstream
                    .vtysh(&["show ip bgp summary"])
                    .unwrap_or_default()
            );
        }
        s
    }
}
