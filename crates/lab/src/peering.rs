//! The peering scenario: N networks on one chassis, each a router `lr<i>` with an internal switch
//! `ls<i>` (10.0.<i>.0/24) holding VM `vm<i>` (10.0.<i>.2), and an uplink: gateway port
//! `lr<i>-ext` (172.16.0.<10+i>/24, gateway chassis hv1) on the shared provider switch `public`,
//! with a default route to 172.16.0.254. Plus helpers to trace between VMs, to read the peering
//! objects (ports named `ovnr-*`, routes through them) and to run a peering controller process
//! that is killed on drop.
//!
//! ```text
//!   vm1 ── ls1 ── lr1 ─┐                       (peer ports, once peered:
//!   vm2 ── ls2 ── lr2 ─┼── public (localnet)     lr1 ═══ lr2 directly)
//!   ...                ┘
//! ```

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::chassis::ChassisSpec;
use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::process::run;

/// One network of the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerNet {
    /// Its number (1..).
    pub index: u32,
    /// Router `lr<i>`.
    pub router: String,
    /// Internal switch `ls<i>`.
    pub switch: String,
    /// The VM's switch port `vm<i>`.
    pub vm: String,
    /// The VM's MAC.
    pub vm_mac: String,
    /// The VM's address, 10.0.<i>.2.
    pub vm_ip: String,
    /// The router's internal port MAC (the VM's gateway MAC).
    pub gw_mac: String,
    /// The gateway address, 10.0.<i>.1.
    pub gw_ip: String,
}

impl PeerNet {
    /// Creates the router, its switch and the VM port (bound to `chassis`) in `lab`'s NB.
    pub fn create(&self, lab: &Lab, chassis: &str) -> Result<()> {
        lab.lr_add(&self.router)?;
        lab.ls_add(&self.switch)?;
        lab.connect_router(
            &self.router,
            &format!("{}-int", self.router),
            &self.gw_mac,
            &[&format!("{}/24", self.gw_ip)],
            &self.switch,
        )?;
        lab.add_vif_port(
            &self.switch,
            &self.vm,
            &format!("{} {}", self.vm_mac, self.vm_ip),
            chassis,
        )?;
        Ok(())
    }

    /// The names and addresses of network `i`.
    pub fn new(i: u32) -> PeerNet {
        PeerNet {
            index: i,
            router: format!("lr{i}"),
            switch: format!("ls{i}"),
            vm: format!("vm{i}"),
            vm_mac: format!("00:00:00:00:{i:02x}:02"),
            vm_ip: format!("10.0.{i}.2"),
            gw_mac: format!("00:00:00:00:{i:02x}:01"),
            gw_ip: format!("10.0.{i}.1"),
        }
    }

    /// The router's uplink (gateway) port.
    pub fn uplink_port(&self) -> String {
        format!("{}-ext", self.router)
    }
}

/// The running scenario.
#[derive(Debug)]
pub struct PeeringLab {
    /// The OVN lab (one chassis, `hv1`).
    pub lab: Lab,
    /// The networks, in creation order.
    pub nets: Vec<PeerNet>,
}

impl PeeringLab {
    /// Starts OVN with chassis `hv1` (provider network `physnet1` on `br-ex`), the provider
    /// switch and networks 1..=`n`; waits until the VMs are up.
    pub fn start(n: u32) -> Result<PeeringLab> {
        let lab = Lab::builder()
            .chassis(ChassisSpec::new("hv1").bridge_mapping("physnet1", "br-ex"))
            .start()?;
        lab.ls_add("public")?;
        lab.lsp_add_localnet("public", "ln-public", "physnet1")?;
        let mut x = PeeringLab { lab, nets: vec![] };
        for i in 1..=n {
            x.add_network(i)?;
        }
        for net in &x.nets {
            x.lab.wait_lsp_up(&net.vm, crate::DEFAULT_TIMEOUT)?;
        }
        x.lab.sync_hv()?;
        Ok(x)
    }

    /// Creates network `i` (see the module documentation).
    pub fn add_network(&mut self, i: u32) -> Result<PeerNet> {
        let net = PeerNet::new(i);
        let lab = &self.lab;
        net.create(lab, "hv1")?;
        lab.connect_router(
            &net.router,
            &net.uplink_port(),
            &format!("00:00:00:00:{i:02x}:ff"),
            &[&format!("172.16.0.{}/24", 10 + i)],
            "public",
        )?;
        lab.lrp_set_gateway_chassis(&net.uplink_port(), "hv1", 10)?;
        lab.nbctl(&["lr-route-add", &net.router, "0.0.0.0/0", "172.16.0.254"])?;
        self.nets.push(net.clone());
        Ok(net)
    }

    /// Network `i` (1-based).
    pub fn net(&self, i: u32) -> &PeerNet {
        &self.nets[i as usize - 1]
    }

    /// Sets `external_ids:<key>=<value>` on `router` (labels, raw declarations).
    pub fn set_router_external_id(&self, router: &str, key: &str, value: &str) -> Result<()> {
        let value = value.replace('\\', "\\\\").replace('"', "\\\"");
        self.lab
            .nbctl(&[
                "set",
                "Logical_Router",
                router,
                &format!("external_ids:\"{key}\"=\"{value}\""),
            ])
            .map(drop)
    }

    /// `ovn-trace` of an IPv4 packet from `from`'s VM to `to`'s VM (after `--wait=sb sync`).
    pub fn trace(&self, from: &PeerNet, to: &PeerNet) -> Result<String> {
        self.lab.sync_sb()?;
        let flow = format!(
            "inport == \"{}\" && eth.src == {} && eth.dst == {} && ip4.src == {} && \
             ip4.dst == {} && ip.ttl == 64 && icmp4.type == 8",
            from.vm, from.vm_mac, from.gw_mac, from.vm_ip, to.vm_ip
        );
        run(Command::new("ovn-trace")
            .arg(format!("--db={}", self.lab.sb_remote()))
            .arg(&from.switch)
            .arg(flow))
    }

    /// Every peering object, one line each, sorted: `port <router> <name> <networks> peer=<peer>`
    /// and `route <router> <prefix> <nexthop> <output port>` (objects whose port name starts with
    /// `ovnr-`). Equal strings mean equal peering state.
    pub fn peering_state(&self) -> Result<String> {
        let mut lines = Vec::new();
        let routers = self
            .lab
            .nbctl(&["--bare", "--columns=name", "list", "Logical_Router"])?;
        for r in routers.lines().map(str::trim).filter(|l| !l.is_empty()) {
            for l in self.lab.nbctl(&["lrp-list", r])?.lines() {
                let Some(name) = l
                    .split_once('(')
                    .and_then(|(_, n)| n.strip_suffix(')'))
                    .filter(|n| n.starts_with("ovnr-"))
                else {
                    continue;
                };
                let networks = self
                    .lab
                    .nbctl(&["get", "Logical_Router_Port", name, "networks"])?;
                let peer = self
                    .lab
                    .nbctl(&["get", "Logical_Router_Port", name, "peer"])?;
                lines.push(format!("port {r} {name} {networks} peer={peer}"));
            }
            for l in self.lab.nbctl(&["lr-route-list", r])?.lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() >= 4 && f.last().is_some_and(|p| p.starts_with("ovnr-")) {
                    lines.push(format!("route {r} {} {} {}", f[0], f[1], f[f.len() - 1]));
                }
            }
        }
        lines.sort();
        Ok(lines.join("\n"))
    }
}

/// A process (e.g. `ovn-route controller`) run in the background with its output in a log file;
/// killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct BackgroundProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl BackgroundProcess {
    /// Starts `program args...`, appending its stdout and stderr to `log`.
    pub fn start(program: &Path, args: &[&str], log: &Path) -> Result<BackgroundProcess> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| LabError::io(format!("open {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| LabError::io("clone log file", e))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| LabError::io(format!("spawn {}", program.display()), e))?;
        Ok(BackgroundProcess {
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// SIGKILL and reap (no chance to clean anything up).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit; returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        match self.child.take() {
            Some(mut c) => {
                crate::process::signal(c.id(), libc::SIGTERM);
                c.wait().map(|s| s.success()).unwrap_or(false)
            }
            None => false,
        }
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        crate::util::tail_file(&self.log, n)
    }
}

impl Drop for BackgroundProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
