//! The one error type of this crate, and the parser of KSeF error bodies.
//!
//! KSeF answers errors in two JSON formats (ksef-api.md §18): the legacy
//! `{"exception":{"exceptionDetailList":[…]}}` (400) and RFC 9457 problem details
//! (`application/problem+json`; always for 401/403/410, and for 400/429 because this transport
//! sends `X-Error-Format: problem-details`). 429 may also come as the legacy
//! `{"status":{"code":429,…}}`. Anything else (a gateway's HTML page, an empty body) is kept raw.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::exception::ExceptionCode;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How much of a body that is neither error format is kept in [`ApiError::raw_body`].
const RAW_BODY_LIMIT: usize = 4096;

/// One KSeF exception: a code, its description and details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExceptionDetail {
    /// The exception code.
    pub code: ExceptionCode,
    /// The server's description (Polish), if any.
    pub description: Option<String>,
    /// The server's details (e.g. XSD validator messages).
    pub details: Vec<String>,
}

/// Why a 403 was returned (`reasonCode` of a problem-details body).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForbiddenReason {
    /// `missing-permissions`: see [`ApiError::required_any_of_permissions`].
    MissingPermissions,
    /// `ip-not-allowed`: the call came from an IP outside the authorization policy.
    IpNotAllowed,
    /// `insufficient-resource-access`.
    InsufficientResourceAccess,
    /// `auth-method-not-allowed`: not available for the authentication method used.
    AuthMethodNotAllowed,
    /// `security-service-blocked`: blocked by KSeF's security mechanisms.
    SecurityServiceBlocked,
    /// `context-type-not-allowed`.
    ContextTypeNotAllowed,
    /// A reason this SDK does not know.
    Unknown(String),
}

impl ForbiddenReason {
    fn parse(s: &str) -> Self {
        match s {
            "missing-permissions" => Self::MissingPermissions,
            "ip-not-allowed" => Self::IpNotAllowed,
            "insufficient-resource-access" => Self::InsufficientResourceAccess,
            "auth-method-not-allowed" => Self::AuthMethodNotAllowed,
            "security-service-blocked" => Self::SecurityServiceBlocked,
            "context-type-not-allowed" => Self::ContextTypeNotAllowed,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::MissingPermissions => "missing-permissions",
            Self::IpNotAllowed => "ip-not-allowed",
            Self::InsufficientResourceAccess => "insufficient-resource-access",
            Self::AuthMethodNotAllowed => "auth-method-not-allowed",
            Self::SecurityServiceBlocked => "security-service-blocked",
            Self::ContextTypeNotAllowed => "context-type-not-allowed",
            Self::Unknown(s) => s,
        }
    }
}

/// Which body format an error response came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorFormat {
    /// `{"exception":{"exceptionDetailList":[…]}}`.
    LegacyException,
    /// `{"status":{"code":429,…}}`.
    LegacyStatus,
    /// RFC 9457 problem details.
    ProblemDetails,
    /// Neither: see [`ApiError::raw_body`].
    Unrecognised,
}

/// A non-success HTTP response from KSeF (or from something in front of it), parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Format of the body.
    pub format: ErrorFormat,
    /// Exception codes with descriptions and details (legacy list or problem-details `errors`).
    pub exceptions: Vec<ExceptionDetail>,
    /// Problem-details `title`, or the legacy 429 `status.description`.
    pub title: Option<String>,
    /// Problem-details `detail` (or the legacy 429 details joined).
    pub detail: Option<String>,
    /// Problem-details `traceId`, or the legacy `serviceCode` (the same trace id).
    pub trace_id: Option<String>,
    /// The legacy `referenceNumber`, if any.
    pub reference_number: Option<String>,
    /// `reasonCode` of a 403.
    pub reason: Option<ForbiddenReason>,
    /// `security.requiredAnyOfPermissions` of a 403 `missing-permissions`.
    pub required_any_of_permissions: Vec<String>,
    /// `security.presentPermissions` of a 403 `missing-permissions`.
    pub present_permissions: Vec<String>,
    /// `Retry-After` of a 429 (or 503), if present and parseable.
    pub retry_after: Option<Duration>,
    /// The body (first 4 KiB, lossily decoded) when it is neither format, e.g. an HTML page.
    pub raw_body: Option<String>,
}

impl ApiError {
    /// Parses an error response. Never fails: an unparseable body ends up in `raw_body`.
    pub fn parse(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let mut err = ApiError {
            status,
            format: ErrorFormat::Unrecognised,
            exceptions: Vec::new(),
            title: None,
            detail: None,
            trace_id: None,
            reference_number: None,
            reason: None,
            required_any_of_permissions: Vec::new(),
            present_permissions: Vec::new(),
            retry_after,
            raw_body: None,
        };
        if let Ok(mut wire) = serde_json::from_slice::<WireError>(body)
            && wire.is_recognised()
        {
            err.fill(wire);
        } else if !body.is_empty() {
            let end = body.len().min(RAW_BODY_LIMIT);
            err.raw_body = Some(String::from_utf8_lossy(&body[..end]).into_owned());
        }
        err
    }

    fn fill(&mut self, wire: WireError) {
        if let Some(exc) = wire.exception {
            self.format = ErrorFormat::LegacyException;
            self.exceptions = exc
                .exception_detail_list
                .unwrap_or_default()
                .into_iter()
                .map(|d| ExceptionDetail {
                    code: ExceptionCode::from_code(d.exception_code.unwrap_or(0)),
                    description: d.exception_description,
                    details: d.details.unwrap_or_default(),
                })
                .collect();
            self.trace_id = exc.service_code;
            self.reference_number = exc.reference_number;
            return;
        }
        if let Some(st) = wire.status_obj {
            self.format = ErrorFormat::LegacyStatus;
            self.title = st.description;
            let details = st.details.unwrap_or_default();
            if !details.is_empty() {
                self.detail = Some(details.join(" "));
            }
            return;
        }
        self.format = ErrorFormat::ProblemDetails;
        self.title = wire.title;
        self.detail = wire.detail;
        self.trace_id = wire.trace_id;
        self.exceptions = wire
            .errors
            .unwrap_or_default()
            .into_iter()
            .map(|e| ExceptionDetail {
                code: ExceptionCode::from_code(e.code.unwrap_or(0)),
                description: e.description,
                details: e.details.unwrap_or_default(),
            })
            .collect();
        self.reason = wire.reason_code.as_deref().map(ForbiddenReason::parse);
        if let Some(security) = wire.security {
            self.required_any_of_permissions =
                string_list(security.get("requiredAnyOfPermissions"));
            self.present_permissions = string_list(security.get("presentPermissions"));
        }
    }

    /// The exception codes, in order.
    pub fn codes(&self) -> impl Iterator<Item = ExceptionCode> + '_ {
        self.exceptions.iter().map(|e| e.code)
    }

    /// Whether one of the exceptions has this code.
    pub fn has_code(&self, code: ExceptionCode) -> bool {
        self.codes().any(|c| c == code)
    }

    fn advice(&self) -> &'static str {
        if let Some(first) = self.exceptions.first() {
            return first.code.hint();
        }
        match self.status {
            400 => "the request was rejected: see the details",
            401 => {
                "the token is missing, invalid or expired: refresh the access token or authenticate again"
            }
            403 => match self.reason {
                Some(ForbiddenReason::MissingPermissions) => {
                    "the authenticated subject lacks the permissions listed: grant one of them"
                }
                Some(ForbiddenReason::IpNotAllowed) => {
                    "call from an IP allowed by the authorization policy, or authenticate again"
                }
                _ => "the operation is forbidden for this authentication",
            },
            404 => "the resource does not exist: check the base URL and identifiers",
            410 => "the status is past its retention period and no longer kept",
            429 => "rate limit hit: wait for Retry-After before calling again",
            500..=599 => "KSeF or a gateway failed: retry later if the operation is safe to repeat",
            _ => "unexpected response",
        }
    }
}

fn string_list(v: Option<&serde_json::Value>) -> Vec<String> {
    match v {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        for e in &self.exceptions {
            write!(f, "; KSeF {}", e.code.code())?;
            if let Some(d) = &e.description {
                write!(f, " {d}")?;
            }
            if !e.details.is_empty() {
                write!(f, " ({})", e.details.join("; "))?;
            }
        }
        if self.exceptions.is_empty() {
            if let Some(t) = &self.title {
                write!(f, "; {t}")?;
            }
            if let Some(d) = &self.detail {
                write!(f, ": {d}")?;
            }
        }
        if let Some(r) = &self.reason {
            write!(f, "; reason {}", r.as_str())?;
        }
        if !self.required_any_of_permissions.is_empty() {
            write!(
                f,
                "; requires any of [{}], present [{}]",
                self.required_any_of_permissions.join(", "),
                self.present_permissions.join(", ")
            )?;
        }
        if let Some(ra) = self.retry_after {
            write!(f, "; retry after {}s", ra.as_secs())?;
        }
        if let Some(t) = &self.trace_id {
            write!(f, "; trace id {t}")?;
        }
        if let Some(raw) = &self.raw_body {
            let snippet: String = raw.chars().take(200).collect();
            write!(f, "; body: {}", snippet.trim())?;
        }
        write!(f, " — {}", self.advice())
    }
}

// ---- wire formats (private: no serde types in the public error) ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireError {
    exception: Option<WireException>,
    #[serde(rename = "status")]
    status_obj_or_num: Option<serde_json::Value>,
    #[serde(skip)]
    status_obj: Option<WireStatus>,
    title: Option<String>,
    detail: Option<String>,
    trace_id: Option<String>,
    errors: Option<Vec<WireProblemError>>,
    reason_code: Option<String>,
    security: Option<serde_json::Map<String, serde_json::Value>>,
}

impl WireError {
    /// Sorts out `status`, which is a number in problem details and an object in the legacy 429.
    fn is_recognised(&mut self) -> bool {
        let status = self.status_obj_or_num.take();
        let status_is_number = matches!(status, Some(serde_json::Value::Number(_)));
        if let Some(obj @ serde_json::Value::Object(_)) = status {
            self.status_obj = serde_json::from_value(obj).ok();
        }
        self.exception.is_some()
            || self.status_obj.is_some()
            || (status_is_number
                && (self.title.is_some() || self.detail.is_some() || self.errors.is_some()))
            || self.errors.is_some()
            || self.reason_code.is_some()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireException {
    exception_detail_list: Option<Vec<WireExceptionDetail>>,
    reference_number: Option<String>,
    service_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireExceptionDetail {
    exception_code: Option<i32>,
    exception_description: Option<String>,
    details: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct WireStatus {
    description: Option<String>,
    details: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct WireProblemError {
    code: Option<i32>,
    description: Option<String>,
    details: Option<Vec<String>>,
}

/// Parses `Retry-After`: delta-seconds or an HTTP date (relative to `now`; a date in the past
/// means zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Everything that can go wrong in a call. `Display` says what happened and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// KSeF (or a gateway) answered with an error status.
    #[error("{operation}: {api}")]
    Api {
        /// The operation name (e.g. `open_online_session`).
        operation: &'static str,
        /// The parsed response.
        api: Box<ApiError>,
    },
    /// HTTP 429 persisted beyond the configured rate-limit budget.
    #[error(
        "{operation}: rate limited by KSeF{}; the retry budget is used up — slow down (penalties escalate for clients that keep hitting 429)",
        retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default()
    )]
    RateLimited {
        /// The operation name.
        operation: &'static str,
        /// The last `Retry-After`, if KSeF sent one.
        retry_after: Option<Duration>,
        /// The last 429 response.
        api: Box<ApiError>,
    },
    /// The token redeem request may or may not have been processed (timeout, lost connection or
    /// 5xx after sending). Redeem works once, so it is not repeated.
    #[error(
        "{operation}: the outcome of redeeming the tokens is unknown ({cause}); redeem works only once — check GET /auth/{{referenceNumber}} (isTokenRedeemed) and authenticate again if needed"
    )]
    RedeemOutcomeUnknown {
        /// The operation name.
        operation: &'static str,
        /// What happened.
        cause: Box<Error>,
    },
    /// A success status other than the one the operation defines (e.g. 200 where 201 is due).
    #[error(
        "{operation}: expected HTTP {expected}, got {actual} — the server does not behave as KSeF documents (wrong base URL?)"
    )]
    UnexpectedStatus {
        /// The operation name.
        operation: &'static str,
        /// The status the spec defines.
        expected: u16,
        /// The status received.
        actual: u16,
    },
    /// The call timed out.
    #[error(
        "{operation}: timed out — KSeF may be slow or unreachable; retry later or raise the timeout"
    )]
    Timeout {
        /// The operation name.
        operation: &'static str,
    },
    /// The connection could not be established.
    #[error(
        "{operation}: could not connect ({message}) — check network, proxy settings and the base URL"
    )]
    Connect {
        /// The operation name.
        operation: &'static str,
        /// What the HTTP stack said (URL removed).
        message: String,
    },
    /// TLS failed (certificate or handshake).
    #[error(
        "{operation}: TLS failed ({message}) — check the system clock, proxy and trusted roots"
    )]
    Tls {
        /// The operation name.
        operation: &'static str,
        /// What the TLS stack said.
        message: String,
    },
    /// A success response body did not match the expected type.
    #[error(
        "{operation}: could not decode the response ({message}) — KSeF may have changed its API; please report"
    )]
    Decode {
        /// The operation name.
        operation: &'static str,
        /// What the decoder said.
        message: String,
    },
    /// The request could not be built (e.g. a body failed to serialise, a token holds invalid bytes).
    #[error("{operation}: could not build the request: {message}")]
    Request {
        /// The operation name.
        operation: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Any other transport failure (connection reset mid-response, body read error, …).
    #[error("{operation}: transport failed ({message}) — retry later")]
    Transport {
        /// The operation name.
        operation: &'static str,
        /// What the HTTP stack said (URL removed).
        message: String,
    },
    /// A download's SHA-256 differs from the `x-ms-meta-hash` the server sent.
    #[error(
        "{operation}: downloaded content is corrupt: SHA-256 {actual} but the server announced {expected} — discard it and download again"
    )]
    HashMismatch {
        /// The operation name.
        operation: &'static str,
        /// Base64 SHA-256 from `x-ms-meta-hash`.
        expected: String,
        /// Base64 SHA-256 of what arrived.
        actual: String,
    },
    /// A download returned something that is not the expected binary/XML (e.g. an HTML error page).
    #[error(
        "{operation}: expected binary content but got {content_type} — the URL may have expired; fetch a fresh one (body starts: {body_start})"
    )]
    NotBinary {
        /// The operation name.
        operation: &'static str,
        /// The `Content-Type` received.
        content_type: String,
        /// The first bytes of the body, lossily decoded.
        body_start: String,
    },
    /// Reading the upload source or writing the download sink failed.
    #[error("{operation}: local I/O failed: {message}")]
    Io {
        /// The operation name.
        operation: &'static str,
        /// The I/O error.
        message: String,
    },
}

impl Error {
    /// Whether repeating the same call later may succeed (and is safe as far as this error goes:
    /// callers still decide whether the *operation* may be repeated).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { api, .. } => matches!(api.status, 429 | 500..=599),
            Error::RateLimited { .. }
            | Error::Timeout { .. }
            | Error::Connect { .. }
            | Error::Transport { .. }
            | Error::HashMismatch { .. } => true,
            _ => false,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { api, .. } | Error::RateLimited { api, .. } => Some(api.status),
            Error::UnexpectedStatus { actual, .. } => Some(*actual),
            Error::RedeemOutcomeUnknown { cause, .. } => cause.status(),
            _ => None,
        }
    }

    /// The parsed error response, when the server answered with an error.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::Api { api, .. } | Error::RateLimited { api, .. } => Some(api),
            Error::RedeemOutcomeUnknown { cause, .. } => cause.api_error(),
            _ => None,
        }
    }

    /// The KSeF exception codes of the response (empty when there are none).
    pub fn exception_codes(&self) -> Vec<ExceptionCode> {
        self.api_error()
            .map(|a| a.codes().collect())
            .unwrap_or_default()
    }

    /// Whether the response carried this KSeF exception code.
    pub fn has_code(&self, code: ExceptionCode) -> bool {
        self.api_error().is_some_and(|a| a.has_code(code))
    }

    /// Classifies a reqwest error without leaking reqwest types or URLs (presigned URLs carry
    /// signatures, so the URL is dropped).
    pub(crate) fn from_reqwest(operation: &'static str, err: reqwest::Error) -> Self {
        let err = err.without_url();
        let message = chain_message(&err);
        if err.is_timeout() {
            Error::Timeout { operation }
        } else if err.is_connect() {
            let lower = message.to_ascii_lowercase();
            if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
            {
                Error::Tls { operation, message }
            } else {
                Error::Connect { operation, message }
            }
        } else if err.is_decode() {
            Error::Decode { operation, message }
        } else if err.is_builder() {
            Error::Request { operation, message }
        } else {
            Error::Transport { operation, message }
        }
    }
}

fn chain_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_exception_body() {
        let body = br#"{"exception":{"exceptionDetailList":[{"exceptionCode":21405,"exceptionDescription":"B\u0142\u0105d walidacji danych wej\u015bciowych.","details":["Pole X jest wymagane."]},{"exceptionCode":99999,"exceptionDescription":"Nowy","details":null}],"referenceNumber":"20251010-EE-1111111111-2222222222-33","serviceCode":"00-c02cc3747020c605be02159bf3324f0e-eee7647dc67aa74a-00","serviceCtx":"srvABCDA","serviceName":"Undefined","timestamp":"2025-10-11T12:23:56.0154302"}}"#;
        let e = ApiError::parse(400, None, body);
        assert_eq!(e.format, ErrorFormat::LegacyException);
        assert_eq!(e.exceptions.len(), 2);
        assert_eq!(e.exceptions[0].code, ExceptionCode::ValidationFailed);
        assert_eq!(e.exceptions[0].details, vec!["Pole X jest wymagane."]);
        assert_eq!(e.exceptions[1].code, ExceptionCode::Unknown(99999));
        assert!(e.exceptions[1].details.is_empty());
        assert_eq!(
            e.trace_id.as_deref(),
            Some("00-c02cc3747020c605be02159bf3324f0e-eee7647dc67aa74a-00")
        );
        assert_eq!(
            e.reference_number.as_deref(),
            Some("20251010-EE-1111111111-2222222222-33")
        );
        assert!(e.raw_body.is_none());
        let s = e.to_string();
        assert!(
            s.contains("HTTP 400") && s.contains("KSeF 21405") && s.contains("Pole X"),
            "{s}"
        );
        assert!(s.contains("see the details"), "{s}");
    }

    #[test]
    fn spec_example_exception_response() {
        // spec/open-api.json components.schemas.ExceptionResponse.example
        let body = r#"{"exception": {"exceptionDetailList": [{"exceptionCode": 12345, "exceptionDescription": "Opis błędu.", "details": ["Opcjonalne dodatkowe szczegóły błędu."]}], "referenceNumber": "a1b2c3d4-e5f6-4789-ab12-cd34ef567890", "serviceCode": "00-c02cc3747020c605be02159bf3324f0e-eee7647dc67aa74a-00", "serviceCtx": "srvABCDA", "serviceName": "Undefined", "timestamp": "2025-10-11T12:23:56.0154302"}}"#;
        let e = ApiError::parse(400, None, body.as_bytes());
        assert_eq!(e.exceptions[0].code, ExceptionCode::Unknown(12345));
        assert_eq!(e.exceptions[0].description.as_deref(), Some("Opis błędu."));
    }

    #[test]
    fn problem_details_400() {
        let body = r#"{"title": "Bad Request", "status": 400, "instance": "/sessions/batch", "detail": "Żądanie jest nieprawidłowe.", "errors": [{"code": 21405, "description": "Błąd walidacji danych wejściowych.", "details": ["Wskazany kod formularza nie jest wspierany."]}, {"code": 21157, "description": "Nieprawidłowy rozmiar części pakietu.", "details": ["Rozmiar części 1 przekroczył dozwolony rozmiar 100MB."]}], "timestamp": "2025-07-11T12:23:56.0154302+00:00", "traceId": "673843e023c432286660bc0501a3af44"}"#;
        let e = ApiError::parse(400, None, body.as_bytes());
        assert_eq!(e.format, ErrorFormat::ProblemDetails);
        assert_eq!(
            e.codes().collect::<Vec<_>>(),
            vec![
                ExceptionCode::ValidationFailed,
                ExceptionCode::InvalidPartSize
            ]
        );
        assert_eq!(
            e.trace_id.as_deref(),
            Some("673843e023c432286660bc0501a3af44")
        );
        assert_eq!(e.title.as_deref(), Some("Bad Request"));
        assert!(e.has_code(ExceptionCode::InvalidPartSize));
    }

    #[test]
    fn problem_details_401_410_429() {
        let body = r#"{"title": "Unauthorized", "status": 401, "detail": "Wymagane jest uwierzytelnienie.", "instance": "/x", "traceId": "abc", "timestamp": "2025-07-11T12:23:56.0154302+00:00"}"#;
        let e = ApiError::parse(401, None, body.as_bytes());
        assert_eq!(e.format, ErrorFormat::ProblemDetails);
        assert_eq!(e.detail.as_deref(), Some("Wymagane jest uwierzytelnienie."));
        assert!(e.to_string().contains("refresh the access token"));

        let body = r#"{"title": "Gone", "status": 410, "instance": "/auth/x", "detail": "Status wygasł.", "timestamp": "2025-07-11T12:23:56Z", "traceId": "t"}"#;
        let e = ApiError::parse(410, None, body.as_bytes());
        assert_eq!(e.format, ErrorFormat::ProblemDetails);
        assert!(e.to_string().contains("retention"));

        let body = r#"{"title": "Too Many Requests", "status": 429, "instance": "/x", "detail": "Przekroczono limit 20 żądań na minutę. Spróbuj ponownie po 30 sekundach.", "timestamp": "2025-07-11T12:23:56Z", "traceId": "t"}"#;
        let e = ApiError::parse(429, Some(Duration::from_secs(30)), body.as_bytes());
        assert_eq!(e.retry_after, Some(Duration::from_secs(30)));
        assert!(e.to_string().contains("retry after 30s"));
    }

    #[test]
    fn problem_details_403_missing_permissions() {
        let body = r#"{"title": "Forbidden", "status": 403, "detail": "Brak wymaganych uprawnień do wykonania operacji w bieżącym kontekście.", "instance": "/x", "reasonCode": "missing-permissions", "security": {"requiredAnyOfPermissions": ["InvoiceRead", "InvoiceWrite"], "presentPermissions": ["CredentialsRead"]}, "traceId": "673843e023c432286660bc0501a3af44", "timestamp": "2025-07-11T12:23:56.0154302+00:00"}"#;
        let e = ApiError::parse(403, None, body.as_bytes());
        assert_eq!(e.reason, Some(ForbiddenReason::MissingPermissions));
        assert_eq!(
            e.required_any_of_permissions,
            vec!["InvoiceRead", "InvoiceWrite"]
        );
        assert_eq!(e.present_permissions, vec!["CredentialsRead"]);
        let s = e.to_string();
        assert!(
            s.contains("requires any of [InvoiceRead, InvoiceWrite]"),
            "{s}"
        );

        let body = r#"{"title":"Forbidden","status":403,"detail":"x","reasonCode":"something-new","security":{"clientIp":"1.2.3.4"},"timestamp":"2025-07-11T12:23:56Z"}"#;
        let e = ApiError::parse(403, None, body.as_bytes());
        assert_eq!(
            e.reason,
            Some(ForbiddenReason::Unknown("something-new".into()))
        );
        assert!(e.required_any_of_permissions.is_empty());
    }

    #[test]
    fn legacy_429_status_body() {
        let body = r#"{"status": {"code": 429, "description": "Too Many Requests", "details": ["Przekroczono limit 20 żądań na minutę. Spróbuj ponownie po 30 sekundach."]}}"#;
        let e = ApiError::parse(429, Some(Duration::from_secs(30)), body.as_bytes());
        assert_eq!(e.format, ErrorFormat::LegacyStatus);
        assert_eq!(e.title.as_deref(), Some("Too Many Requests"));
        assert!(e.detail.as_deref().unwrap_or("").contains("30 sekundach"));
    }

    #[test]
    fn garbage_bodies_are_kept_raw() {
        let html = b"<html><body><h1>502 Bad Gateway</h1></body></html>";
        let e = ApiError::parse(502, None, html);
        assert_eq!(e.format, ErrorFormat::Unrecognised);
        assert_eq!(
            e.raw_body.as_deref(),
            Some("<html><body><h1>502 Bad Gateway</h1></body></html>")
        );
        assert!(e.to_string().contains("502 Bad Gateway"));

        let e = ApiError::parse(500, None, b"");
        assert!(e.raw_body.is_none());
        assert!(e.to_string().contains("HTTP 500"));

        for junk in [
            &b"{"[..],
            b"null",
            b"[]",
            b"42",
            b"{\"foo\":1}",
            b"{\"status\":\"oops\"}",
            &[0xff, 0xfe, 0x00],
        ] {
            let e = ApiError::parse(400, None, junk);
            assert_eq!(e.format, ErrorFormat::Unrecognised, "{junk:?}");
            assert!(e.raw_body.is_some());
        }
        let big = vec![b'x'; 10_000];
        let e = ApiError::parse(503, None, &big);
        assert_eq!(e.raw_body.map(|s| s.len()), Some(RAW_BODY_LIMIT));

        // Wrong types inside a recognised shape: still no panic, kept raw.
        let e = ApiError::parse(
            400,
            None,
            br#"{"exception":{"exceptionDetailList":"nope"}}"#,
        );
        assert_eq!(e.format, ErrorFormat::Unrecognised);
    }

    #[test]
    fn retry_after_formats() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 UTC
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn error_accessors() {
        let api = ApiError::parse(
            400,
            None,
            br#"{"exception":{"exceptionDetailList":[{"exceptionCode":21470}]}}"#,
        );
        let e = Error::Api {
            operation: "open_online_session",
            api: Box::new(api),
        };
        assert_eq!(e.status(), Some(400));
        assert!(e.has_code(ExceptionCode::UnknownPublicKey));
        assert!(!e.is_retryable());
        assert!(
            e.to_string()
                .starts_with("open_online_session: HTTP 400; KSeF 21470")
        );
        assert!(e.to_string().contains("fetch the MF public keys again"));
        assert!(Error::Timeout { operation: "x" }.is_retryable());
        let redeem = Error::RedeemOutcomeUnknown {
            operation: "redeem_tokens",
            cause: Box::new(Error::Timeout {
                operation: "redeem_tokens",
            }),
        };
        assert!(!redeem.is_retryable());
        assert!(redeem.to_string().contains("isTokenRedeemed"));
    }
}
