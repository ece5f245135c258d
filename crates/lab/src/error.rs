//! The error type of the lab harness.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while starting, driving or inspecting lab daemons.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A program could not be started at all (missing binary, bad working directory, ...).
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line that was attempted.
        command: String,
        /// The operating system error.
        #[source]
        source: io::Error,
    },
    /// A command ran but exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line that failed.
        command: String,
        /// Its exit status, as text (e.g. "exit status: 1").
        status: String,
        /// What it printed on standard output.
        stdout: String,
        /// What it printed on standard error (trimmed).
        stderr: String,
    },
    /// A command did not finish in time and was killed.
    #[error("`{command}` did not finish within {timeout:?} and was killed; stderr: {stderr}")]
    CommandTimeout {
        /// The command line that hung.
        command: String,
        /// How long it was given.
        timeout: Duration,
        /// What it had printed on standard error so far.
        stderr: String,
    },
    /// A condition polled for never became true.
    #[error("timed out after {timeout:?} waiting for {what}; last observation: {last}")]
    WaitTimeout {
        /// What was being awaited.
        what: String,
        /// How long it was awaited.
        timeout: Duration,
        /// The last state or error seen while polling.
        last: String,
    },
    /// A daemon exited while it should have been running.
    #[error("daemon {name} (`{command}`) exited: {status}; log {log}:\n{log_tail}")]
    DaemonExited {
        /// Short name of the daemon (e.g. "hv1/ovn-controller").
        name: String,
        /// Its command line.
        command: String,
        /// How it exited.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log file and standard error.
        log_tail: String,
    },
    /// A file system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system error.
        #[source]
        source: io::Error,
    },
    /// A request that the harness cannot satisfy (bad index, missing option, unparsable output).
    #[error("{0}")]
    Invalid(String),
}

/// Result type of the lab harness.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

impl LabError {
    /// Builds an [`LabError::Io`] with a context message.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        LabError::Io {
            context: context.into(),
            source,
        }
    }
}
