//! Additions to [`ExposureLab`] for the VRF modes (kernel tier): an IPv6 provider VM, an IPv6
//! BGP session between each chassis and the upstream router (the IPv4 sessions carry only IPv4
//! unicast), the upstream's IPv6 routes, and agent configurations with a VRF.
//!
//! ```text
//!            upstream (AS 65000)
//!   2001:db8:0:N::2/64  (on the same veths as the IPv4 sessions: to-hvN <-> up0)
//!   2001:db8:0:N::1/64
//!        hvN (AS 64999)                                  N = chassis index + 1
//! ```

use std::time::Duration;

use crate::error::{LabError, Result};
use crate::exposure::{ExposureLab, CHASSIS_AS, UPSTREAM_AS};
use crate::util::wait_until;

/// The IPv6 provider VM [`ExposureLab::add_ipv6_provider_vm`] adds on `hv1`: its name.
pub const V6_PROVIDER_VM: &str = "vm-prov6";
/// Its IPv4 address on `public`.
pub const V6_PROVIDER_VM_IPV4: &str = "172.16.0.11";
/// Its IPv6 address on `public` (the provider network 2001:db8:ff::/64 of `lrp-pub`).
pub const V6_PROVIDER_VM_IPV6: &str = "2001:db8:ff::11";

/// How an exposure agent with a VRF hands exposed IPs to FRR (`advertise_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrfAdvertise {
    /// `advertise_method = routes`: routes in the VRF's table (tenant subnets as subnets).
    Routes,
    /// `advertise_method = addresses`: /32 and /128 on `bgp_nic` (tenant IPs as host
    /// prefixes: `advertisement_method_tenant_networks = host`, as `subnet` needs routes).
    Addresses,
}

impl ExposureLab {
    /// Adds VM [`V6_PROVIDER_VM`] (172.16.0.11, 2001:db8:ff::11) to switch `public`, bound to
    /// `hv1`, and waits until it is up.
    pub fn add_ipv6_provider_vm(&self) -> Result<()> {
        self.lab.add_vif_port(
            "public",
            V6_PROVIDER_VM,
            &format!("00:00:00:00:01:11 {V6_PROVIDER_VM_IPV4} {V6_PROVIDER_VM_IPV6}"),
            "hv1",
        )?;
        self.lab
            .wait_lsp_up(V6_PROVIDER_VM, Duration::from_secs(30))
    }

    /// Chassis `i`'s IPv6 address on its link to the upstream router.
    pub fn chassis_ipv6(&self, i: usize) -> String {
        format!("2001:db8:0:{}::1", i + 1)
    }

    /// The upstream router's IPv6 address on its link to chassis `i`.
    pub fn upstream_ipv6(&self, i: usize) -> String {
        format!("2001:db8:0:{}::2", i + 1)
    }

    /// Adds an IPv6 BGP session (IPv6 unicast only) between every chassis and the upstream
    /// router, on the existing links, through `vtysh` (running configuration; the IPv4
    /// sessions are left as they are), and waits until each is Established.
    pub fn add_ipv6_peering(&self, timeout: Duration) -> Result<()> {
        for i in 0..self.bgp.len() {
            let c = self.lab.chassis(i);
            let (mine, theirs) = (self.chassis_ipv6(i), self.upstream_ipv6(i));
            c.netns().ip(&[
                "-6",
                "addr",
                "add",
                &format!("{mine}/64"),
                "dev",
                "up0",
                "nodad",
            ])?;
            self.upstream.netns().ip(&[
                "-6",
                "addr",
                "add",
                &format!("{theirs}/64"),
                "dev",
                &format!("to-{}", c.name()),
                "nodad",
            ])?;
            let cmds = ipv6_neighbor_commands(CHASSIS_AS, &theirs, UPSTREAM_AS);
            self.bgp[i]
                .frr
                .vtysh(&cmds.iter().map(String::as_str).collect::<Vec<_>>())?;
            let cmds = ipv6_neighbor_commands(UPSTREAM_AS, &mine, CHASSIS_AS);
            self.upstream
                .vtysh(&cmds.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        for i in 0..self.bgp.len() {
            let peer = self.chassis_ipv6(i);
            wait_until(
                &format!("IPv6 BGP session of upstream with {peer} to be Established"),
                timeout,
                |last| {
                    let out = self.upstream.vtysh(&["show bgp summary json"])?;
                    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| {
                        LabError::Invalid(format!("bad JSON from vtysh ({e}): {out}"))
                    })?;
                    let state = v["ipv6Unicast"]["peers"][&peer]["state"]
                        .as_str()
                        .unwrap_or("unknown")
                        .to_string();
                    *last = format!("state {state}");
                    Ok((state == "Established").then_some(()))
                },
            )?;
        }
        Ok(())
    }

    /// The agent configuration for chassis `i` with `vrf_mode = create` (VRF `bgp-vrf`, table
    /// 10, dummy `bgp-nic`) and `advertise`, plus `extra_ovn_route` lines in `[ovn_route]`
    /// (built on [`ExposureLab::agent_config`]: the later settings override its
    /// `vrf_mode = none`).
    pub fn agent_config_vrf(
        &self,
        i: usize,
        advertise: VrfAdvertise,
        extra_ovn_route: &str,
    ) -> String {
        let (default, method) = match advertise {
            VrfAdvertise::Routes => ("", "routes"),
            VrfAdvertise::Addresses => {
                ("advertisement_method_tenant_networks = host\n", "addresses")
            }
        };
        let ovn_route =
            format!("vrf_mode = create\nadvertise_method = {method}\n{extra_ovn_route}");
        self.agent_config(i, default, &ovn_route)
    }

    /// The upstream BGP IPv6 unicast routes: (prefix, next hop of the best path), from
    /// `show bgp ipv6 unicast json`.
    pub fn upstream_bgp6_routes(&self) -> Result<Vec<(String, String)>> {
        self.upstream_best_paths("show bgp ipv6 unicast json")
    }

    /// The upstream router's IPv6 BGP table as text (`show bgp ipv6 unicast`).
    pub fn upstream_bgp6_table(&self) -> Result<String> {
        self.upstream.vtysh(&["show bgp ipv6 unicast"])
    }

    /// Waits until the upstream router's best IPv6 path to `prefix` (e.g. "fd00::/64") has chassis
    /// `i` as next hop and its kernel routes it through the link to chassis `i` (FRR may install
    /// the peer's link-local address as the gateway, so the device is what is checked there).
    pub fn wait_upstream6_via(&self, prefix: &str, i: usize, timeout: Duration) -> Result<()> {
        let want_nh = self.chassis_ipv6(i);
        let dev = format!("dev to-{} ", self.lab.chassis(i).name());
        wait_until(
            &format!(
                "upstream IPv6 route to {prefix} via {}",
                self.lab.chassis(i).name()
            ),
            timeout,
            |last| {
                let bgp = self.upstream_bgp6_routes()?;
                let nh = bgp.iter().find(|(p, _)| p == prefix).map(|(_, nh)| nh);
                let k = self.upstream.netns().ip(&["-6", "route", "show", prefix])?;
                *last = format!("BGP best next hop {nh:?}; `ip -6 route show {prefix}`: {k:?}");
                Ok(
                    (nh == Some(&want_nh) && k.contains(&dev) && k.contains("proto bgp"))
                        .then_some(()),
                )
            },
        )
    }
}

/// The `vtysh` commands adding IPv6 neighbour `peer` (AS `remote_as`) to `router bgp asn`, active
/// in IPv6 unicast only.
fn ipv6_neighbor_commands(asn: u32, peer: &str, remote_as: u32) -> Vec<String> {
    [
        "configure terminal".to_string(),
        format!("router bgp {asn}"),
        format!("neighbor {peer} remote-as {remote_as}"),
        format!("neighbor {peer} timers 3 9"),
        format!("neighbor {peer} timers connect 1"),
        "address-family ipv4 unicast".into(),
        format!("no neighbor {peer} activate"),
        "exit-address-family".into(),
        "address-family ipv6 unicast".into(),
        format!("neighbor {peer} activate"),
        "exit-address-family".into(),
        "end".into(),
    ]
    .to_vec()
}
