//! The host-routes scenario (issue 5, seed 002): OVN networks built the way Incus builds them,
//! behind the uplink bridge `incusbr0` (10.220.0.0/24), on two chassis that share that LAN with
//! an upstream FRR router; ovn-route agents run inside the chassis' namespaces.
//!
//! ```text
//!                    upstream (AS 65000), bridge lan0 10.220.0.254/24
//!          veth ─────────────┘                       └───────────── veth
//!   hv1: incusbr0 10.220.0.1/24 (AS 64999)     hv2: incusbr0 10.220.0.2/24 (AS 64999)
//! ```
//!
//! The uplink is dual-stack: also fd42:220::/64 (hv1 ::1, hv2 ::2, upstream ::254).
//! Networks: `infra` (Incus network id 2, project 1) 10.190.10.0/24 and fd42:10::/64 with uplink
//! addresses 10.220.0.100 and fd42:220::100, `kubernetes` (id 3, project 1) 10.190.11.0/24 and
//! fd42:11::/64 with uplink addresses 10.220.0.101 and fd42:220::101; each router's uplink port
//! prefers hv1 as its gateway chassis.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;

use crate::chassis::ChassisSpec;
use crate::error::{LabError, Result};
use crate::exposure::AgentProcess;
use crate::frr::{BgpConfig, FrrRouter};
use crate::lab::Lab;
use crate::netns::{Netns, Veth, VethEnd};
use crate::util::{lab_tempdir, wait_until};

const WAIT: Duration = Duration::from_secs(30);
/// The uplink network's name (the localnet `network_name`, mapped to the bridge `incusbr0`).
pub const UPLINK: &str = "incusbr0";
/// The chassis' AS.
pub const CHASSIS_AS: u32 = 64999;
/// The upstream router's AS.
pub const UPSTREAM_AS: u32 = 65000;
/// The upstream router's address on the LAN.
pub const UPSTREAM_ADDRESS: &str = "10.220.0.254";
/// The uplink's IPv6 network; chassis `i` has `::<i + 1>`, the upstream `::254`.
pub const UPLINK6: &str = "fd42:220::/64";

/// One Incus OVN network as the lab builds it.
#[derive(Debug, Clone, Copy)]
pub struct IncusNetwork {
    /// Incus's network id (`incus-net<ID>-...`).
    pub id: u32,
    /// The project id (port group `incus_net<ID>` `external_ids:incus_project_id`).
    pub project: u32,
    /// The uplink address (`volatile.network.ipv4.address`), with the uplink's prefix.
    pub uplink: &'static str,
    /// The router's address on the network (`ipv4.address`).
    pub internal: &'static str,
    /// The IPv6 uplink address (`volatile.network.ipv6.address`), with the uplink's prefix.
    pub uplink6: Option<&'static str>,
    /// The router's IPv6 address on the network (`ipv6.address`).
    pub internal6: Option<&'static str>,
}

/// Seed 002's `infra`.
pub const INFRA: IncusNetwork = IncusNetwork {
    id: 2,
    project: 1,
    uplink: "10.220.0.100/24",
    internal: "10.190.10.1/24",
    uplink6: Some("fd42:220::100/64"),
    internal6: Some("fd42:10::1/64"),
};
/// Seed 002's `kubernetes`.
pub const KUBERNETES: IncusNetwork = IncusNetwork {
    id: 3,
    project: 1,
    uplink: "10.220.0.101/24",
    internal: "10.190.11.1/24",
    uplink6: Some("fd42:220::101/64"),
    internal6: Some("fd42:11::1/64"),
};

/// Creates an Incus-style OVN network: router `incus-net<ID>-lr`, external switch with the
/// localnet port `-ls-ext-lsp-provider`, uplink port `-lr-lrp-ext` (gateway chassis hv1 20, hv2
/// 10), internal switch and port `-lr-lrp-int`, port group `incus_net<ID>`. Dual-stack as Incus
/// sets it up: both ports carry the IPv6 address next to the IPv4 one, the internal switch has
/// `other_config:ipv6_prefix` and the internal port router advertisements
/// (`ipv6_ra_configs`).
pub fn add_incus_network(lab: &Lab, n: &IncusNetwork) -> Result<()> {
    let p = format!("incus-net{}", n.id);
    let lr = format!("{p}-lr");
    let ext = format!("{p}-ls-ext");
    let int = format!("{p}-ls-int");
    lab.lr_add(&lr)?;
    lab.ls_add(&ext)?;
    lab.lsp_add_localnet(&ext, &format!("{ext}-lsp-provider"), UPLINK)?;
    let mac_ext = format!("00:16:3e:00:{:02x}:01", n.id);
    let mac_int = format!("00:16:3e:00:{:02x}:02", n.id);
    let uplink: Vec<&str> = [Some(n.uplink), n.uplink6].into_iter().flatten().collect();
    lab.lrp_add(&lr, &format!("{lr}-lrp-ext"), &mac_ext, &uplink)?;
    lab.lsp_add_router_port(&ext, &format!("{ext}-lsp-router"), &format!("{lr}-lrp-ext"))?;
    lab.ls_add(&int)?;
    let subnet = n.internal;
    lab.nbctl(&[
        "set",
        "Logical_Switch",
        &int,
        &format!("other_config:subnet={}", network_of(subnet)),
    ])?;
    let internal: Vec<&str> = [Some(subnet), n.internal6].into_iter().flatten().collect();
    lab.lrp_add(&lr, &format!("{lr}-lrp-int"), &mac_int, &internal)?;
    if let Some(v6) = n.internal6 {
        lab.nbctl(&[
            "set",
            "Logical_Switch",
            &int,
            &format!("other_config:ipv6_prefix={}", network6_of(v6)?),
        ])?;
        lab.nbctl(&[
            "set",
            "Logical_Router_Port",
            &format!("{lr}-lrp-int"),
            "ipv6_ra_configs:address_mode=dhcpv6_stateless",
            "ipv6_ra_configs:send_periodic=true",
        ])?;
    }
    lab.lsp_add_router_port(&int, &format!("{int}-lsp-router"), &format!("{lr}-lrp-int"))?;
    lab.lrp_set_gateway_chassis(&format!("{lr}-lrp-ext"), "hv1", 20)?;
    lab.lrp_set_gateway_chassis(&format!("{lr}-lrp-ext"), "hv2", 10)?;
    lab.nbctl(&[
        "create",
        "Port_Group",
        &format!("name=incus_net{}", n.id),
        &format!("external_ids:incus_project_id={}", n.project),
    ])?;
    Ok(())
}

/// Deletes the network's router, switches and port group.
pub fn delete_incus_network(lab: &Lab, id: u32) -> Result<()> {
    let p = format!("incus-net{id}");
    lab.nbctl(&["lr-del", &format!("{p}-lr")])?;
    lab.nbctl(&["ls-del", &format!("{p}-ls-ext")])?;
    lab.nbctl(&["ls-del", &format!("{p}-ls-int")])?;
    lab.nbctl(&["destroy", "Port_Group", &format!("incus_net{id}")])?;
    Ok(())
}

/// `10.190.10.1/24` -> `10.190.10.0/24` (IPv4 only: the lab's networks).
fn network_of(cidr: &str) -> String {
    let (a, len) = cidr.split_once('/').unwrap_or((cidr, "32"));
    let a: std::net::Ipv4Addr = a.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    let len: u32 = len.parse().unwrap_or(32);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    format!("{}/{len}", std::net::Ipv4Addr::from(u32::from(a) & mask))
}

/// `fd42:10::1/64` -> `fd42:10::` (the network address, as `other_config:ipv6_prefix` takes it).
fn network6_of(cidr: &str) -> Result<std::net::Ipv6Addr> {
    let bad = || LabError::Invalid(format!("{cidr:?} is not an IPv6 ADDR/LEN"));
    let (a, len) = cidr.split_once('/').ok_or_else(bad)?;
    let a: std::net::Ipv6Addr = a.parse().map_err(|_| bad())?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 128).ok_or_else(bad)?;
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    Ok(std::net::Ipv6Addr::from(u128::from(a) & mask))
}

/// The whole scenario.
#[derive(Debug)]
pub struct IncusLab {
    /// Agents by chassis index.
    pub agents: Vec<Option<AgentProcess>>,
    /// The chassis' FRRs.
    pub frr: Vec<FrrRouter>,
    /// The upstream router on the LAN.
    pub upstream: FrrRouter,
    _veths: Vec<Veth>,
    /// OVN with chassis hv1 and hv2 (mapping `incusbr0` to the bridge `incusbr0`).
    pub lab: Lab,
    tmp: TempDir,
}

impl IncusLab {
    /// Starts OVN, both networks, the LAN and FRR everywhere (sessions established).
    pub fn start() -> Result<IncusLab> {
        let lab = Lab::builder()
            .chassis(ChassisSpec::new("hv1").bridge_mapping(UPLINK, "incusbr0"))
            .chassis(ChassisSpec::new("hv2").bridge_mapping(UPLINK, "incusbr0"))
            .wire(true)
            .start()?;
        for n in [INFRA, KUBERNETES] {
            add_incus_network(&lab, &n)?;
        }
        for n in [INFRA, KUBERNETES] {
            lab.wait_port_bound(&format!("cr-incus-net{}-lr-lrp-ext", n.id), "hv1", WAIT)?;
        }
        let tmp = lab_tempdir("incus")?;
        let mut up = BgpConfig::new(UPSTREAM_AS, UPSTREAM_ADDRESS);
        for i in 0..2 {
            up = up.neighbor(&format!("10.220.0.{}", i + 1), CHASSIS_AS);
        }
        let upstream = FrrRouter::start("upstream", &up.render())?;
        upstream
            .netns()
            .add_bridge("lan0", &[&format!("{UPSTREAM_ADDRESS}/24")])?;
        upstream
            .netns()
            .ip(&["addr", "add", "fd42:220::254/64", "dev", "lan0", "nodad"])?;
        let mut veths = vec![];
        let mut frr = vec![];
        for i in 0..2 {
            let c = lab.chassis(i);
            let ns = c.netns();
            let address = format!("10.220.0.{}", i + 1);
            ns.add_bridge("incusbr0", &[&format!("{address}/24")])?;
            // nodad: the address is usable at once (no tentative phase).
            ns.ip(&[
                "addr",
                "add",
                &format!("fd42:220::{}/64", i + 1),
                "dev",
                "incusbr0",
                "nodad",
            ])?;
            let up_dev = format!("lan-{}", c.name());
            let v = Veth::connect(
                VethEnd {
                    netns: ns,
                    dev: "lan0",
                    addrs: &[],
                },
                VethEnd {
                    netns: upstream.netns(),
                    dev: &up_dev,
                    addrs: &[],
                },
            )?;
            ns.ip(&["link", "set", "lan0", "master", "incusbr0"])?;
            upstream
                .netns()
                .ip(&["link", "set", &up_dev, "master", "lan0"])?;
            veths.push(v);
            let conf = BgpConfig::new(CHASSIS_AS, &address).neighbor(UPSTREAM_ADDRESS, UPSTREAM_AS);
            frr.push(FrrRouter::start_in(
                Netns::shared(ns),
                c.name(),
                &conf.render(),
            )?);
        }
        for i in 0..2 {
            upstream.wait_bgp_established(&format!("10.220.0.{}", i + 1), WAIT)?;
        }
        Ok(IncusLab {
            agents: vec![None, None],
            frr,
            upstream,
            _veths: veths,
            lab,
            tmp,
        })
    }

    /// Chassis `i`'s agent configuration: exposure in table 10 (`vrf_mode = none`) and
    /// `[host_routes]` with `extra` lines.
    pub fn agent_config(&self, i: usize, extra_host_routes: &str) -> String {
        let c = self.lab.chassis(i);
        let dir = self.tmp.path().join(c.name());
        let mut s = String::new();
        let _ = writeln!(s, "[DEFAULT]");
        let _ = writeln!(s, "bgp_AS = {CHASSIS_AS}");
        let _ = writeln!(s, "ovsdb_connection = {}", c.ovs_remote());
        let _ = writeln!(s, "ovsdb_connection_timeout = 30");
        let _ = writeln!(s, "bgp_vrf_table_id = 10");
        let _ = writeln!(s, "reconcile_interval = 30");
        let _ = writeln!(s, "[ovn]");
        let _ = writeln!(s, "ovn_nb_connection = {}", self.lab.nb().unix_remote());
        let _ = writeln!(s, "ovn_sb_connection = {}", self.lab.sb().unix_remote());
        let _ = writeln!(s, "[ovn_route]");
        let _ = writeln!(s, "vrf_mode = none");
        let _ = writeln!(s, "frr_vty_socket = {}", self.frr[i].dir().display());
        let _ = writeln!(s, "status_socket = {}", dir.join("status.sock").display());
        let _ = writeln!(s, "iproute2_dir = {}", dir.join("iproute2").display());
        let _ = writeln!(s, "[host_routes]");
        let _ = writeln!(s, "enabled = true");
        s.push_str(extra_host_routes);
        s
    }

    /// Writes `config` and starts `binary agent` in chassis `i`'s namespace.
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

    /// Chassis `i`'s routes with our protocol in the main table (`ip route show proto 201`).
    pub fn host_routes(&self, i: usize) -> Result<String> {
        Ok(self
            .lab
            .chassis(i)
            .netns()
            .ip(&["route", "show", "table", "main", "proto", "201"])?
            .trim()
            .to_string())
    }

    /// Waits until chassis `i`'s routes with our protocol are exactly `want` (sorted lines of
    /// `ip route show proto 201`, e.g. `10.190.10.0/24 via 10.220.0.100 dev incusbr0`).
    pub fn wait_host_routes(&self, i: usize, want: &[&str]) -> Result<()> {
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        wait_until(&format!("hv{} host routes {want:?}", i + 1), WAIT, |last| {
            let text = self.host_routes(i)?;
            let mut got: Vec<String> = text
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|l| !l.is_empty())
                .collect();
            got.sort();
            *last = format!("{got:?}");
            Ok((got == want).then_some(()))
        })
    }

    /// Chassis `i`'s main-table routes to OVN subnets (inside `10.190.0.0/16`, or inside
    /// `fd42::/16` but not the uplink's own `fd42:220::/64`), whatever their protocol, normalised: `nhid N` and `metric N` dropped, e.g.
    /// `10.190.10.0/24 via 10.220.0.100 dev incusbr0 proto zebra` (FRR's copy of a route it
    /// imports from the exposure table) or `... proto 201` (the agent's), sorted.
    pub fn main_routes(&self, i: usize) -> Result<Vec<String>> {
        let ns = self.lab.chassis(i).netns();
        let mut text = ns.ip(&["route", "show", "table", "main", "root", "10.190.0.0/16"])?;
        text.push('\n');
        let v6 = ns.ip(&["-6", "route", "show", "table", "main", "root", "fd42::/16"])?;
        for l in v6.lines() {
            if !l.starts_with(UPLINK6) {
                text.push_str(l);
                text.push('\n');
            }
        }
        let mut out: Vec<String> = vec![];
        for l in text.lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            let mut keep = vec![];
            let mut k = 0;
            while k < w.len() {
                if matches!(w[k], "nhid" | "metric" | "pref") {
                    k += 2;
                    continue;
                }
                keep.push(w[k]);
                k += 1;
            }
            if !keep.is_empty() {
                out.push(keep.join(" "));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Waits until [`IncusLab::main_routes`] of chassis `i` is exactly `want`.
    pub fn wait_main_routes(&self, i: usize, want: &[&str]) -> Result<()> {
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        wait_until(&format!("hv{} main routes {want:?}", i + 1), WAIT, |last| {
            let got = self.main_routes(i)?;
            *last = format!("{got:?}");
            Ok((got == want).then_some(()))
        })
    }

    /// `ovn-route routes` (table output) run in chassis `i`'s namespace: (exit code, stdout).
    pub fn routes_text(&self, i: usize, binary: &Path) -> Result<(i32, String)> {
        let c = self.lab.chassis(i);
        let out = c
            .netns()
            .command(&binary.display().to_string())
            .args(["routes", "--db", &self.lab.nb().unix_remote()])
            .output()
            .map_err(|e| LabError::io("ovn-route routes", e))?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    }

    /// `ovn-route routes --json` (and extra args) run in chassis `i`'s namespace.
    pub fn routes_json(&self, i: usize, binary: &Path) -> Result<serde_json::Value> {
        let c = self.lab.chassis(i);
        let out = c
            .netns()
            .command(&binary.display().to_string())
            .args(["routes", "--json", "--db", &self.lab.nb().unix_remote()])
            .output()
            .map_err(|e| LabError::io("ovn-route routes", e))?;
        serde_json::from_slice(&out.stdout).map_err(|e| {
            LabError::Invalid(format!(
                "ovn-route routes: {e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        })
    }

    /// The upstream's BGP paths to `prefix`: (next hop, peer) each.
    pub fn upstream_paths(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let out = self
            .upstream
            .vtysh(&[&format!("show ip bgp {prefix} json")])?;
        let v: serde_json::Value = serde_json::from_str(&out)
            .map_err(|e| LabError::Invalid(format!("bad JSON from vtysh ({e}): {out}")))?;
        let mut res = vec![];
        for p in v["paths"].as_array().into_iter().flatten() {
            res.push((
                p["nexthops"][0]["ip"].as_str().unwrap_or("").to_string(),
                p["peer"]["peerId"].as_str().unwrap_or("").to_string(),
            ));
        }
        Ok(res)
    }

    /// Waits until the upstream has exactly one path to `prefix`, learned from chassis `i`
    /// with next hop `nexthop`.
    pub fn wait_upstream_only(&self, prefix: &str, i: usize, nexthop: &str) -> Result<()> {
        let peer = format!("10.220.0.{}", i + 1);
        wait_until(
            &format!("upstream: {prefix} only from hv{} via {nexthop}", i + 1),
            WAIT,
            |last| {
                let p = self.upstream_paths(prefix)?;
                *last = format!("paths (next hop, peer): {p:?}");
                Ok((p == [(nexthop.to_string(), peer.clone())]).then_some(()))
            },
        )
    }

    /// Waits until the upstream has no path to `prefix`.
    pub fn wait_upstream_none(&self, prefix: &str) -> Result<()> {
        wait_until(&format!("upstream: {prefix} withdrawn"), WAIT, |last| {
            let p = self.upstream_paths(prefix)?;
            *last = format!("paths: {p:?}");
            Ok(p.is_empty().then_some(()))
        })
    }

    /// What to look at when a test fails.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for (i, a) in self.agents.iter().enumerate() {
            if let Some(a) = a {
                let _ = writeln!(s, "--- agent {i} log:\n{}", a.log_tail(60));
            }
            let ns = self.lab.chassis(i).netns();
            let _ = writeln!(
                s,
                "--- hv{} main:\n{}\n{}\n--- table 10:\n{}",
                i + 1,
                ns.ip(&["route"]).unwrap_or_default(),
                ns.ip(&["-6", "route"]).unwrap_or_default(),
                ns.ip(&["route", "show", "table", "10"]).unwrap_or_default()
            );
            if let Some(f) = self.frr.get(i) {
                let _ = writeln!(
                    s,
                    "--- hv{} bgp:\n{}\n--- hv{} zebra:\n{}",
                    i + 1,
                    f.vtysh(&["show ip bgp"]).unwrap_or_default(),
                    i + 1,
                    f.vtysh(&["show ip route"]).unwrap_or_default()
                );
            }
        }
        let _ = writeln!(
            s,
            "--- upstream:\n{}",
            self.upstream.vtysh(&["show ip bgp"]).unwrap_or_default()
        );
        s
    }
}

impl Drop for IncusLab {
    fn drop(&mut self) {
        for a in self.agents.iter_mut().flatten() {
            a.kill();
        }
    }
}
