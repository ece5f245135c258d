//! The error type of the OVSDB client. Every variant names the remote or the request that failed.

use serde_json::Value as Json;

/// Errors of the OVSDB client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A remote string could not be parsed.
    #[error("invalid OVSDB remote {value:?}: {reason}")]
    InvalidRemote {
        /// The offending remote string.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// Connecting, reading or writing failed.
    #[error("{remote}: {what}: {source}")]
    Io {
        /// The remote.
        remote: String,
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// TLS set-up or handshake failed.
    #[error("{remote}: TLS: {reason}")]
    Tls {
        /// The remote.
        remote: String,
        /// The TLS library's explanation.
        reason: String,
    },
    /// The server sent something that is not valid OVSDB JSON-RPC.
    #[error("{remote}: protocol error: {reason}")]
    Protocol {
        /// The remote.
        remote: String,
        /// What was wrong.
        reason: String,
    },
    /// The server answered a request with an error.
    #[error("{remote}: {method} failed: {error}{}", details.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rpc {
        /// The remote.
        remote: String,
        /// The request's method.
        method: String,
        /// The server's error string.
        error: String,
        /// The server's details, if any.
        details: Option<String>,
    },
    /// A transaction operation failed.
    #[error("transaction failed at operation {index}: {error}{}", details.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Transaction {
        /// Index of the failing operation (or of the commit) in the request.
        index: usize,
        /// The server's error string (e.g. "constraint violation", "timed out").
        error: String,
        /// The server's details, if any.
        details: Option<String>,
    },
    /// The connection closed before the request was answered.
    #[error("{remote}: connection closed{}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    Closed {
        /// The remote.
        remote: String,
        /// Why, if known.
        reason: String,
    },
    /// No response within the allowed time.
    #[error("{remote}: {what} timed out after {secs:.1} s")]
    Timeout {
        /// The remote.
        remote: String,
        /// What was awaited.
        what: String,
        /// How long it waited.
        secs: f64,
    },
    /// A schema could not be understood.
    #[error("schema: {0}")]
    Schema(String),
    /// The database is not served by the remote.
    #[error("{remote}: database {db} is not served here")]
    NoSuchDatabase {
        /// The remote.
        remote: String,
        /// The database name.
        db: String,
    },
    /// The session has been shut down.
    #[error("the OVSDB session has been shut down")]
    Shutdown,
}

impl Error {
    /// Builds an RPC error from the `error` member of a response.
    pub(crate) fn rpc(remote: &str, method: &str, error: &Json) -> Self {
        let (e, details) = match error {
            Json::String(s) => (s.clone(), None),
            Json::Object(o) => (
                o.get("error")
                    .and_then(Json::as_str)
                    .unwrap_or("unknown error")
                    .to_string(),
                o.get("details").and_then(Json::as_str).map(str::to_string),
            ),
            other => (other.to_string(), None),
        };
        Error::Rpc {
            remote: remote.to_string(),
            method: method.to_string(),
            error: e,
            details,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
