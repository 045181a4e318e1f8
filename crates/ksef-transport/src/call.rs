//! Typed helpers the per-operation methods are built from, and the public raw escape hatch.

use base64::Engine as _;
use bytes::Bytes;
use http::HeaderValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::transport::{
    Body, Call, Endpoint, RawResponse, Response, Transport, X_MS_META_HASH, XmlDocument,
};

/// A request body for [`Transport::call`].
#[derive(Clone, Debug)]
pub enum RequestBody<'a, T: Serialize + ?Sized = ()> {
    /// No body.
    None,
    /// A JSON body serialised from this value.
    Json(&'a T),
    /// An XML body sent as these exact bytes.
    Xml(Bytes),
    /// A JSON body already serialised by the caller, sent as these exact bytes (not parsed or
    /// checked here: a body that is not JSON is the server's to refuse).
    JsonBytes(Bytes),
}

/// The expected kind of a response body.
pub(crate) fn json_body<T: Serialize + ?Sized>(operation: &'static str, value: &T) -> Result<Body> {
    serde_json::to_vec(value)
        .map(|v| Body::Json(Bytes::from(v)))
        .map_err(|e| Error::Request {
            operation,
            message: format!("could not serialise the body: {e}"),
        })
}

/// Turns a token's header value into the header or an error that does not echo the token.
pub(crate) fn bearer(
    operation: &'static str,
    value: Option<HeaderValue>,
) -> Result<Option<HeaderValue>> {
    value.map(Some).ok_or(Error::Request {
        operation,
        message: "the token holds characters not allowed in an HTTP header".into(),
    })
}

pub(crate) fn decode_json<T: DeserializeOwned>(
    operation: &'static str,
    raw: RawResponse,
) -> Result<Response<T>> {
    let value = serde_json::from_slice(&raw.body).map_err(|e| Error::Decode {
        operation,
        message: e.to_string(),
    })?;
    Ok(Response {
        value,
        warnings: raw.warnings,
    })
}

pub(crate) fn empty(raw: RawResponse) -> Response<()> {
    Response {
        value: (),
        warnings: raw.warnings,
    }
}

pub(crate) fn xml(operation: &'static str, raw: RawResponse) -> Result<Response<XmlDocument>> {
    let hash = raw
        .headers
        .get(X_MS_META_HASH)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned());
    if let Some(expected) = &hash {
        let actual = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&raw.body));
        if *expected != actual {
            return Err(Error::HashMismatch {
                operation,
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(Response {
        value: XmlDocument {
            bytes: raw.body,
            hash,
        },
        warnings: raw.warnings,
    })
}

impl Transport {
    /// The raw escape hatch: calls any endpoint (e.g. one added to KSeF after this release)
    /// through the same pipeline — headers, pacing, retries, error parsing — and returns the
    /// body bytes. `path_params` fill the `{…}` of `endpoint.path` in order; `bearer` is any
    /// token's `Authorization` value, built with [`AccessToken`](crate::AccessToken) and friends
    /// via [`Transport::bearer_of`].
    pub async fn call<T: Serialize + ?Sized>(
        &self,
        endpoint: Endpoint,
        path_params: &[&str],
        query: Vec<(&'static str, String)>,
        bearer: Option<BearerHeader>,
        body: RequestBody<'_, T>,
    ) -> Result<Response<Bytes>> {
        let body = match body {
            RequestBody::None => Body::None,
            RequestBody::Json(v) => json_body(endpoint.name, v)?,
            RequestBody::Xml(b) => Body::Xml(b),
            RequestBody::JsonBytes(b) => Body::Json(b),
        };
        let raw = self
            .execute(Call {
                endpoint,
                path_params,
                query,
                bearer: bearer.map(|b| b.0),
                continuation_token: None,
                body,
            })
            .await?;
        Ok(Response {
            value: raw.body,
            warnings: raw.warnings,
        })
    }

    /// `POST /sessions/online/{referenceNumber}/invoices` with a body the caller has already
    /// serialised: the JSON of an [`api::SendInvoiceRequest`](ksef_model::api::SendInvoiceRequest),
    /// sent as these exact bytes. Everything else — headers, pacing, retry class (never
    /// repeated: a second copy is a 440 duplicate), error parsing, the decoded
    /// [`SendInvoiceResponse`](ksef_model::api::SendInvoiceResponse) — is that of
    /// [`Transport::send_invoice`].
    ///
    /// This exists for speed: the Base64 ciphertext is most of the body (7.3 KB for a 5.5 KB
    /// invoice), and writing it straight into the body buffer while encrypting costs less than
    /// serialising a typed request, which encodes it into a temporary `String` and then scans
    /// every byte for JSON escapes. The body is not checked here.
    pub async fn send_invoice_json(
        &self,
        token: &crate::token::AccessToken,
        reference_number: &ksef_model::ids::ReferenceNumber,
        body: Bytes,
    ) -> Result<Response<ksef_model::api::SendInvoiceResponse>> {
        let endpoint =
            crate::operations::endpoint(ksef_model::operations::OperationId::SendInvoice);
        let name = endpoint.name;
        let raw = self
            .execute(Call {
                endpoint,
                path_params: &[reference_number.as_ref()],
                query: Vec::new(),
                bearer: bearer(name, crate::token::Bearer::header_value(&token))?,
                continuation_token: None,
                body: Body::Json(body),
            })
            .await?;
        decode_json(name, raw)
    }

    /// The retry policy this transport applies.
    pub fn retry(&self) -> crate::retry::RetryPolicy {
        *self.retry_policy()
    }

    /// The `Authorization` header for a token, for [`Transport::call`].
    pub fn bearer_of(token: impl crate::token::Bearer) -> Option<BearerHeader> {
        token.header_value().map(BearerHeader)
    }
}

/// An opaque, sensitive `Authorization: Bearer …` value (Debug redacted).
#[derive(Clone)]
pub struct BearerHeader(pub(crate) HeaderValue);

impl std::fmt::Debug for BearerHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerHeader([REDACTED])")
    }
}
