//! The local Open_vSwitch database.

use ovsdb::TableSelect;

view! {
    /// `Open_vSwitch`: the single root row (chassis identity in `external_ids`).
    OpenVSwitch = "Open_vSwitch" {
        /// `external_ids`: `system-id`, `hostname`, `ovn-bridge-mappings`, `ovn-remote`, ...
        external_ids: "external_ids" => map,
        /// Bridges.
        bridges: "bridges" => uuids,
    }
}

view! {
    /// `Bridge`.
    Bridge = "Bridge" {
        /// Bridge name.
        name: "name" => str,
        /// Its ports.
        ports: "ports" => uuids,
        /// `external_ids`.
        external_ids: "external_ids" => map,
    }
}

view! {
    /// `Port`.
    Port = "Port" {
        /// Port name.
        name: "name" => str,
        /// Its interfaces.
        interfaces: "interfaces" => uuids,
        /// VLAN tag.
        tag: "tag" => opt_i64,
    }
}

view! {
    /// `Interface`.
    Interface = "Interface" {
        /// Interface name.
        name: "name" => str,
        /// Interface type (`patch`, `internal`, ...).
        iface_type: "type" => str,
        /// OpenFlow port number.
        ofport: "ofport" => opt_i64,
        /// `options` (`peer` of a patch port).
        options: "options" => map,
        /// `external_ids` (`iface-id`, `ovn-installed`).
        external_ids: "external_ids" => map,
        /// The MAC the interface uses (for a bridge's internal interface: the bridge MAC).
        mac_in_use: "mac_in_use" => opt_str,
    }
}

/// The Open_vSwitch tables and columns ovn-route monitors.
pub fn tables() -> Vec<TableSelect> {
    vec![
        OpenVSwitch::select(),
        Bridge::select(),
        Port::select(),
        Interface::select(),
    ]
}
