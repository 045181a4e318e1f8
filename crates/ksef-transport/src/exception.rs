//! KSeF exception codes (ksef-api.md §18.5 and the 400 tables of spec/open-api.json).

macro_rules! exception_codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $hint:literal; )*) => {
        /// A KSeF exception code, as found in a legacy `exceptionDetailList[].exceptionCode` or a
        /// problem-details `errors[].code`. Codes KSeF adds later arrive as [`ExceptionCode::Unknown`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ExceptionCode {
            $( $(#[$doc])* $name, )*
            /// A code this version of the SDK does not know.
            Unknown(i32),
        }

        impl ExceptionCode {
            /// The code for a number.
            pub fn from_code(code: i32) -> Self {
                match code {
                    $( $code => Self::$name, )*
                    other => Self::Unknown(other),
                }
            }

            /// The number KSeF uses for this code.
            pub fn code(self) -> i32 {
                match self {
                    $( Self::$name => $code, )*
                    Self::Unknown(other) => other,
                }
            }

            /// What a caller can do about it, in one sentence (English).
            pub fn hint(self) -> &'static str {
                match self {
                    $( Self::$name => $hint, )*
                    Self::Unknown(_) => "unknown KSeF exception code: read the description and details",
                }
            }
        }
    };
}

exception_codes! {
    /// 9101 — invalid document.
    InvalidDocument = 9101, "the signed document is not a valid XAdES document";
    /// 9102 — no signature.
    NoSignature = 9102, "sign the AuthTokenRequest before sending it";
    /// 9103 — too many signatures.
    TooManySignatures = 9103, "send exactly one signature";
    /// 9105 — invalid signature.
    InvalidSignature = 9105, "the XAdES signature did not verify: check the canonicalisation, digests and certificate";
    /// 21001 — unreadable content.
    UnreadableContent = 21001, "the request body could not be read: send UTF-8 XML";
    /// 21111 — invalid or expired challenge.
    InvalidChallenge = 21111, "request a new challenge and authenticate again within 10 minutes";
    /// 21115 — invalid certificate.
    InvalidCertificate = 21115, "use a qualified or KSeF certificate (self-signed ones work on TEST only)";
    /// 21117 — invalid subject identifier for the context type.
    InvalidSubjectIdentifier = 21117, "the context identifier does not match its declared type";
    /// 21155 — too many invoices in the session.
    SessionInvoiceLimitExceeded = 21155, "close this session and open a new one";
    /// 21157 — invalid batch part size.
    InvalidPartSize = 21157, "each batch part must be at most 100 MB before encryption and match its declared size";
    /// 21161 — too many batch parts.
    TooManyParts = 21161, "split the archive into at most 50 parts";
    /// 21164 — invoice does not exist.
    InvoiceNotFound = 21164, "check the KSeF number";
    /// 21165 — invoice not available yet.
    InvoiceNotYetAvailable = 21165, "the invoice is processed but not downloadable yet: try again later";
    /// 21166 — technical correction not available.
    TechnicalCorrectionUnavailable = 21166, "the original already has an accepted technical correction: KSeF allows one per invoice";
    /// 21167 — invoice status does not allow technical correction.
    TechnicalCorrectionNotAllowed = 21167, "a technical correction applies only to an offline invoice KSeF rejected; this one was accepted (send a correcting invoice instead)";
    /// 21173 — no session with this reference number.
    SessionNotFound = 21173, "check the session reference number";
    /// 21175 — query result does not exist.
    QueryResultNotFound = 21175, "check the export reference number";
    /// 21178 — UPO not found.
    UpoNotFound = 21178, "no UPO matches yet: wait for processing to finish and try again";
    /// 21180 — session status does not allow the operation.
    SessionStatusConflict = 21180, "the session is not open (closed, expired or cancelled): open a new session";
    /// 21181 — invalid export request.
    InvalidExportRequest = 21181, "fix the export filters";
    /// 21182 — limit of running exports reached.
    ExportLimitReached = 21182, "wait for a running export to finish (at most 10 at a time)";
    /// 21183 — filter range beyond available data (from > HWM).
    RangeBeyondHighWaterMark = 21183, "move dateRange.from back to at most permanentStorageHwmDate";
    /// 21205 — package cannot be empty (declared part not uploaded).
    EmptyPackage = 21205, "upload every declared part before closing the batch session";
    /// 21208 — upload or finish timed out.
    UploadTimeout = 21208, "the batch upload window expired: open a new batch session";
    /// 21217 — invalid character encoding.
    InvalidEncoding = 21217, "send UTF-8 without a BOM";
    /// 21301 — not authorized (already redeemed, wrong status, token revoked).
    NotAuthorized = 21301, "tokens were already redeemed or the authentication is not in a state that allows this: authenticate again";
    /// 21304 — authentication operation not found.
    AuthenticationNotFound = 21304, "check the authentication reference number and token";
    /// 21308 — authentication methods of a deceased person.
    DeceasedPerson = 21308, "the authenticating person is marked deceased";
    /// 21401 — document does not match the XSD.
    SchemaViolation = 21401, "validate the document against its XSD (details list the validator's messages)";
    /// 21402 — invalid file size.
    InvalidFileSize = 21402, "the declared size does not match the bytes sent";
    /// 21403 — invalid file hash.
    InvalidFileHash = 21403, "the declared SHA-256 does not match the bytes sent";
    /// 21405 — input validation failed.
    ValidationFailed = 21405, "the request failed validation: see the details";
    /// 21406 — signature conflicts with authentication type.
    SignatureTypeConflict = 21406, "the signature does not fit the requested authentication type";
    /// 21418 — malformed continuation token.
    InvalidContinuationToken = 21418, "pass back the continuationToken exactly as received";
    /// 21470 — unknown or withdrawn public key id.
    UnknownPublicKey = 21470, "fetch the MF public keys again, re-encrypt and retry";
    /// 25001 — CSR data unavailable for this authentication method.
    CsrDataUnavailable = 25001, "authenticate with XAdES to get CSR data";
    /// 25002 — enrollment not possible for this authentication method.
    EnrollmentNotAllowed = 25002, "authenticate with XAdES to enroll a certificate";
    /// 25003 — CSR data differ from the authenticated identity.
    CsrIdentityMismatch = 25003, "build the CSR with exactly the DN from /certificates/enrollments/data";
    /// 25004 — invalid CSR or CSR signature.
    InvalidCsr = 25004, "send a DER PKCS#10 CSR, Base64-encoded, with a valid signature";
    /// 25005 — enrollment does not exist.
    EnrollmentNotFound = 25005, "check the enrollment reference number";
    /// 25006 — enrollment limit reached.
    EnrollmentLimitReached = 25006, "the subject reached its enrollment limit";
    /// 25007 — certificate limit reached.
    CertificateLimitReached = 25007, "revoke an unused certificate first";
    /// 25008 — certificate does not exist.
    CertificateNotFound = 25008, "check the certificate serial number";
    /// 25009 — certificate cannot be revoked.
    CertificateNotRevocable = 25009, "the certificate is already revoked, blocked or invalid";
    /// 25010 — invalid key type or length.
    InvalidKeyType = 25010, "use RSA 2048 or EC P-256";
    /// 25011 — invalid CSR signature algorithm.
    InvalidCsrSignatureAlgorithm = 25011, "sign the CSR with RSA PKCS#1 v1.5, RSA-PSS or ECDSA";
    /// 26001 — cannot give a token permissions you do not have.
    TokenPermissionsNotHeld = 26001, "request only permissions the authenticated subject holds";
    /// 26002 — cannot generate a token for this context type.
    TokenContextNotAllowed = 26002, "tokens cannot be generated in this context type";
    /// 30001 — subject or permission already exists.
    AlreadyExists = 30001, "the test subject or permission already exists";
    /// 71001 — invoice cannot be assigned to a collective identifier.
    CollectiveAssignmentRejected = 71001, "the invoice cannot be assigned to a collective identifier";
    /// 71002 — invoice already has the maximum number of collective identifiers.
    CollectiveAssignmentLimit = 71002, "the invoice already has the maximum number of collective identifiers";
}

impl std::fmt::Display for ExceptionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for code in [9101, 21111, 21405, 21470, 25005, 30001, 71002] {
            let c = ExceptionCode::from_code(code);
            assert!(!matches!(c, ExceptionCode::Unknown(_)), "{code}");
            assert_eq!(c.code(), code);
        }
        assert_eq!(
            ExceptionCode::from_code(12345),
            ExceptionCode::Unknown(12345)
        );
        assert_eq!(ExceptionCode::Unknown(12345).code(), 12345);
        assert_eq!(ExceptionCode::ValidationFailed.to_string(), "21405");
    }
}
