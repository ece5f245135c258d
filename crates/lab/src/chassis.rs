//! One OVN chassis: its own Open_vSwitch database, `ovs-vswitchd` with the dummy datapath and
//! `ovn-controller`, all inside the chassis' network namespace.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{LabError, Result};
use crate::netns::Netns;
use crate::ovsdb::OvsdbServer;
use crate::process::{run, Daemon, DaemonSpec};
use crate::util::{mkdir, path_str};
use crate::wire::{ovs_env, vswitchd_spec, Wire};
use crate::VSWITCH_SCHEMA;

/// What a chassis looks like: its name (= `system-id`), tunnel endpoint and provider bridges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChassisSpec {
    /// Chassis name and OVS `external_ids:system-id`.
    pub name: String,
    /// `external_ids:ovn-encap-ip`; default `192.168.0.<index+1>` (the wire's subnet).
    pub encap_ip: Option<String>,
    /// `(physical network, bridge)` pairs for `ovn-bridge-mappings`; each bridge is created with
    /// `datapath-type=dummy`.
    pub bridge_mappings: Vec<(String, String)>,
    /// Extra `Open_vSwitch . external_ids` keys.
    pub external_ids: Vec<(String, String)>,
}

impl ChassisSpec {
    /// A chassis called `name` with the default encap IP and no provider bridges.
    pub fn new(name: &str) -> Self {
        ChassisSpec {
            name: name.to_string(),
            encap_ip: None,
            bridge_mappings: Vec::new(),
            external_ids: Vec::new(),
        }
    }

    /// Sets the tunnel endpoint IP.
    pub fn encap_ip(mut self, ip: &str) -> Self {
        self.encap_ip = Some(ip.to_string());
        self
    }

    /// Maps physical network `network` to provider bridge `bridge`.
    pub fn bridge_mapping(mut self, network: &str, bridge: &str) -> Self {
        self.bridge_mappings
            .push((network.to_string(), bridge.to_string()));
        self
    }

    /// Adds an `Open_vSwitch . external_ids:KEY=VALUE` setting.
    pub fn external_id(mut self, key: &str, value: &str) -> Self {
        self.external_ids.push((key.to_string(), value.to_string()));
        self
    }
}

/// A running chassis. Its daemons run in its own network namespace (the place for the kernel
/// side of its provider bridges), with `OVS_RUNDIR` etc. pointing at its own directory.
/// Everything is stopped, and the namespace deleted, on drop.
#[derive(Debug)]
pub struct Chassis {
    controller: Daemon,
    vswitchd: Daemon,
    ovsdb: OvsdbServer,
    netns: Netns,
    name: String,
    encap_ip: String,
    dir: PathBuf,
    sb_remote: String,
}

impl Chassis {
    /// Starts a chassis in `dir` connected to the southbound database at `sb_remote`.
    /// `encap_ip` must be set in `spec` (the lab fills in a default). With `wire`, a
    /// `br-phys` bridge is plugged into the wire and given the encap IP and a route.
    pub fn start(
        spec: &ChassisSpec,
        dir: &Path,
        sb_remote: &str,
        wire: Option<&Wire>,
    ) -> Result<Chassis> {
        let encap_ip = spec
            .encap_ip
            .clone()
            .ok_or_else(|| LabError::Invalid(format!("chassis {} has no encap IP", spec.name)))?;
        mkdir(dir)?;
        let netns = Netns::new(&spec.name)?;
        let ovsdb = OvsdbServer::builder(VSWITCH_SCHEMA)
            .name("db")
            .dir(dir)
            .start()?;
        let vsctl_base = |args: &[&str]| -> Result<String> {
            run(Command::new("ovs-vsctl")
                .envs(ovs_env(dir))
                .arg(format!("--db={}", ovsdb.unix_remote()))
                .arg("--timeout=20")
                .args(args))
        };
        vsctl_base(&["--no-wait", "init"])?;
        let vswitchd = Daemon::start(vswitchd_spec(
            &format!("{}/ovs-vswitchd", spec.name),
            dir,
            &ovsdb,
            Some(netns.name()),
        ))?;

        let mut args: Vec<String> = vec![
            "set".into(),
            "Open_vSwitch".into(),
            ".".into(),
            format!("external_ids:system-id={}", spec.name),
            format!("external_ids:hostname={}", spec.name),
            format!("external_ids:ovn-remote=\"{sb_remote}\""),
            "external_ids:ovn-encap-type=geneve".into(),
            format!("external_ids:ovn-encap-ip=\"{encap_ip}\""),
        ];
        if !spec.bridge_mappings.is_empty() {
            let m: Vec<String> = spec
                .bridge_mappings
                .iter()
                .map(|(n, b)| format!("{n}:{b}"))
                .collect();
            args.push(format!(
                "external_ids:ovn-bridge-mappings=\"{}\"",
                m.join(",")
            ));
        }
        for (k, v) in &spec.external_ids {
            args.push(format!("external_ids:{k}=\"{v}\""));
        }
        for a in [
            "--",
            "--may-exist",
            "add-br",
            "br-int",
            "--",
            "set",
            "bridge",
            "br-int",
            "datapath-type=dummy",
            "fail-mode=secure",
            "other-config:disable-in-band=true",
        ] {
            args.push(a.into());
        }
        for (_, bridge) in &spec.bridge_mappings {
            for a in [
                "--",
                "--may-exist",
                "add-br",
                bridge,
                "--",
                "set",
                "bridge",
                bridge,
            ] {
                args.push(a.into());
            }
            args.push("datapath-type=dummy".into());
        }
        if let Some(wire) = wire {
            let stream = wire.attach(&spec.name)?;
            let eth = format!("eth-{}", spec.name);
            for a in [
                "--",
                "--may-exist",
                "add-br",
                "br-phys",
                "--",
                "set",
                "bridge",
                "br-phys",
                "datapath-type=dummy",
                "fail-mode=standalone",
                "--",
                "add-port",
                "br-phys",
                &eth,
                "--",
                "set",
                "interface",
                &eth,
                "type=dummy",
            ] {
                args.push(a.into());
            }
            args.push(format!("options:stream=\"{stream}\""));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        vsctl_base(&args)?;

        let vswitchd_ctl = dir.join("ovs-vswitchd.ctl");
        if wire.is_some() {
            let cidr = format!("{encap_ip}/24");
            let appctl = |a: &[&str]| -> Result<String> {
                run(Command::new("ovs-appctl")
                    .envs(ovs_env(dir))
                    .arg("-t")
                    .arg(&vswitchd_ctl)
                    .args(a))
            };
            appctl(&["netdev-dummy/ip4addr", "br-phys", &cidr])?;
            appctl(&["ovs/route/add", &cidr, "br-phys"])?;
        }

        // ovn-controller (unlike the other daemons) has no --unixctl option: its control socket
        // is <OVN_RUNDIR>/ovn-controller.<pid>.ctl.
        let ctl = dir.join("ovn-controller.{pid}.ctl");
        let mut cspec = DaemonSpec::new(
            format!("{}/ovn-controller", spec.name),
            "ovn-controller",
            dir,
            "ovn-controller",
        )
        .args([
            "--no-chdir".to_string(),
            format!("--pidfile={}", path_str(&dir.join("ovn-controller.pid"))),
            format!("--log-file={}", path_str(&dir.join("ovn-controller.log"))),
            ovsdb.unix_remote(),
        ]);
        cspec.env = ovs_env(dir);
        cspec.netns = Some(netns.name().to_string());
        cspec.ready_paths = vec![ctl];
        let controller = Daemon::start(cspec)?;

        Ok(Chassis {
            controller,
            vswitchd,
            ovsdb,
            netns,
            name: spec.name.clone(),
            encap_ip,
            dir: dir.to_path_buf(),
            sb_remote: sb_remote.to_string(),
        })
    }

    /// The chassis name (its `system-id`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its tunnel endpoint IP.
    pub fn encap_ip(&self) -> &str {
        &self.encap_ip
    }

    /// Its directory (`OVS_RUNDIR`, logs, databases, sockets).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The southbound remote its ovn-controller uses.
    pub fn sb_remote(&self) -> &str {
        &self.sb_remote
    }

    /// Its network namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// `unix:<path>` of its Open_vSwitch database socket.
    pub fn ovs_remote(&self) -> String {
        self.ovsdb.unix_remote()
    }

    /// Its Open_vSwitch database server.
    pub fn ovsdb(&self) -> &OvsdbServer {
        &self.ovsdb
    }

    /// The `OVS_RUNDIR`/`OVS_LOGDIR`/`OVS_DBDIR`/`OVN_RUNDIR`... variables of this chassis.
    pub fn env(&self) -> Vec<(String, String)> {
        ovs_env(&self.dir)
    }

    /// A [`Command`] for `program` with this chassis' environment.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.envs(ovs_env(&self.dir));
        c
    }

    /// Runs `ovs-vsctl --db=<chassis db> --timeout=20 ARGS...`.
    pub fn vsctl(&self, args: &[&str]) -> Result<String> {
        run(self
            .command("ovs-vsctl")
            .arg(format!("--db={}", self.ovs_remote()))
            .arg("--timeout=20")
            .args(args))
    }

    /// Runs `ovs-appctl -t <ovs-vswitchd control socket> ARGS...`.
    pub fn appctl(&self, args: &[&str]) -> Result<String> {
        run(self
            .command("ovs-appctl")
            .arg("-t")
            .arg(self.dir.join("ovs-vswitchd.ctl"))
            .args(args))
    }

    /// Runs `ovs-appctl -t <ovn-controller control socket> ARGS...`.
    pub fn controller_appctl(&self, args: &[&str]) -> Result<String> {
        run(self
            .command("ovs-appctl")
            .arg("-t")
            .arg(self.dir.join(format!(
                "ovn-controller.{}.ctl",
                self.controller.pid().unwrap_or(0)
            )))
            .args(args))
    }

    /// `unix:<rundir>/<bridge>.mgmt`: the OpenFlow management socket of a bridge.
    pub fn ofctl_target(&self, bridge: &str) -> String {
        format!(
            "unix:{}",
            path_str(&self.dir.join(format!("{bridge}.mgmt")))
        )
    }

    /// Runs `ovs-ofctl ARGS...` (name the target with [`Chassis::ofctl_target`]).
    pub fn ofctl(&self, args: &[&str]) -> Result<String> {
        run(self.command("ovs-ofctl").args(args))
    }

    /// `ovs-ofctl dump-flows` of `bridge` through its management socket.
    pub fn ofctl_dump_flows(&self, bridge: &str) -> Result<String> {
        self.ofctl(&["dump-flows", &self.ofctl_target(bridge)])
    }

    /// Adds dummy interface `port` to `br-int` with `external_ids:iface-id=<iface_id>`, so that
    /// ovn-controller claims logical port `iface_id`.
    pub fn add_vif(&self, port: &str, iface_id: &str) -> Result<()> {
        self.vsctl(&[
            "add-port",
            "br-int",
            port,
            "--",
            "set",
            "interface",
            port,
            "type=dummy",
            &format!("external_ids:iface-id=\"{iface_id}\""),
        ])?;
        Ok(())
    }

    /// Log file of ovn-controller.
    pub fn controller_log_path(&self) -> &Path {
        self.controller.log_path()
    }

    /// Log file of ovs-vswitchd.
    pub fn vswitchd_log_path(&self) -> &Path {
        self.vswitchd.log_path()
    }

    /// Process id of ovn-controller while it runs.
    pub fn controller_pid(&self) -> Option<u32> {
        self.controller.pid()
    }

    /// Kills ovn-controller with SIGKILL.
    pub fn kill_controller(&mut self) {
        self.controller.kill();
    }

    /// Starts ovn-controller again (stopping it first if it runs).
    pub fn restart_controller(&mut self) -> Result<()> {
        self.controller.launch()
    }

    /// Checks that all three daemons still run; the error quotes the log of the one that died.
    pub fn check_alive(&mut self) -> Result<()> {
        self.controller.check_alive()?;
        self.vswitchd.check_alive()?;
        self.ovsdb.check_alive()
    }

    pub(crate) fn send_term(&self) {
        self.controller.send_term();
        self.vswitchd.send_term();
        self.ovsdb.daemon().send_term();
    }
}
