//! Smaller areas: effective limits (`/limits/*`, `/rate-limits`), attachment consent,
//! authentication blocking (`/testdata/context/block` → auth status 480) and `GET /sessions`.

use axum::http::StatusCode;
use axum::response::Response;
use ksef_model::api::{
    AttachmentPermissionGrantRequest, AttachmentPermissionRevokeRequest,
    BlockContextAuthenticationRequest, UnblockContextAuthenticationRequest,
};
use ksef_model::operations::{OPERATIONS, RateLimitGroup};
use serde_json::{Map, Value, json};

use crate::auth::{continuation, page_size};
use crate::error::ApiError;
use crate::ids::rfc3339;
use crate::server::{Inner, Req, empty, json_ok};
use crate::state::Ident;

/// Per-context session limits (ksef-api.md §15.2): the defaults (1 MB, 3 MB with attachments,
/// 10 000 invoices) or the `/testdata/limits/context/session` override.
pub(crate) fn context_limits(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let (online, batch) = inner.state().certs.session_limits_for(&caller.context);
    Ok(json_ok(
        StatusCode::OK,
        &json!({"onlineSession": online.to_json(), "batchSession": batch.to_json()}),
    ))
}

pub(crate) fn subject_limits(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    // Enrollments / active certificates: NIP 300/100, PESEL and fingerprint 12/6, or overridden.
    let (enrollments, certificates) = inner.state().certs.limits_for(&caller.subject);
    Ok(json_ok(
        StatusCode::OK,
        &json!({"enrollment": {"maxEnrollments": enrollments},
                "certificate": {"maxCertificates": certificates}}),
    ))
}

/// The JSON name of a rate-limit group (`EffectiveApiRateLimits`' property).
pub(crate) fn group_name(g: RateLimitGroup) -> Option<&'static str> {
    Some(match g {
        RateLimitGroup::OnlineSession => "onlineSession",
        RateLimitGroup::BatchSession => "batchSession",
        RateLimitGroup::InvoiceSend => "invoiceSend",
        RateLimitGroup::InvoiceStatus => "invoiceStatus",
        RateLimitGroup::SessionList => "sessionList",
        RateLimitGroup::SessionInvoiceList => "sessionInvoiceList",
        RateLimitGroup::SessionMisc => "sessionMisc",
        RateLimitGroup::InvoiceMetadata => "invoiceMetadata",
        RateLimitGroup::InvoiceExport => "invoiceExport",
        RateLimitGroup::InvoiceExportStatus => "invoiceExportStatus",
        RateLimitGroup::InvoiceDownload => "invoiceDownload",
        RateLimitGroup::CollectiveIdentifier => "collectiveIdentifier",
        RateLimitGroup::Other => "other",
        _ => return None,
    })
}

/// The effective rate limits per group, read from the operation catalogue.
pub(crate) fn rate_limits(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let st = inner.state();
    let mut out = Map::new();
    for op in OPERATIONS {
        let Some(name) = group_name(op.rate_limit.group) else {
            continue;
        };
        let r = op.rate_limit;
        out.entry(name).or_insert_with(|| {
            match st.certs.rate_limit_override(&caller.context, name) {
                Some((s, m, h)) => json!({"perSecond": s, "perMinute": m, "perHour": h}),
                None => json!({"perSecond": r.per_second.unwrap_or(0),
                               "perMinute": r.per_minute.unwrap_or(0),
                               "perHour": r.per_hour.unwrap_or(0)}),
            }
        });
    }
    Ok(json_ok(StatusCode::OK, &Value::Object(out)))
}

pub(crate) fn attachment_status(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let st = inner.state();
    let mut v = json!({"isAttachmentAllowed": false});
    if let Some((allowed, revoked)) = st.attachments.get(&caller.context.1) {
        v["isAttachmentAllowed"] = json!(allowed);
        if let Some(d) = revoked {
            v["revokedDate"] = json!(d);
        }
    }
    Ok(json_ok(StatusCode::OK, &v))
}

pub(crate) fn enable_attachments(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let body: AttachmentPermissionGrantRequest = req.json()?;
    inner
        .state()
        .attachments
        .insert(body.nip.as_str().to_owned(), (true, None));
    Ok(empty(StatusCode::OK))
}

pub(crate) fn revoke_attachments(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let body: AttachmentPermissionRevokeRequest = req.json()?;
    // `revokedDate` is a date-time: the expected end date at midnight UTC, or now.
    let date = rfc3339(
        body.expected_end_date
            .map(|d| d.midnight().assume_utc())
            .unwrap_or(req.now),
    );
    inner
        .state()
        .attachments
        .insert(body.nip.as_str().to_owned(), (false, Some(date)));
    Ok(empty(StatusCode::OK))
}

fn block_target(t: Option<(String, String)>) -> Result<Ident, ApiError> {
    t.ok_or_else(|| ApiError::validation("'contextIdentifier' is required."))
}

pub(crate) fn block(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let body: BlockContextAuthenticationRequest = req.json()?;
    let ctx = block_target(
        body.context_identifier
            .map(|c| (c.r#type.as_str().to_owned(), c.value)),
    )?;
    let mut st = inner.state();
    if !st.blocked.contains(&ctx) {
        st.blocked.push(ctx);
    }
    Ok(empty(StatusCode::OK))
}

pub(crate) fn unblock(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let body: UnblockContextAuthenticationRequest = req.json()?;
    let ctx = block_target(
        body.context_identifier
            .map(|c| (c.r#type.as_str().to_owned(), c.value)),
    )?;
    inner.state().blocked.retain(|c| c != &ctx);
    Ok(empty(StatusCode::OK))
}

/// `CommonSessionStatus` of a session status code.
fn common_status(code: i32) -> &'static str {
    match code {
        100 | 150 | 170 => "InProgress",
        200 => "Succeeded",
        440 => "Cancelled",
        _ => "Failed",
    }
}

/// `GET /sessions` (online sessions; batch sessions are a later slice and list as empty).
pub(crate) fn list_sessions(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let kind = req
        .query("sessionType")
        .ok_or_else(|| ApiError::validation("'sessionType' is required (Online or Batch)."))?;
    if kind != "Online" && kind != "Batch" {
        return Err(ApiError::validation(format!(
            "'sessionType' has an invalid value '{kind}' (Online or Batch)."
        )));
    }
    let size = page_size(req, 10, 10, 1000)?;
    let offset = continuation(req)?;
    let statuses: Vec<&str> = req
        .query
        .iter()
        .filter(|(k, _)| k == "statuses")
        .map(|(_, v)| v.as_str())
        .collect();
    let reference = req.query("referenceNumber");
    // Introspection (or enforcement) sees every session of the context; others only their own.
    let all = caller
        .permissions
        .iter()
        .any(|p| p == "Introspection" || p == "EnforcementOperations");
    let st = inner.state();
    let mut items: Vec<_> = st
        .sessions
        .values()
        .filter(|s| (kind == "Batch") == s.batch.is_some() && s.context == caller.context)
        .filter(|s| all || s.subject == caller.subject)
        .filter(|s| statuses.is_empty() || statuses.contains(&common_status(s.status.code)))
        .filter(|s| reference.is_none_or(|r| s.reference == r))
        .collect();
    items.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then(a.reference.cmp(&b.reference))
    });
    let page: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(size)
        .map(|s| {
            let ok = s.invoices.iter().filter(|i| i.status.code == 200).count();
            let failed = s.invoices.iter().filter(|i| i.status.code >= 400).count();
            let mut v = json!({
                "referenceNumber": s.reference,
                "status": s.status.to_json(),
                "dateCreated": rfc3339(s.created),
                "dateUpdated": rfc3339(s.updated),
                "totalInvoiceCount": s.invoices.len(),
                "successfulInvoiceCount": ok,
                "failedInvoiceCount": failed,
            });
            if s.status.code == 100 {
                v["validUntil"] = json!(rfc3339(s.valid_until));
            }
            v
        })
        .collect();
    let mut v = json!({"sessions": page});
    if offset + size < items.len() {
        v["continuationToken"] = json!(format!("ofs-{}", offset + size));
    }
    Ok(json_ok(StatusCode::OK, &v))
}
