//! `ksef send`, `ksef status`, `ksef upo`.

use std::path::{Path, PathBuf};

use clap::Args;
use ksef::model::ids::{KsefNumber, ReferenceNumber};

use crate::Global;
use crate::error::{CliError, sdk};
use crate::profile::LoggedIn;

/// `ksef send FILE…`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// FA(3) invoice XML files (UTF-8, no BOM).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Save each invoice's UPO (and the session UPO) in this directory.
    #[arg(long)]
    pub upo_dir: Option<PathBuf>,
    /// Send in one batch session: pack, encrypt and upload the files in parts (progress bars
    /// on stderr), then report each file's outcome.
    #[arg(long)]
    pub batch: bool,
    /// Archive format of a batch.
    #[arg(long, value_enum, default_value_t = ArchiveFormat::Zip, requires = "batch")]
    pub compression: ArchiveFormat,
    /// Parts uploaded at the same time in a batch.
    #[arg(long, default_value_t = 4, requires = "batch")]
    pub concurrency: usize,
}

/// Batch archive formats.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ArchiveFormat {
    /// Zip (deflate).
    Zip,
    /// gzip-compressed tar.
    TarGz,
}

/// `ksef status SESSION [--invoice REF]`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The session reference number.
    pub session: String,
    /// An invoice reference number in that session: its status instead of the session's.
    #[arg(long)]
    pub invoice: Option<String>,
}

/// `ksef upo --session REF [--ksef-number K | --invoice REF]`.
#[derive(Args, Debug)]
pub struct UpoArgs {
    /// The session reference number.
    #[arg(long)]
    pub session: String,
    /// The invoice's KSeF number (without it and --invoice: the session UPO).
    #[arg(long, conflicts_with = "invoice")]
    pub ksef_number: Option<String>,
    /// The invoice's reference number.
    #[arg(long)]
    pub invoice: Option<String>,
    /// Where to write the UPO: a file for one invoice, a directory for a session's pages
    /// (default: stdout for one document, the current directory for several).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

fn parse_ref(flag: &str, s: &str) -> Result<ReferenceNumber, CliError> {
    s.parse::<ReferenceNumber>()
        .map_err(|e| CliError::invalid(format!("{flag}: {e}")))
}

/// Runs `body` with the profile's login and saves refreshed tokens afterwards (also on failure).
pub(crate) async fn with_login<T>(
    g: &Global,
    body: impl AsyncFnOnce(&LoggedIn) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let mut li = LoggedIn::open(g)?;
    let result = body(&li).await;
    let saved = li.persist().await;
    let value = result?;
    saved?;
    Ok(value)
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|e| CliError::io("write", path, e))
}

/// `ksef send`.
pub async fn send(args: SendArgs, g: Global) -> Result<(), CliError> {
    if args.batch {
        return crate::batch_cmd::send_batch(args, g).await;
    }
    // Read every file first: a missing file fails before a session is opened.
    let mut invoices = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let bytes = std::fs::read(path).map_err(|e| CliError::io("read", path, e))?;
        invoices.push((path.clone(), bytes));
    }
    if let Some(dir) = &args.upo_dir {
        std::fs::create_dir_all(dir).map_err(|e| CliError::io("create the directory", dir, e))?;
    }
    let upo_dir = args.upo_dir.clone();
    let json = g.json;
    let (results, session_ref, session_upos) = with_login(&g, async |li| {
        let session = li
            .auth
            .sessions()
            .open_online()
            .await
            .map_err(sdk("opening the online session"))?;
        eprintln!("online session {}", session.reference_number());
        let mut results = Vec::new();
        for (path, bytes) in &invoices {
            let outcome = send_one(&session, bytes, upo_dir.as_deref()).await;
            match &outcome {
                Ok((k, r, _)) if !json => println!("{}: {k} (reference {r})", path.display()),
                Err(e) if !json => eprintln!("{}: {}", path.display(), e.message),
                _ => {}
            }
            results.push((path.clone(), outcome));
        }
        let session_ref = session.reference_number().clone();
        let closed = match session.close().await {
            Ok(c) => Some(c),
            // 445: no invoice was accepted, so there is no session UPO; the per-file results
            // below say why.
            Err(e) if e.status_code() == Some(445) => None,
            Err(e) => return Err(CliError::sdk("closing the session", e)),
        };
        let mut session_upos = Vec::new();
        if let (Some(dir), Some(closed)) = (&upo_dir, &closed) {
            let pages = closed
                .fetch_upo()
                .await
                .map_err(sdk("fetching the session UPO"))?;
            for (i, page) in pages.iter().enumerate() {
                let path = dir.join(format!("upo-session-{session_ref}-{}.xml", i + 1));
                write_file(&path, &page.bytes)?;
                session_upos.push(path);
            }
        }
        Ok((results, session_ref, session_upos))
    })
    .await?;

    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if json {
        let items: Vec<_> = results
            .iter()
            .map(|(path, r)| match r {
                Ok((k, reference, upo)) => serde_json::json!({
                    "file": path.display().to_string(),
                    "ok": true,
                    "ksefNumber": k.to_string(),
                    "referenceNumber": reference.to_string(),
                    "upo": upo.as_ref().map(|p| p.display().to_string()),
                }),
                Err(e) => serde_json::json!({
                    "file": path.display().to_string(),
                    "ok": false,
                    "error": e.message,
                }),
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "sessionReferenceNumber": session_ref.to_string(),
                "invoices": items,
                "sessionUpo": session_upos.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "accepted": results.len() - failed,
                "failed": failed,
            })
        );
    } else {
        for p in &session_upos {
            println!("session UPO: {}", p.display());
        }
    }
    if failed > 0 {
        return Err(CliError::failed(format!(
            "{failed} of {} invoice(s) rejected (session {session_ref})",
            results.len()
        )));
    }
    Ok(())
}

async fn send_one(
    session: &ksef::OnlineSession,
    bytes: &[u8],
    upo_dir: Option<&Path>,
) -> Result<(KsefNumber, ReferenceNumber, Option<PathBuf>), CliError> {
    let sent = session.send_invoice(bytes).await.map_err(sdk("sending"))?;
    let accepted = sent.wait().await.map_err(sdk("processing"))?;
    let mut upo_path = None;
    if let Some(dir) = upo_dir {
        let upo = session
            .upo_by_ksef_number(&accepted.ksef_number)
            .await
            .map_err(sdk("fetching the UPO"))?;
        let path = dir.join(format!("upo-{}.xml", accepted.ksef_number));
        write_file(&path, &upo.bytes)?;
        upo_path = Some(path);
    }
    Ok((
        accepted.ksef_number,
        sent.reference_number().clone(),
        upo_path,
    ))
}

/// `ksef status`.
pub async fn status(args: StatusArgs, g: Global) -> Result<(), CliError> {
    let session = parse_ref("SESSION", &args.session)?;
    let invoice = args
        .invoice
        .as_deref()
        .map(|r| parse_ref("--invoice", r))
        .transpose()?;
    let json = g.json;
    with_login(&g, async |li| {
        let sessions = li.auth.sessions();
        if let Some(invoice) = &invoice {
            let s = sessions
                .invoice_status(&session, invoice)
                .await
                .map_err(sdk("fetching the invoice status"))?;
            if json {
                println!("{}", to_json(&s)?);
            } else {
                println!(
                    "invoice {invoice}: {} {}",
                    s.status.code, s.status.description
                );
                if let Some(k) = &s.ksef_number {
                    println!("KSeF number: {k}");
                }
                for d in s.status.details.iter().flatten() {
                    println!("  {d}");
                }
            }
        } else {
            let s = sessions
                .status(&session)
                .await
                .map_err(sdk("fetching the session status"))?;
            if json {
                println!("{}", to_json(&s)?);
            } else {
                println!(
                    "session {session}: {} {}",
                    s.status.code, s.status.description
                );
                println!(
                    "invoices: {} sent, {} accepted, {} failed",
                    s.invoice_count.unwrap_or(0),
                    s.successful_invoice_count.unwrap_or(0),
                    s.failed_invoice_count.unwrap_or(0)
                );
                for d in s.status.details.iter().flatten() {
                    println!("  {d}");
                }
            }
        }
        Ok(())
    })
    .await
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, CliError> {
    serde_json::to_string(v).map_err(|e| CliError::failed(format!("cannot write JSON: {e}")))
}

/// `ksef upo`.
pub async fn upo(args: UpoArgs, g: Global) -> Result<(), CliError> {
    let session = parse_ref("--session", &args.session)?;
    let ksef_number = args
        .ksef_number
        .as_deref()
        .map(|k| {
            k.parse::<KsefNumber>()
                .map_err(|e| CliError::invalid(format!("--ksef-number: {e}")))
        })
        .transpose()?;
    let invoice = args
        .invoice
        .as_deref()
        .map(|r| parse_ref("--invoice", r))
        .transpose()?;
    let json = g.json;
    let out = args.out.clone();
    with_login(&g, async |li| {
        let sessions = li.auth.sessions();
        let s = &session;
        let docs: Vec<(String, Vec<u8>)> = if let Some(k) = &ksef_number {
            let doc = sessions
                .invoice_upo_by_ksef_number(s, k)
                .await
                .map_err(sdk("fetching the invoice UPO"))?;
            vec![(format!("upo-{k}.xml"), doc.bytes.to_vec())]
        } else if let Some(r) = &invoice {
            let doc = sessions
                .invoice_upo_by_reference(s, r)
                .await
                .map_err(sdk("fetching the invoice UPO"))?;
            vec![(format!("upo-{r}.xml"), doc.bytes.to_vec())]
        } else {
            let status = sessions
                .status(s)
                .await
                .map_err(sdk("fetching the session status"))?;
            let pages = status.upo.map(|u| u.pages).unwrap_or_default();
            if pages.is_empty() {
                return Err(CliError::failed(format!(
                    "session {s} has no UPO yet (status {} {}): close it and wait until it is processed",
                    status.status.code, status.status.description
                )));
            }
            let mut docs = Vec::new();
            for (i, page) in pages.iter().enumerate() {
                let doc = sessions
                    .session_upo_page(s, &page.reference_number)
                    .await
                    .map_err(sdk("fetching the session UPO"))?;
                docs.push((format!("upo-session-{s}-{}.xml", i + 1), doc.bytes.to_vec()));
            }
            docs
        };
        // One document without --out: stdout (unless --json, which reports paths).
        if docs.len() == 1 && out.is_none() && !json {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(&docs[0].1)
                .map_err(|e| CliError::failed(format!("cannot write to stdout: {e}")))?;
            return Ok(());
        }
        let mut written = Vec::new();
        match &out {
            Some(path) if docs.len() == 1 && !path.is_dir() => {
                write_file(path, &docs[0].1)?;
                written.push(path.clone());
            }
            other => {
                let dir = other.clone().unwrap_or_else(|| PathBuf::from("."));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| CliError::io("create the directory", &dir, e))?;
                for (name, bytes) in &docs {
                    let path = dir.join(name);
                    write_file(&path, bytes)?;
                    written.push(path);
                }
            }
        }
        if json {
            let files: Vec<_> = written.iter().map(|p| p.display().to_string()).collect();
            println!("{}", serde_json::json!({ "files": files }));
        } else {
            for p in written {
                println!("{}", p.display());
            }
        }
        Ok(())
    })
    .await
}
