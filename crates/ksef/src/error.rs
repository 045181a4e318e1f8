//! The SDK's one error type.

pub use ksef_transport::ExceptionCode;

/// A `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A KSeF asynchronous status (`status: {code, description, details}`) that ended in failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusFailure {
    /// The status code (e.g. 415, 440, 450).
    pub code: i32,
    /// KSeF's description.
    pub description: String,
    /// KSeF's details, if any.
    pub details: Vec<String>,
}

impl std::fmt::Display for StatusFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "status {} ({})", self.code, self.description)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details.join("; "))?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in the SDK. `Display` says what happened and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An HTTP call failed (KSeF error response, timeout, connection, decoding).
    #[error(transparent)]
    Transport(#[from] ksef_transport::Error),
    /// Keys, certificates, encryption or signing failed.
    #[error(transparent)]
    Crypto(#[from] ksef_crypto::Error),
    /// The XAdES signature could not be produced.
    #[error("XAdES signing failed: {0}")]
    Xades(#[from] ksef_crypto::xades::XadesError),
    /// The signer could not be built from the given key and certificate.
    #[error("signer: {0}")]
    Signer(#[from] ksef_crypto::signer::SignerError),
    /// The `AuthTokenRequest` could not be built.
    #[error("authentication request: {0}")]
    AuthRequest(#[from] ksef_model::auth_request::AuthRequestError),
    /// An identifier (NIP, PESEL, KSeF number, …) is malformed.
    #[error(transparent)]
    Id(#[from] ksef_model::IdError),
    /// A typed FA(3) invoice is invalid.
    #[error("FA(3) invoice: {0}")]
    Fa(#[from] ksef_fa::Error),
    /// A typed FA(3) invoice failed [`ksef_fa::Faktura::validate`] before sending; nothing was
    /// sent. Each error names its field path.
    #[error(
        "FA(3) invoice {invoice_number} was not sent: {} — correct the invoice (or send it with OnlineSession::send_fa_unchecked to let KSeF judge it)",
        join_fa_errors(.errors)
    )]
    FaInvalid {
        /// The invoice number (`P_2`).
        invoice_number: String,
        /// What `validate` found (at least one).
        errors: Vec<ksef_fa::Error>,
    },
    /// A UPO could not be parsed.
    #[error("UPO: {0}")]
    Upo(#[from] ksef_model::upo::UpoError),
    /// Authentication ended with a status ≥ 400 (`GET /auth/{referenceNumber}`).
    #[error(
        "authentication failed with {0} — check the certificate, the context and the permissions"
    )]
    AuthenticationFailed(StatusFailure),
    /// KSeF rejected an invoice (status ≥ 400 in `GET /sessions/{ref}/invoices/{ref}`).
    #[error("invoice {reference} rejected with {status}")]
    InvoiceRejected {
        /// The invoice reference number.
        reference: String,
        /// The final status.
        status: StatusFailure,
    },
    /// A session ended in a failure status.
    #[error("session {reference} failed with {status}")]
    SessionFailed {
        /// The session reference number.
        reference: String,
        /// The final status.
        status: StatusFailure,
    },
    /// A KSeF certificate enrollment ended with a failure status
    /// (`GET /certificates/enrollments/{referenceNumber}`: 400 rejected, 500, 550).
    #[error("certificate enrollment {reference} failed with {status}")]
    EnrollmentFailed {
        /// The enrollment reference number.
        reference: String,
        /// The final status.
        status: StatusFailure,
    },
    /// A permission grant or revoke ended with a failure status
    /// (`GET /permissions/operations/{referenceNumber}`: 400, 410, 420, 430, 440, 450, 500, 550).
    #[error("permission operation {reference} failed with {status}")]
    PermissionOperationFailed {
        /// The operation's reference number.
        reference: String,
        /// The final status.
        status: StatusFailure,
    },
    /// A KSeF token did not become `Active` (it ended `Failed`, `Revoking` or `Revoked`).
    #[error("KSeF token {reference} did not become active (status {status}); generate a new token")]
    TokenNotActive {
        /// The token's reference number.
        reference: String,
        /// The status it ended in.
        status: String,
    },
    /// An invoice export ended in a failure status (415 key, 420 range, 210 expired, 500, 550).
    #[error("invoice export {reference} failed with {status}")]
    ExportFailed {
        /// The export reference number.
        reference: String,
        /// The final status.
        status: StatusFailure,
    },
    /// KSeF refused a technical correction when it was sent (400 21166 or 21167; nothing was
    /// stored): [`OnlineSession::send_technical_correction`](crate::OnlineSession::send_technical_correction).
    #[error(
        "technical correction of the invoice with SHA-256 {original_hash} refused: {reason} — {source}"
    )]
    TechnicalCorrectionRefused {
        /// SHA-256 (Base64) of the rejected original (`hashOfCorrectedInvoice`).
        original_hash: ksef_model::ids::Sha256Base64,
        /// Why: 21166 or 21167.
        reason: crate::session::CorrectionRefusal,
        /// KSeF's error response.
        source: ksef_transport::Error,
    },
    /// Waiting for an asynchronous KSeF operation took longer than allowed.
    #[error(
        "timed out after {seconds} s waiting for {what}; KSeF may be slow — wait longer (raise the poll timeout) and check again"
    )]
    PollTimeout {
        /// What was awaited.
        what: &'static str,
        /// The time waited.
        seconds: u64,
    },
    /// An operation only allowed on TEST (test data, self-signed test certificates) was attempted
    /// elsewhere.
    #[error(
        "{operation} is available on the TEST environment only (and on a local simulator), not on {environment}"
    )]
    TestOnly {
        /// What was refused.
        operation: &'static str,
        /// The environment the client points at.
        environment: &'static str,
    },
    /// The stored authentication state cannot be used (expired refresh token, other environment).
    #[error("the saved authentication cannot be used: {0}; authenticate again")]
    SavedStateUnusable(String),
    /// A saved online session ([`crate::SavedOnlineSession`]) was made for another KSeF
    /// environment than the client's; nothing was sent.
    #[error(
        "the saved session {reference} belongs to {saved}, the client points at {client}; resume it with a client for {saved}"
    )]
    SavedSessionOtherEnvironment {
        /// The session reference number.
        reference: String,
        /// The API base URL the session was opened on.
        saved: String,
        /// The API base URL of the client asked to resume it.
        client: String,
    },
    /// A saved online session is past its `validUntil`: KSeF has closed it. Open a new session
    /// (the invoices it accepted keep their KSeF numbers and UPOs).
    #[error("the saved session {reference} expired at {valid_until}; open a new session")]
    SessionExpired {
        /// The session reference number.
        reference: String,
        /// When KSeF closed (or closes) the session on its own.
        valid_until: ksef_model::DateTime,
    },
    /// Test-data clean-up ([`crate::TestData::temporal`]) left something behind: every step
    /// was attempted, these failed (newest first). The body itself succeeded.
    #[error("test-data clean-up failed in {} step(s): {}", .0.len(), join_errors(.0))]
    TestDataCleanup(Vec<Error>),
    /// A caller-supplied value is invalid; nothing was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Local I/O failed (reading an invoice file, writing a temporary batch part).
    #[error("I/O error while {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Building a batch archive failed.
    #[error("archive: {0}")]
    Archive(String),
}

fn join_errors(errors: &[Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn join_fa_errors(errors: &[ksef_fa::Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// Whether repeating the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(e) => e.is_retryable(),
            Error::PollTimeout { .. } => true,
            // 500 "unknown error" and 550 "cancelled by the system" invite a retry.
            Error::AuthenticationFailed(s)
            | Error::InvoiceRejected { status: s, .. }
            | Error::SessionFailed { status: s, .. }
            | Error::ExportFailed { status: s, .. }
            | Error::EnrollmentFailed { status: s, .. }
            | Error::PermissionOperationFailed { status: s, .. } => matches!(s.code, 500 | 550),
            _ => false,
        }
    }

    /// The KSeF exception code of an error response (the first one), if there is one.
    pub fn ksef_code(&self) -> Option<ExceptionCode> {
        match self {
            Error::Transport(e) => e.exception_codes().into_iter().next(),
            Error::TechnicalCorrectionRefused { reason, .. } => Some(reason.code()),
            _ => None,
        }
    }

    /// The status code of a failed asynchronous operation (auth, invoice, session), if any.
    pub fn status_code(&self) -> Option<i32> {
        match self {
            Error::AuthenticationFailed(s)
            | Error::InvoiceRejected { status: s, .. }
            | Error::SessionFailed { status: s, .. }
            | Error::ExportFailed { status: s, .. }
            | Error::EnrollmentFailed { status: s, .. }
            | Error::PermissionOperationFailed { status: s, .. } => Some(s.code),
            _ => None,
        }
    }

    /// The HTTP status when KSeF answered with an error.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Transport(e) | Error::TechnicalCorrectionRefused { source: e, .. } => e.status(),
            _ => None,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_and_codes() {
        let e = Error::InvoiceRejected {
            reference: "r".into(),
            status: StatusFailure {
                code: 550,
                description: "anulowana".into(),
                details: vec![],
            },
        };
        assert!(e.is_retryable());
        assert_eq!(e.status_code(), Some(550));
        let e = Error::InvoiceRejected {
            reference: "r".into(),
            status: StatusFailure {
                code: 440,
                description: "Duplikat faktury".into(),
                details: vec!["x".into()],
            },
        };
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("440 (Duplikat faktury): x"));
        let api = ksef_transport::ApiError::parse(
            400,
            None,
            br#"{"exception":{"exceptionDetailList":[{"exceptionCode":21470,"exceptionDescription":"k"}]}}"#,
        );
        let e = Error::Transport(ksef_transport::Error::Api {
            operation: "open_online_session",
            api: Box::new(api),
        });
        assert_eq!(e.ksef_code().map(|c| c.code()), Some(21470));
        assert_eq!(e.http_status(), Some(400));
        assert!(!e.is_retryable());
    }
}
