//! The pure planning core of ovn-route: (OVN snapshot, chassis identity, config) -> desired state.
//!
//! Nothing here does I/O: functions take replicas (see [`ovsdb::Replica`] through [`ovn_model`]) and
//! return values, so every rule is tested with fixtures, fast and without daemons. Reconcilers in other
//! crates compare the desired state with what they observe and apply only the difference.
//!
//! * [`ChassisIdentity`]: who this chassis is (from the local Open_vSwitch database);
//! * [`exposure`]: what it exposes through BGP, where the traffic enters OVN, and why.

pub mod dynamic;
pub mod exposure;
pub mod host_routes;

use ovn_model::vswitch::OpenVSwitch;
use ovsdb::Replica;

/// Who this chassis is, from the local Open_vSwitch database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChassisIdentity {
    /// Chassis name (`external_ids:system-id`), as in SB `Chassis.name`.
    pub system_id: String,
    /// Host name (`external_ids:hostname`), if set.
    pub hostname: Option<String>,
    /// Provider networks this chassis reaches: (network name, bridge) from `ovn-bridge-mappings`.
    pub bridge_mappings: Vec<(String, String)>,
}

/// Why the identity could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The Open_vSwitch table has no row (ovs-vswitchd never initialised the database).
    #[error("the Open_vSwitch database has no Open_vSwitch row")]
    NoRoot,
    /// `external_ids:system-id` is missing or empty.
    #[error("Open_vSwitch external_ids:system-id is not set; ovn-controller needs it too")]
    NoSystemId,
    /// An `ovn-bridge-mappings` entry is not `network:bridge`.
    #[error("Open_vSwitch external_ids:ovn-bridge-mappings entry {0:?} is not NETWORK:BRIDGE")]
    BadMapping(String),
}

impl ChassisIdentity {
    /// Reads the identity from a replica of the local Open_vSwitch database.
    pub fn from_ovs(ovs: &Replica) -> Result<Self, IdentityError> {
        let root = OpenVSwitch::all(ovs).next().ok_or(IdentityError::NoRoot)?;
        let ids = root.external_ids();
        let system_id = ids
            .get("system-id")
            .filter(|s| !s.is_empty())
            .ok_or(IdentityError::NoSystemId)?;
        let mut bridge_mappings = vec![];
        for m in ids
            .get("ovn-bridge-mappings")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            match m.split_once(':') {
                Some((n, b)) if !n.is_empty() && !b.is_empty() => {
                    bridge_mappings.push((n.to_string(), b.to_string()))
                }
                _ => return Err(IdentityError::BadMapping(m.to_string())),
            }
        }
        Ok(ChassisIdentity {
            system_id: system_id.to_string(),
            hostname: ids.get("hostname").map(str::to_string),
            bridge_mappings,
        })
    }

    /// The bridge for a provider network, if this chassis maps it.
    pub fn bridge_for(&self, network: &str) -> Option<&str> {
        self.bridge_mappings
            .iter()
            .find(|(n, _)| n == network)
            .map(|(_, b)| b.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ovsdb::DatabaseSchema;
    use serde_json::json;

    fn ovs(external_ids: serde_json::Value) -> Replica {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../tests/vswitch-min.ovsschema")).unwrap();
        let schema = DatabaseSchema::from_json(&schema).unwrap();
        let mut r = Replica::for_schema(&schema, None);
        r.apply_json_updates2(&json!({"Open_vSwitch": {
            "11111111-1111-1111-1111-111111111111": {"insert": {"external_ids": external_ids}}}}))
            .unwrap();
        r
    }

    #[test]
    fn reads_identity() {
        let r = ovs(json!([
            "map",
            [
                ["system-id", "hv1"],
                ["hostname", "h1"],
                ["ovn-bridge-mappings", "physnet1:br-ex, physnet2:br-vlan"]
            ]
        ]));
        let id = ChassisIdentity::from_ovs(&r).unwrap();
        assert_eq!(id.system_id, "hv1");
        assert_eq!(id.bridge_for("physnet2"), Some("br-vlan"));
    }

    #[test]
    fn errors_name_the_value() {
        let r = ovs(json!(["map", [["hostname", "h1"]]]));
        assert_eq!(
            ChassisIdentity::from_ovs(&r),
            Err(IdentityError::NoSystemId)
        );
        let r = ovs(json!([
            "map",
            [["system-id", "hv1"], ["ovn-bridge-mappings", "physnet1"]]
        ]));
        let e = ChassisIdentity::from_ovs(&r).unwrap_err();
        assert!(e.to_string().contains("\"physnet1\""), "{e}");
    }
}
