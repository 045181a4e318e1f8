//! Offline QR codes: KOD I (invoice verification) and KOD II (issuer certificate) links, and
//! their images as SVG with the label KSeF prescribes under each code: the KSeF number (or
//! `OFFLINE` before the invoice has one) under KOD I, `CERTYFIKAT` under KOD II.
//!
//! ```
//! use ksef::model::{Environment, Nip};
//! let nip: Nip = "5265877635".parse()?;
//! let date = time::macros::date!(2026 - 02 - 01);
//! let url = ksef::qr::invoice_link(&Environment::Test, &nip, date, b"<Faktura/>")?;
//! assert!(url.starts_with("https://qr-test.ksef.mf.gov.pl/invoice/5265877635/01-02-2026/"));
//! let svg = ksef::qr::invoice_qr_svg(&url, None)?;
//! assert!(svg.starts_with("<svg") && svg.contains(">OFFLINE</text>"));
//! # Ok::<(), ksef::Error>(())
//! ```

use std::fmt::Write as _;

use ksef_crypto::cert::Certificate;
use ksef_crypto::keys::PrivateKey;
pub use ksef_crypto::qr::{CertificateLink, ContextType};
use ksef_model::{Environment, KsefNumber, Nip};
use qrcode::{Color, EcLevel, QrCode};
use time::Date;

use crate::error::{Error, Result};

/// The label under KOD I of an invoice sent offline (no KSeF number yet).
pub const OFFLINE_LABEL: &str = "OFFLINE";
/// The label under KOD II.
pub const CERTIFICATE_LABEL: &str = "CERTYFIKAT";

/// KOD I: the verification link of an invoice (seller NIP, issue date `P_1`, SHA-256 of the XML
/// exactly as sent).
pub fn invoice_link(
    environment: &Environment,
    seller_nip: &Nip,
    issue_date: Date,
    xml: &[u8],
) -> Result<String> {
    Ok(ksef_crypto::qr::invoice_url_for_xml(
        environment.qr_base_url(),
        seller_nip.as_str(),
        issue_date,
        xml,
    )?)
}

/// KOD II: the issuer-certificate link of an offline invoice, signed with the KSeF **Offline**
/// certificate's key.
pub fn certificate_link(
    environment: &Environment,
    context_type: ContextType,
    context_value: &str,
    seller_nip: &Nip,
    offline_certificate: &Certificate,
    key: &PrivateKey,
    xml: &[u8],
) -> Result<CertificateLink> {
    Ok(ksef_crypto::qr::certificate_url(
        environment.qr_base_url(),
        context_type,
        context_value,
        seller_nip.as_str(),
        offline_certificate,
        key,
        &ksef_crypto::hash::sha256(xml),
    )?)
}

/// KOD I as SVG, labelled with the KSeF number, or `OFFLINE` when there is none yet.
pub fn invoice_qr_svg(url: &str, ksef_number: Option<&KsefNumber>) -> Result<String> {
    qr_svg(url, ksef_number.map_or(OFFLINE_LABEL, |k| k.as_str()))
}

/// KOD II as SVG, labelled `CERTYFIKAT`.
pub fn certificate_qr_svg(url: &str) -> Result<String> {
    qr_svg(url, CERTIFICATE_LABEL)
}

fn encode(url: &str) -> Result<QrCode> {
    // Medium error correction: KSeF's examples use M; links are short enough for it.
    QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)
        .map_err(|e| Error::InvalidInput(format!("cannot encode the link as a QR code: {e}")))
}

/// A QR code as a standalone SVG document with `label` centred underneath. One module is 4
/// units, with the 4-module quiet zone the standard asks for.
pub fn qr_svg(data: &str, label: &str) -> Result<String> {
    let code = encode(data)?;
    let width = code.width();
    let colors = code.to_colors();
    const M: usize = 4;
    const QUIET: usize = 4;
    let size = (width + 2 * QUIET) * M;
    let label_height = 12 * M;
    let mut path = String::with_capacity(width * width * 8);
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            let (x, y) = ((i % width + QUIET) * M, (i / width + QUIET) * M);
            let _ = write!(path, "M{x} {y}h{M}v{M}h-{M}z");
        }
    }
    let label = xml_escape(label);
    Ok(format!(
        concat!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {s} {h}\" width=\"{s}\" height=\"{h}\">",
            "<rect width=\"{s}\" height=\"{h}\" fill=\"#fff\"/>",
            "<path d=\"{p}\" fill=\"#000\"/>",
            "<text x=\"{cx}\" y=\"{ty}\" font-family=\"Arial, Helvetica, sans-serif\" font-size=\"{fs}\" text-anchor=\"middle\">{l}</text>",
            "</svg>"
        ),
        s = size,
        h = size + label_height,
        p = path,
        cx = size / 2,
        ty = size + label_height / 2,
        fs = 5 * M,
        l = label
    ))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The QR code's modules as a matrix (`true` = dark), row by row, without quiet zone: for your
/// own renderer (PDF, printer).
pub fn qr_modules(data: &str) -> Result<Vec<Vec<bool>>> {
    let code = encode(data)?;
    let w = code.width();
    Ok(code
        .to_colors()
        .chunks(w)
        .map(|row| row.iter().map(|c| *c == Color::Dark).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_label_and_modules() {
        let svg = certificate_qr_svg("https://qr-test.ksef.mf.gov.pl/certificate/Nip/1/1/AB/x/y")
            .unwrap();
        assert!(svg.contains(">CERTYFIKAT</text>"));
        assert!(svg.contains("<path d=\"M"));
        let k: KsefNumber = "5265877635-20250626-010080DD2B5E-26".parse().unwrap();
        let svg = invoice_qr_svg("https://x/invoice", Some(&k)).unwrap();
        assert!(svg.contains(">5265877635-20250626-010080DD2B5E-26</text>"));
        assert_eq!(
            qr_svg("a", "<&>").unwrap().matches("&lt;&amp;&gt;").count(),
            1
        );
        let m = qr_modules("hello").unwrap();
        assert_eq!(m.len(), m[0].len());
        // Finder pattern: the top-left corner is dark.
        assert!(m[0][0] && m[0][6] && m[6][0]);
    }
}
