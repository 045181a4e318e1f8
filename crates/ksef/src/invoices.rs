//! Invoice retrieval: `auth.invoices()` — download by KSeF number, the metadata query as an
//! auto-paging stream, and exports (start → wait → download parts → verify → decrypt → unpack →
//! a stream of metadata and XML).
//!
//! ```no_run
//! # async fn demo(auth: &ksef::AuthenticatedClient) -> Result<(), ksef::Error> {
//! use futures_util::TryStreamExt;
//! use ksef::model::api::InvoiceQueryFilters;
//!
//! let filters: InvoiceQueryFilters = serde_json::from_value(serde_json::json!({
//!     "subjectType": "Subject2",
//!     "dateRange": {"dateType": "PermanentStorage", "from": "2026-01-01T00:00:00Z"}
//! }))
//! .map_err(|e| ksef::Error::InvalidInput(e.to_string()))?;
//! // Every matching row, across pages and KSeF's 10 000-row truncation.
//! let rows: Vec<_> = auth.invoices().query(filters.clone()).try_collect().await?;
//! if let Some(first) = rows.first() {
//!     let doc = auth.invoices().download(&first.ksef_number).await?;
//!     println!("{} bytes", doc.xml.len());
//! }
//! // The same set as one export: metadata and XML per invoice.
//! let package = auth.invoices().export(filters, Default::default()).await?;
//! let mut items = package.invoices().await?;
//! while let Some(item) = items.try_next().await? {
//!     println!("{}", item.metadata.ksef_number);
//! }
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, Write};

use bytes::Bytes;
use futures_util::Stream;
use ksef_crypto::encryption::SessionKey;
use ksef_crypto::public_key::KeyUsage;
use ksef_model::api::{
    self, CompressionType, InvoiceMetadata, InvoicePackage, InvoiceQueryDateType,
    InvoiceQueryFilters, QueryInvoicesMetadataResponse, SortOrder,
};
use ksef_model::operations::QueryInvoiceMetadataQuery;
use ksef_model::{DateTime, KsefNumber, ReferenceNumber};
use ksef_transport::ExceptionCode;

use crate::auth::AuthenticatedClient;
use crate::error::{Error, Result, StatusFailure};

/// The name of the metadata file inside an export package.
pub const METADATA_FILE: &str = "_metadata.json";

impl AuthenticatedClient {
    /// Invoice retrieval: download, metadata query, exports.
    pub fn invoices(&self) -> Invoices<'_> {
        Invoices { auth: self }
    }
}

/// Invoice retrieval (`auth.invoices()`); needs the `InvoiceRead` permission.
#[derive(Debug, Clone, Copy)]
pub struct Invoices<'a> {
    auth: &'a AuthenticatedClient,
}

/// An invoice downloaded by its KSeF number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadedInvoice {
    /// The KSeF number asked for.
    pub ksef_number: KsefNumber,
    /// The XML exactly as KSeF stores it.
    pub xml: Bytes,
    /// Base64 SHA-256 of `xml` (equal to KSeF's `x-ms-meta-hash`).
    pub sha256: String,
}

/// How the metadata stream pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryOptions {
    /// Rows per request (10–250; default 250).
    pub page_size: u32,
    /// Sort order of the filter's date (default ascending).
    pub sort_order: SortOrder,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            page_size: 250,
            sort_order: SortOrder::Asc,
        }
    }
}

/// What to export.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Only `_metadata.json`, no invoice files.
    pub only_metadata: bool,
    /// `TarGz` instead of `Zip`.
    pub tar_gz: bool,
}

/// One invoice of an export package: its metadata and, unless the export was metadata-only,
/// its XML.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportedInvoice {
    /// The invoice's metadata from `_metadata.json`.
    pub metadata: InvoiceMetadata,
    /// `{ksefNumber}.xml` from the package (`None` for metadata-only exports).
    pub xml: Option<Bytes>,
}

fn sha256_b64(bytes: &[u8]) -> String {
    ksef_crypto::hash::sha256_base64(bytes)
}

/// The date of `m` that `date_type` filters and sorts on.
pub(crate) fn date_of(m: &InvoiceMetadata, date_type: &InvoiceQueryDateType) -> DateTime {
    match date_type {
        InvoiceQueryDateType::Issue => DateTime::new(m.issue_date.midnight().assume_utc()),
        InvoiceQueryDateType::Invoicing => m.invoicing_date,
        _ => m.permanent_storage_date,
    }
}

impl<'a> Invoices<'a> {
    /// Downloads an invoice by KSeF number, checking it against `x-ms-meta-hash`. While KSeF
    /// answers 21165 (processed, not downloadable yet) it retries with the client's poll
    /// options.
    pub async fn download(&self, ksef_number: &KsefNumber) -> Result<DownloadedInvoice> {
        let a = self.auth;
        let doc = a
            .client()
            .poll_options()
            .poll("the invoice to become downloadable", || async move {
                let r = a
                    .call(|t| async move {
                        a.client()
                            .transport()
                            .download_invoice(&t, ksef_number)
                            .await
                    })
                    .await;
                match r {
                    Ok(doc) => Ok(Some(doc.into_value())),
                    Err(Error::Transport(e))
                        if e.has_code(ExceptionCode::InvoiceNotYetAvailable) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
        let sha256 = sha256_b64(&doc.bytes);
        // The transport checked the header when present; KSeF always sends it.
        if let Some(h) = &doc.hash
            && *h != sha256
        {
            return Err(Error::Transport(ksef_transport::Error::HashMismatch {
                operation: "download_invoice",
                expected: h.clone(),
                actual: sha256,
            }));
        }
        Ok(DownloadedInvoice {
            ksef_number: ksef_number.clone(),
            xml: doc.bytes,
            sha256,
        })
    }

    /// One page of the metadata query (`POST /invoices/query/metadata`), as KSeF returns it.
    pub async fn query_page(
        &self,
        filters: &InvoiceQueryFilters,
        query: &QueryInvoiceMetadataQuery,
    ) -> Result<QueryInvoicesMetadataResponse> {
        let a = self.auth;
        Ok(a.call(|t| async move {
            a.client()
                .transport()
                .query_invoice_metadata(&t, query, filters)
                .await
        })
        .await?
        .into_value())
    }

    /// Every invoice matching `filters`, page after page (250 per page, ascending).
    pub fn query(
        &self,
        filters: InvoiceQueryFilters,
    ) -> impl Stream<Item = Result<InvoiceMetadata>> + Send + 'a {
        self.query_with(filters, QueryOptions::default())
    }

    /// Every invoice matching `filters`, page after page. When KSeF truncates a filter set at
    /// 10 000 rows (`isTruncated`) the date window moves to the last row's date (`from` when
    /// ascending, `to` when descending), paging restarts at offset 0, and rows already
    /// returned at the boundary date are skipped, so each invoice comes exactly once.
    pub fn query_with(
        &self,
        filters: InvoiceQueryFilters,
        options: QueryOptions,
    ) -> impl Stream<Item = Result<InvoiceMetadata>> + Send + 'a {
        use futures_util::{StreamExt, TryStreamExt, stream};
        let this = *self;
        let state = QueryState {
            filters,
            page: 0,
            seen: HashSet::new(),
            done: false,
        };
        stream::try_unfold(state, move |mut st| {
            let options = options.clone();
            async move {
                if st.done {
                    return Ok(None);
                }
                let q = QueryInvoiceMetadataQuery {
                    sort_order: Some(options.sort_order.clone()),
                    page_offset: Some(st.page),
                    page_size: Some(options.page_size),
                };
                let resp = this.query_page(&st.filters, &q).await?;
                let date_type = st.filters.date_range.date_type.clone();
                let rows: Vec<InvoiceMetadata> = resp
                    .invoices
                    .into_iter()
                    .filter(|m| !st.seen.contains(m.ksef_number.as_str()))
                    .collect();
                if !resp.has_more {
                    st.done = true;
                } else if !resp.is_truncated {
                    st.page += 1;
                } else {
                    let Some(last) = rows.last() else {
                        return Err(Error::InvalidInput(
                            "KSeF truncated the result but returned no rows to move the date window past"
                                .into(),
                        ));
                    };
                    let boundary = date_of(last, &date_type);
                    let desc = options.sort_order == SortOrder::Desc;
                    let range = &mut st.filters.date_range;
                    let unchanged = if desc {
                        range.to == Some(boundary)
                    } else {
                        range.from == boundary
                    };
                    if unchanged {
                        return Err(Error::InvalidInput(format!(
                            "more than KSeF's 10 000-row limit share the date {boundary}; narrow the filters"
                        )));
                    }
                    if desc {
                        range.to = Some(boundary);
                    } else {
                        range.from = boundary;
                    }
                    st.page = 0;
                    // Rows at the boundary date come again in the next window: skip them.
                    st.seen = rows
                        .iter()
                        .filter(|m| date_of(m, &date_type) == boundary)
                        .map(|m| m.ksef_number.as_str().to_owned())
                        .collect();
                }
                Ok(Some((rows, st)))
            }
        })
        .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    /// Starts an export of the invoices matching `filters`, encrypted with a fresh key of ours
    /// wrapped with the MF `SymmetricKeyEncryption` key (refetched once on 21470).
    pub async fn start_export(
        &self,
        filters: InvoiceQueryFilters,
        options: ExportOptions,
    ) -> Result<Export> {
        let key = SessionKey::generate()?;
        let a = self.auth;
        let (key_ref, filters_ref, options_ref) = (&key, &filters, &options);
        let started = a
            .client()
            .with_public_key(KeyUsage::SymmetricKeyEncryption, |mf| async move {
                let info = key_ref.encryption_info(mf.public_key(), Some(mf.public_key_id()))?;
                let body = api::InvoiceExportRequest {
                    compression_type: Some(if options_ref.tar_gz {
                        CompressionType::TarGz
                    } else {
                        CompressionType::Zip
                    }),
                    encryption: crate::session::encryption_info(&info)?,
                    filters: filters_ref.clone(),
                    only_metadata: Some(options_ref.only_metadata),
                };
                a.call(|t| {
                    let body = &body;
                    async move { a.client().transport().start_invoice_export(&t, body).await }
                })
                .await
            })
            .await?
            .into_value();
        Ok(Export {
            auth: a.clone(),
            reference: started.reference_number,
            key,
            options,
        })
    }

    /// Starts an export and waits for its package.
    pub async fn export(
        &self,
        filters: InvoiceQueryFilters,
        options: ExportOptions,
    ) -> Result<ExportPackage> {
        self.start_export(filters, options).await?.wait().await
    }
}

struct QueryState {
    filters: InvoiceQueryFilters,
    page: u32,
    seen: HashSet<String>,
    done: bool,
}

/// A started export. [`Export::wait`] polls until the package is ready.
pub struct Export {
    auth: AuthenticatedClient,
    reference: ReferenceNumber,
    key: SessionKey,
    options: ExportOptions,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("reference", &self.reference)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Export {
    /// The export's reference number.
    pub fn reference_number(&self) -> &ReferenceNumber {
        &self.reference
    }

    /// The current status (`GET /invoices/exports/{referenceNumber}`).
    pub async fn status(&self) -> Result<api::InvoiceExportStatusResponse> {
        let (a, r) = (&self.auth, &self.reference);
        Ok(
            a.call(|t| async move { a.client().transport().invoice_export_status(&t, r).await })
                .await?
                .into_value(),
        )
    }

    /// Polls until the export leaves 100: the package on 200, otherwise
    /// [`Error::ExportFailed`] with KSeF's status (415 key, 420 range beyond the HWM, 210
    /// expired, 500/550).
    pub async fn wait(self) -> Result<ExportPackage> {
        let this = &self;
        let status = self
            .auth
            .client()
            .poll_options()
            .poll("the invoice export", || async move {
                let s = this.status().await?;
                Ok((s.status.code != 100).then_some(s))
            })
            .await?;
        match (status.status.code, status.package) {
            (200, Some(package)) => Ok(ExportPackage {
                auth: self.auth,
                reference: self.reference,
                key: self.key,
                options: self.options,
                package,
            }),
            (_, _) => Err(Error::ExportFailed {
                reference: self.reference.to_string(),
                status: StatusFailure {
                    code: status.status.code,
                    description: status.status.description,
                    details: status.status.details.unwrap_or_default(),
                },
            }),
        }
    }
}

/// A finished export: the package description and the key to decrypt it.
pub struct ExportPackage {
    auth: AuthenticatedClient,
    reference: ReferenceNumber,
    key: SessionKey,
    options: ExportOptions,
    package: InvoicePackage,
}

impl std::fmt::Debug for ExportPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportPackage")
            .field("reference", &self.reference)
            .field("invoice_count", &self.package.invoice_count)
            .field("parts", &self.package.parts.len())
            .field("is_truncated", &self.package.is_truncated)
            .finish_non_exhaustive()
    }
}

impl ExportPackage {
    /// The export's reference number.
    pub fn reference_number(&self) -> &ReferenceNumber {
        &self.reference
    }

    /// KSeF's description of the package (counts, parts, `isTruncated`, `last*Date`,
    /// `permanentStorageHwmDate`).
    pub fn info(&self) -> &InvoicePackage {
        &self.package
    }

    /// Where the next export of an incremental run starts: `lastPermanentStorageDate` when
    /// truncated, otherwise `permanentStorageHwmDate` (both only for `PermanentStorage` filters).
    pub fn next_from(&self) -> Option<DateTime> {
        if self.package.is_truncated {
            self.package.last_permanent_storage_date
        } else {
            self.package.permanent_storage_hwm_date
        }
    }

    /// Downloads every part (verifying `encryptedPartHash`), decrypts each on its own with the
    /// export key, checks `partHash`, and writes the concatenated archive to `sink` in
    /// `ordinalNumber` order. Memory holds one part at a time.
    pub async fn download_archive<W: Write>(&self, sink: &mut W) -> Result<u64> {
        let mut parts: Vec<&api::InvoicePackagePart> = self.package.parts.iter().collect();
        parts.sort_by_key(|p| p.ordinal_number);
        let mut total = 0u64;
        for part in parts {
            let mut encrypted: Vec<u8> =
                Vec::with_capacity((part.encrypted_part_size as usize).min(64 << 20));
            self.auth
                .client()
                .transport()
                .download_export_part(part, &mut encrypted)
                .await?;
            let plain = self.key.decrypt(&encrypted)?;
            drop(encrypted);
            let hash = sha256_b64(&plain);
            if hash != part.part_hash.as_str() {
                return Err(Error::Archive(format!(
                    "export part {} decrypted to bytes whose SHA-256 {hash} differs from partHash {}; download the export again",
                    part.ordinal_number,
                    part.part_hash.as_str()
                )));
            }
            sink.write_all(&plain)
                .map_err(|e| Error::io("writing the export archive", e))?;
            total += plain.len() as u64;
        }
        sink.flush()
            .map_err(|e| Error::io("writing the export archive", e))?;
        Ok(total)
    }

    /// Downloads, decrypts and unpacks the package: a stream of (metadata, XML) in the
    /// package's order. The archive goes through a temporary file, so memory stays bounded
    /// by one part plus one invoice.
    pub async fn invoices(
        self,
    ) -> Result<impl Stream<Item = Result<ExportedInvoice>> + Send + Unpin> {
        let mut file =
            tempfile::tempfile().map_err(|e| Error::io("creating a temporary file", e))?;
        self.download_archive(&mut file).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<ExportedInvoice>>(16);
        let tar_gz = self.options.tar_gz;
        let only_metadata = self.options.only_metadata;
        tokio::task::spawn_blocking(move || {
            let result = unpack(file, tar_gz, only_metadata, &mut |item| {
                tx.blocking_send(Ok(item)).is_ok()
            });
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
            }
        });
        use futures_util::StreamExt as _;
        Ok(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed())
    }
}

#[derive(serde::Deserialize)]
struct MetadataFile {
    invoices: Vec<InvoiceMetadata>,
}

fn archive_err(e: impl std::fmt::Display) -> Error {
    Error::Archive(format!("the export package cannot be read: {e}"))
}

fn read_entry(r: &mut impl Read) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).map_err(archive_err)?;
    Ok(v)
}

/// Unpacks a decrypted package: reads `_metadata.json`, then hands each invoice (in archive
/// order) to `emit` until it returns `false`.
fn unpack(
    mut file: std::fs::File,
    tar_gz: bool,
    only_metadata: bool,
    emit: &mut dyn FnMut(ExportedInvoice) -> bool,
) -> Result<()> {
    let rewind = |f: &mut std::fs::File| {
        f.rewind()
            .map_err(|e| Error::io("reading the export archive", e))
    };
    rewind(&mut file)?;
    let parse_meta = |bytes: &[u8]| -> Result<Vec<InvoiceMetadata>> {
        Ok(serde_json::from_slice::<MetadataFile>(bytes)
            .map_err(|e| archive_err(format!("{METADATA_FILE}: {e}")))?
            .invoices)
    };
    if tar_gz {
        // Pass 1: the metadata file (it may come last); pass 2: the invoices.
        let mut metadata = None;
        {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&mut file));
            for entry in tar.entries().map_err(archive_err)? {
                let mut entry = entry.map_err(archive_err)?;
                let name = entry
                    .path()
                    .map_err(archive_err)?
                    .to_string_lossy()
                    .into_owned();
                if name == METADATA_FILE {
                    metadata = Some(parse_meta(&read_entry(&mut entry)?)?);
                    break;
                }
            }
        }
        let metadata =
            metadata.ok_or_else(|| archive_err(format!("{METADATA_FILE} is missing")))?;
        if only_metadata {
            return emit_metadata_only(metadata, emit);
        }
        let mut by_number: HashMap<String, InvoiceMetadata> = metadata
            .into_iter()
            .map(|m| (m.ksef_number.as_str().to_owned(), m))
            .collect();
        rewind(&mut file)?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&mut file));
        for entry in tar.entries().map_err(archive_err)? {
            let mut entry = entry.map_err(archive_err)?;
            let name = entry
                .path()
                .map_err(archive_err)?
                .to_string_lossy()
                .into_owned();
            let Some(number) = name.strip_suffix(".xml") else {
                continue;
            };
            let metadata = by_number
                .remove(number)
                .ok_or_else(|| archive_err(format!("{name} has no entry in {METADATA_FILE}")))?;
            let xml = Bytes::from(read_entry(&mut entry)?);
            if !emit(ExportedInvoice {
                metadata,
                xml: Some(xml),
            }) {
                return Ok(());
            }
        }
        Ok(())
    } else {
        let mut zip = zip::ZipArchive::new(file).map_err(archive_err)?;
        let metadata = {
            let mut f = zip.by_name(METADATA_FILE).map_err(archive_err)?;
            parse_meta(&read_entry(&mut f)?)?
        };
        if only_metadata {
            return emit_metadata_only(metadata, emit);
        }
        for m in metadata {
            let name = format!("{}.xml", m.ksef_number.as_str());
            let xml = {
                let mut f = zip.by_name(&name).map_err(archive_err)?;
                Bytes::from(read_entry(&mut f)?)
            };
            if !emit(ExportedInvoice {
                metadata: m,
                xml: Some(xml),
            }) {
                return Ok(());
            }
        }
        Ok(())
    }
}

fn emit_metadata_only(
    metadata: Vec<InvoiceMetadata>,
    emit: &mut dyn FnMut(ExportedInvoice) -> bool,
) -> Result<()> {
    for m in metadata {
        if !emit(ExportedInvoice {
            metadata: m,
            xml: None,
        }) {
            break;
        }
    }
    Ok(())
}
