//! `ovn-route peer` (shaped like `incus network peer`) and `ovn-route controller`.
//!
//! Declarations live in the NB on the declaring router (see `docs/peering.md`). Every command that
//! changes one also makes that network's OVN objects match in the same transaction (guarded by
//! `wait`s), so `create` can say at once whether the peering is created or pending; the
//! controller keeps everything in line afterwards.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use ovn_route_peer::apply::edit_network;
use ovn_route_peer::controller::{self, session_config, ControllerConfig};
use ovn_route_peer::ic::{self, remote_sync, IcSessions};
use ovn_route_peer::model::{validate_config_key, validate_peer_name, validate_target_name};
use ovn_route_peer::remote::{integration_key, Integration, INTEGRATION_KEY_PREFIX};
use ovn_route_peer::{plan, read, Declaration, PeerError, PeerType, PeerView, Snapshot, Status};
use ovsdb::{
    Atom, Condition, Datum, Mutation, Operation, Remote, RowData, Session, SslConfig, Uuid,
    WaitUntil,
};

/// How to reach the NB (shared by `peer` and `controller`).
#[derive(Args, Debug, Clone)]
pub struct NbArgs {
    /// NB remote: tcp:IP:PORT, ssl:IP:PORT or unix:PATH; a comma-separated list for a cluster.
    #[arg(
        long,
        global = true,
        value_name = "REMOTE",
        default_value = "unix:/var/run/ovn/ovnnb_db.sock"
    )]
    pub db: String,
    /// TLS private key for ssl: remotes (PEM).
    #[arg(short = 'p', long, global = true, value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// TLS certificate (PEM).
    #[arg(short = 'c', long, global = true, value_name = "FILE")]
    pub certificate: Option<PathBuf>,
    /// TLS CA certificate (PEM).
    #[arg(short = 'C', long, global = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Give up if the NB is not loaded within this many seconds.
    #[arg(long, global = true, default_value_t = 30.0, value_name = "SECS")]
    pub timeout: f64,
}

/// `ovn-route peer`: manage peering between OVN networks (logical routers).
#[derive(Args, Debug)]
pub struct PeerArgs {
    #[command(flatten)]
    nb: NbArgs,
    /// Project of the network the command is about (the label `ovn-route:project` on its router).
    #[arg(long, global = true, default_value = "default")]
    project: String,
    #[command(subcommand)]
    command: PeerCommand,
}

/// Output formats of `peer list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// A JSON array.
    Json,
    /// A YAML list.
    Yaml,
}

#[derive(Subcommand, Debug)]
enum PeerCommand {
    /// List the peers of a network.
    List {
        /// The network: its router's name or its short name.
        network: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show a peer (YAML).
    Show {
        /// The network.
        network: String,
        /// The peer's name.
        peer: String,
    },
    /// Declare a peer; the relationship is created once the target declares it back.
    Create {
        /// The network.
        network: String,
        /// The peer's name on this network.
        peer: String,
        /// The target: [<project>/]<network> (local) or <integration> (remote).
        target: String,
        /// Configuration: user.KEY=VALUE ...
        config: Vec<String>,
        /// local, or remote (the target is then an integration: see `peer integration`).
        #[arg(long = "type", default_value = "local")]
        kind: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Print a configuration key (or, with --property, a property) of a peer.
    Get {
        /// The network.
        network: String,
        /// The peer.
        peer: String,
        /// The key.
        key: String,
        /// Read a property (description, type, target_project, ...) instead of a config key.
        #[arg(long)]
        property: bool,
    },
    /// Set configuration keys (KEY=VALUE ..., or KEY VALUE) or, with --property, the description.
    Set {
        /// The network.
        network: String,
        /// The peer.
        peer: String,
        /// KEY=VALUE pairs, or KEY VALUE.
        #[arg(required = true)]
        pairs: Vec<String>,
        /// Set a property instead of a config key.
        #[arg(long)]
        property: bool,
    },
    /// Remove a configuration key (or, with --property, clear the description).
    Unset {
        /// The network.
        network: String,
        /// The peer.
        peer: String,
        /// The key.
        key: String,
        /// Clear a property instead of a config key.
        #[arg(long)]
        property: bool,
    },
    /// Edit a peer as YAML in $EDITOR (or read the new YAML from stdin when it is not a terminal).
    Edit {
        /// The network.
        network: String,
        /// The peer.
        peer: String,
    },
    /// Delete a peer; its relationship's objects go, the other side returns to pending.
    Delete {
        /// The network.
        network: String,
        /// The peer.
        peer: String,
    },
    /// Manage integrations (OVN interconnection databases) for remote peers.
    Integration {
        #[command(subcommand)]
        command: IntegrationCommand,
    },
}

#[derive(Subcommand, Debug)]
enum IntegrationCommand {
    /// Store an integration (IC-NB and IC-SB settings) in the NB.
    Create {
        /// Its name (the target of `peer create ... --type remote`).
        name: String,
        /// IC-NB remote(s), comma-separated.
        #[arg(long)]
        ic_nb: String,
        /// IC-SB remote(s), comma-separated.
        #[arg(long)]
        ic_sb: String,
        /// Interconnection gateway chassis for the router ports, highest priority first.
        #[arg(long, value_delimiter = ',')]
        gateway_chassis: Vec<String>,
        /// Transit switch name pattern ({peer}, {network}, {project}, {integration}).
        #[arg(long, default_value = ovn_route_peer::remote::DEFAULT_TS_PATTERN)]
        transit_switch_pattern: String,
        /// IPv4 pool of the link subnets.
        #[arg(long, default_value = ovn_route_peer::remote::DEFAULT_LINK_POOL)]
        link_pool: String,
        /// Prefix length of each link subnet.
        #[arg(long, default_value_t = ovn_route_peer::remote::DEFAULT_LINK_PREFIX)]
        link_prefix: u8,
        /// IPv6 pool of the IPv6 link subnets (none: IPv4 links only).
        #[arg(long)]
        link_pool6: Option<String>,
        /// Prefix length of each IPv6 link subnet.
        #[arg(long, default_value_t = ovn_route_peer::remote::DEFAULT_LINK_PREFIX6)]
        link_prefix6: u8,
        /// TLS private key (PEM) for an ssl: IC-NB.
        #[arg(long, value_name = "FILE")]
        ssl_private_key: Option<PathBuf>,
        /// TLS certificate (PEM) for an ssl: IC-NB.
        #[arg(long, value_name = "FILE")]
        ssl_certificate: Option<PathBuf>,
        /// TLS CA certificate (PEM) for an ssl: IC-NB.
        #[arg(long, value_name = "FILE")]
        ssl_ca_cert: Option<PathBuf>,
    },
    /// Change keys of an integration: KEY=VALUE ... (ic_nb, ic_sb, transit_switch_pattern,
    /// link_pool, link_prefix, link_pool6, link_prefix6, gateway_chassis, ssl_private_key,
    /// ssl_certificate, ssl_ca_cert).
    Set {
        /// Its name.
        name: String,
        /// KEY=VALUE pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    /// Return keys of an integration to their defaults (ic_nb and ic_sb cannot be unset).
    Unset {
        /// Its name.
        name: String,
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// List the integrations.
    List,
    /// Show an integration (YAML).
    Show {
        /// Its name.
        name: String,
    },
    /// Delete an integration (refused while a peer uses it).
    Delete {
        /// Its name.
        name: String,
    },
}

/// `ovn-route controller`: run the peering controller alone.
#[derive(Args, Debug)]
pub struct ControllerArgs {
    #[command(flatten)]
    nb: NbArgs,
    /// Name of the NB lock that makes one controller active cluster-wide (letters, digits, _).
    #[arg(long, default_value = controller::LOCK_NAME)]
    lock: String,
    /// Reconcile at least this often, in seconds, changes or not.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    period: f64,
}

fn remotes(nb: &NbArgs) -> Result<(Vec<Remote>, Option<SslConfig>)> {
    let remotes = Remote::parse_list(&nb.db)?;
    let ssl = match (&nb.private_key, &nb.certificate, &nb.ca_cert) {
        (None, None, None) => None,
        (Some(k), Some(c), Some(ca)) => Some(SslConfig {
            private_key: k.clone(),
            certificate: c.clone(),
            ca_cert: ca.clone(),
        }),
        _ => bail!("TLS needs all three of --private-key, --certificate and --ca-cert"),
    };
    if ssl.is_none() && remotes.iter().any(Remote::is_ssl) {
        bail!(
            "remote {} is ssl: but no --private-key/--certificate/--ca-cert were given",
            nb.db
        );
    }
    Ok((remotes, ssl))
}

async fn connect(nb: &NbArgs) -> Result<Session> {
    let (remotes, ssl) = remotes(nb)?;
    let mut cfg = session_config(remotes);
    cfg.connect.ssl = ssl;
    let session = Session::start(cfg);
    let what = format!("{}: OVN_Northbound", nb.db);
    crate::loaded::wait_loaded(&session, nb.timeout, &what).await?;
    Ok(session)
}

/// The router of `network` in `project` (the user's own network: saying it is missing is fine).
fn resolve(snap: &Snapshot, project: &str, network: &str) -> Result<Uuid, PeerError> {
    let found = snap.find_network(project, network);
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(PeerError::NoSuchNetwork {
            project: project.to_string(),
            network: network.to_string(),
        }),
        many => Err(PeerError::AmbiguousNetwork {
            project: project.to_string(),
            network: network.to_string(),
            routers: many
                .iter()
                .map(|u| format!("{} ({u})", snap.routers[u].name))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Parses `user.KEY=VALUE` arguments.
fn parse_config(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| anyhow!("config {p:?}: expected KEY=VALUE"))?;
        validate_config_key(k)?;
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

/// The user-facing line of a status.
fn status_line(st: &Status) -> String {
    match st {
        Status::Created => "created".to_string(),
        other => other.message(),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Runs a `peer` subcommand.
pub fn peer(a: PeerArgs) -> Result<()> {
    runtime()?.block_on(run(a))
}

/// Runs `ovn-route controller` until SIGINT or SIGTERM.
pub fn controller(a: ControllerArgs) -> Result<()> {
    runtime()?.block_on(run_controller(a))
}

async fn run(a: PeerArgs) -> Result<()> {
    validate_target_name("project", &a.project)?;
    let session = connect(&a.nb).await?;
    let mut events = session.subscribe();
    let project = a.project.clone();
    let snap = session.read(read::snapshot);
    if let PeerCommand::Integration { command } = a.command {
        return integration(&session, &snap, command).await;
    }
    // Resolve the network once; edits then work on its router (re-read on every attempt).
    let network = match &a.command {
        PeerCommand::Integration { .. } => unreachable!("handled above"),
        PeerCommand::List { network, .. }
        | PeerCommand::Show { network, .. }
        | PeerCommand::Create { network, .. }
        | PeerCommand::Get { network, .. }
        | PeerCommand::Set { network, .. }
        | PeerCommand::Unset { network, .. }
        | PeerCommand::Edit { network, .. }
        | PeerCommand::Delete { network, .. } => network.clone(),
    };
    let router = resolve(&snap, &project, &network)?;
    let remote_statuses = remote_statuses(&session, &snap, router, &a.nb).await;
    let view = |snap: &Snapshot, name: &str| -> Result<PeerView, PeerError> {
        let r = &snap.routers[&router];
        let d = r
            .declaration(name)
            .ok_or_else(|| PeerError::NoSuchPeer {
                network: network.clone(),
                peer: name.to_string(),
            })?
            .map_err(PeerError::from)?;
        let p = plan(snap);
        let st = remote_statuses
            .get(name)
            .or(p.status(router, name))
            .cloned()
            .unwrap_or(Status::Pending);
        Ok(PeerView::new(name, &d, &st))
    };
    let mut out = std::io::stdout().lock();
    match a.command {
        PeerCommand::List { format, .. } => {
            let p = plan(&snap);
            let r = &snap.routers[&router];
            let mut views = Vec::new();
            for (name, raw) in r.raw_declarations() {
                let st = remote_statuses
                    .get(name)
                    .or(p.status(router, name))
                    .cloned()
                    .unwrap_or(Status::Pending);
                match Declaration::parse(raw) {
                    Ok(d) => views.push(PeerView::new(name, &d, &st)),
                    Err(_) => views.push(PeerView {
                        name: name.to_string(),
                        description: String::new(),
                        config: BTreeMap::new(),
                        kind: PeerType::Local,
                        target_project: None,
                        target_network: None,
                        target_integration: None,
                        status: st.as_str().to_string(),
                        status_message: st.message(),
                    }),
                }
            }
            match format {
                Format::Json => {
                    serde_json::to_writer_pretty(&mut out, &views)?;
                    writeln!(out)?;
                }
                Format::Yaml => write!(out, "{}", yaml_serde::to_string(&views)?)?,
                Format::Table => write!(out, "{}", table(&views))?,
            }
        }
        PeerCommand::Show { peer, .. } => {
            let v = view(&snap, &peer)?;
            write!(out, "{}", yaml_serde::to_string(&v)?)?;
        }
        PeerCommand::Get {
            peer,
            key,
            property,
            ..
        } => {
            let v = view(&snap, &peer)?;
            let value = if property {
                property_value(&v, &key)?
            } else {
                v.config.get(&key).cloned().unwrap_or_default()
            };
            writeln!(out, "{value}")?;
        }
        PeerCommand::Create {
            peer,
            target,
            config,
            kind,
            description,
            ..
        } => {
            validate_peer_name(&peer)?;
            let kind: PeerType = kind.parse()?;
            let (tp, tn) = match target.split_once('/') {
                Some((p, n)) => (p.to_string(), n.to_string()),
                None => (project.clone(), target.clone()),
            };
            let mut decl = if kind == PeerType::Remote {
                validate_target_name("integration", &target)?;
                let known = session.read(ic::remote_nb).integrations();
                if !known.contains_key(&target) {
                    bail!(
                        "no integration named {target:?} (see `ovn-route peer integration list`)"
                    );
                }
                Declaration {
                    kind,
                    description: String::new(),
                    config: BTreeMap::new(),
                    target_project: None,
                    target_network: None,
                    target_integration: Some(target.clone()),
                }
            } else {
                Declaration::local(&tp, &tn)
            };
            decl.description = description;
            decl.config = parse_config(&config)?;
            decl.validate()?;
            let (_, p) = edit_network(&session, &mut events, router, |_, r| {
                if r.declaration(&peer).is_some() {
                    return Err(PeerError::PeerExists {
                        network: network.clone(),
                        peer: peer.clone(),
                    });
                }
                for (other, raw) in r.raw_declarations() {
                    if kind == PeerType::Remote {
                        break;
                    }
                    let same = Declaration::parse(raw)
                        .ok()
                        .and_then(|d| {
                            d.local_target()
                                .map(|(p, n)| (p.to_string(), n.to_string()))
                        })
                        .is_some_and(|t| t == (tp.clone(), tn.clone()));
                    if same {
                        return Err(PeerError::DuplicateTarget {
                            network: network.clone(),
                            existing: other.to_string(),
                            target: format!("{tp}/{tn}"),
                        });
                    }
                }
                r.set_declaration(&peer, &decl);
                Ok(())
            })
            .await?;
            let st = if kind == PeerType::Remote {
                let rp = sync_remote(&session, &a.nb).await?;
                rp.statuses
                    .get(&ovn_route_peer::DeclRef::new(router, &peer))
                    .cloned()
                    .unwrap_or(Status::Pending)
            } else {
                p.status(router, &peer).cloned().unwrap_or(Status::Pending)
            };
            writeln!(out, "{}", status_line(&st))?;
        }
        PeerCommand::Set {
            peer,
            pairs,
            property,
            ..
        } => {
            let kv: Vec<(String, String)> = if pairs.len() == 2 && !pairs[0].contains('=') {
                vec![(pairs[0].clone(), pairs[1].clone())]
            } else {
                pairs
                    .iter()
                    .map(|p| {
                        p.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .ok_or_else(|| anyhow!("{p:?}: expected KEY=VALUE"))
                    })
                    .collect::<Result<_>>()?
            };
            for (k, _) in &kv {
                if property {
                    if k != "description" {
                        bail!("property {k:?} cannot be set: only description can (delete and create the peer to change its target)");
                    }
                } else {
                    validate_config_key(k)?;
                }
            }
            update(&session, &mut events, router, &network, &peer, |d| {
                for (k, v) in &kv {
                    if property {
                        d.description = v.clone();
                    } else {
                        d.config.insert(k.clone(), v.clone());
                    }
                }
                Ok(())
            })
            .await?;
        }
        PeerCommand::Unset {
            peer,
            key,
            property,
            ..
        } => {
            if property && key != "description" {
                bail!("property {key:?} cannot be unset: only description can");
            }
            update(&session, &mut events, router, &network, &peer, |d| {
                if property {
                    d.description.clear();
                } else {
                    d.config.remove(&key);
                }
                Ok(())
            })
            .await?;
        }
        PeerCommand::Edit { peer, .. } => {
            let current = view(&snap, &peer)?;
            let text = if std::io::stdin().is_terminal() {
                edit_in_editor(&yaml_serde::to_string(&current)?)?
            } else {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s
            };
            let new: PeerView =
                yaml_serde::from_str(&text).context("the edited peer is not valid YAML")?;
            if new.name != current.name {
                bail!(
                    "the name cannot be changed ({:?} -> {:?})",
                    current.name,
                    new.name
                );
            }
            let wanted = new.declaration()?;
            update(&session, &mut events, router, &network, &peer, |d| {
                if wanted.kind != d.kind
                    || wanted.target_project != d.target_project
                    || wanted.target_network != d.target_network
                    || wanted.target_integration != d.target_integration
                {
                    return Err(PeerError::Invalid(
                        "only description and config can be changed; delete and create the peer to change its target".into(),
                    ));
                }
                *d = wanted.clone();
                Ok(())
            })
            .await?;
        }
        PeerCommand::Delete { peer, .. } => {
            let was_remote = snap.routers[&router]
                .declaration(&peer)
                .and_then(|d| d.ok())
                .is_some_and(|d| d.kind == PeerType::Remote);
            edit_network(&session, &mut events, router, |_, r| {
                if r.remove_declaration(&peer) {
                    Ok(())
                } else {
                    Err(PeerError::NoSuchPeer {
                        network: network.clone(),
                        peer: peer.clone(),
                    })
                }
            })
            .await?;
            if was_remote {
                sync_remote(&session, &a.nb).await?;
            }
        }
        PeerCommand::Integration { .. } => unreachable!("handled above"),
    }
    out.flush()?;
    Ok(())
}

/// Makes the remote peering objects (IC-NB transit switches, NB ports) match the declarations
/// now, as the controller would; returns the remote plan as written.
async fn sync_remote(session: &Session, nb: &NbArgs) -> Result<ovn_route_peer::remote::RemotePlan> {
    let mut ics = IcSessions::default();
    let limit = Duration::from_secs_f64(nb.timeout.max(0.1));
    Ok(remote_sync(session, &mut ics, limit).await?)
}

/// The statuses of the remote declarations of `router` (read-only; connects to the IC-NBs of
/// the integrations only when the network has remote declarations).
async fn remote_statuses(
    session: &Session,
    snap: &Snapshot,
    router: Uuid,
    nb: &NbArgs,
) -> BTreeMap<String, Status> {
    let has_remote = snap.routers[&router]
        .raw_declarations()
        .any(|(_, raw)| Declaration::parse(raw).is_ok_and(|d| d.kind == PeerType::Remote));
    if !has_remote {
        return BTreeMap::new();
    }
    let mut ics = IcSessions::default();
    ics.sync(&session.read(ic::remote_nb));
    ics.wait_connected(Duration::from_secs_f64(nb.timeout.max(0.1)))
        .await;
    let (_, _, p) = ic::plan_from(session, &ics);
    p.statuses
        .into_iter()
        .filter(|(d, _)| d.router == router)
        .map(|(d, s)| (d.name, s))
        .collect()
}

/// `peer integration ...`: integrations are `NB_Global.external_ids:ovn-route:integration:<name>`.
async fn integration(session: &Session, snap: &Snapshot, cmd: IntegrationCommand) -> Result<()> {
    let rnb = session.read(ic::remote_nb);
    let all = rnb.integrations();
    let mut out = std::io::stdout().lock();
    let used_by = |name: &str| -> Vec<String> {
        snap.routers
            .values()
            .flat_map(|r| {
                r.raw_declarations()
                    .filter(|(_, raw)| {
                        Declaration::parse(raw)
                            .is_ok_and(|d| d.target_integration.as_deref() == Some(name))
                    })
                    .map(|(p, _)| format!("{}/{p}", r.network_name()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    // Guarded by a wait on NB_Global's external_ids as read.
    let write = |mutations: Vec<Mutation>| {
        vec![
            Operation::Wait {
                table: "NB_Global".into(),
                conditions: vec![Condition::uuid(rnb.global)],
                columns: vec!["external_ids".into()],
                rows: vec![RowData::from([(
                    "external_ids".to_string(),
                    Datum::map(
                        rnb.external_ids
                            .iter()
                            .map(|(k, v)| (Atom::string(k), Atom::string(v))),
                    ),
                )])],
                until: WaitUntil::Equal,
                timeout_ms: Some(0),
            },
            Operation::Mutate {
                table: "NB_Global".into(),
                conditions: vec![Condition::uuid(rnb.global)],
                mutations,
            },
        ]
    };
    match cmd {
        IntegrationCommand::Create {
            name,
            ic_nb,
            ic_sb,
            gateway_chassis,
            transit_switch_pattern,
            link_pool,
            link_prefix,
            link_pool6,
            link_prefix6,
            ssl_private_key,
            ssl_certificate,
            ssl_ca_cert,
        } => {
            validate_target_name("integration", &name)?;
            if all.contains_key(&name) {
                bail!("integration {name:?} already exists");
            }
            let i = Integration {
                ic_nb,
                ic_sb,
                transit_switch_pattern,
                link_pool,
                link_prefix,
                gateway_chassis,
                link_pool6,
                link_prefix6,
                ssl_private_key,
                ssl_certificate,
                ssl_ca_cert,
            };
            i.validate()?;
            i.check_files()?;
            session
                .transact(write(vec![Mutation::insert(
                    "external_ids",
                    Datum::map([(
                        Atom::string(integration_key(&name)),
                        Atom::string(i.to_json()),
                    )]),
                )]))
                .await
                .context("storing the integration")?;
        }
        IntegrationCommand::Set { name, pairs } => {
            let mut i = stored(&all, &name)?;
            let before = i.clone();
            for p in &pairs {
                let (k, v) = p
                    .split_once('=')
                    .ok_or_else(|| anyhow!("{p:?}: expected KEY=VALUE"))?;
                i.set(k, v)?;
            }
            i.check_files()?;
            check_pattern_change(&before, &i, &used_by(&name), &name)?;
            session
                .transact(write(replace(&name, &i)))
                .await
                .context("storing the integration")?;
        }
        IntegrationCommand::Unset { name, keys } => {
            let mut i = stored(&all, &name)?;
            let before = i.clone();
            for k in &keys {
                i.unset(k)?;
            }
            check_pattern_change(&before, &i, &used_by(&name), &name)?;
            session
                .transact(write(replace(&name, &i)))
                .await
                .context("storing the integration")?;
        }
        IntegrationCommand::List => {
            for (name, i) in &all {
                match i {
                    Ok(i) => writeln!(out, "{name}  ic_nb={}  ic_sb={}", i.ic_nb, i.ic_sb)?,
                    Err(e) => writeln!(out, "{name}  (invalid: {e})")?,
                }
            }
        }
        IntegrationCommand::Show { name } => {
            let i = all
                .get(&name)
                .ok_or_else(|| anyhow!("no integration named {name:?}"))?
                .clone()?;
            write!(out, "{}", yaml_serde::to_string(&i)?)?;
            let users = used_by(&name);
            if !users.is_empty() {
                writeln!(out, "used_by:")?;
                for u in users {
                    writeln!(out, "- {u}")?;
                }
            }
        }
        IntegrationCommand::Delete { name } => {
            if !rnb
                .external_ids
                .contains_key(&format!("{INTEGRATION_KEY_PREFIX}{name}"))
            {
                bail!("no integration named {name:?}");
            }
            let users = used_by(&name);
            if !users.is_empty() {
                bail!(
                    "integration {name:?} is used by peers {}; delete them first",
                    users.join(", ")
                );
            }
            session
                .transact(write(vec![Mutation::delete(
                    "external_ids",
                    Datum::set([Atom::string(integration_key(&name))]),
                )]))
                .await
                .context("deleting the integration")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The stored integration `name`, parsed.
fn stored(
    all: &BTreeMap<String, Result<Integration, ovn_route_peer::ModelError>>,
    name: &str,
) -> Result<Integration> {
    match all.get(name) {
        None => bail!("no integration named {name:?}"),
        Some(Err(e)) => bail!("integration {name:?} as stored is not valid: {e}"),
        Some(Ok(i)) => Ok(i.clone()),
    }
}

/// Mutations replacing integration `name`'s stored value with `i`.
fn replace(name: &str, i: &Integration) -> Vec<Mutation> {
    let key = integration_key(name);
    vec![
        Mutation::delete("external_ids", Datum::set([Atom::string(&key)])),
        Mutation::insert(
            "external_ids",
            Datum::map([(Atom::string(&key), Atom::string(i.to_json()))]),
        ),
    ]
}

/// Refuses to change the transit switch pattern while peers use the integration: their transit
/// switches would change name under them (and both AZs must agree on the names).
fn check_pattern_change(
    before: &Integration,
    after: &Integration,
    users: &[String],
    name: &str,
) -> Result<()> {
    if before.transit_switch_pattern != after.transit_switch_pattern && !users.is_empty() {
        bail!(
            "transit_switch_pattern of integration {name:?} cannot change while peers {} use it",
            users.join(", ")
        );
    }
    Ok(())
}

/// Changes one existing declaration with `f`.
async fn update(
    session: &Session,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<ovsdb::Event>,
    router: Uuid,
    network: &str,
    peer: &str,
    mut f: impl FnMut(&mut Declaration) -> Result<(), PeerError>,
) -> Result<()> {
    edit_network(session, events, router, |_, r| {
        let mut d = r.declaration(peer).ok_or_else(|| PeerError::NoSuchPeer {
            network: network.to_string(),
            peer: peer.to_string(),
        })??;
        f(&mut d)?;
        d.validate()?;
        r.set_declaration(peer, &d);
        Ok(())
    })
    .await?;
    Ok(())
}

fn property_value(v: &PeerView, key: &str) -> Result<String> {
    Ok(match key {
        "name" => v.name.clone(),
        "description" => v.description.clone(),
        "type" => v.kind.to_string(),
        "target_project" => v.target_project.clone().unwrap_or_default(),
        "target_network" => v.target_network.clone().unwrap_or_default(),
        "target_integration" => v.target_integration.clone().unwrap_or_default(),
        "status" => v.status.clone(),
        other => bail!("unknown property {other:?}"),
    })
}

fn table(views: &[PeerView]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "DESCRIPTION".into(),
        "PEER".into(),
        "TYPE".into(),
        "STATUS".into(),
    ]];
    for v in views {
        let peer = match (&v.target_project, &v.target_network, &v.target_integration) {
            (Some(p), Some(n), _) => format!("{p}/{n}"),
            (_, _, Some(i)) => i.clone(),
            _ => String::new(),
        };
        rows.push([
            v.name.clone(),
            v.description.clone(),
            peer,
            v.kind.to_string(),
            v.status.to_uppercase(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        s.push_str(line.join("  ").trim_end());
        s.push('\n');
    }
    s
}

fn edit_in_editor(initial: &str) -> Result<String> {
    let path = std::env::temp_dir().join(format!("ovn-route-peer-{}.yaml", std::process::id()));
    std::fs::write(&path, initial)?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".to_string());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .with_context(|| format!("running editor {editor:?}"));
    let text = std::fs::read_to_string(&path);
    let _ = std::fs::remove_file(&path);
    let status = status?;
    if !status.success() {
        bail!("editor {editor:?} exited with {status}; nothing changed");
    }
    Ok(text?)
}

async fn run_controller(a: ControllerArgs) -> Result<()> {
    let session = connect(&a.nb).await?;
    let cfg = ControllerConfig {
        lock: a.lock,
        period: Duration::from_secs_f64(a.period.max(0.1)),
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    controller::run(&session, &cfg, shutdown).await?;
    Ok(())
}
