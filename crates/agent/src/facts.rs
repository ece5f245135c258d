//! Facts read from the local Open_vSwitch database: the chassis identity, the provider bridges'
//! OVN patch ports and MACs, and the OVN database remotes ovn-controller uses.

use std::collections::{BTreeMap, BTreeSet};

use ovn_model::vswitch::{Bridge, Interface, OpenVSwitch, Port};
use ovsdb::Replica;

use crate::host::{parse_mac, BridgeFacts};

/// The OVN remotes configured for ovn-controller in `Open_vSwitch.external_ids`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OvsRemotes {
    /// `ovn-nb-remote` (set by some deployments for the NB agent).
    pub nb: Option<String>,
    /// `ovn-remote` (the SB, as ovn-controller uses it).
    pub sb: Option<String>,
}

/// Reads `ovn-nb-remote` and `ovn-remote`.
pub fn ovs_remotes(ovs: &Replica) -> OvsRemotes {
    let Some(root) = OpenVSwitch::all(ovs).next() else {
        return OvsRemotes::default();
    };
    let ids = root.external_ids();
    let get = |k: &str| {
        ids.get(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    OvsRemotes {
        nb: get("ovn-nb-remote"),
        sb: get("ovn-remote"),
    }
}

/// Per mapped bridge (by name): OVN's patch ports on it and the bridge MAC as OVS reports it
/// (`mac_in_use` of the bridge's internal interface). `table` is left 0 for the caller.
pub fn bridge_facts(ovs: &Replica, bridges: &[String]) -> BTreeMap<String, BridgeFacts> {
    let mut out = BTreeMap::new();
    for name in bridges {
        let mut f = BridgeFacts::default();
        if let Some(br) = Bridge::all(ovs).find(|b| b.name() == name) {
            let mut patches = BTreeSet::new();
            for p in br.ports() {
                let Some(port) = Port::get(ovs, &p) else {
                    continue;
                };
                for i in port.interfaces() {
                    let Some(iface) = Interface::get(ovs, &i) else {
                        continue;
                    };
                    if iface.iface_type() == "patch"
                        && (iface.external_ids().get("ovn-localnet-port").is_some()
                            || iface.name().starts_with("patch-"))
                    {
                        // Flows name ports by number: OpenFlow cuts names to 15 characters.
                        if let Some(n) = iface.ofport().and_then(|n| u16::try_from(n).ok()) {
                            if n > 0 && n < 0xff00 {
                                patches.insert(n);
                            }
                        }
                    }
                    if iface.name() == name.as_str() {
                        f.mac = iface.mac_in_use().and_then(parse_mac);
                    }
                }
            }
            f.patch_ports = patches;
            f.in_ovs = true;
        }
        out.insert(name.clone(), f);
    }
    out
}
