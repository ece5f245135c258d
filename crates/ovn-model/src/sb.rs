//! OVN Southbound tables.

use ovsdb::TableSelect;

view! {
    /// `Chassis`.
    Chassis = "Chassis" {
        /// Chassis name (the OVS `system-id`).
        name: "name" => str,
        /// Host name.
        hostname: "hostname" => str,
        /// `other_config` (bridge mappings, ...).
        other_config: "other_config" => map,
        /// `external_ids`.
        external_ids: "external_ids" => map,
    }
}

view! {
    /// `Port_Binding`: where each logical port is bound.
    PortBinding = "Port_Binding" {
        /// Logical port name (`cr-<lrp>` for a chassis-redirect port).
        logical_port: "logical_port" => str,
        /// Binding type.
        port_type: "type" => str,
        /// The chassis the port is bound to.
        chassis: "chassis" => opt_uuid,
        /// The datapath.
        datapath: "datapath" => opt_uuid,
        /// MAC and IP addresses.
        mac: "mac" => strs,
        /// `options`.
        options: "options" => map,
        /// Set by ovn-controller once the port is up.
        up: "up" => opt_bool,
        /// Tunnel key within the datapath.
        tunnel_key: "tunnel_key" => opt_i64,
    }
}

view! {
    /// `Datapath_Binding`.
    DatapathBinding = "Datapath_Binding" {
        /// Tunnel key (the default dynamic-routing table id).
        tunnel_key: "tunnel_key" => opt_i64,
        /// `external_ids` (`logical-router`, `logical-switch`, `name`).
        external_ids: "external_ids" => map,
    }
}

view! {
    /// `Advertised_Route` (OVN 25.03+; its presence means OVN does dynamic routing natively).
    AdvertisedRoute = "Advertised_Route" {
        /// Datapath.
        datapath: "datapath" => opt_uuid,
        /// Prefix.
        ip_prefix: "ip_prefix" => str,
    }
}

/// The Southbound tables and columns ovn-route monitors.
pub fn tables() -> Vec<TableSelect> {
    vec![
        Chassis::select(),
        PortBinding::select(),
        DatapathBinding::select(),
        AdvertisedRoute::select(),
    ]
}
