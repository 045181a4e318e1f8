//! The seed flow: test data (TEST) → test certificate → XAdES authentication → online FA(3)
//! session → send an invoice → wait for its KSeF number → fetch the UPO → close.
//!
//! Against an embedded simulator:
//!     cargo run -p ksef --example send_invoice -- --sim        (or KSEF_SIM=1)
//! Against a real environment:
//!     KSEF_ENV=test KSEF_NIP=1234567890 cargo run -p ksef --example send_invoice
//!       (TEST without KSEF_CERT: a self-signed seal certificate is generated for the NIP)
//!     KSEF_ENV=demo KSEF_NIP=… KSEF_CERT=cert.pem KSEF_KEY=key.pem [KSEF_KEY_PASSWORD=…] …

// An example talks to its user on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use futures_util::TryStreamExt;
use ksef::model::api::TestDataPermissionType;
use ksef::model::{ContextIdentifier, Environment, InvoiceTemplate, KsefNumber, Nip, Pesel};
use ksef::{KsefClient, TestIdentity, TestSubject};

/// The FA(3) invoice template from the repository's fixtures.
const TEMPLATE: &str = include_str!("../../../fixtures/invoices/invoice-template-fa-3.xml");

/// How the seed flow signs in.
pub enum Login {
    /// Generate a self-signed seal certificate for the NIP (TEST / simulator only).
    TestCertificate,
    /// Certificate and key files (PEM or DER).
    Files {
        /// Certificate path.
        cert: String,
        /// Key path.
        key: String,
        /// Password of an encrypted key.
        password: Option<String>,
    },
}

/// What the seed flow produced.
#[derive(Debug)]
pub struct SeedOutcome {
    /// The invoice's KSeF number.
    pub ksef_number: KsefNumber,
    /// The invoice UPO, exactly as received.
    pub invoice_upo: Vec<u8>,
    /// The session UPO pages.
    pub session_upo_pages: usize,
    /// Invoices KSeF accepted in the session.
    pub accepted: u32,
}

/// The FA(3) template filled for `nip`, issued today.
pub fn invoice_xml(nip: &Nip, number: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let today = time::OffsetDateTime::now_utc().date();
    let xml = InvoiceTemplate::new(TEMPLATE)
        .fill([("nip", nip.as_str()), ("invoice_number", number)])?
        .replace("<P_1>2025-09-01</P_1>", &format!("<P_1>{today}</P_1>"));
    Ok(xml.into_bytes())
}

/// The seed flow against whatever `client` points at.
pub async fn seed_flow(
    client: &KsefClient,
    nip: &Nip,
    login: Login,
    invoice_number: &str,
) -> Result<SeedOutcome, Box<dyn std::error::Error>> {
    let context = ContextIdentifier::Nip(nip.clone());

    // 1. Test data (TEST and simulator only): a person for the NIP and explicit permissions.
    if let Ok(testdata) = client.testdata() {
        let pesel: Pesel = "90010112349".parse()?;
        testdata
            .create_person(nip, &pesel, "ksef-rs seed flow")
            .await?;
        testdata
            .grant_permissions(
                nip,
                &TestSubject::Nip(nip.clone()),
                &[
                    TestDataPermissionType::InvoiceWrite,
                    TestDataPermissionType::InvoiceRead,
                ],
            )
            .await?;
        println!("test data: person and permissions for {nip}");
    }

    // 2–3. Certificate and XAdES authentication.
    let auth = match login {
        Login::TestCertificate => {
            let identity = TestIdentity::Seal {
                name: "ksef-rs seed flow".into(),
                nip: nip.to_string(),
            };
            client.auth().test_certificate(&identity, context).await?
        }
        Login::Files {
            cert,
            key,
            password,
        } => {
            client
                .auth()
                .xades_files(cert, key, password.as_deref(), context)
                .await?
        }
    };
    println!("authenticated: {}", auth.reference_number());

    // 4. Online FA(3) session (key generated and wrapped for us).
    let session = auth.sessions().open_online().await?;
    println!("session opened: {}", session.reference_number());

    // 5–6. Send the invoice and wait for its KSeF number.
    let sent = session
        .send_invoice(invoice_xml(nip, invoice_number)?)
        .await?;
    let accepted = sent.wait().await?;
    println!("KSeF number: {}", accepted.ksef_number);

    // 7. The invoice UPO.
    let upo = session.upo_by_ksef_number(&accepted.ksef_number).await?;
    println!(
        "UPO: {} bytes, {} document(s)",
        upo.bytes.len(),
        upo.upo.documents.len()
    );
    let listed: Vec<_> = session.invoices().try_collect().await?;
    println!("session lists {} invoice(s)", listed.len());

    // 8. Close; the session UPO.
    let closed = session.close().await?;
    let pages = closed.fetch_upo().await?;
    println!(
        "session closed: {} accepted, {} failed, {} UPO page(s)",
        closed.successful_invoice_count(),
        closed.failed_invoice_count(),
        pages.len()
    );
    Ok(SeedOutcome {
        ksef_number: accepted.ksef_number,
        invoice_upo: upo.bytes.to_vec(),
        session_upo_pages: pages.len(),
        accepted: closed.successful_invoice_count(),
    })
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
    let number = format!(
        "FV/{}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    if use_sim {
        let sim = ksef_sim::Simulator::builder().start().await?;
        println!("simulator at {}", sim.base_url());
        let client = KsefClient::builder_for_url(&sim.base_url()).build()?;
        let nip: Nip = "5265877635".parse()?;
        seed_flow(&client, &nip, Login::TestCertificate, &number).await?;
        sim.shutdown().await;
        return Ok(());
    }
    let env: Environment = var("KSEF_ENV").unwrap_or_else(|_| "test".into()).parse()?;
    let nip: Nip = var("KSEF_NIP")
        .map_err(|_| "set KSEF_NIP (or run with --sim)")?
        .parse()?;
    let login = match (var("KSEF_CERT"), var("KSEF_KEY")) {
        (Ok(cert), Ok(key)) => Login::Files {
            cert,
            key,
            password: var("KSEF_KEY_PASSWORD").ok(),
        },
        _ => Login::TestCertificate,
    };
    let client = KsefClient::new(env)?;
    seed_flow(&client, &nip, login, &number).await?;
    Ok(())
}
