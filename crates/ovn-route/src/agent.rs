//! `ovn-route agent` and `ovn-route status`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use ovn_route_agent::runtime::{run, RunOptions};
use ovn_route_config::Config;

/// Arguments of `ovn-route agent`.
#[derive(Args, Debug)]
#[command(long_about = "Run the exposure agent on this chassis.\n\n\
It reads the local Open_vSwitch database (chassis identity, bridge mappings), follows the OVN \
Northbound (and, when reachable, Southbound) database, and exposes through BGP the IPs of ports \
bound here on provider networks, floating IPs, load-balancer VIPs and gateway IPs hosted here, \
and optionally tenant networks: routes in the exposure table (or addresses on bgp_nic), per \
provider bridge a routing table, rules, neighbours and OpenFlow flows, and a block in FRR.\n\n\
Everything it creates carries its marks (route protocol, rule priority, flow cookie) and nothing \
else is changed. A lost database freezes the plan: nothing is withdrawn until it is back. \
Stopping the agent leaves everything exposed in place.\n\n\
Configuration: the Python OVN BGP agent's bgp-agent.conf is accepted as is; see \
docs/configuration.md. Exit status: 0 on a clean stop, or with --once when the host matches the \
plan; 1 otherwise; 2 for a configuration error.")]
pub struct AgentArgs {
    /// The configuration file (INI).
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = "/etc/ovn-route/agent.conf"
    )]
    pub config: PathBuf,
    /// Reconcile once and exit: 0 when the kernel, OVS and FRR state matches the plan.
    #[arg(long)]
    pub once: bool,
    /// Print the changes the agent would make and make none (with --once: exit 1 when there are
    /// changes to make).
    #[arg(long)]
    pub dry_run: bool,
    /// Only check the configuration file and exit.
    #[arg(long)]
    pub check_config: bool,
}

/// Arguments of `ovn-route status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The agent's status socket (its `status_socket` option).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/run/ovn-route/status.sock"
    )]
    pub socket: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Loads the configuration, printing a configuration error as it is (file:line: ...).
pub fn load(path: &std::path::Path) -> std::result::Result<Config, ExitCode> {
    match Config::from_file(path) {
        Ok(c) => Ok(c),
        Err(e) => {
            eprintln!("ovn-route: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Runs `ovn-route agent`.
pub fn agent(a: AgentArgs, cfg: Config) -> Result<ExitCode> {
    if a.check_config {
        for w in &cfg.warnings {
            eprintln!("warning: {w}");
        }
        println!("{}: OK", a.config.display());
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let ok = rt.block_on(run(
        cfg,
        RunOptions {
            once: a.once,
            dry_run: a.dry_run,
        },
    ))?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs `ovn-route status`.
pub fn status(a: StatusArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt
        .block_on(ovn_route_agent::status::fetch(&a.socket))
        .context("reading the agent's status")?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", ovn_route_agent::status::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}
