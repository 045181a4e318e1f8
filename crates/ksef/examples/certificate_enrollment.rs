//! KSeF certificate enrollment: log in with a XAdES signature, check the limits, enroll an
//! `Authentication` certificate for a new P-256 key, log in again with the KSeF certificate,
//! enroll an `Offline` certificate and sign a KOD II link with it, list the certificates,
//! revoke the authentication certificate.
//!
//! Against an embedded simulator:
//!     cargo run -p ksef --example certificate_enrollment -- --sim     (or KSEF_SIM=1)
//! Against TEST (a self-signed seal certificate is generated for the NIP):
//!     KSEF_ENV=test KSEF_NIP=1234567890 cargo run -p ksef --example certificate_enrollment
//! The new certificates and keys are written to KSEF_OUT (default: a temporary directory).

// An example talks to its user on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use futures_util::TryStreamExt;
use ksef::certificates::csr_for;
use ksef::crypto::keys::{KeyKind, PrivateKey};
use ksef::model::api::{
    CertificateRevocationReason, KsefCertificateType, QueryCertificatesRequest,
};
use ksef::model::{ContextIdentifier, Environment, Nip};
use ksef::{EnrollmentRequest, KsefClient, TestIdentity};

/// What the flow produced.
#[derive(Debug)]
pub struct Enrolled {
    /// Serial number of the Authentication certificate (revoked at the end).
    pub authentication_serial: String,
    /// Serial number of the Offline certificate.
    pub offline_serial: String,
    /// The KOD II link signed with the Offline certificate.
    pub kod2_url: String,
    /// How many certificates the query listed before the revocation.
    pub listed: usize,
}

/// The enrollment flow for `nip`; `out` receives the certificates and keys as PEM.
pub async fn enrollment_flow(
    client: &KsefClient,
    nip: &Nip,
    out: &std::path::Path,
) -> Result<Enrolled, Box<dyn std::error::Error + Send + Sync>> {
    let ctx = ContextIdentifier::Nip(nip.clone());
    let identity = TestIdentity::Seal {
        name: "ksef-rs example".into(),
        nip: nip.to_string(),
    };
    let auth = client
        .auth()
        .test_certificate(&identity, ctx.clone())
        .await?;
    let certs = auth.certificates();

    let limits = certs.limits().await?;
    println!(
        "limits: can request = {}, certificates left {}/{}",
        limits.can_request, limits.certificate.remaining, limits.certificate.limit
    );

    // The long way: enrollment data → CSR → enroll → wait → retrieve.
    let data = certs.enrollment_data().await?;
    println!(
        "the CSR must name: CN={} C={}",
        data.common_name, data.country_name
    );
    let key = PrivateKey::generate(KeyKind::P256)?;
    let csr = csr_for(&data, &key)?;
    let request = EnrollmentRequest::new("ksef-rs logowanie", KsefCertificateType::Authentication);
    let reference = certs.enroll(&request, &csr).await?;
    let serial = certs.wait(&reference).await?;
    let issued = certs
        .retrieve(&[serial.as_str()])
        .await?
        .pop()
        .ok_or("the issued certificate was not returned")?;
    println!(
        "issued {} ({})",
        issued.serial_number,
        issued.certificate.subject()
    );
    std::fs::write(out.join("auth.cert.pem"), issued.certificate.to_pem())?;
    std::fs::write(out.join("auth.key.pem"), key.to_pkcs8_pem()?.as_bytes())?;

    // Log in with the new KSeF certificate.
    let signer = issued.signer(key)?;
    let second = client.auth().xades(&signer, ctx).await?;
    println!(
        "logged in with the KSeF certificate: {}",
        second.reference_number()
    );

    // The short way, for an Offline certificate, then a KOD II link signed with it.
    let offline_key = PrivateKey::generate(KeyKind::P256)?;
    let offline = certs
        .obtain(
            &EnrollmentRequest::new("ksef-rs offline", KsefCertificateType::Offline),
            &offline_key,
        )
        .await?;
    let link = ksef::crypto::qr::certificate_url(
        client.environment().qr_base_url(),
        ksef::crypto::qr::ContextType::Nip,
        nip.as_str(),
        nip.as_str(),
        &offline.certificate,
        &offline_key,
        &ksef::crypto::hash::sha256(b"<Faktura/>"),
    )?;
    println!("KOD II: {}", link.url);

    let listed: Vec<_> = certs
        .query(QueryCertificatesRequest::default())
        .try_collect()
        .await?;
    for c in &listed {
        println!(
            "  {} {} {} {}",
            c.certificate_serial_number, c.r#type, c.status, c.name
        );
    }
    certs
        .revoke(&serial, Some(CertificateRevocationReason::Superseded))
        .await?;
    println!("revoked {serial}");
    Ok(Enrolled {
        authentication_serial: serial,
        offline_serial: offline.serial_number,
        kod2_url: link.url,
        listed: listed.len(),
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
        Err(_) => std::env::temp_dir().join("ksef-certificate-enrollment"),
    };
    std::fs::create_dir_all(&out)?;
    if use_sim {
        let sim = ksef_sim::Simulator::builder().start().await?;
        println!("simulator at {}", sim.base_url());
        let client = KsefClient::builder_for_url(&sim.base_url()).build()?;
        enrollment_flow(&client, &"5265877635".parse()?, &out).await?;
        sim.shutdown().await;
    } else {
        let env: Environment = var("KSEF_ENV").unwrap_or_else(|_| "test".into()).parse()?;
        let nip: Nip = var("KSEF_NIP")
            .map_err(|_| "set KSEF_NIP (or run with --sim)")?
            .parse()?;
        let client = KsefClient::new(env)?;
        enrollment_flow(&client, &nip, &out).await?;
    }
    println!("certificates and keys in {}", out.display());
    Ok(())
}
