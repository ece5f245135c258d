//! OVN Interconnection in the lab: one shared IC-NB and IC-SB, and N availability zones (AZ),
//! each a [`Lab`] of its own (NB, SB, ovn-northd, one chassis marked as interconnection gateway
//! with `external_ids:ovn-is-interconn=true`) plus its own `ovn-ic`. AZ `i` is called `az<i>`,
//! its chassis `hv<i>` (encap IP 192.168.<i>.1), and holds network `i` of the peering scenario
//! ([`PeerNet`]): router `lr<i>`, switch `ls<i>` (10.0.<i>.0/24) with VM `vm<i>`, no uplink.
//! [`IcLab::start_ssl`] also serves the IC-NB over `ssl:` with certificates from a [`Pki`].
//!
//! ```text
//!   az1: vm1 ── ls1 ── lr1 ─┐                   ┌─ lr2 ── ls2 ── vm2 :az2
//!                           └── transit switch ─┘    (IC-NB / IC-SB shared, ovn-ic in each AZ)
//! ```

use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::chassis::ChassisSpec;
use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::ovsdb::OvsdbServer;
use crate::peering::PeerNet;
use crate::pki::Pki;
use crate::process::{run, Daemon, DaemonSpec};
use crate::util::{lab_tempdir, path_str, wait_until};
use crate::wire::ovs_env;
use crate::{IC_NB_SCHEMA, IC_SB_SCHEMA};

/// One availability zone.
#[derive(Debug)]
pub struct Az {
    /// Its name (`NB_Global.name`), `az<i>`.
    pub name: String,
    /// Its chassis' name, `hv<i>`.
    pub chassis: String,
    /// Its network.
    pub net: PeerNet,
    ic: Daemon,
    /// Its OVN deployment.
    pub lab: Lab,
}

impl Az {
    /// `ovn-trace` of an ICMP echo from this AZ's VM to `dst_ip` (after `--wait=hv sync`).
    pub fn trace_to(&self, dst_ip: &str) -> Result<String> {
        self.lab.sync_hv()?;
        let n = &self.net;
        let flow = format!(
            "inport == \"{}\" && eth.src == {} && eth.dst == {} && ip4.src == {} && \
             ip4.dst == {dst_ip} && ip.ttl == 64 && icmp4.type == 8",
            n.vm, n.vm_mac, n.gw_mac, n.vm_ip
        );
        run(Command::new("ovn-trace")
            .arg(format!("--db={}", self.lab.sb_remote()))
            .arg(&n.switch)
            .arg(flow))
    }

    /// Gives this AZ's network the IPv6 subnet `fd00:<i>::/64` (router address `fd00:<i>::1`
    /// on its internal port); returns the subnet.
    pub fn add_ipv6_subnet(&self) -> Result<String> {
        let i = self.net.index;
        self.lab.nbctl(&[
            "add",
            "Logical_Router_Port",
            &format!("{}-int", self.net.router),
            "networks",
            &format!("\"fd00:{i}::1/64\""),
        ])?;
        Ok(format!("fd00:{i}::/64"))
    }

    /// The `lr-route-list` of this AZ's router.
    pub fn routes(&self) -> Result<String> {
        self.lab.nbctl(&["lr-route-list", &self.net.router])
    }

    /// Log file of this AZ's ovn-ic.
    pub fn ic_log(&self) -> String {
        crate::util::tail_file(self.ic.log_path(), 40)
    }
}

/// The interconnection scenario. Dropping it stops every ovn-ic, AZ and IC database.
#[derive(Debug)]
pub struct IcLab {
    /// The availability zones (dropped first).
    pub azs: Vec<Az>,
    /// The shared IC-NB.
    pub ic_nb: OvsdbServer,
    /// The shared IC-SB.
    pub ic_sb: OvsdbServer,
    /// With [`IcLab::start_ssl`]: the PKI whose server certificate the IC-NB presents on its
    /// `ssl:` remote (clients use [`Pki::client`]).
    pub pki: Option<Pki>,
    _tmp: TempDir,
}

impl IcLab {
    /// Starts the IC databases and `n` AZs, and waits until every VM is up and every AZ is
    /// registered in the IC-SB.
    pub fn start(n: u32) -> Result<IcLab> {
        Self::start_with(n, None)
    }

    /// As [`IcLab::start`], with the IC-NB also served over `ssl:` (see
    /// [`IcLab::ic_nb_ssl_remote`]) with certificates from a fresh [`Pki`]. ovn-ic itself keeps
    /// using the IC-NB's `unix:` socket.
    pub fn start_ssl(n: u32) -> Result<IcLab> {
        Self::start_with(n, Some(Pki::new()?))
    }

    fn start_with(n: u32, pki: Option<Pki>) -> Result<IcLab> {
        let tmp = lab_tempdir("ic")?;
        let dir = tmp.path().to_path_buf();
        let mut nb = OvsdbServer::builder(IC_NB_SCHEMA).name("ic-nb").dir(&dir);
        if let Some(p) = &pki {
            nb = nb.ssl(p.server());
        }
        let ic_nb = nb.start()?;
        let ic_sb = OvsdbServer::builder(IC_SB_SCHEMA)
            .name("ic-sb")
            .dir(&dir)
            .start()?;
        let mut x = IcLab {
            azs: vec![],
            ic_nb,
            ic_sb,
            pki,
            _tmp: tmp,
        };
        x.ic_nbctl(&["init"])?;
        x.ic_sbctl(&["init"])?;
        for i in 1..=n {
            let az = x.start_az(i)?;
            x.azs.push(az);
        }
        for az in &x.azs {
            az.lab.wait_lsp_up(&az.net.vm, crate::DEFAULT_TIMEOUT)?;
        }
        wait_until("every AZ in the IC-SB", crate::DEFAULT_TIMEOUT, |last| {
            let out = x.ic_sbctl(&["--bare", "--columns=name", "list", "Availability_Zone"])?;
            *last = out.clone();
            Ok((out.lines().filter(|l| !l.trim().is_empty()).count() == n as usize).then_some(()))
        })?;
        Ok(x)
    }

    fn start_az(&self, i: u32) -> Result<Az> {
        let name = format!("az{i}");
        let chassis = format!("hv{i}");
        let lab = Lab::builder()
            .chassis(
                ChassisSpec::new(&chassis)
                    .encap_ip(&format!("192.168.{i}.1"))
                    .external_id("ovn-is-interconn", "true"),
            )
            .start()?;
        lab.nbctl(&["set", "NB_Global", ".", &format!("name={name}")])?;
        let net = PeerNet::new(i);
        net.create(&lab, &chassis)?;
        let dir = lab.dir().to_path_buf();
        let ctl = dir.join("ovn-ic.ctl");
        let mut spec = DaemonSpec::new("ovn-ic", "ovn-ic", &dir, "ovn-ic").args([
            "--no-chdir".to_string(),
            format!("--pidfile={}", path_str(&dir.join("ovn-ic.pid"))),
            format!("--log-file={}", path_str(&dir.join("ovn-ic.log"))),
            format!("--unixctl={}", path_str(&ctl)),
            format!("--ovnnb-db={}", lab.nb_remote()),
            format!("--ovnsb-db={}", lab.sb_remote()),
            format!("--ic-nb-db={}", self.ic_nb.unix_remote()),
            format!("--ic-sb-db={}", self.ic_sb.unix_remote()),
        ]);
        spec.env = ovs_env(&dir);
        spec.ready_paths = vec![ctl];
        let ic = Daemon::start(spec)?;
        Ok(Az {
            name,
            chassis,
            net,
            ic,
            lab,
        })
    }

    /// The IC-NB's `ssl:127.0.0.1:<port>` remote (with [`IcLab::start_ssl`] only).
    pub fn ic_nb_ssl_remote(&self) -> Option<String> {
        self.ic_nb.ssl_remote()
    }

    /// AZ `i` (1-based).
    pub fn az(&self, i: u32) -> &Az {
        &self.azs[i as usize - 1]
    }

    /// Runs `ovn-ic-nbctl --db=<ic-nb> ARGS...`.
    pub fn ic_nbctl(&self, args: &[&str]) -> Result<String> {
        run(Command::new("ovn-ic-nbctl")
            .arg(format!("--db={}", self.ic_nb.unix_remote()))
            .arg("--timeout=20")
            .args(args))
    }

    /// Runs `ovn-ic-sbctl --db=<ic-sb> ARGS...`.
    pub fn ic_sbctl(&self, args: &[&str]) -> Result<String> {
        run(Command::new("ovn-ic-sbctl")
            .arg(format!("--db={}", self.ic_sb.unix_remote()))
            .arg("--timeout=20")
            .args(args))
    }

    /// The transit switches' names in the IC-NB, sorted.
    pub fn transit_switches(&self) -> Result<Vec<String>> {
        let out = self.ic_nbctl(&["--bare", "--columns=name", "list", "Transit_Switch"])?;
        let mut v: Vec<String> = out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        v.sort();
        Ok(v)
    }

    /// `logical_port` of every IC-SB `Port_Binding` on transit switch `ts`, sorted.
    pub fn ic_port_bindings(&self, ts: &str) -> Result<Vec<String>> {
        let out = self.ic_sbctl(&[
            "--bare",
            "--columns=logical_port",
            "find",
            "Port_Binding",
            &format!("transit_switch={ts}"),
        ])?;
        let mut v: Vec<String> = out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        v.sort();
        Ok(v)
    }

    /// Waits until `f` holds (polling), reporting `what` and the last observation on timeout.
    pub fn wait(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&mut String) -> Result<bool>,
    ) -> Result<()> {
        wait_until(what, timeout, |last| Ok(f(last)?.then_some(()))).map_err(|e| {
            LabError::Invalid(format!("{e}\n--- az1 ovn-ic:\n{}", self.az(1).ic_log()))
        })
    }
}
