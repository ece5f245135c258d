//! Errors of the peering model, the applier and the controller.

/// A declaration, a name or a key was refused; the message names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A peer name with characters or a length we refuse.
    #[error("invalid peer name {0:?}: use 1 to 63 characters from A-Z a-z 0-9 _ -, starting with a letter or digit")]
    PeerName(String),
    /// A network, project or integration name we refuse.
    #[error("invalid {what} name {value:?}: it must be 1 to 255 characters without '/', spaces or control characters")]
    TargetName {
        /// network, project or integration.
        what: &'static str,
        /// The refused value.
        value: String,
    },
    /// A configuration key outside `user.*`.
    #[error("config key {0:?} is not allowed: only user.* keys are")]
    ConfigKey(String),
    /// A peer type other than local or remote.
    #[error("invalid peer type {0:?}: expected local or remote")]
    PeerType(String),
    /// A stored declaration that is not valid JSON of the expected shape.
    #[error("the stored declaration is not valid: {0}")]
    Stored(String),
    /// Any other inconsistency.
    #[error("{0}")]
    Invalid(String),
}

/// Errors of applying a diff to the NB or of the peering commands.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The request itself is invalid.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The network named by the user is not in the NB (for its own network only: targets are never
    /// looked up in a way that tells).
    #[error("network {network:?} not found in project {project:?}")]
    NoSuchNetwork {
        /// The project.
        project: String,
        /// The network name.
        network: String,
    },
    /// Several routers answer to that name in that project.
    #[error("network name {network:?} is ambiguous in project {project:?}: routers {routers}")]
    AmbiguousNetwork {
        /// The project.
        project: String,
        /// The network name.
        network: String,
        /// The routers' names.
        routers: String,
    },
    /// `peer create` for a name the network already has.
    #[error("network {network:?} already has a peer named {peer:?}")]
    PeerExists {
        /// The network.
        network: String,
        /// The peer name.
        peer: String,
    },
    /// A peer name the network does not have.
    #[error("network {network:?} has no peer named {peer:?}")]
    NoSuchPeer {
        /// The network.
        network: String,
        /// The peer name.
        peer: String,
    },
    /// A second peer aimed at the same target from one network.
    #[error("network {network:?} already has peer {existing:?} aimed at {target}")]
    DuplicateTarget {
        /// The network.
        network: String,
        /// The existing peer.
        existing: String,
        /// `project/network`.
        target: String,
    },
    /// The NB is not in a state the request can work with.
    #[error("{0}")]
    Invalid(String),
    /// What is asked for is recognised but not implemented yet.
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
    /// The transaction's `wait` found rows changed since they were read, again and again.
    #[error("the NB kept changing under us: gave up after {attempts} attempts")]
    Contention {
        /// How many transactions were tried.
        attempts: u32,
    },
    /// The NB refused the transaction or could not be reached.
    #[error("NB transaction failed: {0}")]
    Ovsdb(#[from] ovsdb::Error),
}

impl PeerError {
    /// True when a transaction failed only because a `wait` found that rows it read had changed
    /// (or a lock assertion failed: the lock was just lost): re-read and try again.
    pub fn is_conflict(&self) -> bool {
        matches!(self, PeerError::Ovsdb(ovsdb::Error::Transaction { error, .. })
            if error == "timed out" || error == "not owner")
    }
}
