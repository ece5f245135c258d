//! `ovn-route lab`: the built-in lab (real OVN, OVS and FRR daemons), for demos and experiments.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use ovn_route_lab::{ChassisSpec, Lab};

/// `ovn-route lab` subcommands.
#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Start the demo lab, print how to reach its databases, and keep it running until Ctrl-C.
    Up(UpArgs),
    /// Run the demo: build the lab, show what ovn-route sees, move a VM and the gateway to the
    /// other chassis and show the changes arrive; then tear everything down.
    Demo,
}

/// Arguments of `ovn-route lab up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Run the NB and SB databases as 3-member raft clusters.
    #[arg(long)]
    pub clustered: bool,
}

const WAIT: Duration = Duration::from_secs(30);

/// Builds the demo lab: two chassis joined by a wire, a provider network `public` (physnet1), a
/// tenant network `private` behind router `lr0` whose gateway port can live on either chassis, VMs,
/// a distributed and a centralized floating IP, and a load balancer.
pub fn demo_lab(clustered: bool) -> Result<Lab> {
    let mut b = Lab::builder()
        .chassis(ChassisSpec::new("hv1").bridge_mapping("physnet1", "br-ex"))
        .chassis(ChassisSpec::new("hv2").bridge_mapping("physnet1", "br-ex"))
        .wire(true);
    if clustered {
        b = b.clustered(3);
    }
    let lab = b.start().context("starting the lab")?;
    ovn_route_lab::demo_topology(&lab).context("building the demo topology")?;
    Ok(lab)
}

/// Runs a `lab` subcommand.
pub fn run(cmd: LabCommand) -> Result<()> {
    if !ovn_route_lab::is_root() {
        anyhow::bail!("the lab starts daemons and network namespaces: run it as root");
    }
    let _ = ovn_route_lab::cleanup_stale();
    match cmd {
        LabCommand::Up(a) => up(a),
        LabCommand::Demo => demo(),
    }
}

fn up(a: UpArgs) -> Result<()> {
    let lab = demo_lab(a.clustered)?;
    println!("lab running in {}", lab.dir().display());
    println!("  NB: {}", lab.nb_remote());
    println!("  SB: {}", lab.sb_remote());
    for c in lab.chassis_list() {
        println!(
            "  chassis {}: Open_vSwitch at {} (namespace {})",
            c.name(),
            c.ovs_remote(),
            c.netns().name()
        );
    }
    println!(
        "try: ovn-route db dump {} OVN_Northbound agent --follow",
        lab.nb_remote()
    );
    println!("Ctrl-C stops the lab and removes everything it created.");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(tokio::signal::ctrl_c())?;
    drop(lab);
    Ok(())
}

fn demo() -> Result<()> {
    println!("== Starting the lab: NB/SB ovsdb-server, ovn-northd, 2 chassis (ovs-vswitchd + ovn-controller), a wire between them,");
    println!("   the demo topology, FRR on each chassis and an upstream FRR router (AS 65000) peering with both");
    let t0 = Instant::now();
    let mut x = ovn_route_lab::ExposureLab::start().context("starting the exposure lab")?;
    println!(
        "   ready in {:.1} s ({})",
        t0.elapsed().as_secs_f64(),
        x.lab.dir().display()
    );
    let bin = std::env::current_exe().context("locating the ovn-route binary")?;
    println!("== Starting `ovn-route agent` on hv1 and hv2 (vrf_mode = none: routes in table 10, imported by FRR)");
    for i in 0..2 {
        let cfg = x.agent_config(i, "", "");
        x.start_agent(i, &bin, &cfg)?;
    }
    let hv1 = ovn_route_lab::DEMO_HOSTED_ON_HV1;
    for p in hv1 {
        x.wait_upstream_via(p, 0, WAIT)?;
    }
    println!("   exposed by hv1: provider VM vm-prov, floating IPs .101 (distributed, vm1) and .102 (centralized), LB VIP .200,");
    println!("   the gateway IP .1 and the tenant subnet 10.0.0.0/24; next hop 192.0.2.1 = hv1, 192.0.2.5 = hv2");
    println!("== The upstream router's BGP table");
    println!("{}", x.upstream_bgp_table()?);
    println!("== `ovn-route status` on hv1");
    let out = std::process::Command::new(&bin)
        .args(["status", "--socket"])
        .arg(x.agent_dir(0).join("status.sock"))
        .output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));

    println!(
        "== Moving vm-prov to hv2 and raising hv2's gateway priority (lrp-pub: hv2 30 > hv1 20)"
    );
    x.lab.chassis(0).vsctl(&["del-port", "br-int", "vm-prov"])?;
    x.lab.chassis(1).add_vif("vm-prov", "vm-prov")?;
    x.lab.lrp_set_gateway_chassis("lrp-pub", "hv2", 30)?;
    let t = Instant::now();
    for p in [
        "172.16.0.10",
        "172.16.0.1",
        "172.16.0.102",
        "172.16.0.200",
        "10.0.0.0/24",
    ] {
        x.wait_upstream_via(p, 1, WAIT)?;
    }
    println!(
        "   routes followed in {:.1} s (including ovn-controller's binding and BGP's propagation)",
        t.elapsed().as_secs_f64()
    );
    println!("== The upstream router's BGP table");
    println!("{}", x.upstream_bgp_table()?);
    for i in 0..2 {
        x.agent(i).check_alive()?;
    }
    let lab = x;
    println!("== Tearing the lab down");
    drop(lab);
    println!("done");
    Ok(())
}
