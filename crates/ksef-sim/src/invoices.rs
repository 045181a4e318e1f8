//! Invoice retrieval (ksef-api.md §9): download by KSeF number, the metadata query and
//! asynchronous encrypted exports with presigned part downloads.
//!
//! Visibility: an accepted invoice is visible to the context of its seller (`Subject1`), buyer
//! (`Subject2`), any third subject (`Subject3`) and its authorized subject
//! (`SubjectAuthorized`), once its permanent-storage date has passed (before that a download
//! answers 21165). The high-water mark (`permanentStorageHwmDate`) is the earliest instant at
//! which an invoice still being processed could be stored, capped at now: nothing will ever
//! appear at or below it.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ksef_crypto::encryption::SessionKey;
use ksef_model::api::{
    AmountType, InvoiceExportRequest, InvoiceQueryDateType, InvoiceQueryFilters,
    InvoiceQueryFormType, InvoiceQuerySubjectType, InvoicingMode, SortOrder,
};
use ksef_model::form::FormCode;
use ksef_model::ids::ReferenceType;
use ksef_model::operations::OperationId;
use serde_json::{Value, json};
use time::{Date, Duration, Month, OffsetDateTime, UtcOffset};

use crate::error::ApiError;
use crate::ids::rfc3339;
use crate::invoice_xml::InvoiceMeta;
use crate::keys::SimKeys;
use crate::server::{Inner, Req, json_ok, xml_ok};
use crate::state::{Ident, State, Status};

/// Exports running at once per context (400 21182 beyond).
pub(crate) const MAX_RUNNING_EXPORTS: usize = 10;
/// Lifetime of a presigned part URL from the status query that produced it.
const PART_URL_TTL: Duration = Duration::hours(1);
/// How long a finished package can be downloaded (then status 210).
const PACKAGE_TTL: Duration = Duration::days(3);
/// How long an export's status is kept (then 410).
const STATUS_RETENTION: Duration = Duration::days(7);

/// KSeF's retrieval limits (lowered by tests through the builder).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetrievalLimits {
    /// Rows per metadata filter set and invoices per export package.
    pub rows: usize,
    /// Bytes per export part (before encryption).
    pub part_bytes: usize,
    /// Real time an export stays in progress (100) before its package is built; zero by
    /// default, raised by tests that need running exports (21182).
    pub export_delay: std::time::Duration,
}

impl Default for RetrievalLimits {
    fn default() -> Self {
        RetrievalLimits {
            rows: 10_000,
            part_bytes: 50 * 1000 * 1000,
            export_delay: std::time::Duration::ZERO,
        }
    }
}

/// This area's state (one field of [`State`]).
/// Persisted without `meta` (a cache) and without part bytes (stored beside it, persist.rs).
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct RetrievalState {
    /// KSeF number → metadata read from the invoice XML (computed once).
    #[serde(skip)]
    meta: HashMap<String, Arc<InvoiceMeta>>,
    exports: HashMap<String, Export>,
    /// Presigned part token → (export reference, part index).
    part_tokens: HashMap<String, (String, usize)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Export {
    context: Ident,
    created: OffsetDateTime,
    status: Status,
    completed: Option<OffsetDateTime>,
    /// The work still to do (cleared when the package is built, so that an export interrupted
    /// by a stop under `--state-dir` is built after the restart).
    job: Option<ExportJob>,
    package: Option<Package>,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct ExportJob {
    filters: InvoiceQueryFilters,
    range: Range,
    #[serde(with = "crate::persist::session_key_required")]
    key: SessionKey,
    only_metadata: bool,
    tar_gz: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Package {
    invoice_count: usize,
    size: u64,
    is_truncated: bool,
    /// The last included row's date for the filter's date type (only when truncated).
    last: Option<Value>,
    date_type: InvoiceQueryDateType,
    hwm: Option<OffsetDateTime>,
    parts: Vec<Part>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Part {
    name: String,
    plain_size: u64,
    plain_hash: String,
    #[serde(skip)]
    data: Arc<Vec<u8>>,
    encrypted_hash: String,
    token: String,
    url_until: OffsetDateTime,
}

/// Builds the exports a stop interrupted (`--state-dir`): accepted (100) with their work not
/// done.
pub(crate) fn resume_exports(inner: &Arc<Inner>) {
    let pending: Vec<(String, Ident)> = inner
        .state()
        .retrieval
        .exports
        .iter()
        .filter(|(_, e)| e.status.code == 100 && e.job.is_some())
        .map(|(r, e)| (r.clone(), e.context.clone()))
        .collect();
    for (r, context) in pending {
        let task_inner = inner.clone();
        tokio::task::spawn_blocking(move || build_export(&task_inner, &r, &context));
    }
}

impl RetrievalState {
    /// The bytes of every built export part, by part token (persist.rs stores them beside the
    /// area's JSON).
    pub(crate) fn part_data(&self) -> impl Iterator<Item = (&str, &Arc<Vec<u8>>)> {
        self.exports
            .values()
            .filter_map(|e| e.package.as_ref())
            .flat_map(|p| p.parts.iter().map(|part| (part.token.as_str(), &part.data)))
    }

    /// Puts back the bytes of the part with `token` (loading a state dir).
    pub(crate) fn restore_part_data(&mut self, token: &str, data: Vec<u8>) {
        let part = self
            .exports
            .values_mut()
            .filter_map(|e| e.package.as_mut())
            .flat_map(|p| p.parts.iter_mut())
            .find(|part| part.token == token);
        if let Some(part) = part {
            part.data = Arc::new(data);
        }
    }
}

/// Handles this area's operations; `None` for any other operation (the dispatcher then tries the
/// next area).
pub(crate) fn handle(inner: &Arc<Inner>, req: &Req) -> Option<Result<Response, ApiError>> {
    match req.op.id {
        OperationId::QueryInvoiceMetadata => Some(query_metadata(inner, req)),
        OperationId::StartInvoiceExport => Some(start_export(inner, req)),
        OperationId::InvoiceExportStatus => Some(export_status(inner, req)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Rows: accepted invoices with their metadata

/// One accepted invoice as retrieval sees it.
struct Row {
    ksef: String,
    meta: Arc<InvoiceMeta>,
    hash: String,
    invoicing: OffsetDateTime,
    acquisition: OffsetDateTime,
    storage: OffsetDateTime,
    offline: bool,
    form: FormCode,
    /// A technical correction: the hash of the rejected offline invoice it corrects.
    corrects: Option<String>,
}

impl Row {
    /// The sort key for a date type (the issue date sorts by its day, then acquisition).
    fn key(&self, t: &InvoiceQueryDateType) -> (OffsetDateTime, &str) {
        let d = match t {
            InvoiceQueryDateType::Issue => self
                .meta
                .issue_date
                .map(|d| d.midnight().assume_utc())
                .unwrap_or(self.acquisition),
            InvoiceQueryDateType::Invoicing => self.invoicing,
            _ => self.storage,
        };
        (d, &self.ksef)
    }
}

/// Every accepted invoice stored permanently by `now`, with its metadata (read and cached on
/// first use).
fn rows(st: &mut State, now: OffsetDateTime) -> Vec<Row> {
    let State {
        sessions,
        by_ksef_number,
        retrieval,
        ..
    } = st;
    let mut out = Vec::new();
    for (ksef, (sref, ordinal)) in by_ksef_number.iter() {
        let Some(session) = sessions.get(sref) else {
            continue;
        };
        let Some(inv) = (*ordinal as usize)
            .checked_sub(1)
            .and_then(|i| session.invoices.get(i))
        else {
            continue;
        };
        let (Some(acquisition), Some(storage), Some(xml)) =
            (inv.acquisition, inv.permanent_storage, inv.xml.as_ref())
        else {
            continue;
        };
        if storage > now || inv.status.code != 200 {
            continue;
        }
        let meta = match retrieval.meta.get(ksef) {
            Some(m) => m.clone(),
            None => {
                let Some(m) = crate::invoice_xml::metadata(xml, &session.form) else {
                    continue;
                };
                let m = Arc::new(m);
                retrieval.meta.insert(ksef.clone(), m.clone());
                m
            }
        };
        out.push(Row {
            ksef: ksef.clone(),
            meta,
            hash: inv.invoice_hash.clone(),
            invoicing: inv.received,
            acquisition,
            storage,
            offline: inv.offline,
            form: session.form.clone(),
            corrects: inv.corrects.clone(),
        });
    }
    out
}

/// The permanent-storage high-water mark: no invoice will ever be stored at or before it.
fn hwm(st: &State, now: OffsetDateTime) -> OffsetDateTime {
    let mut mark = now;
    for s in st.sessions.values() {
        for inv in &s.invoices {
            // Still being processed: it may be stored at any time after it was received.
            if inv.ksef_number.is_none() && matches!(inv.status.code, 100 | 150) {
                mark = mark.min(inv.received - Duration::milliseconds(1));
            }
        }
    }
    mark
}

fn nip_of(ctx: &Ident) -> Option<&str> {
    (ctx.0 == "Nip").then_some(ctx.1.as_str())
}

/// Whether the caller's context is the invoice's party of `subject` type.
fn visible_as(meta: &InvoiceMeta, subject: &InvoiceQuerySubjectType, ctx: &Ident) -> bool {
    let nip = nip_of(ctx);
    match subject {
        InvoiceQuerySubjectType::Subject1 => nip == Some(meta.seller_nip.as_str()),
        InvoiceQuerySubjectType::Subject2 => {
            meta.buyer.0 == "Nip" && meta.buyer.1.as_deref() == nip && nip.is_some()
        }
        InvoiceQuerySubjectType::Subject3 => meta.third.iter().any(|t| {
            let want = match t.id.0 {
                "Nip" => "Nip",
                "InternalId" => "InternalId",
                _ => return false,
            };
            want == ctx.0 && t.id.1.as_deref() == Some(ctx.1.as_str())
        }),
        InvoiceQuerySubjectType::SubjectAuthorized => meta
            .authorized
            .as_ref()
            .is_some_and(|a| Some(a.0.as_str()) == nip),
        _ => false,
    }
}

pub(crate) fn visible_to(meta: &InvoiceMeta, ctx: &Ident) -> bool {
    InvoiceQuerySubjectType::KNOWN
        .iter()
        .any(|s| visible_as(meta, s, ctx))
}

// ---------------------------------------------------------------------------------------------
// Filters

/// The validated date range of a filter set.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Range {
    from: OffsetDateTime,
    to: OffsetDateTime,
    /// `to` as requested (before capping at the HWM), for `permanentStorageHwmDate`.
    restrict: bool,
}

/// Europe/Warsaw's UTC offset at a UTC instant (CET, CEST from the last Sunday of March 01:00
/// UTC to the last Sunday of October 01:00 UTC).
fn warsaw_offset(utc: OffsetDateTime) -> UtcOffset {
    let last_sunday = |month: Month| -> Option<OffsetDateTime> {
        let next = if month == Month::December {
            Date::from_calendar_date(utc.year() + 1, Month::January, 1)
        } else {
            Date::from_calendar_date(utc.year(), month.next(), 1)
        }
        .ok()?;
        let mut d = next.previous_day()?;
        while d.weekday() != time::Weekday::Sunday {
            d = d.previous_day()?;
        }
        Some(d.with_hms(1, 0, 0).ok()?.assume_utc())
    };
    let summer = match (last_sunday(Month::March), last_sunday(Month::October)) {
        (Some(a), Some(b)) => utc >= a && utc < b,
        _ => false,
    };
    UtcOffset::from_hms(if summer { 2 } else { 1 }, 0, 0).unwrap_or(UtcOffset::UTC)
}

/// Parses a filter date-time; a value without an offset is Europe/Warsaw local time.
fn filter_time(raw: &str, field: &str) -> Result<OffsetDateTime, ApiError> {
    let parsed = ksef_model::datetime::DateTime::parse(raw)
        .map_err(|e| ApiError::validation(format!("{field}: {e}")))?
        .as_offset_date_time();
    let has_offset = raw.ends_with(['Z', 'z'])
        || raw
            .get(19..)
            .is_some_and(|tail| tail.contains('+') || tail.contains('-'));
    if has_offset {
        return Ok(parsed);
    }
    // Read as UTC; shift by Warsaw's offset at (about) that time.
    let off = warsaw_offset(parsed - Duration::hours(1));
    Ok(parsed.replace_offset(off))
}

fn add_months(t: OffsetDateTime, months: u8) -> OffsetDateTime {
    let mut year = t.year();
    let mut m = u8::from(t.month()) + months;
    while m > 12 {
        m -= 12;
        year += 1;
    }
    let month = Month::try_from(m).unwrap_or(Month::December);
    let day = t.day().min(month.length(year));
    Date::from_calendar_date(year, month, day)
        .map(|d| t.replace_date(d))
        .unwrap_or(t)
}

/// Checks the date range of a filter body: `from` ≤ `to` and at most 3 months (in UTC or in
/// Europe/Warsaw). `to` defaults to now.
fn date_range(body: &Value, now: OffsetDateTime) -> Result<Range, ApiError> {
    let dr = &body["dateRange"];
    let from = dr["from"]
        .as_str()
        .ok_or_else(|| ApiError::validation("dateRange.from jest wymagane."))?;
    let from = filter_time(from, "dateRange.from")?;
    let to = match dr["to"].as_str() {
        Some(t) => filter_time(t, "dateRange.to")?,
        None => now,
    };
    if from > to {
        return Err(ApiError::validation(
            "dateRange.from nie może być późniejsze niż dateRange.to.",
        ));
    }
    let utc = add_months(from.to_offset(UtcOffset::UTC), 3);
    let waw = {
        let f = from.to_offset(warsaw_offset(from));
        add_months(f, 3)
    };
    if to > utc && to > waw {
        return Err(ApiError::validation(
            "Zakres dat dateRange nie może przekraczać 3 miesięcy.",
        ));
    }
    Ok(Range {
        from,
        to,
        restrict: dr["restrictToPermanentStorageHwmDate"].as_bool() == Some(true),
    })
}

/// Parses and checks a filter body (unknown enumeration values are 21405).
fn parse_filters(body: &Value) -> Result<InvoiceQueryFilters, ApiError> {
    let f: InvoiceQueryFilters = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::validation(format!("Nieprawidłowe dane JSON: {e}")))?;
    let unknown = |what: &str, v: &str| {
        ApiError::validation(format!("Nieprawidłowa wartość '{v}' pola {what}."))
    };
    if f.subject_type.is_unknown() {
        return Err(unknown("subjectType", f.subject_type.as_str()));
    }
    if f.date_range.date_type.is_unknown() {
        return Err(unknown(
            "dateRange.dateType",
            f.date_range.date_type.as_str(),
        ));
    }
    if let Some(t) = &f.form_type
        && t.is_unknown()
    {
        return Err(unknown("formType", t.as_str()));
    }
    if let Some(a) = &f.amount
        && a.r#type.is_unknown()
    {
        return Err(unknown("amount.type", a.r#type.as_str()));
    }
    for t in f.invoice_types.iter().flatten() {
        if t.is_unknown() {
            return Err(unknown("invoiceTypes", t.as_str()));
        }
    }
    if let Some(n) = &f.invoice_number
        && n.chars().count() > 256
    {
        return Err(ApiError::validation(
            "invoiceNumber może mieć najwyżej 256 znaków.",
        ));
    }
    Ok(f)
}

fn matches(row: &Row, f: &InvoiceQueryFilters, range: &Range, ctx: &Ident) -> bool {
    let m = &row.meta;
    if !visible_as(m, &f.subject_type, ctx) {
        return false;
    }
    let in_range = match f.date_range.date_type {
        InvoiceQueryDateType::Issue => m
            .issue_date
            .is_some_and(|d| range.from.date() <= d && d <= range.to.date()),
        InvoiceQueryDateType::Invoicing => range.from <= row.invoicing && row.invoicing <= range.to,
        _ => range.from <= row.storage && row.storage <= range.to,
    };
    if !in_range {
        return false;
    }
    if f.ksef_number
        .as_ref()
        .is_some_and(|k| k.as_str() != row.ksef)
        || f.invoice_number.as_ref().is_some_and(|n| *n != m.number)
        || f.seller_nip
            .as_ref()
            .is_some_and(|n| n.as_str() != m.seller_nip)
    {
        return false;
    }
    if let Some(a) = &f.amount {
        let v = match a.r#type {
            AmountType::Netto => m.net,
            AmountType::Vat => m.vat,
            _ => m.gross,
        };
        if a.from.is_some_and(|x| v < x - 1e-9) || a.to.is_some_and(|x| v > x + 1e-9) {
            return false;
        }
    }
    if let Some(b) = &f.buyer_identifier {
        if b.r#type.as_str() != m.buyer.0 {
            return false;
        }
        if let Some(v) = &b.value
            && m.buyer.1.as_deref() != Some(v.as_str())
        {
            return false;
        }
    }
    if let Some(c) = &f.currency_codes
        && !c.is_empty()
        && !c.iter().any(|c| c.as_str() == m.currency)
    {
        return false;
    }
    if let Some(mode) = &f.invoicing_mode {
        let offline = matches!(mode, InvoicingMode::Offline);
        if offline != row.offline {
            return false;
        }
    }
    if f.is_self_invoicing.is_some_and(|s| s != m.self_invoicing)
        || f.has_attachment.is_some_and(|a| a != m.has_attachment)
    {
        return false;
    }
    if let Some(t) = &f.form_type {
        let v = row.form.value();
        let ok = match t {
            InvoiceQueryFormType::Fa => v == "FA",
            InvoiceQueryFormType::Pef => v == "PEF",
            InvoiceQueryFormType::FaRr => v == "FA_RR",
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    if let Some(types) = &f.invoice_types
        && !types.is_empty()
        && !types.iter().any(|t| t.as_str() == m.invoice_type)
    {
        return false;
    }
    true
}

/// The rows of a filter set in ascending date order (the caller reverses for `Desc`).
fn select(
    st: &mut State,
    now: OffsetDateTime,
    f: &InvoiceQueryFilters,
    range: &Range,
    ctx: &Ident,
) -> Vec<Row> {
    let mut rows: Vec<Row> = rows(st, now)
        .into_iter()
        .filter(|r| matches(r, f, range, ctx))
        .collect();
    let t = &f.date_range.date_type;
    rows.sort_by(|a, b| a.key(t).cmp(&b.key(t)));
    rows
}

fn amount(v: f64) -> Value {
    json!((v * 100.0).round() / 100.0)
}

/// `InvoiceMetadata` of a row.
fn metadata_json(r: &Row) -> Value {
    let m = &r.meta;
    let mut seller = json!({"nip": m.seller_nip});
    if let Some(n) = &m.seller_name {
        seller["name"] = json!(n);
    }
    let mut buyer_id = json!({"type": m.buyer.0});
    if let Some(v) = &m.buyer.1 {
        buyer_id["value"] = json!(v);
    }
    let mut buyer = json!({"identifier": buyer_id});
    if let Some(n) = &m.buyer_name {
        buyer["name"] = json!(n);
    }
    let issue = m
        .issue_date
        .unwrap_or_else(|| r.acquisition.date())
        .to_string();
    let mut v = json!({
        "ksefNumber": r.ksef,
        "invoiceNumber": m.number,
        "issueDate": issue,
        "invoicingDate": rfc3339(r.invoicing),
        "acquisitionDate": rfc3339(r.acquisition),
        "permanentStorageDate": rfc3339(r.storage),
        "seller": seller,
        "buyer": buyer,
        "netAmount": amount(m.net),
        "grossAmount": amount(m.gross),
        "vatAmount": amount(m.vat),
        "currency": m.currency,
        "invoicingMode": if r.offline { "Offline" } else { "Online" },
        "invoiceType": m.invoice_type,
        "formCode": {
            "systemCode": r.form.system_code(),
            "schemaVersion": r.form.schema_version(),
            "value": r.form.value(),
        },
        "isSelfInvoicing": m.self_invoicing,
        "hasAttachment": m.has_attachment,
        "invoiceHash": r.hash,
    });
    // The link of a technical correction to the rejected original (ksef-api.md §11.4).
    if let Some(h) = &r.corrects {
        v["hashOfCorrectedInvoice"] = json!(h);
    }
    if !m.third.is_empty() {
        v["thirdSubjects"] = m
            .third
            .iter()
            .map(|t| {
                let mut id = json!({"type": t.id.0});
                if let Some(val) = &t.id.1 {
                    id["value"] = json!(val);
                }
                let mut s = json!({"identifier": id, "role": t.role});
                if let Some(n) = &t.name {
                    s["name"] = json!(n);
                }
                s
            })
            .collect();
    }
    if let Some((nip, name, role)) = &m.authorized {
        let mut a = json!({"nip": nip, "role": role});
        if let Some(n) = name {
            a["name"] = json!(n);
        }
        v["authorizedSubject"] = a;
    }
    v
}

// ---------------------------------------------------------------------------------------------
// POST /invoices/query/metadata

/// One page of a filter set capped at `cap` rows: `(start, end, has_more, is_truncated)`.
/// `hasMore` says rows exist past this page (also past the cap); `isTruncated` says the cap
/// was reached by this page, so the client must move its date window instead of paging on.
fn page_bounds(total: usize, page: usize, size: usize, cap: usize) -> (usize, usize, bool, bool) {
    let capped = total.min(cap);
    let start = page.saturating_mul(size).min(capped);
    let end = start.saturating_add(size).min(capped);
    let has_more = end < total;
    let truncated = total > cap && end >= capped;
    (start, end, has_more, truncated)
}

fn query_metadata(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?.clone();
    let page_size = crate::auth::page_size(req, 10, 10, 250)?;
    let page = match req.query("pageOffset") {
        None => 0,
        Some(v) => v.parse::<usize>().map_err(|_| {
            ApiError::validation(format!("'pageOffset' must be 0 or more. You entered {v}."))
        })?,
    };
    let desc = match req.query("sortOrder").map(SortOrder::from) {
        None | Some(SortOrder::Asc) => false,
        Some(SortOrder::Desc) => true,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "Nieprawidłowa wartość sortOrder '{other}'; dozwolone Asc, Desc."
            )));
        }
    };
    let body: Value = req.json()?;
    let filters = parse_filters(&body)?;
    let mut range = date_range(&body, req.now)?;
    let mut st = inner.state();
    let mark = hwm(&st, req.now);
    let permanent = filters.date_range.date_type == InvoiceQueryDateType::PermanentStorage;
    if range.restrict && permanent {
        if range.from > mark {
            return Err(ApiError::bad(
                21183,
                ["Parametr dateRange.from jest późniejszy niż PermanentStorageHwmDate przy włączonym restrictToPermanentStorageHwmDate.".to_owned()],
            ));
        }
        range.to = range.to.min(mark);
    }
    let mut rows = select(&mut st, req.now, &filters, &range, &caller.context);
    drop(st);
    if desc {
        rows.reverse();
    }
    let cap = inner.config.retrieval.rows;
    let (start, end, has_more, truncated) = page_bounds(rows.len(), page, page_size, cap);
    let invoices: Vec<Value> = rows[start..end].iter().map(metadata_json).collect();
    let mut out = json!({
        "hasMore": has_more,
        "isTruncated": truncated,
        "invoices": invoices,
    });
    if permanent {
        out["permanentStorageHwmDate"] = json!(rfc3339(range.to.min(mark)));
    }
    Ok(json_ok(StatusCode::OK, &out))
}

/// The metadata of an accepted invoice stored permanently by `now` (read and cached on first
/// use); `None` for an unknown, rejected or not yet stored invoice.
pub(crate) fn stored_meta(
    st: &mut State,
    ksef: &str,
    now: OffsetDateTime,
) -> Option<Arc<InvoiceMeta>> {
    let (sref, ordinal) = st.by_ksef_number.get(ksef)?.clone();
    let session = st.sessions.get(&sref)?;
    let inv = (ordinal as usize)
        .checked_sub(1)
        .and_then(|i| session.invoices.get(i))?;
    if inv.status.code != 200 || inv.permanent_storage.is_none_or(|t| t > now) {
        return None;
    }
    if let Some(m) = st.retrieval.meta.get(ksef) {
        return Some(m.clone());
    }
    let m = Arc::new(crate::invoice_xml::metadata(
        inv.xml.as_ref()?,
        &session.form,
    )?);
    st.retrieval.meta.insert(ksef.to_owned(), m.clone());
    Some(m)
}

// ---------------------------------------------------------------------------------------------
// GET /invoices/ksef/{ksefNumber}

pub(crate) fn download_invoice(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let k = req.param(0);
    let mut guard = inner.state();
    let st = &mut *guard;
    let not_found = || {
        ApiError::bad(
            21164,
            [format!(
                "Faktura o numerze KSeF {k} nie została znaleziona."
            )],
        )
    };
    let (sref, ordinal) = st.by_ksef_number.get(k).cloned().ok_or_else(not_found)?;
    let session = st.sessions.get(&sref).ok_or_else(not_found)?;
    let inv = (ordinal as usize)
        .checked_sub(1)
        .and_then(|i| session.invoices.get(i))
        .ok_or_else(not_found)?;
    let xml = inv.xml.as_ref().ok_or_else(not_found)?;
    let meta = match st.retrieval.meta.get(k) {
        Some(m) => m.clone(),
        None => {
            let m =
                Arc::new(crate::invoice_xml::metadata(xml, &session.form).ok_or_else(not_found)?);
            st.retrieval.meta.insert(k.to_owned(), m.clone());
            m
        }
    };
    if !visible_to(&meta, &caller.context) {
        return Err(not_found());
    }
    if inv.permanent_storage.is_none_or(|t| t > req.now) {
        return Err(ApiError::bad(
            21165,
            [format!(
                "Faktura o numerze KSeF {k} została przetworzona, ale nie jest jeszcze dostępna do pobrania. Spróbuj ponownie później."
            )],
        ));
    }
    Ok(xml_ok(xml.clone()))
}

// ---------------------------------------------------------------------------------------------
// Exports

fn start_export(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?.clone();
    let body: Value = req.json()?;
    let request: InvoiceExportRequest = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::validation(format!("Nieprawidłowe dane JSON: {e}")))?;
    let filters = parse_filters(&body["filters"])?;
    let range = date_range(&body["filters"], req.now)?;
    if caller.context.0 != "Nip" && filters.subject_type != InvoiceQuerySubjectType::Subject3 {
        return Err(ApiError::bad(
            21181,
            [format!(
                "Nie można wyeksportować paczki faktur dla wybranego podmiotu ({}) i zalogowanego identyfikatora kontekstu ({}).",
                filters.subject_type, caller.context.0
            )],
        ));
    }
    let pkid = request
        .encryption
        .public_key_id
        .as_ref()
        .map(|b| b.to_base64());
    SimKeys::check_public_key_id(&inner.keys.symmetric, pkid.as_deref()).map_err(|()| {
        ApiError::bad(
            21470,
            [format!(
                "Klucz o identyfikatorze {} nie jest wspierany.",
                pkid.clone().unwrap_or_default()
            )],
        )
    })?;
    if request.encryption.initialization_vector.len() != 16 {
        return Err(ApiError::validation(
            "Nieprawidłowa długość wektora inicjującego (IV). Oczekiwano 16 bajtów",
        ));
    }
    let tar_gz = match &request.compression_type {
        None => false,
        Some(c) => match c.as_str() {
            "Zip" => false,
            "TarGz" => true,
            other => {
                return Err(ApiError::validation(format!(
                    "Nieobsługiwany typ kompresji '{other}'; dozwolone Zip, TarGz."
                )));
            }
        },
    };
    let key = SessionKey::unwrap(
        &inner.keys.symmetric.key,
        request.encryption.encrypted_symmetric_key.as_slice(),
        request.encryption.initialization_vector.as_slice(),
    )
    .ok();
    let now = req.now;
    let mut st = inner.state();
    let running = st
        .retrieval
        .exports
        .values()
        .filter(|e| e.context == caller.context && e.status.code == 100)
        .count();
    if running >= MAX_RUNNING_EXPORTS {
        return Err(ApiError::bad(
            21182,
            [format!(
                "Dla uwierzytelnionego podmiotu w bieżącym kontekście osiągnięto maksymalny limit {MAX_RUNNING_EXPORTS} równoczesnych eksportów faktur. Spróbuj ponownie później."
            )],
        ));
    }
    let reference = st.rng.reference(now, ReferenceType::EnrollmentOrExport);
    let permanent = filters.date_range.date_type == InvoiceQueryDateType::PermanentStorage;
    let beyond = range.restrict && permanent && range.from > hwm(&st, now);
    let (status, job) = match key {
        None => (
            Status::new(415, "Błąd odszyfrowania dostarczonego klucza"),
            None,
        ),
        Some(_) if beyond => (
            Status::new(
                420,
                "Zakres filtrowania wykracza poza dostępny zakres danych.",
            )
            .with_detail("Parametr dateRange.from jest późniejszy niż PermanentStorageHwmDate."),
            None,
        ),
        Some(key) => (
            Status::new(100, "Eksport faktur w toku"),
            Some(ExportJob {
                filters,
                range,
                key,
                only_metadata: request.only_metadata.unwrap_or(false),
                tar_gz,
            }),
        ),
    };
    let completed = (status.code != 100).then_some(now);
    let pending = job.is_some();
    st.retrieval.exports.insert(
        reference.clone(),
        Export {
            context: caller.context.clone(),
            created: now,
            status,
            completed,
            job,
            package: None,
        },
    );
    drop(st);
    if pending {
        let task_inner = inner.clone();
        let r = reference.clone();
        let delay = inner.config.retrieval.export_delay;
        if delay.is_zero() {
            tokio::task::spawn_blocking(move || build_export(&task_inner, &r, &caller.context));
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = tokio::task::spawn_blocking(move || {
                    build_export(&task_inner, &r, &caller.context)
                })
                .await;
            });
        }
    }
    Ok(json_ok(
        StatusCode::CREATED,
        &json!({"referenceNumber": reference}),
    ))
}

/// Writes the package archive: `{ksefNumber}.xml` per invoice (unless metadata only) and
/// `_metadata.json`.
fn archive(files: &[(String, Vec<u8>)], metadata: &[u8], tar_gz: bool) -> std::io::Result<Vec<u8>> {
    if tar_gz {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let entries = files
            .iter()
            .map(|(n, x)| (n.as_str(), x.as_slice()))
            .chain(std::iter::once(("_metadata.json", metadata)));
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, name, data)?;
        }
        tar.into_inner()?.finish()
    } else {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let entries = files
            .iter()
            .map(|(n, x)| (n.as_str(), x.as_slice()))
            .chain(std::iter::once(("_metadata.json", metadata)));
        for (name, data) in entries {
            zip.start_file(name, opts).map_err(std::io::Error::other)?;
            zip.write_all(data)?;
        }
        Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
    }
}

/// Builds an export's package (on a blocking thread): selects the rows, archives, splits into
/// parts and encrypts each with the export key.
fn build_export(inner: &Inner, reference: &str, context: &Ident) {
    let now = inner.now();
    let cap = inner.config.retrieval.rows;
    let mut st = inner.state();
    let Some(job) = st
        .retrieval
        .exports
        .get(reference)
        .filter(|e| e.status.code == 100)
        .and_then(|e| e.job.clone())
    else {
        return;
    };
    let mut range = job.range;
    let date_type = job.filters.date_range.date_type.clone();
    let permanent = date_type == InvoiceQueryDateType::PermanentStorage;
    let mark = hwm(&st, now);
    if range.restrict && permanent {
        range.to = range.to.min(mark);
    }
    let rows = select(&mut st, now, &job.filters, &range, context);
    let truncated = rows.len() > cap;
    let rows = &rows[..rows.len().min(cap)];
    let mut files = Vec::new();
    if !job.only_metadata {
        for r in rows {
            let xml = st
                .by_ksef_number
                .get(&r.ksef)
                .and_then(|(s, o)| {
                    st.sessions
                        .get(s)
                        .and_then(|s| s.invoices.get((*o as usize).checked_sub(1)?))
                })
                .and_then(|i| i.xml.clone())
                .unwrap_or_default();
            files.push((format!("{}.xml", r.ksef), xml));
        }
    }
    drop(st);
    let metadata = serde_json::to_vec(&json!({
        "invoices": rows.iter().map(metadata_json).collect::<Vec<_>>(),
    }))
    .unwrap_or_default();
    let last = rows.last().filter(|_| truncated).map(|r| match date_type {
        InvoiceQueryDateType::Issue => json!(r.meta.issue_date.map(|d| d.to_string())),
        InvoiceQueryDateType::Invoicing => json!(rfc3339(r.invoicing)),
        _ => json!(rfc3339(r.storage)),
    });
    let result = archive(&files, &metadata, job.tar_gz);
    let mut st = inner.state();
    let ext = if job.tar_gz { "tar.gz" } else { "zip" };
    let mut tokens = Vec::new();
    let outcome = result.map(|bytes| {
        let size = bytes.len() as u64;
        let parts: Vec<Part> = bytes
            .chunks(inner.config.retrieval.part_bytes)
            .enumerate()
            .map(|(i, chunk)| {
                let data = job.key.encrypt(chunk);
                let token = st.rng.hex32();
                tokens.push((token.clone(), i));
                Part {
                    name: format!("{reference}-{:03}.{ext}.aes", i + 1),
                    plain_size: chunk.len() as u64,
                    plain_hash: ksef_crypto::hash::sha256_base64(chunk),
                    encrypted_hash: ksef_crypto::hash::sha256_base64(&data),
                    data: Arc::new(data),
                    token,
                    url_until: now + PART_URL_TTL,
                }
            })
            .collect();
        Package {
            invoice_count: rows.len(),
            size,
            is_truncated: truncated,
            last,
            date_type,
            hwm: permanent.then(|| range.to.min(mark)),
            parts,
        }
    });
    for (t, i) in tokens {
        st.retrieval
            .part_tokens
            .insert(t, (reference.to_owned(), i));
    }
    let Some(export) = st.retrieval.exports.get_mut(reference) else {
        return;
    };
    export.job = None;
    export.completed = Some(now);
    match outcome {
        Ok(p) => {
            export.package = Some(p);
            export.status = Status::new(200, "Eksport faktur zakończony sukcesem");
        }
        Err(e) => {
            export.status = Status::new(500, "Nieznany błąd").with_detail(e.to_string());
        }
    }
}

fn export_status(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let r = req.param(0);
    let now = req.now;
    let mut st = inner.state();
    let not_found = || {
        ApiError::bad(
            21175,
            [format!(
                "Wynik zapytania o identyfikatorze {r} nie istnieje."
            )],
        )
    };
    let origin = inner.config.public_origin.clone();
    let export = match st.retrieval.exports.get_mut(r) {
        Some(e) if e.context == caller.context => e,
        _ => return Err(not_found()),
    };
    if now > export.created + STATUS_RETENTION {
        return Err(ApiError::Gone(format!(
            "Status eksportu {r} nie jest już dostępny (przechowywany 7 dni)."
        )));
    }
    let completed = export.completed;
    let expires = completed.map(|c| c + PACKAGE_TTL);
    if export.status.code == 200 && expires.is_some_and(|e| now > e) {
        export.status = Status::new(210, "Paczka faktur wygasła i nie jest już dostępna");
        export.package = None;
    }
    let mut out = json!({"status": export.status.to_json()});
    if let Some(c) = completed {
        out["completedDate"] = json!(rfc3339(c));
    }
    if let Some(p) = export.package.as_mut() {
        if let Some(e) = expires {
            out["packageExpirationDate"] = json!(rfc3339(e));
        }
        let parts: Vec<Value> = p
            .parts
            .iter_mut()
            .enumerate()
            .map(|(i, part)| {
                // Links are issued at each status query.
                part.url_until = now + PART_URL_TTL;
                json!({
                    "ordinalNumber": i + 1,
                    "partName": part.name,
                    "method": "GET",
                    "url": format!("{origin}/storage/export/{}", part.token),
                    "partSize": part.plain_size,
                    "partHash": part.plain_hash,
                    "encryptedPartSize": part.data.len(),
                    "encryptedPartHash": part.encrypted_hash,
                    "expirationDate": rfc3339(part.url_until),
                })
            })
            .collect();
        let mut pkg = json!({
            "invoiceCount": p.invoice_count,
            "size": p.size,
            "parts": parts,
            "isTruncated": p.is_truncated,
        });
        if let Some(last) = &p.last {
            let field = match p.date_type {
                InvoiceQueryDateType::Issue => "lastIssueDate",
                InvoiceQueryDateType::Invoicing => "lastInvoicingDate",
                _ => "lastPermanentStorageDate",
            };
            pkg[field] = last.clone();
        }
        if let Some(h) = p.hwm {
            pkg["permanentStorageHwmDate"] = json!(rfc3339(h));
        }
        out["package"] = pkg;
    }
    Ok(json_ok(StatusCode::OK, &out))
}

/// `GET /storage/export/{token}`: a presigned export part (no bearer, not rate-limited). An
/// unknown or expired link answers 403 like blob storage does.
pub(crate) fn export_part_download(
    inner: &Inner,
    token: &str,
    now: OffsetDateTime,
) -> Result<Response, ApiError> {
    let st = inner.state();
    let forbidden = || ApiError::Forbidden {
        reason_code: "insufficient-resource-access",
        detail: "Adres pobierania jest nieprawidłowy lub wygasł.".into(),
        security: json!({}),
    };
    let (reference, i) = st.retrieval.part_tokens.get(token).ok_or_else(forbidden)?;
    let part = st
        .retrieval
        .exports
        .get(reference)
        .and_then(|e| e.package.as_ref())
        .and_then(|p| p.parts.get(*i))
        .ok_or_else(forbidden)?;
    if now > part.url_until {
        return Err(forbidden());
    }
    let data = part.data.clone();
    let hash = part.encrypted_hash.clone();
    drop(st);
    let mut r = (StatusCode::OK, data.as_ref().clone()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&hash) {
        h.insert("x-ms-meta-hash", v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_and_truncation() {
        // 25 rows, pages of 10, no cap reached.
        assert_eq!(page_bounds(25, 0, 10, 100), (0, 10, true, false));
        assert_eq!(page_bounds(25, 2, 10, 100), (20, 25, false, false));
        // 25 rows, cap 20: the second page reaches the cap → truncated, more exist.
        assert_eq!(page_bounds(25, 1, 10, 20), (10, 20, true, true));
        assert_eq!(page_bounds(25, 0, 10, 20), (0, 10, true, false));
        // Exactly at the cap: not truncated.
        assert_eq!(page_bounds(20, 1, 10, 20), (10, 20, false, false));
        // Past the end.
        assert_eq!(page_bounds(5, 3, 10, 20), (5, 5, false, false));
    }

    #[test]
    fn warsaw_offsets_and_ranges() {
        use time::macros::datetime;
        assert_eq!(
            warsaw_offset(datetime!(2026-01-15 12:00 UTC)).whole_hours(),
            1
        );
        assert_eq!(
            warsaw_offset(datetime!(2026-07-15 12:00 UTC)).whole_hours(),
            2
        );
        // 2026: DST from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(
            warsaw_offset(datetime!(2026-03-29 00:59 UTC)).whole_hours(),
            1
        );
        assert_eq!(
            warsaw_offset(datetime!(2026-03-29 01:00 UTC)).whole_hours(),
            2
        );
        let t = filter_time("2026-01-15T10:00:00", "x").unwrap();
        assert_eq!(t, datetime!(2026-01-15 09:00 UTC));
        let t = filter_time("2026-01-15T10:00:00Z", "x").unwrap();
        assert_eq!(t, datetime!(2026-01-15 10:00 UTC));
        let t = filter_time("2026-01-15T10:00:00-02:00", "x").unwrap();
        assert_eq!(t, datetime!(2026-01-15 12:00 UTC));
        let now = datetime!(2026-06-01 00:00 UTC);
        let range =
            |from: &str, to: &str| date_range(&json!({"dateRange": {"from": from, "to": to}}), now);
        assert!(range("2026-01-31T00:00:00Z", "2026-04-30T00:00:00Z").is_ok());
        assert!(range("2026-01-31T00:00:00Z", "2026-04-30T00:00:01Z").is_err());
        // Three months in Warsaw time but not in UTC: 1 Jan 00:00 Warsaw = 31 Dec 23:00 UTC.
        assert!(range("2026-01-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00").is_ok());
        assert!(range("2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z").is_err());
        assert!(add_months(datetime!(2026-11-30 00:00 UTC), 3) == datetime!(2027-02-28 00:00 UTC));
    }
}
