//! Invoice retrieval: the metadata query (auto-paging), download by KSeF number (hash checked)
//! and an export (wait → download parts → verify → decrypt → unpack → metadata + XML).
//!
//! Against an embedded simulator (three invoices are sent first so there is something to find):
//!     cargo run -p ksef --example download_export -- --sim        (or KSEF_SIM=1)
//! Against TEST (a self-signed seal certificate is generated for the NIP; last 30 days):
//!     KSEF_ENV=test KSEF_NIP=1234567890 cargo run -p ksef --example download_export

// An example talks to its user on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use futures_util::TryStreamExt;
use ksef::model::api::{InvoiceQueryFilters, InvoiceQuerySubjectType};
use ksef::model::{ContextIdentifier, DateTime, Environment, InvoiceTemplate, Nip};
use ksef::{AuthenticatedClient, ExportOptions, KsefClient, TestIdentity};

const TEMPLATE: &str = include_str!("../../../fixtures/invoices/invoice-template-fa-3.xml");

/// What the retrieval flow found.
#[derive(Debug)]
pub struct Retrieved {
    /// KSeF numbers the metadata query returned, in order.
    pub queried: Vec<String>,
    /// Size of the first invoice downloaded by number (if any).
    pub downloaded_bytes: Option<usize>,
    /// (KSeF number, XML length) of every invoice in the export package.
    pub exported: Vec<(String, usize)>,
}

/// Filters for the seller's invoices stored permanently since `from`.
pub fn seller_filters(from: DateTime) -> InvoiceQueryFilters {
    serde_json::from_value(serde_json::json!({
        "subjectType": InvoiceQuerySubjectType::Subject1.as_str(),
        "dateRange": {"dateType": "PermanentStorage", "from": from.to_string()},
    }))
    .unwrap_or_else(|_| unreachable!("a valid filter literal"))
}

/// Query, download and export against whatever `auth` points at.
pub async fn retrieval_flow(
    auth: &AuthenticatedClient,
    from: DateTime,
) -> Result<Retrieved, Box<dyn std::error::Error>> {
    let invoices = auth.invoices();
    // The metadata query as a stream: paging and truncation are handled inside.
    let rows: Vec<_> = invoices.query(seller_filters(from)).try_collect().await?;
    println!("metadata query: {} invoice(s)", rows.len());
    let queried: Vec<String> = rows
        .iter()
        .map(|m| m.ksef_number.as_str().to_owned())
        .collect();
    let mut downloaded_bytes = None;
    if let Some(first) = rows.first() {
        let doc = invoices.download(&first.ksef_number).await?;
        println!(
            "downloaded {}: {} bytes, SHA-256 {}",
            doc.ksef_number,
            doc.xml.len(),
            doc.sha256
        );
        downloaded_bytes = Some(doc.xml.len());
    }
    // An export of the same filter set.
    let package = invoices
        .export(seller_filters(from), ExportOptions::default())
        .await?;
    println!(
        "export {}: {} invoice(s) in {} part(s), truncated: {}",
        package.reference_number(),
        package.info().invoice_count,
        package.info().parts.len(),
        package.info().is_truncated
    );
    let exported: Vec<(String, usize)> = package
        .invoices()
        .await?
        .map_ok(|inv| {
            (
                inv.metadata.ksef_number.as_str().to_owned(),
                inv.xml.map(|x| x.len()).unwrap_or(0),
            )
        })
        .try_collect()
        .await?;
    for (k, n) in &exported {
        println!("  {k}.xml: {n} bytes");
    }
    Ok(Retrieved {
        queried,
        downloaded_bytes,
        exported,
    })
}

/// Sends `count` FA(3) invoices for `nip` and waits for their KSeF numbers (simulator demo).
pub async fn send_some(
    auth: &AuthenticatedClient,
    nip: &Nip,
    count: usize,
    prefix: &str,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let today = time::OffsetDateTime::now_utc().date();
    let session = auth.sessions().open_online().await?;
    let mut sent = Vec::new();
    for i in 0..count {
        let xml = InvoiceTemplate::new(TEMPLATE)
            .fill([
                ("nip", nip.as_str()),
                ("invoice_number", &format!("{prefix}/{i}")),
            ])?
            .replace("<P_1>2025-09-01</P_1>", &format!("<P_1>{today}</P_1>"));
        sent.push(session.send_invoice(xml.into_bytes()).await?);
    }
    let mut numbers = Vec::new();
    for s in sent {
        numbers.push(s.wait().await?.ksef_number.as_str().to_owned());
    }
    session.close().await?;
    // Retrieval sees an invoice once it is stored permanently, shortly after acceptance.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    Ok(numbers)
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
    let nip: Nip = if use_sim {
        "5265877635".parse()?
    } else {
        var("KSEF_NIP")
            .map_err(|_| "set KSEF_NIP (or run with --sim)")?
            .parse()?
    };
    let identity = TestIdentity::Seal {
        name: "ksef-rs retrieval example".into(),
        nip: nip.to_string(),
    };
    let from = DateTime::new(time::OffsetDateTime::now_utc() - time::Duration::days(30));
    if use_sim {
        let sim = ksef_sim::Simulator::builder().start().await?;
        let client = KsefClient::builder_for_url(&sim.base_url()).build()?;
        let auth = client
            .auth()
            .test_certificate(&identity, ContextIdentifier::Nip(nip.clone()))
            .await?;
        send_some(&auth, &nip, 3, "EXPORT").await?;
        retrieval_flow(&auth, from).await?;
        sim.shutdown().await;
        return Ok(());
    }
    let env: Environment = var("KSEF_ENV").unwrap_or_else(|_| "test".into()).parse()?;
    let client = KsefClient::new(env)?;
    let auth = client
        .auth()
        .test_certificate(&identity, ContextIdentifier::Nip(nip))
        .await?;
    retrieval_flow(&auth, from).await?;
    Ok(())
}
