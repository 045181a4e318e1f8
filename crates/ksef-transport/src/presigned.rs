//! Presigned storage URLs: batch part uploads, export part and UPO downloads.
//!
//! These URLs point at KSeF's blob storage, not at the API: they carry their own signature, so
//! the transport sends **no `Authorization` header**, uses exactly the method, URL and headers
//! KSeF returned, never logs the URL (its query is a credential), is not paced (storage is not
//! rate-limited) and uses the long transfer timeout.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{
    CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tracing::Instrument;
use url::Url;

use crate::error::{ApiError, Error, Result, parse_retry_after};
use crate::retry::{Attempt, Decision, Outcome, RetryClass, jitter};
use crate::transport::{Transport, X_MS_META_HASH};

const UPLOAD: &str = "upload_batch_part";
const DOWNLOAD: &str = "download";

/// Where and how to upload one batch part, exactly as KSeF returned it in
/// `partUploadRequests[]` of `POST /sessions/batch`.
#[derive(Clone)]
pub struct PresignedUpload {
    /// HTTP method (KSeF returns `PUT`).
    pub method: String,
    /// The presigned URL. A credential: never logged.
    pub url: String,
    /// Headers to send verbatim (e.g. `x-ms-blob-type: BlockBlob`).
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for PresignedUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresignedUpload")
            .field("method", &self.method)
            .field("url", &redact_url(&self.url))
            .field("headers", &self.headers)
            .finish()
    }
}

impl From<&ksef_model::api::PartUploadRequest> for PresignedUpload {
    /// Takes `method`, `url` and `headers` of one `partUploadRequests[]` entry verbatim
    /// (headers whose value is `null` are not sent).
    fn from(r: &ksef_model::api::PartUploadRequest) -> Self {
        Self {
            method: r.method.clone(),
            url: r.url.clone(),
            headers: r
                .headers
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
                .collect(),
        }
    }
}

/// The URL without its query (which holds the signature), for messages.
fn redact_url(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?[REDACTED]"),
        None => url.to_owned(),
    }
}

/// What a streamed download delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadInfo {
    /// Bytes written.
    pub length: u64,
    /// Base64 SHA-256 of the bytes written.
    pub sha256: String,
    /// `x-ms-meta-hash` as the server announced it (already verified), if it did.
    pub announced_hash: Option<String>,
    /// `Content-Type` of the response, if any.
    pub content_type: Option<String>,
}

impl Transport {
    /// Uploads one batch part from memory. Returns once storage answered 2xx (KSeF documents 201).
    /// An upload from memory is repeated on 5xx, timeouts and connection failures (a blob PUT to
    /// the same URL replaces the same blob).
    pub async fn upload_part(&self, target: &PresignedUpload, body: Bytes) -> Result<()> {
        let mut attempt = Attempt {
            number: 1,
            rate_limit_waited: Duration::ZERO,
            jitter: 0.0,
        };
        loop {
            let len = body.len() as u64;
            let result = self
                .upload_once(target, reqwest::Body::from(body.clone()), len)
                .await;
            let outcome = match &result {
                Ok(()) => return Ok(()),
                Err(e) => outcome_of(e),
            };
            attempt.jitter = jitter();
            match self
                .retry_policy()
                .decide(RetryClass::Idempotent, &outcome, &attempt)
            {
                Decision::Stop => return result,
                Decision::RetryAfter(wait) => {
                    if matches!(outcome, Outcome::Status { status: 429, .. }) {
                        attempt.rate_limit_waited += wait;
                    }
                    self.clock().sleep(wait).await;
                    attempt.number += 1;
                }
            }
        }
    }

    /// Uploads one batch part streamed from `reader`, which must yield exactly `length` bytes
    /// (blob storage needs `Content-Length`). Not repeated on failure: the reader is consumed.
    pub async fn upload_part_from_reader<R>(
        &self,
        target: &PresignedUpload,
        reader: R,
        length: u64,
    ) -> Result<()>
    where
        R: AsyncRead + Send + 'static,
    {
        let stream = tokio_util::io::ReaderStream::new(reader);
        self.upload_once(target, reqwest::Body::wrap_stream(stream), length)
            .await
    }

    async fn upload_once(
        &self,
        target: &PresignedUpload,
        body: reqwest::Body,
        length: u64,
    ) -> Result<()> {
        let method =
            http::Method::from_bytes(target.method.as_bytes()).map_err(|_| Error::Request {
                operation: UPLOAD,
                message: format!("KSeF returned an invalid HTTP method {:?}", target.method),
            })?;
        let url = Url::parse(&target.url).map_err(|e| Error::Request {
            operation: UPLOAD,
            message: format!(
                "KSeF returned an invalid upload URL ({e}): {}",
                redact_url(&target.url)
            ),
        })?;
        let mut headers = HeaderMap::new();
        for (name, value) in &target.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::Request {
                operation: UPLOAD,
                message: format!("KSeF returned an invalid header name {name:?}"),
            })?;
            if name == http::header::AUTHORIZATION {
                // Never forward credentials to storage, even if asked to.
                continue;
            }
            let value = HeaderValue::from_str(value).map_err(|_| Error::Request {
                operation: UPLOAD,
                message: format!("KSeF returned an invalid value for header {name}"),
            })?;
            headers.append(name, value);
        }
        headers.insert(USER_AGENT, self.user_agent().clone());
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        let span = tracing::info_span!(
            "ksef_presigned",
            operation = UPLOAD,
            length,
            status = tracing::field::Empty
        );
        async {
            let response = self
                .http()
                .request(method, url)
                .headers(headers)
                .timeout(self.transfer_timeout())
                .body(body)
                .send()
                .await
                .map_err(|e| Error::from_reqwest(UPLOAD, e))?;
            let status = response.status().as_u16();
            span.record("status", status);
            if response.status().is_success() {
                return Ok(());
            }
            Err(self.api_error(UPLOAD, response).await)
        }
        .instrument(span.clone())
        .await
    }

    /// Downloads a presigned URL (export part, UPO) into memory, verifying `x-ms-meta-hash`
    /// when present and refusing non-binary answers (HTML or JSON pages).
    pub async fn download(&self, url: &str) -> Result<(Bytes, DownloadInfo)> {
        let mut buf = Vec::new();
        let info = self.download_to(url, &mut buf).await?;
        Ok((Bytes::from(buf), info))
    }

    /// Streams a presigned URL (export part, UPO) into `sink`, hashing as it goes. On
    /// [`Error::HashMismatch`] the sink already holds the corrupt bytes: discard them.
    /// Failures before the first byte are repeated like any GET.
    pub async fn download_to<W>(&self, url: &str, sink: &mut W) -> Result<DownloadInfo>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.download_checked(url, sink, None).await
    }

    /// Streams one export package part (`package.parts[i]` of the export status) into `sink`,
    /// verifying the SHA-256 of the *encrypted* part against `encryptedPartHash` (and
    /// `x-ms-meta-hash` when present). Decrypt each part on its own, then concatenate.
    pub async fn download_export_part<W>(
        &self,
        part: &ksef_model::api::InvoicePackagePart,
        sink: &mut W,
    ) -> Result<DownloadInfo>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let expected =
            base64::engine::general_purpose::STANDARD.encode(part.encrypted_part_hash.as_bytes());
        self.download_checked(&part.url, sink, Some(expected)).await
    }

    async fn download_checked<W>(
        &self,
        url: &str,
        sink: &mut W,
        expected_sha256: Option<String>,
    ) -> Result<DownloadInfo>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let parsed = Url::parse(url).map_err(|e| Error::Request {
            operation: DOWNLOAD,
            message: format!("invalid download URL ({e}): {}", redact_url(url)),
        })?;
        let span = tracing::info_span!(
            "ksef_presigned",
            operation = DOWNLOAD,
            status = tracing::field::Empty
        );
        async {
            let response = self.download_start(parsed, &span).await?;
            let announced_hash = response
                .headers()
                .get(X_MS_META_HASH)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_owned());
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut hasher = Sha256::new();
            let mut length = 0u64;
            let mut stream = response.bytes_stream();
            let mut first = true;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Error::from_reqwest(DOWNLOAD, e))?;
                if first && !chunk.is_empty() {
                    first = false;
                    check_binary(content_type.as_deref(), &chunk)?;
                }
                hasher.update(&chunk);
                length += chunk.len() as u64;
                sink.write_all(&chunk).await.map_err(|e| Error::Io {
                    operation: DOWNLOAD,
                    message: e.to_string(),
                })?;
            }
            sink.flush().await.map_err(|e| Error::Io {
                operation: DOWNLOAD,
                message: e.to_string(),
            })?;
            if first {
                check_binary(content_type.as_deref(), b"")?;
            }
            let sha256 = base64::engine::general_purpose::STANDARD.encode(hasher.finalize());
            for expected in announced_hash.iter().chain(expected_sha256.iter()) {
                if *expected != sha256 {
                    return Err(Error::HashMismatch {
                        operation: DOWNLOAD,
                        expected: expected.clone(),
                        actual: sha256,
                    });
                }
            }
            Ok(DownloadInfo {
                length,
                sha256,
                announced_hash,
                content_type,
            })
        }
        .instrument(span.clone())
        .await
    }

    async fn download_start(&self, url: Url, span: &tracing::Span) -> Result<reqwest::Response> {
        let mut attempt = Attempt {
            number: 1,
            rate_limit_waited: Duration::ZERO,
            jitter: 0.0,
        };
        loop {
            let result = self
                .http()
                .get(url.clone())
                .header(USER_AGENT, self.user_agent().clone())
                .timeout(self.transfer_timeout())
                .send()
                .await;
            let error = match result {
                Ok(response) if response.status().is_success() => {
                    span.record("status", response.status().as_u16());
                    return Ok(response);
                }
                Ok(response) => {
                    span.record("status", response.status().as_u16());
                    self.api_error(DOWNLOAD, response).await
                }
                Err(e) => Error::from_reqwest(DOWNLOAD, e),
            };
            attempt.jitter = jitter();
            let outcome = outcome_of(&error);
            match self
                .retry_policy()
                .decide(RetryClass::Idempotent, &outcome, &attempt)
            {
                Decision::Stop => return Err(error),
                Decision::RetryAfter(wait) => {
                    if matches!(outcome, Outcome::Status { status: 429, .. }) {
                        attempt.rate_limit_waited += wait;
                    }
                    self.clock().sleep(wait).await;
                    attempt.number += 1;
                }
            }
        }
    }

    async fn api_error(&self, operation: &'static str, response: reqwest::Response) -> Error {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, self.clock().wall()));
        let body = response.bytes().await.unwrap_or_default();
        Error::Api {
            operation,
            api: Box::new(ApiError::parse(status, retry_after, &body)),
        }
    }
}

fn outcome_of(error: &Error) -> Outcome {
    match error {
        Error::Api { api, .. } => Outcome::Status {
            status: api.status,
            retry_after: api.retry_after,
        },
        Error::Timeout { .. } => Outcome::Timeout,
        Error::Connect { .. } | Error::Tls { .. } => Outcome::Connect,
        Error::Transport { .. } => Outcome::Transport,
        // Anything else is not worth repeating: report it as a final 4xx-like outcome.
        _ => Outcome::Status {
            status: 400,
            retry_after: None,
        },
    }
}

/// Refuses bodies that are clearly not the binary or XML content asked for.
fn check_binary(content_type: Option<&str>, first_chunk: &[u8]) -> Result<()> {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let mime = ct.split(';').next().unwrap_or("").trim();
    let refused_type = mime == "text/html"
        || mime == "application/xhtml+xml"
        || mime == "text/plain"
        || mime == "application/json"
        || mime.ends_with("+json");
    let head: Vec<u8> = first_chunk
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(64)
        .map(u8::to_ascii_lowercase)
        .collect();
    let looks_html = head.starts_with(b"<!doctype html") || head.starts_with(b"<html");
    if refused_type || looks_html {
        let body_start: String =
            String::from_utf8_lossy(&first_chunk[..first_chunk.len().min(200)]).into_owned();
        return Err(Error::NotBinary {
            operation: DOWNLOAD,
            content_type: if mime.is_empty() {
                "no Content-Type".into()
            } else {
                mime.to_owned()
            },
            body_start,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_check() {
        assert!(check_binary(Some("application/octet-stream"), b"\x00\x01").is_ok());
        assert!(
            check_binary(
                Some("application/xml"),
                b"<?xml version=\"1.0\"?><Potwierdzenie/>"
            )
            .is_ok()
        );
        assert!(check_binary(None, b"PK\x03\x04").is_ok());
        assert!(check_binary(Some("text/html; charset=utf-8"), b"<html>").is_err());
        assert!(check_binary(Some("application/problem+json"), b"{}").is_err());
        assert!(
            check_binary(Some("application/octet-stream"), b"  <!DOCTYPE HTML><html>").is_err()
        );
        assert!(check_binary(None, b"<HTML><body>").is_err());
    }

    #[test]
    fn upload_target_from_model() {
        let r: ksef_model::api::PartUploadRequest = serde_json::from_value(serde_json::json!({
            "ordinalNumber": 1,
            "method": "PUT",
            "url": "https://ksef-test.mf.gov.pl/storage/00/x/batch-parts/1?skoid=1&sig=abc",
            "headers": {"x-ms-blob-type": "BlockBlob", "x-ms-null": null}
        }))
        .unwrap();
        let u = PresignedUpload::from(&r);
        assert_eq!(u.method, "PUT");
        assert_eq!(u.url, r.url);
        assert_eq!(
            u.headers,
            vec![("x-ms-blob-type".to_owned(), "BlockBlob".to_owned())]
        );
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("https://h/p?sv=1&sig=SECRET"),
            "https://h/p?[REDACTED]"
        );
        let u = PresignedUpload {
            method: "PUT".into(),
            url: "https://h/p?sig=SECRET".into(),
            headers: vec![],
        };
        assert!(!format!("{u:?}").contains("SECRET"));
    }
}
