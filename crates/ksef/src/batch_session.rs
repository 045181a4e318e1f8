//! Sending a packed batch: open `POST /sessions/batch`, upload the parts in parallel (bounded,
//! with progress and per-part retries), close, wait, and map KSeF's per-invoice results back to
//! the input names and hashes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures_util::{StreamExt, TryStreamExt, stream};
use ksef_crypto::encryption::SessionKey;
use ksef_crypto::public_key::KeyUsage;
use ksef_model::FormCode;
use ksef_model::api;
use ksef_model::ids::{KsefNumber, ReferenceNumber, Sha256Base64};
use ksef_transport::PresignedUpload;

use crate::auth::AuthenticatedClient;
use crate::batch::{BatchPackage, BatchPart};
use crate::error::{Error, Result, StatusFailure};
use crate::session::{ClosedSession, Sessions, outcome_unknown, session_invoices, wait_session};

/// Upload progress, reported after each finished part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadProgress {
    /// Parts uploaded so far.
    pub parts_done: usize,
    /// Parts in all.
    pub parts_total: usize,
    /// Encrypted bytes uploaded so far.
    pub bytes_done: u64,
    /// Encrypted bytes in all.
    pub bytes_total: u64,
}

/// Options of [`Sessions::send_batch`].
#[derive(Clone)]
pub struct BatchSendOptions {
    /// The form (FA(3) by default).
    pub form_code: FormCode,
    /// Parts uploaded at the same time (default 4).
    pub concurrency: usize,
    /// Further attempts of one part after a retryable failure (default 3).
    pub part_retries: u32,
    /// Session-level offline declaration (`offlineMode`).
    pub offline_mode: bool,
    /// Called after each uploaded part.
    pub progress: Option<Arc<dyn Fn(UploadProgress) + Send + Sync>>,
}

impl Default for BatchSendOptions {
    fn default() -> Self {
        Self {
            form_code: FormCode::Fa3,
            concurrency: 4,
            part_retries: 3,
            offline_mode: false,
            progress: None,
        }
    }
}

impl std::fmt::Debug for BatchSendOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchSendOptions")
            .field("form_code", &self.form_code)
            .field("concurrency", &self.concurrency)
            .field("part_retries", &self.part_retries)
            .field("offline_mode", &self.offline_mode)
            .finish_non_exhaustive()
    }
}

/// What became of one input invoice.
#[derive(Clone, Debug)]
pub struct BatchInvoiceResult {
    /// The name inside the archive.
    pub name: String,
    /// SHA-256 of the XML.
    pub hash: Sha256Base64,
    /// The KSeF number, or the rejection (status code, description, details); `None` if KSeF
    /// did not report the invoice at all.
    pub outcome: Option<std::result::Result<KsefNumber, StatusFailure>>,
}

/// A processed batch session.
#[derive(Debug)]
pub struct BatchOutcome {
    /// The closed session (status, UPO pages).
    pub session: ClosedSession,
    /// One result per input invoice, in input order.
    pub invoices: Vec<BatchInvoiceResult>,
}

impl Sessions<'_> {
    /// Sends a batch built with [`BatchBuilder`](crate::batch::BatchBuilder) and `key` (the same
    /// key): opens the session, uploads the parts, closes it, waits for processing and maps the
    /// per-invoice results to the input names.
    pub async fn send_batch(
        &self,
        package: &BatchPackage,
        key: &SessionKey,
        options: &BatchSendOptions,
    ) -> Result<BatchOutcome> {
        if !options.form_code.batch_allowed() {
            return Err(Error::InvalidInput(format!(
                "form {} cannot be sent in a batch session",
                options.form_code
            )));
        }
        let auth = self.auth();
        let opened = open_batch(auth, package, key, options).await?;
        let reference = opened.reference_number;
        upload_parts(auth, package, &opened.part_upload_requests, options).await?;
        close_batch(auth, &reference).await?;
        let session = wait_session(auth, &reference).await?;
        let invoices = map_results(auth, &reference, package).await?;
        Ok(BatchOutcome { session, invoices })
    }

    /// The per-invoice results of batch session `reference`, mapped to `package`'s input names
    /// and hashes. [`send_batch`](Self::send_batch) returns them itself; this is for a session
    /// that failed as a whole with its invoices still reported — status 445, no invoice accepted,
    /// where `send_batch` returns [`Error::SessionFailed`] carrying the reference.
    pub async fn batch_results(
        &self,
        reference: &ReferenceNumber,
        package: &BatchPackage,
    ) -> Result<Vec<BatchInvoiceResult>> {
        map_results(self.auth(), reference, package).await
    }
}

/// Opens the batch session. Opening is not idempotent, so the transport never repeats it; when
/// the outcome is unknown (5xx, timeout, connection lost after sending) the SDK opens again, up
/// to the retry policy's attempts. A session the lost request may have opened receives no parts
/// and is never closed: KSeF cancels it when its upload window ends, with no invoice in it, so no
/// invoice is lost or sent twice (its upload URLs never reached us, so it cannot be reused).
async fn open_batch(
    auth: &AuthenticatedClient,
    package: &BatchPackage,
    key: &SessionKey,
    options: &BatchSendOptions,
) -> Result<api::OpenBatchSessionResponse> {
    let policy = auth.client().transport().retry();
    let mut attempt = 1;
    loop {
        let opened = auth
            .client()
            .with_public_key(KeyUsage::SymmetricKeyEncryption, |mf| async move {
                let info = key.encryption_info(mf.public_key(), Some(mf.public_key_id()))?;
                let body = api::OpenBatchSessionRequest {
                    batch_file: package.batch_file_info(),
                    encryption: crate::session::encryption_info(&info)?,
                    form_code: options.form_code.clone().into(),
                    offline_mode: options.offline_mode.then_some(true),
                };
                let body = &body;
                auth.call(|t| async move {
                    auth.client().transport().open_batch_session(&t, body).await
                })
                .await
            })
            .await;
        match opened {
            Ok(o) => return Ok(o.into_value()),
            Err(e) if outcome_unknown(&e) && attempt < policy.max_attempts => {
                tracing::warn!(error = %e, attempt, "batch session open outcome unknown: opening again");
                tokio::time::sleep(policy.backoff(attempt, 0.5)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Closes the batch session. Closing is not idempotent (a second close is 21180), so the
/// transport never repeats it. When the outcome is unknown the session's status tells: still
/// open (100) → close again; otherwise the lost request closed it.
async fn close_batch(auth: &AuthenticatedClient, reference: &ReferenceNumber) -> Result<()> {
    let policy = auth.client().transport().retry();
    let mut attempt = 1;
    loop {
        let closed = auth
            .call(|t| async move {
                auth.client()
                    .transport()
                    .close_batch_session(&t, reference)
                    .await
            })
            .await;
        match closed {
            Ok(_) => return Ok(()),
            Err(e) if outcome_unknown(&e) => {
                tracing::warn!(error = %e, attempt, "batch session close outcome unknown: checking the session status");
                let status = auth.sessions().status(reference).await?;
                if status.status.code != 100 {
                    return Ok(());
                }
                if attempt >= policy.max_attempts {
                    return Err(e);
                }
                tokio::time::sleep(policy.backoff(attempt, 0.5)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn upload_parts(
    auth: &AuthenticatedClient,
    package: &BatchPackage,
    requests: &[api::PartUploadRequest],
    options: &BatchSendOptions,
) -> Result<()> {
    let targets: HashMap<u32, PresignedUpload> = requests
        .iter()
        .map(|r| (r.ordinal_number, PresignedUpload::from(r)))
        .collect();
    let parts_total = package.parts().len();
    let bytes_total: u64 = package.parts().iter().map(BatchPart::encrypted_size).sum();
    let done = AtomicUsize::new(0);
    let bytes_done = AtomicU64::new(0);
    stream::iter(package.parts())
        .map(|part| {
            let target = targets.get(&part.ordinal_number());
            let (done, bytes_done) = (&done, &bytes_done);
            async move {
                let target = target.ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "KSeF returned no upload URL for part {}",
                        part.ordinal_number()
                    ))
                })?;
                upload_one(auth, part, target, options.part_retries).await?;
                let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                let b = bytes_done.fetch_add(part.encrypted_size(), Ordering::SeqCst)
                    + part.encrypted_size();
                if let Some(p) = &options.progress {
                    p(UploadProgress {
                        parts_done: d,
                        parts_total,
                        bytes_done: b,
                        bytes_total,
                    });
                }
                Ok::<_, Error>(())
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Streams one part from its file; repeats a retryable failure (5xx, 429, timeout, broken
/// connection) up to `retries` times with the client's backoff (a blob PUT to the same URL
/// replaces the same blob, so repeating is safe — also when only the answer was lost).
async fn upload_one(
    auth: &AuthenticatedClient,
    part: &BatchPart,
    target: &PresignedUpload,
    retries: u32,
) -> Result<()> {
    let mut attempt = 0;
    loop {
        let file = tokio::fs::File::open(part.path())
            .await
            .map_err(|e| Error::io("opening a batch part", e))?;
        match auth
            .client()
            .transport()
            .upload_part_from_reader(target, file, part.encrypted_size())
            .await
        {
            Ok(()) => return Ok(()),
            Err(e) if e.is_retryable() && attempt < retries => {
                attempt += 1;
                // The client's backoff, or longer when storage said when (429/503 Retry-After).
                let policy = auth.client().transport().retry();
                let wait = policy.backoff(attempt, 0.5).max(
                    e.api_error()
                        .and_then(|a| a.retry_after)
                        .unwrap_or_default(),
                );
                tracing::warn!(part = part.ordinal_number(), attempt, error = %e, "retrying a part upload");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn map_results(
    auth: &AuthenticatedClient,
    reference: &ReferenceNumber,
    package: &BatchPackage,
) -> Result<Vec<BatchInvoiceResult>> {
    let listed: Vec<api::SessionInvoiceStatusResponse> = session_invoices(auth, reference, false)
        .try_collect()
        .await?;
    let mut by_name = HashMap::new();
    let mut by_hash: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, s) in listed.iter().enumerate() {
        if let Some(n) = &s.invoice_file_name {
            by_name.insert(n.clone(), i);
        }
        if let Some(h) = &s.invoice_hash {
            by_hash.entry(h.as_str().to_owned()).or_default().push(i);
        }
    }
    Ok(package
        .invoices()
        .iter()
        .map(|inv| {
            let found = by_name.get(&inv.name).copied().or_else(|| {
                by_hash
                    .get(inv.hash.as_str())
                    .and_then(|v| (v.len() == 1).then(|| v[0]))
            });
            let outcome = found.map(|i| {
                let s = &listed[i];
                match (&s.ksef_number, s.status.code) {
                    (Some(k), 200) => Ok(k.clone()),
                    _ => Err(StatusFailure {
                        code: s.status.code,
                        description: s.status.description.clone(),
                        details: s.status.details.clone().unwrap_or_default(),
                    }),
                }
            });
            BatchInvoiceResult {
                name: inv.name,
                hash: inv.hash,
                outcome,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::batch::{BatchBuilder, BatchInvoice};
    use crate::client::KsefClient;

    /// A tiny blob store: answers PUT /part/N with 201 and records the body; the first PUT of
    /// part 2 gets a 503 (the part must be retried).
    async fn blob_store() -> (String, Arc<Mutex<HashMap<u32, Vec<u8>>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let store: Arc<Mutex<HashMap<u32, Vec<u8>>>> = Arc::default();
        let failed_once = Arc::new(AtomicUsize::new(0));
        let s = store.clone();
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let (s, failed_once) = (s.clone(), failed_once.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 8192];
                    let head_end = loop {
                        let n = sock.read(&mut tmp).await.unwrap();
                        buf.extend_from_slice(&tmp[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap();
                    while buf.len() < head_end + len {
                        let n = sock.read(&mut tmp).await.unwrap();
                        buf.extend_from_slice(&tmp[..n]);
                    }
                    let part: u32 = head
                        .split_whitespace()
                        .nth(1)
                        .unwrap()
                        .trim_start_matches("/part/")
                        .parse()
                        .unwrap();
                    assert!(head.contains("x-ms-blob-type: BlockBlob"));
                    assert!(!head.to_ascii_lowercase().contains("authorization"));
                    let reply: &[u8] = if part == 2
                        && failed_once.fetch_add(1, Ordering::SeqCst) == 0
                    {
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    } else {
                        s.lock()
                            .unwrap()
                            .insert(part, buf[head_end..head_end + len].to_vec());
                        b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    };
                    sock.write_all(reply).await.unwrap();
                });
            }
        });
        (base, store)
    }

    #[tokio::test]
    async fn parts_upload_in_parallel_with_retry_and_progress() {
        let (base, store) = blob_store().await;
        let key = SessionKey::generate().unwrap();
        let package = BatchBuilder::new(key)
            .max_part_size(4_000)
            .build((0..60).map(|i| {
                BatchInvoice::bytes(
                    format!("{i}.xml"),
                    format!("<a>{}</a>", "x".repeat(100 + i)),
                )
            }))
            .unwrap();
        let n = package.parts().len();
        assert!(n >= 2, "{n} parts");
        let requests: Vec<api::PartUploadRequest> = (1..=n as u32)
            .map(|i| api::PartUploadRequest {
                headers: [("x-ms-blob-type".to_owned(), Some("BlockBlob".to_owned()))].into(),
                method: "PUT".into(),
                ordinal_number: i,
                url: format!("{base}/part/{i}"),
            })
            .collect();
        let client = KsefClient::builder_for_url(&format!("{base}/v2"))
            .build()
            .unwrap();
        let auth = AuthenticatedClient::for_tests(client);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let options = BatchSendOptions {
            concurrency: 2,
            part_retries: 2,
            progress: Some(Arc::new(move |p| s.lock().unwrap().push(p))),
            ..BatchSendOptions::default()
        };
        upload_parts(&auth, &package, &requests, &options)
            .await
            .unwrap();
        let store = store.lock().unwrap();
        for part in package.parts() {
            assert_eq!(store[&part.ordinal_number()], part.read().unwrap());
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), n);
        let last = seen.iter().max_by_key(|p| p.parts_done).unwrap();
        assert_eq!((last.parts_done, last.bytes_done), (n, last.bytes_total));
    }
}
