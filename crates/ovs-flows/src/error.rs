//! Errors of the OVS flow reconciler.

use std::time::Duration;

use crate::dump::DumpError;
use crate::reconcile::FlowStats;

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong while reading or changing a bridge's flows; command errors carry the
/// `ovs-ofctl` command line and what it printed on standard error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `ovs-ofctl` could not be started.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `ovs-ofctl` exited with an error (unknown bridge, unknown port, bad flow syntax, ...).
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line (with the environment overrides in front).
        command: String,
        /// Exit status as text.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
        /// The lines it was given on standard input, if any.
        input: Option<String>,
    },
    /// `ovs-ofctl` did not finish in time and was killed.
    #[error("`{command}` did not finish within {timeout:?} and was killed; stderr: {stderr}")]
    Timeout {
        /// The command line.
        command: String,
        /// The timeout.
        timeout: Duration,
        /// What it had printed on standard error.
        stderr: String,
    },
    /// `ovs-ofctl` printed a flow we could not read.
    #[error("unexpected output of `{command}`: {source}")]
    Parse {
        /// The command line.
        command: String,
        /// The line and what is wrong with it.
        #[source]
        source: DumpError,
    },
    /// The ownership cookie is 0 (every flow added without cookie) or all ones (reserved).
    #[error("cookie {0:#x} cannot mark ovn-route's flows")]
    InvalidCookie(u64),
    /// A desired flow cannot be written as one `ovs-ofctl` line with only priority, match and
    /// actions, or shares its slot with another desired flow.
    #[error("invalid flow `{flow}`: {reason}")]
    InvalidFlow {
        /// The flow.
        flow: String,
        /// Why.
        reason: String,
    },
    /// Flows of another owner (another cookie) have the priority and the same or a narrower
    /// match in the same table as desired flows: adding ours would replace theirs (a flow's
    /// identity in OpenFlow is table, priority and match; the cookie is not part of it) or
    /// overlap it ambiguously. Those desired flows were not added; everything else was done.
    #[error("bridge {bridge}: {} desired flow(s) not added, flows of another owner hold their priority and match: {}", conflicts.len(), conflicts.iter().map(|c| format!("`{}` (theirs: `{}`, cookie {:#x})", c.desired, c.theirs.flow, c.theirs.cookie)).collect::<Vec<_>>().join("; "))]
    ForeignConflict {
        /// The bridge.
        bridge: String,
        /// Each refused flow with the foreign flow in its way.
        conflicts: Vec<Conflict>,
        /// What was done.
        stats: FlowStats,
    },
    /// After applying, the bridge does not show the desired flows: usually a flow written in a
    /// form that `ovs-ofctl` prints differently (a port by number, an action spelled otherwise;
    /// see [`crate::normalize`]), so comparing never settles.
    #[error("bridge {bridge}: flows did not converge; missing or different: [{}]; shown instead: [{}]", missing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "), unexpected.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    NotConverged {
        /// The bridge.
        bridge: String,
        /// Desired flows not shown as such.
        missing: Vec<crate::Flow>,
        /// Flows of ours shown that are not desired.
        unexpected: Vec<crate::Flow>,
    },
}

/// A desired flow refused because a flow of another owner holds its slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Our flow.
    pub desired: crate::Flow,
    /// The other owner's flow, with its cookie.
    pub theirs: crate::DumpedFlow,
}
