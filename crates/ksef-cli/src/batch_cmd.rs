//! `ksef send --batch`: one batch session with progress bars for packaging and upload.

use std::path::PathBuf;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ksef::batch::{BatchBuilder, BatchInvoice, Compression};
use ksef::crypto::encryption::SessionKey;
use ksef::{BatchSendOptions, UploadProgress};

use crate::Global;
use crate::error::{CliError, sdk};
use crate::send_cmd::{ArchiveFormat, SendArgs, with_login, write_file};

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Sends `args.files` in one batch session.
pub async fn send_batch(args: SendArgs, g: Global) -> Result<(), CliError> {
    // Check every file before anything is packed or opened (they are read while packing).
    for path in &args.files {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(CliError::invalid(format!(
                    "{} is not a file",
                    path.display()
                )));
            }
            Err(e) => return Err(CliError::io("read", path, e)),
        }
    }
    if let Some(dir) = &args.upo_dir {
        std::fs::create_dir_all(dir).map_err(|e| CliError::io("create the directory", dir, e))?;
    }
    let bars = MultiProgress::with_draw_target(if g.json {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let files = args.files.clone();
    let total = files.len() as u64;
    let json = g.json;
    let upo_dir = args.upo_dir.clone();
    let compression = match args.compression {
        ArchiveFormat::Zip => Compression::Zip,
        ArchiveFormat::TarGz => Compression::TarGz,
    };
    let concurrency = args.concurrency.max(1);

    let key = SessionKey::generate().map_err(|e| CliError::failed(format!("session key: {e}")))?;
    let pack = bars.add(ProgressBar::new(total));
    pack.set_style(style("packing   {bar:30} {pos}/{len} invoices {elapsed}"));
    let package = {
        let key = key.clone();
        let pack = pack.clone();
        let files = files.clone();
        tokio::task::spawn_blocking(move || {
            BatchBuilder::new(key).compression(compression).build(
                files
                    .into_iter()
                    .inspect(|_| pack.inc(1))
                    .map(BatchInvoice::path),
            )
        })
        .await
        .map_err(|e| CliError::failed(format!("packing the batch stopped: {e}")))?
        .map_err(sdk("packing the batch"))?
    };
    pack.finish();
    let parts = package.parts().len();

    let upload = bars.add(ProgressBar::new(
        package.parts().iter().map(|p| p.encrypted_size()).sum(),
    ));
    upload.set_style(style(
        "uploading {bar:30} {bytes}/{total_bytes} ({msg}) {elapsed}",
    ));
    upload.set_message(format!("0/{parts} parts"));
    let progress_bar = upload.clone();
    let options = BatchSendOptions {
        concurrency,
        progress: Some(Arc::new(move |p: UploadProgress| {
            progress_bar.set_position(p.bytes_done);
            progress_bar.set_message(format!("{}/{} parts", p.parts_done, p.parts_total));
        })),
        ..BatchSendOptions::default()
    };

    let (session, invoices, upos) = with_login(&g, async |li| {
        let sessions = li.auth.sessions();
        let outcome = match sessions.send_batch(&package, &key, &options).await {
            Ok(o) => o,
            // 445: the session failed because no invoice was accepted; KSeF still reports each
            // invoice, so say per file why rather than one line for the whole batch.
            Err(ksef::Error::SessionFailed { reference, status }) if status.code == 445 => {
                upload.finish();
                let r: ksef::model::ReferenceNumber = reference.parse().map_err(|e| {
                    CliError::failed(format!("session {reference} failed with {status} ({e})"))
                })?;
                let results = sessions
                    .batch_results(&r, &package)
                    .await
                    .map_err(sdk("fetching the batch results"))?;
                let n = results.len();
                return Ok((reference, results, (vec![None; n], Vec::new())));
            }
            Err(e) => return Err(CliError::sdk("sending the batch", e)),
        };
        upload.finish();
        let mut upos: Vec<Option<PathBuf>> = vec![None; outcome.invoices.len()];
        let mut session_upos = Vec::new();
        if let Some(dir) = &upo_dir {
            let session = outcome.session.reference_number();
            for (i, inv) in outcome.invoices.iter().enumerate() {
                if let Some(Ok(k)) = &inv.outcome {
                    let doc = sessions
                        .invoice_upo_by_ksef_number(session, k)
                        .await
                        .map_err(sdk("fetching an invoice UPO"))?;
                    let path = dir.join(format!("upo-{k}.xml"));
                    write_file(&path, &doc.bytes)?;
                    upos[i] = Some(path);
                }
            }
            let pages = outcome
                .session
                .fetch_upo()
                .await
                .map_err(sdk("fetching the session UPO"))?;
            for (i, page) in pages.iter().enumerate() {
                let path = dir.join(format!("upo-session-{session}-{}.xml", i + 1));
                write_file(&path, &page.bytes)?;
                session_upos.push(path);
            }
        }
        let session = outcome.session.reference_number().to_string();
        Ok((session, outcome.invoices, (upos, session_upos)))
    })
    .await?;
    let (upos, session_upos) = upos;

    let mut failed = 0;
    let mut items = Vec::new();
    for ((path, inv), upo) in files.iter().zip(&invoices).zip(&upos) {
        let file = path.display().to_string();
        match &inv.outcome {
            Some(Ok(k)) => {
                if !json {
                    println!("{file}: {k}");
                }
                items.push(serde_json::json!({
                    "file": file, "ok": true, "ksefNumber": k.to_string(),
                    "upo": upo.as_ref().map(|p| p.display().to_string()),
                }));
            }
            other => {
                failed += 1;
                let error = match other {
                    Some(Err(status)) => format!("rejected with {status}"),
                    _ => "not reported by KSeF".to_owned(),
                };
                if !json {
                    eprintln!("{file}: {error}");
                }
                items.push(serde_json::json!({"file": file, "ok": false, "error": error}));
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "sessionReferenceNumber": session,
                "batch": true,
                "parts": parts,
                "invoices": items,
                "sessionUpo": session_upos.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "accepted": items.len() - failed,
                "failed": failed,
            })
        );
    } else {
        println!(
            "batch session {session}: {} accepted, {failed} failed, {parts} part(s)",
            items.len() - failed
        );
        for p in &session_upos {
            println!("session UPO: {}", p.display());
        }
    }
    if failed > 0 {
        return Err(CliError::failed(format!(
            "{failed} of {} invoice(s) rejected (batch session {session})",
            items.len()
        )));
    }
    Ok(())
}
