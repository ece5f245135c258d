//! The error a configuration file is refused with.

use std::path::PathBuf;

/// Why a configuration file was refused. Every variant names the file (`origin`) and, where the
/// problem sits on a line, the line number, section, option and value, so that
/// `Display` reads like `/etc/ovn-route/agent.conf:12: [DEFAULT] bgp_AS = "abc": not an AS number
/// (1..4294967295)`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the configuration file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A line is not INI (`[section]`, `key = value`, `key: value`, a comment or blank).
    #[error("{origin}:{line}: {message}")]
    Syntax {
        /// The file name (or the name given to [`crate::Config::from_str`]).
        origin: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// A section that neither the Python agent nor ovn-route knows.
    #[error(
        "{origin}:{line}: unknown section [{section}]{}",
        did_you_mean(suggestion, true)
    )]
    UnknownSection {
        /// The file name.
        origin: String,
        /// The line of the section header.
        line: usize,
        /// The section name as written.
        section: String,
        /// The closest known section name, if one is close.
        suggestion: Option<String>,
    },
    /// An option that the section does not have.
    #[error(
        "{origin}:{line}: [{section}] unknown option {option}{}",
        did_you_mean(suggestion, false)
    )]
    UnknownOption {
        /// The file name.
        origin: String,
        /// The line of the option.
        line: usize,
        /// The section the option is in.
        section: &'static str,
        /// The option name as written.
        option: String,
        /// The closest known option name of that section, if one is close.
        suggestion: Option<String>,
    },
    /// A known option with a value it cannot take (including values valid alone but not together
    /// with other options, such as an `ssl:` remote without its certificate files).
    #[error("{origin}:{line}: [{section}] {option} = {value:?}: {reason}")]
    InvalidValue {
        /// The file name.
        origin: String,
        /// The line of the option.
        line: usize,
        /// The section of the option.
        section: &'static str,
        /// The option name.
        option: &'static str,
        /// The value as written (quotes removed).
        value: String,
        /// Why it is refused, including what is accepted.
        reason: String,
    },
}

fn did_you_mean(suggestion: &Option<String>, section: bool) -> String {
    match (suggestion, section) {
        (Some(s), true) => format!(" (did you mean [{s}]?)"),
        (Some(s), false) => format!(" (did you mean {s}?)"),
        (None, _) => String::new(),
    }
}

impl ConfigError {
    /// The 1-based line the error is about, if it is about a line.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { line, .. }
            | ConfigError::UnknownSection { line, .. }
            | ConfigError::UnknownOption { line, .. }
            | ConfigError::InvalidValue { line, .. } => Some(*line),
        }
    }
}
