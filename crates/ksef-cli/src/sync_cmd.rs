//! `ksef sync DIR`: incremental, restartable retrieval on KSeF's high-water mark, run by the
//! SDK's `auth.sync()` over exports, per subject type, into `DIR/<subject>/{ksefNumber}.xml`.
//! The SDK saves its checkpoint (`DIR/.ksef-sync/<subject>.json`) after each invoice is on disk
//! and cuts query windows at 3 months; a repeated invoice overwrites its file, never duplicates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::json;

use ksef::model::DateTime;
use ksef::model::api::InvoiceQuerySubjectType;
use ksef::{FsSyncStateStore, SyncCheckpoint, SyncOptions, SyncStateStore};

use crate::Global;
use crate::error::CliError;
use crate::send_cmd::with_login;

/// Whose directory this is (env and NIP).
const STATE_FILE: &str = ".ksef-sync.json";
/// The SDK's checkpoints, one file per subject.
const CHECKPOINT_DIR: &str = ".ksef-sync";

/// `ksef sync DIR`.
#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The directory to keep in sync (created if missing).
    pub dir: PathBuf,
    /// Whose invoices (repeatable; default seller and buyer).
    #[arg(long = "subject", value_enum)]
    pub subjects: Vec<SyncSubject>,
    /// Where a first sync starts: YYYY-MM-DD (Warsaw midnight) or RFC 3339 (default: 30 days
    /// ago). Later runs continue from the saved position.
    #[arg(long)]
    pub since: Option<String>,
    /// How long one subject's sync may run, in seconds (a stopped run resumes from its
    /// saved position).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

/// Subject types to sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum SyncSubject {
    /// Invoices the context issued (Subject1).
    Seller,
    /// Invoices the context received (Subject2).
    Buyer,
    /// Invoices naming the context as a third party (Subject3).
    ThirdParty,
    /// Invoices where the context is the authorised subject.
    Authorized,
}

impl SyncSubject {
    fn api(self) -> InvoiceQuerySubjectType {
        match self {
            SyncSubject::Seller => InvoiceQuerySubjectType::Subject1,
            SyncSubject::Buyer => InvoiceQuerySubjectType::Subject2,
            SyncSubject::ThirdParty => InvoiceQuerySubjectType::Subject3,
            SyncSubject::Authorized => InvoiceQuerySubjectType::SubjectAuthorized,
        }
    }
    fn dir(self) -> &'static str {
        match self {
            SyncSubject::Seller => "seller",
            SyncSubject::Buyer => "buyer",
            SyncSubject::ThirdParty => "third-party",
            SyncSubject::Authorized => "authorized",
        }
    }
}

/// The directory's owner (`DIR/.ksef-sync.json`); the positions themselves are the SDK's
/// checkpoints in `DIR/.ksef-sync/<subject>.json` ([`FsSyncStateStore`]). `from` is the
/// pre-SDK layout's position map, read once to seed missing checkpoints and then dropped.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct SyncOwner {
    env: String,
    nip: String,
    #[serde(default, skip_serializing)]
    from: BTreeMap<String, String>,
}

fn load_owner(path: &Path) -> Result<Option<SyncOwner>, CliError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            CliError::invalid(format!(
                "{} is damaged ({e}); delete it to start over",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::io("read", path, e)),
    }
}

fn save_owner(path: &Path, owner: &SyncOwner) -> Result<(), CliError> {
    let bytes = serde_json::to_vec_pretty(owner)
        .map_err(|e| CliError::failed(format!("sync state: {e}")))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(|e| CliError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| CliError::io("write", path, e))
}

/// `--since` as an instant: RFC 3339 as given; a bare date is Warsaw midnight, taken at
/// +02:00 (summer time) so that in winter the window starts an hour early rather than late
/// (a superset; files are named by KSeF number, so nothing duplicates).
fn since(s: Option<&str>) -> Result<DateTime, CliError> {
    let text = match s {
        Some(s) => crate::retrieval_cmd::date_time("--since", s)?,
        None => {
            let d = time::OffsetDateTime::now_utc().date() - time::Duration::days(30);
            format!("{d}T00:00:00")
        }
    };
    let text = if text.len() == "YYYY-MM-DDT00:00:00".len() {
        format!("{text}+02:00")
    } else {
        text
    };
    DateTime::parse(&text).map_err(|e| CliError::invalid(format!("--since: {e}")))
}

/// Runs `ksef sync`.
pub async fn sync(args: SyncArgs, g: Global) -> Result<(), CliError> {
    let mut subjects = args.subjects.clone();
    if subjects.is_empty() {
        subjects = vec![SyncSubject::Seller, SyncSubject::Buyer];
    }
    subjects.sort();
    subjects.dedup();
    let start = since(args.since.as_deref())?;
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| CliError::io("create the directory", &args.dir, e))?;
    let owner_path = args.dir.join(STATE_FILE);
    let json_out = g.json;
    with_login(&g, async |li| {
        let profile = &li.profile;
        let owner = match load_owner(&owner_path)? {
            Some(s) if s.env != profile.env || s.nip != profile.nip => {
                return Err(CliError::invalid(format!(
                    "{} belongs to NIP {} on {}, not NIP {} on {}: sync into another directory",
                    args.dir.display(),
                    s.nip,
                    s.env,
                    profile.nip,
                    profile.env
                )));
            }
            Some(s) => s,
            None => SyncOwner {
                env: profile.env.clone(),
                nip: profile.nip.clone(),
                from: BTreeMap::new(),
            },
        };
        let store = FsSyncStateStore::new(args.dir.join(CHECKPOINT_DIR))
            .map_err(|e| CliError::sdk("sync state", e))?;
        // Seed checkpoints from a pre-SDK state file, then write it in the new shape.
        for (subject, from) in &owner.from {
            if store
                .load(subject)
                .map_err(|e| CliError::sdk("sync state", e))?
                .is_none()
                && let Ok(from) = DateTime::parse(from)
            {
                let cp = SyncCheckpoint {
                    from,
                    handled_at_from: Vec::new(),
                };
                store
                    .save(subject, &cp)
                    .map_err(|e| CliError::sdk("sync state", e))?;
            }
        }
        save_owner(&owner_path, &owner)?;
        let sync = li.auth.sync(store);
        let mut report = Vec::new();
        for subject in &subjects {
            let dir = args.dir.join(subject.dir());
            std::fs::create_dir_all(&dir)
                .map_err(|e| CliError::io("create the directory", &dir, e))?;
            let before: std::collections::HashSet<_> = std::fs::read_dir(&dir)
                .map_err(|e| CliError::io("read", &dir, e))?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            let mut options = SyncOptions::new(subject.api(), start);
            options.key = Some(subject.dir().to_owned());
            // KSeF recommends exports for synchronisation (the download limit is 64/h).
            options.via_export = true;
            // The SDK saves the checkpoint after every invoice, so stopping it here is safe:
            // the next run resumes where this one stopped.
            let limit = Duration::from_secs(args.timeout);
            let done = tokio::time::timeout(limit, sync.run_to_dir(&options, &dir))
                .await
                .map_err(|_| {
                    CliError::failed(format!(
                        "{}: not done within {} s; run again to continue from the saved position",
                        subject.dir(),
                        args.timeout
                    ))
                })?
                .map_err(|e| CliError::sdk("sync", e))?;
            let new_files = std::fs::read_dir(&dir)
                .map_err(|e| CliError::io("read", &dir, e))?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .filter(|n| {
                    n.to_string_lossy().ends_with(".xml") && !before.contains(n.as_os_str())
                })
                .count();
            let next = done.checkpoint.from.to_string();
            if !json_out {
                println!(
                    "{}: {new_files} new invoice(s); next from {next}",
                    subject.dir()
                );
            }
            report.push(json!({
                "subject": subject.dir(),
                "newInvoices": new_files,
                "delivered": done.delivered,
                "nextFrom": next,
            }));
        }
        if json_out {
            println!(
                "{}",
                json!({"directory": args.dir.display().to_string(), "subjects": report})
            );
        }
        Ok(())
    })
    .await
}
