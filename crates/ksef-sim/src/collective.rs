//! Collective identifiers ("identyfikator zbiorczy", API 2.7.0): one number
//! `NIP-IZRRRRMM-FFFFFFFFFFFF-FF` for up to 500 invoices of one seller, e.g. to pay them at once.
//!
//! - `POST /collective-identifiers`: every invoice must be accepted, stored and visible to the
//!   caller's context (71001 otherwise), all from the same seller (21405), at most 500 (21405),
//!   and an invoice may belong to at most 132 identifiers created in one context (71002).
//! - `POST /collective-identifiers/query`: identifiers created in the context, and for a NIP
//!   context also those of invoices it sold (the seller NIP leads the number); sorted by
//!   `dateCreated` then number, both descending; at most 100 days between the dates.
//! - `GET …/{number}/invoices`: the invoices by KSeF number descending; payment amount and
//!   currency only for the creating context or a party of the invoice (`detailsHidden` else).
//! - `GET …/ksef/{ksefNumber}`: the identifiers an invoice visible to the caller belongs to.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use ksef_model::api::{CollectiveIdentifiersQueryRequest, GenerateCollectiveIdentifierRequest};
use ksef_model::operations::OperationId;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::auth::{continuation, page_size};
use crate::error::ApiError;
use crate::ids::rfc3339;
use crate::invoices::{stored_meta, visible_to};
use crate::server::{Inner, Req, json_ok};
use crate::state::{Ident, State};

/// Invoices per identifier.
pub(crate) const MAX_INVOICES: usize = 500;
/// Identifiers one invoice may belong to within one context.
pub(crate) const MAX_PER_INVOICE: usize = 132;
/// The widest `dateCreatedFrom`..`dateCreatedTo` window of a query.
const MAX_QUERY_WINDOW: Duration = Duration::days(100);

/// This area's state (one field of [`State`]).
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct CollectiveState {
    ids: Vec<Collective>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Collective {
    number: String,
    seller_nip: String,
    context: Ident,
    created: OffsetDateTime,
    invoices: Vec<Entry>,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Entry {
    ksef: String,
    payment: Option<(f64, String)>,
    description: Option<String>,
}

/// Handles this area's operations; `None` for any other operation.
pub(crate) fn handle(inner: &Arc<Inner>, req: &Req) -> Option<Result<Response, ApiError>> {
    match req.op.id {
        OperationId::CreateCollectiveIdentifier => Some(create(inner, req)),
        OperationId::QueryCollectiveIdentifiers => Some(query(inner, req)),
        OperationId::CollectiveIdentifierInvoices => Some(invoices(inner, req)),
        OperationId::CollectiveIdentifiersByKsefNumber => Some(by_ksef_number(inner, req)),
        _ => None,
    }
}

/// `NIP-IZRRRRMM-` + 12 uppercase hex digits + `-` + CRC-8 of everything before it.
fn mint(st: &mut State, seller: &str, now: OffsetDateTime) -> String {
    let tech = st.rng.next_u64() & 0xFFFF_FFFF_FFFF;
    let data = format!(
        "{seller}-IZ{:04}{:02}-{tech:012X}",
        now.year(),
        now.month() as u8
    );
    let crc = ksef_model::ids::crc8(data.as_bytes());
    format!("{data}-{crc:02X}")
}

/// Whether `s` has the identifier's format and a correct checksum.
pub(crate) fn well_formed(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let hex = |r: std::ops::Range<usize>| {
        b[r].iter()
            .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))
    };
    b.len() == 35
        && digits(0..10)
        && b[10..13] == *b"-IZ"
        && digits(13..19)
        && b[19] == b'-'
        && hex(20..32)
        && b[32] == b'-'
        && hex(33..35)
        && format!("{:02X}", ksef_model::ids::crc8(&b[..32])).as_bytes() == &b[33..]
}

fn cannot_assign(k: &str) -> ApiError {
    ApiError::bad(
        71001,
        [format!(
            "Faktura o numerze KSeF {k} nie może zostac przypisana do Identyfikatora Zbiorczego."
        )],
    )
}

fn create(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let body: GenerateCollectiveIdentifierRequest = req.json()?;
    if body.invoices.is_empty() {
        return Err(ApiError::validation("'invoices' must not be empty."));
    }
    if body.invoices.len() > MAX_INVOICES {
        return Err(ApiError::validation(format!(
            "'invoices' may have at most {MAX_INVOICES} items, found {}.",
            body.invoices.len()
        )));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(body.invoices.len());
    for inv in &body.invoices {
        let k = inv.ksef_number.as_str();
        if entries.iter().any(|e| e.ksef == k) {
            return Err(ApiError::validation(format!(
                "The invoice {k} is listed more than once."
            )));
        }
        if inv
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 512)
        {
            return Err(ApiError::validation(format!(
                "'description' of invoice {k} is longer than 512 characters."
            )));
        }
        let payment = match &inv.payment {
            Some(p) if p.currency.is_unknown() => {
                return Err(ApiError::validation(format!(
                    "'currency' of invoice {k} has an unknown value '{}'.",
                    p.currency.as_str()
                )));
            }
            Some(p) if !p.amount.is_finite() || p.amount < 0.0 => {
                return Err(ApiError::validation(format!(
                    "'amount' of invoice {k} must be a non-negative number."
                )));
            }
            Some(p) => Some((p.amount, p.currency.as_str().to_owned())),
            None => None,
        };
        entries.push(Entry {
            ksef: k.to_owned(),
            payment,
            description: inv.description.clone(),
        });
    }
    let mut st = inner.state();
    let st = &mut *st;
    let mut seller: Option<String> = None;
    for e in &entries {
        let meta = stored_meta(st, &e.ksef, req.now).ok_or_else(|| cannot_assign(&e.ksef))?;
        if !visible_to(&meta, &caller.context) {
            return Err(cannot_assign(&e.ksef));
        }
        match &seller {
            None => seller = Some(meta.seller_nip.clone()),
            Some(s) if *s != meta.seller_nip => {
                return Err(ApiError::validation(format!(
                    "All invoices of a collective identifier must have the same seller: {} has seller {}, the first invoice {s}.",
                    e.ksef, meta.seller_nip
                )));
            }
            Some(_) => {}
        }
        let used = st
            .collective
            .ids
            .iter()
            .filter(|c| c.context == caller.context && c.invoices.iter().any(|i| i.ksef == e.ksef))
            .count();
        if used >= MAX_PER_INVOICE {
            return Err(ApiError::bad(
                71002,
                [format!(
                    "Faktura o numerze KSeF {} jest już przypisana do maksymalnej liczby Identyfikatorów Zbiorczych.",
                    e.ksef
                )],
            ));
        }
    }
    let Some(seller) = seller else {
        return Err(ApiError::validation("'invoices' must not be empty."));
    };
    let number = loop {
        let n = mint(st, &seller, req.now);
        if !st.collective.ids.iter().any(|c| c.number == n) {
            break n;
        }
    };
    st.collective.ids.push(Collective {
        number: number.clone(),
        seller_nip: seller,
        context: caller.context.clone(),
        created: req.now,
        invoices: entries,
    });
    Ok(json_ok(
        StatusCode::CREATED,
        &json!({"collectiveIdentifierNumber": number}),
    ))
}

/// Whether the caller's context may see the identifier: it created it, or (NIP context) it is
/// the seller.
fn may_see(c: &Collective, ctx: &Ident) -> bool {
    c.context == *ctx || (ctx.0 == "Nip" && ctx.1 == c.seller_nip)
}

fn newest_first(a: &&Collective, b: &&Collective) -> std::cmp::Ordering {
    b.created
        .cmp(&a.created)
        .then_with(|| b.number.cmp(&a.number))
}

fn page<T: serde::Serialize>(
    key: &str,
    items: &[T],
    offset: usize,
    size: usize,
) -> Result<Response, ApiError> {
    let chunk: Vec<&T> = items.iter().skip(offset).take(size).collect();
    let mut v = json!({ key: chunk });
    if offset + size < items.len() {
        v["continuationToken"] = json!(format!("ofs-{}", offset + size));
    }
    Ok(json_ok(StatusCode::OK, &v))
}

fn query(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let size = page_size(req, 10, 10, 200)?;
    let offset = continuation(req)?;
    let q: CollectiveIdentifiersQueryRequest = req.json()?;
    let from = q.date_created_from.as_offset_date_time();
    let to = q.date_created_to.as_offset_date_time();
    if to < from {
        return Err(ApiError::validation(
            "'dateCreatedTo' must not be before 'dateCreatedFrom'.",
        ));
    }
    if to - from > MAX_QUERY_WINDOW {
        return Err(ApiError::validation(
            "The range 'dateCreatedFrom'..'dateCreatedTo' may span at most 100 days.",
        ));
    }
    let st = inner.state();
    let mut found: Vec<&Collective> = st
        .collective
        .ids
        .iter()
        .filter(|c| may_see(c, &caller.context))
        .filter(|c| c.created >= from && c.created <= to)
        .filter(|c| {
            q.collective_identifier_number
                .as_ref()
                .is_none_or(|n| *n == c.number)
        })
        .filter(|c| {
            q.invoice_count_from
                .is_none_or(|n| c.invoices.len() as i64 >= i64::from(n))
        })
        .filter(|c| {
            q.invoice_count_to
                .is_none_or(|n| c.invoices.len() as i64 <= i64::from(n))
        })
        .filter(|c| {
            q.created_in_current_context
                .is_none_or(|b| b == (c.context == caller.context))
        })
        .collect();
    found.sort_by(newest_first);
    let items: Vec<Value> = found
        .iter()
        .map(|c| {
            json!({
                "collectiveIdentifierNumber": c.number,
                "dateCreated": rfc3339(c.created),
                "invoiceCount": c.invoices.len(),
                "createdInCurrentContext": c.context == caller.context,
            })
        })
        .collect();
    page("collectiveIdentifiers", &items, offset, size)
}

fn invoices(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let size = page_size(req, 10, 10, 200)?;
    let offset = continuation(req)?;
    let number = req.param(0);
    if !well_formed(number) {
        return Err(ApiError::validation(format!(
            "'{number}' is not a collective identifier (NIP-IZRRRRMM-FFFFFFFFFFFF-FF with a valid CRC-8)."
        )));
    }
    let mut guard = inner.state();
    let st = &mut *guard;
    let not_found = || {
        ApiError::validation(format!(
            "Identyfikator zbiorczy {number} nie został znaleziony."
        ))
    };
    let idx = st
        .collective
        .ids
        .iter()
        .position(|c| c.number == number)
        .ok_or_else(not_found)?;
    let creator = st.collective.ids[idx].context == caller.context;
    let mut rows: Vec<Entry> = st.collective.ids[idx].invoices.clone();
    rows.sort_by(|a, b| b.ksef.cmp(&a.ksef));
    let mut items = Vec::with_capacity(rows.len());
    for Entry {
        ksef,
        payment,
        description,
    } in rows
    {
        let party = creator
            || stored_meta(st, &ksef, req.now).is_some_and(|m| visible_to(&m, &caller.context));
        let mut v = json!({"ksefNumber": ksef, "detailsHidden": false});
        if let Some(d) = description {
            v["description"] = json!(d);
        }
        match payment {
            Some((amount, currency)) if party => {
                v["payment"] = json!({"amount": amount, "currency": currency});
            }
            Some(_) => v["detailsHidden"] = json!(true),
            None => {}
        }
        items.push(v);
    }
    page("invoices", &items, offset, size)
}

fn by_ksef_number(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let size = page_size(req, 10, 10, 200)?;
    let offset = continuation(req)?;
    let k = req.param(0);
    if k.parse::<ksef_model::ids::KsefNumber>().is_err() {
        return Err(ApiError::validation(format!("'{k}' is not a KSeF number.")));
    }
    let mut guard = inner.state();
    let st = &mut *guard;
    let visible = stored_meta(st, k, req.now).is_some_and(|m| visible_to(&m, &caller.context));
    if !visible {
        return Err(ApiError::validation(format!(
            "Faktura o numerze KSeF {k} nie została znaleziona."
        )));
    }
    let mut found: Vec<&Collective> = st
        .collective
        .ids
        .iter()
        .filter(|c| c.invoices.iter().any(|e| e.ksef == k))
        .collect();
    found.sort_by(newest_first);
    let items: Vec<Value> = found
        .iter()
        .map(|c| {
            json!({
                "collectiveIdentifierNumber": c.number,
                "dateCreated": rfc3339(c.created),
                "createdInCurrentContext": c.context == caller.context,
            })
        })
        .collect();
    page("collectiveIdentifiers", &items, offset, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_is_well_formed() {
        assert!(well_formed("1111111111-IZ202607-65ED02180000-E7"));
        assert!(!well_formed("1111111111-IZ202607-65ED02180000-E8"));
        assert!(!well_formed("1111111111-IZ202607-65ed02180000-E7"));
        assert!(!well_formed("1111111111-XX202607-65ED02180000-E7"));
        assert!(!well_formed("short"));
    }

    #[test]
    fn minted_numbers_are_well_formed() {
        let mut st = State::new(Some(7));
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        for _ in 0..50 {
            let n = mint(&mut st, "5265877635", now);
            assert!(well_formed(&n), "{n}");
            assert!(n.starts_with("5265877635-IZ"));
        }
    }
}
