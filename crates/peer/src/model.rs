//! Networks, projects and peering declarations: the labels ovn-route reads on `Logical_Router`
//! rows, the declaration stored under one `external_ids` key per peer, its validation and the
//! derived status.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// `Logical_Router.external_ids` key holding a network's short name (its alias); without it the
/// network is named by the router's name only.
pub const NETWORK_KEY: &str = "ovn-route:network";
/// `Logical_Router.external_ids` key holding a network's project; absent means [`DEFAULT_PROJECT`].
pub const PROJECT_KEY: &str = "ovn-route:project";
/// The project of a router without a [`PROJECT_KEY`] label.
pub const DEFAULT_PROJECT: &str = "default";
/// Prefix of the `Logical_Router.external_ids` keys holding peering declarations:
/// `ovn-route:peer:<name>` = compact JSON of a [`Declaration`].
pub const PEER_KEY_PREFIX: &str = "ovn-route:peer:";

/// `external_ids` key marking every OVN object the peering controller owns.
pub const OWNER_KEY: &str = "ovn-route:owner";
/// Value of [`OWNER_KEY`] on peering objects.
pub const OWNER_VALUE: &str = "peering";
/// `external_ids` key on peering objects: the declaration (on the object's own router) it serves.
pub const PEERING_KEY: &str = "ovn-route:peering";
/// `external_ids` key on peering objects: the partner, as `<router uuid>/<peer name>`.
pub const PARTNER_KEY: &str = "ovn-route:partner";

/// The message of every pending declaration, whatever the reason it is not mutual (the target
/// does not exist, is in another project, or has not declared back yet): one text for all.
pub const PENDING_MESSAGE: &str = "pending (complete the mutual peering on the target network)";

/// Longest peer name accepted.
pub const MAX_PEER_NAME: usize = 63;
/// Longest network or project name accepted in a target.
pub const MAX_TARGET_NAME: usize = 255;

/// The `external_ids` key of the declaration called `name`.
pub fn peer_key(name: &str) -> String {
    format!("{PEER_KEY_PREFIX}{name}")
}

/// Checks a peer name: 1 to 63 characters from `A-Z a-z 0-9 _ -`, starting with a letter or a
/// digit.
pub fn validate_peer_name(name: &str) -> Result<(), ModelError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_PEER_NAME
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ModelError::PeerName(name.to_string()))
    }
}

/// Checks a network, project or integration name used in a target: 1 to 255 characters, no `/`,
/// no whitespace or control characters.
pub fn validate_target_name(what: &'static str, name: &str) -> Result<(), ModelError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TARGET_NAME
        && !name
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ModelError::TargetName {
            what,
            value: name.to_string(),
        })
    }
}

/// Checks a configuration key: only `user.*` keys (with something after the dot) are accepted.
pub fn validate_config_key(key: &str) -> Result<(), ModelError> {
    match key.strip_prefix("user.") {
        Some(rest) if !rest.is_empty() && !key.chars().any(char::is_control) => Ok(()),
        _ => Err(ModelError::ConfigKey(key.to_string())),
    }
}

/// How a peering reaches its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerType {
    /// Another network of the same OVN deployment (router ports joined with `peer`).
    Local,
    /// A network of another deployment through an OVN interconnection (see [`crate::remote`]).
    Remote,
}

impl fmt::Display for PeerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerType::Local => "local",
            PeerType::Remote => "remote",
        })
    }
}

impl std::str::FromStr for PeerType {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        match s {
            "local" => Ok(PeerType::Local),
            "remote" => Ok(PeerType::Remote),
            other => Err(ModelError::PeerType(other.to_string())),
        }
    }
}

/// A peering declaration as stored (compact JSON) under [`peer_key`] on the declaring router.
/// Its name is the key's suffix, not part of the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    /// Local or remote.
    #[serde(rename = "type")]
    pub kind: PeerType,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `user.*` keys only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Project of the target network (local peers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_project: Option<String>,
    /// The target network: a router's name or its short-name label (local peers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_network: Option<String>,
    /// The integration to go through (remote peers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_integration: Option<String>,
}

impl Declaration {
    /// A local declaration aimed at `network` in `project`.
    pub fn local(project: &str, network: &str) -> Declaration {
        Declaration {
            kind: PeerType::Local,
            description: String::new(),
            config: BTreeMap::new(),
            target_project: Some(project.to_string()),
            target_network: Some(network.to_string()),
            target_integration: None,
        }
    }

    /// Checks every field; the error names the offending key or value.
    pub fn validate(&self) -> Result<(), ModelError> {
        for k in self.config.keys() {
            validate_config_key(k)?;
        }
        match self.kind {
            PeerType::Local => {
                if self.target_integration.is_some() {
                    return Err(ModelError::Invalid(
                        "target_integration is only for remote peers".into(),
                    ));
                }
                let p = self
                    .target_project
                    .as_deref()
                    .ok_or_else(|| ModelError::Invalid("target_project is required".into()))?;
                validate_target_name("project", p)?;
                let n = self
                    .target_network
                    .as_deref()
                    .ok_or_else(|| ModelError::Invalid("target_network is required".into()))?;
                validate_target_name("network", n)?;
            }
            PeerType::Remote => {
                if self.target_network.is_some() || self.target_project.is_some() {
                    return Err(ModelError::Invalid(
                        "remote peers name a target_integration, not a target network".into(),
                    ));
                }
                let i = self.target_integration.as_deref().ok_or_else(|| {
                    ModelError::Invalid("target_integration is required for remote peers".into())
                })?;
                validate_target_name("integration", i)?;
            }
        }
        Ok(())
    }

    /// The stored form: compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a declaration always serializes")
    }

    /// Parses and validates a stored value.
    pub fn parse(value: &str) -> Result<Declaration, ModelError> {
        let d: Declaration =
            serde_json::from_str(value).map_err(|e| ModelError::Stored(e.to_string()))?;
        d.validate()?;
        Ok(d)
    }

    /// The local target as (project, network), when this is a local declaration.
    pub fn local_target(&self) -> Option<(&str, &str)> {
        match self.kind {
            PeerType::Local => Some((
                self.target_project.as_deref()?,
                self.target_network.as_deref()?,
            )),
            PeerType::Remote => None,
        }
    }
}

/// The derived state of a declaration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Not mutual (for whatever reason): no OVN objects.
    Pending,
    /// Mutual: the pair of ports and the routes exist (or are being made).
    Created,
    /// Cannot be realised; the reason says why.
    Errored(String),
}

impl Status {
    /// `pending`, `created` or `errored`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Created => "created",
            Status::Errored(_) => "errored",
        }
    }

    /// The human explanation: [`PENDING_MESSAGE`], `created`, or the error's reason.
    pub fn message(&self) -> String {
        match self {
            Status::Pending => PENDING_MESSAGE.to_string(),
            Status::Created => "created".to_string(),
            Status::Errored(r) => format!("errored: {r}"),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A declaration as shown to users (`peer show`, `list --format json|yaml`, `edit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    /// The peer's name on its network.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// `user.*` keys.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// local or remote.
    #[serde(rename = "type", default = "default_type")]
    pub kind: PeerType,
    /// Target project (local).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_project: Option<String>,
    /// Target network (local).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_network: Option<String>,
    /// Target integration (remote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_integration: Option<String>,
    /// pending, created or errored (derived; ignored on input).
    #[serde(default)]
    pub status: String,
    /// The status' explanation (derived; ignored on input).
    #[serde(default)]
    pub status_message: String,
}

fn default_type() -> PeerType {
    PeerType::Local
}

impl PeerView {
    /// The view of declaration `name`, with its status.
    pub fn new(name: &str, d: &Declaration, status: &Status) -> PeerView {
        PeerView {
            name: name.to_string(),
            description: d.description.clone(),
            config: d.config.clone(),
            kind: d.kind,
            target_project: d.target_project.clone(),
            target_network: d.target_network.clone(),
            target_integration: d.target_integration.clone(),
            status: status.as_str().to_string(),
            status_message: status.message(),
        }
    }

    /// The declaration this view describes (status ignored), validated.
    pub fn declaration(&self) -> Result<Declaration, ModelError> {
        let d = Declaration {
            kind: self.kind,
            description: self.description.clone(),
            config: self.config.clone(),
            target_project: self.target_project.clone(),
            target_network: self.target_network.clone(),
            target_integration: self.target_integration.clone(),
        };
        d.validate()?;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_named() {
        validate_peer_name("to-b_1").unwrap();
        for bad in ["", "a b", "-x", "a/b", "a:b", &"x".repeat(64), "é"] {
            let e = validate_peer_name(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        validate_target_name("network", "incus-net1-lr").unwrap();
        let e = validate_target_name("project", "a/b").unwrap_err();
        assert!(e.to_string().contains("\"a/b\""), "{e}");
    }

    #[test]
    fn only_user_config_keys() {
        validate_config_key("user.foo").unwrap();
        for bad in ["foo", "user.", "ipv4.address", "userfoo"] {
            let e = validate_config_key(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        let mut d = Declaration::local("default", "b");
        d.config.insert("bgp.peer".into(), "x".into());
        assert!(d
            .validate()
            .unwrap_err()
            .to_string()
            .contains("\"bgp.peer\""));
    }

    #[test]
    fn stored_form_round_trips_and_is_strict() {
        let mut d = Declaration::local("p2", "net2");
        d.description = "to net2".into();
        d.config.insert("user.a".into(), "1".into());
        let s = d.to_json();
        assert!(!s.contains('\n'));
        assert_eq!(Declaration::parse(&s).unwrap(), d);
        assert!(Declaration::parse(
            r#"{"type":"local","target_project":"a","target_network":"b","x":1}"#
        )
        .is_err());
        assert!(Declaration::parse(r#"{"type":"local","target_project":"a"}"#).is_err());
        let r = Declaration::parse(r#"{"type":"remote","target_integration":"ic1"}"#).unwrap();
        assert_eq!(r.local_target(), None);
    }
}
