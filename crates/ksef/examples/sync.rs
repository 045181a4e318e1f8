//! Incremental sync into a directory: every invoice where the context is the seller
//! (`Subject1`) and the buyer (`Subject2`), one `{ksefNumber}.xml` file each, with the
//! checkpoints in `DIR/.sync/`. Run it again (on production at most every 15 minutes): it
//! continues from the permanent-storage high-water mark with no gaps and no duplicates, also
//! after being killed midway.
//!
//! Against an embedded simulator (a few invoices are sent first):
//!     cargo run -p ksef --example sync -- --sim [DIR]        (or KSEF_SIM=1)
//! Against TEST (a self-signed seal certificate is generated for the NIP):
//!     KSEF_ENV=test KSEF_NIP=1234567890 cargo run -p ksef --example sync -- DIR

// An example talks to its user on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "download_export.rs"]
#[allow(dead_code)]
pub mod download_export;

use std::path::Path;

use ksef::model::api::InvoiceQuerySubjectType;
use ksef::model::{ContextIdentifier, DateTime, Environment, Nip};
use ksef::sync::SyncReport;
use ksef::{AuthenticatedClient, FsSyncStateStore, KsefClient, SyncOptions, TestIdentity};

/// Syncs `Subject1` and `Subject2` into `dir`; the first run starts at `start`.
pub async fn sync_dir(
    auth: &AuthenticatedClient,
    dir: &Path,
    start: DateTime,
) -> Result<Vec<SyncReport>, Box<dyn std::error::Error>> {
    let store = FsSyncStateStore::new(dir.join(".sync"))?;
    let sync = auth.sync(&store);
    let mut reports = Vec::new();
    for subject in [
        InvoiceQuerySubjectType::Subject1,
        InvoiceQuerySubjectType::Subject2,
    ] {
        let options = SyncOptions::new(subject.clone(), start);
        let report = sync.run_to_dir(&options, dir).await?;
        println!(
            "{subject}: {} new invoice(s), {} already had; next run from {}",
            report.delivered, report.skipped, report.checkpoint.from
        );
        reports.push(report);
    }
    Ok(reports)
}

#[allow(dead_code)] // the tests include this file and call `run`, not `main`
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(std::env::args().skip(1).collect(), |name| {
        std::env::var(name)
    })
    .await
}

/// The example as `main` runs it: `args` are the command-line arguments after the program name,
/// `var` reads an environment variable (`std::env::var` in `main`; the tests pass their own).
pub async fn run(
    args: Vec<String>,
    var: impl Fn(&str) -> Result<String, std::env::VarError>,
) -> Result<(), Box<dyn std::error::Error>> {
    let use_sim = args.iter().any(|a| a == "--sim") || var("KSEF_SIM").is_ok_and(|v| v == "1");
    let dir = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "ksef-invoices".into());
    let dir = Path::new(&dir);
    let nip: Nip = if use_sim {
        "5265877635".parse()?
    } else {
        var("KSEF_NIP")
            .map_err(|_| "set KSEF_NIP (or run with --sim)")?
            .parse()?
    };
    let identity = TestIdentity::Seal {
        name: "ksef-rs sync example".into(),
        nip: nip.to_string(),
    };
    let start = DateTime::new(time::OffsetDateTime::now_utc() - time::Duration::days(30));
    if use_sim {
        let sim = ksef_sim::Simulator::builder().start().await?;
        let client = KsefClient::builder_for_url(&sim.base_url()).build()?;
        let auth = client
            .auth()
            .test_certificate(&identity, ContextIdentifier::Nip(nip.clone()))
            .await?;
        download_export::send_some(&auth, &nip, 3, "SYNC").await?;
        sync_dir(&auth, dir, start).await?;
        println!("invoices in {}", dir.display());
        sim.shutdown().await;
        return Ok(());
    }
    let env: Environment = var("KSEF_ENV").unwrap_or_else(|_| "test".into()).parse()?;
    let client = KsefClient::new(env)?;
    let auth = client
        .auth()
        .test_certificate(&identity, ContextIdentifier::Nip(nip))
        .await?;
    sync_dir(&auth, dir, start).await?;
    Ok(())
}
