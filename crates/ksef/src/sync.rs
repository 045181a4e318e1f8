//! Incremental invoice sync on the permanent-storage high-water mark (HWM).
//!
//! For one subject type, [`InvoiceSync::run`] queries metadata with `dateType =
//! PermanentStorage`, ascending, `restrictToPermanentStorageHwmDate = true`, from a stored
//! checkpoint; downloads each invoice; hands it to your handler; and saves the checkpoint after
//! every handled invoice. At the end of a window it moves the checkpoint to the HWM KSeF
//! returned — every invoice stored at or before it is final, so nothing is ever missed.
//!
//! The checkpoint is `(from, KSeF numbers already handled whose permanent-storage date equals
//! from)`: the next query starts at `from` inclusive and skips those, so windows overlap by one
//! instant and nothing is delivered twice.
//!
//! **Restartable at any point**: the checkpoint is saved right after your handler returns,
//! with no `.await` in between, so dropping the future (a timeout, a shutdown) or an error
//! anywhere leaves a checkpoint that neither skips nor repeats an invoice — provided your
//! handler commits its effect as its last step (e.g. writes a file, commits a transaction). A
//! process crash exactly between your commit and the checkpoint write repeats that one invoice
//! on the next run: make the handler idempotent by KSeF number if that matters.
//!
//! ```no_run
//! # async fn demo(auth: &ksef::AuthenticatedClient) -> Result<(), ksef::Error> {
//! use ksef::model::api::InvoiceQuerySubjectType;
//! use ksef::{FsSyncStateStore, SyncOptions};
//!
//! let store = FsSyncStateStore::new("state")?;
//! let start = "2026-01-01T00:00:00Z"
//!     .parse()
//!     .map_err(|e: ksef::model::datetime::DateTimeParseError| {
//!         ksef::Error::InvalidInput(e.to_string())
//!     })?;
//! let options = SyncOptions::new(InvoiceQuerySubjectType::Subject2, start);
//! let report = auth
//!     .sync(&store)
//!     .run(&options, async |invoice| {
//!         // Store it; the checkpoint is saved right after this returns Ok.
//!         std::fs::write(format!("{}.xml", invoice.metadata.ksef_number), &invoice.xml)
//!             .map_err(|e| ksef::Error::InvalidInput(e.to_string()))
//!     })
//!     .await?;
//! println!("{} new, next from {}", report.delivered, report.checkpoint.from);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::StreamExt;
use ksef_model::DateTime;
use ksef_model::api::{
    InvoiceMetadata, InvoiceQueryDateRange, InvoiceQueryDateType, InvoiceQueryFilters,
    InvoiceQuerySubjectType, SortOrder,
};
use ksef_model::operations::QueryInvoiceMetadataQuery;

use crate::auth::AuthenticatedClient;
use crate::error::{Error, Result};

/// Where a sync resumes (per key, e.g. one per context and subject type).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncCheckpoint {
    /// The next query starts here (inclusive).
    pub from: DateTime,
    /// KSeF numbers already handled whose permanent-storage date equals `from`.
    pub handled_at_from: Vec<String>,
}

/// Stores sync checkpoints. Implement it over your database to keep the checkpoint in the same
/// transaction as the invoices; [`FsSyncStateStore`] keeps one JSON file per key.
///
/// The methods are synchronous on purpose: [`InvoiceSync::run`] saves right after your handler
/// returns without yielding, which is what makes a dropped future safe.
pub trait SyncStateStore: Send + Sync {
    /// The checkpoint stored under `key`, if any.
    fn load(&self, key: &str) -> Result<Option<SyncCheckpoint>>;
    /// Stores `checkpoint` under `key`, durably, replacing the previous one.
    fn save(&self, key: &str, checkpoint: &SyncCheckpoint) -> Result<()>;
}

/// One JSON file per key in a directory, replaced atomically (temporary file, `fsync`,
/// rename, directory `fsync`): a crash leaves the old or the new checkpoint, never a torn one.
#[derive(Clone, Debug)]
pub struct FsSyncStateStore {
    dir: PathBuf,
}

impl FsSyncStateStore {
    /// A store in `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(Self { dir })
    }

    /// The file holding `key`'s checkpoint.
    pub fn path_of(&self, key: &str) -> PathBuf {
        let safe: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("{safe}.json"))
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // Make the rename itself durable (not possible on every platform; best effort).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl SyncStateStore for FsSyncStateStore {
    fn load(&self, key: &str) -> Result<Option<SyncCheckpoint>> {
        let path = self.path_of(key);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::InvalidInput(format!(
                    "the sync checkpoint {} is not valid JSON ({e}); fix or delete it",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    fn save(&self, key: &str, checkpoint: &SyncCheckpoint) -> Result<()> {
        let path = self.path_of(key);
        let bytes = serde_json::to_vec_pretty(checkpoint)
            .map_err(|e| Error::InvalidInput(format!("serialising the checkpoint: {e}")))?;
        write_atomically(&path, &bytes)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }
}

/// Checkpoints in memory (tests, or when the caller persists them some other way).
#[derive(Debug, Default)]
pub struct MemorySyncStateStore {
    map: Mutex<HashMap<String, SyncCheckpoint>>,
}

impl SyncStateStore for MemorySyncStateStore {
    fn load(&self, key: &str) -> Result<Option<SyncCheckpoint>> {
        Ok(self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }

    fn save(&self, key: &str, checkpoint: &SyncCheckpoint) -> Result<()> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), checkpoint.clone());
        Ok(())
    }
}

impl<T: SyncStateStore + ?Sized> SyncStateStore for &T {
    fn load(&self, key: &str) -> Result<Option<SyncCheckpoint>> {
        (**self).load(key)
    }
    fn save(&self, key: &str, checkpoint: &SyncCheckpoint) -> Result<()> {
        (**self).save(key, checkpoint)
    }
}

impl<T: SyncStateStore + ?Sized> SyncStateStore for std::sync::Arc<T> {
    fn load(&self, key: &str) -> Result<Option<SyncCheckpoint>> {
        (**self).load(key)
    }
    fn save(&self, key: &str, checkpoint: &SyncCheckpoint) -> Result<()> {
        (**self).save(key, checkpoint)
    }
}

/// One synced invoice: metadata and the XML as stored in KSeF (hash checked).
#[derive(Clone, Debug, PartialEq)]
pub struct SyncedInvoice {
    /// The metadata row.
    pub metadata: InvoiceMetadata,
    /// The invoice XML.
    pub xml: Bytes,
}

/// What one [`InvoiceSync::run`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncReport {
    /// Invoices handed to the handler.
    pub delivered: usize,
    /// Rows skipped because they were handled before (window overlap).
    pub skipped: usize,
    /// The checkpoint now stored.
    pub checkpoint: SyncCheckpoint,
}

/// How a sync runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOptions {
    /// Which side of the invoices to sync (run one sync per subject type you need).
    pub subject_type: InvoiceQuerySubjectType,
    /// Where the first run starts when no checkpoint is stored.
    pub start: DateTime,
    /// The checkpoint's key in the store (default: `"{subjectType}"`; include the context
    /// when one store serves several).
    pub key: Option<String>,
    /// Rows per metadata page (10–250; default 250).
    pub page_size: u32,
    /// Fetch through exports (one encrypted package of up to 10 000 invoices per request)
    /// instead of the metadata query plus one download per invoice. KSeF recommends exports
    /// for synchronisation: its download limit (64/h) makes per-invoice downloads slow for
    /// large volumes. Default `false` (the query path needs no export key and shows progress
    /// sooner on small volumes).
    pub via_export: bool,
}

impl SyncOptions {
    /// Sync `subject_type` starting at `start` on the first run.
    pub fn new(subject_type: InvoiceQuerySubjectType, start: DateTime) -> Self {
        Self {
            subject_type,
            start,
            key: None,
            page_size: 250,
            via_export: false,
        }
    }

    fn key(&self) -> String {
        self.key
            .clone()
            .unwrap_or_else(|| self.subject_type.to_string())
    }
}

#[derive(Default)]
struct Tally {
    delivered: usize,
    skipped: usize,
    /// The last handled permanent-storage date in the current export package.
    last: Option<DateTime>,
}

/// A query window may span at most 3 months; windows further back are cut at this length.
const MAX_WINDOW: time::Duration = time::Duration::days(89);

impl AuthenticatedClient {
    /// Incremental sync with checkpoints in `store`.
    pub fn sync<S: SyncStateStore>(&self, store: S) -> InvoiceSync<'_, S> {
        InvoiceSync { auth: self, store }
    }
}

/// Incremental sync (`auth.sync(store)`).
#[derive(Debug)]
pub struct InvoiceSync<'a, S> {
    auth: &'a AuthenticatedClient,
    store: S,
}

impl<S: SyncStateStore> InvoiceSync<'_, S> {
    /// The stored checkpoint for `options`, if any.
    pub fn checkpoint(&self, options: &SyncOptions) -> Result<Option<SyncCheckpoint>> {
        self.store.load(&options.key())
    }

    /// Syncs everything stored permanently up to KSeF's current HWM: each new invoice is
    /// downloaded and given to `handler`, then the checkpoint is saved. Returns when the HWM
    /// is reached; run it again later (KSeF asks for ≥ 15 min between runs on production).
    /// An error from `handler` stops the run with the checkpoint before that invoice.
    pub async fn run<H>(&self, options: &SyncOptions, mut handler: H) -> Result<SyncReport>
    where
        H: AsyncFnMut(SyncedInvoice) -> Result<()>,
    {
        let key = options.key();
        let mut cp = self.store.load(&key)?.unwrap_or(SyncCheckpoint {
            from: options.start,
            handled_at_from: Vec::new(),
        });
        let mut tally = Tally::default();
        let invoices = self.auth.invoices();
        'windows: loop {
            let now = time::OffsetDateTime::now_utc();
            let window_end = cp.from.as_offset_date_time() + MAX_WINDOW;
            let to = (window_end < now).then(|| DateTime::new(window_end));
            let filters = InvoiceQueryFilters {
                amount: None,
                buyer_identifier: None,
                currency_codes: None,
                date_range: InvoiceQueryDateRange {
                    date_type: InvoiceQueryDateType::PermanentStorage,
                    from: cp.from,
                    restrict_to_permanent_storage_hwm_date: Some(true),
                    to,
                },
                form_type: None,
                has_attachment: None,
                invoice_number: None,
                invoice_types: None,
                invoicing_mode: None,
                is_self_invoicing: None,
                ksef_number: None,
                seller_nip: None,
                subject_type: options.subject_type.clone(),
            };
            // (truncated, HWM) of the window once it is done.
            let (truncated, hwm) = if options.via_export {
                let package = invoices
                    .export(filters.clone(), crate::invoices::ExportOptions::default())
                    .await?;
                let (truncated, hwm) = (
                    package.info().is_truncated,
                    package.info().permanent_storage_hwm_date,
                );
                let mut items = package.invoices().await?;
                while let Some(item) = items.next().await {
                    let item = item?;
                    let xml = item.xml.ok_or_else(|| {
                        Error::Archive("the export package lacks an invoice file".into())
                    })?;
                    let m = item.metadata;
                    if let Some(previous) = tally.last
                        && m.permanent_storage_date < previous
                    {
                        return Err(Error::Archive(format!(
                            "the export package is not in ascending permanent-storage order ({} after {previous}); refusing to sync out of order",
                            m.permanent_storage_date
                        )));
                    }
                    if self.skip(&cp, &m, &mut tally) {
                        continue;
                    }
                    tally.last = Some(m.permanent_storage_date);
                    handler(SyncedInvoice {
                        metadata: m.clone(),
                        xml,
                    })
                    .await?;
                    self.handled(&key, &mut cp, &m, &mut tally)?;
                }
                (truncated, hwm)
            } else {
                let mut page = 0u32;
                loop {
                    let q = QueryInvoiceMetadataQuery {
                        sort_order: Some(SortOrder::Asc),
                        page_offset: Some(page),
                        page_size: Some(options.page_size),
                    };
                    let resp = invoices.query_page(&filters, &q).await?;
                    for m in resp.invoices {
                        if self.skip(&cp, &m, &mut tally) {
                            continue;
                        }
                        let xml = invoices.download(&m.ksef_number).await?.xml;
                        handler(SyncedInvoice {
                            metadata: m.clone(),
                            xml,
                        })
                        .await?;
                        self.handled(&key, &mut cp, &m, &mut tally)?;
                    }
                    if !resp.has_more || resp.is_truncated {
                        break (resp.is_truncated, resp.permanent_storage_hwm_date);
                    }
                    page += 1;
                }
            };
            tally.last = None;
            if truncated {
                // The checkpoint already sits on the last handled row's date.
                if cp.from == filters.date_range.from {
                    return Err(Error::InvalidInput(format!(
                        "more than KSeF's 10 000-row limit share the permanent-storage date {}; the sync cannot move past it",
                        cp.from
                    )));
                }
                continue 'windows;
            }
            if let Some(h) = hwm
                && h > cp.from
            {
                cp.from = h;
                cp.handled_at_from.clear();
                self.store.save(&key, &cp)?;
            }
            // A window cut at 3 months: continue with the next one.
            if let (Some(to), Some(h)) = (to, hwm)
                && h >= to
            {
                continue 'windows;
            }
            break 'windows;
        }
        let Tally {
            delivered, skipped, ..
        } = tally;
        Ok(SyncReport {
            delivered,
            skipped,
            checkpoint: cp,
        })
    }

    /// Whether `m` was handled before (or lies before the checkpoint).
    fn skip(&self, cp: &SyncCheckpoint, m: &InvoiceMetadata, tally: &mut Tally) -> bool {
        let at = m.permanent_storage_date;
        let old = at < cp.from
            || (at == cp.from
                && cp
                    .handled_at_from
                    .iter()
                    .any(|k| k == m.ksef_number.as_str()));
        if old {
            tally.skipped += 1;
        }
        old
    }

    /// Records `m` as handled and saves the checkpoint. Synchronous: called right after the
    /// handler returned, so a dropped future cannot separate the two.
    fn handled(
        &self,
        key: &str,
        cp: &mut SyncCheckpoint,
        m: &InvoiceMetadata,
        tally: &mut Tally,
    ) -> Result<()> {
        let at = m.permanent_storage_date;
        let number = m.ksef_number.as_str().to_owned();
        if at == cp.from {
            cp.handled_at_from.push(number);
        } else {
            cp.from = at;
            cp.handled_at_from = vec![number];
        }
        self.store.save(key, cp)?;
        tally.delivered += 1;
        Ok(())
    }

    /// Like [`run`](Self::run), writing each invoice to `dir/{ksefNumber}.xml` (atomically;
    /// a repeated invoice overwrites the same file, so the directory never holds duplicates).
    pub async fn run_to_dir(&self, options: &SyncOptions, dir: &Path) -> Result<SyncReport> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        self.run(options, async |inv: SyncedInvoice| {
            let path = dir.join(format!("{}.xml", inv.metadata.ksef_number.as_str()));
            write_atomically(&path, &inv.xml)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_store_round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsSyncStateStore::new(dir.path().join("state")).unwrap();
        assert_eq!(store.load("Subject1").unwrap(), None);
        let cp = SyncCheckpoint {
            from: "2026-01-01T00:00:00Z".parse().unwrap(),
            handled_at_from: vec!["a".into()],
        };
        store.save("Subject1", &cp).unwrap();
        assert_eq!(store.load("Subject1").unwrap(), Some(cp.clone()));
        let cp2 = SyncCheckpoint {
            handled_at_from: vec![],
            ..cp
        };
        store.save("Subject1", &cp2).unwrap();
        assert_eq!(store.load("Subject1").unwrap(), Some(cp2));
        // Only the checkpoint file is left (no temporary files).
        let files: Vec<_> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1);
        // Odd keys map to safe file names.
        assert!(
            store
                .path_of("Nip/5265877635:Subject2")
                .ends_with("Nip_5265877635_Subject2.json")
        );
        std::fs::write(store.path_of("bad"), b"{").unwrap();
        assert!(matches!(store.load("bad"), Err(Error::InvalidInput(_))));
    }
}
