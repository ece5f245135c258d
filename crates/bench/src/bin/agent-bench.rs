//! agent-bench: the exposure agent's benchmark (issue 3).
//!
//! A generated neutron-like NB topology, one chassis (`bench-hv1`) that hosts a quarter of it, and
//! the real `ovn-route agent` in a scratch network namespace with a kernel bridge `br-ex`:
//!
//! * `gen`: builds (and caches) the NB database. Default shape (`--set small`, the issue's): 2,000
//!   routers, each with a gateway port on one of 16 provider networks (localnet ports with
//!   `network_name = physnet1`, VLAN tags 100..115) and one tenant network; 20,000 VM ports on the
//!   provider networks with `options:requested-chassis` round robin over 4 chassis `bench-hv1..4`
//!   (bench-hv1 gets exactly a quarter); 10,000 `dnat_and_snat` floating IPs (5 per router, on tenant VM ports; even ones distributed:
//!   `logical_port` + `external_mac`, odd ones centralized on the gateway); 2,000 load balancers (one
//!   per router, VIP on the tenant network). Gateway ports have 3 Gateway_Chassis (priorities 3/2/1,
//!   the highest on `bench-hv((r / 16 + r % 16) % 4 + 1)`: hv1 is first for a quarter) and
//!   `status:hosting-chassis` = that chassis. `--set large`: the same x3 over 2 chassis (50,996
//!   IPs exposed on bench-hv1, 192,049 rows, 122 MB); `--set x6`: x6 over 4 chassis (51,000
//!   exposed, 396,049 rows, 246 MB).
//!
//!   Without a Southbound database the planner (crates/plan/src/exposure.rs) places a gateway port
//!   only by `Logical_Router_Port.status:hosting-chassis` (OVN 23.09+), never by Gateway_Chassis
//!   priorities. OVN 23.03's NB schema has no such column, so by default the database is created
//!   with the installed schema plus that one column (as in 23.09); `--stock-schema` keeps the
//!   installed schema (then no gateway is ever on this chassis: no gateway IPs, load-balancer VIPs
//!   or centralized FIPs are exposed).
//!
//! * `run`: for one set, starts ovsdb-server on a copy of the NB and on a local Open_vSwitch
//!   database (system-id bench-hv1, ovn-bridge-mappings physnet1:br-ex) with `ovs-vswitchd
//!   --enable-dummy=system` serving bridges br-int and br-ex (dummy datapath, the localnet patch
//!   pair between them, as in the lab: the agent's `ovs-ofctl` calls work), then, with
//!   `--raw-reader`, the NB server's own time to send the agent's initial monitor reply, and
//!   1. `ovn-route agent --once --dry-run` (the plan's route counts, checked against the
//!      generator's expectation);
//!   2. `--repeat` times, in a fresh namespace: `ovn-route agent --once`, with a netlink route
//!      monitor (in this process, same namespace) timestamping every RTM_NEWROUTE of protocol 201:
//!      spawn to first route, spawn to the last expected route (kernel state complete), the
//!      process' exit, its peak RSS and CPU (wait4 rusage);
//!   3. the reference: the routes the agent installed (`ip route show table all proto 201`)
//!      installed with `ip -batch` into a fresh namespace, `--repeat` times;
//!   4. with `--changes N`: the agent as a daemon, then N NB transactions one at a time
//!      (alternately: a provider VM's requested-chassis moved from bench-hv2 to bench-hv1, and a new
//!      centralized FIP on a router whose gateway is on bench-hv1), each timed from the
//!      transaction's reply to the RTM_NEWROUTE of the new /32 in the exposure table.
//!
//! Results: a summary on stdout, one JSON object a line with `--out`. Needs root, `ip`,
//! `ovsdb-server`, `ovsdb-tool`, `ovs-appctl`, `ovs-vsctl`, `ovs-vswitchd`. Driver:
//! bench/agent-bench.sh; results and reading: BENCHMARKS.md.

// `n % d == 0` rather than `is_multiple_of`: the workspace's rust-version is older.
#![allow(clippy::manual_is_multiple_of)]

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::{Parser, Subcommand};
use ovn_route_bench::{insert, smap, str_set, uuid_ref, uuid_set, Ids};
use serde_json::{json, Map, Value};

/// Bump when the generated content changes, so cached files are not reused.
const GEN_VERSION: u32 = 2;
const NB: &str = "OVN_Northbound";
const ME: &str = "bench-hv1";
const EXPOSURE_TABLE: u32 = 10;
const PROTO: u8 = 201;

#[derive(Parser, Debug)]
#[command(about = "The exposure agent's benchmark (see the doc comment and BENCHMARKS.md)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Generate (or find in the cache) the NB database of a set; prints its path.
    Gen(GenArgs),
    /// Run the measurements on one set.
    Run(RunArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct ShapeArgs {
    /// `small` (the issue's: 2,000 routers, 20,000 provider VMs, 10,000 FIPs, 2,000 LBs over 4
    /// chassis); `large` (x3 over 2 chassis: 51,000 IPs exposed on bench-hv1, a 123 MB NB);
    /// `x6` (x6 over 4 chassis: also 51,000 exposed, but a 246 MB NB). Options below override.
    #[arg(long, default_value = "small")]
    set: String,
    #[arg(long)]
    routers: Option<usize>,
    /// VM ports on provider networks.
    #[arg(long)]
    vms: Option<usize>,
    /// dnat_and_snat floating IPs (spread over the routers, one tenant VM port each).
    #[arg(long)]
    fips: Option<usize>,
    /// Load balancers (spread over the routers).
    #[arg(long)]
    lbs: Option<usize>,
    /// Provider networks (all on physnet1), at most 16.
    #[arg(long, default_value_t = 16)]
    provider_nets: usize,
    /// Chassis bench-hv1..N over which ports and gateways are spread (default: the set's).
    #[arg(long)]
    chassis: Option<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Use the installed NB schema as is (OVN 23.03: no Logical_Router_Port.status, so no gateway
    /// location without a Southbound database).
    #[arg(long)]
    stock_schema: bool,
    /// The installed OVN NB schema.
    #[arg(long, default_value = "/usr/share/ovn/ovn-nb.ovsschema")]
    schema: PathBuf,
    /// Cache of generated databases.
    #[arg(long, default_value = "/var/tmp/ovnr-bench")]
    cache_dir: PathBuf,
    /// Regenerate even if cached.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
struct GenArgs {
    #[command(flatten)]
    shape: ShapeArgs,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    shape: ShapeArgs,
    /// The agent binary.
    #[arg(long, default_value = "target/release/ovn-route")]
    ovn_route: PathBuf,
    /// `--once` runs and `ip -batch` runs.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// NB changes for the latency measurement (0: skip).
    #[arg(long, default_value_t = 0)]
    changes: usize,
    /// Pause after each change's route appeared, before the next change (ms).
    #[arg(long, default_value_t = 50)]
    gap_ms: u64,
    /// Only the dry run (plan check), no measurement.
    #[arg(long)]
    dry_run_only: bool,
    /// Before each change, wait until the agent has used no CPU for this long (ms; 0: don't), so
    /// that every change finds the agent idle (the latency of an isolated change).
    #[arg(long, default_value_t = 0)]
    idle_before_ms: u64,
    /// How long to wait for a change's route (s).
    #[arg(long, default_value_t = 10)]
    change_timeout_s: u64,
    /// `frr_reconcile_interval` of the daemon in the latency run. There is no FRR here: every
    /// FRR check retries vtysh for 10 s inside the agent's event loop (see the report), so the
    /// default 15 s would stall the loop 10 s out of every 15.
    #[arg(long, default_value_t = 3600)]
    frr_interval: u64,
    /// `raw-reader` binary: measure first the server's own time to send the agent's initial
    /// monitor reply (same tables and columns), `--repeat` times.
    #[arg(long)]
    raw_reader: Option<PathBuf>,
    /// RUST_LOG for the agent.
    #[arg(long, default_value = "info")]
    agent_log: String,
    /// Append results (JSON lines) here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the work directory (logs, configs, route dumps).
    #[arg(long)]
    keep: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Gen(a) => {
            let shape = Shape::from_args(&a.shape)?;
            let (db, meta) = ensure_db(&shape, &a.shape)?;
            eprintln!("{}", serde_json::to_string_pretty(&meta)?);
            println!("{}", db.display());
            Ok(())
        }
        Cmd::Run(a) => run(a),
    }
}

// ================================================================ deterministic ids

const K_PNET: u64 = 101;
const K_PLS: u64 = 102;
const K_LOCALNET: u64 = 103;
const K_META_LSP: u64 = 104;
const K_META_PORT: u64 = 105;
const K_VM_LSP: u64 = 106;
const K_VM_PORT: u64 = 107;
const K_TNET: u64 = 108;
const K_TLS: u64 = 109;
const K_TVM_LSP: u64 = 110;
const K_TVM_PORT: u64 = 111;
const K_ROUTER: u64 = 112;
const K_LR: u64 = 113;
const K_GW_PORT: u64 = 114;
const K_GW_LSP: u64 = 115;
const K_GW_LRP: u64 = 116;
const K_GC: u64 = 117;
const K_RIF_PORT: u64 = 118;
const K_RIF_LSP: u64 = 119;
const K_RIF_LRP: u64 = 120;
const K_SNAT: u64 = 121;
const K_FIP_NAT: u64 = 122;
const K_FIP_ID: u64 = 123;
const K_LB_ROW: u64 = 124;
const K_LB: u64 = 125;
const K_LRSR: u64 = 126;
const K_PROJECT: u64 = 127;
const K_DEVICE: u64 = 128;
const K_NBG: u64 = 129;
const K_SUBNET: u64 = 130;
const K_MAC: u64 = 131;
const K_SG: u64 = 132;
const K_VIP_PORT: u64 = 133;

// ================================================================ the shape

/// The topology's parameters and every derived address and placement (pure functions).
#[derive(Debug, Clone)]
struct Shape {
    routers: usize,
    vms: usize,
    fips: usize,
    lbs: usize,
    pnets: usize,
    chassis: usize,
    seed: u64,
    status: bool,
}

impl Shape {
    fn from_args(a: &ShapeArgs) -> Result<Shape> {
        // (size factor, chassis)
        let (k, chassis) = match a.set.as_str() {
            "small" => (1, 4),
            "large" => (3, 2),
            "x6" => (6, 4),
            other => bail!("unknown --set {other:?} (small, large, x6)"),
        };
        let s = Shape {
            routers: a.routers.unwrap_or(2_000 * k),
            vms: a.vms.unwrap_or(20_000 * k),
            fips: a.fips.unwrap_or(10_000 * k),
            lbs: a.lbs.unwrap_or(2_000 * k),
            pnets: a.provider_nets,
            chassis: a.chassis.unwrap_or(chassis),
            seed: a.seed,
            status: !a.stock_schema,
        };
        ensure!(
            (1..=16).contains(&s.pnets),
            "1..16 provider networks (172.16-31.0.0/16)"
        );
        ensure!(s.chassis >= 2, "at least 2 chassis");
        ensure!(s.routers >= 1 && s.routers <= 65_536, "1..65,536 routers");
        ensure!(
            s.vms / s.pnets + 256 < 40_000,
            "too many VMs per provider network"
        );
        ensure!(
            (s.routers / s.pnets + 1) * s.max_fpr() < 12_000,
            "too many FIPs per provider network"
        );
        ensure!(s.max_fpr() <= 80, "at most 80 FIPs per router");
        ensure!(s.lbs <= s.routers * 50, "at most 50 LBs per router");
        Ok(s)
    }

    fn key(&self) -> String {
        format!(
            "agent-g{GEN_VERSION}-lr{}-vm{}-fip{}-lb{}-pn{}-ch{}{}-seed{}",
            self.routers,
            self.vms,
            self.fips,
            self.lbs,
            self.pnets,
            self.chassis,
            if self.status { "-status" } else { "-stock" },
            self.seed
        )
    }

    fn chassis_name(c: usize) -> String {
        format!("bench-hv{}", c + 1)
    }

    fn pbase(&self, e: usize) -> u32 {
        u32::from(Ipv4Addr::new(172, 16 + e as u8, 0, 0))
    }

    fn vm_net(&self, k: usize) -> usize {
        k % self.pnets
    }
    /// Round robin over the chassis within each provider network, shifted by the network's index
    /// (so that every chassis gets a quarter overall, on every network).
    fn vm_chassis(&self, k: usize) -> usize {
        (k / self.pnets + k % self.pnets) % self.chassis
    }
    fn vm_ip(&self, k: usize) -> Ipv4Addr {
        Ipv4Addr::from(self.pbase(self.vm_net(k)) + 256 + (k / self.pnets) as u32)
    }

    fn gw_net(&self, r: usize) -> usize {
        r % self.pnets
    }
    /// The highest-priority gateway chassis of router `r` (also its hosting-chassis).
    fn gw_chassis(&self, r: usize) -> usize {
        (r / self.pnets + r % self.pnets) % self.chassis
    }
    fn gw_ip(&self, r: usize) -> Ipv4Addr {
        Ipv4Addr::from(self.pbase(self.gw_net(r)) + 40_000 + (r / self.pnets) as u32)
    }

    fn max_fpr(&self) -> usize {
        self.fips.div_ceil(self.routers)
    }
    fn fips_of(&self, r: usize) -> usize {
        self.fips / self.routers + usize::from(r < self.fips % self.routers)
    }
    fn fip_base(&self, r: usize) -> usize {
        r * (self.fips / self.routers) + r.min(self.fips % self.routers)
    }
    fn fip_ip(&self, r: usize, i: usize) -> Ipv4Addr {
        Ipv4Addr::from(
            self.pbase(self.gw_net(r)) + 48_000 + ((r / self.pnets) * self.max_fpr() + i) as u32,
        )
    }
    /// Global FIP `q`: distributed (on its VM's chassis) when even, else centralized.
    fn fip_distributed(q: usize) -> bool {
        q % 2 == 0
    }
    /// The chassis of the tenant VM behind FIP `q`.
    fn tvm_chassis(&self, q: usize) -> usize {
        (q / 2) % self.chassis
    }
    fn tnet(r: usize) -> (usize, usize) {
        ((r >> 8) & 0xff, r & 0xff)
    }
    fn tvm_ip(r: usize, i: usize) -> Ipv4Addr {
        let (x, y) = Self::tnet(r);
        Ipv4Addr::new(10, x as u8, y as u8, 10 + i as u8)
    }
    fn lb_router(&self, b: usize) -> usize {
        b * self.routers / self.lbs
    }

    /// The n-th latency change: `(true, k)` a provider VM on bench-hv2 to move to bench-hv1;
    /// `(false, r)` a router with its gateway on bench-hv1 to get a new centralized FIP.
    fn change(&self, n: usize) -> (bool, usize) {
        let m = n / 2;
        let (p, c) = (self.pnets, self.chassis);
        let e = m % p;
        if n % 2 == 0 {
            // k = j * P + e with (j + e) % C == 1 (bench-hv2).
            let per = (self.vms / p / c).max(1);
            let j = ((m / p) % per) * c + (1 + c - e % c) % c;
            (true, j * p + e)
        } else {
            // r = g * P + e with (g + e) % C == 0 (gateway on bench-hv1).
            let per = (self.routers / p / c).max(1);
            let g = ((m / p) % per) * c + (c - e % c) % c;
            (false, g * p + e)
        }
    }
    /// External IP of the n-th latency change FIP (unique per n).
    fn change_fip_ip(&self, n: usize, r: usize) -> Ipv4Addr {
        Ipv4Addr::from(self.pbase(self.gw_net(r)) + 60_000 + (n / 2 / self.pnets) as u32)
    }

    /// What bench-hv1 should expose, by kind, and the kernel objects that follow.
    fn expected(&self) -> Map<String, Value> {
        let me = 0;
        let provider = (0..self.vms).filter(|&k| self.vm_chassis(k) == me).count();
        let gw_here = |r: usize| self.status && self.gw_chassis(r) == me;
        let gateways = (0..self.routers).filter(|&r| gw_here(r)).count();
        let lbs = (0..self.lbs)
            .filter(|&b| gw_here(self.lb_router(b)))
            .count();
        let mut fips_dist = 0;
        let mut fips_cent = 0;
        for r in 0..self.routers {
            for i in 0..self.fips_of(r) {
                let q = self.fip_base(r) + i;
                if Self::fip_distributed(q) {
                    fips_dist += usize::from(self.tvm_chassis(q) == me);
                } else {
                    fips_cent += usize::from(gw_here(r));
                }
            }
        }
        let mut lb_routers = HashSet::new();
        for b in 0..self.lbs {
            if gw_here(self.lb_router(b)) {
                lb_routers.insert(self.lb_router(b));
            }
        }
        let total = provider + gateways + lbs + fips_dist + fips_cent;
        let mut m = Map::new();
        m.insert("provider_port".into(), json!(provider));
        m.insert("gateway_ip".into(), json!(gateways));
        m.insert("load_balancer_vip".into(), json!(lbs));
        m.insert("floating_ip_distributed".into(), json!(fips_dist));
        m.insert("floating_ip_centralized".into(), json!(fips_cent));
        m.insert("exposed_total".into(), json!(total));
        m.insert("routes_exposure_table".into(), json!(total));
        m.insert("routes_bridge_table".into(), json!(total));
        m.insert("neighbours".into(), json!(lb_routers.len()));
        m
    }
}

// ================================================================ OVSDB JSON helpers

// ================================================================ generator

struct Gen<'a> {
    s: &'a Shape,
    ids: Ids,
    rows: BTreeMap<&'static str, usize>,
}

impl Gen<'_> {
    fn count(&mut self, table: &'static str) {
        *self.rows.entry(table).or_default() += 1;
    }

    fn pnet_name(&self, e: usize) -> String {
        format!("neutron-{}", self.ids.uuid(K_PNET, e))
    }
    fn tnet_name(&self, r: usize) -> String {
        format!("neutron-{}", self.ids.uuid(K_TNET, r))
    }
    fn project(&self, r: usize) -> String {
        self.ids.hex32(K_PROJECT, r / 4)
    }

    fn ls_row(&self, name: String, ports: &[String], mtu: &str, net: String) -> Value {
        json!({
            "name": name,
            "ports": uuid_set(ports),
            "external_ids": smap(&[
                ("neutron:availability_zone_hints", String::new()),
                ("neutron:mtu", mtu.into()),
                ("neutron:network_name", net),
                ("neutron:revision_number", "2".into()),
            ]),
            "other_config": smap(&[
                ("mcast_flood_unregistered", "false".into()),
                ("mcast_snoop", "true".into()),
                ("vlan-passthru", "false".into()),
            ]),
        })
    }

    /// Neutron's metadata port of a network (a localport; index: provider e, or pnets + r).
    fn metadata(
        &mut self,
        idx: usize,
        net_name: &str,
        cidr: String,
        ops: &mut Vec<Value>,
    ) -> String {
        self.count("Logical_Switch_Port");
        let u = self.ids.uuid(K_META_LSP, idx);
        ops.push(insert(
            "Logical_Switch_Port",
            &u,
            json!({
                "name": self.ids.uuid(K_META_PORT, idx),
                "type": "localport",
                "addresses": str_set(&[format!("{} {}", self.ids.mac(0xf0_0000 + idx), cidr)]),
                "options": smap(&[("requested-chassis", String::new())]),
                "enabled": true,
                "external_ids": smap(&[
                    ("neutron:cidrs", format!("{cidr}/24")),
                    ("neutron:device_id", format!("ovnmeta-{}", &net_name[8..])),
                    ("neutron:device_owner", "network:distributed".into()),
                    ("neutron:network_name", net_name.to_string()),
                ]),
            }),
        ));
        u
    }

    /// NB_Global and the provider networks (switch, localnet, metadata port).
    fn first(&mut self) -> Vec<Value> {
        self.count("NB_Global");
        let mut ops = vec![insert(
            "NB_Global",
            &self.ids.uuid(K_NBG, 0usize),
            json!({
                "options": smap(&[
                    ("mac_prefix", "0a:1b:2c".into()),
                    ("max_tunid", "16711680".into()),
                    ("northd_probe_interval", "60000".into()),
                    ("use_logical_dp_groups", "true".into()),
                ]),
            }),
        )];
        for e in 0..self.s.pnets {
            self.count("Logical_Switch_Port");
            let ln = self.ids.uuid(K_LOCALNET, e);
            ops.push(insert(
                "Logical_Switch_Port",
                &ln,
                json!({
                    "name": format!("provnet-{}", self.ids.uuid(K_SUBNET, 1_000_000 + e)),
                    "type": "localnet",
                    "addresses": str_set(&["unknown".to_string()]),
                    "tag": 100 + e,
                    "options": smap(&[
                        ("mcast_flood", "false".into()),
                        ("mcast_flood_reports", "true".into()),
                        ("network_name", "physnet1".into()),
                    ]),
                }),
            ));
            let name = self.pnet_name(e);
            let md = self.metadata(
                e,
                &name,
                Ipv4Addr::from(self.s.pbase(e) + 2).to_string(),
                &mut ops,
            );
            self.count("Logical_Switch");
            let row = self.ls_row(name, &[ln, md], "1500", format!("provider-{e}"));
            ops.push(insert("Logical_Switch", &self.ids.uuid(K_PLS, e), row));
        }
        ops
    }

    #[allow(clippy::too_many_arguments)]
    fn vif(
        &mut self,
        row_uuid: &str,
        name: String,
        mac: String,
        ip: Ipv4Addr,
        plen: u8,
        chassis: usize,
        device: usize,
        net_name: &str,
        project: String,
        extra: Option<(&str, String)>,
    ) -> Value {
        self.count("Logical_Switch_Port");
        let host = Shape::chassis_name(chassis);
        let addr = format!("{mac} {ip}");
        let mut ext = vec![
            ("neutron:cidrs", format!("{ip}/{plen}")),
            ("neutron:device_id", self.ids.uuid(K_DEVICE, device)),
            ("neutron:device_owner", "compute:nova".into()),
            ("neutron:host_id", host.clone()),
            ("neutron:network_name", net_name.to_string()),
            ("neutron:port_name", String::new()),
            ("neutron:project_id", project.clone()),
            ("neutron:revision_number", "4".into()),
            (
                "neutron:security_group_ids",
                self.ids.uuid(K_SG, device % 1000),
            ),
        ];
        if let Some(x) = extra {
            ext.push(x);
        }
        ext.sort_by(|a, b| a.0.cmp(b.0));
        insert(
            "Logical_Switch_Port",
            row_uuid,
            json!({
                "name": name,
                "addresses": str_set(std::slice::from_ref(&addr)),
                "port_security": str_set(&[addr]),
                "options": smap(&[
                    ("mcast_flood_reports", "true".into()),
                    ("requested-chassis", host),
                ]),
                "up": true,
                "enabled": true,
                "external_ids": smap(&ext),
            }),
        )
    }

    /// Provider VM `k`; its LSP row goes to `pls[net]`.
    fn provider_vm(&mut self, k: usize, ops: &mut Vec<Value>, pls: &mut [Vec<String>]) {
        let s = self.s;
        let e = s.vm_net(k);
        let u = self.ids.uuid(K_VM_LSP, k);
        let net = self.pnet_name(e);
        let row = self.vif(
            &u,
            self.ids.uuid(K_VM_PORT, k),
            self.ids.mac(k),
            s.vm_ip(k),
            16,
            s.vm_chassis(k),
            k,
            &net,
            self.project(k % s.routers),
            None,
        );
        ops.push(row);
        pls[e].push(u);
    }

    /// Router `r`: its tenant network with the FIP VMs, gateway port (+ LSP to `pls`), NATs, LBs.
    fn router(&mut self, r: usize, ops: &mut Vec<Value>, pls: &mut [Vec<String>]) {
        let s = self.s;
        let ids = Ids {
            seed: s.seed,
            mac_kind: K_MAC,
        };
        let (x, y) = Shape::tnet(r);
        let e = s.gw_net(r);
        let router_id = ids.uuid(K_ROUTER, r);
        let router_name = format!("neutron-{router_id}");
        let tnet = self.tnet_name(r);
        let pnet = self.pnet_name(e);
        let project = self.project(r);
        let gw_ip = s.gw_ip(r);
        let mac_base = s.vms + s.fips;

        // Tenant network: VMs (one per FIP), router interface, metadata port, LBs.
        let mut tports = Vec::new();
        let mut fips = Vec::new();
        for i in 0..s.fips_of(r) {
            let q = s.fip_base(r) + i;
            let u = ids.uuid(K_TVM_LSP, q);
            let port = ids.uuid(K_TVM_PORT, q);
            let mac = ids.mac(s.vms + q);
            let ip = Shape::tvm_ip(r, i);
            let fip = s.fip_ip(r, i);
            let row = self.vif(
                &u,
                port.clone(),
                mac.clone(),
                ip,
                24,
                s.tvm_chassis(q),
                s.vms + q,
                &tnet,
                project.clone(),
                Some(("neutron:port_fip", fip.to_string())),
            );
            ops.push(row);
            tports.push(u);
            fips.push((q, port, mac, ip, fip));
        }
        let rif_port = ids.uuid(K_RIF_PORT, r);
        let rif_lsp = ids.uuid(K_RIF_LSP, r);
        self.count("Logical_Switch_Port");
        ops.push(insert(
            "Logical_Switch_Port",
            &rif_lsp,
            json!({
                "name": rif_port,
                "type": "router",
                "addresses": str_set(&["router".to_string()]),
                "options": smap(&[("router-port", format!("lrp-{rif_port}"))]),
                "up": true,
                "enabled": true,
                "external_ids": smap(&[
                    ("neutron:cidrs", format!("10.{x}.{y}.1/24")),
                    ("neutron:device_id", router_id.clone()),
                    ("neutron:device_owner", "network:router_interface".into()),
                    ("neutron:network_name", tnet.clone()),
                    ("neutron:project_id", project.clone()),
                ]),
            }),
        ));
        tports.push(rif_lsp);
        let md = self.metadata(s.pnets + r, &tnet, format!("10.{x}.{y}.2"), ops);
        tports.push(md);

        // Load balancers of this router (VIP on the tenant network, the FIP VMs as members).
        let mut lbs = Vec::new();
        let first_b = (r * s.lbs).div_ceil(s.routers);
        let mut b = first_b;
        while b < s.lbs && s.lb_router(b) == r {
            let vip = format!("10.{x}.{y}.{}", 200 + (b - first_b));
            let backends = fips
                .iter()
                .map(|f| format!("{}:8080", f.3))
                .collect::<Vec<_>>()
                .join(",");
            let u = ids.uuid(K_LB_ROW, b);
            self.count("Load_Balancer");
            ops.push(insert(
                "Load_Balancer",
                &u,
                json!({
                    "name": ids.uuid(K_LB, b),
                    "protocol": "tcp",
                    "vips": smap(&[(&format!("{vip}:80"), backends)]),
                    "external_ids": smap(&[
                        ("enabled", "True".into()),
                        ("lr_ref", router_name.clone()),
                        ("ls_refs", format!("{{\"{tnet}\": 1}}")),
                        ("neutron:member_status", "{}".into()),
                        ("neutron:vip", vip.clone()),
                        ("neutron:vip_port_id", ids.uuid(K_VIP_PORT, b)),
                    ]),
                }),
            ));
            lbs.push(u);
            b += 1;
        }
        self.count("Logical_Switch");
        let mut ls = self.ls_row(tnet.clone(), &tports, "1442", format!("net-{r}"));
        if !lbs.is_empty() {
            ls["load_balancer"] = uuid_set(&lbs);
        }
        ops.push(insert("Logical_Switch", &ids.uuid(K_TLS, r), ls));

        // Gateway port on the provider network.
        let gw_port = ids.uuid(K_GW_PORT, r);
        let gw_lsp = ids.uuid(K_GW_LSP, r);
        self.count("Logical_Switch_Port");
        ops.push(insert(
            "Logical_Switch_Port",
            &gw_lsp,
            json!({
                "name": gw_port,
                "type": "router",
                "addresses": str_set(&["router".to_string()]),
                "options": smap(&[
                    ("exclude-lb-vips-from-garp", "true".into()),
                    ("nat-addresses", "router".into()),
                    ("router-port", format!("lrp-{gw_port}")),
                ]),
                "up": true,
                "enabled": true,
                "external_ids": smap(&[
                    ("neutron:cidrs", format!("{gw_ip}/16")),
                    ("neutron:device_id", router_id.clone()),
                    ("neutron:device_owner", "network:router_gateway".into()),
                    ("neutron:network_name", pnet.clone()),
                ]),
            }),
        ));
        pls[e].push(gw_lsp);
        let primary = s.gw_chassis(r);
        let mut gcs = Vec::new();
        for g in 0..3usize.min(s.chassis) {
            let c = Shape::chassis_name((primary + g) % s.chassis);
            let u = ids.uuid(K_GC, r * 3 + g);
            self.count("Gateway_Chassis");
            ops.push(insert(
                "Gateway_Chassis",
                &u,
                json!({
                    "name": format!("lrp-{gw_port}_{c}"),
                    "chassis_name": c,
                    "priority": 3 - g,
                }),
            ));
            gcs.push(u);
        }
        let gw_lrp = ids.uuid(K_GW_LRP, r);
        let mut row = json!({
            "name": format!("lrp-{gw_port}"),
            "mac": ids.mac(mac_base + r),
            "networks": str_set(&[format!("{gw_ip}/16")]),
            "gateway_chassis": uuid_set(&gcs),
            "external_ids": smap(&[
                ("neutron:is_ext_gw", "True".into()),
                ("neutron:network_name", pnet.clone()),
                ("neutron:revision_number", "5".into()),
                ("neutron:router_name", router_id.clone()),
                ("neutron:subnet_ids", ids.uuid(K_SUBNET, 1_000_000 + e)),
            ]),
        });
        if s.status {
            // What ovn-northd 23.09+ writes: the chassis the cr-lrp is bound to.
            row["status"] = smap(&[("hosting-chassis", Shape::chassis_name(primary))]);
        }
        self.count("Logical_Router_Port");
        ops.push(insert("Logical_Router_Port", &gw_lrp, row));
        let rif_lrp = ids.uuid(K_RIF_LRP, r);
        self.count("Logical_Router_Port");
        ops.push(insert(
            "Logical_Router_Port",
            &rif_lrp,
            json!({
                "name": format!("lrp-{rif_port}"),
                "mac": ids.mac(mac_base + s.routers + r),
                "networks": str_set(&[format!("10.{x}.{y}.1/24")]),
                "external_ids": smap(&[
                    ("neutron:is_ext_gw", "False".into()),
                    ("neutron:network_name", tnet.clone()),
                    ("neutron:revision_number", "3".into()),
                    ("neutron:router_name", router_id.clone()),
                    ("neutron:subnet_ids", ids.uuid(K_SUBNET, r)),
                ]),
            }),
        ));

        // SNAT and floating IPs.
        let mut nats = vec![ids.uuid(K_SNAT, r)];
        self.count("NAT");
        ops.push(insert(
            "NAT",
            &nats[0],
            json!({
                "type": "snat",
                "external_ip": gw_ip.to_string(),
                "logical_ip": format!("10.{x}.{y}.0/24"),
                "options": smap(&[("stateless", "false".into())]),
            }),
        ));
        for (q, port, mac, ip, fip) in fips {
            let dist = Shape::fip_distributed(q);
            let u = ids.uuid(K_FIP_NAT, q);
            let mut row = json!({
                "type": "dnat_and_snat",
                "external_ip": fip.to_string(),
                "logical_ip": ip.to_string(),
                "options": smap(&[("stateless", "false".into())]),
                "external_ids": smap(&[
                    ("neutron:fip_external_mac", if dist { mac.clone() } else { String::new() }),
                    ("neutron:fip_id", ids.uuid(K_FIP_ID, q)),
                    ("neutron:fip_network_id", ids.uuid(K_PNET, e)),
                    ("neutron:fip_port_id", port.clone()),
                    ("neutron:revision_number", "1".into()),
                    ("neutron:router_name", router_name.clone()),
                ]),
            });
            // Neutron sets logical_port on every FIP; external_mac only on distributed ones.
            row["logical_port"] = json!(port);
            if dist {
                row["external_mac"] = json!(mac);
            }
            self.count("NAT");
            ops.push(insert("NAT", &u, row));
            nats.push(u);
        }
        let route = ids.uuid(K_LRSR, r);
        self.count("Logical_Router_Static_Route");
        ops.push(insert(
            "Logical_Router_Static_Route",
            &route,
            json!({
                "ip_prefix": "0.0.0.0/0",
                "nexthop": Ipv4Addr::from(s.pbase(e) + 1).to_string(),
                "external_ids": smap(&[("neutron:is_ext_gw", "true".into())]),
            }),
        ));
        self.count("Logical_Router");
        let mut lr = json!({
            "name": router_name,
            "enabled": true,
            "ports": uuid_set(&[gw_lrp, rif_lrp]),
            "nat": uuid_set(&nats),
            "static_routes": uuid_set(&[route]),
            "options": smap(&[
                ("always_learn_from_arp_request", "false".into()),
                ("dynamic_neigh_routers", "true".into()),
            ]),
            "external_ids": smap(&[
                ("neutron:gw_network_id", ids.uuid(K_PNET, e)),
                ("neutron:gw_port_id", gw_port),
                ("neutron:project_id", project),
                ("neutron:revision_number", "4".into()),
                ("neutron:router_name", format!("router-{r}")),
            ]),
        });
        if !lbs.is_empty() {
            lr["load_balancer"] = uuid_set(&lbs);
        }
        ops.push(insert("Logical_Router", &ids.uuid(K_LR, r), lr));
    }
}

/// The NB schema to create the database with: the installed one, plus
/// `Logical_Router_Port.status` unless `stock` (or the schema has it already).
fn bench_schema(a: &ShapeArgs, status: bool) -> Result<PathBuf> {
    let text = std::fs::read_to_string(&a.schema)
        .with_context(|| format!("read {}", a.schema.display()))?;
    if !status {
        return Ok(a.schema.clone());
    }
    let mut s: Value = serde_json::from_str(&text)?;
    let cols = &mut s["tables"]["Logical_Router_Port"]["columns"];
    ensure!(
        cols.is_object(),
        "no Logical_Router_Port in {}",
        a.schema.display()
    );
    if cols.get("status").is_some() {
        return Ok(a.schema.clone());
    }
    // As in OVN 23.09 (there "ephemeral": true; left out here so the generated values survive
    // the compaction of a standalone database file).
    cols["status"] =
        json!({"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}});
    if let Some(o) = s.as_object_mut() {
        o.remove("cksum");
    }
    let path = a.cache_dir.join("ovn-nb-with-lrp-status.ovsschema");
    std::fs::write(&path, serde_json::to_string_pretty(&s)?)?;
    Ok(path)
}

/// Returns the cached database (generating it first if needed) and its metadata.
fn ensure_db(shape: &Shape, a: &ShapeArgs) -> Result<(PathBuf, Value)> {
    std::fs::create_dir_all(&a.cache_dir)?;
    let key = shape.key();
    let db_path = a.cache_dir.join(format!("{key}.db"));
    let meta_path = a.cache_dir.join(format!("{key}.json"));
    if db_path.exists() && meta_path.exists() && !a.force {
        let meta: Value = serde_json::from_str(&std::fs::read_to_string(&meta_path)?)?;
        return Ok((db_path, meta));
    }
    let schema = bench_schema(a, shape.status)?;
    let work = a
        .cache_dir
        .join(format!("tmp-{key}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let r = generate(shape, &schema, &work, &db_path);
    let _ = std::fs::remove_dir_all(&work);
    let mut meta = r?;
    meta.insert("db".into(), json!(db_path.display().to_string()));
    meta.insert("schema".into(), json!(schema.display().to_string()));
    meta.insert(
        "expected_on_bench_hv1".into(),
        Value::Object(shape.expected()),
    );
    let meta = Value::Object(meta);
    std::fs::write(&meta_path, serde_json::to_string_pretty(&meta)? + "\n")?;
    Ok((db_path, meta))
}

fn generate(
    shape: &Shape,
    schema: &Path,
    work: &Path,
    db_path: &Path,
) -> Result<Map<String, Value>> {
    let t0 = Instant::now();
    let db = work.join("nb.db");
    let st = Command::new("ovsdb-tool")
        .arg("create")
        .arg(&db)
        .arg(schema)
        .status()?;
    ensure!(st.success(), "ovsdb-tool create failed");
    let server = Server::start(work, "nb", &db)?;
    let stream = UnixStream::connect(&server.sock)?;
    let reader_stream = stream.try_clone()?;
    // Replies are drained on their own thread while transactions stream out; the final `echo`
    // (answered in order) closes the stream of replies.
    let reader = std::thread::spawn(move || -> Result<usize> {
        let mut got = 0usize;
        let de =
            serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 16, reader_stream));
        for msg in de.into_iter::<Value>() {
            let msg = msg?;
            if msg.get("method").is_some() {
                continue;
            }
            if msg["id"] == json!("done") {
                return Ok(got);
            }
            got += 1;
            let bad = match msg.get("result").and_then(Value::as_array) {
                Some(rs) => rs.iter().any(|r| r.get("error").is_some()),
                None => true,
            };
            if bad || !msg["error"].is_null() {
                let t = msg.to_string();
                bail!(
                    "transaction {} failed: {}",
                    msg["id"],
                    &t[..t.len().min(3000)]
                );
            }
        }
        bail!("connection closed after {got} replies")
    });

    let mut g = Gen {
        s: shape,
        ids: Ids {
            seed: shape.seed,
            mac_kind: K_MAC,
        },
        rows: BTreeMap::new(),
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, &stream);
    let mut sent = 0usize;
    let mut send = |ops: Vec<Value>, w: &mut std::io::BufWriter<&UnixStream>| -> Result<()> {
        let mut params = vec![json!(NB)];
        params.extend(ops);
        serde_json::to_writer(
            &mut *w,
            &json!({"method": "transact", "params": params, "id": sent}),
        )?;
        w.flush()?;
        sent += 1;
        Ok(())
    };
    send(g.first(), &mut w)?;
    let flush = |ops: &mut Vec<Value>, pls: &mut Vec<Vec<String>>, g: &Gen| -> Vec<Value> {
        let mut out = std::mem::take(ops);
        for (e, lsps) in pls.iter_mut().enumerate() {
            if !lsps.is_empty() {
                out.push(json!({
                    "op": "mutate",
                    "table": "Logical_Switch",
                    "where": [["_uuid", "==", uuid_ref(&g.ids.uuid(K_PLS, e))]],
                    "mutations": [["ports", "insert", uuid_set(lsps)]],
                }));
                lsps.clear();
            }
        }
        out
    };
    const BATCH: usize = 20_000;
    let mut pls = vec![Vec::new(); shape.pnets];
    let mut ops = Vec::new();
    for r in 0..shape.routers {
        g.router(r, &mut ops, &mut pls);
        if ops.len() >= BATCH {
            let b = flush(&mut ops, &mut pls, &g);
            send(b, &mut w)?;
        }
    }
    for k in 0..shape.vms {
        g.provider_vm(k, &mut ops, &mut pls);
        if ops.len() >= BATCH {
            let b = flush(&mut ops, &mut pls, &g);
            send(b, &mut w)?;
        }
    }
    let b = flush(&mut ops, &mut pls, &g);
    if !b.is_empty() {
        send(b, &mut w)?;
    }
    serde_json::to_writer(
        &mut w,
        &json!({"method": "echo", "params": [], "id": "done"}),
    )?;
    w.flush()?;
    drop(w);
    let got = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
    ensure!(got == sent, "got {got} replies for {sent} transactions");
    drop(stream);
    let t_txn = t0.elapsed();
    server.appctl("ovsdb-server/compact")?;
    server.stop()?;
    std::fs::rename(&db, db_path)?;
    let mut m = Map::new();
    let total: usize = g.rows.values().sum();
    m.insert("rows".into(), json!(g.rows));
    m.insert("rows_total".into(), json!(total));
    m.insert("transactions".into(), json!(sent));
    m.insert("bytes".into(), json!(std::fs::metadata(db_path)?.len()));
    m.insert("transactions_s".into(), json!(r3(t_txn.as_secs_f64())));
    m.insert("total_s".into(), json!(r3(t0.elapsed().as_secs_f64())));
    Ok(m)
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// ================================================================ ovsdb-server

struct Server {
    child: Child,
    sock: PathBuf,
    ctl: PathBuf,
}

impl Server {
    fn start(dir: &Path, name: &str, db: &Path) -> Result<Server> {
        let sock = dir.join(format!("{name}.sock"));
        let ctl = dir.join(format!("{name}.ctl"));
        let child = Command::new("ovsdb-server")
            .arg("--no-chdir")
            .arg(format!(
                "--log-file={}",
                dir.join(format!("{name}.log")).display()
            ))
            .arg(format!("--remote=punix:{}", sock.display()))
            .arg(format!("--unixctl={}", ctl.display()))
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut s = Server { child, sock, ctl };
        let t0 = Instant::now();
        while !(s.sock.exists() && s.ctl.exists()) {
            if let Some(st) = s.child.try_wait()? {
                bail!("ovsdb-server {name} exited early: {st}");
            }
            ensure!(
                t0.elapsed() < Duration::from_secs(60),
                "ovsdb-server {name} did not open its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(s)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn remote(&self) -> String {
        format!("unix:{}", self.sock.display())
    }

    fn appctl(&self, cmd: &str) -> Result<String> {
        let out = Command::new("ovs-appctl")
            .arg("-t")
            .arg(&self.ctl)
            .arg("--timeout=600")
            .arg(cmd)
            .output()?;
        ensure!(
            out.status.success(),
            "ovs-appctl {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn stop(mut self) -> Result<()> {
        let _ = self.appctl("exit");
        let t0 = Instant::now();
        while self.child.try_wait()?.is_none() {
            if t0.elapsed() > Duration::from_secs(30) {
                self.child.kill()?;
                self.child.wait()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `ovs-vswitchd --enable-dummy=system` on the local Open_vSwitch database (bridges with the
/// dummy datapath, as in the lab): `ovs-ofctl` works on `br-ex`, and OVS fills in `ofport`.
struct Vswitchd {
    child: Child,
    dir: PathBuf,
    db: String,
}

impl Vswitchd {
    fn start(work: &Path, ovs: &Server) -> Result<Vswitchd> {
        let dir = work.join("ovs-run");
        std::fs::create_dir_all(&dir)?;
        let ctl = dir.join("ovs-vswitchd.ctl");
        let mut v = Vswitchd {
            child: Command::new("ovs-vswitchd")
                .arg("--no-chdir")
                .arg(format!(
                    "--log-file={}",
                    dir.join("ovs-vswitchd.log").display()
                ))
                .arg(format!("--unixctl={}", ctl.display()))
                .arg("--enable-dummy=system")
                .arg(ovs.remote())
                .envs(ovs_env(&dir))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("ovs-vswitchd")?,
            dir,
            db: ovs.remote(),
        };
        let t0 = Instant::now();
        while !ctl.exists() {
            if let Some(st) = v.child.try_wait()? {
                bail!("ovs-vswitchd exited early: {st}");
            }
            ensure!(
                t0.elapsed() < Duration::from_secs(20),
                "ovs-vswitchd did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(v)
    }

    fn env(&self) -> Vec<(String, String)> {
        ovs_env(&self.dir)
    }

    fn vsctl(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("ovs-vsctl")
            .envs(self.env())
            .arg(format!("--db={}", self.db))
            .arg("--timeout=30")
            .args(args)
            .output()?;
        ensure!(
            out.status.success(),
            "ovs-vsctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Vswitchd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn ovs_env(dir: &Path) -> Vec<(String, String)> {
    let d = dir.display().to_string();
    ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"]
        .iter()
        .map(|k| (k.to_string(), d.clone()))
        .collect()
}

/// A blocking JSON-RPC client on a unix socket (answers the server's echo requests).
struct Rpc {
    w: UnixStream,
    rd: serde_json::StreamDeserializer<
        'static,
        serde_json::de::IoRead<BufReader<UnixStream>>,
        Value,
    >,
    next: u64,
}

impl Rpc {
    fn connect(sock: &Path) -> Result<Rpc> {
        let w = UnixStream::connect(sock).with_context(|| format!("connect {}", sock.display()))?;
        let r = BufReader::new(w.try_clone()?);
        Ok(Rpc {
            w,
            rd: serde_json::Deserializer::from_reader(r).into_iter::<Value>(),
            next: 1,
        })
    }

    fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next;
        self.next += 1;
        let req = serde_json::to_vec(&json!({"id": id, "method": method, "params": params}))?;
        self.w.write_all(&req)?;
        loop {
            let msg = self.rd.next().context("connection closed")??;
            if msg.get("method") == Some(&json!("echo")) {
                let rep = json!({"id": msg["id"], "result": msg["params"], "error": null});
                self.w.write_all(&serde_json::to_vec(&rep)?)?;
                continue;
            }
            if msg["id"] == json!(id) {
                if !msg["error"].is_null() {
                    bail!("{method}: {}", msg["error"]);
                }
                return Ok(msg["result"].clone());
            }
        }
    }

    /// A transaction; fails if any operation failed.
    fn transact(&mut self, db: &str, ops: Vec<Value>) -> Result<Value> {
        let mut params = vec![json!(db)];
        params.extend(ops);
        let r = self.call("transact", Value::Array(params))?;
        if let Some(rs) = r.as_array() {
            if rs.iter().any(|x| x.get("error").is_some()) {
                bail!("transaction failed: {r}");
            }
        }
        Ok(r)
    }
}

// ================================================================ namespaces, processes

static NS_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether this kernel can create VLAN devices (tried in a scratch namespace).
fn kernel_has_vlan() -> Result<bool> {
    let ns = Netns::new()?;
    Ok(ns
        .ip(&[
            "link", "add", "link", "br-ex", "name", "br-ex.1", "type", "vlan", "id", "1",
        ])
        .is_ok())
}

/// A scratch network namespace with a kernel bridge `br-ex` (up), deleted on drop.
struct Netns {
    name: String,
}

fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip").args(args).output()?;
    ensure!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Netns {
    fn new() -> Result<Netns> {
        let n = NS_COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("ovnr-ab-{}-{n}", std::process::id());
        let _ = ip(&["netns", "del", &name]);
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        ns.ip(&["link", "add", "br-ex", "type", "bridge"])?;
        ns.ip(&["link", "set", "br-ex", "up"])?;
        Ok(ns)
    }

    fn ip(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    fn file(&self) -> Result<File> {
        Ok(File::open(format!("/run/netns/{}", self.name))?)
    }

    /// Spawns `cmd` inside the namespace (setns before exec).
    fn spawn(&self, cmd: &mut Command) -> Result<Child> {
        let f = self.file()?;
        let fd = f.as_raw_fd();
        // SAFETY: setns(2) between fork and exec on an fd that is open in the child.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let c = cmd.spawn()?;
        drop(f);
        Ok(c)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

struct Exit {
    code: i32,
    maxrss_kib: i64,
    cpu_s: f64,
}

/// wait4 without blocking: `Some` once the child exited (its rusage).
fn try_wait4(pid: u32) -> Result<Option<Exit>> {
    let mut status = 0i32;
    // SAFETY: plain syscall with valid out-pointers.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as i32, &mut status, libc::WNOHANG, &mut ru) };
    if r == 0 {
        return Ok(None);
    }
    ensure!(
        r == pid as i32,
        "wait4: {}",
        std::io::Error::last_os_error()
    );
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok(Some(Exit {
        code,
        maxrss_kib: ru.ru_maxrss,
        cpu_s: tv(ru.ru_utime) + tv(ru.ru_stime),
    }))
}

/// CPU seconds (user + system) of a process, from /proc.
fn proc_cpu(pid: u32) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = s.rsplit_once(')').map(|x| x.1) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3; utime 14 and stime 15 are at 11 and 12 here.
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// Busy CPU seconds of the whole machine so far (all CPUs).
fn machine_busy() -> f64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = s.lines().next().unwrap_or("");
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let g = |i: usize| v.get(i).copied().unwrap_or(0.0);
    (g(0) + g(1) + g(2) + g(5) + g(6) + g(7)) / 100.0
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

// ================================================================ netlink route monitor

#[derive(Debug, Clone, Copy)]
struct RtEvent {
    t: Instant,
    new: bool,
    table: u32,
    proto: u8,
    dst: u32,
    dst_len: u8,
}

/// RTM_NEWROUTE / RTM_DELROUTE (IPv4) of a namespace, timestamped as they are read.
struct Monitor {
    rx: mpsc::Receiver<RtEvent>,
    stop: Arc<AtomicBool>,
    overflows: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    fn start(ns: &Netns) -> Result<Monitor> {
        let f = ns.file()?;
        let (tx, rx) = mpsc::channel();
        let (rtx, rrx) = mpsc::channel::<Result<()>>();
        let stop = Arc::new(AtomicBool::new(false));
        let overflows = Arc::new(AtomicU64::new(0));
        let (st, ov) = (stop.clone(), overflows.clone());
        let thread = std::thread::spawn(move || {
            let fd = match open_monitor(&f) {
                Ok(fd) => {
                    let _ = rtx.send(Ok(()));
                    fd
                }
                Err(e) => {
                    let _ = rtx.send(Err(e));
                    return;
                }
            };
            let mut buf = vec![0u8; 1 << 16];
            while !st.load(Ordering::Relaxed) {
                // SAFETY: recv into our buffer.
                let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                let t = Instant::now();
                if n < 0 {
                    let e = std::io::Error::last_os_error();
                    match e.raw_os_error() {
                        Some(libc::ENOBUFS) => {
                            ov.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(libc::EAGAIN) | Some(libc::EINTR) => {}
                        _ => break,
                    }
                    continue;
                }
                parse_nl(&buf[..n as usize], t, &tx);
            }
            // SAFETY: our fd.
            unsafe { libc::close(fd) };
        });
        rrx.recv().context("monitor thread")??;
        Ok(Monitor {
            rx,
            stop,
            overflows,
            thread: Some(thread),
        })
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open_monitor(ns: &File) -> Result<i32> {
    // SAFETY: syscalls on this thread with valid arguments; only this thread changes namespace.
    unsafe {
        ensure!(
            libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) == 0,
            "setns: {}",
            std::io::Error::last_os_error()
        );
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        );
        ensure!(
            fd >= 0,
            "netlink socket: {}",
            std::io::Error::last_os_error()
        );
        let size: libc::c_int = 256 << 20;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        );
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        let mut sa: libc::sockaddr_nl = std::mem::zeroed();
        sa.nl_family = libc::AF_NETLINK as u16;
        sa.nl_groups = libc::RTMGRP_IPV4_ROUTE as u32;
        ensure!(
            libc::bind(
                fd,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32
            ) == 0,
            "netlink bind: {}",
            std::io::Error::last_os_error()
        );
        Ok(fd)
    }
}

fn parse_nl(buf: &[u8], t: Instant, tx: &mpsc::Sender<RtEvent>) {
    let u16at = |b: &[u8], o: usize| u16::from_ne_bytes([b[o], b[o + 1]]);
    let u32at = |b: &[u8], o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let mut off = 0;
    while off + 16 <= buf.len() {
        let len = u32at(buf, off) as usize;
        let ty = u16at(buf, off + 4);
        if len < 16 || off + len > buf.len() {
            break;
        }
        if ty == libc::RTM_NEWROUTE || ty == libc::RTM_DELROUTE {
            let p = &buf[off + 16..off + len];
            if p.len() >= 12 && p[0] as i32 == libc::AF_INET {
                let mut ev = RtEvent {
                    t,
                    new: ty == libc::RTM_NEWROUTE,
                    table: p[4] as u32,
                    proto: p[5],
                    dst: 0,
                    dst_len: p[1],
                };
                let mut a = 12;
                while a + 4 <= p.len() {
                    let alen = u16at(p, a) as usize;
                    let aty = u16at(p, a + 2);
                    if alen < 4 || a + alen > p.len() {
                        break;
                    }
                    let d = &p[a + 4..a + alen];
                    match aty {
                        libc::RTA_DST if d.len() == 4 => {
                            ev.dst = u32::from_be_bytes([d[0], d[1], d[2], d[3]])
                        }
                        libc::RTA_TABLE if d.len() == 4 => ev.table = u32at(d, 0),
                        _ => {}
                    }
                    a += (alen + 3) & !3;
                }
                let _ = tx.send(ev);
            }
        }
        off += (len + 3) & !3;
    }
}

// ================================================================ the run

struct Ctx {
    work: PathBuf,
    agent: PathBuf,
    nb: Server,
    ovs: Server,
    vswitchd: Vswitchd,
    shape: Shape,
    agent_log: String,
    out: Option<File>,
    label: String,
    /// Per-run figures for the summary.
    results: BTreeMap<String, Vec<f64>>,
}

impl Ctx {
    fn config(&self, name: &str, frr_interval: Option<u64>) -> Result<PathBuf> {
        let dir = self.work.join(name);
        std::fs::create_dir_all(dir.join("frr"))?;
        let mut s = String::new();
        s.push_str("[DEFAULT]\n");
        s.push_str("bgp_AS = 64999\n");
        s.push_str(&format!("ovsdb_connection = {}\n", self.ovs.remote()));
        s.push_str("ovsdb_connection_timeout = 120\n");
        s.push_str(&format!("bgp_vrf_table_id = {EXPOSURE_TABLE}\n"));
        if let Some(i) = frr_interval {
            s.push_str(&format!("frr_reconcile_interval = {i}\n"));
        }
        s.push_str("[ovn]\n");
        s.push_str(&format!("ovn_nb_connection = {}\n", self.nb.remote()));
        s.push_str("[ovn_route]\n");
        s.push_str("vrf_mode = none\n");
        s.push_str(&format!("frr_vty_socket = {}\n", dir.join("frr").display()));
        s.push_str("status_socket =\n");
        s.push_str(&format!(
            "iproute2_dir = {}\n",
            dir.join("iproute2").display()
        ));
        let path = dir.join("agent.conf");
        std::fs::write(&path, s)?;
        Ok(path)
    }

    fn agent_cmd(&self, conf: &Path, extra: &[&str], log: &Path) -> Result<Command> {
        let mut c = Command::new(&self.agent);
        c.arg("agent").arg("--config").arg(conf).args(extra);
        c.env("RUST_LOG", &self.agent_log);
        c.env("NO_COLOR", "1");
        // ovs-ofctl reaches br-ex through <OVS_RUNDIR>/br-ex.mgmt.
        c.envs(self.vswitchd.env());
        c.stdin(Stdio::null());
        c.stdout(File::create(log.with_extension("out"))?);
        c.stderr(File::create(log)?);
        Ok(c)
    }

    fn note(&mut self, key: &str, v: f64) {
        self.results.entry(key.to_string()).or_default().push(v);
    }

    fn record(&mut self, what: &str, mut v: Map<String, Value>) -> Result<()> {
        v.insert("what".into(), json!(what));
        v.insert("set".into(), json!(self.label));
        let line = serde_json::to_string(&Value::Object(v))?;
        if let Some(f) = &mut self.out {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

fn run(a: RunArgs) -> Result<()> {
    let shape = Shape::from_args(&a.shape)?;
    let t = Instant::now();
    let (db, meta) = ensure_db(&shape, &a.shape)?;
    eprintln!(
        "== NB {} ({} rows, {:.1} MB; {:.1} s)",
        db.display(),
        meta["rows_total"],
        meta["bytes"].as_f64().unwrap_or(0.0) / 1e6,
        t.elapsed().as_secs_f64()
    );
    let expected = shape.expected();
    eprintln!("   expected on {ME}: {}", Value::Object(expected.clone()));
    ensure!(
        a.ovn_route.exists(),
        "no agent binary {}",
        a.ovn_route.display()
    );
    let agent = std::fs::canonicalize(&a.ovn_route)?;

    let work = a
        .shape
        .cache_dir
        .join(format!("agent-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let r = run_in(&a, shape, &db, &meta, &expected, &work, agent);
    if a.keep {
        eprintln!("   work directory kept: {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    r
}

#[allow(clippy::too_many_arguments)]
fn run_in(
    a: &RunArgs,
    shape: Shape,
    db: &Path,
    meta: &Value,
    expected: &Map<String, Value>,
    work: &Path,
    agent: PathBuf,
) -> Result<()> {
    // Servers: NB (a copy of the cached file) and the local Open_vSwitch database.
    std::fs::copy(db, work.join("nb.db"))?;
    let t = Instant::now();
    let nb = Server::start(work, "nb", &work.join("nb.db"))?;
    let nb_load = t.elapsed().as_secs_f64();
    // The provider networks are tagged (VLAN 100 + n): the agent reaches them through VLAN
    // devices on br-ex. A kernel without VLAN devices (8021q) cannot have them, so there the
    // tags are cleared and the networks are flat (16 devices fewer; the routes are the same).
    if !kernel_has_vlan()? {
        let mut rpc = Rpc::connect(&nb.sock)?;
        rpc.transact(
            "OVN_Northbound",
            vec![json!({"op": "update", "table": "Logical_Switch_Port",
                "where": [["type", "==", "localnet"]], "row": {"tag": ["set", []]}})],
        )?;
        eprintln!(
            "   this kernel has no VLAN devices: localnet tags cleared (flat provider networks)"
        );
    }
    let ovs_db = work.join("ovs.db");
    let st = Command::new("ovsdb-tool")
        .arg("create")
        .arg(&ovs_db)
        .arg("/usr/share/openvswitch/vswitch.ovsschema")
        .status()?;
    ensure!(st.success(), "ovsdb-tool create (Open_vSwitch) failed");
    let ovs = Server::start(work, "ovs", &ovs_db)?;
    let vswitchd = Vswitchd::start(work, &ovs)?;
    vswitchd.vsctl(&[
        "--",
        "init",
        "--",
        "set",
        "Open_vSwitch",
        ".",
        &format!("external_ids:system-id={ME}"),
        &format!("external_ids:hostname={ME}"),
        "external_ids:ovn-bridge-mappings=physnet1:br-ex",
        "--",
        "add-br",
        "br-int",
        "--",
        "set",
        "bridge",
        "br-int",
        "datapath-type=dummy",
        "fail-mode=secure",
        "--",
        "add-br",
        "br-ex",
        "--",
        "set",
        "bridge",
        "br-ex",
        "datapath-type=dummy",
        // What ovn-controller creates for the localnet ports: the patch pair br-ex <-> br-int.
        "--",
        "add-port",
        "br-ex",
        "patch-provnet-physnet1-to-br-int",
        "--",
        "set",
        "interface",
        "patch-provnet-physnet1-to-br-int",
        "type=patch",
        "options:peer=patch-br-int-to-provnet-physnet1",
        "external_ids:ovn-localnet-port=provnet-physnet1",
        "--",
        "add-port",
        "br-int",
        "patch-br-int-to-provnet-physnet1",
        "--",
        "set",
        "interface",
        "patch-br-int-to-provnet-physnet1",
        "type=patch",
        "options:peer=patch-provnet-physnet1-to-br-int",
    ])?;
    let label = format!(
        "{}{}",
        a.shape.set,
        if shape.status { "" } else { "-stock-schema" }
    );
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut ctx = Ctx {
        work: work.to_path_buf(),
        agent,
        nb,
        ovs,
        vswitchd,
        shape,
        agent_log: a.agent_log.clone(),
        out: match &a.out {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
            None => None,
        },
        label,
        results: BTreeMap::new(),
    };
    let mut m = Map::new();
    m.insert("meta".into(), meta.clone());
    m.insert("nb_server_load_s".into(), json!(r3(nb_load)));
    m.insert("git_head".into(), json!(commit));
    m.insert("agent".into(), json!(ctx.agent.display().to_string()));
    ctx.record("setup", m)?;
    println!(
        "set {}: NB {} rows, {:.1} MB, ovsdb-server loaded it in {:.2} s",
        ctx.label,
        meta["rows_total"],
        meta["bytes"].as_f64().unwrap_or(0.0) / 1e6,
        nb_load
    );

    // 0. The NB server's own limit for the agent's initial load.
    if let (Some(rr), false, true) = (&a.raw_reader, a.dry_run_only, a.repeat > 0) {
        raw_floor(&mut ctx, rr, a.repeat)?;
    }
    // 1. The plan, by dry run (checked against the generator's expectation, which is what the
    // measurements below wait for).
    dry_run(&mut ctx, expected)?;
    if a.dry_run_only {
        return Ok(());
    }
    let count = |k: &str| expected[k].as_u64().unwrap_or(0) as usize;
    let want = (count("routes_exposure_table"), count("routes_bridge_table"));

    // 2. agent --once, `repeat` times.
    let mut dump = None;
    for i in 0..a.repeat {
        let last = i + 1 == a.repeat;
        dump = once(&mut ctx, i, want, last)?.or(dump);
    }
    // 3. ip -batch reference.
    if let Some(routes) = dump {
        ip_batch(&mut ctx, &routes, a.repeat)?;
    }
    if a.repeat > 0 {
        summary(&ctx);
    }
    // 4. Change latency.
    if a.changes > 0 {
        let opts = LatencyOpts {
            n: a.changes,
            gap_ms: a.gap_ms,
            idle_before_ms: a.idle_before_ms,
            timeout: Duration::from_secs(a.change_timeout_s),
            frr_interval: a.frr_interval,
        };
        latency(&mut ctx, want, &opts)?;
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Medians of the runs so far and the ratios against `ip -batch`.
fn summary(ctx: &Ctx) {
    let get = |k: &str| median(ctx.results.get(k).cloned().unwrap_or_default());
    let complete = get("complete_s");
    let install = get("install_s");
    let batch = get("ip_batch_s");
    let floor = get("raw_elapsed_s");
    println!(
        "summary {}: medians: agent start -> kernel complete {:.3} s, of which install (first -> last route) {:.3} s; ip -batch {:.3} s; NB server's own send time {:.3} s; peak RSS {:.1} MiB",
        ctx.label, complete, install, batch, floor, get("peak_rss_mib")
    );
    println!(
        "summary {}: ratios to ip -batch: complete {:.1}x, install {:.2}x, complete minus the NB floor {:.1}x",
        ctx.label,
        complete / batch,
        install / batch,
        (complete - floor) / batch
    );
}

/// raw-reader on the NB server with the agent's tables and columns.
fn raw_floor(ctx: &mut Ctx, rr: &Path, repeat: usize) -> Result<()> {
    // Exactly what the agent monitors (without a Southbound database).
    let sel = ovn_route_plan::exposure::nb_tables();
    let columns = ovn_route_bench::selection_specs(&sel);
    let tables: Vec<&str> = sel.iter().map(|t| t.table.as_str()).collect();
    let out = Command::new(rr)
        .arg("--socket")
        .arg(&ctx.nb.sock)
        .arg("--tables")
        .arg(tables.join(","))
        .arg("--columns")
        .arg(columns.join(";"))
        .arg("--repeat")
        .arg(repeat.to_string())
        .arg("--server-pid")
        .arg(ctx.nb.pid().to_string())
        .arg("--json")
        .stderr(Stdio::null())
        .output()?;
    ensure!(out.status.success(), "raw-reader failed");
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(l)?;
        println!(
            "raw-reader (the NB server's own limit, agent's selection): {:.3} s, first byte {:.3} s, {:.1} MB, server CPU {:.2} s",
            v["elapsed_s"].as_f64().unwrap_or(f64::NAN),
            v["ttfb_s"].as_f64().unwrap_or(f64::NAN),
            v["bytes"].as_f64().unwrap_or(f64::NAN) / 1e6,
            v["server_cpu_s"].as_f64().unwrap_or(f64::NAN)
        );
        ctx.note("raw_elapsed_s", v["elapsed_s"].as_f64().unwrap_or(f64::NAN));
        let mut m = Map::new();
        m.insert("raw_reader".into(), v);
        ctx.record("raw-reader", m)?;
    }
    Ok(())
}

/// `ovn-route agent --once --dry-run` in a fresh namespace: route counts per table.
fn dry_run(ctx: &mut Ctx, expected: &Map<String, Value>) -> Result<(usize, usize)> {
    let ns = Netns::new()?;
    let conf = ctx.config("dry-run", None)?;
    let log = ctx.work.join("dry-run/agent.log");
    let t = Instant::now();
    let mut child = ns.spawn(
        ctx.agent_cmd(&conf, &["--once", "--dry-run"], &log)?
            .stdout(Stdio::piped()),
    )?;
    let mut lines = Vec::new();
    if let Some(out) = child.stdout.take() {
        for l in BufReader::new(out).lines() {
            lines.push(l?);
        }
    }
    let st = child.wait()?;
    let secs = t.elapsed().as_secs_f64();
    let mut per_table: BTreeMap<u32, usize> = BTreeMap::new();
    let mut other = BTreeMap::<String, usize>::new();
    for l in &lines {
        if let Some(rest) = l.strip_prefix("table ") {
            if let Some((tab, what)) = rest.split_once(": ") {
                if what.starts_with("add route ") {
                    *per_table.entry(tab.parse().unwrap_or(0)).or_default() += 1;
                    continue;
                }
            }
        }
        let kind = l.split(':').next().unwrap_or("").to_string();
        let kind = if l.contains("add rule") {
            "add rule".to_string()
        } else if l.contains("neighbours: set") {
            "neighbour set".to_string()
        } else {
            kind
        };
        *other.entry(kind).or_default() += 1;
    }
    let t10 = per_table.get(&EXPOSURE_TABLE).copied().unwrap_or(0);
    let (tbr_id, tbr) = per_table
        .iter()
        .find(|(k, _)| **k != EXPOSURE_TABLE)
        .map(|(k, v)| (*k, *v))
        .unwrap_or((0, 0));
    let exp10 = expected["routes_exposure_table"].as_u64().unwrap_or(0) as usize;
    let ok = t10 == exp10 && tbr == expected["routes_bridge_table"].as_u64().unwrap_or(0) as usize;
    println!(
        "dry run ({:.2} s, exit {}): table {EXPOSURE_TABLE}: {t10} routes, table {tbr_id} (br-ex): {tbr} routes, other: {:?}; expected {exp10} exposed: {}",
        secs,
        st.code().unwrap_or(-1),
        other,
        if ok { "match" } else { "MISMATCH" }
    );
    let mut m = Map::new();
    m.insert("seconds".into(), json!(r3(secs)));
    m.insert("routes_exposure_table".into(), json!(t10));
    m.insert("bridge_table".into(), json!(tbr_id));
    m.insert("routes_bridge_table".into(), json!(tbr));
    m.insert("other".into(), json!(other));
    m.insert("expected".into(), Value::Object(expected.clone()));
    m.insert("matches_expected".into(), json!(ok));
    ctx.record("dry-run", m)?;
    Ok((t10, tbr))
}

/// Counts our new routes per table until the expected numbers are reached.
struct Completion {
    want: (usize, usize),
    seen10: HashSet<u32>,
    seen_br: HashSet<u32>,
    first: Option<Instant>,
    last: Option<Instant>,
    done: Option<Instant>,
}

impl Completion {
    fn new(want: (usize, usize)) -> Self {
        Completion {
            want,
            seen10: HashSet::new(),
            seen_br: HashSet::new(),
            first: None,
            last: None,
            done: None,
        }
    }
    fn feed(&mut self, ev: &RtEvent) {
        if !ev.new || ev.proto != PROTO {
            return;
        }
        self.first.get_or_insert(ev.t);
        self.last = Some(ev.t);
        if ev.table == EXPOSURE_TABLE {
            self.seen10.insert(ev.dst);
        } else {
            self.seen_br.insert(ev.dst);
        }
        if self.done.is_none()
            && self.seen10.len() >= self.want.0
            && self.seen_br.len() >= self.want.1
        {
            self.done = Some(ev.t);
        }
    }
}

/// Seconds of the day of a log line's RFC 3339 timestamp (`2026-01-01T08:09:48.420138Z ...`).
fn log_time(line: &str) -> Option<f64> {
    let ts = line.split_whitespace().next()?;
    let t = ts.split_once('T')?.1.trim_end_matches('Z');
    let mut it = t.split(':');
    let h: f64 = it.next()?.parse().ok()?;
    let m: f64 = it.next()?.parse().ok()?;
    let s: f64 = it.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Time from the end of the first pass ("reconciled") to the first FRR warning, minus the 10 s
/// during which the agent retries vtysh: what the agent did in between (the status report).
fn after_first_pass(log_text: &str) -> Option<f64> {
    let rec = log_text
        .lines()
        .find(|l| l.contains("reconciled"))
        .and_then(log_time)?;
    let frr = log_text
        .lines()
        .find(|l| l.contains("FRR block not applied"))
        .and_then(log_time)?;
    Some(frr - rec - 10.0)
}

fn parse_reconciled_ms(log: &Path) -> Vec<f64> {
    let text = ovn_route_bench::strip_ansi(&std::fs::read_to_string(log).unwrap_or_default());
    text.lines()
        .filter(|l| l.contains("reconciled"))
        .filter_map(|l| l.split("ms=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .collect()
}

/// One `agent --once` in a fresh namespace; with `dump`, returns the installed routes.
fn once(ctx: &mut Ctx, i: usize, want: (usize, usize), dump: bool) -> Result<Option<Vec<String>>> {
    let ns = Netns::new()?;
    let name = format!("once-{i}");
    let conf = ctx.config(&name, None)?;
    let log = ctx.work.join(&name).join("agent.log");
    let mon = Monitor::start(&ns)?;
    let mut cmd = ctx.agent_cmd(&conf, &["--once"], &log)?;
    let busy0 = machine_busy();
    let nb_cpu0 = proc_cpu(ctx.nb.pid());
    let t0 = Instant::now();
    let child = ns.spawn(&mut cmd)?;
    let pid = child.id();
    let mut c = Completion::new(want);
    let mut nb_cpu_at_done = None;
    let mut busy_at_done = None;
    let mut hwm_at_done = None;
    let exit = loop {
        match mon.rx.recv_timeout(Duration::from_millis(20)) {
            Ok(ev) => {
                c.feed(&ev);
                if c.done.is_some() && nb_cpu_at_done.is_none() {
                    nb_cpu_at_done = Some(proc_cpu(ctx.nb.pid()) - nb_cpu0);
                    busy_at_done = Some(machine_busy() - busy0);
                    hwm_at_done = vm_hwm_kib(pid);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => bail!("monitor: {e}"),
        }
        if let Some(e) = try_wait4(pid)? {
            break e;
        }
        ensure!(
            t0.elapsed() < Duration::from_secs(900),
            "agent --once did not finish"
        );
    };
    let t_exit = t0.elapsed();
    drop(child); // reaped by wait4 above
                 // Late events (none expected).
    while let Ok(ev) = mon.rx.recv_timeout(Duration::from_millis(100)) {
        c.feed(&ev);
    }
    let ovf = mon.overflows.load(Ordering::Relaxed);
    drop(mon);
    let rel = |x: Option<Instant>| x.map(|x| r3((x - t0).as_secs_f64()));
    let passes = parse_reconciled_ms(&log);
    let log_text = ovn_route_bench::strip_ansi(&std::fs::read_to_string(&log).unwrap_or_default());
    let frr_warn = log_text
        .lines()
        .filter(|l| l.contains("FRR block not applied"))
        .count();
    let agent_cpu_note = exit.cpu_s;
    let complete = rel(c.done);
    let publish = after_first_pass(&log_text);
    println!(
        "agent --once #{i}: first route {:?} s, kernel state complete {:?} s (install {:.3} s), exit {:.2} s (code {}), peak RSS {:.1} MiB ({:.1} MiB when complete), agent CPU {:.2} s, NB server CPU to complete {:.2} s, machine busy to complete {:.2} CPU-s; reconciled ms {:?}; after the first pass before FRR {:.2} s; netlink overflows {ovf}; FRR warnings {frr_warn}",
        rel(c.first),
        complete,
        match (c.first, c.done) { (Some(a), Some(b)) => (b - a).as_secs_f64(), _ => f64::NAN },
        t_exit.as_secs_f64(),
        exit.code,
        exit.maxrss_kib as f64 / 1024.0,
        hwm_at_done.map(|h| h as f64 / 1024.0).unwrap_or(f64::NAN),
        agent_cpu_note,
        nb_cpu_at_done.unwrap_or(f64::NAN),
        busy_at_done.unwrap_or(f64::NAN),
        passes,
        publish.unwrap_or(f64::NAN),
    );
    if c.done.is_none() {
        println!(
            "agent --once #{i}: kernel state NEVER complete: saw {} / {} routes in table {EXPOSURE_TABLE}, {} / {} in the bridge table; agent log tail:\n{}",
            c.seen10.len(), want.0, c.seen_br.len(), want.1,
            log_text.lines().filter(|l| !l.is_empty() && !l.starts_with(' ') && !l.starts_with("Stack")).rev().take(4).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let mut m = Map::new();
    m.insert("run".into(), json!(i));
    m.insert("first_route_s".into(), json!(rel(c.first)));
    m.insert("complete_s".into(), json!(complete));
    m.insert(
        "install_s".into(),
        json!(match (c.first, c.done) {
            (Some(a), Some(b)) => r3((b - a).as_secs_f64()),
            _ => f64::NAN,
        }),
    );
    m.insert("exit_s".into(), json!(r3(t_exit.as_secs_f64())));
    m.insert("exit_code".into(), json!(exit.code));
    m.insert(
        "peak_rss_mib".into(),
        json!(r3(exit.maxrss_kib as f64 / 1024.0)),
    );
    m.insert(
        "peak_rss_at_complete_mib".into(),
        json!(hwm_at_done.map(|h| r3(h as f64 / 1024.0))),
    );
    m.insert("agent_cpu_s".into(), json!(r3(exit.cpu_s)));
    m.insert(
        "nb_server_cpu_to_complete_s".into(),
        json!(nb_cpu_at_done.map(r3)),
    );
    m.insert(
        "machine_busy_cpu_s_to_complete".into(),
        json!(busy_at_done.map(r3)),
    );
    m.insert("reconciled_ms".into(), json!(passes));
    m.insert("netlink_overflows".into(), json!(ovf));
    m.insert(
        "after_first_pass_before_frr_s".into(),
        json!(publish.map(r3)),
    );
    m.insert("frr_warnings".into(), json!(frr_warn));
    m.insert(
        "routes_seen".into(),
        json!([c.seen10.len(), c.seen_br.len()]),
    );
    ctx.record("once", m)?;
    if let (Some(f), Some(d)) = (c.first, c.done) {
        ctx.note("complete_s", (d - t0).as_secs_f64());
        ctx.note("install_s", (d - f).as_secs_f64());
    }
    ctx.note("peak_rss_mib", exit.maxrss_kib as f64 / 1024.0);
    if !dump || c.done.is_none() {
        return Ok(None);
    }
    let out = ns.ip(&["route", "show", "table", "all", "proto", &PROTO.to_string()])?;
    let routes: Vec<String> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            // `ip` leaves out what the filter fixes (the protocol): put it back.
            let mut w: Vec<&str> = l
                .split_whitespace()
                .filter(|w| !matches!(*w, "linkdown" | "dead"))
                .collect();
            if !w.contains(&"proto") {
                w.extend(["proto", "201"]);
            }
            w.join(" ")
        })
        .collect();
    std::fs::write(ctx.work.join("routes.txt"), routes.join("\n") + "\n")?;
    Ok(Some(routes))
}

/// The same routes with `ip -batch` into fresh namespaces.
fn ip_batch(ctx: &mut Ctx, routes: &[String], repeat: usize) -> Result<()> {
    let batch = ctx.work.join("routes.batch");
    {
        let mut f = std::io::BufWriter::new(File::create(&batch)?);
        for r in routes {
            writeln!(f, "route add {r}")?;
        }
    }
    for i in 0..repeat {
        let ns = Netns::new()?;
        let t = Instant::now();
        let st = Command::new("ip")
            .arg("-n")
            .arg(&ns.name)
            .arg("-batch")
            .arg(&batch)
            .status()?;
        let secs = t.elapsed().as_secs_f64();
        ensure!(st.success(), "ip -batch failed");
        let n = ns
            .ip(&["route", "show", "table", "all", "proto", &PROTO.to_string()])?
            .lines()
            .count();
        println!(
            "ip -batch #{i}: {} routes in {:.3} s (then {n} routes with proto {PROTO})",
            routes.len(),
            secs
        );
        let mut m = Map::new();
        m.insert("run".into(), json!(i));
        m.insert("routes".into(), json!(routes.len()));
        m.insert("seconds".into(), json!(r3(secs)));
        ctx.record("ip-batch", m)?;
        ctx.note("ip_batch_s", secs);
    }
    Ok(())
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The agent as a daemon; `n` NB changes one at a time, each timed to its route in the kernel.
struct LatencyOpts {
    n: usize,
    gap_ms: u64,
    idle_before_ms: u64,
    timeout: Duration,
    frr_interval: u64,
}

/// Waits until process `pid` has used (almost) no CPU for `quiet` (at most `limit`).
fn wait_cpu_idle(pid: u32, quiet: Duration, limit: Duration) -> Duration {
    let t0 = Instant::now();
    let step = Duration::from_millis(50);
    let mut since = Instant::now();
    let mut last = proc_cpu(pid);
    while t0.elapsed() < limit {
        std::thread::sleep(step);
        let now = proc_cpu(pid);
        // /proc counts in 10 ms ticks: one tick in 50 ms is noise (timers, the FRR watcher).
        if now - last > 0.011 {
            since = Instant::now();
        }
        last = now;
        if since.elapsed() >= quiet {
            break;
        }
    }
    t0.elapsed()
}

fn latency(ctx: &mut Ctx, want: (usize, usize), o: &LatencyOpts) -> Result<()> {
    let (n, gap_ms, frr_interval) = (o.n, o.gap_ms, o.frr_interval);
    let ns = Netns::new()?;
    let conf = ctx.config("daemon", Some(frr_interval))?;
    let log = ctx.work.join("daemon/agent.log");
    let mon = Monitor::start(&ns)?;
    let mut cmd = ctx.agent_cmd(&conf, &[], &log)?;
    let t0 = Instant::now();
    let mut child = ns.spawn(&mut cmd)?;
    let pid = child.id();
    let mut c = Completion::new(want);
    while c.done.is_none() {
        if let Ok(ev) = mon.rx.recv_timeout(Duration::from_millis(50)) {
            c.feed(&ev);
        }
        if let Some(st) = child.try_wait()? {
            bail!("agent exited: {st}");
        }
        ensure!(
            t0.elapsed() < Duration::from_secs(900),
            "daemon never completed the kernel state"
        );
    }
    let complete = c.done.map(|d| (d - t0).as_secs_f64()).unwrap_or(f64::NAN);
    // Without FRR, the first FRR apply and the first FRR check each retry vtysh for 10 s inside
    // the event loop: wait for both to be over.
    let settle = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let frr = text.lines().filter(|l| l.contains("FRR block")).count();
        if frr >= 2 || settle.elapsed() > Duration::from_secs(600) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Then until the agent is idle (the status report after each pass can take seconds).
    wait_cpu_idle(pid, Duration::from_secs(2), Duration::from_secs(600));
    while mon.rx.try_recv().is_ok() {}
    println!(
        "daemon: kernel state complete {complete:.3} s after start; settled (FRR retries over, agent idle) after {:.1} s; {n} changes, gap {gap_ms} ms{}",
        t0.elapsed().as_secs_f64(),
        if o.idle_before_ms > 0 { format!(", each after the agent was idle for {} ms", o.idle_before_ms) } else { String::new() }
    );

    let s = ctx.shape.clone();
    let ids = Ids {
        seed: s.seed,
        mac_kind: K_MAC,
    };
    let mut rpc = Rpc::connect(&ctx.nb.sock)?;
    let mut from_reply = Vec::with_capacity(n);
    let mut from_send = Vec::with_capacity(n);
    let mut bridge_first = Vec::with_capacity(n);
    let mut kinds: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut before_reply = 0usize;
    let mut timeouts = 0usize;
    for i in 0..n {
        let (port_move, idx) = s.change(i);
        let (kind, prefix, ops) = if port_move {
            let k = idx;
            ensure!(
                k < s.vms && s.vm_chassis(k) == 1,
                "change {i}: VM {k} is not on bench-hv2"
            );
            let u = ids.uuid(K_VM_LSP, k);
            (
                "port moved here",
                s.vm_ip(k),
                vec![json!({
                    "op": "mutate",
                    "table": "Logical_Switch_Port",
                    "where": [["_uuid", "==", uuid_ref(&u)]],
                    "mutations": [
                        ["options", "delete", ["set", ["requested-chassis"]]],
                        ["options", "insert", smap(&[("requested-chassis", ME.to_string())])],
                    ],
                })],
            )
        } else {
            let r = idx;
            ensure!(
                r < s.routers && s.gw_chassis(r) == 0,
                "change {i}: router {r}'s gateway is not on bench-hv1"
            );
            let fip = s.change_fip_ip(i, r);
            let (x, y) = Shape::tnet(r);
            (
                "new FIP",
                fip,
                vec![
                    json!({"op": "insert", "table": "NAT", "uuid-name": "fip", "row": {
                        "type": "dnat_and_snat",
                        "external_ip": fip.to_string(),
                        "logical_ip": format!("10.{x}.{y}.{}", 100 + (i / 2) % 100),
                        "external_ids": smap(&[("neutron:fip_id", format!("bench-{i}"))]),
                    }}),
                    json!({"op": "mutate", "table": "Logical_Router",
                           "where": [["_uuid", "==", uuid_ref(&ids.uuid(K_LR, r))]],
                           "mutations": [["nat", "insert", ["named-uuid", "fip"]]]}),
                ],
            )
        };
        let dst = u32::from(prefix);
        if o.idle_before_ms > 0 {
            wait_cpu_idle(
                pid,
                Duration::from_millis(o.idle_before_ms),
                Duration::from_secs(600),
            );
        }
        let t_send = Instant::now();
        rpc.transact(NB, ops)?;
        let t_reply = Instant::now();
        let mut t_exp = None;
        let mut t_br = None;
        let deadline = t_reply + o.timeout;
        while t_exp.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match mon.rx.recv_timeout(left) {
                Ok(ev) if ev.new && ev.dst == dst && ev.dst_len == 32 && ev.proto == PROTO => {
                    if ev.table == EXPOSURE_TABLE {
                        t_exp = Some(ev.t);
                    } else {
                        t_br.get_or_insert(ev.t);
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let Some(te) = t_exp else {
            timeouts += 1;
            eprintln!(
                "change {i} ({kind}, {prefix}): no route within {:?}",
                o.timeout
            );
            continue;
        };
        let lr = if te >= t_reply {
            (te - t_reply).as_secs_f64()
        } else {
            before_reply += 1;
            -(t_reply - te).as_secs_f64()
        };
        from_reply.push(lr * 1e3);
        from_send.push((te - t_send).as_secs_f64() * 1e3);
        if let Some(b) = t_br {
            bridge_first.push(if b >= t_send {
                (b - t_send).as_secs_f64() * 1e3
            } else {
                0.0
            });
        }
        kinds.entry(kind).or_default().push(lr * 1e3);
        std::thread::sleep(Duration::from_millis(gap_ms));
    }
    let hwm = vm_hwm_kib(pid);
    let agent_cpu = proc_cpu(pid);
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    let ovf = mon.overflows.load(Ordering::Relaxed);
    let mut m = Map::new();
    let summary = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        json!({"n": v.len(), "p50_ms": r3(pct(v, 0.5)), "p90_ms": r3(pct(v, 0.9)), "p99_ms": r3(pct(v, 0.99)), "max_ms": r3(v.last().copied().unwrap_or(f64::NAN)), "min_ms": r3(v.first().copied().unwrap_or(f64::NAN))})
    };
    let rep = summary(&mut from_reply);
    let snd = summary(&mut from_send);
    let br = summary(&mut bridge_first);
    println!("change -> exposure-table route, from the commit reply: {rep}");
    println!("change -> exposure-table route, from the transaction sent: {snd}");
    println!("transaction sent -> bridge-table route: {br}");
    let mut per_kind = Map::new();
    for (k, v) in kinds.iter_mut() {
        let s = summary(v);
        println!("  {k}: {s}");
        per_kind.insert(k.to_string(), s);
    }
    let passes = parse_reconciled_ms(&log);
    let mut sorted = passes.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    println!(
        "agent: peak RSS {:.1} MiB, CPU {:.1} s; {} reconciles logged, their ms p50 {:.2} p99 {:.2} max {:.2}; route seen before the reply: {before_reply}; timeouts {timeouts}; netlink overflows {ovf}",
        hwm.unwrap_or(0) as f64 / 1024.0,
        agent_cpu,
        passes.len(),
        pct(&sorted, 0.5),
        pct(&sorted, 0.99),
        sorted.last().copied().unwrap_or(f64::NAN)
    );
    m.insert("changes".into(), json!(n));
    m.insert("gap_ms".into(), json!(gap_ms));
    m.insert("idle_before_ms".into(), json!(o.idle_before_ms));
    m.insert("frr_reconcile_interval".into(), json!(frr_interval));
    m.insert("daemon_complete_s".into(), json!(r3(complete)));
    m.insert("from_reply".into(), rep);
    m.insert("from_send".into(), snd);
    m.insert("bridge_table_from_send".into(), br);
    m.insert("per_kind_from_reply".into(), Value::Object(per_kind));
    m.insert("route_before_reply".into(), json!(before_reply));
    m.insert("timeouts".into(), json!(timeouts));
    m.insert(
        "peak_rss_mib".into(),
        json!(hwm.map(|h| r3(h as f64 / 1024.0))),
    );
    m.insert("agent_cpu_s".into(), json!(r3(agent_cpu)));
    m.insert("reconciled_ms_p50".into(), json!(r3(pct(&sorted, 0.5))));
    m.insert("reconciled_ms_p99".into(), json!(r3(pct(&sorted, 0.99))));
    m.insert("netlink_overflows".into(), json!(ovf));
    ctx.record("latency", m)?;
    Ok(())
}
