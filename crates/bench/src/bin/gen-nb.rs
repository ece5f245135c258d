//! gen-nb: builds a deterministic, neutron-like OVN Northbound database file for the replica benchmark.
//!
//! Shape at `--scale 1` (the benchmark issue's fixture):
//! - 10,000 Logical_Switches (`neutron-<uuid>`): 10 provider ("external") networks with a localnet port,
//!   the rest tenant networks;
//! - 100,000 workload Logical_Switch_Ports on the tenant networks: one metadata localport per network plus
//!   compute ports (`compute:nova`) with addresses, port_security, options and neutron external_ids;
//! - 5,000 Logical_Routers, each with one gateway port (3 Gateway_Chassis rows) on a provider network and
//!   1 or 2 interfaces on tenant networks (so 2-3 Logical_Router_Ports each), the router-type LSPs that
//!   link them, one default static route, one SNAT per interface and 0-3 floating IPs (dnat_and_snat);
//! - 500 Load_Balancers (Octavia-like) attached to a router and one of its networks;
//! - one NB_Global row.
//!
//! Every UUID, name, address and choice is a pure function of `--seed` and the row's index, and rows are
//! inserted with explicit UUIDs, so the database content is the same on every run.
//!
//! The rows go in large transactions over a unix socket to a private `ovsdb-server`, which is then
//! compacted (`ovsdb-server/compact`) so the file holds one snapshot record. The result is cached under
//! `--cache-dir` keyed by every parameter; a rerun with the same parameters only prints the cached path.

// `n % d == 0` rather than `is_multiple_of` (Rust 1.87): the workspace's rust-version is 1.80.
#![allow(clippy::manual_is_multiple_of)]

use clap::Parser;
use ovn_route_bench::{insert, smap, str_set, uuid_ref, uuid_set, Ids};
use serde_json::{json, Map, Value};
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bump when the generated content changes, so cached files are not reused.
const GEN_VERSION: u32 = 3;
const DB: &str = "OVN_Northbound";

#[derive(Parser, Debug)]
#[command(about = "Generate a deterministic neutron-like OVN NB database (cached)")]
struct Args {
    /// Size factor: 1.0 = 10,000 switches, 100,000 workload LSPs, 5,000 routers, 500 load balancers.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Seed for every UUID, address and choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Override the number of Logical_Switches (default 10,000 x scale).
    #[arg(long)]
    switches: Option<usize>,
    /// Override the number of workload LSPs (metadata + compute ports; default 100,000 x scale).
    #[arg(long)]
    lsps: Option<usize>,
    /// Override the number of Logical_Routers (default 5,000 x scale).
    #[arg(long)]
    routers: Option<usize>,
    /// Override the number of provider (external) networks (default 10 x scale, at least 1).
    #[arg(long)]
    ext_nets: Option<usize>,
    /// Override the number of Load_Balancers (default 500 x scale).
    #[arg(long)]
    lbs: Option<usize>,
    /// Make every Nth tenant network dual-stack (an IPv6 address on its ports); 0 = IPv4 only.
    #[arg(long, default_value_t = 0)]
    dual_stack_every: usize,
    /// Add the LSP external_ids keys of newer neutron releases (neutron:port_capabilities,
    /// neutron:subnet_pool_addr_scope4/6, neutron:vnic_type): about 140 bytes more per port.
    #[arg(long)]
    newer_neutron_keys: bool,
    /// Rows per transaction (approximate: a router and its networks are never split).
    #[arg(long, default_value_t = 20_000)]
    batch_rows: usize,
    /// Directory of the cache of generated databases.
    #[arg(long, default_value = "/var/tmp/ovnr-bench")]
    cache_dir: PathBuf,
    /// OVN NB schema file.
    #[arg(long, default_value = "/usr/share/ovn/ovn-nb.ovsschema")]
    schema: PathBuf,
    /// Regenerate even if the cached file exists.
    #[arg(long)]
    force: bool,
    /// Print only the database path on stdout (for scripts); the report goes to stderr.
    #[arg(long)]
    print_path: bool,
}

// ---------------------------------------------------------------- deterministic ids

// Kinds of identifiers: each (kind, index) pair gives an independent value.
const K_NET: u64 = 1;
const K_LS: u64 = 2;
const K_PORT: u64 = 3;
const K_LSP: u64 = 4;
const K_ROUTER: u64 = 5;
const K_LR: u64 = 6;
const K_RIF_PORT: u64 = 7;
const K_RIF_LSP: u64 = 8;
const K_RIF_LRP: u64 = 9;
const K_GW_PORT: u64 = 10;
const K_GW_LSP: u64 = 11;
const K_GW_LRP: u64 = 12;
const K_GC: u64 = 13;
const K_NAT: u64 = 14;
const K_FIP: u64 = 15;
const K_LRSR: u64 = 16;
const K_LB: u64 = 17;
const K_LB_ROW: u64 = 18;
const K_PROJECT: u64 = 19;
const K_DEVICE: u64 = 20;
const K_SUBNET: u64 = 21;
const K_SG: u64 = 22;
const K_LOCALNET: u64 = 23;
const K_NBG: u64 = 24;
const K_LISTENER: u64 = 25;
const K_POOL: u64 = 26;
const K_MEMBER: u64 = 27;
const K_VIP_PORT: u64 = 28;
const K_CHOICE: u64 = 29;

/// A choice in 0..n, independent per (what, idx).
trait Pick {
    fn pick(&self, what: u64, idx: u64, n: u64) -> u64;
}

impl Pick for Ids {
    fn pick(&self, what: u64, idx: u64, n: u64) -> u64 {
        self.raw(K_CHOICE, what.wrapping_mul(0x1_0000_0000) ^ idx) % n.max(1)
    }
}
const K_MAC: u64 = 30;

// ---------------------------------------------------------------- OVSDB JSON helpers

// ---------------------------------------------------------------- the plan

struct Counts {
    switches: usize,
    ext_nets: usize,
    tenant_nets: usize,
    lsps: usize,
    routers: usize,
    lbs: usize,
}

struct Plan {
    c: Counts,
    /// Workload ports (metadata + compute) of each tenant network.
    net_ports: Vec<u32>,
    /// Global index of the first workload port of each tenant network.
    port_base: Vec<u64>,
    /// Tenant networks each router has an interface on.
    router_nets: Vec<Vec<usize>>,
    /// Router of each tenant network, if any.
    net_router: Vec<Option<usize>>,
    /// Load balancers of each router.
    router_lbs: Vec<Vec<usize>>,
    /// Router of each load balancer.
    lb_router: Vec<usize>,
    hosts: u64,
    projects: u64,
    gw_chassis: u64,
}

impl Plan {
    fn new(c: Counts) -> anyhow::Result<Plan> {
        let t = c.tenant_nets;
        anyhow::ensure!(t > 0, "need at least one tenant network");
        anyhow::ensure!(
            c.ext_nets <= 16,
            "at most 16 provider networks (172.16-31.0.0/16)"
        );
        anyhow::ensure!(t <= 65_536, "at most 65,536 tenant networks (10.x.y.0/24)");
        let base = c.lsps / t;
        let rem = c.lsps % t;
        anyhow::ensure!(base < 250, "at most ~250 ports per /24 network");
        let net_ports: Vec<u32> = (0..t)
            .map(|i| (base + usize::from(i < rem)) as u32)
            .collect();
        let mut port_base = Vec::with_capacity(t);
        let mut acc = 0u64;
        for &n in &net_ports {
            port_base.push(acc);
            acc += u64::from(n);
        }
        // Routers alternate 2 and 1 interfaces (3 and 2 ports with the gateway port), taking tenant
        // networks in order while there are any left.
        let mut router_nets = Vec::with_capacity(c.routers);
        let mut net_router = vec![None; t];
        let mut cursor = 0usize;
        for r in 0..c.routers {
            let want = if r % 2 == 0 { 2 } else { 1 };
            let mut nets = Vec::new();
            for _ in 0..want {
                if cursor < t {
                    net_router[cursor] = Some(r);
                    nets.push(cursor);
                    cursor += 1;
                }
            }
            router_nets.push(nets);
        }
        let mut router_lbs = vec![Vec::new(); c.routers];
        let mut lb_router = Vec::with_capacity(c.lbs);
        if c.routers > 0 {
            for b in 0..c.lbs {
                let r = b * c.routers / c.lbs;
                router_lbs[r].push(b);
                lb_router.push(r);
            }
        }
        let hosts = (c.lsps as u64 / 200).max(10);
        let projects = (t as u64 / 5).max(1);
        Ok(Plan {
            c,
            net_ports,
            port_base,
            router_nets,
            net_router,
            router_lbs,
            lb_router,
            hosts,
            projects,
            gw_chassis: 9,
        })
    }

    fn mac_rif(&self, t: usize) -> u64 {
        self.c.lsps as u64 + t as u64
    }

    fn mac_gw(&self, r: usize) -> u64 {
        (self.c.lsps + self.c.tenant_nets + r) as u64
    }
}

fn net_octets(t: usize) -> (usize, usize) {
    ((t >> 8) & 0xff, t & 0xff)
}

fn ext_gw_ip(plan: &Plan, r: usize) -> (usize, String) {
    let e = r % plan.c.ext_nets;
    let k = r / plan.c.ext_nets;
    (e, format!("172.{}.{}.{}", 16 + e, 1 + k / 250, 2 + k % 250))
}

fn fip_ip(plan: &Plan, r: usize, f: usize) -> String {
    let e = r % plan.c.ext_nets;
    let q = (r / plan.c.ext_nets) * 4 + f;
    format!("172.{}.{}.{}", 16 + e, 128 + q / 250, 2 + q % 250)
}

// ---------------------------------------------------------------- row builders

struct Gen<'a> {
    ids: Ids,
    plan: &'a Plan,
    rows: RowCounts,
    dual_every: usize,
    extra_keys: bool,
}

#[derive(Default, Debug)]
struct RowCounts {
    nb_global: usize,
    logical_switch: usize,
    lsp_workload: usize,
    lsp_router: usize,
    lsp_localnet: usize,
    logical_router: usize,
    logical_router_port: usize,
    gateway_chassis: usize,
    nat: usize,
    static_route: usize,
    load_balancer: usize,
}

impl RowCounts {
    fn total(&self) -> usize {
        self.nb_global
            + self.logical_switch
            + self.lsp_workload
            + self.lsp_router
            + self.lsp_localnet
            + self.logical_router
            + self.logical_router_port
            + self.gateway_chassis
            + self.nat
            + self.static_route
            + self.load_balancer
    }
}

impl Gen<'_> {
    fn net_name(&self, t: usize) -> String {
        format!("neutron-{}", self.ids.uuid(K_NET, t as u64))
    }

    fn ext_net_idx(&self, e: usize) -> usize {
        self.plan.c.tenant_nets + e
    }

    fn router_name(&self, r: usize) -> String {
        format!("neutron-{}", self.ids.uuid(K_ROUTER, r as u64))
    }

    fn project(&self, t: usize) -> String {
        self.ids.hex32(
            K_PROJECT,
            self.ids.pick(K_PROJECT, t as u64, self.plan.projects),
        )
    }

    fn lb_vip(&self, b: usize) -> (usize, String) {
        let r = self.plan.lb_router[b];
        let t = self.plan.router_nets[r].first().copied().unwrap_or(0);
        let (x, y) = net_octets(t);
        (t, format!("10.{x}.{y}.{}", 200 + (b % 50)))
    }

    fn nb_global(&mut self) -> Value {
        self.rows.nb_global += 1;
        let m = self.ids.raw(K_NBG, 1);
        insert(
            "NB_Global",
            &self.ids.uuid(K_NBG, 0u64),
            json!({
                "options": smap(&[
                    ("mac_prefix", format!("{:02x}:{:02x}:{:02x}", (m >> 16) & 0xfe, (m >> 8) & 0xff, m & 0xff)),
                    ("svc_monitor_mac", self.ids.mac(0xff_fff0u64)),
                    ("max_tunid", "16711680".into()),
                    ("northd_probe_interval", "60000".into()),
                    ("use_logical_dp_groups", "true".into()),
                ]),
                "external_ids": smap(&[("neutron:liveness_check_at", "2024-01-01 00:00:00.000000+00:00".into())]),
            }),
        )
    }

    fn load_balancer(&mut self, b: usize) -> Value {
        self.rows.load_balancer += 1;
        let r = self.plan.lb_router[b];
        let (t, vip) = self.lb_vip(b);
        let (x, y) = net_octets(t);
        let listener = self.ids.uuid(K_LISTENER, b as u64);
        let pool = self.ids.uuid(K_POOL, b as u64);
        let subnet = self.ids.uuid(K_SUBNET, t as u64);
        let members: Vec<String> = (0..3).map(|m| format!("10.{x}.{y}.{}", 3 + m)).collect();
        let backends = members
            .iter()
            .map(|m| format!("{m}:8080"))
            .collect::<Vec<_>>()
            .join(",");
        let pool_members = members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                format!(
                    "member_{}_{m}:8080_{subnet}",
                    self.ids.uuid(K_MEMBER, (b * 4 + i) as u64)
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        insert(
            "Load_Balancer",
            &self.ids.uuid(K_LB_ROW, b as u64),
            json!({
                "name": self.ids.uuid(K_LB, b as u64),
                "protocol": "tcp",
                "vips": smap(&[(&format!("{vip}:80"), backends)]),
                "external_ids": smap(&[
                    ("enabled", "True".into()),
                    (&format!("listener_{listener}"), format!("80:pool_{pool}")),
                    ("lr_ref", self.router_name(r)),
                    ("ls_refs", format!("{{\"{}\": 1}}", self.net_name(t))),
                    ("neutron:member_status", "{}".into()),
                    ("neutron:vip", vip.clone()),
                    ("neutron:vip_port_id", self.ids.uuid(K_VIP_PORT, b as u64)),
                    (&format!("pool_{pool}"), pool_members),
                ]),
            }),
        )
    }

    fn ext_switch(&mut self, e: usize) -> (Value, Value) {
        self.rows.logical_switch += 1;
        self.rows.lsp_localnet += 1;
        let n = self.ext_net_idx(e);
        let localnet_uuid = self.ids.uuid(K_LOCALNET, e as u64);
        let lsp = insert(
            "Logical_Switch_Port",
            &localnet_uuid,
            json!({
                "name": format!("provnet-{}", self.ids.uuid(K_SUBNET, (n as u64) << 20)),
                "type": "localnet",
                "addresses": str_set(&["unknown".to_string()]),
                "tag": 100 + e,
                "options": smap(&[
                    ("mcast_flood", "false".into()),
                    ("mcast_flood_reports", "true".into()),
                    ("network_name", "physnet1".into()),
                ]),
            }),
        );
        let ls = insert(
            "Logical_Switch",
            &self.ids.uuid(K_LS, n as u64),
            json!({
                "name": self.net_name(n),
                "ports": uuid_set(&[localnet_uuid]),
                "external_ids": smap(&[
                    ("neutron:availability_zone_hints", String::new()),
                    ("neutron:mtu", "1500".into()),
                    ("neutron:network_name", format!("public-{e}")),
                    ("neutron:revision_number", "1".into()),
                ]),
                "other_config": smap(&[
                    ("mcast_flood_unregistered", "false".into()),
                    ("mcast_snoop", "true".into()),
                    ("vlan-passthru", "false".into()),
                ]),
            }),
        );
        (ls, lsp)
    }

    /// The tenant network `t` (switch, workload ports, router interface LSP); returns the ops.
    fn tenant_net(&mut self, t: usize, fips: &[(usize, String)], ops: &mut Vec<Value>) {
        let ids = &self.ids;
        let plan = self.plan;
        let (x, y) = net_octets(t);
        let net_name = self.net_name(t);
        let project = self.project(t);
        let dual = self.dual_every > 0 && t % self.dual_every == 0;
        let cidr6 = format!(
            "fd{:02x}:{:x}:{:x}::",
            (t >> 16) & 0xff,
            (t >> 8) & 0xff,
            t & 0xff
        );
        let sg_default = ids.uuid(K_SG, ids.pick(K_PROJECT, t as u64, plan.projects));
        let mut port_rows = Vec::new();
        let n = plan.net_ports[t] as usize;
        for j in 0..n {
            let gi = plan.port_base[t] + j as u64;
            let row_uuid = ids.uuid(K_LSP, gi);
            let name = ids.uuid(K_PORT, gi);
            let mac = ids.mac(gi);
            let ip = format!("10.{x}.{y}.{}", 2 + j);
            let (addr, cidrs) = if dual {
                let ip6 = format!("{cidr6}{:x}", 2 + j);
                (format!("{mac} {ip} {ip6}"), format!("{ip}/24 {ip6}/64"))
            } else {
                (format!("{mac} {ip}"), format!("{ip}/24"))
            };
            let rev = (1 + ids.pick(K_PORT, gi, 6)).to_string();
            let row = if j == 0 {
                // Neutron's metadata port: a localport, one per network.
                json!({
                    "name": name,
                    "type": "localport",
                    "addresses": str_set(&[addr]),
                    "port_security": str_set(&[]),
                    "options": smap(&[("requested-chassis", String::new())]),
                    "up": false,
                    "enabled": true,
                    "external_ids": smap(&[
                        ("neutron:cidrs", cidrs),
                        ("neutron:device_id", format!("ovnmeta-{}", ids.uuid(K_NET, t as u64))),
                        ("neutron:device_owner", "network:distributed".into()),
                        ("neutron:host_id", String::new()),
                        ("neutron:network_name", net_name.clone()),
                        ("neutron:port_name", String::new()),
                        ("neutron:project_id", project.clone()),
                        ("neutron:revision_number", rev),
                        ("neutron:security_group_ids", String::new()),
                    ]),
                })
            } else {
                let host = format!("compute-{:03}", ids.pick(K_DEVICE, gi, plan.hosts));
                let mut sgs = sg_default.clone();
                if ids.pick(K_SG, gi, 3) == 0 {
                    sgs.push(' ');
                    sgs.push_str(&ids.uuid(K_SG, 1_000_000 + ids.pick(K_SG, gi + 7, 50_000)));
                }
                let mut ext = vec![
                    ("neutron:cidrs", cidrs),
                    ("neutron:device_id", ids.uuid(K_DEVICE, gi)),
                    ("neutron:device_owner", "compute:nova".into()),
                    ("neutron:host_id", host.clone()),
                    ("neutron:network_name", net_name.clone()),
                    (
                        "neutron:port_name",
                        if j % 3 == 0 {
                            format!("port-{gi}")
                        } else {
                            String::new()
                        },
                    ),
                    ("neutron:project_id", project.clone()),
                    ("neutron:revision_number", rev),
                    ("neutron:security_group_ids", sgs),
                ];
                if let Some((_, fip)) = fips.iter().find(|(pj, _)| *pj == j) {
                    ext.push(("neutron:port_fip", fip.clone()));
                }
                if self.extra_keys {
                    ext.push(("neutron:port_capabilities", String::new()));
                    ext.push(("neutron:subnet_pool_addr_scope4", String::new()));
                    ext.push(("neutron:subnet_pool_addr_scope6", String::new()));
                    ext.push(("neutron:vnic_type", "normal".into()));
                }
                ext.sort_by(|a, b| a.0.cmp(b.0));
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
                })
            };
            ops.push(insert("Logical_Switch_Port", &row_uuid, row));
            port_rows.push(row_uuid);
            self.rows.lsp_workload += 1;
        }
        if let Some(r) = plan.net_router[t] {
            let row_uuid = ids.uuid(K_RIF_LSP, t as u64);
            let port = ids.uuid(K_RIF_PORT, t as u64);
            ops.push(insert(
                "Logical_Switch_Port",
                &row_uuid,
                json!({
                    "name": port,
                    "type": "router",
                    "addresses": str_set(&["router".to_string()]),
                    "options": smap(&[("router-port", format!("lrp-{port}"))]),
                    "up": true,
                    "enabled": true,
                    "external_ids": smap(&[
                        ("neutron:cidrs", format!("10.{x}.{y}.1/24")),
                        ("neutron:device_id", ids.uuid(K_ROUTER, r as u64)),
                        ("neutron:device_owner", "network:router_interface".into()),
                        ("neutron:host_id", String::new()),
                        ("neutron:network_name", net_name.clone()),
                        ("neutron:port_name", String::new()),
                        ("neutron:project_id", project.clone()),
                        ("neutron:revision_number", "3".into()),
                        ("neutron:security_group_ids", String::new()),
                    ]),
                }),
            ));
            port_rows.push(row_uuid);
            self.rows.lsp_router += 1;
        }
        let lbs: Vec<String> = match plan.net_router[t] {
            Some(r) if plan.router_nets[r].first() == Some(&t) => plan.router_lbs[r]
                .iter()
                .map(|&b| ids.uuid(K_LB_ROW, b as u64))
                .collect(),
            _ => Vec::new(),
        };
        let mut ls = json!({
            "name": net_name,
            "ports": uuid_set(&port_rows),
            "external_ids": smap(&[
                ("neutron:availability_zone_hints", String::new()),
                ("neutron:mtu", "1442".into()),
                ("neutron:network_name", format!("net-{t}")),
                ("neutron:revision_number", (2 + ids.pick(K_NET, t as u64, 3)).to_string()),
            ]),
            "other_config": smap(&[
                ("mcast_flood_unregistered", "false".into()),
                ("mcast_snoop", "true".into()),
                ("vlan-passthru", "false".into()),
            ]),
        });
        if !lbs.is_empty() {
            ls["load_balancer"] = uuid_set(&lbs);
        }
        ops.push(insert("Logical_Switch", &ids.uuid(K_LS, t as u64), ls));
        self.rows.logical_switch += 1;
    }

    /// Router `r` with its networks; the gateway LSP's row UUID goes to `gw_lsps[e]`.
    fn router(&mut self, r: usize, ops: &mut Vec<Value>, gw_lsps: &mut [Vec<String>]) {
        let plan = self.plan;
        let nets = plan.router_nets[r].clone();
        let router_id = self.ids.uuid(K_ROUTER, r as u64);
        let router_name = self.router_name(r);
        let (e, gw_ip) = ext_gw_ip(plan, r);
        let ext_n = self.ext_net_idx(e);
        let ext_net_name = self.net_name(ext_n);

        // Floating IPs on compute ports of the first interface's network.
        let mut fips: Vec<(usize, String)> = Vec::new();
        if let Some(&t0) = nets.first() {
            let compute_ports = (plan.net_ports[t0] as usize).saturating_sub(1);
            let nf = (self.ids.pick(K_FIP, r as u64, 4) as usize).min(compute_ports);
            for f in 0..nf {
                fips.push((1 + f, fip_ip(plan, r, f)));
            }
        }
        for (i, &t) in nets.iter().enumerate() {
            let f: &[(usize, String)] = if i == 0 { &fips } else { &[] };
            self.tenant_net(t, f, ops);
        }

        let ids = &self.ids;
        let project = nets.first().map(|&t| self.project(t)).unwrap_or_default();
        let mut lrps = Vec::new();
        let mut nats = Vec::new();

        // Gateway port: LSP on the provider network, LRP with 3 Gateway_Chassis.
        let gw_port = ids.uuid(K_GW_PORT, r as u64);
        let gw_lsp = ids.uuid(K_GW_LSP, r as u64);
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
                    ("neutron:host_id", String::new()),
                    ("neutron:network_name", ext_net_name.clone()),
                    ("neutron:port_name", String::new()),
                    ("neutron:project_id", String::new()),
                    ("neutron:revision_number", "5".into()),
                    ("neutron:security_group_ids", String::new()),
                ]),
            }),
        ));
        gw_lsps[e].push(gw_lsp);
        self.rows.lsp_router += 1;

        let mut gcs = Vec::new();
        let base = ids.pick(K_GC, r as u64, plan.gw_chassis);
        for g in 0..3u64 {
            let gc_uuid = ids.uuid(K_GC, r as u64 * 3 + g);
            let chassis = format!("gw-{}", (base + g) % plan.gw_chassis);
            ops.push(insert(
                "Gateway_Chassis",
                &gc_uuid,
                json!({
                    "name": format!("lrp-{gw_port}_{chassis}"),
                    "chassis_name": chassis,
                    "priority": 3 - g,
                }),
            ));
            gcs.push(gc_uuid);
            self.rows.gateway_chassis += 1;
        }
        let gw_lrp = ids.uuid(K_GW_LRP, r as u64);
        let mut gw_row = json!({
            "name": format!("lrp-{gw_port}"),
            "mac": ids.mac(plan.mac_gw(r)),
            "networks": str_set(&[format!("{gw_ip}/16")]),
            "gateway_chassis": uuid_set(&gcs),
            "external_ids": smap(&[
                ("neutron:is_ext_gw", "True".into()),
                ("neutron:network_name", ext_net_name.clone()),
                ("neutron:revision_number", "5".into()),
                ("neutron:router_name", router_id.clone()),
                ("neutron:subnet_ids", ids.uuid(K_SUBNET, ext_n as u64)),
            ]),
        });
        if r % 3 == 0 {
            gw_row["options"] = smap(&[("gateway_mtu", "1442".into())]);
        }
        ops.push(insert("Logical_Router_Port", &gw_lrp, gw_row));
        lrps.push(gw_lrp);
        self.rows.logical_router_port += 1;

        // Interfaces, one SNAT each.
        for &t in &nets {
            let (x, y) = net_octets(t);
            let port = ids.uuid(K_RIF_PORT, t as u64);
            let lrp = ids.uuid(K_RIF_LRP, t as u64);
            ops.push(insert(
                "Logical_Router_Port",
                &lrp,
                json!({
                    "name": format!("lrp-{port}"),
                    "mac": ids.mac(plan.mac_rif(t)),
                    "networks": str_set(&[format!("10.{x}.{y}.1/24")]),
                    "external_ids": smap(&[
                        ("neutron:is_ext_gw", "False".into()),
                        ("neutron:network_name", self.net_name(t)),
                        ("neutron:revision_number", "3".into()),
                        ("neutron:router_name", router_id.clone()),
                        ("neutron:subnet_ids", ids.uuid(K_SUBNET, t as u64)),
                    ]),
                }),
            ));
            lrps.push(lrp);
            self.rows.logical_router_port += 1;
            let nat = ids.uuid(K_NAT, (t as u64) << 2);
            ops.push(insert(
                "NAT",
                &nat,
                json!({
                    "type": "snat",
                    "external_ip": gw_ip.clone(),
                    "logical_ip": format!("10.{x}.{y}.0/24"),
                    "options": smap(&[("stateless", "false".into())]),
                }),
            ));
            nats.push(nat);
            self.rows.nat += 1;
        }

        // Floating IPs: distributed (external_mac + logical_port) on even routers.
        if let Some(&t0) = nets.first() {
            let (x, y) = net_octets(t0);
            for (f, (j, fip)) in fips.iter().enumerate() {
                let gi = plan.port_base[t0] + *j as u64;
                let port_name = ids.uuid(K_PORT, gi);
                let port_mac = ids.mac(gi);
                let distributed = r % 2 == 0;
                let nat = ids.uuid(K_NAT, ((t0 as u64) << 2) | (1 + f as u64));
                let mut row = json!({
                    "type": "dnat_and_snat",
                    "external_ip": fip,
                    "logical_ip": format!("10.{x}.{y}.{}", 2 + j),
                    "logical_port": port_name.clone(),
                    "options": smap(&[("stateless", "false".into())]),
                    "external_ids": smap(&[
                        ("neutron:fip_external_mac", if distributed { port_mac.clone() } else { String::new() }),
                        ("neutron:fip_id", ids.uuid(K_FIP, (r * 4 + f) as u64)),
                        ("neutron:fip_network_id", ids.uuid(K_NET, ext_n as u64)),
                        ("neutron:fip_port_id", port_name),
                        ("neutron:revision_number", "1".into()),
                        ("neutron:router_name", router_name.clone()),
                    ]),
                });
                if distributed {
                    row["external_mac"] = json!(port_mac);
                }
                ops.push(insert("NAT", &nat, row));
                nats.push(nat);
                self.rows.nat += 1;
            }
        }

        let route = ids.uuid(K_LRSR, r as u64);
        ops.push(insert(
            "Logical_Router_Static_Route",
            &route,
            json!({
                "ip_prefix": "0.0.0.0/0",
                "nexthop": format!("172.{}.0.1", 16 + e),
                "external_ids": smap(&[
                    ("neutron:is_ext_gw", "true".into()),
                    ("neutron:subnet_id", ids.uuid(K_SUBNET, ext_n as u64)),
                ]),
            }),
        ));
        self.rows.static_route += 1;

        let lbs: Vec<String> = plan.router_lbs[r]
            .iter()
            .map(|&b| ids.uuid(K_LB_ROW, b as u64))
            .collect();
        let mut lr = json!({
            "name": router_name,
            "enabled": true,
            "ports": uuid_set(&lrps),
            "nat": uuid_set(&nats),
            "static_routes": uuid_set(&[route]),
            "options": smap(&[
                ("always_learn_from_arp_request", "false".into()),
                ("dynamic_neigh_routers", "true".into()),
                ("mac_binding_age_threshold", "0".into()),
            ]),
            "external_ids": smap(&[
                ("neutron:availability_zone_hints", String::new()),
                ("neutron:gw_network_id", ids.uuid(K_NET, ext_n as u64)),
                ("neutron:gw_port_id", gw_port),
                ("neutron:project_id", project),
                ("neutron:revision_number", "4".into()),
                ("neutron:router_name", format!("router-{r}")),
            ]),
        });
        if !lbs.is_empty() {
            lr["load_balancer"] = uuid_set(&lbs);
        }
        ops.push(insert("Logical_Router", &ids.uuid(K_LR, r as u64), lr));
        self.rows.logical_router += 1;
    }
}

// ---------------------------------------------------------------- the server

struct Server {
    child: Child,
    sock: PathBuf,
    ctl: PathBuf,
}

impl Server {
    fn start(dir: &Path, db: &Path) -> anyhow::Result<Server> {
        let sock = dir.join("nb.sock");
        let ctl = dir.join("nb.ctl");
        let child = Command::new("ovsdb-server")
            .arg("--no-chdir")
            .arg(format!("--log-file={}", dir.join("nb.log").display()))
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
                anyhow::bail!(
                    "ovsdb-server exited early: {st}; see {}",
                    dir.join("nb.log").display()
                );
            }
            anyhow::ensure!(
                t0.elapsed() < Duration::from_secs(20),
                "ovsdb-server did not open its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(s)
    }

    fn appctl(&self, cmd: &str) -> anyhow::Result<String> {
        let out = Command::new("ovs-appctl")
            .arg("-t")
            .arg(&self.ctl)
            .arg("--timeout=600")
            .arg(cmd)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "ovs-appctl {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.appctl("exit");
        let t0 = Instant::now();
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            if t0.elapsed() > Duration::from_secs(30) {
                self.child.kill()?;
                self.child.wait()?;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

// ---------------------------------------------------------------- main

fn counts(a: &Args) -> Counts {
    let sc = |n: f64| (n * a.scale).round() as usize;
    let switches = a.switches.unwrap_or_else(|| sc(10_000.0)).max(2);
    let ext_nets = a
        .ext_nets
        .unwrap_or_else(|| sc(10.0))
        .max(1)
        .min(switches - 1);
    Counts {
        switches,
        ext_nets,
        tenant_nets: switches - ext_nets,
        lsps: a.lsps.unwrap_or_else(|| sc(100_000.0)),
        routers: a.routers.unwrap_or_else(|| sc(5_000.0)),
        lbs: a.lbs.unwrap_or_else(|| sc(500.0)),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let c = counts(&args);
    let mut key = format!(
        "nb-g{GEN_VERSION}-ls{}-ext{}-lsp{}-lr{}-lb{}-seed{}",
        c.switches, c.ext_nets, c.lsps, c.routers, c.lbs, args.seed
    );
    if args.dual_stack_every > 0 {
        key.push_str(&format!("-dual{}", args.dual_stack_every));
    }
    if args.newer_neutron_keys {
        key.push_str("-newkeys");
    }
    std::fs::create_dir_all(&args.cache_dir)?;
    let db_path = args.cache_dir.join(format!("{key}.db"));
    let meta_path = args.cache_dir.join(format!("{key}.json"));
    if db_path.exists() && meta_path.exists() && !args.force {
        eprintln!("gen-nb: cached {}", db_path.display());
        if let Ok(m) = std::fs::read_to_string(&meta_path) {
            eprintln!("{m}");
        }
        if args.print_path {
            println!("{}", db_path.display());
        }
        return Ok(());
    }

    let t_start = Instant::now();
    let plan = Plan::new(c)?;
    let work = args
        .cache_dir
        .join(format!("tmp-{key}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = generate(&args, &plan, &work, &db_path, &meta_path, t_start);
    let _ = std::fs::remove_dir_all(&work);
    result?;
    if args.print_path {
        println!("{}", db_path.display());
    }
    Ok(())
}

fn generate(
    args: &Args,
    plan: &Plan,
    work: &Path,
    db_path: &Path,
    meta_path: &Path,
    t_start: Instant,
) -> anyhow::Result<()> {
    let db = work.join("nb.db");
    let st = Command::new("ovsdb-tool")
        .arg("create")
        .arg(&db)
        .arg(&args.schema)
        .status()?;
    anyhow::ensure!(st.success(), "ovsdb-tool create failed");
    let server = Server::start(work, &db)?;

    let stream = UnixStream::connect(&server.sock)?;
    let reader_stream = stream.try_clone()?;
    let failed = Arc::new(AtomicBool::new(false));
    let failed_r = failed.clone();
    // Replies are drained on their own thread while transactions stream out (a server whose output
    // backlog is full stops reading). The last request is an `echo` with id "done": the server answers
    // in order, so its reply closes the stream of replies.
    let reader = std::thread::spawn(move || -> anyhow::Result<usize> {
        let mut got = 0usize;
        let de =
            serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 16, reader_stream));
        for msg in de.into_iter::<Value>() {
            let msg = msg?;
            if msg.get("method").is_some() {
                continue; // no notifications are expected; echo probes are off on unix sockets
            }
            if msg["id"] == json!("done") {
                return Ok(got);
            }
            got += 1;
            let errs: Vec<&Value> = match msg.get("result").and_then(Value::as_array) {
                Some(results) => results
                    .iter()
                    .filter(|r| r.get("error").is_some())
                    .collect(),
                None => vec![&msg],
            };
            if !errs.is_empty() || !msg["error"].is_null() {
                failed_r.store(true, Ordering::SeqCst);
                let text = serde_json::to_string(&errs)?;
                eprintln!(
                    "gen-nb: transaction {} failed: {}",
                    msg["id"],
                    &text[..text.len().min(2000)]
                );
            }
        }
        anyhow::bail!("connection closed after {got} replies")
    });

    let mut g = Gen {
        ids: Ids {
            seed: args.seed,
            mac_kind: K_MAC,
        },
        plan,
        rows: RowCounts::default(),
        dual_every: args.dual_stack_every,
        extra_keys: args.newer_neutron_keys,
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, &stream);
    let mut sent = 0usize;
    let mut bytes_sent = 0usize;
    let mut send =
        |ops: Vec<Value>, w: &mut std::io::BufWriter<&UnixStream>| -> anyhow::Result<()> {
            let mut params = vec![json!(DB)];
            params.extend(ops);
            let req = json!({"method": "transact", "params": params, "id": sent});
            let buf = serde_json::to_vec(&req)?;
            bytes_sent += buf.len();
            w.write_all(&buf)?;
            w.flush()?;
            sent += 1;
            Ok(())
        };

    // First transaction: NB_Global, provider networks, load balancers.
    let mut ops = vec![g.nb_global()];
    for e in 0..plan.c.ext_nets {
        let (ls, lsp) = g.ext_switch(e);
        ops.push(lsp);
        ops.push(ls);
    }
    for b in 0..plan.c.lbs {
        ops.push(g.load_balancer(b));
    }
    send(ops, &mut w)?;

    let flush = |ops: &mut Vec<Value>, gw: &mut Vec<Vec<String>>, g: &Gen| -> Vec<Value> {
        let mut out = std::mem::take(ops);
        for (e, lsps) in gw.iter_mut().enumerate() {
            if lsps.is_empty() {
                continue;
            }
            let ls = g.ids.uuid(K_LS, g.ext_net_idx(e) as u64);
            out.push(json!({
                "op": "mutate",
                "table": "Logical_Switch",
                "where": [["_uuid", "==", uuid_ref(&ls)]],
                "mutations": [["ports", "insert", uuid_set(lsps)]],
            }));
            lsps.clear();
        }
        out
    };

    let mut gw: Vec<Vec<String>> = vec![Vec::new(); plan.c.ext_nets];
    let mut ops: Vec<Value> = Vec::new();
    for r in 0..plan.c.routers {
        g.router(r, &mut ops, &mut gw);
        if ops.len() >= args.batch_rows {
            let batch = flush(&mut ops, &mut gw, &g);
            send(batch, &mut w)?;
        }
    }
    for t in 0..plan.c.tenant_nets {
        if plan.net_router[t].is_none() {
            g.tenant_net(t, &[], &mut ops);
            if ops.len() >= args.batch_rows {
                let batch = flush(&mut ops, &mut gw, &g);
                send(batch, &mut w)?;
            }
        }
    }
    if !ops.is_empty() || gw.iter().any(|v| !v.is_empty()) {
        let batch = flush(&mut ops, &mut gw, &g);
        send(batch, &mut w)?;
    }
    w.write_all(&serde_json::to_vec(
        &json!({"method": "echo", "params": [], "id": "done"}),
    )?)?;
    w.flush()?;
    drop(w);
    let t_sent = t_start.elapsed();
    let got = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
    anyhow::ensure!(got == sent, "got {got} replies for {sent} transactions");
    anyhow::ensure!(!failed.load(Ordering::SeqCst), "some transactions failed");
    let t_txn = t_start.elapsed();
    drop(stream);

    let log_size = std::fs::metadata(&db)?.len();
    let t0 = Instant::now();
    server.appctl("ovsdb-server/compact")?;
    let t_compact = t0.elapsed();
    server.stop()?;
    let size = std::fs::metadata(&db)?.len();
    std::fs::rename(&db, db_path)?;
    let total = t_start.elapsed();

    let rc = &g.rows;
    let mut m = Map::new();
    m.insert("db".into(), json!(db_path.display().to_string()));
    m.insert("seed".into(), json!(args.seed));
    m.insert("scale".into(), json!(args.scale));
    m.insert("bytes".into(), json!(size));
    m.insert("bytes_before_compaction".into(), json!(log_size));
    m.insert("transactions".into(), json!(sent));
    m.insert("request_bytes".into(), json!(bytes_sent));
    m.insert("gen_and_send_s".into(), json!(round3(t_sent.as_secs_f64())));
    m.insert(
        "transactions_done_s".into(),
        json!(round3(t_txn.as_secs_f64())),
    );
    m.insert("compact_s".into(), json!(round3(t_compact.as_secs_f64())));
    m.insert("total_s".into(), json!(round3(total.as_secs_f64())));
    m.insert(
        "rows".into(),
        json!({
            "NB_Global": rc.nb_global,
            "Logical_Switch": rc.logical_switch,
            "Logical_Switch_Port": rc.lsp_workload + rc.lsp_router + rc.lsp_localnet,
            "Logical_Switch_Port(workload)": rc.lsp_workload,
            "Logical_Switch_Port(router)": rc.lsp_router,
            "Logical_Switch_Port(localnet)": rc.lsp_localnet,
            "Logical_Router": rc.logical_router,
            "Logical_Router_Port": rc.logical_router_port,
            "Gateway_Chassis": rc.gateway_chassis,
            "NAT": rc.nat,
            "Logical_Router_Static_Route": rc.static_route,
            "Load_Balancer": rc.load_balancer,
            "total": rc.total(),
        }),
    );
    let meta = serde_json::to_string_pretty(&Value::Object(m))?;
    std::fs::write(meta_path, format!("{meta}\n"))?;
    eprintln!(
        "gen-nb: generated {} in {:.2} s",
        db_path.display(),
        total.as_secs_f64()
    );
    eprintln!("{meta}");
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
