//! OVN Northbound tables.

use ovsdb::TableSelect;

view! {
    /// `NB_Global`: the single global row.
    NbGlobal = "NB_Global" {
        /// `options` (e.g. `ic-route-adv`).
        options: "options" => map,
        /// `external_ids` (e.g. `neutron:fip-distributed`).
        external_ids: "external_ids" => map,
    }
}

view! {
    /// `Logical_Switch`.
    LogicalSwitch = "Logical_Switch" {
        /// Switch name.
        name: "name" => str,
        /// Its ports.
        ports: "ports" => uuids,
        /// Load balancers applied to it.
        load_balancer: "load_balancer" => uuids,
        /// `other_config` (e.g. `subnet`, `interconn-ts`).
        other_config: "other_config" => map,
        /// `external_ids`.
        external_ids: "external_ids" => map,
    }
}

view! {
    /// `Logical_Switch_Port`.
    LogicalSwitchPort = "Logical_Switch_Port" {
        /// Port name (the OVS `iface-id` of a VIF).
        name: "name" => str,
        /// Port type: empty for a VIF, `router`, `localnet`, `virtual`, `external`, ...
        port_type: "type" => str,
        /// Addresses: `"MAC IP..."`, `router`, `unknown`, `dynamic`.
        addresses: "addresses" => strs,
        /// Addresses assigned by `dynamic`.
        dynamic_addresses: "dynamic_addresses" => opt_str,
        /// `options` (`router-port`, `network_name`, `requested-chassis`, `virtual-ip`, ...).
        options: "options" => map,
        /// `external_ids` (neutron keys when made by Neutron).
        external_ids: "external_ids" => map,
        /// Set by ovn-northd when the port is bound and up.
        up: "up" => opt_bool,
        /// Administrative state (absent: enabled).
        enabled: "enabled" => opt_bool,
        /// Parent port of a nested (container) port.
        parent_name: "parent_name" => opt_str,
        /// VLAN tag of a nested port or a localnet port.
        tag: "tag" => opt_i64,
        /// HA chassis group (for `external` ports).
        ha_chassis_group: "ha_chassis_group" => opt_uuid,
    }
}

view! {
    /// `Logical_Router`.
    LogicalRouter = "Logical_Router" {
        /// Router name.
        name: "name" => str,
        /// Its ports.
        ports: "ports" => uuids,
        /// Its NAT rules.
        nat: "nat" => uuids,
        /// Its load balancers.
        load_balancer: "load_balancer" => uuids,
        /// Its load-balancer groups (each a set of load balancers).
        load_balancer_group: "load_balancer_group" => uuids,
        /// Its static routes.
        static_routes: "static_routes" => uuids,
        /// `options` (`chassis` for a gateway router, `dynamic-routing*`, ...).
        options: "options" => map,
        /// `external_ids`.
        external_ids: "external_ids" => map,
        /// Administrative state (absent: enabled).
        enabled: "enabled" => opt_bool,
    }
}

view! {
    /// `Logical_Router_Port`.
    LogicalRouterPort = "Logical_Router_Port" {
        /// Port name.
        name: "name" => str,
        /// Ethernet address.
        mac: "mac" => str,
        /// Networks, `IP/PREFIX` each.
        networks: "networks" => strs,
        /// Gateway chassis of a distributed gateway port.
        gateway_chassis: "gateway_chassis" => uuids,
        /// HA chassis group of a distributed gateway port.
        ha_chassis_group: "ha_chassis_group" => opt_uuid,
        /// The peer router port, for router-to-router links.
        peer: "peer" => opt_str,
        /// `options` (`dynamic-routing-*`, `redirect-chassis`, ...).
        options: "options" => map,
        /// `external_ids`.
        external_ids: "external_ids" => map,
        /// `status` (OVN 23.09+: `hosting-chassis`); empty on older schemas.
        status: "status" => map,
        /// Administrative state (absent: enabled).
        enabled: "enabled" => opt_bool,
    }
}

view! {
    /// `Logical_Router_Static_Route`.
    StaticRoute = "Logical_Router_Static_Route" {
        /// Destination prefix.
        ip_prefix: "ip_prefix" => str,
        /// Next hop (`discard` for a blackhole).
        nexthop: "nexthop" => str,
        /// Output port name.
        output_port: "output_port" => opt_str,
        /// `dst-ip` or `src-ip`.
        policy: "policy" => opt_str,
        /// Route table name.
        route_table: "route_table" => str,
        /// `options` (`ecmp_symmetric_reply`, `origin`, ...).
        options: "options" => map,
        /// `external_ids` (ovn-route's mark, `ic-learned-route`, ...).
        external_ids: "external_ids" => map,
    }
}

view! {
    /// `NAT`.
    Nat = "NAT" {
        /// `snat`, `dnat` or `dnat_and_snat`.
        nat_type: "type" => str,
        /// External IP.
        external_ip: "external_ip" => str,
        /// External MAC (distributed floating IPs).
        external_mac: "external_mac" => opt_str,
        /// Logical IP or subnet.
        logical_ip: "logical_ip" => str,
        /// Logical port (distributed floating IPs).
        logical_port: "logical_port" => opt_str,
        /// Gateway port it applies to.
        gateway_port: "gateway_port" => opt_uuid,
        /// `options`.
        options: "options" => map,
        /// `external_ids` (`neutron:fip_*`).
        external_ids: "external_ids" => map,
    }
}

view! {
    /// `Load_Balancer`.
    LoadBalancer = "Load_Balancer" {
        /// Name.
        name: "name" => str,
        /// VIPs: `"IP[:PORT]"` -> backends.
        vips: "vips" => map,
        /// `tcp`, `udp` or `sctp`.
        protocol: "protocol" => opt_str,
        /// `options`.
        options: "options" => map,
        /// `external_ids` (`neutron:vip`, `neutron:vip_fip`, ...).
        external_ids: "external_ids" => map,
    }
}

view! {
    /// `Load_Balancer_Group`.
    LoadBalancerGroup = "Load_Balancer_Group" {
        /// Name.
        name: "name" => str,
        /// Its load balancers.
        load_balancer: "load_balancer" => uuids,
    }
}

view! {
    /// `Gateway_Chassis`.
    GatewayChassis = "Gateway_Chassis" {
        /// Name.
        name: "name" => str,
        /// Chassis name.
        chassis_name: "chassis_name" => str,
        /// Priority (higher wins).
        priority: "priority" => opt_i64,
    }
}

view! {
    /// `HA_Chassis_Group`.
    HaChassisGroup = "HA_Chassis_Group" {
        /// Name.
        name: "name" => str,
        /// Members.
        ha_chassis: "ha_chassis" => uuids,
    }
}

view! {
    /// `HA_Chassis`.
    HaChassis = "HA_Chassis" {
        /// Chassis name.
        chassis_name: "chassis_name" => str,
        /// Priority (higher wins).
        priority: "priority" => opt_i64,
    }
}

/// The Northbound tables and columns ovn-route monitors.
pub fn tables() -> Vec<TableSelect> {
    vec![
        NbGlobal::select(),
        LogicalSwitch::select(),
        LogicalSwitchPort::select(),
        LogicalRouter::select(),
        LogicalRouterPort::select(),
        StaticRoute::select(),
        Nat::select(),
        LoadBalancer::select(),
        LoadBalancerGroup::select(),
        GatewayChassis::select(),
        HaChassisGroup::select(),
        HaChassis::select(),
    ]
}
