//! Online sessions (ksef-api.md §6, §8): open, send, close, statuses, invoice lists, UPOs,
//! presigned UPO downloads and invoice download by KSeF number.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use ksef_crypto::encryption::SessionKey;
use ksef_model::api::{OpenOnlineSessionRequest, SendInvoiceRequest};
use ksef_model::form::FormCode;
use ksef_model::ids::{Nip, ReferenceType};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::auth::{continuation, page_size};
use crate::certificates::SessionLimits;
use crate::error::ApiError;
use crate::ids::rfc3339;
use crate::invoice_xml::InvoiceFacts;
use crate::keys::SimKeys;
use crate::server::{Caller, Inner, Req, empty, json_ok, xml_ok};
use crate::state::{Download, Ident, Invoice, Session, State, Status, UpoPage};

/// Online session lifetime.
pub(crate) const ONLINE_SESSION_TTL: Duration = Duration::hours(12);
/// Lifetime of a presigned UPO URL from the status query that produced it.
pub(crate) const DOWNLOAD_URL_TTL: Duration = Duration::hours(1);

pub(crate) fn no_session(r: &str) -> ApiError {
    ApiError::bad(
        21173,
        [format!(
            "Sesja o numerze referencyjnym {r} nie została znaleziona."
        )],
    )
}

/// The session `r` if it belongs to the caller's context (else 21173, as KSeF hides others').
pub(crate) fn session_mut<'a>(
    st: &'a mut State,
    r: &str,
    caller: &Caller,
) -> Result<&'a mut Session, ApiError> {
    match st.sessions.get_mut(r) {
        Some(s) if s.context == caller.context => Ok(s),
        _ => Err(no_session(r)),
    }
}

pub(crate) fn open_online(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?.clone();
    let body: OpenOnlineSessionRequest = req.json()?;
    let form = FormCode::from_parts(
        &body.form_code.system_code,
        &body.form_code.schema_version,
        &body.form_code.value,
    );
    if !form.online_allowed() {
        return Err(ApiError::validation(
            "Wskazany kod formularza nie jest wspierany.",
        ));
    }
    // `PefInvoiceWrite` (a Peppol provider) covers PEF and PEF_KOR only. Inferred: another form
    // is refused like a missing permission.
    let pef = matches!(form, FormCode::Pef3 | FormCode::PefKor3);
    let may_write_any = caller
        .permissions
        .iter()
        .any(|p| p == "InvoiceWrite" || p == "EnforcementOperations");
    if !pef && !may_write_any {
        return Err(ApiError::missing_permissions(
            &["InvoiceWrite", "EnforcementOperations"],
            &caller.permissions,
        ));
    }
    let pkid = body
        .encryption
        .public_key_id
        .as_ref()
        .map(|b| b.to_base64());
    SimKeys::check_public_key_id(&inner.keys.symmetric, pkid.as_deref()).map_err(|()| {
        ApiError::bad(
            21470,
            [format!("publicKeyId: {}", pkid.clone().unwrap_or_default())],
        )
    })?;
    if body.encryption.initialization_vector.len() != 16 {
        return Err(ApiError::validation(
            "Nieprawidłowa długość wektora inicjującego (IV). Oczekiwano 16 bajtów",
        ));
    }
    let key = SessionKey::unwrap(
        &inner.keys.symmetric.key,
        body.encryption.encrypted_symmetric_key.as_slice(),
        body.encryption.initialization_vector.as_slice(),
    )
    .ok();
    let now = req.now;
    let status = if key.is_some() {
        Status::new(100, "Sesja interaktywna otwarta")
    } else {
        Status::new(415, "Błąd odszyfrowania dostarczonego klucza")
    };
    let mut st = inner.state();
    let reference = st.rng.reference(now, ReferenceType::OnlineSession);
    let valid_until = now + ONLINE_SESSION_TTL;
    st.sessions.insert(
        reference.clone(),
        Session {
            reference: reference.clone(),
            form,
            key,
            status,
            created: now,
            updated: now,
            valid_until,
            auth_ref: caller.auth_ref,
            context: caller.context,
            subject: caller.subject,
            invoices: Default::default(),
            upo_pages: Vec::new(),
            batch: None,
        },
    );
    Ok(json_ok(
        StatusCode::CREATED,
        &json!({"referenceNumber": reference, "validUntil": rfc3339(valid_until)}),
    ))
}

fn session_open(s: &Session, now: OffsetDateTime) -> Result<(), ApiError> {
    if s.batch.is_some() {
        // Invoices of a batch session travel in its archive, never one by one.
        return Err(no_session(&s.reference));
    }
    if s.status.code != 100 || now >= s.valid_until {
        return Err(ApiError::bad(
            21180,
            [format!(
                "Status sesji {} uniemożliwia wysyłkę faktur.",
                s.status.code
            )],
        ));
    }
    Ok(())
}

pub(crate) fn send_invoice(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?.clone();
    let body: SendInvoiceRequest = req.json()?;
    let now = req.now;
    let session_ref = req.param(0).to_owned();
    let content = body.encrypted_invoice_content.as_slice();
    if body.encrypted_invoice_size != content.len() as u64 {
        return Err(ApiError::bad(
            21402,
            [format!(
                "Zadeklarowany rozmiar zaszyfrowanej faktury {} nie zgadza się z rzeczywistym {}.",
                body.encrypted_invoice_size,
                content.len()
            )],
        ));
    }
    if body.encrypted_invoice_hash.as_bytes() != ksef_crypto::hash::sha256(content) {
        return Err(ApiError::bad(
            21403,
            ["Skrót zaszyfrowanej faktury nie zgadza się z przesłaną treścią.".to_owned()],
        ));
    }
    let mut st = inner.state();
    // The context's current online limits (defaults or `/testdata/limits/context/session`).
    // Inferred: KSeF does not say whether a session keeps the limits of its opening; the
    // simulator applies the limits in force when each invoice arrives.
    let (limits, _) = st.certs.session_limits_for(&caller.context);
    let session = session_mut(&mut st, &session_ref, &caller)?;
    session_open(session, now)?;
    if session.invoices.len() >= limits.max_invoice_count() {
        return Err(ApiError::bad(
            21155,
            [format!(
                "Sesja o numerze referencyjnym {session_ref} osiągnęła dozwolony limit liczby faktur {}.",
                limits.max_invoices
            )],
        ));
    }
    // Inferred: a declared size above both size limits of the context is refused at once as
    // input validation (`invoiceSize`: "the maximum depends on the context's limits"); an
    // invoice without an attachment above the smaller limit fails later with 430, once its
    // content shows whether it carries one.
    let largest = limits
        .max_invoice_bytes()
        .max(limits.max_invoice_with_attachment_bytes());
    if body.invoice_size > largest {
        return Err(ApiError::validation(format!(
            "'invoiceSize' {} przekracza dozwolony rozmiar faktury {largest} B.",
            body.invoice_size
        )));
    }
    // Decrypting here (AES is cheap) lets plaintext size/hash mismatches be answered
    // synchronously, as KSeF does; a decryption failure is an asynchronous 435.
    let plain = session.key.as_ref().and_then(|k| k.decrypt(content).ok());
    if let Some(p) = &plain {
        if body.invoice_size != p.len() as u64 {
            return Err(ApiError::bad(
                21402,
                [format!(
                    "Zadeklarowany rozmiar faktury {} nie zgadza się z rzeczywistym {}.",
                    body.invoice_size,
                    p.len()
                )],
            ));
        }
        if body.invoice_hash.as_bytes() != ksef_crypto::hash::sha256(p) {
            return Err(ApiError::bad(
                21403,
                ["Skrót faktury nie zgadza się z odszyfrowaną treścią.".to_owned()],
            ));
        }
    }
    let offline = body.offline_mode.unwrap_or(false);
    let corrects = body
        .hash_of_corrected_invoice
        .as_ref()
        .map(|h| h.as_str().to_owned());
    if let Some(original) = &corrects {
        check_technical_correction(&st, &caller.context, original, offline)?;
    }
    let session = session_mut(&mut st, &session_ref, &caller)?;
    let ordinal = session.invoices.len() as u32 + 1;
    session.updated = now;
    let reference = st.rng.reference(now, ReferenceType::Invoice);
    let invoice = Invoice {
        ordinal,
        reference: reference.clone(),
        invoice_hash: body.invoice_hash.as_str().to_owned(),
        received: now,
        status: Status::new(100, "Faktura przyjęta do dalszego przetwarzania"),
        extensions: None,
        ksef_number: None,
        invoice_number: None,
        issue_date: None,
        seller_nip: None,
        acquisition: None,
        permanent_storage: None,
        offline,
        // Kept from receipt so that a restart under `--state-dir` can finish processing.
        xml: plain.clone(),
        upo: None,
        upo_token: None,
        file_name: None,
        corrects,
    };
    if let Some(s) = st.sessions.get_mut(&session_ref) {
        s.invoices.push(invoice);
    }
    drop(st);
    let task_inner = inner.clone();
    tokio::spawn(async move {
        process_invoice(&task_inner, &session_ref, ordinal, plain);
    });
    Ok(json_ok(
        StatusCode::ACCEPTED,
        &json!({"referenceNumber": reference}),
    ))
}

/// The synchronous checks of a technical correction (ksef-api.md §6.2, §11.4): a send with
/// `hashOfCorrectedInvoice` re-sends an offline invoice KSeF rejected, in an online session
/// (batch sessions have no such field: `OpenBatchSessionRequest` carries none).
///
/// Inferred (the documentation does not say how the original is found): the original is looked
/// up by its `invoiceHash` among the invoices sent in the caller's context, in any session,
/// online or batch — a rejected invoice may have no readable seller NIP (a 430), so the context
/// is the one key every rejected invoice has.
fn check_technical_correction(
    st: &State,
    context: &Ident,
    original: &str,
    offline: bool,
) -> Result<(), ApiError> {
    // "Korekta techniczna … z dodatkowym ustawieniem offlineMode: true". Inferred: without it the
    // request fails input validation.
    if !offline {
        return Err(ApiError::validation(
            "Korekta techniczna (hashOfCorrectedInvoice) wymaga ustawienia offlineMode: true.",
        ));
    }
    let invoices = || {
        st.sessions
            .values()
            .filter(|s| s.context == *context)
            .flat_map(|s| s.invoices.iter())
    };
    let originals: Vec<&Invoice> = invoices().filter(|i| i.invoice_hash == original).collect();
    // Inferred: a hash that names no invoice of the context is an input error (21405); the
    // documentation lists no code for it.
    if originals.is_empty() {
        return Err(ApiError::validation(format!(
            "Nie znaleziono faktury o skrócie {original} przesłanej w bieżącym kontekście; korekta techniczna dotyczy odrzuconej faktury offline."
        )));
    }
    let not_allowed = |detail: String| ApiError::bad(21167, [detail]);
    if originals.iter().any(|i| i.status.code == 200) {
        return Err(not_allowed(
            "Nie można wysłać korekty technicznej do prawidłowo przetworzonej faktury.".into(),
        ));
    }
    // One successful correction per original. Inferred: a correction still being processed
    // counts too (a second one is refused until the first is rejected), so two corrections of one
    // original can never both be accepted.
    let corrections = || invoices().filter(|i| i.corrects.as_deref() == Some(original));
    if corrections().any(|i| i.status.code == 200) {
        return Err(ApiError::bad(
            21166,
            ["Faktura posiada już przetworzoną prawidłowo korektę techniczną.".to_owned()],
        ));
    }
    if corrections().any(|i| i.status.code < 400) {
        return Err(ApiError::bad(
            21166,
            [format!(
                "Korekta techniczna faktury o skrócie {original} jest w trakcie przetwarzania."
            )],
        ));
    }
    // Inferred (21167, "the invoice status does not allow a technical correction"): the original
    // must be settled, rejected, declared offline, and not rejected for missing permissions
    // (410: "korekta techniczna nie dotyczy … braku uprawnień").
    if originals.iter().all(|i| i.status.code < 400) {
        return Err(not_allowed(format!(
            "Faktura o skrócie {original} jest jeszcze przetwarzana."
        )));
    }
    let rejected = || originals.iter().filter(|i| i.status.code >= 400);
    if !rejected().any(|i| i.offline) {
        return Err(not_allowed(
            "Korekta techniczna dotyczy wyłącznie faktur wystawionych w trybie offline (offlineMode: true)."
                .into(),
        ));
    }
    if rejected().all(|i| !i.offline || i.status.code == 410) {
        return Err(not_allowed(
            "Korekta techniczna nie dotyczy faktur odrzuconych z powodu braku uprawnień (410)."
                .into(),
        ));
    }
    Ok(())
}

/// Verifies a received online invoice and assigns its KSeF number (or a failure status).
fn process_invoice(inner: &Inner, session_ref: &str, ordinal: u32, plain: Option<Vec<u8>>) {
    let Some((form, limits)) = ({
        let st = inner.state();
        st.sessions
            .get(session_ref)
            .map(|s| (s.form.clone(), st.certs.session_limits_for(&s.context).0))
    }) else {
        return;
    };
    // The file checks (XML rules, FA(3) schema) need no state: run them outside the lock.
    let checked = check_invoice(plain.as_deref(), &form, limits);
    let now = inner.now();
    settle_invoice(
        &mut inner.state(),
        session_ref,
        ordinal as usize - 1,
        plain,
        checked,
        now,
    );
}

/// The stateless half of verifying one invoice, shared by online and batch sessions
/// (ksef-api.md §6.5): the decrypted bytes (`None`: decryption failed) → the invoice's facts, or
/// its failure status (435 decryption, 430 size, file rules and schema). `limits` are the
/// context's limits for this kind of session.
pub(crate) fn check_invoice(
    plain: Option<&[u8]>,
    form: &FormCode,
    limits: SessionLimits,
) -> Result<InvoiceFacts, Status> {
    let plain = plain.ok_or_else(|| {
        Status::new(435, "Błąd odszyfrowania pliku")
            .with_detail("Nie udało się odszyfrować faktury kluczem sesji.")
    })?;
    let failed =
        |detail: String| Status::new(430, "Błąd weryfikacji pliku faktury").with_detail(detail);
    // The size comes first (before parsing): an invoice with an attachment may use the larger
    // limit, one without only the smaller.
    let (limit, mb) = if has_attachment(plain) {
        (
            limits.max_invoice_with_attachment_bytes(),
            limits.max_invoice_with_attachment_mb,
        )
    } else {
        (limits.max_invoice_bytes(), limits.max_invoice_mb)
    };
    if plain.len() as u64 > limit {
        return Err(failed(format!(
            "Rozmiar faktury {} B przekracza dozwolony rozmiar {mb} MB.",
            plain.len()
        )));
    }
    crate::invoice_xml::check(plain, form).map_err(failed)
}

/// Whether the bytes hold a `Zalacznik` element (a cheap scan before parsing; the parsed
/// [`InvoiceFacts::has_attachment`] decides the consent check).
pub(crate) fn has_attachment(xml: &[u8]) -> bool {
    // FA: `Zalacznik`; PEF (UBL): an embedded document in `cac:Attachment`.
    // Compares only where the needle's first byte occurs: a slice comparison at every offset
    // cost seconds per 10 000-invoice batch in debug builds.
    let contains = |needle: &[u8]| {
        let Some((&first, _)) = needle.split_first() else {
            return true;
        };
        xml.iter()
            .enumerate()
            .filter(|&(_, &b)| b == first)
            .any(|(i, _)| xml.get(i..i + needle.len()) == Some(needle))
    };
    contains(b"Zalacznik>") || contains(b"EmbeddedDocumentBinaryObject")
}

/// The semantic verification of an invoice that passed the file checks (status 450 "Błąd
/// weryfikacji semantyki dokumentu faktury"): the rules KSeF applies to the content itself.
///
/// The one rule: the issue date (`P_1`; `P_4B` in FA_RR, `cbc:IssueDate` in PEF) may not be
/// later than the day the invoice was accepted (ksef-api.md §6.5) — what the official clients'
/// technical-correction tests use to get a 450. Inferred: "the day" is the calendar date in
/// Poland (CET/CEST) of `invoicingDate` (an online send's receipt, a batch session's opening).
/// KSeF does not recompute totals, and checks NIP check digits on production only, so neither is
/// checked here.
pub(crate) fn semantic_check(
    facts: &InvoiceFacts,
    form: &FormCode,
    received: OffsetDateTime,
) -> Option<Status> {
    let accepted = ksef_fa::date_in_poland(received);
    if facts.issue_date <= accepted {
        return None;
    }
    let field = match form {
        FormCode::FaRr1 => "P_4B",
        FormCode::Pef3 | FormCode::PefKor3 => "cbc:IssueDate",
        _ => "P_1",
    };
    Some(
        Status::new(450, "Błąd weryfikacji semantyki dokumentu faktury").with_detail(format!(
            "Data wystawienia faktury ({field}) {} jest późniejsza niż data jej przyjęcia w KSeF {accepted}.",
            facts.issue_date
        )),
    )
}

/// The stateful half, shared by online and batch sessions; runs under the state lock: seller vs
/// context (410), duplicates (440, with `extensions`), the KSeF number, automatic offline
/// marking. Sets the final status of invoice `idx` of session `session_ref`.
pub(crate) fn settle_invoice(
    st: &mut State,
    session_ref: &str,
    idx: usize,
    plain: Option<Vec<u8>>,
    checked: Result<InvoiceFacts, Status>,
    now: OffsetDateTime,
) {
    let Some(session) = st.sessions.get(session_ref) else {
        return;
    };
    let context = session.context.clone();
    let form = session.form.clone();
    let pef = matches!(form, FormCode::Pef3 | FormCode::PefKor3);
    let ordinal = idx as u32 + 1;
    let set = |st: &mut State, status: Status, ext: Option<Value>| {
        if let Some(inv) = st
            .sessions
            .get_mut(session_ref)
            .and_then(|s| s.invoices.get_mut(idx))
        {
            inv.status = status;
            inv.extensions = ext;
        }
    };
    let (facts, plain) = match (checked, plain) {
        (Ok(f), Some(p)) => (f, p),
        (Err(status), _) => return set(st, status, None),
        (Ok(_), None) => {
            return set(st, Status::new(435, "Błąd odszyfrowania pliku"), None);
        }
    };
    if let Some(inv) = st
        .sessions
        .get_mut(session_ref)
        .and_then(|s| s.invoices.get_mut(idx))
    {
        inv.invoice_number = Some(facts.number.clone());
    }
    // The seller's own context, or a subject the seller authorised (`/permissions/
    // authorizations/grants`, ksef-api.md §12, §17) for this kind of document: a Peppol
    // provider (`PefInvoicing`) for PEF and PEF_KOR, the purchaser issuing VAT RR invoices
    // (`RRInvoicing`) for FA_RR, the buyer (`SelfInvoicing`) for FA. Inferred: an
    // authorisation covers only its own kind of document.
    let seller_ctx: Ident = ("Nip".into(), facts.seller_nip.clone());
    let needed = match form {
        FormCode::Pef3 | FormCode::PefKor3 => "PefInvoicing",
        FormCode::FaRr1 => "RRInvoicing",
        _ => "SelfInvoicing",
    };
    let authorised = matches!(context.0.as_str(), "Nip" | "PeppolId")
        && (context.0 == "PeppolId") == pef
        && st.grants.iter().any(|g| {
            g.meta.kind == crate::permissions::Kind::Authorization
                && g.permission == needed
                && g.context == seller_ctx
                && g.subject == context
        });
    if !(context == seller_ctx || authorised) {
        set(
            st,
            Status::new(410, "Nieprawidłowy zakres uprawnień").with_detail(format!(
                "Brak uprawnień do wystawiania faktur w imieniu podmiotu {}.",
                facts.seller_nip
            )),
            None,
        );
        return;
    }
    // Semantic verification (450, ksef-api.md §6.5): the issue date may not be later than the
    // day KSeF accepted the invoice.
    if let Some(status) = st
        .sessions
        .get(session_ref)
        .and_then(|s| s.invoices.get(idx))
        .and_then(|inv| semantic_check(&facts, &form, inv.received))
    {
        set(st, status, None);
        return;
    }
    // Attachments need the seller's consent (`/testdata/attachment`; e-Urząd Skarbowy on
    // production), in online and batch sessions alike.
    if facts.has_attachment
        && !st
            .attachments
            .get(&facts.seller_nip)
            .is_some_and(|(allowed, _)| *allowed)
    {
        set(
            st,
            Status::new(415, "Brak możliwości wysyłania faktury z załącznikiem").with_detail(
                format!(
                    "Podmiot {} nie ma zgody na wysyłanie faktur z załącznikiem.",
                    facts.seller_nip
                ),
            ),
            None,
        );
        return;
    }
    let key = (
        facts.seller_nip.clone(),
        facts.kind.clone(),
        facts.number.clone(),
    );
    if let Some((ksef, orig_session)) = st.duplicates.get(&key).cloned() {
        set(
            st,
            Status::new(440, "Duplikat faktury").with_detail(format!(
                "Duplikat faktury. Faktura o numerze KSeF: {ksef} została już prawidłowo przesłana do systemu w sesji: {orig_session}"
            )),
            Some(json!({"originalSessionReferenceNumber": orig_session, "originalKsefNumber": ksef})),
        );
        return;
    }
    let Ok(nip) = facts.seller_nip.parse::<Nip>() else {
        set(
            st,
            Status::new(430, "Błąd weryfikacji pliku faktury")
                .with_detail("Nieprawidłowy NIP sprzedawcy."),
            None,
        );
        return;
    };
    let Some(ksef) = st.rng.ksef_number(&nip, now) else {
        return;
    };
    let token = st.rng.hex32();
    st.duplicates
        .insert(key, (ksef.clone(), session_ref.to_owned()));
    st.by_ksef_number
        .insert(ksef.clone(), (session_ref.to_owned(), ordinal));
    st.downloads.insert(
        token.clone(),
        (
            Download::InvoiceUpo {
                session: session_ref.to_owned(),
                ordinal,
            },
            now + DOWNLOAD_URL_TTL,
        ),
    );
    let Some(session) = st.sessions.get_mut(session_ref) else {
        return;
    };
    let Some(inv) = session.invoices.get_mut(idx) else {
        return;
    };
    inv.ksef_number = Some(ksef);
    inv.seller_nip = Some(facts.seller_nip);
    inv.issue_date = Some(facts.issue_date);
    inv.acquisition = Some(now);
    inv.permanent_storage = Some(now + Duration::milliseconds(100));
    // Automatic offline marking: an issue date before the day of receipt (for a batch: the
    // session's opening) means Offline.
    if facts.issue_date < inv.received.date() {
        inv.offline = true;
    }
    inv.xml = Some(plain);
    inv.upo_token = Some(token);
    // The invoice UPO is signed on first request (RSA signing per invoice would otherwise
    // dominate the send path); see `invoice_upo_bytes`.
    inv.status = Status::new(200, "Sukces");
}

/// The signed UPO of an accepted invoice, made and cached on first request.
fn invoice_upo_bytes(inner: &Inner, st: &mut State, sref: &str, ordinal: u32) -> Option<Vec<u8>> {
    let idx = (ordinal as usize).checked_sub(1)?;
    let s = st.sessions.get(sref)?;
    let inv = s.invoices.get(idx)?;
    if let Some(u) = &inv.upo {
        return Some(u.clone());
    }
    if inv.status.code != 200 {
        return None;
    }
    let proof = st
        .auths
        .get(&s.auth_ref)
        .map(crate::upo::proof_of)
        .unwrap_or_default();
    let upo = crate::upo::invoice_upo(inner, s, &proof, inv)?;
    st.sessions.get_mut(sref)?.invoices.get_mut(idx)?.upo = Some(upo.clone());
    Some(upo)
}

pub(crate) fn close_online(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?.clone();
    let r = req.param(0).to_owned();
    let now = req.now;
    {
        let mut st = inner.state();
        let owner = st.is_owner(&caller.context, &caller.subject);
        let s = session_mut(&mut st, &r, &caller)?;
        if s.batch.is_some() {
            return Err(no_session(&r));
        }
        // The subject that opened the session may close it, and so may the context's owner;
        // another authorised subject may not.
        if s.subject != caller.subject && !owner {
            return Err(ApiError::Forbidden {
                reason_code: "insufficient-resource-access",
                detail: format!("Sesja {r} została otwarta przez inny podmiot."),
                security: serde_json::json!({}),
            });
        }
        if s.status.code != 100 || now >= s.valid_until {
            return Err(ApiError::bad(
                21180,
                [format!(
                    "Status sesji {} uniemożliwia jej zamknięcie.",
                    s.status.code
                )],
            ));
        }
        s.status = Status::new(170, "Sesja interaktywna zamknięta");
        s.updated = now;
    }
    let task_inner = inner.clone();
    tokio::spawn(async move {
        // Wait for invoices still being processed (their tasks were spawned earlier).
        for _ in 0..10_000 {
            let pending = task_inner
                .state()
                .sessions
                .get(&r)
                .is_some_and(|s| s.invoices.iter().any(|i| i.status.code < 200));
            if !pending {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        finish_session(&task_inner, &r);
    });
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Ends a session whose invoices are all settled: 440 without invoices, 445 when none was
/// accepted, else 200 with the signed session UPO pages.
pub(crate) fn finish_session(inner: &Inner, r: &str) {
    let now = inner.now();
    let mut guard = inner.state();
    let st = &mut *guard;
    let Some(session) = st.sessions.get(r) else {
        return;
    };
    let ok = session
        .invoices
        .iter()
        .filter(|i| i.status.code == 200)
        .count();
    let status = if session.invoices.is_empty() {
        Status::new(440, "Sesja anulowana").with_detail("Nie przesłano faktur")
    } else if ok == 0 {
        Status::new(445, "Błąd weryfikacji, brak poprawnych faktur")
    } else if session.batch.is_some() {
        Status::new(200, "Sesja wsadowa przetworzona pomyślnie")
    } else {
        Status::new(200, "Sesja interaktywna przetworzona pomyślnie")
    };
    let mut pages = Vec::new();
    if status.code == 200 {
        let hash = st
            .auths
            .get(&session.auth_ref)
            .map(crate::upo::proof_of)
            .unwrap_or_default();
        for xml in crate::upo::session_upo_pages(inner, session, &hash).unwrap_or_default() {
            let reference = st.rng.reference(now, ReferenceType::SessionUpo);
            let token = st.rng.hex32();
            pages.push(UpoPage {
                reference,
                xml,
                token,
            });
        }
    }
    for (i, p) in pages.iter().enumerate() {
        st.downloads.insert(
            p.token.clone(),
            (
                Download::SessionUpo {
                    session: r.to_owned(),
                    page: i,
                },
                now + DOWNLOAD_URL_TTL,
            ),
        );
    }
    if let Some(s) = st.sessions.get_mut(r) {
        s.status = status;
        s.updated = now;
        s.upo_pages = pages;
    }
}

fn download_url(inner: &Inner, token: &str) -> String {
    format!("{}/storage/upo/{token}", inner.config.public_origin)
}

/// Refreshes a presigned URL's expiry ("generated at every status query") and returns it.
fn refresh_download(
    st: &mut State,
    inner: &Inner,
    token: &str,
    now: OffsetDateTime,
) -> (String, OffsetDateTime) {
    let until = now + DOWNLOAD_URL_TTL;
    if let Some(d) = st.downloads.get_mut(token) {
        d.1 = until;
    }
    (download_url(inner, token), until)
}

fn invoice_json(st: &mut State, inner: &Inner, inv: &Invoice, now: OffsetDateTime) -> Value {
    let mut v = json!({
        "ordinalNumber": inv.ordinal,
        "referenceNumber": inv.reference,
        "invoiceHash": inv.invoice_hash,
        "invoicingDate": rfc3339(inv.received),
        "status": inv.status.to_json(),
    });
    if let Some(e) = &inv.extensions {
        v["status"]["extensions"] = e.clone();
    }
    if let Some(n) = &inv.invoice_number {
        v["invoiceNumber"] = json!(n);
    }
    if let Some(n) = &inv.file_name {
        v["invoiceFileName"] = json!(n);
    }
    if let Some(k) = &inv.ksef_number {
        v["ksefNumber"] = json!(k);
        v["invoicingMode"] = json!(if inv.offline { "Offline" } else { "Online" });
    }
    if let Some(t) = inv.acquisition {
        v["acquisitionDate"] = json!(rfc3339(t));
    }
    if let Some(t) = inv.permanent_storage {
        v["permanentStorageDate"] = json!(rfc3339(t));
    }
    if let Some(token) = &inv.upo_token {
        let (url, until) = refresh_download(st, inner, token, now);
        v["upoDownloadUrl"] = json!(url);
        v["upoDownloadUrlExpirationDate"] = json!(rfc3339(until));
    }
    v
}

/// An online session past its 12 h is closed automatically (finished like a close).
fn expire_if_due(inner: &Inner, r: &str, now: OffsetDateTime) {
    crate::batch::expire_if_due(inner, r, now);
    let due = inner.state().sessions.get(r).is_some_and(|s| {
        s.status.code == 100
            && s.batch.is_none()
            && now >= s.valid_until
            && s.invoices.iter().all(|i| i.status.code >= 200)
    });
    if due {
        finish_session(inner, r);
    }
}

pub(crate) fn session_status(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let now = req.now;
    expire_if_due(inner, req.param(0), now);
    let mut guard = inner.state();
    let st = &mut *guard;
    let s = session_mut(st, req.param(0), caller)?;
    let total = s.invoices.len();
    let ok = s.invoices.iter().filter(|i| i.status.code == 200).count();
    let failed = s.invoices.iter().filter(|i| i.status.code >= 400).count();
    let mut v = json!({
        "status": s.status.to_json(),
        "dateCreated": rfc3339(s.created),
        "dateUpdated": rfc3339(s.updated),
        "invoiceCount": total,
        "successfulInvoiceCount": ok,
        "failedInvoiceCount": failed,
    });
    if s.status.code == 100 {
        v["validUntil"] = json!(rfc3339(s.valid_until));
    }
    let tokens: Vec<(String, String)> = s
        .upo_pages
        .iter()
        .map(|p| (p.reference.clone(), p.token.clone()))
        .collect();
    if !tokens.is_empty() {
        let pages: Vec<Value> = tokens
            .iter()
            .map(|(r, t)| {
                let (url, until) = refresh_download(st, inner, t, now);
                json!({"referenceNumber": r, "downloadUrl": url, "downloadUrlExpirationDate": rfc3339(until)})
            })
            .collect();
        v["upo"] = json!({"pages": pages});
    }
    Ok(json_ok(StatusCode::OK, &v))
}

pub(crate) fn list_invoices(inner: &Inner, req: &Req, failed: bool) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let size = page_size(req, 10, 10, 1000)?;
    let offset = continuation(req)?;
    let now = req.now;
    let mut guard = inner.state();
    let st = &mut *guard;
    let s = session_mut(st, req.param(0), caller)?;
    let wanted = |i: &&Invoice| !failed || i.status.code >= 400;
    let total = s.invoices.iter().filter(wanted).count();
    // Only the page is copied, and without the XML and UPO (a 10 000-invoice batch session
    // would otherwise copy its whole content for every page).
    let selected: Vec<Invoice> = s
        .invoices
        .iter()
        .filter(wanted)
        .skip(offset)
        .take(size)
        .map(without_content)
        .collect();
    let page: Vec<Value> = selected
        .iter()
        .map(|i| invoice_json(st, inner, i, now))
        .collect();
    let mut v = json!({"invoices": page});
    if offset + size < total {
        v["continuationToken"] = json!(format!("ofs-{}", offset + size));
    }
    Ok(json_ok(StatusCode::OK, &v))
}

/// A copy of an invoice's record without its XML and UPO (what a status answer needs).
fn without_content(i: &Invoice) -> Invoice {
    Invoice {
        ordinal: i.ordinal,
        reference: i.reference.clone(),
        invoice_hash: i.invoice_hash.clone(),
        received: i.received,
        status: i.status.clone(),
        extensions: i.extensions.clone(),
        ksef_number: i.ksef_number.clone(),
        invoice_number: i.invoice_number.clone(),
        issue_date: i.issue_date,
        seller_nip: i.seller_nip.clone(),
        acquisition: i.acquisition,
        permanent_storage: i.permanent_storage,
        offline: i.offline,
        xml: None,
        upo: None,
        upo_token: i.upo_token.clone(),
        file_name: i.file_name.clone(),
        corrects: i.corrects.clone(),
    }
}

fn find_invoice(s: &Session, r: &str) -> Option<Invoice> {
    s.invoices.iter().find(|i| i.reference == r).cloned()
}

pub(crate) fn invoice_status(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let mut guard = inner.state();
    let st = &mut *guard;
    let s = session_mut(st, req.param(0), caller)?;
    let inv = find_invoice(s, req.param(1)).ok_or_else(|| {
        ApiError::validation(format!(
            "Faktura o numerze referencyjnym {} nie istnieje w sesji.",
            req.param(1)
        ))
    })?;
    let v = invoice_json(st, inner, &inv, req.now);
    Ok(json_ok(StatusCode::OK, &v))
}

fn no_upo() -> ApiError {
    ApiError::bad(
        21178,
        ["Nie znaleziono UPO dla podanych kryteriów.".to_owned()],
    )
}

pub(crate) fn invoice_upo_by_ref(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let mut st = inner.state();
    let s = session_mut(&mut st, req.param(0), caller)?;
    let inv = find_invoice(s, req.param(1)).ok_or_else(no_upo)?;
    let sref = s.reference.clone();
    invoice_upo_bytes(inner, &mut st, &sref, inv.ordinal)
        .map(xml_ok)
        .ok_or_else(no_upo)
}

pub(crate) fn invoice_upo_by_ksef(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let mut st = inner.state();
    let (sref, ordinal) = st
        .by_ksef_number
        .get(req.param(1))
        .cloned()
        .ok_or_else(no_upo)?;
    if sref != req.param(0) {
        return Err(no_upo());
    }
    session_mut(&mut st, &sref, caller)?;
    invoice_upo_bytes(inner, &mut st, &sref, ordinal)
        .map(xml_ok)
        .ok_or_else(no_upo)
}

pub(crate) fn session_upo(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let mut st = inner.state();
    let s = session_mut(&mut st, req.param(0), caller)?;
    s.upo_pages
        .iter()
        .find(|p| p.reference == req.param(1))
        .map(|p| xml_ok(p.xml.clone()))
        .ok_or_else(no_upo)
}

/// `GET /storage/upo/{token}`: presigned UPO download (no bearer, not rate-limited). An unknown
/// or expired token answers 403 like blob storage does.
pub(crate) fn presigned_download(
    inner: &Inner,
    rest: &str,
    now: OffsetDateTime,
) -> Result<Response, ApiError> {
    let token = rest.strip_prefix("upo/").ok_or(ApiError::NotFound)?;
    let mut st = inner.state();
    let forbidden = || ApiError::Forbidden {
        reason_code: "insufficient-resource-access",
        detail: "Adres pobierania jest nieprawidłowy lub wygasł.".into(),
        security: json!({}),
    };
    let (target, until) = st.downloads.get(token).cloned().ok_or_else(forbidden)?;
    if now > until {
        return Err(forbidden());
    }
    let xml = match target {
        Download::InvoiceUpo { session, ordinal } => {
            invoice_upo_bytes(inner, &mut st, &session, ordinal)
        }
        Download::SessionUpo { session, page } => st
            .sessions
            .get(&session)
            .and_then(|s| s.upo_pages.get(page))
            .map(|p| p.xml.clone()),
    };
    xml.map(xml_ok).ok_or(ApiError::NotFound)
}
