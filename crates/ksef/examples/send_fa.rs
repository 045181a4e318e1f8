//! Typed FA(3) invoices end to end on an embedded simulator: build with `ksef::fa`'s builder →
//! validate → send online with `send_fa` → KSeF number and UPO entry tied back to the invoice
//! number (`P_2`) → the same for a batch of typed invoices with `FaBatch`.
//!
//!     cargo run -p ksef --example send_fa

// An example talks to its user on the terminal.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;

use ksef::batch::{BatchBuilder, Compression};
use ksef::crypto::encryption::SessionKey;
use ksef::fa::builder::{Address, Buyer, InvoiceBuilder, Line, Payment, Seller, VatRate};
use ksef::fa::{Decimal, Faktura};
use ksef::model::{ContextIdentifier, KsefNumber, Nip};
use ksef::{BatchSendOptions, FaBatch, KsefClient, TestIdentity};

/// A VAT invoice from `seller` issued today, checked before it is sent.
pub fn build_invoice(seller: &Nip, number: &str) -> Result<Faktura, Box<dyn std::error::Error>> {
    let today = time::OffsetDateTime::now_utc().date();
    let invoice = InvoiceBuilder::vat(number, today)
        .seller(Seller::new(
            seller.as_str(),
            "Sprzedawca sp. z o.o.",
            Address::pl("ul. Prosta 1", "00-001 Warszawa"),
        ))
        .buyer(Buyer::nip("7740001454", "Nabywca S.A."))
        .line(
            Line::new(
                "Usługa",
                Decimal::from(3),
                Decimal::new(3333, 2),
                VatRate::V23,
            )
            .unit("h"),
        )
        .line(Line::new(
            "Książka",
            Decimal::ONE,
            Decimal::new(4990, 2),
            VatRate::V5,
        ))
        .payment(Payment::transfer(today + time::Duration::days(14)))
        .build()?;
    // XSD-level and KSeF's semantic rules (NIP check digits, totals, dates), with field paths
    if let Err(errors) = invoice.validate() {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(list.join("; ").into());
    }
    Ok(invoice)
}

/// What the flow produced, by invoice number (`P_2`).
#[derive(Debug, Default)]
pub struct Outcome {
    /// The online invoice: `P_2` → KSeF number.
    pub online: BTreeMap<String, KsefNumber>,
    /// `P_2` as found in the online invoice's UPO.
    pub online_upo_invoice_number: Option<String>,
    /// The batch: `P_2` → KSeF number (or the rejection as text).
    pub batch: BTreeMap<String, Result<KsefNumber, String>>,
}

/// Sends one typed invoice online and `batch_numbers` in a batch, as `nip`.
pub async fn typed_flow(
    client: &KsefClient,
    nip: &Nip,
    online_number: &str,
    batch_numbers: &[&str],
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let identity = TestIdentity::Seal {
        name: "ksef-rs typed invoices".into(),
        nip: nip.to_string(),
    };
    let auth = client
        .auth()
        .test_certificate(&identity, ContextIdentifier::Nip(nip.clone()))
        .await?;
    let mut out = Outcome::default();

    // Online: the result carries P_2 along.
    let invoice = build_invoice(nip, online_number)?;
    let session = auth.sessions().open_online().await?;
    let sent = session.send_fa(&invoice).await?;
    let accepted = sent.wait().await?;
    let p2 = accepted.invoice_number.clone().unwrap_or_default();
    println!("online: {p2} → {}", accepted.ksef_number);
    let upo = sent.upo().await?;
    out.online_upo_invoice_number = upo.invoice(&p2).map(|d| d.invoice_number.clone());
    out.online.insert(p2, accepted.ksef_number);
    session.close().await?;

    // Batch: FaBatch names the archive entries and maps the results back to P_2.
    let invoices = batch_numbers
        .iter()
        .map(|n| build_invoice(nip, n))
        .collect::<Result<Vec<_>, _>>()?;
    let batch = FaBatch::new(&invoices);
    let key = SessionKey::generate()?;
    let package = BatchBuilder::new(key.clone())
        .compression(Compression::Zip)
        .build(batch.invoices())?;
    let outcome = auth
        .sessions()
        .send_batch(&package, &key, &BatchSendOptions::default())
        .await?;
    for (p2, result) in batch.results(&outcome) {
        let r = match &result.outcome {
            Some(Ok(k)) => Ok(k.clone()),
            Some(Err(f)) => Err(format!("{} {}", f.code, f.description)),
            None => Err("not reported".to_owned()),
        };
        println!("batch: {p2} ({}) → {r:?}", result.name);
        out.batch.insert(p2.to_owned(), r);
    }
    Ok(out)
}

#[allow(dead_code)] // the tests include this file and call `run`, not `main`
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run().await
}

/// The example as `main` runs it (it takes no arguments: it always starts its own simulator).
pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let sim = ksef_sim::Simulator::builder().start().await?;
    println!("simulator at {}", sim.base_url());
    let client = KsefClient::builder_for_url(&sim.base_url()).build()?;
    let nip: Nip = "5265877635".parse()?;
    typed_flow(&client, &nip, "FV/1/2026", &["FV/2/2026", "FV/3/2026"]).await?;
    sim.shutdown().await;
    Ok(())
}
