#![doc = include_str!("../README.md")]

// Module owners: `api`, `operations`, `bytes`, `datetime` and `generated/` come from the OpenAPI
// generator (`cargo xtask codegen`); the rest is hand-written.

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

pub use auth_request::{AuthTokenRequest, ContextIdentifier, SubjectIdentifierType};
pub use bytes::Base64Bytes;
pub use datetime::DateTime;
pub use environment::Environment;
pub use form::FormCode;
pub use ids::{
    IdError, IdKind, InternalId, KsefNumber, Nip, NipVatUe, PeppolId, Pesel, ReferenceNumber,
    ReferenceType, Sha256Base64,
};
pub use template::InvoiceTemplate;
pub use upo::Upo;
