//! `ksef export`: an asynchronous export package on the SDK's `auth.invoices()` — start with a
//! key of our own, wait, download every part (hash-checked), decrypt, join in order and unpack `{ksefNumber}.xml` files and
//! `_metadata.json` into a directory.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ksef::ExportOptions;
use ksef::model::api::InvoiceQueryFilters;
use serde_json::json;

use crate::Global;
use crate::error::{CliError, sdk};
use crate::retrieval_cmd::{FilterArgs, filters};
use crate::send_cmd::with_login;

/// `ksef export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Directory the invoices and `_metadata.json` are unpacked into.
    #[arg(long, short, default_value = "ksef-export")]
    pub out: PathBuf,
    /// Only `_metadata.json`, no invoice files.
    #[arg(long)]
    pub only_metadata: bool,
    /// Only up to the high-water mark (restrictToPermanentStorageHwmDate; with --date-type
    /// storage): what is below it is final.
    #[arg(long)]
    pub up_to_hwm: bool,
    /// How long to wait for KSeF to build the package, in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

/// A downloaded, decrypted export package.
pub struct Exported {
    /// The export's reference number.
    pub reference: String,
    /// Invoices in the package.
    pub invoice_count: u64,
    /// Parts downloaded.
    pub parts: usize,
    /// Whether KSeF cut the package short (continue from `last_permanent_storage_date`).
    pub is_truncated: bool,
    /// `lastPermanentStorageDate` as KSeF wrote it.
    pub last_permanent_storage_date: Option<String>,
    /// `permanentStorageHwmDate` as KSeF wrote it.
    pub permanent_storage_hwm_date: Option<String>,
    /// The joined, decrypted Zip archive.
    pub archive: Vec<u8>,
}

fn date_json<T: serde::Serialize>(d: Option<&T>) -> Option<String> {
    d.and_then(|d| serde_json::to_value(d).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// Starts an export of `filters` on the SDK (`auth.invoices().start_export`), waits up to
/// `timeout`, downloads, hash-checks and decrypts every part into one archive.
pub async fn export_package(
    a: &ksef::AuthenticatedClient,
    filters: InvoiceQueryFilters,
    only_metadata: bool,
    timeout: Duration,
) -> Result<Exported, CliError> {
    let options = ExportOptions {
        only_metadata,
        tar_gz: false,
    };
    let started = a
        .invoices()
        .start_export(filters, options)
        .await
        .map_err(sdk("starting the export"))?;
    let reference = started.reference_number().to_string();
    let package = tokio::time::timeout(timeout, started.wait())
        .await
        .map_err(|_| {
            CliError::failed(format!(
                "export {reference} is not ready after {} s; run again later or raise --timeout",
                timeout.as_secs()
            ))
        })?
        .map_err(sdk("waiting for the export"))?;
    let mut archive = Vec::new();
    package
        .download_archive(&mut archive)
        .await
        .map_err(sdk("downloading the export package"))?;
    let info = package.info();
    Ok(Exported {
        reference,
        invoice_count: info.invoice_count,
        parts: info.parts.len(),
        is_truncated: info.is_truncated,
        last_permanent_storage_date: date_json(info.last_permanent_storage_date.as_ref()),
        permanent_storage_hwm_date: date_json(info.permanent_storage_hwm_date.as_ref()),
        archive,
    })
}

/// Unpacks a Zip archive into `dir` (names checked by the zip crate: nothing lands outside
/// `dir`); returns the entry names.
pub async fn unpack(archive: Vec<u8>, dir: PathBuf) -> Result<Vec<String>, CliError> {
    tokio::task::spawn_blocking(move || -> Result<Vec<String>, CliError> {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive))
            .map_err(|e| CliError::failed(format!("the export package is not a Zip: {e}")))?;
        let names = zip
            .file_names()
            .map(|n| n.map(|n| n.into_owned()))
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| CliError::failed(format!("the export package is damaged: {e}")))?;
        zip.extract(&dir)
            .map_err(|e| CliError::failed(format!("unpacking into {}: {e}", dir.display())))?;
        Ok(names)
    })
    .await
    .map_err(|e| CliError::failed(format!("unpacking stopped: {e}")))?
}

/// Runs `ksef export`.
pub async fn export(args: ExportArgs, g: Global) -> Result<(), CliError> {
    let mut filters = filters(&args.filter)?;
    if args.up_to_hwm {
        filters.date_range.restrict_to_permanent_storage_hwm_date = Some(true);
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| CliError::io("create the directory", &args.out, e))?;
    let json_out = g.json;
    with_login(&g, async |li| {
        let e = export_package(
            &li.auth,
            filters,
            args.only_metadata,
            Duration::from_secs(args.timeout),
        )
        .await?;
        let files = unpack(e.archive, args.out.clone()).await?.len();
        if json_out {
            println!(
                "{}",
                json!({
                    "referenceNumber": e.reference,
                    "directory": args.out.display().to_string(),
                    "invoiceCount": e.invoice_count,
                    "files": files,
                    "parts": e.parts,
                    "isTruncated": e.is_truncated,
                    "lastPermanentStorageDate": e.last_permanent_storage_date,
                    "permanentStorageHwmDate": e.permanent_storage_hwm_date,
                })
            );
        } else {
            println!(
                "{} invoice(s) in {} part(s) unpacked into {}",
                e.invoice_count,
                e.parts,
                args.out.display()
            );
            if e.is_truncated {
                println!(
                    "truncated: continue with --from {}",
                    e.last_permanent_storage_date.unwrap_or_default()
                );
            }
            if let Some(h) = e.permanent_storage_hwm_date {
                println!("high-water mark: {h}");
            }
        }
        Ok(())
    })
    .await
}
