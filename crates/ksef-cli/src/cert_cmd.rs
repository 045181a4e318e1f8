//! `ksef cert test|csr`: local certificate work (no network, no async runtime).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use ksef::crypto::cert::{self, DistinguishedName, PersonId};
use ksef::crypto::csr::CertificateRequest;
use ksef::crypto::keys::{KeyKind, PrivateKey};

use crate::Global;
use crate::error::CliError;
use crate::profile::{parse_nip, write_private};

/// `ksef cert …`.
#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Write a self-signed TEST certificate and its private key (accepted by KSeF TEST and the
    /// simulator only); log in with `ksef auth login --cert … --key …`.
    Test {
        #[command(flatten)]
        subject: SubjectArgs,
        /// The key algorithm.
        #[arg(long, value_enum, default_value_t = Algorithm::P256)]
        algorithm: Algorithm,
        /// Certificate output file (PEM).
        #[arg(long, default_value = "ksef-test-cert.pem")]
        cert_out: PathBuf,
        /// Private key output file (PKCS#8 PEM, created with mode 0600).
        #[arg(long, default_value = "ksef-test-key.pem")]
        key_out: PathBuf,
    },
    /// Request a KSeF certificate for the logged-in subject (after an XAdES login): a new key, a
    /// CSR with the subject KSeF names, enrollment, wait, retrieve.
    Enroll(EnrollArgs),
    /// Write a PKCS#10 certificate signing request for a seal or personal subject.
    Csr {
        #[command(flatten)]
        subject: SubjectArgs,
        /// An existing private key (PEM or DER); without it a new key is generated and written
        /// to --key-out.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The environment variable holding --key's password.
        #[arg(long, value_name = "VAR")]
        key_password_env: Option<String>,
        /// The key algorithm of a generated key.
        #[arg(long, value_enum, default_value_t = Algorithm::P256)]
        algorithm: Algorithm,
        /// Where a generated key is written (PKCS#8 PEM, mode 0600).
        #[arg(long, default_value = "ksef-key.pem")]
        key_out: PathBuf,
        /// CSR output file (PEM).
        #[arg(long, default_value = "ksef.csr")]
        out: PathBuf,
    },
}

/// `ksef cert enroll`: what to request.
#[derive(Args, Debug)]
pub struct EnrollArgs {
    /// The certificate's name in KSeF (5–100 characters).
    #[arg(long)]
    pub name: String,
    /// The certificate type.
    #[arg(long = "type", value_enum, default_value_t = EnrollType::Authentication)]
    pub kind: EnrollType,
    /// Certificate output file (PEM).
    #[arg(long, default_value = "ksef-cert.pem")]
    pub cert_out: PathBuf,
    /// Private key output file (PKCS#8 PEM, mode 0600).
    #[arg(long, default_value = "ksef-cert-key.pem")]
    pub key_out: PathBuf,
    /// The key algorithm.
    #[arg(long, value_enum, default_value_t = Algorithm::P256)]
    pub algorithm: Algorithm,
}

/// KSeF certificate types.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EnrollType {
    /// XAdES login.
    Authentication,
    /// KOD II signing for offline invoices.
    Offline,
}

/// The subject: a seal (`--nip`, `--name`) or a person (`--given-name`, `--surname`, `--nip`
/// or `--pesel`).
#[derive(Args, Debug)]
pub struct SubjectArgs {
    /// The NIP (seal: organizationIdentifier VATPL-NIP; person: serialNumber TINPL-NIP).
    #[arg(long, required_unless_present = "pesel")]
    pub nip: Option<String>,
    /// A person's PESEL (serialNumber PNOPL-PESEL).
    #[arg(long, requires_all = ["given_name", "surname"], conflicts_with = "nip")]
    pub pesel: Option<String>,
    /// Organisation name (seal); default "ksef-rs test seal".
    #[arg(long, conflicts_with_all = ["given_name", "surname"])]
    pub name: Option<String>,
    /// A person's given name (makes a personal certificate).
    #[arg(long, requires = "surname")]
    pub given_name: Option<String>,
    /// A person's surname.
    #[arg(long, requires = "given_name")]
    pub surname: Option<String>,
}

/// Key algorithms KSeF accepts.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Algorithm {
    /// ECDSA P-256 (recommended; fast).
    P256,
    /// RSA 2048.
    Rsa2048,
}

impl Algorithm {
    pub(crate) fn kind(self) -> KeyKind {
        match self {
            Algorithm::P256 => KeyKind::P256,
            Algorithm::Rsa2048 => KeyKind::Rsa2048,
        }
    }
}

impl SubjectArgs {
    fn dn(&self) -> Result<DistinguishedName, CliError> {
        let bad = |e: ksef::crypto::Error| CliError::invalid(format!("subject: {e}"));
        if let (Some(given), Some(surname)) = (&self.given_name, &self.surname) {
            let id = match (&self.nip, &self.pesel) {
                (_, Some(p)) => {
                    let pesel = p
                        .parse::<ksef::model::Pesel>()
                        .map_err(|e| CliError::invalid(format!("--pesel: {e}")))?;
                    PersonId::Pesel(pesel.to_string())
                }
                (Some(n), None) => PersonId::Nip(parse_nip("--nip", n)?.to_string()),
                (None, None) => {
                    return Err(CliError::invalid("a person needs --nip or --pesel"));
                }
            };
            let cn = format!("{given} {surname}");
            return DistinguishedName::personal(given, surname, id, &cn).map_err(bad);
        }
        let Some(nip) = &self.nip else {
            return Err(CliError::invalid(
                "--pesel needs --given-name and --surname (a seal needs --nip)",
            ));
        };
        let nip = parse_nip("--nip", nip)?;
        let name = self.name.as_deref().unwrap_or("ksef-rs test seal");
        DistinguishedName::seal(name, nip.as_str(), name).map_err(bad)
    }
}

fn generate(algorithm: Algorithm) -> Result<PrivateKey, CliError> {
    PrivateKey::generate(algorithm.kind())
        .map_err(|e| CliError::failed(format!("cannot generate a key: {e}")))
}

/// Writes `key` as PKCS#8 PEM, mode 0600 (the PEM string is zeroized when dropped).
fn write_key(path: &std::path::Path, key: &PrivateKey) -> Result<(), CliError> {
    let pem = key
        .to_pkcs8_pem()
        .map_err(|e| CliError::failed(format!("cannot encode the key: {e}")))?;
    write_private(path, pem.as_bytes())
}

/// Runs `ksef cert …`.
pub fn run(command: CertCommand, g: &Global) -> Result<(), CliError> {
    match command {
        CertCommand::Enroll(_) => Err(CliError::failed("cert enroll runs asynchronously")),
        CertCommand::Test {
            subject,
            algorithm,
            cert_out,
            key_out,
        } => {
            let dn = subject.dn()?;
            let key = generate(algorithm)?;
            let certificate = cert::self_signed(&key, &dn, &cert::IssueOptions::test_defaults())
                .map_err(|e| CliError::failed(format!("cannot make the certificate: {e}")))?;
            write_key(&key_out, &key)?;
            std::fs::write(&cert_out, certificate.to_pem())
                .map_err(|e| CliError::io("write", &cert_out, e))?;
            if g.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "certificate": cert_out.display().to_string(),
                        "key": key_out.display().to_string(),
                        "subject": certificate.subject(),
                        "sha256": certificate.fingerprint_sha256_hex(),
                        "notAfter": certificate.not_after().to_string(),
                    })
                );
            } else {
                println!(
                    "certificate: {} ({})",
                    cert_out.display(),
                    certificate.subject()
                );
                println!("private key: {} (mode 0600)", key_out.display());
            }
            Ok(())
        }
        CertCommand::Csr {
            subject,
            key,
            key_password_env,
            algorithm,
            key_out,
            out,
        } => {
            let dn = subject.dn()?;
            let (private, generated) = match &key {
                Some(path) => {
                    let bytes = std::fs::read(path).map_err(|e| CliError::io("read", path, e))?;
                    let password = match &key_password_env {
                        Some(var) => Some(std::env::var(var).map_err(|_| {
                            CliError::invalid(format!(
                                "--key-password-env: the environment variable {var} is not set"
                            ))
                        })?),
                        None => None,
                    };
                    let k = PrivateKey::from_pem_or_der(&bytes, password.as_deref())
                        .map_err(|e| CliError::invalid(format!("--key {}: {e}", path.display())))?;
                    (k, false)
                }
                None => (generate(algorithm)?, true),
            };
            let csr = CertificateRequest::new(&dn, &private)
                .map_err(|e| CliError::failed(format!("cannot make the CSR: {e}")))?;
            if generated {
                write_key(&key_out, &private)?;
            }
            std::fs::write(&out, csr.to_pem()).map_err(|e| CliError::io("write", &out, e))?;
            if g.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "csr": out.display().to_string(),
                        "key": generated.then(|| key_out.display().to_string()),
                        "subject": csr.subject(),
                    })
                );
            } else {
                println!("CSR: {} ({})", out.display(), csr.subject());
                if generated {
                    println!("private key: {} (mode 0600)", key_out.display());
                }
            }
            Ok(())
        }
    }
}
