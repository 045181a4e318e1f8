//! `ksef sync DIR`: incremental, restartable retrieval on KSeF's high-water mark.
//!
//! Per subject type, exports with `dateType = PermanentStorage` and
//! `restrictToPermanentStorageHwmDate = true` from the saved position, unpacks the invoices into
//! `DIR/<subject>/`, and only then saves the next position (`lastPermanentStorageDate` when the
//! package was truncated, else the high-water mark) atomically in `DIR/.ksef-sync.json`. A run
//! stopped anywhere repeats at most the last package; files are named by KSeF number, so a
//! repeat overwrites, never duplicates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::json;

use crate::Global;
use crate::error::CliError;
use crate::export_cmd::{export_package, unpack};
use crate::send_cmd::with_login;

const STATE_FILE: &str = ".ksef-sync.json";

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
    /// How long to wait for one export package, in seconds.
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
    fn api(self) -> &'static str {
        match self {
            SyncSubject::Seller => "Subject1",
            SyncSubject::Buyer => "Subject2",
            SyncSubject::ThirdParty => "Subject3",
            SyncSubject::Authorized => "SubjectAuthorized",
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

/// The saved positions, per subject directory name.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct SyncState {
    env: String,
    nip: String,
    from: BTreeMap<String, String>,
}

fn load_state(path: &Path) -> Result<Option<SyncState>, CliError> {
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

fn save_state(path: &Path, state: &SyncState) -> Result<(), CliError> {
    let bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| CliError::failed(format!("sync state: {e}")))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(|e| CliError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| CliError::io("write", path, e))
}

/// Runs `ksef sync`.
pub async fn sync(args: SyncArgs, g: Global) -> Result<(), CliError> {
    let mut subjects = args.subjects.clone();
    if subjects.is_empty() {
        subjects = vec![SyncSubject::Seller, SyncSubject::Buyer];
    }
    subjects.sort();
    subjects.dedup();
    let start = match &args.since {
        Some(s) => crate::retrieval_cmd::date_time("--since", s)?,
        None => {
            let d = time::OffsetDateTime::now_utc().date() - time::Duration::days(30);
            format!("{d}T00:00:00")
        }
    };
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| CliError::io("create the directory", &args.dir, e))?;
    let state_path = args.dir.join(STATE_FILE);
    let json_out = g.json;
    with_login(&g, async |li| {
        let profile = &li.profile;
        let mut state = match load_state(&state_path)? {
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
            None => SyncState {
                env: profile.env.clone(),
                nip: profile.nip.clone(),
                from: BTreeMap::new(),
            },
        };
        let mut report = Vec::new();
        for subject in &subjects {
            let dir = args.dir.join(subject.dir());
            std::fs::create_dir_all(&dir)
                .map_err(|e| CliError::io("create the directory", &dir, e))?;
            let mut new_files = 0usize;
            let mut packages = 0usize;
            loop {
                let from = state
                    .from
                    .get(subject.dir())
                    .cloned()
                    .unwrap_or_else(|| start.clone());
                let filters = json!({
                    "subjectType": subject.api(),
                    "dateRange": {
                        "dateType": "PermanentStorage",
                        "from": from,
                        "restrictToPermanentStorageHwmDate": true,
                    },
                });
                let e = export_package(&li.auth, filters, false, Duration::from_secs(args.timeout))
                    .await?;
                packages += 1;
                let before: std::collections::HashSet<_> = std::fs::read_dir(&dir)
                    .map_err(|e| CliError::io("read", &dir, e))?
                    .filter_map(|e| e.ok().map(|e| e.file_name()))
                    .collect();
                let names = unpack(e.archive, dir.clone()).await?;
                new_files += names
                    .iter()
                    .filter(|n| {
                        n.ends_with(".xml") && !before.contains(std::ffi::OsStr::new(n.as_str()))
                    })
                    .count();
                // The files are on disk: only now move the position.
                let next = if e.is_truncated {
                    e.last_permanent_storage_date.clone()
                } else {
                    e.permanent_storage_hwm_date.clone()
                };
                if let Some(next) = next {
                    state.from.insert(subject.dir().to_owned(), next);
                    save_state(&state_path, &state)?;
                }
                if !e.is_truncated {
                    break;
                }
            }
            if !json_out {
                println!(
                    "{}: {new_files} new invoice(s); next from {}",
                    subject.dir(),
                    state
                        .from
                        .get(subject.dir())
                        .map(String::as_str)
                        .unwrap_or("(unchanged)")
                );
            }
            report.push(json!({
                "subject": subject.dir(),
                "newInvoices": new_files,
                "packages": packages,
                "nextFrom": state.from.get(subject.dir()),
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
