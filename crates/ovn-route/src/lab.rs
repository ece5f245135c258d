//! `ovn-route lab`: the built-in lab (real OVN, OVS and FRR daemons), for demos and experiments.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use ovn_model::nb::{LoadBalancer, LogicalRouterPort, LogicalSwitchPort, Nat};
use ovn_model::sb::{Chassis, PortBinding};
use ovn_route_lab::{ChassisSpec, Lab};
use ovsdb::{Event, Remote, Replica, Session, SessionConfig};

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

fn session(remote: &str, db: &str) -> Result<Session> {
    let mut cfg = SessionConfig::new(Remote::parse_list(remote)?, db);
    cfg.tables = ovn_model::tables_for(db).unwrap_or_default();
    Ok(Session::start(cfg))
}

/// The chassis name each logical port is bound to, from the SB replica.
fn bound_chassis<'a>(sb: &'a Replica, port: &str) -> Option<&'a str> {
    let pb = PortBinding::all(sb).find(|pb| pb.logical_port() == port)?;
    let ch = pb.chassis()?;
    Chassis::get(sb, &ch).map(|c| c.name())
}

/// Prints what ovn-route sees: every addressed port and gateway with its location.
fn show(nb: &Session, sb: &Session) {
    sb.read(|sbr| {
        nb.read(|nbr| {
            println!("  {:<10} {:<34} CHASSIS", "PORT", "ADDRESSES");
            let mut ports: Vec<_> = LogicalSwitchPort::all(nbr)
                .filter(|p| p.port_type().is_empty())
                .collect();
            ports.sort_by_key(|p| p.name());
            for p in ports {
                let addrs: Vec<_> = p.addresses().collect();
                println!(
                    "  {:<10} {:<34} {}",
                    p.name(),
                    addrs.join(" "),
                    bound_chassis(sbr, p.name()).unwrap_or("-")
                );
            }
            for lrp in LogicalRouterPort::all(nbr).filter(|l| l.gateway_chassis().next().is_some())
            {
                let cr = format!("cr-{}", lrp.name());
                let nets: Vec<_> = lrp.networks().collect();
                println!(
                    "  {:<10} {:<34} {}",
                    cr,
                    nets.join(" "),
                    bound_chassis(sbr, &cr).unwrap_or("-")
                );
            }
            for n in Nat::all(nbr).filter(|n| n.nat_type() == "dnat_and_snat") {
                let where_ = match n.logical_port() {
                    Some(p) => format!("distributed, with {p}"),
                    None => "centralized, on the gateway".into(),
                };
                println!(
                    "  FIP {:<6} {:<34} {}",
                    "",
                    format!("{} -> {}", n.external_ip(), n.logical_ip()),
                    where_
                );
            }
            for lb in LoadBalancer::all(nbr) {
                for (vip, backends) in lb.vips().iter() {
                    println!("  LB {:<7} {:<34} {}", lb.name(), vip, backends);
                }
            }
        })
    });
}

fn demo() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!("== Starting the lab: NB/SB ovsdb-server, ovn-northd, 2 chassis (ovs-vswitchd + ovn-controller), a wire between them");
    let t0 = Instant::now();
    let lab = demo_lab(false)?;
    println!(
        "   ready in {:.1} s ({})",
        t0.elapsed().as_secs_f64(),
        lab.dir().display()
    );
    rt.block_on(async {
        let nb = session(&lab.nb_remote(), "OVN_Northbound")?;
        let sb = session(&lab.sb_remote(), "OVN_Southbound")?;
        let t = Instant::now();
        nb.wait_connected().await;
        sb.wait_connected().await;
        println!(
            "== ovn-route's replica: NB {} rows, SB {} rows, loaded in {:.1} ms",
            nb.read(Replica::row_count),
            sb.read(Replica::row_count),
            t.elapsed().as_secs_f64() * 1000.0
        );
        show(&nb, &sb);
        let mut events = sb.subscribe();

        println!("== Moving vm1 to hv2 and raising hv2's gateway priority");
        tokio::task::block_in_place(|| -> Result<()> {
            lab.chassis(0).vsctl(&["del-port", "br-int", "vm1"])?;
            lab.chassis(1).add_vif("vm1", "vm1")?;
            lab.lrp_set_gateway_chassis("lrp-pub", "hv2", 30)?;
            lab.wait_port_bound("vm1", "hv2", WAIT)?;
            lab.wait_port_bound("cr-lrp-pub", "hv2", WAIT)?;
            Ok(())
        })?;
        // Report the Port_Binding changes the session delivered.
        while let Ok(Some(ev)) =
            tokio::time::timeout(Duration::from_millis(300), events.recv()).await
        {
            if let Event::Changed(cs) = ev {
                if let Some(tc) = cs.tables.get("Port_Binding") {
                    sb.read(|r| {
                        for (u, cols, _) in &tc.modified {
                            if let Some(pb) = PortBinding::get(r, u) {
                                if cols.iter().any(|c| c == "chassis") {
                                    println!(
                                        "   change: {} now on {}",
                                        pb.logical_port(),
                                        bound_chassis(r, pb.logical_port()).unwrap_or("(unbound)")
                                    );
                                }
                            }
                        }
                    });
                }
            }
        }
        show(&nb, &sb);
        anyhow::Ok(())
    })?;
    println!("== Tearing the lab down");
    drop(lab);
    println!("done");
    Ok(())
}
