//! L3 EVPN (type-5) lab helpers (kernel tier: VRF, bridge and VXLAN devices): the devices of an
//! L3 VNI made by hand (FRR's recipe, as an upstream router or an operator would), the
//! operator's EVPN peering in a default BGP instance, and what a router learned.

use crate::frr::FrrRouter;
use crate::netns::Netns;
use crate::Result;

/// Makes, in `ns`, the VRF `vrf` (table `table`), the bridge `br-<vni>` in it and the VXLAN
/// device `vxlan-<vni>` (local `local`, port 4789, nolearning) in the bridge, all up.
pub fn make_l3vni(ns: &Netns, vrf: &str, table: u32, vni: u32, local: &str) -> Result<()> {
    let (br, vx) = (format!("br-{vni}"), format!("vxlan-{vni}"));
    let t = table.to_string();
    let id = vni.to_string();
    for args in [
        vec!["link", "add", vrf, "type", "vrf", "table", &t],
        vec!["link", "set", vrf, "up"],
        vec!["link", "add", &br, "type", "bridge"],
        vec!["link", "set", &br, "master", vrf, "addrgenmode", "none"],
        vec!["link", "set", &br, "up"],
        vec![
            "link",
            "add",
            &vx,
            "type",
            "vxlan",
            "id",
            &id,
            "local",
            local,
            "dstport",
            "4789",
            "nolearning",
        ],
        vec!["link", "set", &vx, "master", &br, "addrgenmode", "none"],
        vec!["link", "set", &vx, "up"],
    ] {
        ns.ip(&args)?;
    }
    Ok(())
}

/// The operator's EVPN part of a default instance `router bgp ASN`: the underlay neighbor
/// `peer` (AS `remote_as`) activated for `l2vpn evpn`, and `advertise-all-vni`.
pub fn default_instance_evpn(
    frr: &FrrRouter,
    asn: u32,
    peer: &str,
    remote_as: u32,
) -> Result<String> {
    let header = format!("router bgp {asn}");
    let nb = format!("neighbor {peer} remote-as {remote_as}");
    let act = format!("neighbor {peer} activate");
    frr.vtysh(&[
        "configure terminal",
        &header,
        &nb,
        "address-family l2vpn evpn",
        &act,
        "advertise-all-vni",
        "exit-address-family",
        "exit",
        "end",
    ])
}

/// An upstream router's VRF for the L3 VNI: `vrf VRF / vni N`, and the instance `router bgp ASN
/// vrf VRF` that advertises its unicast routes as type-5 and imports the route target
/// `import_rt` (e.g. the chassis' auto-derived `ASN:VNI`, which differs from ours over eBGP).
pub fn upstream_vrf_evpn(
    frr: &FrrRouter,
    asn: u32,
    vrf: &str,
    vni: u32,
    import_rt: &str,
) -> Result<String> {
    let header = format!("router bgp {asn} vrf {vrf}");
    let rt = format!("route-target import {import_rt}");
    let v = format!("vrf {vrf}");
    let n = format!("vni {vni}");
    frr.vtysh(&[
        "configure terminal",
        &header,
        "no bgp ebgp-requires-policy",
        "address-family l2vpn evpn",
        "advertise ipv4 unicast",
        &rt,
        "exit-address-family",
        "exit",
        &v,
        &n,
        "exit-vrf",
        "end",
    ])
}

/// `show bgp l2vpn evpn route type prefix` of `frr`.
pub fn prefix_routes(frr: &FrrRouter) -> Result<String> {
    frr.vtysh(&["show bgp l2vpn evpn route type prefix"])
}

/// `ip -d link show` of `ns`, for diagnostics and device checks (empty on error).
pub fn links(ns: &Netns) -> String {
    ns.ip(&["-d", "link", "show"]).unwrap_or_default()
}
