//! A whole OVN deployment: NB and SB databases, ovn-northd, chassis and optionally the wire.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::chassis::{Chassis, ChassisSpec};
use crate::error::{LabError, Result};
use crate::ovsdb::{OvsdbCluster, OvsdbServer, SslConfig};
use crate::process::{run, Daemon, DaemonSpec};
use crate::util::{lab_tempdir, path_str, wait_until};
use crate::wire::{ovs_env, Wire};
use crate::{NB_SCHEMA, SB_SCHEMA};

/// Default timeout of the lab's own waits (chassis registration, bindings).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A northbound or southbound database: one server or a raft cluster.
#[derive(Debug)]
pub enum Database {
    /// A single ovsdb-server (boxed: it is much larger than a cluster handle).
    Standalone(Box<OvsdbServer>),
    /// A raft cluster.
    Clustered(OvsdbCluster),
}

impl Database {
    /// The remote clients should use: the `unix:` socket of a standalone server, or the
    /// comma-separated `tcp:` remotes of a cluster.
    pub fn remote(&self) -> String {
        match self {
            Database::Standalone(s) => s.unix_remote(),
            Database::Clustered(c) => c.remote(),
        }
    }

    /// `unix:` remote(s) only: the server's socket, or all members' sockets of a cluster. Use
    /// these from inside network namespaces, where `tcp:127.0.0.1:...` is a different loopback.
    pub fn unix_remote(&self) -> String {
        match self {
            Database::Standalone(s) => s.unix_remote(),
            Database::Clustered(c) => c.unix_remote(),
        }
    }

    /// The standalone server, if this is one.
    pub fn server(&self) -> Option<&OvsdbServer> {
        match self {
            Database::Standalone(s) => Some(s),
            Database::Clustered(_) => None,
        }
    }

    /// The standalone server, mutably (to kill or restart it).
    pub fn server_mut(&mut self) -> Option<&mut OvsdbServer> {
        match self {
            Database::Standalone(s) => Some(s),
            Database::Clustered(_) => None,
        }
    }

    /// The cluster, if this is one.
    pub fn cluster(&self) -> Option<&OvsdbCluster> {
        match self {
            Database::Clustered(c) => Some(c),
            Database::Standalone(_) => None,
        }
    }

    /// The cluster, mutably (to kill or restart members).
    pub fn cluster_mut(&mut self) -> Option<&mut OvsdbCluster> {
        match self {
            Database::Clustered(c) => Some(c),
            Database::Standalone(_) => None,
        }
    }

    fn send_term(&self) {
        match self {
            Database::Standalone(s) => s.daemon().send_term(),
            Database::Clustered(c) => c.daemons().for_each(Daemon::send_term),
        }
    }
}

/// Options for a [`Lab`]; see [`Lab::builder`].
#[derive(Debug, Clone, Default)]
pub struct LabBuilder {
    chassis: Vec<ChassisSpec>,
    cluster_members: usize,
    wire: bool,
    db_tcp: bool,
    db_ssl: Option<SslConfig>,
}

impl LabBuilder {
    /// Adds a chassis.
    pub fn chassis(mut self, spec: ChassisSpec) -> Self {
        self.chassis.push(spec);
        self
    }

    /// Runs NB and SB as raft clusters of `members` servers (0 or 1 = standalone servers).
    pub fn clustered(mut self, members: usize) -> Self {
        self.cluster_members = members;
        self
    }

    /// Joins the chassis with the wire (needed for tunnels, BFD and HA gateways).
    pub fn wire(mut self, on: bool) -> Self {
        self.wire = on;
        self
    }

    /// Standalone NB/SB servers also listen on `ptcp:` (see [`OvsdbServer::tcp_remote`]).
    pub fn db_tcp(mut self, on: bool) -> Self {
        self.db_tcp = on;
        self
    }

    /// Standalone NB/SB servers also listen on `pssl:` with these files.
    pub fn db_ssl(mut self, ssl: SslConfig) -> Self {
        self.db_ssl = Some(ssl);
        self
    }

    /// Starts everything and waits until every chassis is registered in the southbound
    /// database and has caught up with the northbound configuration.
    pub fn start(self) -> Result<Lab> {
        let tmp = lab_tempdir("lab")?;
        let dir = tmp.path().to_path_buf();
        let db = |name: &str, schema: &str| -> Result<Database> {
            if self.cluster_members > 1 {
                Ok(Database::Clustered(
                    OvsdbCluster::builder(schema)
                        .name(name)
                        .members(self.cluster_members)
                        .dir(&dir)
                        .start()?,
                ))
            } else {
                let mut b = OvsdbServer::builder(schema)
                    .name(name)
                    .dir(&dir)
                    .tcp(self.db_tcp);
                if let Some(ssl) = &self.db_ssl {
                    b = b.ssl(ssl.clone());
                }
                Ok(Database::Standalone(Box::new(b.start()?)))
            }
        };
        let nb = db("nb", NB_SCHEMA)?;
        let sb = db("sb", SB_SCHEMA)?;
        let ctl = dir.join("ovn-northd.ctl");
        let mut spec = DaemonSpec::new("ovn-northd", "ovn-northd", &dir, "ovn-northd").args([
            "--no-chdir".to_string(),
            format!("--pidfile={}", path_str(&dir.join("ovn-northd.pid"))),
            format!("--log-file={}", path_str(&dir.join("ovn-northd.log"))),
            format!("--unixctl={}", path_str(&ctl)),
            format!("--ovnnb-db={}", nb.remote()),
            format!("--ovnsb-db={}", sb.remote()),
        ]);
        spec.env = ovs_env(&dir);
        spec.ready_paths = vec![ctl];
        let northd = Daemon::start(spec)?;
        let mut lab = Lab {
            chassis: Vec::new(),
            wire: None,
            northd,
            sb,
            nb,
            dir: dir.clone(),
            _tmp: tmp,
        };
        lab.nbctl(&["init"])?;
        lab.nbctl(&["--wait=sb", "sync"])?;
        if self.wire {
            lab.wire = Some(Wire::start(&dir.join("wire"))?);
        }
        // The chassis' daemons run in their namespaces: only unix sockets reach the SB there.
        let sb_remote = lab.sb.unix_remote();
        for (i, spec) in self.chassis.iter().enumerate() {
            let mut spec = spec.clone();
            if spec.encap_ip.is_none() {
                spec.encap_ip = Some(format!("192.168.0.{}", i + 1));
            }
            let c = Chassis::start(&spec, &dir.join(&spec.name), &sb_remote, lab.wire.as_ref())?;
            lab.chassis.push(c);
        }
        lab.wait_chassis_registered(DEFAULT_TIMEOUT)?;
        if !lab.chassis.is_empty() {
            lab.sync_hv()?;
        }
        Ok(lab)
    }
}

/// A running OVN deployment. Dropping it stops every daemon (SIGTERM to all, then SIGKILL to
/// stragglers), deletes the chassis' namespaces and removes its temporary directory.
#[derive(Debug)]
pub struct Lab {
    chassis: Vec<Chassis>,
    wire: Option<Wire>,
    northd: Daemon,
    sb: Database,
    nb: Database,
    dir: PathBuf,
    _tmp: TempDir,
}

impl Lab {
    /// Options for a lab (no chassis, standalone databases, no wire by default).
    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }

    /// The lab's temporary directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The northbound database.
    pub fn nb(&self) -> &Database {
        &self.nb
    }

    /// The northbound database, mutably (kill/restart).
    pub fn nb_mut(&mut self) -> &mut Database {
        &mut self.nb
    }

    /// The southbound database.
    pub fn sb(&self) -> &Database {
        &self.sb
    }

    /// The southbound database, mutably (kill/restart).
    pub fn sb_mut(&mut self) -> &mut Database {
        &mut self.sb
    }

    /// Remote of the northbound database (see [`Database::remote`]).
    pub fn nb_remote(&self) -> String {
        self.nb.remote()
    }

    /// Remote of the southbound database.
    pub fn sb_remote(&self) -> String {
        self.sb.remote()
    }

    /// Log file of ovn-northd.
    pub fn northd_log_path(&self) -> &Path {
        self.northd.log_path()
    }

    /// The wire, if the lab has one.
    pub fn wire(&self) -> Option<&Wire> {
        self.wire.as_ref()
    }

    /// All chassis in creation order.
    pub fn chassis_list(&self) -> &[Chassis] {
        &self.chassis
    }

    /// Chassis `i` (panics when out of range, like indexing).
    pub fn chassis(&self, i: usize) -> &Chassis {
        &self.chassis[i]
    }

    /// Chassis `i`, mutably.
    pub fn chassis_mut(&mut self, i: usize) -> &mut Chassis {
        &mut self.chassis[i]
    }

    /// The chassis called `name`.
    pub fn chassis_named(&self, name: &str) -> Result<&Chassis> {
        self.chassis
            .iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| LabError::Invalid(format!("the lab has no chassis {name:?}")))
    }

    fn ctl(&self, program: &str, remote: String, args: &[&str]) -> Result<String> {
        run(Command::new(program)
            .envs(ovs_env(&self.dir))
            .arg(format!("--db={remote}"))
            .arg("--timeout=20")
            .args(args))
    }

    /// Runs `ovn-nbctl --db=<nb> --timeout=20 ARGS...`; returns stdout without trailing
    /// whitespace.
    pub fn nbctl(&self, args: &[&str]) -> Result<String> {
        self.ctl("ovn-nbctl", self.nb.remote(), args)
    }

    /// Runs `ovn-sbctl --db=<sb> --timeout=20 ARGS...`.
    pub fn sbctl(&self, args: &[&str]) -> Result<String> {
        self.ctl("ovn-sbctl", self.sb.remote(), args)
    }

    /// `ovn-nbctl --wait=hv sync`: returns once every chassis has applied the current NB state.
    pub fn sync_hv(&self) -> Result<()> {
        self.nbctl(&["--wait=hv", "sync"]).map(drop)
    }

    /// `ovn-nbctl --wait=sb sync`: returns once ovn-northd has applied the current NB state.
    pub fn sync_sb(&self) -> Result<()> {
        self.nbctl(&["--wait=sb", "sync"]).map(drop)
    }

    /// Names of the chassis registered in the southbound `Chassis` table.
    pub fn registered_chassis(&self) -> Result<Vec<String>> {
        Ok(self
            .sbctl(&["--bare", "--columns=name", "list", "Chassis"])?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Waits until every chassis of the lab appears in the southbound `Chassis` table.
    pub fn wait_chassis_registered(&self, timeout: Duration) -> Result<()> {
        let want: Vec<&str> = self.chassis.iter().map(Chassis::name).collect();
        let mut missing: Vec<&Chassis> = Vec::new();
        let result = wait_until(
            &format!("chassis {want:?} to register in the southbound database"),
            timeout,
            |last| {
                let have = self.registered_chassis()?;
                *last = format!("registered: {have:?}");
                missing = self
                    .chassis
                    .iter()
                    .filter(|c| !have.iter().any(|h| h == c.name()))
                    .collect();
                Ok(missing.is_empty().then_some(()))
            },
        );
        result.map_err(|e| match e {
            LabError::WaitTimeout {
                what,
                timeout,
                mut last,
            } => {
                for c in missing {
                    last.push_str(&format!(
                        "\n[{} ovn-controller log]\n{}",
                        c.name(),
                        crate::util::tail_file(c.controller_log_path(), 10)
                    ));
                }
                LabError::WaitTimeout {
                    what,
                    timeout,
                    last,
                }
            }
            other => other,
        })
    }

    /// Checks that every daemon of the lab is still running.
    pub fn check_alive(&mut self) -> Result<()> {
        self.northd.check_alive()?;
        for c in &mut self.chassis {
            c.check_alive()?;
        }
        Ok(())
    }

    // ----- topology helpers over ovn-nbctl -----

    /// `ovn-nbctl ls-add SWITCH`.
    pub fn ls_add(&self, switch: &str) -> Result<()> {
        self.nbctl(&["ls-add", switch]).map(drop)
    }

    /// `ovn-nbctl lr-add ROUTER`.
    pub fn lr_add(&self, router: &str) -> Result<()> {
        self.nbctl(&["lr-add", router]).map(drop)
    }

    /// Adds router port `port` with `mac` and `networks` (CIDRs such as "10.0.0.1/24").
    pub fn lrp_add(&self, router: &str, port: &str, mac: &str, networks: &[&str]) -> Result<()> {
        let mut args = vec!["lrp-add", router, port, mac];
        args.extend_from_slice(networks);
        self.nbctl(&args).map(drop)
    }

    /// Adds switch port `lsp` of type `router` on `switch`, linked to router port `lrp`.
    pub fn lsp_add_router_port(&self, switch: &str, lsp: &str, lrp: &str) -> Result<()> {
        self.lsp_add_typed(
            switch,
            lsp,
            "router",
            "router",
            &format!("router-port={lrp}"),
        )
    }

    /// Adds switch port `lsp` on `switch` with a type, addresses and one option.
    fn lsp_add_typed(
        &self,
        switch: &str,
        lsp: &str,
        ty: &str,
        addresses: &str,
        option: &str,
    ) -> Result<()> {
        self.nbctl(&[
            "lsp-add",
            switch,
            lsp,
            "--",
            "lsp-set-type",
            lsp,
            ty,
            "--",
            "lsp-set-addresses",
            lsp,
            addresses,
            "--",
            "lsp-set-options",
            lsp,
            option,
        ])
        .map(drop)
    }

    /// Connects `router` to `switch`: router port `lrp` (mac, networks) plus the switch port
    /// `<switch>-<lrp>` of type router.
    pub fn connect_router(
        &self,
        router: &str,
        lrp: &str,
        mac: &str,
        networks: &[&str],
        switch: &str,
    ) -> Result<()> {
        self.lrp_add(router, lrp, mac, networks)?;
        self.lsp_add_router_port(switch, &format!("{switch}-{lrp}"), lrp)
    }

    /// `ovn-nbctl lrp-set-gateway-chassis LRP CHASSIS PRIORITY` (adds or updates).
    pub fn lrp_set_gateway_chassis(&self, lrp: &str, chassis: &str, priority: u32) -> Result<()> {
        self.nbctl(&[
            "lrp-set-gateway-chassis",
            lrp,
            chassis,
            &priority.to_string(),
        ])
        .map(drop)
    }

    /// `ovn-nbctl lrp-del-gateway-chassis LRP CHASSIS`.
    pub fn lrp_del_gateway_chassis(&self, lrp: &str, chassis: &str) -> Result<()> {
        self.nbctl(&["lrp-del-gateway-chassis", lrp, chassis])
            .map(drop)
    }

    /// Adds a localnet port `lsp` on `switch` for physical network `network_name`.
    pub fn lsp_add_localnet(&self, switch: &str, lsp: &str, network_name: &str) -> Result<()> {
        self.lsp_add_typed(
            switch,
            lsp,
            "localnet",
            "unknown",
            &format!("network_name={network_name}"),
        )
    }

    /// `ovn-nbctl lr-nat-add` for `nat` on `router`.
    pub fn lr_nat_add(&self, router: &str, nat: &Nat) -> Result<()> {
        let mut args = vec![
            "lr-nat-add",
            router,
            nat.kind.as_str(),
            &nat.external_ip,
            &nat.logical_ip,
        ];
        if let Some((port, mac)) = &nat.logical_port {
            args.push(port);
            args.push(mac);
        }
        self.nbctl(&args).map(drop)
    }

    /// `ovn-nbctl lb-add LB VIP BACKENDS [PROTOCOL]`; `vip` like "172.16.0.10:80", backends
    /// like "10.0.0.2:8080".
    pub fn lb_add(
        &self,
        lb: &str,
        vip: &str,
        backends: &[&str],
        protocol: Option<&str>,
    ) -> Result<()> {
        let ips = backends.join(",");
        let mut args = vec!["lb-add", lb, vip, &ips];
        if let Some(p) = protocol {
            args.push(p);
        }
        self.nbctl(&args).map(drop)
    }

    /// Attaches load balancer `lb` to `router`.
    pub fn lr_lb_add(&self, router: &str, lb: &str) -> Result<()> {
        self.nbctl(&["lr-lb-add", router, lb]).map(drop)
    }

    /// Attaches load balancer `lb` to `switch`.
    pub fn ls_lb_add(&self, switch: &str, lb: &str) -> Result<()> {
        self.nbctl(&["ls-lb-add", switch, lb]).map(drop)
    }

    /// Creates VIF port `lsp` on `switch` with `addresses` (e.g. "00:00:00:00:00:01 10.0.0.2",
    /// or "" for none) and plugs it into chassis `chassis` (an OVS interface with
    /// `external_ids:iface-id=<lsp>`). Returns the OVS port name used.
    pub fn add_vif_port(
        &self,
        switch: &str,
        lsp: &str,
        addresses: &str,
        chassis: &str,
    ) -> Result<String> {
        let ch = self.chassis_named(chassis)?;
        if addresses.is_empty() {
            self.nbctl(&["lsp-add", switch, lsp])?;
        } else {
            self.nbctl(&[
                "lsp-add",
                switch,
                lsp,
                "--",
                "lsp-set-addresses",
                lsp,
                addresses,
            ])?;
        }
        let port = if lsp.len() <= crate::netns::IFNAMSIZ_MAX {
            lsp.to_string()
        } else {
            format!("vif{}", crate::util::next_seq())
        };
        ch.add_vif(&port, lsp)?;
        Ok(port)
    }

    /// Name of the chassis that SB `Port_Binding` of `logical_port` is bound to (e.g. a VIF or
    /// `cr-<lrp>`), or `None` while unbound.
    pub fn port_binding_chassis(&self, logical_port: &str) -> Result<Option<String>> {
        let uuid = self.sbctl(&[
            "--bare",
            "--columns=chassis",
            "find",
            "Port_Binding",
            &format!("logical_port=\"{logical_port}\""),
        ])?;
        let uuid = uuid.trim();
        if uuid.is_empty() {
            return Ok(None);
        }
        let name = self.sbctl(&["--bare", "--columns=name", "list", "Chassis", uuid])?;
        Ok(Some(name.trim().to_string()))
    }

    /// Polls SB until `logical_port` is bound to chassis `chassis`.
    pub fn wait_port_bound(
        &self,
        logical_port: &str,
        chassis: &str,
        timeout: Duration,
    ) -> Result<()> {
        wait_until(
            &format!("port {logical_port} to be bound to chassis {chassis}"),
            timeout,
            |last| {
                let now = self.port_binding_chassis(logical_port)?;
                *last = format!("bound to {now:?}");
                Ok((now.as_deref() == Some(chassis)).then_some(()))
            },
        )
    }

    /// Polls SB until `logical_port` is bound to no chassis.
    pub fn wait_port_unbound(&self, logical_port: &str, timeout: Duration) -> Result<()> {
        wait_until(
            &format!("port {logical_port} to be unbound"),
            timeout,
            |last| {
                let now = self.port_binding_chassis(logical_port)?;
                *last = format!("bound to {now:?}");
                Ok(now.is_none().then_some(()))
            },
        )
    }

    /// Polls NB until `Logical_Switch_Port.up` of `lsp` is true.
    pub fn wait_lsp_up(&self, lsp: &str, timeout: Duration) -> Result<()> {
        wait_until(&format!("switch port {lsp} to be up"), timeout, |last| {
            let up = self.nbctl(&["lsp-get-up", lsp])?;
            *last = format!("lsp-get-up: {up}");
            Ok((up.trim() == "up").then_some(()))
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Signal everybody first so they all exit in parallel; the fields' own drops then reap
        // them (SIGKILL for any that hang), delete the namespaces and the directory.
        for c in &self.chassis {
            c.send_term();
        }
        if let Some(w) = &self.wire {
            w.send_term();
        }
        self.northd.send_term();
        self.sb.send_term();
        self.nb.send_term();
    }
}

/// Type of a NAT rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Source NAT of a logical network.
    Snat,
    /// Destination NAT only.
    Dnat,
    /// One-to-one NAT (floating IP).
    DnatAndSnat,
}

impl NatKind {
    /// The keyword `ovn-nbctl lr-nat-add` expects.
    pub fn as_str(self) -> &'static str {
        match self {
            NatKind::Snat => "snat",
            NatKind::Dnat => "dnat",
            NatKind::DnatAndSnat => "dnat_and_snat",
        }
    }
}

/// A NAT rule for [`Lab::lr_nat_add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nat {
    /// Rule type.
    pub kind: NatKind,
    /// External IP.
    pub external_ip: String,
    /// Logical IP or network (CIDR for snat).
    pub logical_ip: String,
    /// `(logical_port, external_mac)` for distributed dnat_and_snat.
    pub logical_port: Option<(String, String)>,
}

impl Nat {
    /// An snat rule.
    pub fn snat(external_ip: &str, logical_ip: &str) -> Nat {
        Nat {
            kind: NatKind::Snat,
            external_ip: external_ip.into(),
            logical_ip: logical_ip.into(),
            logical_port: None,
        }
    }

    /// A dnat_and_snat rule (centralised unless [`Nat::distributed`] is used).
    pub fn dnat_and_snat(external_ip: &str, logical_ip: &str) -> Nat {
        Nat {
            kind: NatKind::DnatAndSnat,
            ..Nat::snat(external_ip, logical_ip)
        }
    }

    /// Makes the rule distributed on `logical_port`'s chassis, answering with `external_mac`.
    pub fn distributed(mut self, logical_port: &str, external_mac: &str) -> Nat {
        self.logical_port = Some((logical_port.into(), external_mac.into()));
        self
    }
}
