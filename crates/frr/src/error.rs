//! Errors of the FRR configuration layer.

use std::path::PathBuf;

/// Result with [`FrrError`].
pub type Result<T> = std::result::Result<T, FrrError>;

/// What went wrong while configuring or watching FRR.
#[derive(Debug, thiserror::Error)]
pub enum FrrError {
    /// The intent cannot be expressed in FRR (names the field and the value).
    #[error("invalid FRR intent: {0}")]
    InvalidIntent(String),
    /// `vtysh` could not be started.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// `vtysh` exited with an error; `output` is what FRR printed (stdout and stderr).
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status as text.
        status: String,
        /// FRR's output.
        output: String,
    },
    /// `vtysh` did not finish in time and was killed.
    #[error("`{command}` did not finish within {timeout_ms} ms and was killed")]
    Timeout {
        /// The command line.
        command: String,
        /// The timeout.
        timeout_ms: u128,
    },
    /// FRR printed something we could not parse.
    #[error("unexpected output of `{command}`: {detail}")]
    Parse {
        /// The command line.
        command: String,
        /// What was wrong, with the output.
        detail: String,
    },
    /// No FRR daemon's vty socket is in the directory: FRR is not running there.
    #[error("FRR is not running: no zebra.vty or bgpd.vty in {0}")]
    NotRunning(PathBuf),
    /// An inotify or file system operation on the vty socket directory failed.
    #[error("{what} {path}: {source}")]
    Watch {
        /// The operation.
        what: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}
