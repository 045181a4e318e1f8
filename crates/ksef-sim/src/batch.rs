//! Batch sessions (ksef-api.md §7): open with file and part declarations, presigned part uploads
//! served by the simulator itself (`PUT {public_origin}/storage/batch/...`, no bearer,
//! `x-ms-blob-type: BlockBlob`), close, and asynchronous processing: check each part against its
//! declaration, decrypt each part with the session key, concatenate, check the archive against
//! its declaration, unpack (Zip or TarGz), and verify every invoice exactly as an online session
//! does (`sessions::check_invoice` + `sessions::settle_invoice`).
//!
//! Session statuses: 100 (opened) → 150 (processing, from close) → 200 with UPO pages, or 405
//! (part or archive does not match its declaration), 415 (key does not unwrap), 420 (more than
//! 10 000 invoices), 430 (archive does not unpack), 435 (a part does not decrypt), 440 (upload
//! window passed, or an empty archive), 445 (no invoice accepted).
//!
//! Uploaded parts are held in memory: the simulator is for tests and demos, where batches are
//! megabytes, not the gigabytes KSeF allows.

use std::io::Read;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ksef_crypto::encryption::SessionKey;
use ksef_model::api::{CompressionType, OpenBatchSessionRequest};
use ksef_model::form::FormCode;
use ksef_model::ids::ReferenceType;
use ksef_model::operations::OperationId;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::error::ApiError;
use crate::invoice_xml::InvoiceFacts;
use crate::keys::SimKeys;
use crate::server::{Inner, Req, empty, json_ok};
use crate::sessions::{MAX_INVOICES_PER_SESSION, no_session, session_mut};
use crate::state::{Invoice, Session, Status};

/// Most parts per batch.
pub(crate) const MAX_PARTS: usize = 50;
/// Largest part before encryption (100 MB, decimal).
pub(crate) const MAX_PART_SIZE: u64 = 100_000_000;
/// Largest encrypted part: a 100 MB chunk plus a full block of PKCS#7 padding.
pub(crate) const MAX_ENCRYPTED_PART_SIZE: u64 = MAX_PART_SIZE + 16;
/// Largest plaintext archive (5 GB, decimal).
pub(crate) const MAX_ARCHIVE_SIZE: u64 = 5_000_000_000;
/// Upload window per declared part (the window of every part is this times the part count).
pub(crate) const UPLOAD_WINDOW_PER_PART: Duration = Duration::minutes(20);
/// Largest invoice inside a batch (3 MB: invoices with attachments; 1 MB otherwise).
const MAX_INVOICE_SIZE: u64 = 3_000_000;
/// Largest invoice without attachments.
const MAX_PLAIN_INVOICE_SIZE: usize = 1_000_000;

/// One declared part and, once uploaded, its bytes.
/// `data` is stored beside the session (persist.rs), not in its JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct BatchPartData {
    pub size: u64,
    pub hash: [u8; 32],
    #[serde(skip)]
    pub data: Option<axum::body::Bytes>,
}

/// What a batch session declared at open, and the parts uploaded so far.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct BatchData {
    pub file_size: u64,
    pub file_hash: [u8; 32],
    pub tar_gz: bool,
    pub offline: bool,
    /// Declared parts, index = ordinal number − 1.
    pub parts: Vec<BatchPartData>,
    /// The secret in the presigned upload URLs.
    pub upload_token: String,
}

/// Handles this area's operations; `None` for any other operation (the dispatcher then tries the
/// next area).
pub(crate) fn handle(inner: &Arc<Inner>, req: &Req) -> Option<Result<Response, ApiError>> {
    match req.op.id {
        OperationId::OpenBatchSession => Some(open(inner, req)),
        OperationId::CloseBatchSession => Some(close(inner, req)),
        _ => None,
    }
}

fn open(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?.clone();
    let body: OpenBatchSessionRequest = req.json()?;
    let form = FormCode::from_parts(
        &body.form_code.system_code,
        &body.form_code.schema_version,
        &body.form_code.value,
    );
    if !form.batch_allowed() {
        return Err(ApiError::validation(
            "Wskazany kod formularza nie jest wspierany w sesji wsadowej.",
        ));
    }
    let file = &body.batch_file;
    if file.file_size == 0 || file.file_size > MAX_ARCHIVE_SIZE {
        return Err(ApiError::validation(format!(
            "'fileSize' must be between '1' and '{MAX_ARCHIVE_SIZE}' (less than or equal to '{MAX_ARCHIVE_SIZE}')."
        )));
    }
    let tar_gz = match &file.compression_type {
        None | Some(CompressionType::Zip) => false,
        Some(CompressionType::TarGz) => true,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "'compressionType' has an invalid value '{}' (Zip or TarGz).",
                other.as_str()
            )));
        }
    };
    if file.file_parts.is_empty() {
        return Err(ApiError::validation(
            "'fileParts' must contain at least one part.",
        ));
    }
    if file.file_parts.len() > MAX_PARTS {
        return Err(ApiError::bad(
            21161,
            [format!(
                "Przekroczono dozwoloną liczbę części pakietu ({}). Maksymalna liczba części to {MAX_PARTS}.",
                file.file_parts.len()
            )],
        ));
    }
    let n = file.file_parts.len();
    let mut parts: Vec<Option<BatchPartData>> = vec![None; n];
    for p in &file.file_parts {
        let slot = (p.ordinal_number as usize)
            .checked_sub(1)
            .and_then(|i| parts.get_mut(i))
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "'ordinalNumber' {} is out of range: parts are numbered 1 to {n}.",
                    p.ordinal_number
                ))
            })?;
        if slot.is_some() {
            return Err(ApiError::validation(format!(
                "'ordinalNumber' {} is declared twice.",
                p.ordinal_number
            )));
        }
        if p.file_size == 0 || p.file_size > MAX_ENCRYPTED_PART_SIZE {
            return Err(ApiError::bad(
                21157,
                [format!(
                    "Rozmiar części {} przekroczył dozwolony rozmiar 100MB.",
                    p.ordinal_number
                )],
            ));
        }
        *slot = Some(BatchPartData {
            size: p.file_size,
            hash: p.file_hash.as_bytes(),
            data: None,
        });
    }
    let parts: Vec<BatchPartData> = parts.into_iter().flatten().collect();
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
    // A key that does not unwrap is reported asynchronously: the session ends as 415 once
    // processing starts (the client uploads and closes as usual).
    let key = SessionKey::unwrap(
        &inner.keys.symmetric.key,
        body.encryption.encrypted_symmetric_key.as_slice(),
        body.encryption.initialization_vector.as_slice(),
    )
    .ok();
    let now = req.now;
    let mut st = inner.state();
    let reference = st.rng.reference(now, ReferenceType::BatchSession);
    let upload_token = st.rng.hex32();
    let deadline = now + UPLOAD_WINDOW_PER_PART * n as i32;
    let requests: Vec<serde_json::Value> = (1..=n)
        .map(|i| {
            json!({
                "ordinalNumber": i,
                "method": "PUT",
                "url": format!(
                    "{}/storage/batch/{reference}/{i}/{upload_token}",
                    inner.config.public_origin
                ),
                "headers": {"x-ms-blob-type": "BlockBlob"},
            })
        })
        .collect();
    st.sessions.insert(
        reference.clone(),
        Session {
            reference: reference.clone(),
            form,
            key,
            status: Status::new(100, "Sesja wsadowa rozpoczęta"),
            created: now,
            updated: now,
            valid_until: deadline,
            auth_ref: caller.auth_ref,
            context: caller.context,
            subject: caller.subject,
            invoices: Vec::new(),
            upo_pages: Vec::new(),
            batch: Some(BatchData {
                file_size: file.file_size,
                file_hash: file.file_hash.as_bytes(),
                tar_gz,
                offline: body.offline_mode.unwrap_or(false),
                parts,
                upload_token,
            }),
        },
    );
    Ok(json_ok(
        StatusCode::CREATED,
        &json!({"referenceNumber": reference, "partUploadRequests": requests}),
    ))
}

fn storage_forbidden(detail: &str) -> ApiError {
    ApiError::Forbidden {
        reason_code: "insufficient-resource-access",
        detail: detail.to_owned(),
        security: json!({}),
    }
}

/// `PUT /storage/batch/{session}/{ordinal}/{token}`: a presigned part upload (no bearer, not
/// rate-limited), answered 201 like blob storage. A second PUT of the same part replaces it.
/// The size and hash are checked against the declaration at close.
pub(crate) async fn upload_part(
    inner: &Arc<Inner>,
    rest: &str,
    headers: &HeaderMap,
    body: Body,
    now: OffsetDateTime,
) -> Result<Response, ApiError> {
    let mut it = rest.split('/');
    let (Some(sref), Some(ordinal), Some(token), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(ApiError::NotFound);
    };
    let idx = ordinal
        .parse::<usize>()
        .ok()
        .and_then(|o| o.checked_sub(1))
        .ok_or(ApiError::NotFound)?;
    let denied = "Adres przesyłania części jest nieprawidłowy lub wygasł.";
    {
        let st = inner.state();
        let s = st
            .sessions
            .get(sref)
            .ok_or_else(|| storage_forbidden(denied))?;
        let b = s.batch.as_ref().ok_or_else(|| storage_forbidden(denied))?;
        if b.upload_token != token || idx >= b.parts.len() {
            return Err(storage_forbidden(denied));
        }
        // Authorisation is checked when the request starts; an upload in progress is not cut.
        if now > s.valid_until || s.status.code != 100 {
            return Err(storage_forbidden(
                "Czas na przesłanie części minął albo sesja została zamknięta.",
            ));
        }
    }
    let blob_type = headers.get("x-ms-blob-type").and_then(|v| v.to_str().ok());
    if blob_type != Some("BlockBlob") {
        return Err(ApiError::validation(
            "Brak wymaganego nagłówka 'x-ms-blob-type: BlockBlob'.",
        ));
    }
    let limit = MAX_ENCRYPTED_PART_SIZE as usize;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(limit))?;
    let mut st = inner.state();
    let part = st
        .sessions
        .get_mut(sref)
        .filter(|s| s.status.code == 100)
        .and_then(|s| s.batch.as_mut())
        .and_then(|b| b.parts.get_mut(idx))
        .ok_or_else(|| storage_forbidden(denied))?;
    part.data = Some(bytes);
    Ok(empty(StatusCode::CREATED))
}

fn close(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?.clone();
    let r = req.param(0).to_owned();
    let now = req.now;
    let job = {
        let mut st = inner.state();
        let owner = st.is_owner(&caller.context, &caller.subject);
        let s = session_mut(&mut st, &r, &caller)?;
        if s.batch.is_none() {
            return Err(no_session(&r));
        }
        if s.subject != caller.subject && !owner {
            return Err(ApiError::Forbidden {
                reason_code: "insufficient-resource-access",
                detail: format!("Sesja {r} została otwarta przez inny podmiot."),
                security: json!({}),
            });
        }
        if s.status.code != 100 {
            return Err(ApiError::bad(
                21180,
                [format!(
                    "Status sesji {} uniemożliwia jej zamknięcie.",
                    s.status.code
                )],
            ));
        }
        if now > s.valid_until {
            cancel_for_timeout(s, now);
            return Err(ApiError::bad(
                21208,
                ["Sesja anulowana, przekroczony czas wysyłki.".to_owned()],
            ));
        }
        let Some(b) = s.batch.as_mut() else {
            return Err(no_session(&r));
        };
        for (i, p) in b.parts.iter().enumerate() {
            match &p.data {
                None => {
                    return Err(ApiError::bad(
                        21205,
                        [format!(
                            "Nie przesłano zadeklarowanej '{}' części pliku.",
                            i + 1
                        )],
                    ));
                }
                Some(d) if d.len() as u64 != p.size => {
                    return Err(ApiError::bad(
                        21157,
                        [format!(
                            "Zadeklarowany rozmiar części '{}' nie zgadza się z rzeczywistym.",
                            i + 1
                        )],
                    ));
                }
                Some(_) => {}
            }
        }
        let job = Job {
            key: s.key.clone(),
            form: s.form.clone(),
            file_size: b.file_size,
            file_hash: b.file_hash,
            tar_gz: b.tar_gz,
            // The uploaded bytes move to the processing task (they are not needed after it).
            parts: b
                .parts
                .iter_mut()
                .map(|p| (p.hash, p.data.take().unwrap_or_default()))
                .collect(),
        };
        s.status = Status::new(150, "Trwa przetwarzanie");
        s.updated = now;
        job
    };
    let task_inner = inner.clone();
    tokio::task::spawn_blocking(move || process(&task_inner, &r, job));
    Ok(empty(StatusCode::NO_CONTENT))
}

fn cancel_for_timeout(s: &mut Session, now: OffsetDateTime) {
    s.status = Status::new(440, "Sesja anulowana").with_detail("Przekroczono czas wysyłki");
    s.updated = now;
    if let Some(b) = s.batch.as_mut() {
        for p in &mut b.parts {
            p.data = None;
        }
    }
}

/// A batch session past its upload window without a close is cancelled (440).
pub(crate) fn expire_if_due(inner: &Inner, r: &str, now: OffsetDateTime) {
    let mut st = inner.state();
    if let Some(s) = st.sessions.get_mut(r)
        && s.batch.is_some()
        && s.status.code == 100
        && now > s.valid_until
    {
        cancel_for_timeout(s, now);
    }
}

/// What processing needs, taken out of the state at close.
struct Job {
    key: Option<SessionKey>,
    form: FormCode,
    file_size: u64,
    file_hash: [u8; 32],
    tar_gz: bool,
    /// (declared SHA-256, uploaded bytes) per part, in order.
    parts: Vec<([u8; 32], axum::body::Bytes)>,
}

/// Why a batch failed as a whole: the session status.
fn failure(code: i32, detail: impl Into<String>) -> Status {
    let description = match code {
        405 => "Błąd weryfikacji poprawności dostarczonych elementów paczki",
        415 => "Błąd odszyfrowania dostarczonego klucza",
        420 => "Przekroczony limit faktur w sesji",
        430 => "Błąd dekompresji pierwotnego archiwum",
        435 => "Błąd odszyfrowania zaszyfrowanych części archiwum",
        440 => "Sesja anulowana",
        _ => "Nieznany błąd",
    };
    Status::new(code, description).with_detail(detail)
}

/// Decrypts, checks, unpacks and verifies; runs on a blocking thread.
fn process(inner: &Inner, r: &str, job: Job) {
    let entries = match unpack_job(job.key.as_ref(), &job) {
        Ok(e) => e,
        Err(status) => {
            let now = inner.now();
            if let Some(s) = inner.state().sessions.get_mut(r) {
                s.status = status;
                s.updated = now;
            }
            return;
        }
    };
    // The file checks need no state: run them before taking the lock, on all cores.
    let checked = check_all(&entries, &job.form);
    let now = inner.now();
    {
        let mut guard = inner.state();
        let st = &mut *guard;
        let Some(s) = st.sessions.get(r) else {
            return;
        };
        let (received, offline) = (s.created, s.batch.as_ref().is_some_and(|b| b.offline));
        let mut invoices = Vec::with_capacity(entries.len());
        for (i, (name, xml)) in entries.iter().enumerate() {
            invoices.push(Invoice {
                ordinal: i as u32 + 1,
                reference: st.rng.reference(now, ReferenceType::Invoice),
                invoice_hash: ksef_crypto::hash::sha256_base64(xml),
                // A batch invoice's invoicingDate is the session's opening (§6.6).
                received,
                status: Status::new(150, "Trwa przetwarzanie"),
                extensions: None,
                ksef_number: None,
                invoice_number: None,
                issue_date: None,
                seller_nip: None,
                acquisition: None,
                permanent_storage: None,
                offline,
                xml: None,
                upo: None,
                upo_token: None,
                file_name: Some(name.clone()),
            });
        }
        if let Some(s) = st.sessions.get_mut(r) {
            s.invoices = invoices;
        }
        for (i, ((_, xml), checked)) in entries.into_iter().zip(checked).enumerate() {
            crate::sessions::settle_invoice(st, r, i, Some(xml), checked, now);
        }
    }
    crate::sessions::finish_session(inner, r);
}

/// The stateless checks of every entry, in order, split over the available cores.
fn check_all(entries: &[(String, Vec<u8>)], form: &FormCode) -> Vec<Result<InvoiceFacts, Status>> {
    let check = |xml: &[u8]| {
        if xml.len() > MAX_PLAIN_INVOICE_SIZE && !has_attachment(xml) {
            return Err(
                Status::new(430, "Błąd weryfikacji pliku faktury").with_detail(format!(
                    "Rozmiar faktury {} B przekracza dozwolone 1 MB.",
                    xml.len()
                )),
            );
        }
        crate::sessions::check_invoice(Some(xml), form)
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let per = entries.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(per)
            .map(|chunk| {
                let handle =
                    scope.spawn(move || chunk.iter().map(|(_, x)| check(x)).collect::<Vec<_>>());
                (chunk.len(), handle)
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(len, h)| {
                // A panicking check must not shift the results of the others.
                h.join().unwrap_or_else(|_| {
                    vec![
                        Err(Status::new(500, "Nieznany błąd")
                            .with_detail("Błąd weryfikacji faktury."));
                        len
                    ]
                })
            })
            .collect()
    })
}

fn has_attachment(xml: &[u8]) -> bool {
    xml.windows(b"Zalacznik>".len()).any(|w| w == b"Zalacznik>")
}

/// Parts → decrypted archive → (file name, XML) entries, or the session's failure status.
fn unpack_job(key: Option<&SessionKey>, job: &Job) -> Result<Vec<(String, Vec<u8>)>, Status> {
    let key = key.ok_or_else(|| {
        failure(
            415,
            "Nie udało się odszyfrować klucza symetrycznego kluczem publicznym KSeF.",
        )
    })?;
    for (i, (hash, data)) in job.parts.iter().enumerate() {
        if ksef_crypto::hash::sha256(data) != *hash {
            return Err(failure(
                405,
                format!("Skrót części '{}' nie zgadza się z zadeklarowanym.", i + 1),
            ));
        }
    }
    let mut archive = Vec::with_capacity(job.file_size.min(MAX_ARCHIVE_SIZE) as usize);
    for (i, (_, data)) in job.parts.iter().enumerate() {
        let plain = key.decrypt(data).map_err(|_| {
            failure(
                435,
                format!(
                    "Nie udało się odszyfrować części '{}' kluczem sesji.",
                    i + 1
                ),
            )
        })?;
        archive.extend_from_slice(&plain);
    }
    if archive.len() as u64 != job.file_size {
        return Err(failure(
            405,
            format!(
                "Zadeklarowany rozmiar paczki {} nie zgadza się z rzeczywistym {}.",
                job.file_size,
                archive.len()
            ),
        ));
    }
    // Unpacking comes before the archive hash check: a wrong IV garbles only the first block
    // of each part, and KSeF reports that as a decompression error (430), not as 405.
    let archive_hash = ksef_crypto::hash::sha256(&archive);
    let entries = if job.tar_gz {
        unpack_tar_gz(&archive)
    } else {
        unpack_zip(archive)
    }?;
    if archive_hash != job.file_hash {
        return Err(failure(
            405,
            "Skrót paczki nie zgadza się z zadeklarowanym.",
        ));
    }
    if entries.is_empty() {
        return Err(failure(440, "Nie przesłano faktur"));
    }
    Ok(entries)
}

fn too_many(n: usize) -> Status {
    failure(
        420,
        format!(
            "Paczka zawiera {n} faktur; dozwolone jest {MAX_INVOICES_PER_SESSION} faktur w sesji."
        ),
    )
}

fn decompress_error(e: impl std::fmt::Display) -> Status {
    failure(430, format!("Nie udało się rozpakować archiwum: {e}."))
}

/// Reads one entry, refusing one larger than an invoice may be (a decompression bomb).
fn read_limited(r: impl Read, name: &str) -> Result<Vec<u8>, Status> {
    let mut out = Vec::new();
    r.take(MAX_INVOICE_SIZE + 1)
        .read_to_end(&mut out)
        .map_err(decompress_error)?;
    if out.len() as u64 > MAX_INVOICE_SIZE {
        return Err(failure(
            430,
            format!("Plik '{name}' w archiwum przekracza dozwolony rozmiar faktury."),
        ));
    }
    Ok(out)
}

fn unpack_zip(archive: Vec<u8>) -> Result<Vec<(String, Vec<u8>)>, Status> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).map_err(decompress_error)?;
    let files = (0..zip.len())
        .filter(|&i| zip.by_index_raw(i).map(|f| f.is_file()).unwrap_or(true))
        .count();
    if files > MAX_INVOICES_PER_SESSION {
        return Err(too_many(files));
    }
    let mut out = Vec::with_capacity(files);
    for i in 0..zip.len() {
        let f = zip.by_index(i).map_err(decompress_error)?;
        if !f.is_file() {
            continue;
        }
        let name = f.name().map_err(decompress_error)?.into_owned();
        let bytes = read_limited(f, &name)?;
        out.push((name, bytes));
    }
    Ok(out)
}

fn unpack_tar_gz(archive: &[u8]) -> Result<Vec<(String, Vec<u8>)>, Status> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut out = Vec::new();
    for entry in tar.entries().map_err(decompress_error)? {
        let entry = entry.map_err(decompress_error)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if out.len() >= MAX_INVOICES_PER_SESSION {
            return Err(too_many(out.len() + 1));
        }
        let name = entry
            .path()
            .map_err(decompress_error)?
            .to_string_lossy()
            .into_owned();
        let bytes = read_limited(entry, &name)?;
        out.push((name, bytes));
    }
    Ok(out)
}
