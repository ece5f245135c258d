//! The "wire": one extra Open vSwitch whose bridge `n1` joins the chassis' `br-phys` bridges so
//! that tunnels (and BFD over them) really carry packets between dummy-datapath chassis.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Result;
use crate::ovsdb::OvsdbServer;
use crate::process::{run, Daemon, DaemonSpec};
use crate::util::{mkdir, path_str};
use crate::VSWITCH_SCHEMA;

/// An ovsdb-server + `ovs-vswitchd --enable-dummy=system` holding the standalone bridge `n1`;
/// each attached chassis gets a dummy port on `n1` listening on a unix stream socket.
#[derive(Debug)]
pub struct Wire {
    vswitchd: Daemon,
    ovsdb: OvsdbServer,
    dir: PathBuf,
}

impl Wire {
    /// Starts the wire's daemons in `dir` and creates bridge `n1`.
    pub fn start(dir: &Path) -> Result<Wire> {
        mkdir(dir)?;
        let ovsdb = OvsdbServer::builder(VSWITCH_SCHEMA)
            .name("db")
            .dir(dir)
            .start()?;
        let env = ovs_env(dir);
        run(Command::new("ovs-vsctl")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg(format!("--db={}", ovsdb.unix_remote()))
            .args(["--no-wait", "init"]))?;
        let vswitchd = Daemon::start(vswitchd_spec("wire/ovs-vswitchd", dir, &ovsdb, None))?;
        let wire = Wire {
            vswitchd,
            ovsdb,
            dir: dir.to_path_buf(),
        };
        wire.vsctl(&[
            "add-br",
            "n1",
            "--",
            "set",
            "bridge",
            "n1",
            "datapath-type=dummy",
            "fail-mode=standalone",
        ])?;
        Ok(wire)
    }

    /// Adds port `n1-<name>` to `n1`, listening on a unix socket; returns the `unix:<path>`
    /// stream that the peer's dummy interface must connect to (`options:stream=`).
    pub fn attach(&self, name: &str) -> Result<String> {
        let port = format!("n1-{name}");
        let sock = self.dir.join(format!("{port}.sock"));
        self.vsctl(&[
            "add-port",
            "n1",
            &port,
            "--",
            "set",
            "interface",
            &port,
            "type=dummy",
            &format!("options:pstream=punix:{}", path_str(&sock)),
        ])?;
        Ok(format!("unix:{}", path_str(&sock)))
    }

    /// Runs `ovs-vsctl` against the wire's database.
    pub fn vsctl(&self, args: &[&str]) -> Result<String> {
        run(Command::new("ovs-vsctl")
            .envs(ovs_env(&self.dir))
            .arg(format!("--db={}", self.ovsdb.unix_remote()))
            .arg("--timeout=20")
            .args(args))
    }

    /// Directory with the wire's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn send_term(&self) {
        self.vswitchd.send_term();
        self.ovsdb.daemon().send_term();
    }
}

/// The `OVS_*`/`OVN_*` directory variables that keep one sandbox's sockets apart from others.
pub(crate) fn ovs_env(dir: &Path) -> Vec<(String, String)> {
    let d = path_str(dir);
    [
        "OVS_RUNDIR",
        "OVS_LOGDIR",
        "OVS_DBDIR",
        "OVS_SYSCONFDIR",
        "OVN_RUNDIR",
        "OVN_LOGDIR",
        "OVN_DBDIR",
        "OVN_SYSCONFDIR",
    ]
    .iter()
    .map(|k| (k.to_string(), d.clone()))
    .collect()
}

/// `ovs-vswitchd --enable-dummy=system` on `ovsdb`, with pidfile, log and control socket in
/// `dir`.
pub(crate) fn vswitchd_spec(
    label: &str,
    dir: &Path,
    ovsdb: &OvsdbServer,
    netns: Option<&str>,
) -> DaemonSpec {
    let ctl = dir.join("ovs-vswitchd.ctl");
    let mut spec = DaemonSpec::new(label, "ovs-vswitchd", dir, "ovs-vswitchd").args([
        "--no-chdir".to_string(),
        format!("--pidfile={}", path_str(&dir.join("ovs-vswitchd.pid"))),
        format!("--log-file={}", path_str(&dir.join("ovs-vswitchd.log"))),
        format!("--unixctl={}", path_str(&ctl)),
        "--enable-dummy=system".to_string(),
        ovsdb.unix_remote(),
    ]);
    spec.env = ovs_env(dir);
    spec.netns = netns.map(str::to_string);
    spec.ready_paths = vec![ctl];
    spec
}
