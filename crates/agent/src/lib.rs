//! The ovn-route exposure agent: the OVN databases in, kernel routes, rules and neighbours, OVS
//! flows and an FRR block out.
//!
//! * [`host`]: the pure host plan (exposure plan -> what the kernel, OVS and FRR should hold);
//! * [`tables`]: stable routing-table ids for provider bridges, named in `rt_tables`.

#![warn(missing_docs)]

pub mod apply;
pub mod dynamic;
pub mod evpn;
pub mod facts;
pub mod host;
pub mod host_routes;
pub mod metrics;
pub mod runtime;
pub mod status;
pub mod tables;
