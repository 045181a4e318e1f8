//! KSeF 2.0 domain model (crate docs are replaced by README.md once it exists).
//!
//! Module owners while the crate is being built: `api`, `operations`, `bytes`, `datetime` and
//! `generated` come from the OpenAPI generator (`cargo xtask codegen`); the rest is hand-written.

pub mod api;
pub mod auth_request;
pub mod bytes;
pub mod datetime;
pub mod environment;
pub mod form;
pub mod ids;
pub mod operations;
pub mod template;
pub mod upo;

pub use ids::{
    IdError, IdKind, InternalId, KsefNumber, Nip, NipVatUe, PeppolId, Pesel, ReferenceNumber,
    ReferenceType, Sha256Base64,
};
