#![doc = include_str!("../README.md")]

mod auth;
pub mod batch;
mod batch_session;
#[cfg(feature = "blocking")]
pub mod blocking;
pub mod certificates;
mod client;
pub mod collective;
mod error;
mod fa_batch;
pub mod invoices;
mod limits;
mod online_state;
mod paging;
pub mod permissions;
pub mod qr;
mod session;
pub mod sync;
mod testdata;
mod tokens;

pub use auth::{Auth, AuthenticatedClient, SavedAuth, TestIdentity, XadesOptions, test_signer};
pub use batch_session::{BatchInvoiceResult, BatchOutcome, BatchSendOptions, UploadProgress};
pub use certificates::{Certificates, EnrollmentRequest, KsefCertificate};
pub use client::{KsefClient, KsefClientBuilder, PollOptions};
pub use collective::{CollectiveIdentifier, CollectiveIdentifiers};
pub use error::{Error, ExceptionCode, Result, StatusFailure};
pub use fa_batch::{FaBatch, fa_file_name};
pub use invoices::{DownloadedInvoice, ExportOptions, ExportPackage, ExportedInvoice, Invoices};
pub use limits::Limits;
pub use online_state::SavedOnlineSession;
pub use permissions::{PermissionOperation, Permissions};
pub use session::{
    AcceptedInvoice, ClosedSession, CorrectionRefusal, MAX_INVOICE_SIZE, OnlineSession,
    PreparedInvoice, SendOptions, SentInvoice, Sessions, UpoDocument,
};
pub use sync::{FsSyncStateStore, SyncCheckpoint, SyncOptions, SyncStateStore, SyncedInvoice};
pub use testdata::{
    NewTestPerson, NewTestSubject, TemporalTestData, TestData, TestOverrides, TestSubject,
};
pub use tokens::{GeneratedToken, Tokens};

// Crates whose types appear in the public API, re-exported so users never mix versions.
pub use ksef_crypto as crypto;
pub use ksef_fa as fa;
pub use ksef_model as model;
pub use ksef_transport as transport;
pub use secrecy;
