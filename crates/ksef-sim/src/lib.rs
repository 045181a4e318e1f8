#![doc = include_str!("../README.md")]

mod auth;
mod batch;
mod certificates;
mod clock;
mod collective;
mod error;
pub mod faults;
mod ids;
mod invoice_xml;
mod invoices;
mod jwt;
mod keys;
mod limits;
mod misc;
mod permissions;
mod persist;
mod prune;
#[cfg(feature = "validate-responses")]
pub mod respcheck;
mod server;
mod sessions;
mod state;
mod testdata;
mod tls;
mod tokens;
mod tracked;
mod upo;
mod xsd;

pub use clock::{Clock, ManualClock, SystemClock};
pub use keys::{KeyRotationError, KeyUsage, MAX_ROTATIONS};
pub use persist::{SCHEMA_VERSION, StateDirError};
pub use prune::Purged;
pub use server::{IMPLEMENTED_OPERATIONS, SimError, Simulator, SimulatorBuilder, SimulatorHandle};
pub use tls::TlsError;
