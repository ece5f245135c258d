//! `ovn-route`: dynamic routing for OVN virtual networks.

mod agent;
mod db;
mod lab;
mod loaded;
mod peer;
mod routes;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Dynamic routing for OVN virtual networks: expose workloads through BGP, exchange routes driven by
/// OVN's dynamic-routing options, reach OVN networks from the host, and peer networks.
#[derive(Parser, Debug)]
#[command(name = "ovn-route", version, about, long_about)]
struct Cli {
    /// Log filter (tracing syntax, e.g. `info`, `ovsdb=debug`); overrides RUST_LOG.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the exposure agent on this chassis (see `ovn-route agent --help`).
    Agent(agent::AgentArgs),
    /// Show what the running agent exposes, where and why, its database connections and its last
    /// reconcile.
    Status(agent::StatusArgs),
    /// Inspect OVSDB databases exactly as the agent sees them.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Run the built-in lab: real OVN, OVS and FRR daemons in temporary directories and namespaces.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// Peer OVN networks (logical routers), like `incus network peer` (see docs/peering.md).
    Peer(peer::PeerArgs),
    /// Run the peering controller alone: keeps every peering's OVN objects in line.
    Controller(peer::ControllerArgs),
    /// Show this host's routes to OVN networks (uplink -> network -> subnets -> next hop) and
    /// whether each is installed, missing or conflicting (see docs/host-routes.md).
    Routes(routes::RoutesArgs),
}

fn init_logging(filter: Option<&str>, json: bool, default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    let mut default_level = match cli.command {
        Command::Db(_) | Command::Status(_) => "warn",
        Command::Lab(_) | Command::Agent(_) => "info",
        Command::Peer(_) => "warn",
        Command::Controller(_) => "info",
        Command::Routes(_) => "warn",
    };
    // The agent's configuration decides its log level (`debug`), so read it first.
    let agent_cfg = match &cli.command {
        Command::Agent(a) => match agent::load(&a.config) {
            Ok(c) => {
                if c.default.debug {
                    default_level = "debug";
                }
                Some(c)
            }
            Err(code) => return Ok(code),
        },
        _ => None,
    };
    init_logging(cli.log.as_deref(), cli.log_json, default_level);
    match cli.command {
        Command::Agent(a) => agent::agent(a, agent_cfg.expect("loaded above")),
        Command::Status(a) => agent::status(a),
        Command::Db(cmd) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(db::run(cmd)).map(|_| ExitCode::SUCCESS)
        }
        Command::Lab(cmd) => lab::run(cmd).map(|_| ExitCode::SUCCESS),
        Command::Peer(a) => peer::peer(a).map(|_| ExitCode::SUCCESS),
        Command::Controller(a) => peer::controller(a).map(|_| ExitCode::SUCCESS),
        Command::Routes(a) => routes::routes(a),
    }
}
