//! Writes a self-signed test certificate, its key and a XAdES-signed AuthTokenRequest:
//!
//! ```text
//! cargo run -p ksef-crypto --example xades_sign -- --key rsa|ec --nip NIP --challenge CHALLENGE --out DIR
//! ```
//!
//! Produces `DIR/cert.pem`, `DIR/key.pem` (unencrypted PKCS#8: a throwaway TEST key) and
//! `DIR/signed.xml`, ready for `POST /auth/xades-signature` on KSeF TEST (which accepts
//! self-signed certificates). Check it independently with:
//!
//! ```text
//! xmlsec1 --verify --enabled-key-data x509 --enabled-reference-uris empty,same-doc \
//!   --id-attr:Id 'http://uri.etsi.org/01903/v1.3.2#:SignedProperties' \
//!   --trusted-pem DIR/cert.pem DIR/signed.xml
//! ```

// An example binary reports to the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use ksef_crypto::keys::{KeyKind, PrivateKey};
use ksef_crypto::signer::InMemorySigner;
use ksef_crypto::{cert, xades};
use ksef_model::auth_request::{AuthTokenRequest, ContextIdentifier};
use ksef_model::ids::ReferenceNumber;

struct Args {
    kind: KeyKind,
    nip: String,
    challenge: String,
    out: PathBuf,
}

const USAGE: &str = "usage: xades_sign --key rsa|ec --nip NIP --challenge CHALLENGE --out DIR";

fn parse_args() -> Result<Args, String> {
    let mut kind = None;
    let mut nip = None;
    let mut challenge = None;
    let mut out = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--key" => {
                kind = Some(match value()?.as_str() {
                    "rsa" => KeyKind::Rsa2048,
                    "ec" => KeyKind::P256,
                    other => return Err(format!("--key must be rsa or ec, not {other:?}")),
                })
            }
            "--nip" => nip = Some(value()?),
            "--challenge" => challenge = Some(value()?),
            "--out" => out = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        kind: kind.ok_or("--key is required")?,
        nip: nip.ok_or("--nip is required")?,
        challenge: challenge.ok_or("--challenge is required")?,
        out: out.ok_or("--out is required")?,
    })
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let challenge = ReferenceNumber::from_str(&args.challenge)?;
    let context = ContextIdentifier::from_parts("Nip", &args.nip)?;
    let request = AuthTokenRequest::builder(challenge, context)
        .build()?
        .to_xml()?;

    let key = PrivateKey::generate(args.kind)?;
    let certificate = cert::test_seal(&key, "KSeF test seal", &args.nip)?;
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("cert.pem"), certificate.to_pem())?;
    std::fs::write(args.out.join("key.pem"), key.to_pkcs8_pem()?.as_bytes())?;

    let signer = InMemorySigner::new(key, certificate)?;
    let signed = xades::sign(&request, &signer)?;
    // Check our own output before handing it out.
    xades::verify(&signed)?;
    std::fs::write(args.out.join("signed.xml"), &signed)?;
    println!(
        "wrote {0}/cert.pem, {0}/key.pem and {0}/signed.xml",
        args.out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
