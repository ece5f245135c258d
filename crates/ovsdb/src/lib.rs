//! An OVSDB client (RFC 7047 and the ovsdb-server(7) extensions) with an in-memory replica.
//!
//! We write our own rather than use an existing crate because none handles what a long-running agent
//! needs: `monitor_cond_since` resumption with `update3`, correct `update2` difference semantics (set
//! and map differences), clustered databases (`_Server` health, stale members), fallbacks for old
//! servers, bounded message sizes, and parsing a large initial dump straight into rows.
//!
//! Layers, bottom up:
//! * [`value`] and [`schema`]: OVSDB data and schemas;
//! * [`framing`], [`stream`] and [`rpc`]: JSON-RPC over a byte stream ([`transport`]: TCP, Unix,
//!   TLS), parsed while it arrives, straight into rows for monitor data;
//! * [`transact`]: typed transaction operations;
//! * [`replica`]: the replicated tables and change sets;
//! * [`session`]: reconnects, cluster members, monitors, locks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ovsdb::Error> {
//! use ovsdb::{Remote, Session, SessionConfig, TableSelect};
//! let mut cfg = SessionConfig::new(Remote::parse_list("unix:/run/ovn/ovnnb_db.sock")?, "OVN_Northbound");
//! cfg.tables = vec![TableSelect::columns("Logical_Switch", &["name", "ports"])];
//! let session = Session::start(cfg);
//! session.wait_connected().await;
//! let n = session.read(|r| r.table("Logical_Switch").map_or(0, |t| t.len()));
//! println!("{n} switches");
//! # Ok(()) }
//! ```

pub mod error;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
mod intern;
pub mod remote;
pub mod replica;
pub mod rpc;
pub mod schema;
pub mod session;
pub mod stream;
pub mod transact;
pub mod transport;
pub mod value;

pub use error::{Error, Result};
pub use remote::Remote;
pub use replica::{ChangeSet, Replica, Row, RowRef, Table, TableChanges, TableLayout};
pub use rpc::{ConnectOptions, Connection, Notification};
pub use schema::{AtomicType, ColumnType, DatabaseSchema};
pub use session::{Event, MonitorMethod, Session, SessionConfig, SessionStatus, TableSelect};
pub use stream::{Payload, Updates};
pub use transact::{Condition, Function, Mutation, Mutator, Operation, RowData, WaitUntil};
pub use transport::SslConfig;
pub use value::{Atom, Datum, Uuid};
