//! A batch session: generate invoices → pack them into a Zip archive split into encrypted parts
//! (streaming, bounded memory) → open the batch session → upload the parts in parallel with
//! progress → close → wait → one result per input file, then the session UPO.
//!
//! Against an embedded simulator:
//!     cargo run -p ksef --example batch -- --sim [COUNT]          (or KSEF_SIM=1)
//! Against a real environment (TEST: a self-signed seal certificate is generated for the NIP):
//!     KSEF_ENV=test KSEF_NIP=1234567890 cargo run -p ksef --example batch -- [COUNT]

// An example talks to its user on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;

use ksef::batch::{BatchBuilder, BatchInvoice, Compression};
use ksef::crypto::encryption::SessionKey;
use ksef::model::{ContextIdentifier, Environment, InvoiceTemplate, Nip};
use ksef::{AuthenticatedClient, BatchOutcome, BatchSendOptions, KsefClient, TestIdentity};

/// The FA(3) invoice template from the repository's fixtures.
const TEMPLATE: &str = include_str!("../../../fixtures/invoices/invoice-template-fa-3.xml");

/// The FA(3) template filled for `nip`, issued today, numbered `number`.
pub fn invoice_xml(nip: &Nip, number: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let today = time::OffsetDateTime::now_utc().date();
    let xml = InvoiceTemplate::new(TEMPLATE)
        .fill([("nip", nip.as_str()), ("invoice_number", number)])?
        .replace("<P_1>2025-09-01</P_1>", &format!("<P_1>{today}</P_1>"));
    Ok(xml.into_bytes())
}

/// `count` invoices named `{prefix}-{i}.xml`, numbered `{prefix}/{i}`.
pub fn generate(
    nip: &Nip,
    prefix: &str,
    count: usize,
) -> Result<Vec<BatchInvoice>, Box<dyn std::error::Error>> {
    (0..count)
        .map(|i| {
            Ok(BatchInvoice::bytes(
                format!("{prefix}-{i}.xml"),
                invoice_xml(nip, &format!("{prefix}/{i}"))?,
            ))
        })
        .collect()
}

/// Signs in with a generated seal certificate (TEST and simulator only).
pub async fn login(
    client: &KsefClient,
    nip: &Nip,
) -> Result<AuthenticatedClient, Box<dyn std::error::Error>> {
    let identity = TestIdentity::Seal {
        name: "ksef-rs batch example".into(),
        nip: nip.to_string(),
    };
    Ok(client
        .auth()
        .test_certificate(&identity, ContextIdentifier::Nip(nip.clone()))
        .await?)
}

/// Packs `invoices` (parts of at most `max_part_size` bytes) and sends them in one batch
/// session, printing upload progress.
pub async fn send(
    auth: &AuthenticatedClient,
    invoices: Vec<BatchInvoice>,
    max_part_size: u64,
) -> Result<BatchOutcome, Box<dyn std::error::Error>> {
    let key = SessionKey::generate()?;
    let count = invoices.len();
    let started = std::time::Instant::now();
    // Packing is CPU work: keep it off the async worker threads.
    let package = {
        let key = key.clone();
        tokio::task::spawn_blocking(move || {
            BatchBuilder::new(key)
                .compression(Compression::Zip)
                .max_part_size(max_part_size)
                .build(invoices)
        })
        .await??
    };
    println!(
        "packed {count} invoices: archive {} B in {} encrypted part(s), {:.0?}",
        package.file_size(),
        package.parts().len(),
        started.elapsed()
    );
    let options = BatchSendOptions {
        progress: Some(Arc::new(|p| {
            println!(
                "uploaded part {}/{} ({} of {} B)",
                p.parts_done, p.parts_total, p.bytes_done, p.bytes_total
            );
        })),
        ..BatchSendOptions::default()
    };
    let outcome = auth.sessions().send_batch(&package, &key, &options).await?;
    let accepted = outcome
        .invoices
        .iter()
        .filter(|i| matches!(i.outcome, Some(Ok(_))))
        .count();
    println!(
        "session {}: {accepted} accepted, {} rejected, {:.0?} in all",
        outcome.session.reference_number(),
        outcome.invoices.len() - accepted,
        started.elapsed()
    );
    for inv in &outcome.invoices {
        match &inv.outcome {
            Some(Ok(_)) => {}
            Some(Err(failure)) => println!("  {}: {failure}", inv.name),
            None => println!("  {}: not reported by KSeF", inv.name),
        }
    }
    Ok(outcome)
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
    let count: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100);
    // Unique invoice numbers per run (KSeF rejects a repeated number as a duplicate).
    let prefix = format!(
        "B{}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
    );
    let sim = if use_sim {
        let sim = ksef_sim::Simulator::builder().start().await?;
        println!("simulator at {}", sim.base_url());
        Some(sim)
    } else {
        None
    };
    let client = match &sim {
        Some(sim) => KsefClient::builder_for_url(&sim.base_url()).build()?,
        None => {
            let env: Environment = var("KSEF_ENV").unwrap_or_else(|_| "test".into()).parse()?;
            KsefClient::new(env)?
        }
    };
    let nip: Nip = match (&sim, var("KSEF_NIP")) {
        (_, Ok(nip)) => nip.parse()?,
        (Some(_), Err(_)) => "5265877635".parse()?,
        (None, Err(_)) => return Err("set KSEF_NIP (or run with --sim)".into()),
    };
    let auth = login(&client, &nip).await?;
    let outcome = send(&auth, generate(&nip, &prefix, count)?, 100_000_000).await?;
    let pages = outcome.session.fetch_upo().await?;
    println!("session UPO: {} page(s)", pages.len());
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    Ok(())
}
