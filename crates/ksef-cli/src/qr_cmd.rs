//! `ksef qr invoice|cert`: KOD I and KOD II links and images (no network, no async runtime).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use ksef::model::{Environment, KsefNumber, Nip};
use ksef::qr::ContextType;

use crate::Global;
use crate::error::CliError;
use crate::profile::{parse_env, parse_nip};

/// `ksef qr …`.
#[derive(Subcommand, Debug)]
pub enum QrCommand {
    /// KOD I: the invoice verification link and its QR code, labelled with the KSeF number (or
    /// OFFLINE).
    Invoice {
        #[command(flatten)]
        common: Common,
        /// The KSeF number for the label (omit for an invoice issued offline).
        #[arg(long)]
        ksef_number: Option<String>,
    },
    /// KOD II: the issuer-certificate link of an offline invoice, signed with a KSeF Offline
    /// certificate's key, and its QR code labelled CERTYFIKAT.
    Cert {
        #[command(flatten)]
        common: Common,
        /// The KSeF Offline certificate (PEM or DER).
        #[arg(long)]
        cert: PathBuf,
        /// Its private key (PEM or DER).
        #[arg(long)]
        key: PathBuf,
        /// The environment variable holding the key's password.
        #[arg(long, value_name = "VAR")]
        key_password_env: Option<String>,
        /// The context NIP of the issuer (default: the seller NIP).
        #[arg(long)]
        context_nip: Option<String>,
    },
}

/// Options both codes share.
#[derive(Args, Debug)]
pub struct Common {
    /// The invoice XML exactly as sent (the link carries its SHA-256).
    pub file: PathBuf,
    /// The seller NIP (default: Podmiot1's NIP in the invoice).
    #[arg(long)]
    pub nip: Option<String>,
    /// The issue date P_1, YYYY-MM-DD (default: from the invoice).
    #[arg(long)]
    pub date: Option<String>,
    /// Image output file (default: qr-invoice.svg / qr-cert.svg; .png with --format png).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Image format.
    #[arg(long, value_enum, default_value_t = Format::Svg)]
    pub format: Format,
}

/// Image formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Scalable vector graphics.
    Svg,
    /// PNG (grayscale).
    Png,
}

/// The text of the first element whose local name is `name` inside `within` (if given),
/// namespace prefixes ignored. Enough for the two plain-text fields KOD I needs; the invoice
/// itself is validated by KSeF, not here.
fn element_text<'a>(xml: &'a str, within: Option<&str>, name: &str) -> Option<&'a str> {
    let scope = match within {
        Some(parent) => {
            let start = find_start_tag(xml, parent)?;
            &xml[start..]
        }
        None => xml,
    };
    let start = find_start_tag(scope, name)?;
    let rest = &scope[start..];
    let open_end = rest.find('>')? + 1;
    let body = &rest[open_end..];
    let close = body.find("</")?;
    Some(body[..close].trim())
}

/// Byte offset of the first start tag `<name` or `<prefix:name` followed by `>`, `/` or space.
fn find_start_tag(xml: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = xml[from..].find('<') {
        let at = from + i;
        let tag = &xml[at + 1..];
        let local = match tag.find(|c: char| c == '>' || c == '/' || c.is_whitespace()) {
            Some(end) => &tag[..end],
            None => return None,
        };
        let local = local.rsplit(':').next().unwrap_or(local);
        if local == name {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

struct Input {
    env: Environment,
    xml: Vec<u8>,
    nip: Nip,
    date: time::Date,
}

fn input(c: &Common, g: &Global) -> Result<Input, CliError> {
    let env = parse_env(g.env.as_deref().unwrap_or("test"))?;
    let xml = std::fs::read(&c.file).map_err(|e| CliError::io("read", &c.file, e))?;
    let text = String::from_utf8_lossy(&xml);
    let nip = match &c.nip {
        Some(n) => parse_nip("--nip", n)?,
        None => {
            let n = element_text(&text, Some("Podmiot1"), "NIP").ok_or_else(|| {
                CliError::invalid(format!(
                    "{}: no Podmiot1/NIP found; give the seller NIP with --nip",
                    c.file.display()
                ))
            })?;
            parse_nip("the invoice's Podmiot1/NIP", n)?
        }
    };
    let date_text = match &c.date {
        Some(d) => d.clone(),
        None => element_text(&text, None, "P_1")
            .ok_or_else(|| {
                CliError::invalid(format!(
                    "{}: no P_1 (issue date) found; give it with --date YYYY-MM-DD",
                    c.file.display()
                ))
            })?
            .to_owned(),
    };
    let date = time::Date::parse(
        &date_text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|e| CliError::invalid(format!("issue date {date_text:?}: {e} (want YYYY-MM-DD)")))?;
    Ok(Input {
        env,
        xml,
        nip,
        date,
    })
}

fn write_image(
    c: &Common,
    default_stem: &str,
    svg: String,
    png: impl FnOnce() -> Result<Vec<u8>, CliError>,
) -> Result<PathBuf, CliError> {
    let ext = match c.format {
        Format::Svg => "svg",
        Format::Png => "png",
    };
    let path = c
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{default_stem}.{ext}")));
    let bytes = match c.format {
        Format::Svg => svg.into_bytes(),
        Format::Png => png()?,
    };
    std::fs::write(&path, bytes).map_err(|e| CliError::io("write", &path, e))?;
    Ok(path)
}

fn report(g: &Global, kind: &str, url: &str, path: &Path) {
    if g.json {
        println!(
            "{}",
            serde_json::json!({"code": kind, "url": url, "image": path.display().to_string()})
        );
    } else {
        println!("{url}");
        eprintln!("{kind} image written to {}", path.display());
    }
}

fn qr_err(e: ksef::Error) -> CliError {
    CliError::invalid(format!("QR code: {e}"))
}

/// Runs `ksef qr …`.
pub fn run(command: QrCommand, g: &Global) -> Result<(), CliError> {
    match command {
        QrCommand::Invoice {
            common,
            ksef_number,
        } => {
            let k = ksef_number
                .as_deref()
                .map(|k| {
                    k.parse::<KsefNumber>()
                        .map_err(|e| CliError::invalid(format!("--ksef-number: {e}")))
                })
                .transpose()?;
            let i = input(&common, g)?;
            let url = ksef::qr::invoice_link(&i.env, &i.nip, i.date, &i.xml).map_err(qr_err)?;
            let svg = ksef::qr::invoice_qr_svg(&url, k.as_ref()).map_err(qr_err)?;
            let path = write_image(&common, "qr-invoice", svg, || {
                ksef::qr::invoice_qr_png(&url, k.as_ref()).map_err(qr_err)
            })?;
            report(g, "KOD I", &url, &path);
            Ok(())
        }
        QrCommand::Cert {
            common,
            cert,
            key,
            key_password_env,
            context_nip,
        } => {
            let i = input(&common, g)?;
            let context = match &context_nip {
                Some(n) => parse_nip("--context-nip", n)?,
                None => i.nip.clone(),
            };
            let cert_bytes = std::fs::read(&cert).map_err(|e| CliError::io("read", &cert, e))?;
            let key_bytes = std::fs::read(&key).map_err(|e| CliError::io("read", &key, e))?;
            let certificate = ksef::crypto::cert::Certificate::from_pem_or_der(&cert_bytes)
                .map_err(|e| CliError::invalid(format!("--cert {}: {e}", cert.display())))?;
            let password = match &key_password_env {
                Some(var) => Some(std::env::var(var).map_err(|_| {
                    CliError::invalid(format!(
                        "--key-password-env: the environment variable {var} is not set"
                    ))
                })?),
                None => None,
            };
            let private =
                ksef::crypto::keys::PrivateKey::from_pem_or_der(&key_bytes, password.as_deref())
                    .map_err(|e| CliError::invalid(format!("--key {}: {e}", key.display())))?;
            let link = ksef::qr::certificate_link(
                &i.env,
                ContextType::Nip,
                context.as_str(),
                &i.nip,
                &certificate,
                &private,
                &i.xml,
            )
            .map_err(qr_err)?;
            let svg = ksef::qr::certificate_qr_svg(&link.url).map_err(qr_err)?;
            let path = write_image(&common, "qr-cert", svg, || {
                ksef::qr::certificate_qr_png(&link.url).map_err(qr_err)
            })?;
            report(g, "KOD II", &link.url, &path);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fields_with_and_without_prefixes() {
        let xml = r#"<Faktura xmlns="x"><Podmiot1><DaneIdentyfikacyjne><NIP>5265877635</NIP></DaneIdentyfikacyjne></Podmiot1><Podmiot2><NIP>1111111111</NIP></Podmiot2><Fa><P_1>2026-02-01</P_1><P_1M>x</P_1M></Fa></Faktura>"#;
        assert_eq!(
            element_text(xml, Some("Podmiot1"), "NIP"),
            Some("5265877635")
        );
        assert_eq!(element_text(xml, None, "P_1"), Some("2026-02-01"));
        let prefixed = r#"<a:Faktura xmlns:a="x"><a:Podmiot1><a:NIP>5265877635</a:NIP></a:Podmiot1><a:P_1M>no</a:P_1M><a:P_1 >2026-02-01</a:P_1></a:Faktura>"#;
        assert_eq!(
            element_text(prefixed, Some("Podmiot1"), "NIP"),
            Some("5265877635")
        );
        assert_eq!(element_text(prefixed, None, "P_1"), Some("2026-02-01"));
        assert_eq!(element_text("<x/>", None, "P_1"), None);
        assert_eq!(element_text("<P_1", None, "P_1"), None);
    }
}
