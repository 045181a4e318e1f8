//! Offline invoicing ("tryb offline"): issue an invoice while KSeF is out of reach, print it with
//! KOD I (labelled `OFFLINE`) and KOD II (the issuer's KSeF **Offline** certificate, labelled
//! `CERTYFIKAT`), send it later with `offlineMode`, and re-label KOD I with the KSeF number.
//!
//! Against an embedded simulator:
//!     cargo run -p ksef --example offline_qr -- --sim     (or KSEF_SIM=1)
//! Against TEST (a self-signed seal certificate is generated for the NIP):
//!     KSEF_ENV=test KSEF_NIP=1234567890 cargo run -p ksef --example offline_qr
//! The SVG images are written to KSEF_OUT (default: a temporary directory).

// An example talks to its user on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "send_invoice.rs"]
#[allow(dead_code)]
mod seed;

use ksef::crypto::keys::{KeyKind, PrivateKey};
use ksef::crypto::qr::ContextType;
use ksef::model::api::{InvoicingMode, KsefCertificateType};
use ksef::model::{ContextIdentifier, Environment, KsefNumber, Nip};
use ksef::{EnrollmentRequest, KsefClient, SendOptions, TestIdentity};

/// What the offline flow produced.
#[derive(Debug)]
pub struct OfflineRun {
    /// KOD I: the invoice verification link (the same before and after sending).
    pub kod1_url: String,
    /// KOD II: the signed certificate link.
    pub kod2_url: String,
    /// The KSeF number the invoice received when it was sent.
    pub ksef_number: KsefNumber,
    /// The invoicing mode KSeF recorded.
    pub invoicing_mode: Option<InvoicingMode>,
}

/// The offline flow for `nip`; the QR images go to `out`.
pub async fn offline_flow(
    client: &KsefClient,
    nip: &Nip,
    out: &std::path::Path,
) -> Result<OfflineRun, Box<dyn std::error::Error + Send + Sync>> {
    let env = client.environment().clone();
    let ctx = ContextIdentifier::Nip(nip.clone());
    let identity = TestIdentity::Seal {
        name: "ksef-rs example".into(),
        nip: nip.to_string(),
    };
    let auth = client
        .auth()
        .test_certificate(&identity, ctx.clone())
        .await?;

    // Once, ahead of time: a KSeF Offline certificate to sign KOD II with.
    let offline_key = PrivateKey::generate(KeyKind::P256)?;
    let offline = auth
        .certificates()
        .obtain(
            &EnrollmentRequest::new("ksef-rs offline", KsefCertificateType::Offline),
            &offline_key,
        )
        .await?;
    println!("Offline certificate {}", offline.serial_number);

    // KSeF is unreachable: issue the invoice and print both codes on it.
    let xml = seed::invoice_xml(nip, "OFFLINE/1").map_err(|e| e.to_string())?;
    let issue_date = time::OffsetDateTime::now_utc().date();
    let kod1 = ksef::qr::invoice_link(&env, nip, issue_date, &xml)?;
    let kod2 = ksef::qr::certificate_link(
        &env,
        ContextType::Nip,
        nip.as_str(),
        nip,
        &offline.certificate,
        &offline_key,
        &xml,
    )?;
    std::fs::write(
        out.join("kod1-offline.svg"),
        ksef::qr::invoice_qr_svg(&kod1, None)?,
    )?;
    std::fs::write(
        out.join("kod2.svg"),
        ksef::qr::certificate_qr_svg(&kod2.url)?,
    )?;
    println!("KOD I  (OFFLINE):    {kod1}");
    println!("KOD II (CERTYFIKAT): {}", kod2.url);
    // Anyone holding the certificate can check KOD II's signature.
    ksef::crypto::qr::verify_certificate_url(&kod2.url, &offline.certificate.public_key()?)?;

    // KSeF is back: send the same bytes, marked as issued offline.
    let session = auth.sessions().open_online().await?;
    let sent = session
        .send_invoice_with(
            &xml,
            &SendOptions {
                offline_mode: true,
                ..SendOptions::default()
            },
        )
        .await?;
    let accepted = sent.wait().await?;
    session.close().await?;
    println!(
        "sent: KSeF number {} ({:?})",
        accepted.ksef_number, accepted.status.invoicing_mode
    );
    // KOD I keeps its link; only the label changes to the KSeF number.
    std::fs::write(
        out.join("kod1.svg"),
        ksef::qr::invoice_qr_svg(&kod1, Some(&accepted.ksef_number))?,
    )?;
    Ok(OfflineRun {
        kod1_url: kod1,
        kod2_url: kod2.url,
        ksef_number: accepted.ksef_number,
        invoicing_mode: accepted.status.invoicing_mode,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
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
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let use_sim = args.iter().any(|a| a == "--sim") || var("KSEF_SIM").is_ok_and(|v| v == "1");
    let out = match var("KSEF_OUT") {
        Ok(dir) => std::path::PathBuf::from(dir),
        Err(_) => std::env::temp_dir().join("ksef-offline-qr"),
    };
    std::fs::create_dir_all(&out)?;
    if use_sim {
        let sim = ksef_sim::Simulator::builder().start().await?;
        let client = KsefClient::builder_for_url(&sim.base_url()).build()?;
        offline_flow(&client, &"5265877635".parse()?, &out).await?;
        sim.shutdown().await;
    } else {
        let env: Environment = var("KSEF_ENV").unwrap_or_else(|_| "test".into()).parse()?;
        let nip: Nip = var("KSEF_NIP")
            .map_err(|_| "set KSEF_NIP (or run with --sim)")?
            .parse()?;
        let client = KsefClient::new(env)?;
        offline_flow(&client, &nip, &out).await?;
    }
    println!("QR codes in {}", out.display());
    Ok(())
}
