//! Network peering between OVN networks (logical routers), shaped like `incus network peer`.
//!
//! * [`model`]: labels (network short name, project), the declaration stored in the NB on the
//!   declaring router (`external_ids:ovn-route:peer:<name>` = compact JSON), validation, status.
//! * [`snapshot`]: the NB rows the planner reads, as plain values.
//! * [`mod@plan`]: pure planning: status of every declaration, ports and routes of every created
//!   (mutual) relationship.
//! * [`mod@diff`]: desired vs marked objects -> operations; unmarked objects are never touched.
//! * [`read`], [`apply`], [`controller`]: the I/O side (replica -> snapshot, operations ->
//!   transactions guarded by `wait`, the lock-holding reconcile loop).
//!
//! * [`remote`], [`ic`]: remote peering through OVN interconnection (integrations stored in
//!   `NB_Global`, one transit switch per relationship in the IC-NB, the pure remote planner, and
//!   its IC-NB/NB transactions).

#![warn(missing_docs)]

pub mod apply;
pub mod cidr;
pub mod controller;
pub mod diff;
pub mod error;
pub mod ic;
pub mod model;
pub mod plan;
pub mod read;
pub mod remote;
pub mod snapshot;

pub use diff::{diff, simulate, Op};
pub use error::{ModelError, PeerError};
pub use model::{Declaration, PeerType, PeerView, Status, PENDING_MESSAGE};
pub use plan::{plan, DeclRef, DesiredPort, DesiredRoute, Plan, Relationship};
pub use snapshot::{Router, RouterPort, Snapshot, StaticRoute};
