//! The transport: configuration, the request pipeline (pacing → send → retry) and responses.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use tracing::Instrument;
use url::Url;

use crate::clock::{Clock, TokioClock};
use crate::error::{ApiError, Error, Result, parse_retry_after};
use crate::pacing::{Limits, Pacer};
use crate::retry::{Attempt, Decision, Outcome, RetryClass, RetryPolicy, jitter};
use crate::warnings::{SystemWarning, parse_system_warnings};

/// `X-Error-Format`: asks KSeF for problem details on 400 and 429 too.
pub(crate) const X_ERROR_FORMAT: HeaderName = HeaderName::from_static("x-error-format");
/// The continuation token request header.
pub(crate) const X_CONTINUATION_TOKEN: HeaderName = HeaderName::from_static("x-continuation-token");
/// Warnings on success responses.
pub(crate) const X_SYSTEM_WARNING: HeaderName = HeaderName::from_static("x-system-warning");
/// Base64 SHA-256 of downloaded content.
pub(crate) const X_MS_META_HASH: HeaderName = HeaderName::from_static("x-ms-meta-hash");

/// The HTTP methods KSeF uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
}

impl HttpMethod {
    /// The method as `http::Method`.
    pub fn to_http(self) -> Method {
        match self {
            Self::Get => Method::GET,
            Self::Post => Method::POST,
            Self::Put => Method::PUT,
            Self::Delete => Method::DELETE,
        }
    }

    /// Upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }
}

/// Static facts about one KSeF operation, as the pipeline needs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Operation name (snake_case, as in `xtask/operations.tsv`), used in errors and tracing.
    pub name: &'static str,
    /// HTTP method.
    pub method: HttpMethod,
    /// Path template relative to the API base, e.g. `/sessions/{referenceNumber}`.
    pub path: &'static str,
    /// The one success status the spec defines.
    pub success_status: u16,
    /// Rate-limit key (group name, or the operation name for `other` endpoints) and limits.
    pub rate_limit: Option<(&'static str, Limits)>,
    /// Whether and how the call may be repeated.
    pub retry_class: RetryClass,
}

impl Endpoint {
    /// The endpoint of a catalogue operation.
    pub fn from_operation(op: &'static ksef_model::operations::Operation) -> Self {
        use ksef_model::operations::{Method as M, RateLimitGroup as G};
        let method = match op.method {
            M::Get => HttpMethod::Get,
            M::Post => HttpMethod::Post,
            M::Put => HttpMethod::Put,
            M::Delete => HttpMethod::Delete,
        };
        // `other` endpoints each have their own counter: key them by operation name.
        let key = match op.rate_limit.group {
            G::Public => "public",
            G::OnlineSession => "onlineSession",
            G::BatchSession => "batchSession",
            G::InvoiceSend => "invoiceSend",
            G::InvoiceStatus => "invoiceStatus",
            G::SessionList => "sessionList",
            G::SessionInvoiceList => "sessionInvoiceList",
            G::SessionMisc => "sessionMisc",
            G::InvoiceMetadata => "invoiceMetadata",
            G::InvoiceExport => "invoiceExport",
            G::InvoiceExportStatus => "invoiceExportStatus",
            G::InvoiceDownload => "invoiceDownload",
            G::CollectiveIdentifier => "collectiveIdentifier",
            _ => op.name,
        };
        let limits = Limits {
            per_second: op.rate_limit.per_second,
            per_minute: op.rate_limit.per_minute,
            per_hour: op.rate_limit.per_hour,
        };
        let limited =
            limits.per_second.is_some() || limits.per_minute.is_some() || limits.per_hour.is_some();
        Endpoint {
            name: op.name,
            method,
            path: op.path,
            success_status: op.success_status,
            rate_limit: limited.then_some((key, limits)),
            retry_class: crate::retry::retry_class(method.as_str(), op.path),
        }
    }
}

/// A successful response: the value and any `X-System-Warning`s that came with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Response<T> {
    /// The decoded body.
    pub value: T,
    /// Warnings from `X-System-Warning` (also logged at WARN).
    pub warnings: Vec<SystemWarning>,
}

impl<T> Response<T> {
    /// The value, dropping warnings.
    pub fn into_value(self) -> T {
        self.value
    }

    /// Maps the value, keeping warnings.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            value: f(self.value),
            warnings: self.warnings,
        }
    }
}

impl<T> std::ops::Deref for Response<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// An XML document returned by KSeF (invoice or UPO), exactly as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlDocument {
    /// The bytes as received (hash them, do not re-serialise).
    pub bytes: Bytes,
    /// `x-ms-meta-hash` (Base64 SHA-256), already checked against `bytes` when present.
    pub hash: Option<String>,
}

/// Request body of one call.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    None,
    Json(Bytes),
    Xml(Bytes),
}

/// One call, ready for the pipeline.
pub(crate) struct Call<'a> {
    pub endpoint: Endpoint,
    /// Path parameter values, in template order.
    pub path_params: &'a [&'a str],
    pub query: Vec<(&'static str, String)>,
    pub bearer: Option<HeaderValue>,
    pub continuation_token: Option<&'a str>,
    pub body: Body,
}

/// A raw success response.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub warnings: Vec<SystemWarning>,
}

/// Builder of a [`Transport`].
#[derive(Debug)]
pub struct TransportBuilder {
    base_url: std::result::Result<Url, String>,
    client: Option<reqwest::Client>,
    timeout: Duration,
    transfer_timeout: Duration,
    connect_timeout: Duration,
    user_agent_suffix: Option<String>,
    retry: RetryPolicy,
    pacing: bool,
    clock: Option<Arc<dyn Clock>>,
    extra_roots: Vec<Vec<u8>>,
}

impl TransportBuilder {
    fn new(base_url: std::result::Result<Url, String>, pacing: bool) -> Self {
        Self {
            base_url,
            client: None,
            timeout: Duration::from_secs(30),
            transfer_timeout: Duration::from_secs(30 * 60),
            connect_timeout: Duration::from_secs(10),
            user_agent_suffix: None,
            retry: RetryPolicy::default(),
            pacing,
            clock: None,
            extra_roots: Vec::new(),
        }
    }

    /// Timeout of one ordinary API call (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout of one presigned upload or download (default 30 min).
    pub fn transfer_timeout(mut self, timeout: Duration) -> Self {
        self.transfer_timeout = timeout;
        self
    }

    /// Connect timeout of the built-in client (default 10 s; ignored with [`Self::client`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Appended to `User-Agent: ksef-rs/<version>`, e.g. your product and version.
    pub fn user_agent_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.user_agent_suffix = Some(suffix.into());
        self
    }

    /// Uses this `reqwest::Client` (custom roots, proxies, …) instead of the built-in one.
    /// The transport still sets its own headers and per-request timeouts.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Also trusts the certificates of this PEM bundle as TLS roots (beside the system's), e.g.
    /// a private CA or the self-signed certificate of `ksef sim serve --tls`. Checked when
    /// [`Self::build`] runs (an error if it holds no certificate); ignored with [`Self::client`],
    /// whose roots are yours to set.
    pub fn add_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_roots.push(pem.into());
        self
    }

    /// Retry policy (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Turns proactive client-side pacing on or off (see [`crate::pacing`]).
    pub fn pacing(mut self, on: bool) -> Self {
        self.pacing = on;
        self
    }

    /// The clock for retry sleeps and pacing (tests use [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the transport.
    pub fn build(self) -> Result<Transport> {
        let op = "build";
        let mut base = self.base_url.map_err(|message| Error::Request {
            operation: op,
            message,
        })?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Request {
                operation: op,
                message: format!("base URL {base} is not an http(s) URL"),
            });
        }
        base.set_query(None);
        base.set_fragment(None);
        let mut ua = format!("ksef-rs/{}", env!("CARGO_PKG_VERSION"));
        if let Some(suffix) = &self.user_agent_suffix {
            ua.push(' ');
            ua.push_str(suffix);
        }
        let user_agent = HeaderValue::try_from(ua).map_err(|_| Error::Request {
            operation: op,
            message: "the User-Agent suffix holds characters not allowed in a header".into(),
        })?;
        let http = match self.client {
            Some(c) => c,
            None => {
                let mut roots = Vec::new();
                for pem in &self.extra_roots {
                    let certs = reqwest::Certificate::from_pem_bundle(pem)
                        .ok()
                        .filter(|c| !c.is_empty())
                        .ok_or_else(|| Error::Request {
                            operation: op,
                            message: "a root certificate to trust is not a PEM certificate \
                                      (expected -----BEGIN CERTIFICATE-----)"
                                .into(),
                        })?;
                    roots.extend(certs);
                }
                reqwest::Client::builder()
                    .connect_timeout(self.connect_timeout)
                    .pool_idle_timeout(Duration::from_secs(90))
                    .tcp_keepalive(Duration::from_secs(60))
                    .tls_certs_merge(roots)
                    .build()
                    .map_err(|e| Error::from_reqwest(op, e))?
            }
        };
        let clock = self.clock.unwrap_or_else(|| Arc::new(TokioClock::new()));
        let pacer = self.pacing.then(|| Pacer::new(clock.clone()));
        Ok(Transport {
            inner: Arc::new(Inner {
                http,
                base,
                timeout: self.timeout,
                transfer_timeout: self.transfer_timeout,
                user_agent,
                retry: self.retry,
                pacer,
                clock,
            }),
        })
    }
}

/// The KSeF HTTP transport: one typed async method per API operation (see the crate docs).
/// Cheap to clone; clones share the connection pool and the pacer.
#[derive(Clone, Debug)]
pub struct Transport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
    transfer_timeout: Duration,
    user_agent: HeaderValue,
    retry: RetryPolicy,
    pacer: Option<Pacer>,
    clock: Arc<dyn Clock>,
}

impl Transport {
    /// A builder for a KSeF environment. Pacing is **on** for Test, Demo and Production (KSeF
    /// escalates penalties for clients that keep hitting 429) and off for a custom URL.
    pub fn builder(environment: &ksef_model::environment::Environment) -> TransportBuilder {
        use ksef_model::environment::Environment as E;
        let pacing = matches!(environment, E::Test | E::Demo | E::Production);
        let base = environment.api_base_url();
        TransportBuilder::new(
            Url::parse(base).map_err(|e| format!("invalid base URL {base:?}: {e}")),
            pacing,
        )
    }

    /// A transport for a KSeF environment with default settings.
    pub fn new(environment: &ksef_model::environment::Environment) -> Result<Self> {
        Self::builder(environment).build()
    }

    /// A builder for any base URL (e.g. a local simulator: `http://127.0.0.1:8080/v2`).
    /// Pacing is **off** by default for a custom URL.
    pub fn builder_for_url(base_url: &str) -> TransportBuilder {
        TransportBuilder::new(
            Url::parse(base_url).map_err(|e| format!("invalid base URL {base_url:?}: {e}")),
            false,
        )
    }

    /// A transport for any base URL with default settings.
    pub fn for_url(base_url: &str) -> Result<Self> {
        Self::builder_for_url(base_url).build()
    }

    /// The API base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn transfer_timeout(&self) -> Duration {
        self.inner.transfer_timeout
    }

    pub(crate) fn user_agent(&self) -> &HeaderValue {
        &self.inner.user_agent
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Builds the URL of a call: template segments pushed one by one, so values are
    /// percent-encoded as path segments; query pairs appended in order (arrays repeated).
    pub(crate) fn url(
        &self,
        endpoint: &Endpoint,
        params: &[&str],
        query: &[(&'static str, String)],
    ) -> Result<Url> {
        let mut url = self.inner.base.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| Error::Request {
                operation: endpoint.name,
                message: "base URL cannot have a path".into(),
            })?;
            segments.pop_if_empty();
            let mut values = params.iter();
            for segment in endpoint.path.split('/').filter(|s| !s.is_empty()) {
                if segment.starts_with('{') && segment.ends_with('}') {
                    let value = values.next().ok_or_else(|| Error::Request {
                        operation: endpoint.name,
                        message: format!("missing path parameter {segment}"),
                    })?;
                    if value.is_empty() || *value == "." || *value == ".." {
                        return Err(Error::Request {
                            operation: endpoint.name,
                            message: format!("path parameter {segment} is empty, '.' or '..'"),
                        });
                    }
                    segments.push(value);
                } else {
                    segments.push(segment);
                }
            }
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Runs one call through pacing, sending, error parsing and retries.
    pub(crate) async fn execute(&self, call: Call<'_>) -> Result<RawResponse> {
        let endpoint = call.endpoint;
        let url = self.url(&endpoint, call.path_params, &call.query)?;
        let span = tracing::info_span!(
            "ksef_call",
            operation = endpoint.name,
            method = endpoint.method.as_str(),
            reference = %call.path_params.join(","),
            status = tracing::field::Empty,
            attempt = tracing::field::Empty,
        );
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, self.inner.user_agent.clone());
        headers.insert(X_ERROR_FORMAT, HeaderValue::from_static("problem-details"));
        if let Some(bearer) = call.bearer {
            headers.insert(http::header::AUTHORIZATION, bearer);
        }
        if let Some(token) = call.continuation_token {
            let mut value = HeaderValue::try_from(token).map_err(|_| Error::Request {
                operation: endpoint.name,
                message: "the continuation token holds characters not allowed in a header".into(),
            })?;
            value.set_sensitive(true);
            headers.insert(X_CONTINUATION_TOKEN, value);
        }
        let body = match call.body {
            Body::None => None,
            Body::Json(b) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Some(b)
            }
            Body::Xml(b) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
                Some(b)
            }
        };
        self.run(endpoint, url, headers, body, &span)
            .instrument(span.clone())
            .await
    }

    async fn run(
        &self,
        endpoint: Endpoint,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
        span: &tracing::Span,
    ) -> Result<RawResponse> {
        let inner = &*self.inner;
        let mut attempt = Attempt {
            number: 1,
            rate_limit_waited: Duration::ZERO,
            jitter: 0.0,
        };
        loop {
            if let (Some(pacer), Some((key, limits))) = (&inner.pacer, &endpoint.rate_limit) {
                let wait = pacer.reserve(key, limits);
                if !wait.is_zero() {
                    tracing::debug!(wait_ms = wait.as_millis() as u64, key, "pacing");
                    inner.clock.sleep(wait).await;
                }
            }
            span.record("attempt", attempt.number);
            let mut request = inner
                .http
                .request(endpoint.method.to_http(), url.clone())
                .headers(headers.clone())
                .timeout(inner.timeout);
            if let Some(b) = &body {
                request = request.body(b.clone());
            }
            let (outcome, error) = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    span.record("status", status);
                    let response_headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(bytes) if (200..300).contains(&status) => {
                            if status != endpoint.success_status {
                                return Err(Error::UnexpectedStatus {
                                    operation: endpoint.name,
                                    expected: endpoint.success_status,
                                    actual: status,
                                });
                            }
                            let warnings = warnings_of(&response_headers);
                            return Ok(RawResponse {
                                headers: response_headers,
                                body: bytes,
                                warnings,
                            });
                        }
                        Ok(bytes) => {
                            let retry_after = response_headers
                                .get(RETRY_AFTER)
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| parse_retry_after(v, inner.clock.wall()));
                            let api = ApiError::parse(status, retry_after, &bytes);
                            (
                                Outcome::Status {
                                    status,
                                    retry_after,
                                },
                                Error::Api {
                                    operation: endpoint.name,
                                    api: Box::new(api),
                                },
                            )
                        }
                        Err(e) => (Outcome::Transport, Error::from_reqwest(endpoint.name, e)),
                    }
                }
                Err(e) => {
                    let error = Error::from_reqwest(endpoint.name, e);
                    let outcome = match error {
                        Error::Timeout { .. } => Outcome::Timeout,
                        Error::Connect { .. } | Error::Tls { .. } => Outcome::Connect,
                        _ => Outcome::Transport,
                    };
                    (outcome, error)
                }
            };
            attempt.jitter = jitter();
            match inner.retry.decide(endpoint.retry_class, &outcome, &attempt) {
                Decision::Stop => return Err(final_error(endpoint, outcome, error)),
                Decision::RetryAfter(wait) => {
                    tracing::warn!(
                        attempt = attempt.number,
                        wait_ms = wait.as_millis() as u64,
                        error = %error,
                        "retrying"
                    );
                    if matches!(outcome, Outcome::Status { status: 429, .. }) {
                        attempt.rate_limit_waited += wait;
                    }
                    inner.clock.sleep(wait).await;
                    attempt.number += 1;
                }
            }
        }
    }
}

/// Turns the last error into what the caller sees: 429 → `RateLimited`, an ambiguous redeem
/// failure → `RedeemOutcomeUnknown`.
fn final_error(endpoint: Endpoint, outcome: Outcome, error: Error) -> Error {
    match (outcome, error) {
        (
            Outcome::Status {
                status: 429,
                retry_after,
            },
            Error::Api { api, .. },
        ) => Error::RateLimited {
            operation: endpoint.name,
            retry_after,
            api,
        },
        (Outcome::Timeout | Outcome::Transport, error)
            if endpoint.retry_class == RetryClass::RedeemOnce =>
        {
            Error::RedeemOutcomeUnknown {
                operation: endpoint.name,
                cause: Box::new(error),
            }
        }
        (
            Outcome::Status {
                status: 500..=599, ..
            },
            error,
        ) if endpoint.retry_class == RetryClass::RedeemOnce => Error::RedeemOutcomeUnknown {
            operation: endpoint.name,
            cause: Box::new(error),
        },
        (_, error) => error,
    }
}

pub(crate) fn warnings_of(headers: &HeaderMap) -> Vec<SystemWarning> {
    let mut warnings = Vec::new();
    for value in headers.get_all(X_SYSTEM_WARNING) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for w in parse_system_warnings(&text) {
            tracing::warn!(code = %w.code, message = %w.message, "KSeF system warning");
            warnings.push(w);
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(path: &'static str) -> Endpoint {
        Endpoint {
            name: "t",
            method: HttpMethod::Get,
            path,
            success_status: 200,
            rate_limit: None,
            retry_class: RetryClass::Idempotent,
        }
    }

    #[test]
    fn extra_root_certificates_must_be_pem_certificates() {
        let pem = include_str!("../../../fixtures/xades/ksef2-ec-seal.cert.pem");
        Transport::builder_for_url("https://127.0.0.1:1/v2")
            .add_root_certificate_pem(pem)
            .build()
            .unwrap();
        for bad in [
            "",
            "not a certificate",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let e = Transport::builder_for_url("https://127.0.0.1:1/v2")
                .add_root_certificate_pem(bad)
                .build()
                .unwrap_err();
            assert!(
                e.to_string().contains("not a PEM certificate"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn urls_are_percent_encoded() {
        let t = Transport::for_url("https://api-test.ksef.mf.gov.pl/v2/").unwrap();
        let u = t
            .url(
                &ep("/sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}"),
                &["a/b c", "x?y#z%"],
                &[],
            )
            .unwrap();
        assert_eq!(
            u.as_str(),
            "https://api-test.ksef.mf.gov.pl/v2/sessions/a%2Fb%20c/invoices/x%3Fy%23z%25"
        );
        let u = t
            .url(
                &ep("/sessions"),
                &[],
                &[
                    ("statuses", "InProgress".into()),
                    ("statuses", "Succeeded".into()),
                    ("a", "b&c".into()),
                ],
            )
            .unwrap();
        assert_eq!(
            u.as_str(),
            "https://api-test.ksef.mf.gov.pl/v2/sessions?statuses=InProgress&statuses=Succeeded&a=b%26c"
        );
        let t = Transport::for_url("http://127.0.0.1:1/v2").unwrap();
        assert_eq!(
            t.url(&ep("/auth/challenge"), &[], &[]).unwrap().as_str(),
            "http://127.0.0.1:1/v2/auth/challenge"
        );
        assert!(t.url(&ep("/tokens/{referenceNumber}"), &[], &[]).is_err());
        assert!(t.url(&ep("/tokens/{referenceNumber}"), &[""], &[]).is_err());
        assert!(
            t.url(&ep("/tokens/{referenceNumber}"), &[".."], &[])
                .is_err()
        );
    }

    #[test]
    fn environments() {
        use ksef_model::environment::Environment;
        let t = Transport::new(&Environment::Test).unwrap();
        assert_eq!(t.base_url().as_str(), "https://api-test.ksef.mf.gov.pl/v2");
        assert!(t.inner.pacer.is_some(), "pacing on for real environments");
        let t = Transport::new(&Environment::custom("http://127.0.0.1:9/v2/", "http://q")).unwrap();
        assert!(t.inner.pacer.is_none(), "pacing off for custom URLs");
        let t = Transport::builder(&Environment::Production)
            .pacing(false)
            .build()
            .unwrap();
        assert!(t.inner.pacer.is_none());
        assert_eq!(
            t.user_agent().to_str().unwrap(),
            concat!("ksef-rs/", env!("CARGO_PKG_VERSION"))
        );
        let t = Transport::builder(&Environment::Demo)
            .user_agent_suffix("acme-erp/2.1")
            .build()
            .unwrap();
        assert_eq!(
            t.user_agent().to_str().unwrap(),
            concat!("ksef-rs/", env!("CARGO_PKG_VERSION"), " acme-erp/2.1")
        );
    }

    #[test]
    fn bad_base_urls_are_errors() {
        assert!(Transport::for_url("not a url").is_err());
        assert!(Transport::for_url("mailto:x@y").is_err());
        assert!(Transport::for_url("ftp://x/v2").is_err());
        let e = Transport::builder_for_url("http://x/v2")
            .user_agent_suffix("bad\nua")
            .build();
        assert!(e.is_err());
    }

    #[test]
    fn transport_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Transport>();
    }
}
