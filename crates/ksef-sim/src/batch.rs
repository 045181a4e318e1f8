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
//! Nothing of a batch sits in memory whole, so a 5 GB batch works as a 5 MB one: each uploaded
//! part streams into an anonymous temporary file (hashed as it arrives; deleted when the session
//! no longer holds it), processing decrypts the parts one after another into a temporary
//! archive file, checks it in one pass over its entries, and verifies the invoices in bounded
//! windows ([`WINDOW_INVOICES`] / [`WINDOW_BYTES`]). Only accepted invoices stay in the state.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
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
use sha2::Digest as _;
use time::{Duration, OffsetDateTime};

use crate::certificates::SessionLimits;
use crate::error::ApiError;
use crate::invoice_xml::InvoiceFacts;
use crate::keys::SimKeys;
use crate::server::{Inner, Req, empty, json_ok};
use crate::sessions::{no_session, session_mut};
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
/// Most invoices verified together (in parallel, then settled under one lock).
const WINDOW_INVOICES: usize = 1024;
/// Most invoice bytes held in memory at once while a batch is verified.
const WINDOW_BYTES: usize = 64 * 1024 * 1024;

/// An uploaded part spooled to an anonymous temporary file (removed by the OS when the last
/// handle closes), with the size and SHA-256 computed while it arrived.
#[derive(Debug, Clone)]
pub(crate) struct SpooledPart {
    file: Arc<File>,
    /// Bytes received.
    pub len: u64,
    /// SHA-256 of the bytes received.
    pub sha256: [u8; 32],
}

impl SpooledPart {
    /// Spools `data` (a part restored from `--state-dir`).
    pub fn from_bytes(data: &[u8]) -> std::io::Result<Self> {
        let mut file = tempfile::tempfile()?;
        file.write_all(data)?;
        file.flush()?;
        Ok(SpooledPart {
            file: Arc::new(file),
            len: data.len() as u64,
            sha256: ksef_crypto::hash::sha256(data),
        })
    }

    /// The whole part (for `--state-dir`, which keeps uploaded parts in its database).
    pub fn read_all(&self) -> std::io::Result<Vec<u8>> {
        let mut f: &File = &self.file;
        f.seek(SeekFrom::Start(0))?;
        let mut out = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        f.read_to_end(&mut out)?;
        Ok(out)
    }
}

/// Streams `body` into a temporary file, refusing more than `limit` bytes (413).
async fn spool(body: Body, limit: u64) -> Result<SpooledPart, ApiError> {
    use futures_util::StreamExt as _;
    use tokio::io::AsyncWriteExt as _;
    let unavailable = |e: std::io::Error| {
        ApiError::StorageUnavailable(format!("Nie udało się zapisać części: {e}"))
    };
    let mut file = tokio::fs::File::from_std(tempfile::tempfile().map_err(unavailable)?);
    let mut hasher = sha2::Sha256::new();
    let mut len = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::validation(format!("Przesyłanie części zostało przerwane: {e}."))
        })?;
        len += chunk.len() as u64;
        if len > limit {
            return Err(ApiError::PayloadTooLarge(
                usize::try_from(limit).unwrap_or(usize::MAX),
            ));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(unavailable)?;
    }
    file.flush().await.map_err(unavailable)?;
    Ok(SpooledPart {
        file: Arc::new(file.into_std().await),
        len,
        sha256: hasher.finalize().into(),
    })
}

/// One declared part and, once uploaded, its spooled bytes.
/// `data` is stored beside the session (persist.rs), not in its JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct BatchPartData {
    pub size: u64,
    pub hash: [u8; 32],
    #[serde(skip)]
    pub data: Option<SpooledPart>,
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
            invoices: Default::default(),
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
    let spooled = spool(body, MAX_ENCRYPTED_PART_SIZE).await?;
    let mut st = inner.state();
    let part = st
        .sessions
        .get_mut(sref)
        .filter(|s| s.status.code == 100)
        .and_then(|s| s.batch.as_mut())
        .and_then(|b| b.parts.get_mut(idx))
        .ok_or_else(|| storage_forbidden(denied))?;
    part.data = Some(spooled);
    Ok(empty(StatusCode::CREATED))
}

fn close(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?.clone();
    let r = req.param(0).to_owned();
    let now = req.now;
    let job = {
        let mut st = inner.state();
        let owner = st.is_owner(&caller.context, &caller.subject);
        // The context's batch limits when processing starts (Inferred, as online: the limits in
        // force at close, not at opening).
        let (_, limits) = st.certs.session_limits_for(&caller.context);
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
                Some(d) if d.len != p.size => {
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
        let job = take_job(s, limits);
        s.status = Status::new(150, "Trwa przetwarzanie");
        s.updated = now;
        job
    };
    let task_inner = inner.clone();
    let delay = inner.config.batch_delay;
    if delay.is_zero() {
        tokio::task::spawn_blocking(move || process(&task_inner, &r, job, 0));
    } else {
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tokio::task::spawn_blocking(move || process(&task_inner, &r, job, 0)).await;
        });
    }
    Ok(empty(StatusCode::NO_CONTENT))
}

/// What processing needs, taken from a closed session (the spooled parts move to the
/// processing task; their files go with it).
fn take_job(s: &mut Session, limits: SessionLimits) -> Job {
    let (file_size, file_hash, tar_gz, parts) = match s.batch.as_mut() {
        Some(b) => (
            b.file_size,
            b.file_hash,
            b.tar_gz,
            b.parts
                .iter_mut()
                .filter_map(|p| Some((p.hash, p.data.take()?)))
                .collect(),
        ),
        None => (0, [0; 32], false, Vec::new()),
    };
    Job {
        key: s.key.clone(),
        form: s.form.clone(),
        file_size,
        file_hash,
        tar_gz,
        limits,
        parts,
    }
}

/// Processes the batch sessions a stop interrupted (`--state-dir`): closed (150) and not
/// finished. Their parts were stored at upload; the invoices settled before the stop are kept
/// and processing goes on after them (the archive's entries come in the same order).
pub(crate) fn resume(inner: &Arc<Inner>) {
    let jobs: Vec<(String, Job, usize)> = {
        let mut guard = inner.state();
        let st = &mut *guard;
        let closed: Vec<String> = st
            .sessions
            .iter()
            .filter(|(_, s)| s.batch.is_some() && s.status.code == 150)
            .map(|(r, _)| r.clone())
            .collect();
        let mut jobs = Vec::new();
        for r in closed {
            let Some(context) = st.sessions.get(&r).map(|s| s.context.clone()) else {
                continue;
            };
            let (_, limits) = st.certs.session_limits_for(&context);
            let Some(s) = st.sessions.get_mut(&r) else {
                continue;
            };
            let declared = s.batch.as_ref().map_or(0, |b| b.parts.len());
            let done = s.invoices.len();
            let job = take_job(s, limits);
            if job.parts.len() != declared {
                s.status = failure(
                    500,
                    "Części paczki nie zachowały się po restarcie symulatora.",
                );
                continue;
            }
            jobs.push((r, job, done));
        }
        jobs
    };
    for (r, job, done) in jobs {
        let task_inner = inner.clone();
        tokio::task::spawn_blocking(move || process(&task_inner, &r, job, done));
    }
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
    /// The context's batch-session limits (invoice sizes and count).
    limits: SessionLimits,
    /// (declared SHA-256, spooled part) per part, in order.
    parts: Vec<([u8; 32], SpooledPart)>,
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

/// A temporary file could not be written or read (disk full, say): status 500.
fn io_failure(e: std::io::Error) -> Status {
    failure(500, format!("Błąd zapisu paczki: {e}."))
}

/// Decrypts, checks, unpacks and verifies; runs on a blocking thread. The first `done` entries
/// were settled before a restart and are skipped.
fn process(inner: &Inner, r: &str, job: Job, done: usize) {
    let outcome =
        decrypt_and_check(&job).and_then(|archive| verify_entries(inner, r, &job, &archive, done));
    match outcome {
        Ok(()) => crate::sessions::finish_session(inner, r),
        Err(status) => {
            let now = inner.now();
            if let Some(s) = inner.state().sessions.get_mut(r) {
                s.status = status;
                s.updated = now;
            }
        }
    }
}

/// Counts and hashes what passes through to the inner writer.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: sha2::Sha256,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Parts → the decrypted archive in a temporary file, checked against its declaration and
/// unpacked once (every entry read and size-checked, the count checked), or the session's
/// failure status.
fn decrypt_and_check(job: &Job) -> Result<File, Status> {
    let key = job.key.as_ref().ok_or_else(|| {
        failure(
            415,
            "Nie udało się odszyfrować klucza symetrycznego kluczem publicznym KSeF.",
        )
    })?;
    for (i, (hash, part)) in job.parts.iter().enumerate() {
        if part.sha256 != *hash {
            return Err(failure(
                405,
                format!("Skrót części '{}' nie zgadza się z zadeklarowanym.", i + 1),
            ));
        }
    }
    let mut archive = tempfile::tempfile().map_err(io_failure)?;
    let (size, hash) = {
        let mut out = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, &mut archive),
            hasher: sha2::Sha256::new(),
            len: 0,
        };
        for (i, (_, part)) in job.parts.iter().enumerate() {
            let mut f: &File = &part.file;
            f.seek(SeekFrom::Start(0)).map_err(io_failure)?;
            key.decrypt_stream(BufReader::with_capacity(1 << 20, f), &mut out)
                .map_err(|_| {
                    failure(
                        435,
                        format!(
                            "Nie udało się odszyfrować części '{}' kluczem sesji.",
                            i + 1
                        ),
                    )
                })?;
        }
        out.flush().map_err(io_failure)?;
        let hash: [u8; 32] = out.hasher.finalize().into();
        (out.len, hash)
    };
    if size != job.file_size {
        return Err(failure(
            405,
            format!(
                "Zadeklarowany rozmiar paczki {} nie zgadza się z rzeczywistym {size}.",
                job.file_size
            ),
        ));
    }
    // Unpacking comes before the archive hash check: a wrong IV garbles only the first block
    // of each part, and KSeF reports that as a decompression error (430), not as 405.
    let count = for_each_entry(&archive, job.tar_gz, job.limits, &mut |_, _| {})?;
    if hash != job.file_hash {
        return Err(failure(
            405,
            "Skrót paczki nie zgadza się z zadeklarowanym.",
        ));
    }
    if count == 0 {
        return Err(failure(440, "Nie przesłano faktur"));
    }
    Ok(archive)
}

/// Verifies every entry of the (already checked) archive as an online invoice, in windows of
/// at most [`WINDOW_INVOICES`] invoices or [`WINDOW_BYTES`] bytes.
fn verify_entries(
    inner: &Inner,
    r: &str,
    job: &Job,
    archive: &File,
    done: usize,
) -> Result<(), Status> {
    let mut window: Vec<(String, Vec<u8>)> = Vec::new();
    let mut window_bytes = 0;
    let mut settled = done;
    let mut seen = 0;
    for_each_entry(archive, job.tar_gz, job.limits, &mut |name, xml| {
        seen += 1;
        if seen <= done {
            return;
        }
        window_bytes += xml.len();
        window.push((name, xml));
        if window.len() >= WINDOW_INVOICES || window_bytes >= WINDOW_BYTES {
            settle_window(inner, r, job, std::mem::take(&mut window), &mut settled);
            window_bytes = 0;
        }
    })?;
    settle_window(inner, r, job, window, &mut settled);
    Ok(())
}

/// Checks a window of entries (stateless, on all cores), then records and settles them in
/// order under the state lock. `settled` counts the invoices recorded so far.
fn settle_window(
    inner: &Inner,
    r: &str,
    job: &Job,
    entries: Vec<(String, Vec<u8>)>,
    settled: &mut usize,
) {
    if entries.is_empty() {
        return;
    }
    let checked = check_all(&entries, &job.form, job.limits);
    let now = inner.now();
    let mut guard = inner.state();
    let st = &mut *guard;
    let Some(s) = st.sessions.get(r) else {
        return;
    };
    let (received, offline) = (s.created, s.batch.as_ref().is_some_and(|b| b.offline));
    for ((name, xml), checked) in entries.into_iter().zip(checked) {
        let idx = *settled;
        *settled += 1;
        let invoice = Invoice {
            ordinal: idx as u32 + 1,
            reference: st.rng.reference(now, ReferenceType::Invoice),
            invoice_hash: ksef_crypto::hash::sha256_base64(&xml),
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
            file_name: Some(name),
            corrects: None,
        };
        if let Some(s) = st.sessions.get_mut(r) {
            s.invoices.push(invoice);
        }
        crate::sessions::settle_invoice(st, r, idx, Some(xml), checked, now);
    }
}

/// The stateless checks of every entry, in order, split over the available cores.
fn check_all(
    entries: &[(String, Vec<u8>)],
    form: &FormCode,
    limits: SessionLimits,
) -> Vec<Result<InvoiceFacts, Status>> {
    let check = |xml: &[u8]| crate::sessions::check_invoice(Some(xml), form, limits);
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

fn too_many(n: usize, limits: SessionLimits) -> Status {
    failure(
        420,
        format!(
            "Paczka zawiera {n} faktur; dozwolone jest {} faktur w sesji.",
            limits.max_invoices
        ),
    )
}

fn decompress_error(e: impl std::fmt::Display) -> Status {
    failure(430, format!("Nie udało się rozpakować archiwum: {e}."))
}

/// Reads one entry, refusing one larger than any invoice may be (a decompression bomb).
fn read_limited(r: impl Read, name: &str, limits: SessionLimits) -> Result<Vec<u8>, Status> {
    let max = limits
        .max_invoice_bytes()
        .max(limits.max_invoice_with_attachment_bytes());
    let mut out = Vec::new();
    r.take(max + 1)
        .read_to_end(&mut out)
        .map_err(decompress_error)?;
    if out.len() as u64 > max {
        return Err(failure(
            430,
            format!("Plik '{name}' w archiwum przekracza dozwolony rozmiar faktury."),
        ));
    }
    Ok(out)
}

/// Streams the files of the archive (Zip or TarGz) in order through `f` as (name, bytes), one
/// at a time; returns how many there were. More files than `limits` allow → 420 before any
/// is passed on (Zip: from the central directory) or as soon as one too many appears (TarGz).
fn for_each_entry(
    archive: &File,
    tar_gz: bool,
    limits: SessionLimits,
    f: &mut dyn FnMut(String, Vec<u8>),
) -> Result<usize, Status> {
    let mut file: &File = archive;
    file.seek(SeekFrom::Start(0)).map_err(io_failure)?;
    let reader = BufReader::with_capacity(1 << 20, file);
    let mut count = 0;
    if tar_gz {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(reader));
        for entry in tar.entries().map_err(decompress_error)? {
            let entry = entry.map_err(decompress_error)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            if count >= limits.max_invoice_count() {
                return Err(too_many(count + 1, limits));
            }
            let name = entry
                .path()
                .map_err(decompress_error)?
                .to_string_lossy()
                .into_owned();
            let bytes = read_limited(entry, &name, limits)?;
            count += 1;
            f(name, bytes);
        }
    } else {
        let mut zip = zip::ZipArchive::new(reader).map_err(decompress_error)?;
        let files = (0..zip.len())
            .filter(|&i| zip.by_index_raw(i).map(|f| f.is_file()).unwrap_or(true))
            .count();
        if files > limits.max_invoice_count() {
            return Err(too_many(files, limits));
        }
        for i in 0..zip.len() {
            let entry = zip.by_index(i).map_err(decompress_error)?;
            if !entry.is_file() {
                continue;
            }
            let name = entry.name().map_err(decompress_error)?.into_owned();
            let bytes = read_limited(entry, &name, limits)?;
            count += 1;
            f(name, bytes);
        }
    }
    Ok(count)
}
