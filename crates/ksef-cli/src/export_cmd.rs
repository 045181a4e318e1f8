//! `ksef export`: an asynchronous export package — start with a key of our own, wait, download
//! every part (hash-checked), decrypt, join in order and unpack `{ksefNumber}.xml` files and
//! `_metadata.json` into a directory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use ksef::crypto::encryption::SessionKey;
use ksef::crypto::public_key::KeyUsage;
use ksef::model::api::{InvoiceExportRequest, InvoiceExportStatusResponse};
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

/// Starts an export of `filters_json`, waits up to `timeout`, downloads and decrypts it.
pub async fn export_package(
    a: &ksef::AuthenticatedClient,
    filters_json: serde_json::Value,
    only_metadata: bool,
    timeout: Duration,
) -> Result<Exported, CliError> {
    let client = a.client();
    let t = client.transport();
    let key = SessionKey::generate().map_err(|e| CliError::failed(format!("key: {e}")))?;
    let mf = client
        .public_key(&KeyUsage::SymmetricKeyEncryption)
        .await
        .map_err(sdk("fetching the MF public key"))?;
    let info = key
        .encryption_info(mf.public_key(), Some(mf.public_key_id()))
        .map_err(|e| CliError::failed(format!("wrapping the export key: {e}")))?;
    let body: InvoiceExportRequest = serde_json::from_value(json!({
        "encryption": {
            "encryptedSymmetricKey": info.encrypted_symmetric_key,
            "initializationVector": info.initialization_vector,
            "publicKeyId": info.public_key_id,
        },
        "filters": filters_json,
        "onlyMetadata": only_metadata,
        "compressionType": "Zip",
    }))
    .map_err(|e| CliError::failed(format!("export request: {e}")))?;
    let b = &body;
    let started = a
        .call(|tok| async move { t.start_invoice_export(&tok, b).await })
        .await
        .map_err(sdk("starting the export"))?
        .into_value();
    let reference = started.reference_number;

    let since = Instant::now();
    let mut delay = Duration::from_millis(250);
    let status: InvoiceExportStatusResponse = loop {
        let r = &reference;
        let s = a
            .call(|tok| async move { t.invoice_export_status(&tok, r).await })
            .await
            .map_err(sdk("checking the export status"))?
            .into_value();
        if s.status.code != 100 {
            break s;
        }
        if since.elapsed() > timeout {
            return Err(CliError::failed(format!(
                "export {reference} is not ready after {} s; run again later or raise --timeout",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    };
    if status.status.code != 200 {
        let details = status.status.details.clone().unwrap_or_default().join("; ");
        return Err(CliError::failed(format!(
            "export {reference} ended with status {} ({}){}",
            status.status.code,
            status.status.description,
            if details.is_empty() {
                String::new()
            } else {
                format!(": {details}")
            }
        )));
    }
    let package = status
        .package
        .as_ref()
        .ok_or_else(|| CliError::failed(format!("export {reference} has no package")))?;
    let mut parts = package.parts.clone();
    parts.sort_by_key(|p| p.ordinal_number);
    let mut archive = Vec::new();
    for part in &parts {
        let mut encrypted = Vec::with_capacity(part.encrypted_part_size as usize);
        t.download_export_part(part, &mut encrypted)
            .await
            .map_err(|e| {
                CliError::sdk(
                    &format!("downloading part {}", part.ordinal_number),
                    e.into(),
                )
            })?;
        let plain = key.decrypt(&encrypted).map_err(|e| {
            CliError::failed(format!("decrypting part {}: {e}", part.ordinal_number))
        })?;
        archive.extend_from_slice(&plain);
    }
    Ok(Exported {
        reference: reference.to_string(),
        invoice_count: package.invoice_count,
        parts: parts.len(),
        is_truncated: package.is_truncated,
        last_permanent_storage_date: date_json(package.last_permanent_storage_date.as_ref()),
        permanent_storage_hwm_date: date_json(package.permanent_storage_hwm_date.as_ref()),
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
    let filters = filters(&args.filter)?;
    let mut filters_json =
        serde_json::to_value(&filters).map_err(|e| CliError::failed(format!("filters: {e}")))?;
    if args.up_to_hwm {
        filters_json["dateRange"]["restrictToPermanentStorageHwmDate"] = json!(true);
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| CliError::io("create the directory", &args.out, e))?;
    let json_out = g.json;
    with_login(&g, async |li| {
        let e = export_package(
            &li.auth,
            filters_json,
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
