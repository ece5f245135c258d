//! `ovn-route routes`: the host routes to OVN networks drawn from the live state (the NB and this
//! host's kernel): uplink -> each OVN network (with its Incus/Neutron ids) -> its subnets -> the
//! next hop, each marked installed, missing or conflicting.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use ovn_route_agent::host_routes::{self, HostRoutesSettings};
use ovsdb::{Remote, SslConfig};

use crate::peer::NbArgs;

/// `ovn-route routes`: which routes this host has (or should have) to OVN networks.
#[derive(Args, Debug)]
pub struct RoutesArgs {
    #[command(flatten)]
    nb: NbArgs,
    /// The agent's configuration, for `[host_routes]` (table, include, exclude) and
    /// `route_protocol`; without it the defaults (table main, protocol 201, every network).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn ssl(nb: &NbArgs) -> Result<Option<SslConfig>> {
    Ok(match (&nb.private_key, &nb.certificate, &nb.ca_cert) {
        (None, None, None) => None,
        (Some(k), Some(c), Some(ca)) => Some(SslConfig {
            private_key: k.clone(),
            certificate: c.clone(),
            ca_cert: ca.clone(),
        }),
        _ => bail!("TLS needs all three of --private-key, --certificate and --ca-cert"),
    })
}

/// Runs `ovn-route routes`; exit code 1 when a route is missing or conflicting.
pub fn routes(a: RoutesArgs) -> Result<ExitCode> {
    let cfg = match &a.config {
        Some(p) => ovn_route_config::Config::from_file(p)?,
        None => ovn_route_config::Config::default(),
    };
    let settings = HostRoutesSettings::from_config(&cfg)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let remotes = Remote::parse_list(&a.nb.db)?;
        let session = host_routes::nb_session(remotes, ssl(&a.nb)?, true);
        let what = format!("{}: OVN_Northbound", a.nb.db);
        crate::loaded::wait_loaded(&session, a.nb.timeout, &what).await?;
        let rec = ovn_route_kernel_reconciler()?;
        let nets = host_routes::observe_host(&rec)
            .await
            .context("reading this host's addresses")?;
        let mut hr = host_routes::HostRoutes::new(settings.clone());
        session.read(|n| hr.update(n, &nets));
        let observed = rec
            .observe_table(settings.table)
            .await
            .with_context(|| format!("reading table {}", settings.table))?;
        let entries = host_routes::entries(hr.plan(), settings.table, settings.protocol, &observed);
        let rejected: Vec<serde_json::Value> = (hr.plan().rejected.iter())
            .map(|r| serde_json::json!({"value": r.value, "source": r.source, "reason": r.reason}))
            .collect();
        if a.json {
            let v = serde_json::json!({
                "attached": nets.iter().map(|n| serde_json::json!({
                    "dev": n.dev, "address": n.address.to_string(), "network": n.network.to_string()
                })).collect::<Vec<_>>(),
                "routes": entries,
                "rejected": rejected,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            if entries.is_empty() {
                println!("no OVN network has its uplink on a network this host is attached to");
            }
            print!("{}", host_routes::render(&entries));
            for r in &hr.plan().rejected {
                println!("refused {:?} from {}: {}", r.value, r.source, r.reason);
            }
        }
        let ok = entries
            .iter()
            .all(|e| e.state == host_routes::RouteState::Installed);
        Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

fn ovn_route_kernel_reconciler() -> Result<ovn_route_agent::host_routes::KernelReconciler> {
    Ok(ovn_route_agent::host_routes::KernelReconciler::new()?)
}
