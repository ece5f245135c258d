//! Waiting for a database session's replica to be loaded, for the one-shot subcommands.

use std::time::Duration;

use anyhow::{bail, Result};
use ovsdb::Session;

/// Waits up to `timeout_s` seconds (at least 0.1) for `session` to be connected and its replica
/// current; the error names `what` (the remote and database) and the session's last error.
pub async fn wait_loaded(session: &Session, timeout_s: f64, what: &str) -> Result<()> {
    let limit = Duration::from_secs_f64(timeout_s.max(0.1));
    if tokio::time::timeout(limit, session.wait_connected())
        .await
        .is_err()
    {
        let why = session
            .status()
            .last_error
            .unwrap_or_else(|| "no answer".to_string());
        bail!("{what} not loaded within {timeout_s:.0} s: {why}");
    }
    Ok(())
}
