//! How ovn-route configures FRR.
//!
//! ovn-route owns a small, clearly delimited part of FRR's configuration (see [`FrrIntent`] and
//! `docs/frr.md`): the BGP instance of its VRF and the lines that leak that VRF into the default
//! BGP instance (or, without a VRF, the import of its kernel table). Peers, route-maps and every
//! other policy stay the operator's; nothing outside the block is ever changed.
//!
//! - [`render`] / [`unrender`]: pure, the `vtysh` command lines that install / remove the block.
//! - [`Vtysh`]: runs `vtysh --vty_socket DIR -c ...`, applies an intent idempotently, reads
//!   `show running-config`, `show bgp summary json` and the router id.
//! - [`FrrWatcher`]: reports, within a fraction of a second, that zebra or bgpd (re)started, so the
//!   agent re-applies its block (FRR forgets configuration that came through vtysh unless the
//!   operator saved it).

pub mod dynamic;
mod error;
mod intent;
mod running;
mod vtysh;
mod watch;

pub use error::{FrrError, Result};
pub use intent::{
    is_frr_route_protocol, render, unrender, AddressFamilies, ExposeMode, FrrIntent,
    MAX_IMPORT_TABLE,
};
pub use running::{missing_lines, RunningConfig, HITLESS_COALESCE_TIME_MS};
pub use vtysh::{ApplyOutcome, Vtysh, DEFAULT_SOCKET_DIR, VTYSH_TIMEOUT};
pub use watch::{FrrEvent, FrrWatcher, WatchOptions};
