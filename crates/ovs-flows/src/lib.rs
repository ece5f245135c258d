//! The OpenFlow flows ovn-route owns on OVS provider bridges, kept equal to a desired set.
//!
//! Like the OVN BGP agent's underlay design, ovn-route puts two flows on each provider bridge
//! ([`exposure_flows`]): IPv4 and IPv6 traffic leaving OVN through the bridge's patch port gets
//! the bridge's MAC as destination, so it reaches the host's kernel routing. [`reconcile`] is
//! level-triggered: it observes the bridge, [`diff`]s against a [`DesiredFlows`] and applies
//! only the difference; [`remove_all`] takes our flows away.
//!
//! Ownership: every flow of ours carries our cookie (default [`DEFAULT_COOKIE`], 0x3e7 = 999,
//! as the Python agent's). Only flows with exactly that cookie are ever observed as ours,
//! replaced or deleted (`cookie=0x3e7/-1` in every dump and delete, deletes by slot with
//! `--strict`); every other flow on the bridge (OVN's, the operator's, the default `NORMAL`
//! flow) is left alone. In OpenFlow a flow's identity is its table, priority and match, not its
//! cookie, so adding a flow whose slot a foreign flow holds would silently replace it:
//! [`reconcile`] refuses such flows ([`Error::ForeignConflict`]) and adds the rest. A change of
//! actions (a new MAC) replaces our flow in place; a flow is never withdrawn to be re-added.
//!
//! Why `ovs-ofctl` (a subprocess, as the Python OVN BGP agent does) and not an OpenFlow client
//! library: there is no well-kept Rust crate for OpenFlow 1.3+ with Nicira extensions, and the
//! work is tiny (two flows per bridge, changed when a bridge MAC or patch port changes). One
//! `ovs-ofctl` call observes a bridge; changes go in one `add-flows`/`del-flows` call each,
//! read from standard input. [`Ofctl`] says how to reach a bridge (by name through the OVS
//! rundir, or an explicit target), with extra environment, an OpenFlow version and a timeout.
//!
//! Flows are compared as text in the form `ovs-ofctl --no-names dump-flows` prints, after
//! [`normalize`] maps both sides to it; a reconcile that changed something re-dumps and
//! reports flows whose text does not come back ([`Error::NotConverged`]). Ports are given by
//! OpenFlow port number (`Interface.ofport`), as the Python agent does: OpenFlow cuts port names
//! to 15 characters, and OVN's `patch-<localnet>-to-br-int` names are longer.
//!
//! Everything is synchronous (`std::process`, like ovn-route's FRR layer); async callers run
//! it on a blocking thread.

#![warn(missing_docs)]

mod dump;
mod error;
mod exposure;
mod flow;
pub mod normalize;
mod ofctl;
mod reconcile;

pub use dump::{parse_dump, parse_line, DumpError, DumpedFlow};
pub use error::{Conflict, Error, Result};
pub use exposure::{exposure_flows, EXPOSURE_PRIORITY};
pub use flow::{diff, DesiredFlows, Flow, FlowDiff, DEFAULT_COOKIE, DEFAULT_PRIORITY};
pub use ofctl::{OfPort, Ofctl, OFCTL_TIMEOUT, OPENFLOW_PORT_NAME_MAX};
pub use reconcile::{patch_port_present, reconcile, remove_all, FlowStats};
