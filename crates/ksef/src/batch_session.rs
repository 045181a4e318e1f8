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
use crate::session::{ClosedSession, Sessions, session_invoices, wait_session};

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
            .await?
            .into_value();
        let reference = opened.reference_number;
        upload_parts(auth, package, &opened.part_upload_requests, options).await?;
        let r = &reference;
        auth.call(|t| async move { auth.client().transport().close_batch_session(&t, r).await })
            .await?;
        let session = wait_session(auth, &reference).await?;
        let invoices = map_results(auth, &reference, package).await?;
        Ok(BatchOutcome { session, invoices })
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

/// Streams one part from its file; repeats a retryable failure up to `retries` times (a blob
/// PUT to the same URL replaces the same blob, so repeating is safe).
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
                tracing::warn!(part = part.ordinal_number(), attempt, error = %e, "retrying a part upload");
                tokio::time::sleep(std::time::Duration::from_millis(500 << attempt.min(6))).await;
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
                name: inv.name.clone(),
                hash: inv.hash.clone(),
                outcome,
            }
        })
        .collect())
}
