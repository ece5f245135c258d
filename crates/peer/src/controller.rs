//! The peering controller: one instance at a time cluster-wide (an OVSDB lock on the NB) keeps
//! the OVN objects of every relationship in line with the declarations. It reconciles on every
//! NB change and periodically; each transaction asserts the lock and `wait`s on the routers it
//! read, so a controller that lost its lock, or raced a `peer` command, writes nothing stale.
//! Restart-safe: all state is in the NB (declarations and marked objects) and, for remote
//! peering, in the integrations' IC-NBs (transit switches), which it follows with one session per
//! integration.

use std::future::Future;
use std::time::Duration;

use ovsdb::{Event, Remote, Session, SessionConfig};
use tracing::{debug, info, warn};

use crate::apply::{drain, reconcile_step, wait_for_change, Step};
use crate::error::PeerError;
use crate::ic::{is_constraint, remote_step, IcSessions, RemoteStep};

/// Default name of the NB lock held by the active controller (OVSDB lock names are ids:
/// letters, digits and `_`, so not `ovn-route-peering`).
pub const LOCK_NAME: &str = "ovn_route_peering";

/// Controller settings.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The OVSDB lock's name.
    pub lock: String,
    /// Reconcile at least this often, changes or not.
    pub period: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            lock: LOCK_NAME.to_string(),
            period: Duration::from_secs(60),
        }
    }
}

/// The session settings peering needs on the NB: its tables and columns, and only the leader of
/// a cluster (locks and the `wait`s must see the latest state).
pub fn session_config(remotes: Vec<Remote>) -> SessionConfig {
    let mut cfg = SessionConfig::new(remotes, "OVN_Northbound");
    cfg.tables = crate::read::tables();
    cfg.leader_only = true;
    cfg
}

/// Runs the controller on `session` until `shutdown` completes (or the session ends).
pub async fn run(
    session: &Session,
    cfg: &ControllerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), PeerError> {
    let mut held = session.lock(&cfg.lock);
    let mut events = session.subscribe();
    let mut tick = tokio::time::interval(cfg.period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut dirty = true;
    let mut last_in_sync: Option<usize> = None;
    let mut ics = IcSessions::default();
    info!(lock = %cfg.lock, "peering controller started; waiting for the lock");
    loop {
        if dirty && *held.borrow() && session.status().connected {
            dirty = false;
            drain(&mut events);
            match reconcile_step(session, Some(&cfg.lock)).await {
                Ok(Step::InSync { relationships }) => {
                    match remote_step(session, &mut ics, Some(&cfg.lock)).await {
                        Ok(RemoteStep::InSync) => {
                            if last_in_sync != Some(relationships) {
                                info!(relationships, "peering in sync");
                            }
                            last_in_sync = Some(relationships);
                        }
                        Ok(RemoteStep::Applied) => {
                            last_in_sync = None;
                            dirty = true;
                            wait_for_change(&mut events).await;
                            continue;
                        }
                        Err(e) if e.is_conflict() || is_constraint(&e) => {
                            debug!(error = %e, "remote peering transaction lost a race; planning again");
                            dirty = true;
                            wait_for_change(&mut events).await;
                            continue;
                        }
                        Err(e) => {
                            warn!(error = %e, "remote peering reconcile failed; retrying");
                            dirty = true;
                            tokio::select! {
                                _ = &mut shutdown => break,
                                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            }
                            continue;
                        }
                    }
                }
                Ok(Step::Applied { ops, remaining }) => {
                    info!(ops, remaining, "peering relationship reconciled");
                    last_in_sync = None;
                    dirty = true;
                    wait_for_change(&mut events).await;
                    continue;
                }
                Err(e) if e.is_conflict() => {
                    debug!(error = %e, "peering transaction lost a race; planning again");
                    dirty = true;
                    wait_for_change(&mut events).await;
                    continue;
                }
                Err(e) => {
                    warn!(error = %e, "peering reconcile failed; retrying");
                    dirty = true;
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
            }
        }
        tokio::select! {
            _ = &mut shutdown => break,
            r = held.changed() => {
                if r.is_err() {
                    break;
                }
                if *held.borrow() {
                    info!(lock = %cfg.lock, "peering lock acquired");
                    dirty = true;
                } else {
                    info!(lock = %cfg.lock, "peering lock lost; standing by");
                }
            }
            ev = events.recv() => match ev {
                None => break,
                Some(Event::Changed(_)) | Some(Event::Connected { .. }) => dirty = true,
                Some(_) => {}
            },
            _ = tick.tick() => dirty = true,
            Some(()) = ics.wake.recv() => dirty = true,
        }
    }
    session.unlock(&cfg.lock);
    info!("peering controller stopped");
    Ok(())
}
