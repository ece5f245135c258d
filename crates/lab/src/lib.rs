//! Lab harness for ovn-route: starts real Debian OVN, OVS and FRR daemons for integration tests
//! and demos, each scenario in its own temporary directory (`/tmp/ovnr-<pid>-...`) and network
//! namespaces (`ovnr-<pid>-<n>-<label>`), and tears everything down on drop — on success,
//! failure or panic.
//!
//! Everything is synchronous ([`std::process::Command`]); every daemon runs in the foreground as
//! a child of the test process, so it can be stopped (SIGTERM, then SIGKILL) and reaped
//! reliably. All one-shot commands have a timeout, and errors ([`LabError`]) name the command,
//! its exit status and its standard error, or the daemon and the tail of its log.
//!
//! The pieces:
//! - [`OvsdbServer`]: a standalone ovsdb-server (`punix:`, optional `ptcp:`/`pssl:` on ports
//!   the kernel chooses, read from its log), with kill/restart on the same ports.
//! - [`OvsdbCluster`]: an N-member raft cluster with leader discovery and member kill/restart
//!   (raft ports from [`free_port`], which reserves them against concurrent test processes).
//! - [`Lab`]: NB + SB (standalone or clustered), ovn-northd and [`Chassis`] (ovsdb-server +
//!   `ovs-vswitchd --enable-dummy=system` + ovn-controller in a namespace), optionally joined by
//!   the [`Wire`] so tunnels and BFD work; plus topology helpers over `ovn-nbctl` and waits on
//!   port bindings.
//! - [`Pki`]: a CA with server and client certificates and an unrelated second CA.
//! - [`FrrRouter`]: zebra + bgpd in a namespace, [`Netns`] and veth pairs ([`connect`]).
//! - [`cleanup_stale`]: removes namespaces, processes and directories of labs whose process died.
//!
//! Root is required; tests should start with [`skip_unless_root`].
//!
//! ```no_run
//! use std::time::Duration;
//! use ovn_route_lab::{ChassisSpec, Lab, Nat};
//!
//! # fn main() -> Result<(), ovn_route_lab::LabError> {
//! if ovn_route_lab::skip_unless_root("example") {
//!     return Ok(());
//! }
//! let lab = Lab::builder()
//!     .chassis(ChassisSpec::new("hv1").bridge_mapping("physnet1", "br-ex"))
//!     .chassis(ChassisSpec::new("hv2").bridge_mapping("physnet1", "br-ex"))
//!     .wire(true) // real tunnels + BFD between the chassis
//!     .start()?;
//!
//! lab.lr_add("lr0")?;
//! lab.ls_add("sw0")?;
//! lab.connect_router("lr0", "lrp-sw0", "00:00:00:00:ff:01", &["10.0.0.1/24"], "sw0")?;
//! lab.add_vif_port("sw0", "vm1", "00:00:00:00:00:01 10.0.0.2", "hv1")?;
//! lab.wait_lsp_up("vm1", Duration::from_secs(20))?;
//!
//! lab.ls_add("public")?;
//! lab.lsp_add_localnet("public", "ln-public", "physnet1")?;
//! lab.connect_router("lr0", "lrp-pub", "00:00:00:00:ff:02", &["172.16.0.1/24"], "public")?;
//! lab.lrp_set_gateway_chassis("lrp-pub", "hv1", 20)?;
//! lab.lrp_set_gateway_chassis("lrp-pub", "hv2", 10)?;
//! lab.lr_nat_add("lr0", &Nat::snat("172.16.0.1", "10.0.0.0/24"))?;
//! lab.wait_port_bound("cr-lrp-pub", "hv1", Duration::from_secs(20))?;
//!
//! // Fail over by priority.
//! lab.lrp_set_gateway_chassis("lrp-pub", "hv2", 30)?;
//! lab.wait_port_bound("cr-lrp-pub", "hv2", Duration::from_secs(20))?;
//!
//! println!("{}", lab.chassis(0).ofctl_dump_flows("br-int")?);
//! println!("{}", lab.sbctl(&["show"])?);
//! # Ok(())
//! # }
//! // Dropping `lab` stops every daemon and deletes the namespaces and the directory.
//! ```

#![warn(missing_docs)]

mod chassis;
mod cleanup;
pub mod dynamic;
mod error;
pub mod evpn;
mod exposure;
pub mod exposure_vrf;
mod frr;
pub mod incus;
pub mod interconnect;
mod lab;
mod netns;
mod ovsdb;
pub mod peering;
mod pki;
mod process;
mod util;
mod wire;

pub use chassis::{Chassis, ChassisSpec};
pub use cleanup::{cleanup_stale, CleanupReport};
pub use error::{LabError, Result};
pub use exposure::{demo_topology, AgentProcess, ChassisBgp, ExposureLab, DEMO_HOSTED_ON_HV1};
pub use frr::{BgpConfig, FrrRouter, FRR_LIBEXEC};
pub use lab::{Database, Lab, LabBuilder, Nat, NatKind, DEFAULT_TIMEOUT};
pub use netns::{connect, Netns, Veth, VethEnd, IFNAMSIZ_MAX};
pub use ovsdb::{
    OvsdbCluster, OvsdbClusterBuilder, OvsdbServer, OvsdbServerBuilder, SslConfig, CLUSTER_TIMEOUT,
};
pub use pki::Pki;
pub use process::{describe, run, run_with_timeout, COMMAND_TIMEOUT};
pub use util::{free_port, is_root, skip_unless_root, wait_until, NAME_PREFIX};
pub use wire::Wire;

/// OVN northbound schema shipped by Debian's ovn-common.
pub const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
/// OVN southbound schema.
pub const SB_SCHEMA: &str = "/usr/share/ovn/ovn-sb.ovsschema";
/// OVN interconnection northbound schema (package ovn-ic-db).
pub const IC_NB_SCHEMA: &str = "/usr/share/ovn/ovn-ic-nb.ovsschema";
/// OVN interconnection southbound schema (package ovn-ic-db).
pub const IC_SB_SCHEMA: &str = "/usr/share/ovn/ovn-ic-sb.ovsschema";
/// Open vSwitch database schema.
pub const VSWITCH_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
