//! What ovn-route wants from FRR, and the `vtysh` command lines that install or remove it.
//!
//! # The block ovn-route owns
//!
//! With a VRF (`vrf: Some("bgp-vrf")`, the Python agent's model):
//!
//! - the whole BGP instance `router bgp ASN vrf bgp-vrf`: its router id and, per address family,
//!   `redistribute connected` ([`ExposeMode::AddressesConnected`]: exposed IPs are addresses on the
//!   VRF's `bgp-nic`) or `redistribute kernel` ([`ExposeMode::RoutesKernel`]: exposed IPs are
//!   routes in the VRF's table marked with ovn-route's protocol number);
//! - in the operator's default instance `router bgp ASN`, only the lines
//!   `address-family ipv4|ipv6 unicast / import vrf bgp-vrf`.
//!
//! FRR 8.4's bgpd cannot match a kernel route's protocol number in a route-map, so
//! `redistribute kernel` cannot tell ovn-route's routes from others by their mark. It does not need
//! to: zebra files kernel routes by table, and the VRF's table holds only what ovn-route put there
//! (the VRF is ovn-route's). Zebra ignores routes whose protocol is one of FRR's own (see
//! [`is_frr_route_protocol`]), so ovn-route's protocol number must not be one of those.
//!
//! Without a VRF (`vrf: None`, for hosts without VRF support): exposed IPs are routes in table
//! `table_id` (not the main table). ovn-route owns the zebra line `ip import-table N` (zebra copies
//! the table into the default RIB as "table" routes) and, in the default instance, the line
//! `address-family ipv4 unicast / redistribute table N`. FRR 8.4 has neither `ipv6 import-table`
//! nor an IPv6 `redistribute table`, so this mode is IPv4 only; exposing addresses on a device
//! (`redistribute connected`) without a VRF would advertise every connected network of the host
//! and is left to the operator's own policy.

use std::net::Ipv4Addr;

use crate::error::{FrrError, Result};

/// True if zebra treats kernel routes with this protocol number as FRR's own and ignores them
/// (11 zebra, 42 babel, 186 to 198: bgp, isis, ospf, rip, ripng, nhrp, eigrp, ldp, sharp, pbr,
/// static, openfabric, srte). ovn-route's route protocol must not be one of these, or FRR would
/// never see, let alone redistribute, its routes.
pub fn is_frr_route_protocol(protocol: u8) -> bool {
    matches!(protocol, 11 | 42 | 186..=198)
}

/// Largest table FRR 8.4's `ip import-table` accepts.
pub const MAX_IMPORT_TABLE: u32 = 252;

/// Which address families ovn-route exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressFamilies {
    /// IPv4 unicast.
    pub ipv4: bool,
    /// IPv6 unicast.
    pub ipv6: bool,
}

impl AddressFamilies {
    /// Both IPv4 and IPv6.
    pub const BOTH: AddressFamilies = AddressFamilies {
        ipv4: true,
        ipv6: true,
    };
    /// IPv4 only.
    pub const IPV4: AddressFamilies = AddressFamilies {
        ipv4: true,
        ipv6: false,
    };
}

/// How exposed IPs reach FRR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExposeMode {
    /// Addresses on the dummy `bgp-nic` in the VRF: `redistribute connected`.
    AddressesConnected,
    /// Routes in the VRF's (or, without a VRF, the exposure) table with ovn-route's protocol
    /// number: `redistribute kernel` in the VRF, `ip import-table` + `redistribute table` without.
    RoutesKernel,
}

/// What ovn-route wants configured in FRR (from the agent's config: `bgp_AS`, `bgp_router_id`,
/// `bgp_vrf`, `bgp_vrf_table_id`, the exposure mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrrIntent {
    /// The AS of the operator's default BGP instance (`bgp_AS`), also used for the VRF instance.
    pub asn: u32,
    /// Router id of the VRF instance (`bgp_router_id`); `None`: [`crate::Vtysh::apply`] reads the
    /// default instance's from FRR, and without one FRR picks its own.
    pub router_id: Option<Ipv4Addr>,
    /// The VRF holding the exposed IPs (`bgp_vrf`, e.g. "bgp-vrf"); `None`: no VRF (IPv4 routes in
    /// `table_id`, imported into the default instance).
    pub vrf: Option<String>,
    /// The routing table of the VRF (`bgp_vrf_table_id`), or the exposure table without a VRF.
    pub table_id: u32,
    /// Address families to expose.
    pub families: AddressFamilies,
    /// How exposed IPs reach FRR.
    pub mode: ExposeMode,
}

impl FrrIntent {
    /// Checks that FRR 8.4 can express the intent; the error names the field and the value.
    pub fn validate(&self) -> Result<()> {
        let bad = |s: String| Err(FrrError::InvalidIntent(s));
        if self.asn == 0 {
            return bad("bgp_AS 0 is not a valid AS number".into());
        }
        if !self.families.ipv4 && !self.families.ipv6 {
            return bad("no address family selected (ipv4 and ipv6 both off)".into());
        }
        if matches!(self.table_id, 0 | 253..=255) {
            return bad(format!(
                "table {} is reserved (0 unspec, 253 default, 254 main, 255 local)",
                self.table_id
            ));
        }
        match &self.vrf {
            Some(vrf) => {
                if vrf.is_empty()
                    || vrf.len() > 15
                    || vrf == "default"
                    || !vrf
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    return bad(format!(
                        "VRF name {vrf:?} must be 1 to 15 characters of [A-Za-z0-9._-] and not \"default\""
                    ));
                }
            }
            None => {
                if self.mode == ExposeMode::AddressesConnected {
                    return bad(
                        "exposing addresses (redistribute connected) needs a VRF; without \
                                a VRF use the routes mode (ip import-table)"
                            .into(),
                    );
                }
                if self.families.ipv6 {
                    return bad(
                        "IPv6 without a VRF needs `ipv6 import-table`, which FRR 8.4 lacks; \
                                use a VRF or IPv4 only"
                            .into(),
                    );
                }
                if self.table_id > MAX_IMPORT_TABLE {
                    return bad(format!(
                        "table {} is above {MAX_IMPORT_TABLE}, the largest FRR's `ip import-table` accepts",
                        self.table_id
                    ));
                }
            }
        }
        Ok(())
    }
}

fn families(v4: bool, v6: bool) -> impl Iterator<Item = (&'static str, bool)> {
    [("ipv4", v4), ("ipv6", v6)].into_iter()
}

/// The `vtysh -c` command lines that install ovn-route's block (see the module documentation),
/// from `configure terminal` to `end`. Pure. Every line is idempotent in FRR 8.4: applying them
/// twice leaves the running configuration as after once. Lines for families or modes not wanted
/// are rendered in their `no` form (inside the block only), so a changed intent converges. Call
/// [`FrrIntent::validate`] first: an invalid intent renders as asked (FRR will reject it).
pub fn render(intent: &FrrIntent) -> Vec<String> {
    let asn = intent.asn;
    let mut c = vec!["configure terminal".to_string()];
    match &intent.vrf {
        Some(vrf) => {
            c.push(format!("router bgp {asn} vrf {vrf}"));
            if let Some(id) = intent.router_id {
                c.push(format!("bgp router-id {id}"));
            }
            let (want, other) = match intent.mode {
                ExposeMode::AddressesConnected => ("connected", "kernel"),
                ExposeMode::RoutesKernel => ("kernel", "connected"),
            };
            for (af, on) in families(intent.families.ipv4, intent.families.ipv6) {
                c.push(format!("address-family {af} unicast"));
                if on {
                    c.push(format!("redistribute {want}"));
                } else {
                    c.push(format!("no redistribute {want}"));
                }
                c.push(format!("no redistribute {other}"));
                c.push("exit-address-family".into());
            }
            c.push("exit".into());
            c.push(format!("router bgp {asn}"));
            for (af, on) in families(intent.families.ipv4, intent.families.ipv6) {
                c.push(format!("address-family {af} unicast"));
                c.push(format!("{}import vrf {vrf}", if on { "" } else { "no " }));
                c.push("exit-address-family".into());
            }
            c.push("exit".into());
        }
        None => {
            let t = intent.table_id;
            c.push(format!("ip import-table {t}"));
            c.push(format!("router bgp {asn}"));
            c.push("address-family ipv4 unicast".into());
            c.push(format!("redistribute table {t}"));
            c.push("exit-address-family".into());
            c.push("exit".into());
        }
    }
    c.push("end".into());
    c
}

/// The `vtysh -c` command lines that remove ovn-route's block (for `delete_vrf_on_disconnect` or
/// a changed VRF/table): the `import vrf` lines (both families) and the VRF's BGP instance, or the
/// `redistribute table` and `ip import-table` lines. Pure and idempotent (FRR 8.4 accepts these
/// `no` forms when the line is already absent). Nothing else is touched.
pub fn unrender(intent: &FrrIntent) -> Vec<String> {
    let asn = intent.asn;
    let mut c = vec!["configure terminal".to_string()];
    match &intent.vrf {
        Some(vrf) => {
            c.push(format!("router bgp {asn}"));
            for (af, _) in families(true, true) {
                c.push(format!("address-family {af} unicast"));
                c.push(format!("no import vrf {vrf}"));
                c.push("exit-address-family".into());
            }
            c.push("exit".into());
            c.push(format!("no router bgp {asn} vrf {vrf}"));
        }
        None => {
            let t = intent.table_id;
            c.push(format!("router bgp {asn}"));
            c.push("address-family ipv4 unicast".into());
            c.push(format!("no redistribute table {t}"));
            c.push("exit-address-family".into());
            c.push("exit".into());
            c.push(format!("no ip import-table {t}"));
        }
    }
    c.push("end".into());
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vrf_intent(mode: ExposeMode, families: AddressFamilies) -> FrrIntent {
        FrrIntent {
            asn: 64999,
            router_id: Some(Ipv4Addr::new(172, 24, 4, 1)),
            vrf: Some("bgp-vrf".into()),
            table_id: 10,
            families,
            mode,
        }
    }

    #[test]
    fn vrf_connected_both_families() {
        let i = vrf_intent(ExposeMode::AddressesConnected, AddressFamilies::BOTH);
        i.validate().unwrap();
        assert_eq!(
            render(&i),
            [
                "configure terminal",
                "router bgp 64999 vrf bgp-vrf",
                "bgp router-id 172.24.4.1",
                "address-family ipv4 unicast",
                "redistribute connected",
                "no redistribute kernel",
                "exit-address-family",
                "address-family ipv6 unicast",
                "redistribute connected",
                "no redistribute kernel",
                "exit-address-family",
                "exit",
                "router bgp 64999",
                "address-family ipv4 unicast",
                "import vrf bgp-vrf",
                "exit-address-family",
                "address-family ipv6 unicast",
                "import vrf bgp-vrf",
                "exit-address-family",
                "exit",
                "end",
            ]
        );
    }

    #[test]
    fn vrf_kernel_ipv4_only_without_router_id() {
        let mut i = vrf_intent(ExposeMode::RoutesKernel, AddressFamilies::IPV4);
        i.router_id = None;
        i.validate().unwrap();
        assert_eq!(
            render(&i),
            [
                "configure terminal",
                "router bgp 64999 vrf bgp-vrf",
                "address-family ipv4 unicast",
                "redistribute kernel",
                "no redistribute connected",
                "exit-address-family",
                "address-family ipv6 unicast",
                "no redistribute kernel",
                "no redistribute connected",
                "exit-address-family",
                "exit",
                "router bgp 64999",
                "address-family ipv4 unicast",
                "import vrf bgp-vrf",
                "exit-address-family",
                "address-family ipv6 unicast",
                "no import vrf bgp-vrf",
                "exit-address-family",
                "exit",
                "end",
            ]
        );
    }

    #[test]
    fn no_vrf_table_import() {
        let i = FrrIntent {
            asn: 65001,
            router_id: None,
            vrf: None,
            table_id: 10,
            families: AddressFamilies::IPV4,
            mode: ExposeMode::RoutesKernel,
        };
        i.validate().unwrap();
        assert_eq!(
            render(&i),
            [
                "configure terminal",
                "ip import-table 10",
                "router bgp 65001",
                "address-family ipv4 unicast",
                "redistribute table 10",
                "exit-address-family",
                "exit",
                "end",
            ]
        );
        assert_eq!(
            unrender(&i),
            [
                "configure terminal",
                "router bgp 65001",
                "address-family ipv4 unicast",
                "no redistribute table 10",
                "exit-address-family",
                "exit",
                "no ip import-table 10",
                "end",
            ]
        );
    }

    #[test]
    fn unrender_vrf_removes_both_families_and_the_instance() {
        let i = vrf_intent(ExposeMode::RoutesKernel, AddressFamilies::IPV4);
        assert_eq!(
            unrender(&i),
            [
                "configure terminal",
                "router bgp 64999",
                "address-family ipv4 unicast",
                "no import vrf bgp-vrf",
                "exit-address-family",
                "address-family ipv6 unicast",
                "no import vrf bgp-vrf",
                "exit-address-family",
                "exit",
                "no router bgp 64999 vrf bgp-vrf",
                "end",
            ]
        );
    }

    #[test]
    fn frr_protocols() {
        assert!(is_frr_route_protocol(186) && is_frr_route_protocol(198));
        assert!(!is_frr_route_protocol(150) && !is_frr_route_protocol(4));
    }

    #[test]
    fn validation_names_the_problem() {
        let mut i = vrf_intent(ExposeMode::RoutesKernel, AddressFamilies::BOTH);
        i.vrf = None;
        let e = i.validate().unwrap_err().to_string();
        assert!(e.contains("IPv6"), "{e}");
        i.families = AddressFamilies::IPV4;
        i.table_id = 300;
        assert!(i.validate().unwrap_err().to_string().contains("300"));
        i.table_id = 254;
        assert!(i.validate().unwrap_err().to_string().contains("254"));
        i.table_id = 10;
        i.mode = ExposeMode::AddressesConnected;
        assert!(i
            .validate()
            .unwrap_err()
            .to_string()
            .contains("needs a VRF"));
        let mut j = vrf_intent(ExposeMode::RoutesKernel, AddressFamilies::BOTH);
        j.vrf = Some("bad name".into());
        assert!(j.validate().unwrap_err().to_string().contains("bad name"));
        j.vrf = Some("bgp-vrf".into());
        j.table_id = 1000;
        j.validate().unwrap();
        j.asn = 0;
        assert!(j.validate().is_err());
    }
}
